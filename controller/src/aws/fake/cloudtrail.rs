//! CloudTrail in the fake account: trails with settings, S3 data-event selectors, logging
//! status and tags.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::kms::ENABLED;
use super::{Fail, FakeAws, WriteCtx, fail, none_if_missing};
use crate::aws::cloudtrail::{CloudTrailApi, EventSelection, TrailInfo, TrailSettings};
use crate::aws::error::AwsResult;

const SERVICE: &str = "cloudtrail";

/// A trail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trail {
    pub arn: String,
    pub settings: TrailSettings,
    /// What the selectors record (a new trail: management events only, as in AWS).
    pub selection: EventSelection,
    pub logging: bool,
    pub tags: BTreeMap<String, String>,
}

/// [`CloudTrailApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeCloudTrail {
    aws: Arc<FakeAws>,
    region: String,
}

fn not_found(name: &str) -> Fail {
    fail("TrailNotFoundException", 400, format!("Unknown trail: {name} for the user"))
}

/// CloudTrail checks that it can deliver: the bucket exists and its policy lets
/// `cloudtrail.amazonaws.com` write, the key (when named) exists and is enabled.
fn check_delivery(ctx: &WriteCtx<'_>, s: &TrailSettings) -> Result<(), Fail> {
    let Some(bucket) = ctx.res.buckets.get(&s.s3_bucket) else {
        return Err(fail("S3BucketDoesNotExistException", 400, format!("S3 bucket {} does not exist", s.s3_bucket)));
    };
    if !bucket.policy.as_deref().is_some_and(|p| p.contains("cloudtrail.amazonaws.com")) {
        return Err(fail(
            "InsufficientS3BucketPolicyException",
            400,
            format!("Incorrect S3 bucket policy is detected for bucket: {}", s.s3_bucket),
        ));
    }
    if !s.kms_key_id.is_empty() {
        let key = ctx.res.keys.values().find(|k| k.arn == s.kms_key_id || k.key_id == s.kms_key_id);
        if key.is_none_or(|k| k.state != ENABLED) {
            return Err(fail(
                "KmsKeyNotFoundException",
                400,
                format!("KMS key {} not found or not enabled", s.kms_key_id),
            ));
        }
    }
    check_logs_delivery(ctx, s)
}

/// CloudTrail checks the CloudWatch Logs delivery as AWS does: both ARNs or neither, the
/// group exists in the trail's region, and the role exists and trusts CloudTrail.
fn check_logs_delivery(ctx: &WriteCtx<'_>, s: &TrailSettings) -> Result<(), Fail> {
    let (group, role) = (&s.cloud_watch_logs_group_arn, &s.cloud_watch_logs_role_arn);
    if group.is_empty() && role.is_empty() {
        return Ok(());
    }
    let group_name = group.strip_suffix(":*").and_then(|g| g.split_once(":log-group:")).map(|(_, name)| name);
    let exists =
        group_name.is_some_and(|name| ctx.res.log_groups.contains_key(&(ctx.region.to_string(), name.to_string())));
    if !exists {
        return Err(fail(
            "InvalidCloudWatchLogsLogGroupArnException",
            400,
            format!("Access denied. Verify in IAM that the log group {group:?} exists"),
        ));
    }
    let role = role.rsplit('/').next().and_then(|name| ctx.res.roles.get(name));
    if !role.is_some_and(|r| r.assume_role_policy.contains("cloudtrail.amazonaws.com")) {
        return Err(fail(
            "InvalidCloudWatchLogsRoleArnException",
            400,
            format!("Access denied. Check the trust relationships for the role {:?}", s.cloud_watch_logs_role_arn),
        ));
    }
    Ok(())
}

/// The selection of a new trail: AWS records management events until told otherwise.
fn management_only() -> EventSelection {
    EventSelection { management_events: true, ..EventSelection::default() }
}

impl FakeCloudTrail {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }

    fn id(&self, name: &str) -> (String, String) {
        (self.region.clone(), name.to_string())
    }

    fn get<T>(&self, op: &'static str, name: &str, read: impl FnOnce(&Trail) -> T) -> AwsResult<T> {
        self.aws.read(&self.region, SERVICE, op, name, |ctx| {
            ctx.res.trails.get(&self.id(name)).map(read).ok_or_else(|| not_found(name))
        })
    }

    fn put(&self, op: &'static str, name: &str, change: impl FnOnce(&mut Trail)) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, op, name, |ctx| {
            ctx.res.trails.get_mut(&self.id(name)).map(change).ok_or_else(|| not_found(name))
        })
    }
}

