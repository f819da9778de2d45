//! [`S3Api`] over the AWS SDK: requests built from the domain types, answers converted back.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::create_bucket::CreateBucketError;
use aws_sdk_s3::types as sdk;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::error::operation::BuildError;

use super::quirks::{empty_notification_answer, lenient_versioning_status};
use super::{
    BucketEncryption, DefaultRetention, LifecycleRule, Logging, NotificationEntry, NotificationTarget, Notifications,
    ObjectVersion, PublicAccessBlock, ReplicationConfig, ReplicationRule, S3Api,
};
use crate::aws::error::{AwsError, AwsResult, ErrorKind};

/// [`S3Api`] over the AWS SDK.
pub struct SdkS3 {
    client: aws_sdk_s3::Client,
}

impl SdkS3 {
    /// Wraps a client already configured for the lake's region.
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        Self { client }
    }
}

/// Error codes meaning "the bucket exists but this configuration is not set".
const NO_ENCRYPTION: &[&str] = &["ServerSideEncryptionConfigurationNotFoundError"];
const NO_PUBLIC_ACCESS_BLOCK: &[&str] = &["NoSuchPublicAccessBlockConfiguration"];
const NO_OWNERSHIP_CONTROLS: &[&str] = &["OwnershipControlsNotFoundError"];
const NO_POLICY: &[&str] = &["NoSuchBucketPolicy"];
const NO_LIFECYCLE: &[&str] = &["NoSuchLifecycleConfiguration"];
/// AWS says `NoSuchTagSet`; some moto versions add an `Error` suffix.
const NO_TAGS: &[&str] = &["NoSuchTagSet", "NoSuchTagSetError"];
const NO_OBJECT_LOCK: &[&str] = &["ObjectLockConfigurationNotFoundError"];
const NO_REPLICATION: &[&str] = &["ReplicationConfigurationNotFoundError"];

/// Minutes of Replication Time Control and of the replication-metrics threshold: the only
/// value S3 accepts.
const RTC_MINUTES: i32 = 15;

/// ListObjectVersions returns at most this many entries per page.
const MAX_KEYS_PER_PAGE: usize = 1000;

/// Converts any S3 SDK error into a classified [`AwsError`]. The message falls back to the
/// whole error chain so dispatch failures and timeouts still say what happened.
fn aws_error<E>(operation: &'static str, bucket: &str, err: SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    crate::aws::error::from_sdk("s3", operation, bucket, &err)
}

/// A request lakeops could not even build (a required field left empty): a bug or a bad
/// spec value, never worth retrying.
fn build_error(operation: &'static str, bucket: &str, err: BuildError) -> AwsError {
    AwsError {
        kind: ErrorKind::Invalid,
        service: "s3",
        operation,
        resource: bucket.to_owned(),
        code: None,
        message: format!("could not build the request: {err}"),
    }
}

/// Turns the error codes that mean "not configured" into `absent`; every other error stays.
fn or_absent<T>(result: AwsResult<T>, codes: &[&str], absent: T) -> AwsResult<T> {
    match result {
        Err(e) if e.code.as_deref().is_some_and(|code| codes.contains(&code)) => Ok(absent),
        other => other,
    }
}

/// One lakeops rule as an S3 rule covering the whole bucket.
fn to_sdk_rule(rule: &LifecycleRule) -> Result<sdk::LifecycleRule, BuildError> {
    let status = if rule.enabled { sdk::ExpirationStatus::Enabled } else { sdk::ExpirationStatus::Disabled };
    let mut builder = sdk::LifecycleRule::builder()
        .id(&rule.id)
        .filter(sdk::LifecycleRuleFilter::builder().prefix("").build())
        .status(status);
    if rule.noncurrent_version_expiration_days.is_some() || rule.newer_noncurrent_versions.is_some() {
        builder = builder.noncurrent_version_expiration(
            sdk::NoncurrentVersionExpiration::builder()
                .set_noncurrent_days(rule.noncurrent_version_expiration_days)
                .set_newer_noncurrent_versions(rule.newer_noncurrent_versions)
                .build(),
        );
    }
    if let Some(days) = rule.abort_incomplete_multipart_upload_days {
        builder = builder.abort_incomplete_multipart_upload(
            sdk::AbortIncompleteMultipartUpload::builder().days_after_initiation(days).build(),
        );
    }
    if let Some(days) = rule.intelligent_tiering_after_days {
        builder = builder.transitions(
            sdk::Transition::builder()
                .days(days)
                .storage_class(sdk::TransitionStorageClass::IntelligentTiering)
                .build(),
        );
    }
    builder.build()
}

/// An S3 rule as lakeops sees it. Rules of other shapes (expiration, other storage classes,
/// prefixes) keep their id and whatever maps, so the engine reports them as drift.
fn from_sdk_rule(rule: &sdk::LifecycleRule) -> LifecycleRule {
    let noncurrent = rule.noncurrent_version_expiration.as_ref();
    LifecycleRule {
        id: rule.id.clone().unwrap_or_default(),
        enabled: rule.status == sdk::ExpirationStatus::Enabled,
        noncurrent_version_expiration_days: noncurrent.and_then(|n| n.noncurrent_days),
        newer_noncurrent_versions: noncurrent.and_then(|n| n.newer_noncurrent_versions),
        abort_incomplete_multipart_upload_days: rule
            .abort_incomplete_multipart_upload
            .as_ref()
            .and_then(|a| a.days_after_initiation),
        intelligent_tiering_after_days: rule
            .transitions()
            .iter()
            .find(|t| t.storage_class == Some(sdk::TransitionStorageClass::IntelligentTiering))
            .and_then(|t| t.days),
    }
}

