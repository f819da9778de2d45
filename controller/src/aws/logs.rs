//! The CloudWatch Logs operations lakeops uses: the log groups of the functions it runs and
//! of the trails it owns, and the metric filters on an account trail's group.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};

/// What DescribeLogGroups tells about one group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogGroup {
    pub name: String,
    /// The group's ARN without the trailing `:*`.
    pub arn: String,
    pub retention_days: Option<i32>,
    pub kms_key_id: Option<String>,
}

/// A metric filter with its one metric transformation: each event matching `pattern` adds
/// `metric_value` to `metric_namespace`/`metric_name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricFilter {
    pub name: String,
    pub pattern: String,
    pub metric_name: String,
    pub metric_namespace: String,
    pub metric_value: String,
}

/// The CloudWatch Logs calls lakeops makes; one AWS request each.
#[async_trait]
pub trait LogsApi: Send + Sync {
    /// DescribeLogGroups by name prefix, keeping the exact name. `Ok(None)` when absent.
    async fn describe_log_group(&self, name: &str) -> AwsResult<Option<LogGroup>>;
    /// CreateLogGroup encrypted with `kms_key_id`, with tags. A group of that name that
    /// already carries every one of `tags` is success: our own create whose answer was lost
    /// (the SDK's retry then hears `ResourceAlreadyExistsException`).
    async fn create_log_group(&self, name: &str, kms_key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
    /// PutRetentionPolicy.
    async fn put_retention(&self, name: &str, days: i32) -> AwsResult<()>;
    /// AssociateKmsKey.
    async fn associate_key(&self, name: &str, kms_key_id: &str) -> AwsResult<()>;
    /// ListTagsForResource.
    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>>;
    /// TagResource.
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
    /// DeleteLogGroup. A missing group is success.
    async fn delete_log_group(&self, name: &str) -> AwsResult<()>;
    /// DescribeMetricFilters of one group (every page; one request for up to 50 filters).
    async fn metric_filters(&self, group: &str) -> AwsResult<Vec<MetricFilter>>;
    /// PutMetricFilter: creates or replaces the filter of that name (a repeat is harmless).
    async fn put_metric_filter(&self, group: &str, filter: &MetricFilter) -> AwsResult<()>;
}

/// [`LogsApi`] on the AWS SDK.
pub struct SdkLogs {
    client: aws_sdk_cloudwatchlogs::Client,
}

impl SdkLogs {
    pub fn new(client: aws_sdk_cloudwatchlogs::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("logs", operation, resource, err)
}

#[async_trait]
impl LogsApi for SdkLogs {
    async fn describe_log_group(&self, name: &str) -> AwsResult<Option<LogGroup>> {
        const OP: &str = "DescribeLogGroups";
        let mut token: Option<String> = None;
        // A prefix can match longer names too; page until the exact one or the end.
        loop {
            let out = self
                .client
                .describe_log_groups()
                .log_group_name_prefix(name)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error(OP, name, &e))?;
            if let Some(g) = out.log_groups().iter().find(|g| g.log_group_name() == Some(name)) {
                let arn = g.arn().unwrap_or_default();
                return Ok(Some(LogGroup {
                    name: name.to_string(),
                    arn: arn.strip_suffix(":*").unwrap_or(arn).to_string(),
                    retention_days: g.retention_in_days(),
                    kms_key_id: g.kms_key_id().map(str::to_string),
                }));
            }
            match out.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(None),
            }
        }
    }