#[async_trait]
impl CloudTrailApi for FakeCloudTrail {
    async fn get_trail(&self, name: &str) -> AwsResult<Option<TrailInfo>> {
        let found = self.get("GetTrail", name, |t| TrailInfo { arn: t.arn.clone(), settings: t.settings.clone() });
        none_if_missing(found)
    }

    async fn get_event_selection(&self, name: &str) -> AwsResult<EventSelection> {
        self.get("GetEventSelectors", name, |t| t.selection.clone())
    }

    async fn is_logging(&self, name: &str) -> AwsResult<bool> {
        self.get("GetTrailStatus", name, |t| t.logging)
    }

    async fn create_trail(&self, s: &TrailSettings, tags: &BTreeMap<String, String>) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "CreateTrail", &s.name, |ctx| {
            let id = (ctx.region.to_string(), s.name.clone());
            if ctx.res.trails.contains_key(&id) {
                return Err(fail("TrailAlreadyExistsException", 400, format!("Trail {} already exists", s.name)));
            }
            check_delivery(ctx, s)?;
            let arn = format!("arn:aws:cloudtrail:{}:{}:trail/{}", ctx.region, ctx.account, s.name);
            let trail = Trail {
                arn: arn.clone(),
                settings: s.clone(),
                selection: management_only(),
                logging: false,
                tags: tags.clone(),
            };
            ctx.res.trails.insert(id, trail);
            Ok(arn)
        })
    }

    async fn update_trail(&self, s: &TrailSettings) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "UpdateTrail", &s.name, |ctx| {
            if !ctx.res.trails.contains_key(&self.id(&s.name)) {
                return Err(not_found(&s.name));
            }
            check_delivery(ctx, s)?;
            let trail = ctx.res.trails.get_mut(&self.id(&s.name)).ok_or_else(|| not_found(&s.name))?;
            trail.settings = s.clone();
            Ok(())
        })
    }

    async fn put_event_selection(&self, name: &str, selection: &EventSelection) -> AwsResult<()> {
        let mut selection = selection.clone();
        selection.s3_objects.sort();
        selection.lambda_functions.sort();
        self.put("PutEventSelectors", name, |t| t.selection = selection)
    }

    async fn start_logging(&self, name: &str) -> AwsResult<()> {
        self.put("StartLogging", name, |t| t.logging = true)
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        self.aws.read(&self.region, SERVICE, "ListTags", arn, |ctx| {
            let trail = ctx.res.trails.values().find(|t| t.arn == arn);
            trail
                .map(|t| t.tags.clone())
                .ok_or_else(|| fail("ResourceNotFoundException", 400, format!("Resource not found: {arn}")))
        })
    }

    async fn delete_trail(&self, name: &str) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "DeleteTrail", name, |ctx| {
            ctx.res.trails.remove(&self.id(name)).map(drop).ok_or_else(|| not_found(name))
        })
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// A trail in `region` with these settings and tags (not checked against the bucket).
    pub fn with_trail(&self, region: &str, settings: &TrailSettings, logging: bool, tags: &BTreeMap<String, String>) {
        let trail = Trail {
            arn: format!("arn:aws:cloudtrail:{region}:{}:trail/{}", self.account, settings.name),
            settings: settings.clone(),
            selection: management_only(),
            logging,
            tags: tags.clone(),
        };
        self.edit(|r| r.trails.insert((region.to_string(), settings.name.clone()), trail));
    }

    /// Changes one trail; `None` when there is no such trail.
    pub fn edit_trail<R>(&self, region: &str, name: &str, change: impl FnOnce(&mut Trail) -> R) -> Option<R> {
        self.edit(|r| r.trails.get_mut(&(region.to_string(), name.to_string())).map(change))
    }

    /// A copy of one trail as it is now.
    pub fn trail(&self, region: &str, name: &str) -> Option<Trail> {
        self.world().now.trails.get(&(region.to_string(), name.to_string())).cloned()
    }
}