/// Object Lock default retention as lakeops sees it. A retention set in years is reported
/// in days (365 a year) so it shows up as a difference instead of vanishing.
fn from_sdk_retention(retention: &sdk::DefaultRetention) -> Option<DefaultRetention> {
    let days = retention.days.or_else(|| retention.years.map(|y| y.saturating_mul(365)))?;
    let mode = retention.mode.as_ref().map(|m| m.as_str().to_owned()).unwrap_or_default();
    Some(DefaultRetention { mode, days })
}

/// A notification entry as lakeops sees it; filter rule names are case-insensitive in S3.
fn notification_entry(
    target: NotificationTarget,
    id: Option<&str>,
    arn: &str,
    events: &[sdk::Event],
    filter: Option<&sdk::NotificationConfigurationFilter>,
) -> NotificationEntry {
    let rules = filter.and_then(|f| f.key()).map(|k| k.filter_rules()).unwrap_or_default();
    let rule = |name: &str| {
        rules
            .iter()
            .find(|r| r.name().is_some_and(|n| n.as_str().eq_ignore_ascii_case(name)))
            .and_then(|r| r.value().map(str::to_string))
    };
    NotificationEntry {
        target,
        id: id.unwrap_or_default().to_string(),
        arn: arn.to_string(),
        events: events.iter().map(|e| e.as_str().to_string()).collect(),
        prefix: rule("prefix"),
        suffix: rule("suffix"),
    }
}

