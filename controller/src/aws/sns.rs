//! The SNS operations of the alert topic: the topic (found by its ARN, which its name
//! decides, or created), its key and policy, email subscriptions, and the controller's own
//! messages. Never DeleteTopic or Unsubscribe.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sns::types::Tag;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};

/// The topic attribute naming its KMS key.
pub const KMS_MASTER_KEY_ID: &str = "KmsMasterKeyId";
/// The topic attribute holding its access policy.
pub const POLICY: &str = "Policy";
/// What ListSubscriptionsByTopic shows instead of an ARN until the endpoint confirms.
pub const PENDING_CONFIRMATION: &str = "PendingConfirmation";

/// One subscription as ListSubscriptionsByTopic shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub protocol: String,
    pub endpoint: String,
    /// The subscription's ARN, or [`PENDING_CONFIRMATION`].
    pub arn: String,
}

impl Subscription {
    /// `Confirmed` or `PendingConfirmation`, as status shows it.
    pub fn state(&self) -> &'static str {
        if self.arn == PENDING_CONFIRMATION { PENDING_CONFIRMATION } else { "Confirmed" }
    }
}

/// The SNS calls lakeops makes; one AWS request each (a list follows its pages).
#[async_trait]
pub trait SnsApi: Send + Sync {
    /// CreateTopic with these attributes and tags; returns the topic ARN. SNS answers the
    /// existing topic's ARN when one of that name exists with the same attributes and tags.
    async fn create_topic(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<String>;
    /// GetTopicAttributes. `Ok(None)` when the topic does not exist.
    async fn topic_attributes(&self, arn: &str) -> AwsResult<Option<BTreeMap<String, String>>>;
    /// SetTopicAttributes of one attribute.
    async fn set_topic_attribute(&self, arn: &str, name: &str, value: &str) -> AwsResult<()>;
    /// ListTagsForResource of a topic.
    async fn topic_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>>;
    /// ListSubscriptionsByTopic (every page).
    async fn subscriptions(&self, arn: &str) -> AwsResult<Vec<Subscription>>;
    /// Subscribe `endpoint` with `protocol` (SNS returns the existing subscription for a repeat).
    async fn subscribe(&self, arn: &str, protocol: &str, endpoint: &str) -> AwsResult<()>;
    /// Publish a message with a subject.
    async fn publish(&self, arn: &str, subject: &str, message: &str) -> AwsResult<()>;
}

/// [`SnsApi`] over the AWS SDK.
pub struct SdkSns {
    client: aws_sdk_sns::Client,
}

impl SdkSns {
    /// Wraps a client.
    pub fn new(client: aws_sdk_sns::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("sns", operation, resource, err)
}

#[async_trait]
impl SnsApi for SdkSns {
    async fn create_topic(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<String> {
        const OP: &str = "CreateTopic";
        let tags = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AwsError::classify("sns", OP, name, None, Some(&e.to_string()), None))?;
        let out = self
            .client
            .create_topic()
            .name(name)
            .set_attributes(Some(attributes.clone().into_iter().collect()))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_error(OP, name, &e))?;
        out.topic_arn
            .ok_or_else(|| AwsError::classify("sns", OP, name, None, Some("the response has no TopicArn"), None))
    }

    async fn topic_attributes(&self, arn: &str) -> AwsResult<Option<BTreeMap<String, String>>> {
        const OP: &str = "GetTopicAttributes";
        match self.client.get_topic_attributes().topic_arn(arn).send().await {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default().into_iter().collect())),
            Err(e) => {
                let err = sdk_error(OP, arn, &e);
                if err.is_not_found() { Ok(None) } else { Err(err) }
            }
        }
    }

    async fn set_topic_attribute(&self, arn: &str, name: &str, value: &str) -> AwsResult<()> {
        const OP: &str = "SetTopicAttributes";
        self.client
            .set_topic_attributes()
            .topic_arn(arn)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await
            .map_err(|e| sdk_error(OP, arn, &e))?;
        Ok(())
    }

    async fn topic_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        const OP: &str = "ListTagsForResource";
        let out =
            self.client.list_tags_for_resource().resource_arn(arn).send().await.map_err(|e| sdk_error(OP, arn, &e))?;
        Ok(out.tags().iter().map(|t| (t.key.clone(), t.value.clone())).collect())
    }

    async fn subscriptions(&self, arn: &str) -> AwsResult<Vec<Subscription>> {
        const OP: &str = "ListSubscriptionsByTopic";
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_subscriptions_by_topic()
                .topic_arn(arn)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(OP, arn, &e))?;
            out.extend(page.subscriptions().iter().map(|s| Subscription {
                protocol: s.protocol.clone().unwrap_or_default(),
                endpoint: s.endpoint.clone().unwrap_or_default(),
                arn: s.subscription_arn.clone().unwrap_or_default(),
            }));
            token = page.next_token;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn subscribe(&self, arn: &str, protocol: &str, endpoint: &str) -> AwsResult<()> {
        const OP: &str = "Subscribe";
        self.client
            .subscribe()
            .topic_arn(arn)
            .protocol(protocol)
            .endpoint(endpoint)
            .send()
            .await
            .map_err(|e| sdk_error(OP, arn, &e))?;
        Ok(())
    }

    async fn publish(&self, arn: &str, subject: &str, message: &str) -> AwsResult<()> {
        const OP: &str = "Publish";
        self.client
            .publish()
            .topic_arn(arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| sdk_error(OP, arn, &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sns::operation::get_topic_attributes::GetTopicAttributesError;
    use aws_sdk_sns::operation::list_subscriptions_by_topic::ListSubscriptionsByTopicOutput;
    use aws_sdk_sns::types::error::NotFoundException;
    use aws_smithy_mocks::mock;

    use super::*;

    fn client(rules: &[aws_smithy_mocks::Rule]) -> SdkSns {
        SdkSns::new(aws_sdk_sns::Client::from_conf(crate::aws::mocked_config!(aws_sdk_sns, rules).build()))
    }

    #[tokio::test]
    async fn a_missing_topic_is_none_and_an_unconfirmed_email_is_pending() {
        let missing = mock!(aws_sdk_sns::Client::get_topic_attributes).then_error(|| {
            let meta = aws_smithy_types::error::ErrorMetadata::builder().code("NotFound").message("no topic").build();
            GetTopicAttributesError::NotFoundException(
                NotFoundException::builder().message("no topic").meta(meta).build(),
            )
        });
        let subs = mock!(aws_sdk_sns::Client::list_subscriptions_by_topic).then_output(|| {
            ListSubscriptionsByTopicOutput::builder()
                .subscriptions(
                    aws_sdk_sns::types::Subscription::builder()
                        .protocol("email")
                        .endpoint("secops@example.com")
                        .subscription_arn(PENDING_CONFIRMATION)
                        .build(),
                )
                .build()
        });
        let sns = client(&[missing, subs]);
        assert_eq!(sns.topic_attributes("arn:aws:sns:eu-west-1:1:t").await.expect("an answer"), None);
        let got = sns.subscriptions("arn:aws:sns:eu-west-1:1:t").await.expect("an answer");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].state(), PENDING_CONFIRMATION);
    }
}
