//! The EventBridge operations lakeops uses: rules on the default event bus (an event
//! pattern or a schedule), their targets and their tags. Rules are named, so PutRule and
//! PutTargets are idempotent: a retry after a lost answer rewrites the same rule.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::{RuleState, Tag, Target};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};

/// A rule as lakeops writes and reads it. Exactly one of `event_pattern` and
/// `schedule_expression` is set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    /// The event pattern as JSON.
    pub event_pattern: Option<String>,
    /// `rate(...)` or `cron(...)`.
    pub schedule_expression: Option<String>,
    pub description: String,
    pub enabled: bool,
}

/// What DescribeRule tells besides the settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleInfo {
    pub rule: Rule,
    pub arn: String,
}

/// One target of a rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleTarget {
    /// Unique within the rule.
    pub id: String,
    /// What the event is sent to (a state machine, an SNS topic, ...).
    pub arn: String,
    /// The role EventBridge assumes to reach it, where the target needs one.
    pub role_arn: Option<String>,
}

/// The EventBridge calls lakeops makes; one AWS request each.
#[async_trait]
pub trait EventsApi: Send + Sync {
    /// DescribeRule on the default bus. `Ok(None)` when there is no such rule.
    async fn describe_rule(&self, name: &str) -> AwsResult<Option<RuleInfo>>;
    /// PutRule: creates the rule with `tags` or, when it exists, rewrites its settings
    /// (tags are then left as they are). Returns the rule ARN.
    async fn put_rule(&self, rule: &Rule, tags: &BTreeMap<String, String>) -> AwsResult<String>;
    /// ListTargetsByRule.
    async fn list_targets(&self, rule: &str) -> AwsResult<Vec<RuleTarget>>;
    /// PutTargets: adds or replaces targets by id.
    async fn put_targets(&self, rule: &str, targets: &[RuleTarget]) -> AwsResult<()>;
    /// RemoveTargets by id; ids that are not there are no error.
    async fn remove_targets(&self, rule: &str, ids: &[String]) -> AwsResult<()>;
    /// DeleteRule (its targets must be removed first); a missing rule is success.
    async fn delete_rule(&self, name: &str) -> AwsResult<()>;
    /// ListTagsForResource of a rule ARN.
    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>>;
}

/// [`EventsApi`] over the AWS SDK.
pub struct SdkEvents {
    client: aws_sdk_eventbridge::Client,
}

impl SdkEvents {
    /// Wraps a client.
    pub fn new(client: aws_sdk_eventbridge::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("events", operation, resource, err)
}

fn not_found_as_none<T>(result: Result<T, AwsError>) -> AwsResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl EventsApi for SdkEvents {
    async fn describe_rule(&self, name: &str) -> AwsResult<Option<RuleInfo>> {
        let out = self.client.describe_rule().name(name).send().await.map_err(|e| sdk_error("DescribeRule", name, &e));
        Ok(not_found_as_none(out)?.map(|out| RuleInfo {
            arn: out.arn.unwrap_or_default(),
            rule: Rule {
                name: out.name.unwrap_or_else(|| name.to_string()),
                event_pattern: out.event_pattern,
                schedule_expression: out.schedule_expression,
                description: out.description.unwrap_or_default(),
                enabled: out.state.is_none_or(|s| s == RuleState::Enabled),
            },
        }))
    }

    async fn put_rule(&self, rule: &Rule, tags: &BTreeMap<String, String>) -> AwsResult<String> {
        let tags = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect::<Result<Vec<_>, _>>();
        let tags = tags.map_err(|e| {
            AwsError::classify("events", "PutRule", &rule.name, Some("ValidationException"), Some(&e.to_string()), None)
        })?;
        let out = self
            .client
            .put_rule()
            .name(&rule.name)
            .set_event_pattern(rule.event_pattern.clone())
            .set_schedule_expression(rule.schedule_expression.clone())
            .description(&rule.description)
            .state(if rule.enabled { RuleState::Enabled } else { RuleState::Disabled })
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_error("PutRule", &rule.name, &e))?;
        Ok(out.rule_arn.unwrap_or_default())
    }

    async fn list_targets(&self, rule: &str) -> AwsResult<Vec<RuleTarget>> {
        let out = self
            .client
            .list_targets_by_rule()
            .rule(rule)
            .send()
            .await
            .map_err(|e| sdk_error("ListTargetsByRule", rule, &e))?;
        Ok(out
            .targets
            .unwrap_or_default()
            .into_iter()
            .map(|t| RuleTarget { id: t.id, arn: t.arn, role_arn: t.role_arn })
            .collect())
    }

