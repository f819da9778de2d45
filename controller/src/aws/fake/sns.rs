//! SNS in the fake account: topics with attributes and tags, subscriptions (an email stays
//! `PendingConfirmation` until [`FakeAws::confirm_subscriptions`], as in AWS), and the
//! messages published. As in AWS, CreateTopic of an existing name answers its ARN when the
//! attributes and tags agree and refuses otherwise.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Fail, FakeAws, fail};
use crate::aws::error::AwsResult;
use crate::aws::sns::{PENDING_CONFIRMATION, SnsApi, Subscription};

const SERVICE: &str = "sns";

/// One topic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topic {
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub subscriptions: Vec<Subscription>,
    /// `(subject, message)` in order.
    pub published: Vec<(String, String)>,
}

/// [`SnsApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeSns {
    aws: Arc<FakeAws>,
    region: String,
}

fn not_found(arn: &str) -> Fail {
    fail("NotFound", 404, format!("Topic does not exist: {arn}"))
}

impl FakeSns {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }
}

#[async_trait]
impl SnsApi for FakeSns {
    async fn create_topic(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "CreateTopic", name, |ctx| {
            let arn = format!("arn:aws:sns:{}:{}:{name}", ctx.region, ctx.account);
            match ctx.res.topics.get(&arn) {
                Some(t)
                    if t.attributes.iter().all(|(k, v)| attributes.get(k).is_none_or(|a| a == v))
                        && t.tags == *tags =>
                {
                    Ok(arn)
                }
                Some(_) => Err(fail(
                    "InvalidParameter",
                    400,
                    "Invalid parameter: Topic already exists with different attributes",
                )),
                None => {
                    let topic = Topic { attributes: attributes.clone(), tags: tags.clone(), ..Topic::default() };
                    ctx.res.topics.insert(arn.clone(), topic);
                    Ok(arn)
                }
            }
        })
    }

    async fn topic_attributes(&self, arn: &str) -> AwsResult<Option<BTreeMap<String, String>>> {
        self.aws.read(&self.region, SERVICE, "GetTopicAttributes", arn, |ctx| {
            Ok(ctx.res.topics.get(arn).map(|t| t.attributes.clone()))
        })
    }

    async fn set_topic_attribute(&self, arn: &str, name: &str, value: &str) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "SetTopicAttributes", arn, |ctx| {
            let t = ctx.res.topics.get_mut(arn).ok_or_else(|| not_found(arn))?;
            t.attributes.insert(name.to_string(), value.to_string());
            Ok(())
        })
    }

    async fn topic_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        self.aws.read(&self.region, SERVICE, "ListTagsForResource", arn, |ctx| {
            ctx.res.topics.get(arn).map(|t| t.tags.clone()).ok_or_else(|| not_found(arn))
        })
    }

    async fn subscriptions(&self, arn: &str) -> AwsResult<Vec<Subscription>> {
        self.aws.read(&self.region, SERVICE, "ListSubscriptionsByTopic", arn, |ctx| {
            ctx.res.topics.get(arn).map(|t| t.subscriptions.clone()).ok_or_else(|| not_found(arn))
        })
    }

    async fn subscribe(&self, arn: &str, protocol: &str, endpoint: &str) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "Subscribe", arn, |ctx| {
            let t = ctx.res.topics.get_mut(arn).ok_or_else(|| not_found(arn))?;
            if !t.subscriptions.iter().any(|s| s.protocol == protocol && s.endpoint == endpoint) {
                t.subscriptions.push(Subscription {
                    protocol: protocol.into(),
                    endpoint: endpoint.into(),
                    arn: PENDING_CONFIRMATION.into(),
                });
            }
            Ok(())
        })
    }

    async fn publish(&self, arn: &str, subject: &str, message: &str) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "Publish", arn, |ctx| {
            let t = ctx.res.topics.get_mut(arn).ok_or_else(|| not_found(arn))?;
            t.published.push((subject.into(), message.into()));
            Ok(())
        })
    }
}

// ----- helpers for tests -----

impl FakeAws {
    /// The topic `arn`, if it exists.
    pub fn topic(&self, arn: &str) -> Option<Topic> {
        self.world().now.topics.get(arn).cloned()
    }

    /// Every subscriber of `arn` confirms.
    pub fn confirm_subscriptions(&self, arn: &str) {
        self.edit(|r| {
            for s in r.topics.get_mut(arn).into_iter().flat_map(|t| t.subscriptions.iter_mut()) {
                s.arn = format!("{arn}:{}", s.endpoint.len());
            }
        });
    }
}