fn notification_filter(e: &NotificationEntry) -> Option<sdk::NotificationConfigurationFilter> {
    let rules: Vec<sdk::FilterRule> =
        [(sdk::FilterRuleName::Prefix, &e.prefix), (sdk::FilterRuleName::Suffix, &e.suffix)]
            .into_iter()
            .filter_map(|(name, value)| value.as_ref().map(|v| sdk::FilterRule::builder().name(name).value(v).build()))
            .collect();
    (!rules.is_empty()).then(|| {
        sdk::NotificationConfigurationFilter::builder()
            .key(sdk::S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
            .build()
    })
}

/// One lakeops replication rule as an S3 rule.
fn to_sdk_replication_rule(rule: &ReplicationRule) -> Result<sdk::ReplicationRule, BuildError> {
    let status = if rule.enabled { sdk::ReplicationRuleStatus::Enabled } else { sdk::ReplicationRuleStatus::Disabled };
    let markers = if rule.delete_marker_replication {
        sdk::DeleteMarkerReplicationStatus::Enabled
    } else {
        sdk::DeleteMarkerReplicationStatus::Disabled
    };
    let mut destination = sdk::Destination::builder()
        .bucket(&rule.destination_bucket)
        .set_storage_class(rule.storage_class.as_deref().map(sdk::StorageClass::from))
        .set_encryption_configuration(
            rule.replica_kms_key_id
                .as_ref()
                .map(|k| sdk::EncryptionConfiguration::builder().replica_kms_key_id(k).build()),
        );
    if rule.replication_time_control {
        let minutes = || sdk::ReplicationTimeValue::builder().minutes(RTC_MINUTES).build();
        destination = destination
            .replication_time(
                sdk::ReplicationTime::builder().status(sdk::ReplicationTimeStatus::Enabled).time(minutes()).build()?,
            )
            .metrics(sdk::Metrics::builder().status(sdk::MetricsStatus::Enabled).event_threshold(minutes()).build()?);
    }
    let mut builder = sdk::ReplicationRule::builder()
        .id(&rule.id)
        .priority(rule.priority)
        .status(status)
        .filter(sdk::ReplicationRuleFilter::builder().prefix("").build())
        .delete_marker_replication(sdk::DeleteMarkerReplication::builder().status(markers).build())
        .destination(destination.build()?);
    if rule.sse_kms_encrypted_objects {
        builder = builder.source_selection_criteria(
            sdk::SourceSelectionCriteria::builder()
                .sse_kms_encrypted_objects(
                    sdk::SseKmsEncryptedObjects::builder()
                        .status(sdk::SseKmsEncryptedObjectsStatus::Enabled)
                        .build()?,
                )
                .build(),
        );
    }
    builder.build()
}

/// An S3 replication rule as lakeops sees it; what it does not model is left out.
fn from_sdk_replication_rule(rule: &sdk::ReplicationRule) -> ReplicationRule {
    let destination = rule.destination.as_ref();
    ReplicationRule {
        id: rule.id.clone().unwrap_or_default(),
        priority: rule.priority.unwrap_or_default(),
        enabled: rule.status == sdk::ReplicationRuleStatus::Enabled,
        destination_bucket: destination.map(|d| d.bucket.clone()).unwrap_or_default(),
        storage_class: destination.and_then(|d| d.storage_class.as_ref()).map(|c| c.as_str().to_owned()),
        replica_kms_key_id: destination
            .and_then(|d| d.encryption_configuration.as_ref())
            .and_then(|e| e.replica_kms_key_id.clone()),
        sse_kms_encrypted_objects: rule
            .source_selection_criteria
            .as_ref()
            .and_then(|c| c.sse_kms_encrypted_objects.as_ref())
            .is_some_and(|o| o.status == sdk::SseKmsEncryptedObjectsStatus::Enabled),
        delete_marker_replication: rule
            .delete_marker_replication
            .as_ref()
            .and_then(|d| d.status.as_ref())
            .is_some_and(|s| *s == sdk::DeleteMarkerReplicationStatus::Enabled),
        replication_time_control: destination
            .and_then(|d| d.replication_time.as_ref())
            .is_some_and(|t| t.status == sdk::ReplicationTimeStatus::Enabled),
    }
}

#[async_trait]
impl S3Api for SdkS3 {
    async fn get_bucket_tagging(&self, bucket: &str) -> AwsResult<BTreeMap<String, String>> {
        const OP: &str = "GetBucketTagging";
        let result = self
            .client
            .get_bucket_tagging()
            .bucket(bucket)
            .send()
            .await
            .map(|out| out.tag_set.into_iter().map(|t| (t.key, t.value)).collect())
            .map_err(|e| aws_error(OP, bucket, e));
        or_absent(result, NO_TAGS, BTreeMap::new())
    }

    async fn put_bucket_tagging(&self, bucket: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        const OP: &str = "PutBucketTagging";
        let tag_set = tags
            .iter()
            .map(|(key, value)| sdk::Tag::builder().key(key).value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| build_error(OP, bucket, e))?;
        let tagging =
            sdk::Tagging::builder().set_tag_set(Some(tag_set)).build().map_err(|e| build_error(OP, bucket, e))?;
        self.client
            .put_bucket_tagging()
            .bucket(bucket)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn create_bucket(&self, bucket: &str, region: &str, object_lock: bool) -> AwsResult<()> {
        const OP: &str = "CreateBucket";
        let mut request =
            self.client.create_bucket().bucket(bucket).object_ownership(sdk::ObjectOwnership::BucketOwnerEnforced);
        // us-east-1 is the default location; AWS rejects it as an explicit LocationConstraint.
        if region != "us-east-1" {
            request = request.create_bucket_configuration(
                sdk::CreateBucketConfiguration::builder()
                    .location_constraint(sdk::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        if object_lock {
            request = request.object_lock_enabled_for_bucket(true);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            // The typed variant covers errors built without metadata; the code covers the rest.
            Err(e) if e.as_service_error().is_some_and(CreateBucketError::is_bucket_already_owned_by_you) => Ok(()),
            Err(e) => or_absent(Err(aws_error(OP, bucket, e)), &["BucketAlreadyOwnedByYou"], ()),
        }
    }

    async fn get_bucket_encryption(&self, bucket: &str) -> AwsResult<Option<BucketEncryption>> {
        const OP: &str = "GetBucketEncryption";
        let result = self
            .client
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
            .map(|out| {
                let rule = out.server_side_encryption_configuration?.rules.into_iter().next()?;
                let default = rule.apply_server_side_encryption_by_default?;
                Some(BucketEncryption {
                    algorithm: default.sse_algorithm.as_str().to_owned(),
                    kms_key_id: default.kms_master_key_id,
                    bucket_key_enabled: rule.bucket_key_enabled.unwrap_or(false),
                })
            })
            .map_err(|e| aws_error(OP, bucket, e));
        or_absent(result, NO_ENCRYPTION, None)
    }

    async fn put_bucket_encryption(&self, bucket: &str, encryption: &BucketEncryption) -> AwsResult<()> {
        const OP: &str = "PutBucketEncryption";
        let default = sdk::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(sdk::ServerSideEncryption::from(encryption.algorithm.as_str()))
            .set_kms_master_key_id(encryption.kms_key_id.clone())
            .build()
            .map_err(|e| build_error(OP, bucket, e))?;
        let rule = sdk::ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default)
            .bucket_key_enabled(encryption.bucket_key_enabled)
            .build();
        let configuration = sdk::ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| build_error(OP, bucket, e))?;
        self.client
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(configuration)
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn get_public_access_block(&self, bucket: &str) -> AwsResult<Option<PublicAccessBlock>> {
        const OP: &str = "GetPublicAccessBlock";
        let result = self
            .client
            .get_public_access_block()
            .bucket(bucket)
            .send()
            .await
            .map(|out| {
                out.public_access_block_configuration.map(|c| PublicAccessBlock {
                    block_public_acls: c.block_public_acls.unwrap_or(false),
                    ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
                    block_public_policy: c.block_public_policy.unwrap_or(false),
                    restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
                })
            })
            .map_err(|e| aws_error(OP, bucket, e));
        or_absent(result, NO_PUBLIC_ACCESS_BLOCK, None)
    }

    async fn put_public_access_block(&self, bucket: &str, block: PublicAccessBlock) -> AwsResult<()> {
        const OP: &str = "PutPublicAccessBlock";
        let configuration = sdk::PublicAccessBlockConfiguration::builder()
            .block_public_acls(block.block_public_acls)
            .ignore_public_acls(block.ignore_public_acls)
            .block_public_policy(block.block_public_policy)
            .restrict_public_buckets(block.restrict_public_buckets)
            .build();
        self.client
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(configuration)
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn get_ownership_controls(&self, bucket: &str) -> AwsResult<Option<String>> {
        const OP: &str = "GetBucketOwnershipControls";
        let result = self
            .client
            .get_bucket_ownership_controls()
            .bucket(bucket)
            .send()
            .await
            .map(|out| {
                let rule = out.ownership_controls?.rules.into_iter().next()?;
                Some(rule.object_ownership.as_str().to_owned())
            })
            .map_err(|e| aws_error(OP, bucket, e));
        or_absent(result, NO_OWNERSHIP_CONTROLS, None)
    }

    async fn put_ownership_controls(&self, bucket: &str, object_ownership: &str) -> AwsResult<()> {
        const OP: &str = "PutBucketOwnershipControls";
        let rule = sdk::OwnershipControlsRule::builder()
            .object_ownership(sdk::ObjectOwnership::from(object_ownership))
            .build()
            .map_err(|e| build_error(OP, bucket, e))?;
        let controls = sdk::OwnershipControls::builder().rules(rule).build().map_err(|e| build_error(OP, bucket, e))?;
        self.client
            .put_bucket_ownership_controls()
            .bucket(bucket)
            .ownership_controls(controls)
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn get_versioning(&self, bucket: &str) -> AwsResult<Option<String>> {
        const OP: &str = "GetBucketVersioning";
        match self.client.get_bucket_versioning().bucket(bucket).send().await {
            Ok(out) => Ok(out.status.map(|s| s.as_str().to_owned())),
            Err(e) => match lenient_versioning_status(&e) {
                Some(status) => Ok(status),
                None => Err(aws_error(OP, bucket, e)),
            },
        }
    }

    async fn enable_versioning(&self, bucket: &str) -> AwsResult<()> {
        const OP: &str = "PutBucketVersioning";
        self.client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                sdk::VersioningConfiguration::builder().status(sdk::BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn get_bucket_policy(&self, bucket: &str) -> AwsResult<Option<String>> {
        const OP: &str = "GetBucketPolicy";
        let result = self
            .client
            .get_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .map(|out| out.policy)
            .map_err(|e| aws_error(OP, bucket, e));
        or_absent(result, NO_POLICY, None)
    }

    async fn put_bucket_policy(&self, bucket: &str, policy: &str) -> AwsResult<()> {
        const OP: &str = "PutBucketPolicy";
        self.client
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn get_bucket_logging(&self, bucket: &str) -> AwsResult<Option<Logging>> {
        const OP: &str = "GetBucketLogging";
        let out = self.client.get_bucket_logging().bucket(bucket).send().await.map_err(|e| aws_error(OP, bucket, e))?;
        Ok(out.logging_enabled.map(|l| Logging { target_bucket: l.target_bucket, target_prefix: l.target_prefix }))
    }

    async fn put_bucket_logging(&self, bucket: &str, logging: Option<&Logging>) -> AwsResult<()> {
        const OP: &str = "PutBucketLogging";
        let enabled = logging
            .map(|l| {
                sdk::LoggingEnabled::builder().target_bucket(&l.target_bucket).target_prefix(&l.target_prefix).build()
            })
            .transpose()
            .map_err(|e| build_error(OP, bucket, e))?;
        // An empty status (no LoggingEnabled) is how S3 turns logging off.
        let status = sdk::BucketLoggingStatus::builder().set_logging_enabled(enabled).build();
        self.client
            .put_bucket_logging()
            .bucket(bucket)
            .bucket_logging_status(status)
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn get_lifecycle(&self, bucket: &str) -> AwsResult<Option<Vec<LifecycleRule>>> {
        const OP: &str = "GetBucketLifecycleConfiguration";
        let result = self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
            .map(|out| Some(out.rules().iter().map(from_sdk_rule).collect()))
            .map_err(|e| aws_error(OP, bucket, e));
        or_absent(result, NO_LIFECYCLE, None)
    }

    async fn put_lifecycle(&self, bucket: &str, rules: &[LifecycleRule]) -> AwsResult<()> {
        const OP: &str = "PutBucketLifecycleConfiguration";
        let rules =
            rules.iter().map(to_sdk_rule).collect::<Result<Vec<_>, _>>().map_err(|e| build_error(OP, bucket, e))?;
        let configuration = sdk::BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| build_error(OP, bucket, e))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(configuration)
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn get_object_lock(&self, bucket: &str) -> AwsResult<(bool, Option<DefaultRetention>)> {
        const OP: &str = "GetObjectLockConfiguration";
        let result = self
            .client
            .get_object_lock_configuration()
            .bucket(bucket)
            .send()
            .await
            .map(|out| {
                let Some(configuration) = out.object_lock_configuration else {
                    return (false, None);
                };
                let enabled = configuration.object_lock_enabled == Some(sdk::ObjectLockEnabled::Enabled);
                let retention =
                    configuration.rule.and_then(|r| r.default_retention).and_then(|d| from_sdk_retention(&d));
                (enabled, retention)
            })
            .map_err(|e| aws_error(OP, bucket, e));
        or_absent(result, NO_OBJECT_LOCK, (false, None))
    }

    async fn put_object_lock_retention(&self, bucket: &str, retention: &DefaultRetention) -> AwsResult<()> {
        const OP: &str = "PutObjectLockConfiguration";
        let configuration = sdk::ObjectLockConfiguration::builder()
            .object_lock_enabled(sdk::ObjectLockEnabled::Enabled)
            .rule(
                sdk::ObjectLockRule::builder()
                    .default_retention(
                        sdk::DefaultRetention::builder()
                            .mode(sdk::ObjectLockRetentionMode::from(retention.mode.as_str()))
                            .days(retention.days)
                            .build(),
                    )
                    .build(),
            )
            .build();
        self.client
            .put_object_lock_configuration()
            .bucket(bucket)
            .object_lock_configuration(configuration)
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn get_notifications(&self, bucket: &str) -> AwsResult<Notifications> {
        const OP: &str = "GetBucketNotificationConfiguration";
        let out = self.client.get_bucket_notification_configuration().bucket(bucket).send().await;
        let out = match out {
            Ok(out) => out,
            Err(e) if empty_notification_answer(&e) => return Ok(Notifications::default()),
            Err(e) => return Err(aws_error(OP, bucket, e)),
        };
        let mut entries = Vec::new();
        for c in out.lambda_function_configurations() {
            entries.push(notification_entry(
                NotificationTarget::Lambda,
                c.id(),
                c.lambda_function_arn(),
                c.events(),
                c.filter(),
            ));
        }
        for c in out.queue_configurations() {
            entries.push(notification_entry(NotificationTarget::Queue, c.id(), c.queue_arn(), c.events(), c.filter()));
        }
        for c in out.topic_configurations() {
            entries.push(notification_entry(NotificationTarget::Topic, c.id(), c.topic_arn(), c.events(), c.filter()));
        }
        Ok(Notifications { entries, event_bridge: out.event_bridge_configuration.is_some() })
    }

    async fn put_notifications(&self, bucket: &str, notifications: &Notifications) -> AwsResult<()> {
        const OP: &str = "PutBucketNotificationConfiguration";
        let invalid = |e: BuildError| build_error(OP, bucket, e);
        let mut config = sdk::NotificationConfiguration::builder();
        for e in &notifications.entries {
            let events: Vec<sdk::Event> = e.events.iter().map(|ev| sdk::Event::from(ev.as_str())).collect();
            let filter = notification_filter(e);
            config = match e.target {
                NotificationTarget::Lambda => config.lambda_function_configurations(
                    sdk::LambdaFunctionConfiguration::builder()
                        .id(&e.id)
                        .lambda_function_arn(&e.arn)
                        .set_events(Some(events))
                        .set_filter(filter)
                        .build()
                        .map_err(invalid)?,
                ),
                NotificationTarget::Queue => config.queue_configurations(
                    sdk::QueueConfiguration::builder()
                        .id(&e.id)
                        .queue_arn(&e.arn)
                        .set_events(Some(events))
                        .set_filter(filter)
                        .build()
                        .map_err(invalid)?,
                ),
                NotificationTarget::Topic => config.topic_configurations(
                    sdk::TopicConfiguration::builder()
                        .id(&e.id)
                        .topic_arn(&e.arn)
                        .set_events(Some(events))
                        .set_filter(filter)
                        .build()
                        .map_err(invalid)?,
                ),
            };
        }
        if notifications.event_bridge {
            config = config.event_bridge_configuration(sdk::EventBridgeConfiguration::builder().build());
        }
        self.client
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(config.build())
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn head_object(&self, bucket: &str, key: &str) -> AwsResult<Option<ObjectVersion>> {
        const OP: &str = "HeadObject";
        match self.client.head_object().bucket(bucket).key(key).send().await {
            Ok(out) => Ok(Some(ObjectVersion { version_id: out.version_id, etag: out.e_tag })),
            Err(e) => match aws_error(OP, &format!("{bucket}/{key}"), e) {
                // HEAD answers carry no body: a 404 is the object (or the bucket) missing.
                err if err.is_not_found() => Ok(None),
                err => Err(err),
            },
        }
    }

    async fn count_object_versions(&self, bucket: &str, cap: usize) -> AwsResult<usize> {
        const OP: &str = "ListObjectVersions";
        let mut count = 0;
        let mut key_marker = None;
        let mut version_id_marker = None;
        while count < cap {
            let page_size = (cap - count).min(MAX_KEYS_PER_PAGE);
            let out = self
                .client
                .list_object_versions()
                .bucket(bucket)
                .max_keys(i32::try_from(page_size).unwrap_or(1000))
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_id_marker.take())
                .send()
                .await
                .map_err(|e| aws_error(OP, bucket, e))?;
            count += out.versions().len() + out.delete_markers().len();
            // A truncated page without a next marker cannot be continued; stop rather than loop.
            if !out.is_truncated.unwrap_or(false) || out.next_key_marker.is_none() {
                break;
            }
            key_marker = out.next_key_marker;
            version_id_marker = out.next_version_id_marker;
        }
        Ok(count.min(cap))
    }

    async fn delete_bucket(&self, bucket: &str) -> AwsResult<()> {
        const OP: &str = "DeleteBucket";
        self.client.delete_bucket().bucket(bucket).send().await.map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn get_bucket_replication(&self, bucket: &str) -> AwsResult<Option<ReplicationConfig>> {
        const OP: &str = "GetBucketReplication";
        let result = self
            .client
            .get_bucket_replication()
            .bucket(bucket)
            .send()
            .await
            .map(|out| {
                out.replication_configuration.map(|c| ReplicationConfig {
                    role: c.role.clone(),
                    rules: c.rules.iter().map(from_sdk_replication_rule).collect(),
                })
            })
            .map_err(|e| aws_error(OP, bucket, e));
        or_absent(result, NO_REPLICATION, None)
    }

    async fn put_bucket_replication(&self, bucket: &str, config: &ReplicationConfig) -> AwsResult<()> {
        const OP: &str = "PutBucketReplication";
        let rules = config
            .rules
            .iter()
            .map(to_sdk_replication_rule)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| build_error(OP, bucket, e))?;
        let configuration = sdk::ReplicationConfiguration::builder()
            .role(&config.role)
            .set_rules(Some(rules))
            .build()
            .map_err(|e| build_error(OP, bucket, e))?;
        self.client
            .put_bucket_replication()
            .bucket(bucket)
            .replication_configuration(configuration)
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }

    async fn delete_bucket_replication(&self, bucket: &str) -> AwsResult<()> {
        const OP: &str = "DeleteBucketReplication";
        let result = self
            .client
            .delete_bucket_replication()
            .bucket(bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_error(OP, bucket, e));
        or_absent(result, NO_REPLICATION, ())
    }

    async fn clear_object_lock_retention(&self, bucket: &str) -> AwsResult<()> {
        const OP: &str = "PutObjectLockConfiguration";
        let configuration =
            sdk::ObjectLockConfiguration::builder().object_lock_enabled(sdk::ObjectLockEnabled::Enabled).build();
        self.client
            .put_object_lock_configuration()
            .bucket(bucket)
            .object_lock_configuration(configuration)
            .send()
            .await
            .map_err(|e| aws_error(OP, bucket, e))?;
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::time::Duration;

    use aws_sdk_s3::Client;
    use aws_sdk_s3::config::retry::RetryConfig;

    use aws_sdk_s3::operation::get_bucket_lifecycle_configuration::GetBucketLifecycleConfigurationOutput;
    use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
    use aws_sdk_s3::types::error::BucketAlreadyOwnedByYou;
    use aws_smithy_mocks::{Rule, RuleMode, mock};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Retries keep the SDK's standard policy with a tiny backoff so retry tests stay fast.
    pub(in crate::aws::s3) fn mocked(mode: RuleMode, rules: &[&Rule]) -> SdkS3 {
        let config = crate::aws::mocked_config!(aws_sdk_s3, rules, mode)
            .retry_config(RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(1)))
            .build();
        SdkS3::new(Client::from_conf(config))
    }

    /// An S3 error response as AWS sends it: status and an XML `<Error>` body.
    fn s3_error(status: u16, code: &str, message: &str) -> HttpResponse {
        let body = format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>");
        HttpResponse::new(
            StatusCode::try_from(status).unwrap_or(StatusCode::try_from(500).expect("500 is valid")),
            SdkBody::from(body),
        )
    }

    fn full_rule() -> LifecycleRule {
        LifecycleRule {
            id: "lakeops-versions".into(),
            enabled: true,
            noncurrent_version_expiration_days: Some(30),
            newer_noncurrent_versions: Some(3),
            abort_incomplete_multipart_upload_days: Some(7),
            intelligent_tiering_after_days: Some(0),
        }
    }

    #[tokio::test]
    async fn missing_bucket_policy_reads_as_none() -> TestResult {
        let rule = mock!(Client::get_bucket_policy)
            .then_http_response(|| s3_error(404, "NoSuchBucketPolicy", "The bucket policy does not exist"));
        let s3 = mocked(RuleMode::Sequential, &[&rule]);
        assert_eq!(s3.get_bucket_policy("lake").await?, None);
        assert_eq!(rule.num_calls(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn missing_bucket_is_not_found_not_unconfigured() {
        let rule = mock!(Client::get_bucket_encryption)
            .then_http_response(|| s3_error(404, "NoSuchBucket", "The specified bucket does not exist"));
        let s3 = mocked(RuleMode::Sequential, &[&rule]);
        let err = s3.get_bucket_encryption("gone").await.expect_err("a missing bucket is an error");
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert_eq!(
            (err.operation, err.resource.as_str(), err.code.as_deref()),
            ("GetBucketEncryption", "gone", Some("NoSuchBucket"))
        );
        assert_eq!(err.message, "The specified bucket does not exist");
    }

    #[tokio::test]
    async fn unconfigured_settings_read_as_absent() -> TestResult {
        let rules = [
            mock!(Client::get_bucket_encryption)
                .then_http_response(|| s3_error(404, "ServerSideEncryptionConfigurationNotFoundError", "none")),
            mock!(Client::get_public_access_block)
                .then_http_response(|| s3_error(404, "NoSuchPublicAccessBlockConfiguration", "none")),
            mock!(Client::get_bucket_ownership_controls)
                .then_http_response(|| s3_error(404, "OwnershipControlsNotFoundError", "none")),
            mock!(Client::get_bucket_lifecycle_configuration)
                .then_http_response(|| s3_error(404, "NoSuchLifecycleConfiguration", "none")),
            mock!(Client::get_bucket_tagging).then_http_response(|| s3_error(404, "NoSuchTagSet", "none")),
            mock!(Client::get_object_lock_configuration)
                .then_http_response(|| s3_error(404, "ObjectLockConfigurationNotFoundError", "none")),
        ];
        let s3 = mocked(RuleMode::Sequential, &rules.iter().collect::<Vec<_>>());
        assert_eq!(s3.get_bucket_encryption("lake").await?, None);
        assert_eq!(s3.get_public_access_block("lake").await?, None);
        assert_eq!(s3.get_ownership_controls("lake").await?, None);
        assert_eq!(s3.get_lifecycle("lake").await?, None);
        assert_eq!(s3.get_bucket_tagging("lake").await?, BTreeMap::new());
        assert_eq!(s3.get_object_lock("lake").await?, (false, None));
        Ok(())
    }

    #[tokio::test]
    async fn creating_a_bucket_we_already_own_succeeds() -> TestResult {
        let rule = mock!(Client::create_bucket)
            .then_error(|| CreateBucketError::BucketAlreadyOwnedByYou(BucketAlreadyOwnedByYou::builder().build()));
        let as_response = mock!(Client::create_bucket)
            .then_http_response(|| s3_error(409, "BucketAlreadyOwnedByYou", "Your previous request succeeded"));
        let s3 = mocked(RuleMode::Sequential, &[&rule, &as_response]);
        s3.create_bucket("lake", "eu-west-1", true).await?;
        s3.create_bucket("lake", "eu-west-1", true).await?;
        assert_eq!((rule.num_calls(), as_response.num_calls()), (1, 1));
        Ok(())
    }

    #[tokio::test]
    async fn a_bucket_name_taken_elsewhere_is_a_conflict() {
        let rule = mock!(Client::create_bucket)
            .then_http_response(|| s3_error(409, "BucketAlreadyExists", "The requested bucket name is not available"));
        let s3 = mocked(RuleMode::Sequential, &[&rule]);
        let err = s3.create_bucket("taken", "eu-west-1", false).await.expect_err("taken name");
        assert_eq!(err.kind, ErrorKind::Conflict);
    }

    #[tokio::test]
    async fn create_bucket_sends_region_lock_and_ownership() -> TestResult {
        let eu = mock!(Client::create_bucket)
            .match_requests(|req| {
                req.create_bucket_configuration()
                    .and_then(|c| c.location_constraint())
                    .is_some_and(|l| l.as_str() == "eu-west-1")
                    && req.object_lock_enabled_for_bucket() == Some(true)
                    && req.object_ownership() == Some(&sdk::ObjectOwnership::BucketOwnerEnforced)
            })
            .then_output(|| aws_sdk_s3::operation::create_bucket::CreateBucketOutput::builder().build());
        let us = mock!(Client::create_bucket)
            .match_requests(|req| {
                req.create_bucket_configuration().is_none()
                    && req.object_lock_enabled_for_bucket().is_none()
                    && req.object_ownership() == Some(&sdk::ObjectOwnership::BucketOwnerEnforced)
            })
            .then_output(|| aws_sdk_s3::operation::create_bucket::CreateBucketOutput::builder().build());
        let s3 = mocked(RuleMode::Sequential, &[&eu, &us]);
        s3.create_bucket("lake", "eu-west-1", true).await?;
        s3.create_bucket("lake", "us-east-1", false).await?;
        assert_eq!((eu.num_calls(), us.num_calls()), (1, 1));
        Ok(())
    }

    #[tokio::test]
    async fn access_denied_is_classified_with_its_operation() {
        let rule =
            mock!(Client::put_bucket_policy).then_http_response(|| s3_error(403, "AccessDenied", "Access Denied"));
        let s3 = mocked(RuleMode::Sequential, &[&rule]);
        let err = s3.put_bucket_policy("lake", "{}").await.expect_err("denied");
        assert_eq!(err.kind, ErrorKind::AccessDenied);
        assert_eq!(err.to_string(), "s3:PutBucketPolicy on lake failed (AccessDenied): Access Denied");
        assert_eq!(rule.num_calls(), 1, "AccessDenied is not retried");
    }

    #[tokio::test]
    async fn slow_down_is_retried_by_the_sdk_then_reported_as_retryable() -> TestResult {
        let recovers = mock!(Client::get_bucket_versioning)
            .sequence()
            .http_response(|| s3_error(503, "SlowDown", "Please reduce your request rate."))
            .times(2)
            .output(|| {
                aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningOutput::builder()
                    .status(sdk::BucketVersioningStatus::Enabled)
                    .build()
            })
            .build();
        let s3 = mocked(RuleMode::Sequential, &[&recovers]);
        assert_eq!(s3.get_versioning("lake").await?.as_deref(), Some("Enabled"));
        assert_eq!(recovers.num_calls(), 3);

        let keeps_failing = mock!(Client::get_bucket_versioning)
            .sequence()
            .http_response(|| s3_error(503, "SlowDown", "Please reduce your request rate."))
            .repeatedly()
            .build();
        let s3 = mocked(RuleMode::Sequential, &[&keeps_failing]);
        let err = s3.get_versioning("lake").await.expect_err("retries exhausted");
        assert_eq!((err.kind, err.code.as_deref()), (ErrorKind::Retryable, Some("SlowDown")));
        Ok(())
    }

    #[tokio::test]
    async fn lifecycle_rules_are_read_field_by_field() -> TestResult {
        let rule = mock!(Client::get_bucket_lifecycle_configuration).then_output(|| {
            let full = to_sdk_rule(&full_rule()).expect("status is set");
            // A rule lakeops did not write: no id, only an expiration.
            let foreign = sdk::LifecycleRule::builder()
                .status(sdk::ExpirationStatus::Disabled)
                .expiration(sdk::LifecycleExpiration::builder().days(90).build())
                .build()
                .expect("status is set");
            GetBucketLifecycleConfigurationOutput::builder().rules(full).rules(foreign).build()
        });
        let s3 = mocked(RuleMode::Sequential, &[&rule]);
        let rules = s3.get_lifecycle("lake").await?.ok_or("no rules")?;
        assert_eq!(rules, vec![full_rule(), LifecycleRule { id: String::new(), enabled: false, ..Default::default() }]);
        Ok(())
    }

    #[tokio::test]
    async fn lifecycle_rules_are_written_for_the_whole_bucket() -> TestResult {
        let rule = mock!(Client::put_bucket_lifecycle_configuration)
            .match_requests(|req| {
                let Some([rule]) = req.lifecycle_configuration().map(|c| c.rules()) else {
                    return false;
                };
                let transition = rule.transitions().first();
                rule.id() == Some("lakeops-versions")
                    && rule.filter().and_then(|f| f.prefix()) == Some("")
                    && rule.status == sdk::ExpirationStatus::Enabled
                    && rule.noncurrent_version_expiration.as_ref().is_some_and(|n| {
                        n.noncurrent_days == Some(30) && n.newer_noncurrent_versions == Some(3)
                    })
                    && rule.abort_incomplete_multipart_upload.as_ref().and_then(|a| a.days_after_initiation)
                        == Some(7)
                    && transition.is_some_and(|t| {
                        t.days == Some(0) && t.storage_class == Some(sdk::TransitionStorageClass::IntelligentTiering)
                    })
            })
            .then_output(|| {
                aws_sdk_s3::operation::put_bucket_lifecycle_configuration::PutBucketLifecycleConfigurationOutput::builder()
                    .build()
            });
        let s3 = mocked(RuleMode::Sequential, &[&rule]);
        s3.put_lifecycle("lake", &[full_rule()]).await?;
        assert_eq!(rule.num_calls(), 1);
        Ok(())
    }

    #[test]
    fn a_minimal_lifecycle_rule_sends_only_what_is_set() -> TestResult {
        let rule = to_sdk_rule(&LifecycleRule { id: "min".into(), enabled: false, ..Default::default() })?;
        assert_eq!(rule.status, sdk::ExpirationStatus::Disabled);
        assert!(rule.noncurrent_version_expiration.is_none());
        assert!(rule.abort_incomplete_multipart_upload.is_none());
        assert!(rule.transitions().is_empty());
        Ok(())
    }

    #[test]
    fn retention_in_years_is_reported_in_days() {
        let years = sdk::DefaultRetention::builder().mode(sdk::ObjectLockRetentionMode::Compliance).years(2).build();
        assert_eq!(from_sdk_retention(&years), Some(DefaultRetention { mode: "COMPLIANCE".into(), days: 730 }));
        assert_eq!(from_sdk_retention(&sdk::DefaultRetention::builder().build()), None);
    }

    #[tokio::test]
    async fn counting_versions_follows_markers_and_stops_at_the_cap() -> TestResult {
        let version = |key: &str| sdk::ObjectVersion::builder().key(key).build();
        let marker = |key: &str| sdk::DeleteMarkerEntry::builder().key(key).build();
        let first = mock!(Client::list_object_versions)
            .match_requests(|req| req.key_marker().is_none() && req.max_keys() == Some(5))
            .then_output(move || {
                ListObjectVersionsOutput::builder()
                    .versions(version("a"))
                    .versions(version("b"))
                    .delete_markers(marker("c"))
                    .is_truncated(true)
                    .next_key_marker("c")
                    .next_version_id_marker("v3")
                    .build()
            });
        let second = mock!(Client::list_object_versions)
            .match_requests(|req| {
                req.key_marker() == Some("c") && req.version_id_marker() == Some("v3") && req.max_keys() == Some(2)
            })
            .then_output(move || {
                ListObjectVersionsOutput::builder()
                    .versions(version("d"))
                    .versions(version("e"))
                    .is_truncated(true)
                    .next_key_marker("e")
                    .build()
            });
        let s3 = mocked(RuleMode::Sequential, &[&first, &second]);
        assert_eq!(s3.count_object_versions("lake", 5).await?, 5);
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1), "stops once the cap is reached");

        let empty = mock!(Client::list_object_versions)
            .match_requests(|req| req.max_keys() == Some(1000))
            .then_output(|| ListObjectVersionsOutput::builder().is_truncated(false).build());
        let s3 = mocked(RuleMode::Sequential, &[&empty]);
        assert_eq!(s3.count_object_versions("lake", 10_000).await?, 0);
        Ok(())
    }

    #[tokio::test]
    async fn turning_logging_off_sends_an_empty_status() -> TestResult {
        let off = mock!(Client::put_bucket_logging)
            .match_requests(|req| req.bucket_logging_status().is_some_and(|s| s.logging_enabled().is_none()))
            .then_output(|| aws_sdk_s3::operation::put_bucket_logging::PutBucketLoggingOutput::builder().build());
        let s3 = mocked(RuleMode::Sequential, &[&off]);
        s3.put_bucket_logging("lake", None).await?;
        assert_eq!(off.num_calls(), 1);
        Ok(())
    }

    fn full_replication() -> ReplicationConfig {
        ReplicationConfig {
            role: "arn:aws:iam::123456789012:role/lakeops/r".into(),
            rules: vec![ReplicationRule {
                id: "lakeops-backup".into(),
                priority: 1,
                enabled: true,
                destination_bucket: "arn:aws:s3:::lake-raw-replica".into(),
                storage_class: Some("STANDARD_IA".into()),
                replica_kms_key_id: Some("arn:aws:kms:eu-central-1:123456789012:key/r".into()),
                sse_kms_encrypted_objects: true,
                delete_marker_replication: false,
                replication_time_control: true,
            }],
        }
    }

    #[tokio::test]
    async fn replication_is_written_with_kms_selection_replica_key_and_time_control() -> TestResult {
        let rule = mock!(Client::put_bucket_replication)
            .match_requests(|req| {
                let Some(c) = req.replication_configuration() else { return false };
                let [r] = c.rules() else { return false };
                let d = r.destination();
                c.role() == "arn:aws:iam::123456789012:role/lakeops/r"
                    && r.id() == Some("lakeops-backup")
                    && r.filter().and_then(|f| f.prefix()) == Some("")
                    && r.source_selection_criteria()
                        .and_then(|s| s.sse_kms_encrypted_objects())
                        .is_some_and(|o| o.status == sdk::SseKmsEncryptedObjectsStatus::Enabled)
                    && r.delete_marker_replication().and_then(|m| m.status())
                        == Some(&sdk::DeleteMarkerReplicationStatus::Disabled)
                    && d.is_some_and(|d| {
                        d.bucket() == "arn:aws:s3:::lake-raw-replica"
                            && d.storage_class() == Some(&sdk::StorageClass::StandardIa)
                            && d.encryption_configuration().and_then(|e| e.replica_kms_key_id())
                                == Some("arn:aws:kms:eu-central-1:123456789012:key/r")
                            && d.replication_time().and_then(|t| t.time()).and_then(|t| t.minutes()) == Some(15)
                            && d.metrics().is_some_and(|m| m.status == sdk::MetricsStatus::Enabled)
                    })
            })
            .then_output(|| {
                aws_sdk_s3::operation::put_bucket_replication::PutBucketReplicationOutput::builder().build()
            });
        let s3 = mocked(RuleMode::Sequential, &[&rule]);
        s3.put_bucket_replication("lake-raw", &full_replication()).await?;
        assert_eq!(rule.num_calls(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn replication_reads_back_what_was_written_and_absent_reads_as_none() -> TestResult {
        let written = full_replication();
        let sdk_rule = to_sdk_replication_rule(&written.rules[0])?;
        let found = mock!(Client::get_bucket_replication).then_output(move || {
            aws_sdk_s3::operation::get_bucket_replication::GetBucketReplicationOutput::builder()
                .replication_configuration(
                    sdk::ReplicationConfiguration::builder()
                        .role("arn:aws:iam::123456789012:role/lakeops/r")
                        .rules(sdk_rule.clone())
                        .build()
                        .expect("role is set"),
                )
                .build()
        });
        let none = mock!(Client::get_bucket_replication)
            .then_http_response(|| s3_error(404, "ReplicationConfigurationNotFoundError", "none"));
        let delete_none = mock!(Client::delete_bucket_replication)
            .then_http_response(|| s3_error(404, "ReplicationConfigurationNotFoundError", "none"));
        let s3 = mocked(RuleMode::Sequential, &[&found, &none, &delete_none]);
        assert_eq!(s3.get_bucket_replication("lake-raw").await?, Some(written));
        assert_eq!(s3.get_bucket_replication("lake-raw").await?, None);
        s3.delete_bucket_replication("lake-raw").await?;
        Ok(())
    }

    #[tokio::test]
    async fn clearing_retention_keeps_object_lock_enabled_without_a_rule() -> TestResult {
        let rule = mock!(Client::put_object_lock_configuration)
            .match_requests(|req| {
                req.object_lock_configuration().is_some_and(|c| {
                    c.object_lock_enabled() == Some(&sdk::ObjectLockEnabled::Enabled) && c.rule().is_none()
                })
            })
            .then_output(|| {
                aws_sdk_s3::operation::put_object_lock_configuration::PutObjectLockConfigurationOutput::builder()
                    .build()
            });
        let s3 = mocked(RuleMode::Sequential, &[&rule]);
        s3.clear_object_lock_retention("lake-raw").await?;
        assert_eq!(rule.num_calls(), 1);
        Ok(())
    }
}