    async fn put_targets(&self, rule: &str, targets: &[RuleTarget]) -> AwsResult<()> {
        let targets = targets
            .iter()
            .map(|t| Target::builder().id(&t.id).arn(&t.arn).set_role_arn(t.role_arn.clone()).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                AwsError::classify(
                    "events",
                    "PutTargets",
                    rule,
                    Some("ValidationException"),
                    Some(&e.to_string()),
                    None,
                )
            })?;
        let out = self
            .client
            .put_targets()
            .rule(rule)
            .set_targets(Some(targets))
            .send()
            .await
            .map_err(|e| sdk_error("PutTargets", rule, &e))?;
        // PutTargets answers 200 with per-target failures.
        if let Some(f) = out.failed_entries.unwrap_or_default().into_iter().next() {
            return Err(AwsError::classify(
                "events",
                "PutTargets",
                rule,
                f.error_code.as_deref(),
                f.error_message.as_deref(),
                None,
            ));
        }
        Ok(())
    }

    async fn remove_targets(&self, rule: &str, ids: &[String]) -> AwsResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        match self.client.remove_targets().rule(rule).set_ids(Some(ids.to_vec())).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = sdk_error("RemoveTargets", rule, &e);
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }

    async fn delete_rule(&self, name: &str) -> AwsResult<()> {
        match self.client.delete_rule().name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = sdk_error("DeleteRule", name, &e);
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| sdk_error("ListTagsForResource", arn, &e))?;
        Ok(out.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_eventbridge::operation::describe_rule::DescribeRuleOutput;
    use aws_sdk_eventbridge::operation::put_rule::PutRuleOutput;
    use aws_sdk_eventbridge::operation::put_targets::PutTargetsOutput;
    use aws_sdk_eventbridge::types::PutTargetsResultEntry;
    use aws_smithy_mocks::mock;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn client(rules: &[aws_smithy_mocks::Rule]) -> SdkEvents {
        SdkEvents::new(aws_sdk_eventbridge::Client::from_conf(
            crate::aws::mocked_config!(aws_sdk_eventbridge, rules).build(),
        ))
    }

    #[tokio::test]
    async fn put_rule_sends_the_pattern_state_and_tags_and_returns_the_arn() {
        let put = mock!(aws_sdk_eventbridge::Client::put_rule)
            .match_requests(|r| {
                r.name() == Some("r1")
                    && r.event_pattern() == Some(r#"{"source":["aws.s3"]}"#)
                    && r.schedule_expression().is_none()
                    && r.state() == Some(&RuleState::Enabled)
                    && r.tags().iter().any(|t| t.key() == "lakeops.dev/owner" && t.value() == "ns/p")
            })
            .then_output(|| PutRuleOutput::builder().rule_arn("arn:aws:events:eu-west-1:1:rule/r1").build());
        let rule = Rule {
            name: "r1".into(),
            event_pattern: Some(r#"{"source":["aws.s3"]}"#.into()),
            enabled: true,
            ..Rule::default()
        };
        let tags = BTreeMap::from([("lakeops.dev/owner".to_string(), "ns/p".to_string())]);
        assert_eq!(
            client(&[put]).put_rule(&rule, &tags).await.expect("mocked answer"),
            "arn:aws:events:eu-west-1:1:rule/r1"
        );
    }

    #[tokio::test]
    async fn a_missing_rule_reads_as_none_and_a_failed_target_entry_is_an_error() {
        let missing = mock!(aws_sdk_eventbridge::Client::describe_rule).then_http_response(|| {
            let body = r#"{"__type":"ResourceNotFoundException","message":"Rule r1 does not exist."}"#;
            let mut response = HttpResponse::new(StatusCode::try_from(400).expect("status"), SdkBody::from(body));
            response.headers_mut().insert("content-type", "application/x-amz-json-1.1");
            response
        });
        let found = mock!(aws_sdk_eventbridge::Client::describe_rule).then_output(|| {
            DescribeRuleOutput::builder().name("r1").arn("arn:r1").schedule_expression("rate(1 hour)").build()
        });
        let failed = mock!(aws_sdk_eventbridge::Client::put_targets).then_output(|| {
            PutTargetsOutput::builder()
                .failed_entry_count(1)
                .failed_entries(
                    PutTargetsResultEntry::builder()
                        .target_id("t")
                        .error_code("AccessDeniedException")
                        .error_message("no")
                        .build(),
                )
                .build()
        });
        let events = client(&[missing, found, failed]);
        assert_eq!(events.describe_rule("r1").await.expect("mocked answer"), None);
        let r = events.describe_rule("r1").await.expect("mocked answer").expect("found");
        assert_eq!(r.rule.schedule_expression.as_deref(), Some("rate(1 hour)"));
        assert!(r.rule.enabled, "a rule without a state reads as enabled, EventBridge's default");
        let t = RuleTarget { id: "t".into(), arn: "arn:sm".into(), role_arn: Some("arn:role".into()) };
        assert!(events.put_targets("r1", &[t]).await.is_err());
    }
}
