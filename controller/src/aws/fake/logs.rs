//! CloudWatch Logs in the fake account: log groups with retention, KMS key and tags.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Fail, FakeAws, fail, merge_tags, ok_if_missing};
use crate::aws::error::AwsResult;
use crate::aws::logs::{LogGroup, LogsApi, MetricFilter};

const SERVICE: &str = "logs";

/// The retention periods CloudWatch Logs accepts, in days.
const RETENTION_DAYS: &[i32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// A log group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogGroupState {
    pub name: String,
    /// Without the trailing `:*`.
    pub arn: String,
    pub retention_days: Option<i32>,
    pub kms_key_id: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Metric filters by name.
    pub metric_filters: BTreeMap<String, MetricFilter>,
}

impl LogGroupState {
    fn info(&self) -> LogGroup {
        LogGroup {
            name: self.name.clone(),
            arn: self.arn.clone(),
            retention_days: self.retention_days,
            kms_key_id: self.kms_key_id.clone(),
        }
    }
}

/// [`LogsApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeLogs {
    aws: Arc<FakeAws>,
    region: String,
}

fn not_found(name: &str) -> Fail {
    fail("ResourceNotFoundException", 400, format!("The specified log group does not exist: {name}"))
}

impl FakeLogs {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }

    fn id(&self, name: &str) -> (String, String) {
        (self.region.clone(), name.to_string())
    }

    fn put(
        &self,
        op: &'static str,
        name: &str,
        change: impl FnOnce(&mut LogGroupState) -> Result<(), Fail>,
    ) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, op, name, |ctx| {
            ctx.res.log_groups.get_mut(&self.id(name)).map_or_else(|| Err(not_found(name)), change)
        })
    }
}

/// Tag calls name the group by ARN, with or without the `:*` DescribeLogGroups appends.
fn same_arn(group: &LogGroupState, arn: &str) -> bool {
    arn.strip_suffix(":*").unwrap_or(arn) == group.arn
}

#[async_trait]
impl LogsApi for FakeLogs {
    async fn describe_log_group(&self, name: &str) -> AwsResult<Option<LogGroup>> {
        self.aws.read(&self.region, SERVICE, "DescribeLogGroups", name, |ctx| {
            Ok(ctx.res.log_groups.get(&self.id(name)).map(LogGroupState::info))
        })
    }

    async fn create_log_group(&self, name: &str, kms_key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "CreateLogGroup", name, |ctx| {
            let id = (ctx.region.to_string(), name.to_string());
            if let Some(found) = ctx.res.log_groups.get(&id) {
                // As the SDK adapter: a group that carries our tags is our own earlier create.
                if tags.iter().all(|(k, v)| found.tags.get(k) == Some(v)) {
                    return Ok(());
                }
                return Err(fail("ResourceAlreadyExistsException", 400, "The specified log group already exists"));
            }
            let group = LogGroupState {
                name: name.to_string(),
                arn: format!("arn:aws:logs:{}:{}:log-group:{name}", ctx.region, ctx.account),
                retention_days: None,
                kms_key_id: Some(kms_key_id.to_string()).filter(|k| !k.is_empty()),
                tags: tags.clone(),
                metric_filters: BTreeMap::new(),
            };
            ctx.res.log_groups.insert(id, group);
            Ok(())
        })
    }

    async fn put_retention(&self, name: &str, days: i32) -> AwsResult<()> {
        self.put("PutRetentionPolicy", name, |g| {
            if !RETENTION_DAYS.contains(&days) {
                return Err(fail(
                    "InvalidParameterException",
                    400,
                    format!(
                        "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint"
                    ),
                ));
            }
            g.retention_days = Some(days);
            Ok(())
        })
    }

    async fn associate_key(&self, name: &str, kms_key_id: &str) -> AwsResult<()> {
        self.put("AssociateKmsKey", name, |g| {
            g.kms_key_id = Some(kms_key_id.to_string());
            Ok(())
        })
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        self.aws.read(&self.region, SERVICE, "ListTagsForResource", arn, |ctx| {
            let group = ctx.res.log_groups.values().find(|g| same_arn(g, arn));
            group.map(|g| g.tags.clone()).ok_or_else(|| not_found(arn))
        })
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "TagResource", arn, |ctx| {
            let group = ctx.res.log_groups.values_mut().find(|g| same_arn(g, arn));
            group.map(|g| merge_tags(&mut g.tags, tags)).ok_or_else(|| not_found(arn))
        })
    }

    async fn delete_log_group(&self, name: &str) -> AwsResult<()> {
        let result = self.aws.write(&self.region, SERVICE, "DeleteLogGroup", name, |ctx| {
            ctx.res.log_groups.remove(&self.id(name)).map(drop).ok_or_else(|| not_found(name))
        });
        ok_if_missing(result)
    }

    async fn metric_filters(&self, group: &str) -> AwsResult<Vec<MetricFilter>> {
        self.aws.read(&self.region, SERVICE, "DescribeMetricFilters", group, |ctx| {
            let g = ctx.res.log_groups.get(&self.id(group)).ok_or_else(|| not_found(group))?;
            Ok(g.metric_filters.values().cloned().collect())
        })
    }

    async fn put_metric_filter(&self, group: &str, filter: &MetricFilter) -> AwsResult<()> {
        self.put("PutMetricFilter", group, |g| {
            // CloudWatch Logs allows 100 filters per group.
            if !g.metric_filters.contains_key(&filter.name) && g.metric_filters.len() >= 100 {
                return Err(fail("LimitExceededException", 400, "too many metric filters on the group"));
            }
            g.metric_filters.insert(filter.name.clone(), filter.clone());
            Ok(())
        })
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// A log group in `region`.
    pub fn with_log_group(
        &self,
        region: &str,
        name: &str,
        retention_days: Option<i32>,
        kms_key_id: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) {
        let group = LogGroupState {
            name: name.to_string(),
            arn: format!("arn:aws:logs:{region}:{}:log-group:{name}", self.account),
            retention_days,
            kms_key_id: kms_key_id.map(str::to_string),
            tags: tags.clone(),
            metric_filters: BTreeMap::new(),
        };
        self.edit(|r| r.log_groups.insert((region.to_string(), name.to_string()), group));
    }

    /// Changes one log group; `None` when there is no such group.
    pub fn edit_log_group<R>(
        &self,
        region: &str,
        name: &str,
        change: impl FnOnce(&mut LogGroupState) -> R,
    ) -> Option<R> {
        self.edit(|r| r.log_groups.get_mut(&(region.to_string(), name.to_string())).map(change))
    }

    /// A copy of one log group as it is now.
    pub fn log_group(&self, region: &str, name: &str) -> Option<LogGroupState> {
        self.world().now.log_groups.get(&(region.to_string(), name.to_string())).cloned()
    }
}
