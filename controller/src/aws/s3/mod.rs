//! The S3 operations lakeops uses, behind a narrow trait so the engine never sees SDK types.
//!
//! The domain types and [`S3Api`] live here; `sdk` implements the trait over the AWS SDK and
//! `quirks` reads the answers of emulators that deviate from S3's wire format.
use std::collections::BTreeMap;

use async_trait::async_trait;

use super::error::AwsResult;

mod quirks;
mod sdk;

pub use sdk::SdkS3;

/// Default encryption of a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketEncryption {
    /// `aws:kms`, `aws:kms:dsse` or `AES256`.
    pub algorithm: String,
    /// The KMS key (ARN or id) for `aws:kms`.
    pub kms_key_id: Option<String>,
    /// S3 Bucket Keys.
    pub bucket_key_enabled: bool,
}

/// The four Block Public Access flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four on.
    pub const ALL: Self = Self {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };
}

/// Server access logging target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logging {
    pub target_bucket: String,
    pub target_prefix: String,
}

/// One lifecycle rule, applying to the whole bucket (empty filter).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: String,
    pub enabled: bool,
    /// Expire noncurrent versions after this many days.
    pub noncurrent_version_expiration_days: Option<i32>,
    /// Keep this many newest noncurrent versions regardless of age.
    pub newer_noncurrent_versions: Option<i32>,
    /// Abort incomplete multipart uploads after this many days.
    pub abort_incomplete_multipart_upload_days: Option<i32>,
    /// Transition current versions to INTELLIGENT_TIERING after this many days.
    pub intelligent_tiering_after_days: Option<i32>,
}

/// Object Lock default retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultRetention {
    /// `GOVERNANCE` or `COMPLIANCE`.
    pub mode: String,
    pub days: i32,
}

/// The kind of destination an S3 event notification goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotificationTarget {
    Lambda,
    Queue,
    Topic,
}

/// One entry of a bucket's notification configuration, whoever owns it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NotificationEntry {
    pub target: NotificationTarget,
    pub id: String,
    /// The function, queue or topic ARN.
    pub arn: String,
    /// e.g. `s3:ObjectCreated:*`.
    pub events: Vec<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

/// A bucket's whole notification configuration: one document shared by every writer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notifications {
    pub entries: Vec<NotificationEntry>,
    /// Whether events also go to EventBridge.
    pub event_bridge: bool,
}

/// Which version of an object HeadObject found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectVersion {
    /// `None` in a bucket without versioning.
    pub version_id: Option<String>,
    pub etag: Option<String>,
}

/// One replication rule covering the whole bucket (empty prefix filter, V2 schema).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicationRule {
    pub id: String,
    pub priority: i32,
    pub enabled: bool,
    /// ARN of the destination bucket.
    pub destination_bucket: String,
    /// Storage class of the replicas (`STANDARD`, `STANDARD_IA`, ...); `None`: the source's.
    pub storage_class: Option<String>,
    /// The KMS key replicas are encrypted with.
    pub replica_kms_key_id: Option<String>,
    /// `SourceSelectionCriteria.SseKmsEncryptedObjects` Enabled: replicate SSE-KMS objects
    /// (S3 skips them otherwise).
    pub sse_kms_encrypted_objects: bool,
    pub delete_marker_replication: bool,
    /// Replication Time Control (15 minutes) with replication metrics (15-minute threshold).
    pub replication_time_control: bool,
}

/// A bucket's replication configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// ARN of the role S3 assumes to replicate.
    pub role: String,
    pub rules: Vec<ReplicationRule>,
}