    async fn create_log_group(&self, name: &str, kms_key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        let sent = self
            .client
            .create_log_group()
            .log_group_name(name)
            .kms_key_id(kms_key_id)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(()),
            Err(e) => sdk_error("CreateLogGroup", name, &e),
        };
        if err.is_already_exists()
            && let Some(group) = self.describe_log_group(name).await?
        {
            let found = self.list_tags(&group.arn).await?;
            if tags.iter().all(|(k, v)| found.get(k) == Some(v)) {
                return Ok(());
            }
        }
        Err(err)
    }

    async fn put_retention(&self, name: &str, days: i32) -> AwsResult<()> {
        self.client
            .put_retention_policy()
            .log_group_name(name)
            .retention_in_days(days)
            .send()
            .await
            .map_err(|e| sdk_error("PutRetentionPolicy", name, &e))?;
        Ok(())
    }

    async fn associate_key(&self, name: &str, kms_key_id: &str) -> AwsResult<()> {
        self.client
            .associate_kms_key()
            .log_group_name(name)
            .kms_key_id(kms_key_id)
            .send()
            .await
            .map_err(|e| sdk_error("AssociateKmsKey", name, &e))?;
        Ok(())
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| sdk_error("ListTagsForResource", arn, &e))?;
        Ok(out.tags.unwrap_or_default().into_iter().collect())
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| sdk_error("TagResource", arn, &e))?;
        Ok(())
    }

    async fn delete_log_group(&self, name: &str) -> AwsResult<()> {
        match self.client.delete_log_group().log_group_name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) => match sdk_error("DeleteLogGroup", name, &e) {
                err if err.is_not_found() => Ok(()),
                err => Err(err),
            },
        }
    }

    async fn metric_filters(&self, group: &str) -> AwsResult<Vec<MetricFilter>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .describe_metric_filters()
                .log_group_name(group)
                .limit(50)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("DescribeMetricFilters", group, &e))?;
            for f in page.metric_filters() {
                // lakeops writes one transformation per filter; a filter with none is not one of its own.
                let Some(t) = f.metric_transformations().first() else { continue };
                out.push(MetricFilter {
                    name: f.filter_name().unwrap_or_default().to_string(),
                    pattern: f.filter_pattern().unwrap_or_default().to_string(),
                    metric_name: t.metric_name().to_string(),
                    metric_namespace: t.metric_namespace().to_string(),
                    metric_value: t.metric_value().to_string(),
                });
            }
            match page.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(out),
            }
        }
    }

    async fn put_metric_filter(&self, group: &str, filter: &MetricFilter) -> AwsResult<()> {
        let transformation = aws_sdk_cloudwatchlogs::types::MetricTransformation::builder()
            .metric_name(&filter.metric_name)
            .metric_namespace(&filter.metric_namespace)
            .metric_value(&filter.metric_value)
            .build()
            .map_err(|e| {
                AwsError::classify(
                    "logs",
                    "PutMetricFilter",
                    &filter.name,
                    Some("InvalidParameter"),
                    Some(&e.to_string()),
                    None,
                )
            })?;
        self.client
            .put_metric_filter()
            .log_group_name(group)
            .filter_name(&filter.name)
            .filter_pattern(&filter.pattern)
            .metric_transformations(transformation)
            .send()
            .await
            .map_err(|e| sdk_error("PutMetricFilter", &filter.name, &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsOutput;
    use aws_sdk_cloudwatchlogs::types::LogGroup as SdkLogGroup;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;

    fn logs(rules: &[&Rule]) -> SdkLogs {
        SdkLogs::new(aws_sdk_cloudwatchlogs::Client::from_conf(
            crate::aws::mocked_config!(aws_sdk_cloudwatchlogs, rules).build(),
        ))
    }

    fn group(name: &str) -> SdkLogGroup {
        SdkLogGroup::builder()
            .log_group_name(name)
            .arn(format!("arn:aws:logs:eu-west-1:123456789012:log-group:{name}:*"))
            .retention_in_days(30)
            .kms_key_id("arn:k")
            .build()
    }

    fn already_exists() -> aws_smithy_runtime_api::client::orchestrator::HttpResponse {
        let body = r#"{"__type":"ResourceAlreadyExistsException","message":"The specified log group already exists"}"#;
        let mut response = aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(400).expect("status"),
            aws_smithy_types::body::SdkBody::from(body),
        );
        response.headers_mut().insert("content-type", "application/x-amz-json-1.1");
        response
    }

    fn tags_output(
        tags: &[(&str, &str)],
    ) -> aws_sdk_cloudwatchlogs::operation::list_tags_for_resource::ListTagsForResourceOutput {
        aws_sdk_cloudwatchlogs::operation::list_tags_for_resource::ListTagsForResourceOutput::builder()
            .set_tags(Some(tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()))
            .build()
    }

    #[tokio::test]
    async fn a_retried_create_that_finds_our_own_group_succeeds() {
        let create = mock!(aws_sdk_cloudwatchlogs::Client::create_log_group).then_http_response(already_exists);
        let describe = mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups)
            .then_output(|| DescribeLogGroupsOutput::builder().log_groups(group("/aws/lambda/f")).build());
        let tags = mock!(aws_sdk_cloudwatchlogs::Client::list_tags_for_resource)
            .match_requests(|r| r.resource_arn() == Some("arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/f"))
            .then_output(|| tags_output(&[("lakeops.dev/owner", "ns/f"), ("other", "x")]));
        let ours = BTreeMap::from([("lakeops.dev/owner".to_string(), "ns/f".to_string())]);

        let created = logs(&[&create, &describe, &tags]).create_log_group("/aws/lambda/f", "arn:k", &ours).await;

        assert_eq!(created, Ok(()));
    }

    #[tokio::test]
    async fn a_group_someone_else_created_is_not_taken_for_ours() {
        let create = mock!(aws_sdk_cloudwatchlogs::Client::create_log_group).then_http_response(already_exists);
        let describe = mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups)
            .then_output(|| DescribeLogGroupsOutput::builder().log_groups(group("/aws/lambda/f")).build());
        let tags = mock!(aws_sdk_cloudwatchlogs::Client::list_tags_for_resource)
            .then_output(|| tags_output(&[("lakeops.dev/owner", "other/f")]));
        let ours = BTreeMap::from([("lakeops.dev/owner".to_string(), "ns/f".to_string())]);

        let err = logs(&[&create, &describe, &tags])
            .create_log_group("/aws/lambda/f", "arn:k", &ours)
            .await
            .expect_err("not ours");

        assert_eq!(err.kind, crate::aws::error::ErrorKind::AlreadyExists);
    }

    #[tokio::test]
    async fn only_the_exact_name_counts_even_on_a_later_page() {
        let first = mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups).then_output(|| {
            DescribeLogGroupsOutput::builder().log_groups(group("/aws/lambda/f-longer")).next_token("t").build()
        });
        let second = mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups)
            .match_requests(|r| r.next_token() == Some("t"))
            .then_output(|| DescribeLogGroupsOutput::builder().log_groups(group("/aws/lambda/f")).build());

        let g = logs(&[&first, &second]).describe_log_group("/aws/lambda/f").await.expect("read").expect("found");

        assert_eq!(g.arn, "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/f");
        assert_eq!((g.retention_days, g.kms_key_id.as_deref()), (Some(30), Some("arn:k")));
    }

    #[tokio::test]
    async fn a_prefix_matching_only_other_groups_is_none() {
        let rule = mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups)
            .then_output(|| DescribeLogGroupsOutput::builder().log_groups(group("/aws/lambda/f-2")).build());

        assert_eq!(logs(&[&rule]).describe_log_group("/aws/lambda/f").await, Ok(None));
    }
}
