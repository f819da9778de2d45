//! The CloudWatch operations of the account trail's alarms: one DescribeAlarms by name
//! prefix to read them all, PutMetricAlarm to create or replace one (a repeat is harmless,
//! so a lost answer is simply sent again), and the alarms' tags at first sight. Never
//! DeleteAlarms.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic, Tag};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};

/// A metric alarm as lakeops writes it: a sum over `period_seconds` compared with a
/// threshold, notifying `actions` when it goes to ALARM.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricAlarm {
    pub name: String,
    pub description: String,
    pub metric_name: String,
    pub namespace: String,
    /// `Sum`, `Average`, ... as CloudWatch names it.
    pub statistic: String,
    pub period_seconds: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    /// e.g. `GreaterThanOrEqualToThreshold`.
    pub comparison: String,
    /// `notBreaching`, `breaching`, `ignore` or `missing`.
    pub treat_missing_data: String,
    /// ALARM actions (SNS topic ARNs), sorted.
    pub alarm_actions: Vec<String>,
    pub actions_enabled: bool,
}

/// What DescribeAlarms tells of one alarm.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedAlarm {
    pub arn: String,
    pub alarm: MetricAlarm,
}

/// The CloudWatch calls lakeops makes; one AWS request each (a list follows its pages).
#[async_trait]
pub trait CloudWatchApi: Send + Sync {
    /// DescribeAlarms of the metric alarms whose names start with `prefix` (every page).
    async fn alarms(&self, prefix: &str) -> AwsResult<Vec<ObservedAlarm>>;
    /// PutMetricAlarm: creates the alarm with `tags`, or replaces its settings (CloudWatch
    /// ignores tags on an update).
    async fn put_alarm(&self, alarm: &MetricAlarm, tags: &BTreeMap<String, String>) -> AwsResult<()>;
    /// ListTagsForResource of one alarm.
    async fn alarm_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>>;
}

/// [`CloudWatchApi`] over the AWS SDK.
pub struct SdkCloudWatch {
    client: aws_sdk_cloudwatch::Client,
}

impl SdkCloudWatch {
    /// Wraps a client.
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("cloudwatch", operation, resource, err)
}

#[async_trait]
impl CloudWatchApi for SdkCloudWatch {
    async fn alarms(&self, prefix: &str) -> AwsResult<Vec<ObservedAlarm>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_alarms()
                .alarm_name_prefix(prefix)
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
                .max_records(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("DescribeAlarms", prefix, &e))?;
            for a in page.metric_alarms() {
                let mut alarm_actions = a.alarm_actions().to_vec();
                alarm_actions.sort();
                out.push(ObservedAlarm {
                    arn: a.alarm_arn().unwrap_or_default().to_string(),
                    alarm: MetricAlarm {
                        name: a.alarm_name().unwrap_or_default().to_string(),
                        description: a.alarm_description().unwrap_or_default().to_string(),
                        metric_name: a.metric_name().unwrap_or_default().to_string(),
                        namespace: a.namespace().unwrap_or_default().to_string(),
                        statistic: a.statistic().map(|s| s.as_str().to_string()).unwrap_or_default(),
                        period_seconds: a.period().unwrap_or_default(),
                        evaluation_periods: a.evaluation_periods().unwrap_or_default(),
                        threshold: a.threshold().unwrap_or_default(),
                        comparison: a.comparison_operator().map(|c| c.as_str().to_string()).unwrap_or_default(),
                        treat_missing_data: a.treat_missing_data().unwrap_or_default().to_string(),
                        alarm_actions,
                        actions_enabled: a.actions_enabled().unwrap_or(true),
                    },
                });
            }
            match page.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(out),
            }
        }
    }

    async fn put_alarm(&self, alarm: &MetricAlarm, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        const OP: &str = "PutMetricAlarm";
        let tags = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        self.client
            .put_metric_alarm()
            .alarm_name(&alarm.name)
            .alarm_description(&alarm.description)
            .metric_name(&alarm.metric_name)
            .namespace(&alarm.namespace)
            .statistic(Statistic::from(alarm.statistic.as_str()))
            .period(alarm.period_seconds)
            .evaluation_periods(alarm.evaluation_periods)
            .threshold(alarm.threshold)
            .comparison_operator(ComparisonOperator::from(alarm.comparison.as_str()))
            .treat_missing_data(&alarm.treat_missing_data)
            .set_alarm_actions(Some(alarm.alarm_actions.clone()))
            .actions_enabled(alarm.actions_enabled)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_error(OP, &alarm.name, &e))?;
        Ok(())
    }

    async fn alarm_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| sdk_error("ListTagsForResource", arn, &e))?;
        Ok(out.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect())
    }
}