/// The S3 calls lakeops makes. Every method is one AWS request unless it says otherwise.
/// Reads return `Ok(None)` when the bucket has no such configuration, and an error of kind
/// `NotFound` when the bucket itself does not exist.
#[async_trait]
pub trait S3Api: Send + Sync {
    /// GetBucketTagging. `Ok(Some(empty))` when the bucket has no tags.
    async fn get_bucket_tagging(&self, bucket: &str) -> AwsResult<BTreeMap<String, String>>;
    /// PutBucketTagging (replaces the whole tag set).
    async fn put_bucket_tagging(&self, bucket: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
    /// CreateBucket in `region` (no LocationConstraint for us-east-1), with Object Lock
    /// enabled when asked and ObjectOwnership BucketOwnerEnforced. `BucketAlreadyOwnedByYou`
    /// is success; `BucketAlreadyExists` is an error of kind `Conflict`.
    async fn create_bucket(&self, bucket: &str, region: &str, object_lock: bool) -> AwsResult<()>;
    /// GetBucketEncryption. `None` when the bucket has no default encryption configured.
    async fn get_bucket_encryption(&self, bucket: &str) -> AwsResult<Option<BucketEncryption>>;
    /// PutBucketEncryption with one rule.
    async fn put_bucket_encryption(&self, bucket: &str, encryption: &BucketEncryption) -> AwsResult<()>;
    /// GetPublicAccessBlock. `None` when not configured.
    async fn get_public_access_block(&self, bucket: &str) -> AwsResult<Option<PublicAccessBlock>>;
    /// PutPublicAccessBlock.
    async fn put_public_access_block(&self, bucket: &str, block: PublicAccessBlock) -> AwsResult<()>;
    /// GetBucketOwnershipControls: the ObjectOwnership of the first rule. `None` when not configured.
    async fn get_ownership_controls(&self, bucket: &str) -> AwsResult<Option<String>>;
    /// PutBucketOwnershipControls with one rule.
    async fn put_ownership_controls(&self, bucket: &str, object_ownership: &str) -> AwsResult<()>;
    /// GetBucketVersioning: `Enabled`, `Suspended`, or `None` when never enabled.
    async fn get_versioning(&self, bucket: &str) -> AwsResult<Option<String>>;
    /// PutBucketVersioning Status=Enabled.
    async fn enable_versioning(&self, bucket: &str) -> AwsResult<()>;
    /// GetBucketPolicy: the policy JSON. `None` when the bucket has no policy.
    async fn get_bucket_policy(&self, bucket: &str) -> AwsResult<Option<String>>;
    /// PutBucketPolicy.
    async fn put_bucket_policy(&self, bucket: &str, policy: &str) -> AwsResult<()>;
    /// GetBucketLogging. `None` when logging is off.
    async fn get_bucket_logging(&self, bucket: &str) -> AwsResult<Option<Logging>>;
    /// PutBucketLogging; `None` turns logging off.
    async fn put_bucket_logging(&self, bucket: &str, logging: Option<&Logging>) -> AwsResult<()>;
    /// GetBucketLifecycleConfiguration. `None` when the bucket has none.
    async fn get_lifecycle(&self, bucket: &str) -> AwsResult<Option<Vec<LifecycleRule>>>;
    /// PutBucketLifecycleConfiguration (replaces every rule).
    async fn put_lifecycle(&self, bucket: &str, rules: &[LifecycleRule]) -> AwsResult<()>;
    /// GetObjectLockConfiguration: (enabled, default retention). `(false, None)` when the
    /// bucket has no Object Lock configuration.
    async fn get_object_lock(&self, bucket: &str) -> AwsResult<(bool, Option<DefaultRetention>)>;
    /// PutObjectLockConfiguration with ObjectLockEnabled=Enabled and the default retention.
    async fn put_object_lock_retention(&self, bucket: &str, retention: &DefaultRetention) -> AwsResult<()>;
    /// GetBucketNotificationConfiguration: every entry, whoever wrote it.
    async fn get_notifications(&self, bucket: &str) -> AwsResult<Notifications>;
    /// PutBucketNotificationConfiguration (replaces the whole document).
    async fn put_notifications(&self, bucket: &str, notifications: &Notifications) -> AwsResult<()>;
    /// HeadObject: the current version of an object. `Ok(None)` when there is no such object.
    async fn head_object(&self, bucket: &str, key: &str) -> AwsResult<Option<ObjectVersion>>;
    /// How many object versions and delete markers the bucket holds, counting at most
    /// `cap` (ListObjectVersions, paging until `cap` is reached). 0 means empty.
    async fn count_object_versions(&self, bucket: &str, cap: usize) -> AwsResult<usize>;
    /// DeleteBucket (fails unless empty).
    async fn delete_bucket(&self, bucket: &str) -> AwsResult<()>;

    // Backup (BackupPolicy): replication and removing a default retention.
    /// GetBucketReplication. `None` when the bucket has no replication configuration.
    async fn get_bucket_replication(&self, bucket: &str) -> AwsResult<Option<ReplicationConfig>>;
    /// PutBucketReplication (replaces the whole configuration).
    async fn put_bucket_replication(&self, bucket: &str, config: &ReplicationConfig) -> AwsResult<()>;
    /// DeleteBucketReplication. A bucket without one is success.
    async fn delete_bucket_replication(&self, bucket: &str) -> AwsResult<()>;
    /// PutObjectLockConfiguration with Object Lock enabled and no default retention rule
    /// (versions already locked stay locked; only new versions are affected).
    async fn clear_object_lock_retention(&self, bucket: &str) -> AwsResult<()>;
}
