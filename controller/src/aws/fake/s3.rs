//! S3 in the fake account: buckets with their settings, object versions, global names.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Fail, FakeAws, ReadCtx, WriteCtx, check_json, fail, none_if_missing};
use crate::aws::error::AwsResult;
use crate::aws::s3::{
    BucketEncryption, DefaultRetention, LifecycleRule, Logging, NotificationTarget, Notifications, ObjectVersion,
    PublicAccessBlock, ReplicationConfig, S3Api,
};

const SERVICE: &str = "s3";
const ENABLED: &str = "Enabled";

/// A bucket and every setting the adapter reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub name: String,
    pub region: String,
    /// The owning account; another account's bucket is refused.
    pub account: String,
    pub tags: BTreeMap<String, String>,
    pub encryption: Option<BucketEncryption>,
    pub public_access_block: Option<PublicAccessBlock>,
    pub ownership: Option<String>,
    /// `Enabled`, `Suspended`, or `None` when never enabled.
    pub versioning: Option<String>,
    pub object_lock: bool,
    pub retention: Option<DefaultRetention>,
    pub policy: Option<String>,
    pub logging: Option<Logging>,
    pub lifecycle: Option<Vec<LifecycleRule>>,
    pub replication: Option<ReplicationConfig>,
    pub notifications: Notifications,
    /// Object key to its versions, oldest first (delete markers included, as versions
    /// without an ETag).
    pub objects: BTreeMap<String, Vec<ObjectVersion>>,
}

impl Bucket {
    /// A bucket as CreateBucket leaves it (ObjectOwnership BucketOwnerEnforced, as the
    /// adapter asks, and AWS's defaults: Block Public Access on, SSE-S3).
    pub fn new(name: &str, region: &str, account: &str, object_lock: bool) -> Self {
        Self {
            name: name.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            tags: BTreeMap::new(),
            encryption: Some(BucketEncryption {
                algorithm: "AES256".to_string(),
                kms_key_id: None,
                bucket_key_enabled: false,
            }),
            public_access_block: Some(PublicAccessBlock::ALL),
            ownership: Some("BucketOwnerEnforced".to_string()),
            versioning: object_lock.then(|| ENABLED.to_string()),
            object_lock,
            retention: None,
            policy: None,
            logging: None,
            lifecycle: None,
            replication: None,
            notifications: Notifications::default(),
            objects: BTreeMap::new(),
        }
    }

    /// How many object versions and delete markers it holds.
    pub fn version_count(&self) -> usize {
        self.objects.values().map(Vec::len).sum()
    }

    fn versioned(&self) -> bool {
        self.versioning.as_deref() == Some(ENABLED)
    }
}

/// [`S3Api`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeS3 {
    aws: Arc<FakeAws>,
    region: String,
}

impl FakeS3 {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }

    /// Who may see `bucket` from this client: missing, another account's, another region's.
    fn reachable(&self, account: &str, bucket: Option<&Bucket>, name: &str) -> Result<(), Fail> {
        match bucket {
            None => Err(fail("NoSuchBucket", 404, format!("The specified bucket does not exist: {name}"))),
            Some(b) if b.account != account => Err(fail("AccessDenied", 403, "Access Denied")),
            Some(b) if b.region != self.region => Err(fail(
                "PermanentRedirect",
                301,
                format!("The bucket {name} is in {}; send requests to that endpoint", b.region),
            )),
            Some(_) => Ok(()),
        }
    }

    fn get<T>(&self, op: &'static str, bucket: &str, read: impl FnOnce(&Bucket) -> Result<T, Fail>) -> AwsResult<T> {
        self.aws.read(&self.region, SERVICE, op, bucket, |ctx: &ReadCtx<'_>| {
            let found = ctx.res.buckets.get(bucket);
            self.reachable(ctx.account, found, bucket)?;
            found.map_or_else(|| Err(fail("NoSuchBucket", 404, bucket)), read)
        })
    }

    fn put<T>(
        &self,
        op: &'static str,
        bucket: &str,
        change: impl FnOnce(&mut Bucket, &mut WriteCtx<'_>) -> Result<T, Fail>,
    ) -> AwsResult<T> {
        self.aws.write(&self.region, SERVICE, op, bucket, |ctx: &mut WriteCtx<'_>| {
            self.reachable(ctx.account, ctx.res.buckets.get(bucket), bucket)?;
            let mut b = ctx.res.buckets.remove(bucket).ok_or_else(|| fail("NoSuchBucket", 404, bucket))?;
            let out = change(&mut b, ctx);
            ctx.res.buckets.insert(bucket.to_string(), b);
            out
        })
    }
}

/// A Lambda target must allow S3 to invoke it for this bucket, or S3 refuses the document.
fn check_lambda_targets(ctx: &WriteCtx<'_>, bucket: &str, n: &Notifications) -> Result<(), Fail> {
    let source = format!("arn:aws:s3:::{bucket}");
    for e in n.entries.iter().filter(|e| e.target == NotificationTarget::Lambda) {
        let allowed = ctx.res.functions.values().any(|f| {
            f.arn == e.arn && f.permissions.iter().any(|p| p.principal == "s3.amazonaws.com" && p.source_arn == source)
        });
        if !allowed {
            return Err(fail(
                "InvalidArgument",
                400,
                format!("Unable to validate the following destination configurations: {}", e.arn),
            ));
        }
    }
    Ok(())
}

/// S3 bucket ARN to name.
fn bucket_of(arn: &str) -> &str {
    arn.strip_prefix("arn:aws:s3:::").unwrap_or(arn)
}

#[async_trait]
impl S3Api for FakeS3 {
    async fn get_bucket_tagging(&self, bucket: &str) -> AwsResult<BTreeMap<String, String>> {
        self.get("GetBucketTagging", bucket, |b| Ok(b.tags.clone()))
    }

    async fn put_bucket_tagging(&self, bucket: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.put("PutBucketTagging", bucket, |b, _| {
            b.tags = tags.clone();
            Ok(())
        })
    }

    async fn create_bucket(&self, bucket: &str, region: &str, object_lock: bool) -> AwsResult<()> {
        let result = self.aws.write(&self.region, SERVICE, "CreateBucket", bucket, |ctx: &mut WriteCtx<'_>| {
            match ctx.res.buckets.get(bucket) {
                Some(b) if b.account == ctx.account => {
                    return Err(fail("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket succeeded and you already own it."));
                }
                Some(_) => {
                    return Err(fail("BucketAlreadyExists", 409, "The requested bucket name is not available."));
                }
                None => {}
            }
            if region != self.region {
                return Err(fail(
                    "IllegalLocationConstraintException",
                    400,
                    format!("The {region} location constraint is incompatible for the region specific endpoint this request was sent to."),
                ));
            }
            ctx.res.buckets.insert(bucket.to_string(), Bucket::new(bucket, region, ctx.account, object_lock));
            Ok(())
        });
        match result {
            // As the adapter: our own bucket already there is success.
            Err(e) if e.code.as_deref() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            other => other,
        }
    }

    async fn get_bucket_encryption(&self, bucket: &str) -> AwsResult<Option<BucketEncryption>> {
        self.get("GetBucketEncryption", bucket, |b| Ok(b.encryption.clone()))
    }

    async fn put_bucket_encryption(&self, bucket: &str, encryption: &BucketEncryption) -> AwsResult<()> {
        self.put("PutBucketEncryption", bucket, |b, _| {
            if !["AES256", "aws:kms", "aws:kms:dsse"].contains(&encryption.algorithm.as_str()) {
                return Err(fail("MalformedXML", 400, "The XML you provided was not well-formed"));
            }
            b.encryption = Some(encryption.clone());
            Ok(())
        })
    }

    async fn get_public_access_block(&self, bucket: &str) -> AwsResult<Option<PublicAccessBlock>> {
        self.get("GetPublicAccessBlock", bucket, |b| Ok(b.public_access_block))
    }

    async fn put_public_access_block(&self, bucket: &str, block: PublicAccessBlock) -> AwsResult<()> {
        self.put("PutPublicAccessBlock", bucket, |b, _| {
            b.public_access_block = Some(block);
            Ok(())
        })
    }

    async fn get_ownership_controls(&self, bucket: &str) -> AwsResult<Option<String>> {
        self.get("GetBucketOwnershipControls", bucket, |b| Ok(b.ownership.clone()))
    }

    async fn put_ownership_controls(&self, bucket: &str, object_ownership: &str) -> AwsResult<()> {
        self.put("PutBucketOwnershipControls", bucket, |b, _| {
            if !["BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"].contains(&object_ownership) {
                return Err(fail("MalformedXML", 400, "The XML you provided was not well-formed"));
            }
            b.ownership = Some(object_ownership.to_string());
            Ok(())
        })
    }

    async fn get_versioning(&self, bucket: &str) -> AwsResult<Option<String>> {
        self.get("GetBucketVersioning", bucket, |b| Ok(b.versioning.clone()))
    }

    async fn enable_versioning(&self, bucket: &str) -> AwsResult<()> {
        self.put("PutBucketVersioning", bucket, |b, _| {
            b.versioning = Some(ENABLED.to_string());
            Ok(())
        })
    }

    async fn get_bucket_policy(&self, bucket: &str) -> AwsResult<Option<String>> {
        self.get("GetBucketPolicy", bucket, |b| Ok(b.policy.clone()))
    }

    async fn put_bucket_policy(&self, bucket: &str, policy: &str) -> AwsResult<()> {
        self.put("PutBucketPolicy", bucket, |b, _| {
            check_json(policy, "MalformedPolicy")?;
            b.policy = Some(policy.to_string());
            Ok(())
        })
    }

    async fn get_bucket_logging(&self, bucket: &str) -> AwsResult<Option<Logging>> {
        self.get("GetBucketLogging", bucket, |b| Ok(b.logging.clone()))
    }

    async fn put_bucket_logging(&self, bucket: &str, logging: Option<&Logging>) -> AwsResult<()> {
        self.put("PutBucketLogging", bucket, |b, ctx| {
            if let Some(l) = logging {
                let target = ctx.res.buckets.get(&l.target_bucket).or((l.target_bucket == b.name).then_some(&*b));
                if !target.is_some_and(|t| t.account == b.account && t.region == b.region) {
                    return Err(fail(
                        "InvalidTargetBucketForLogging",
                        400,
                        format!("The target bucket for logging does not exist: {}", l.target_bucket),
                    ));
                }
            }
            b.logging = logging.cloned();
            Ok(())
        })
    }

    async fn get_lifecycle(&self, bucket: &str) -> AwsResult<Option<Vec<LifecycleRule>>> {
        self.get("GetBucketLifecycleConfiguration", bucket, |b| Ok(b.lifecycle.clone()))
    }

    async fn put_lifecycle(&self, bucket: &str, rules: &[LifecycleRule]) -> AwsResult<()> {
        self.put("PutBucketLifecycleConfiguration", bucket, |b, _| {
            if rules.is_empty() {
                return Err(fail("MalformedXML", 400, "The XML you provided was not well-formed"));
            }
            b.lifecycle = Some(rules.to_vec());
            Ok(())
        })
    }

    async fn get_object_lock(&self, bucket: &str) -> AwsResult<(bool, Option<DefaultRetention>)> {
        self.get("GetObjectLockConfiguration", bucket, |b| Ok((b.object_lock, b.retention.clone())))
    }

    async fn put_object_lock_retention(&self, bucket: &str, retention: &DefaultRetention) -> AwsResult<()> {
        self.put("PutObjectLockConfiguration", bucket, |b, _| {
            lockable(b)?;
            if !["GOVERNANCE", "COMPLIANCE"].contains(&retention.mode.as_str()) || retention.days <= 0 {
                return Err(fail("MalformedXML", 400, "The XML you provided was not well-formed"));
            }
            b.object_lock = true;
            b.retention = Some(retention.clone());
            Ok(())
        })
    }

    async fn get_notifications(&self, bucket: &str) -> AwsResult<Notifications> {
        self.get("GetBucketNotificationConfiguration", bucket, |b| Ok(b.notifications.clone()))
    }

    async fn put_notifications(&self, bucket: &str, notifications: &Notifications) -> AwsResult<()> {
        self.put("PutBucketNotificationConfiguration", bucket, |b, ctx| {
            check_lambda_targets(ctx, bucket, notifications)?;
            b.notifications = notifications.clone();
            Ok(())
        })
    }

    async fn head_object(&self, bucket: &str, key: &str) -> AwsResult<Option<ObjectVersion>> {
        let result = self.aws.read(&self.region, SERVICE, "HeadObject", &format!("{bucket}/{key}"), |ctx| {
            let found = ctx.res.buckets.get(bucket);
            self.reachable(ctx.account, found, bucket)?;
            let current = found.and_then(|b| b.objects.get(key)).and_then(|v| v.last());
            // A delete marker (no ETag) as the current version: HEAD answers 404.
            current.filter(|v| v.etag.is_some()).cloned().ok_or_else(|| fail("NotFound", 404, ""))
        });
        // As the adapter: HEAD answers carry no body, a 404 is "no such object".
        none_if_missing(result)
    }

    async fn count_object_versions(&self, bucket: &str, cap: usize) -> AwsResult<usize> {
        // One ListObjectVersions per page of 1,000, as the adapter pages.
        const PAGE: usize = 1000;
        if cap == 0 {
            return Ok(0);
        }
        let mut counted = 0;
        loop {
            let total = self.get("ListObjectVersions", bucket, |b| Ok(b.version_count()))?;
            counted = (counted + PAGE.min(cap - counted)).min(total);
            if counted >= total || counted >= cap {
                return Ok(counted.min(cap));
            }
        }
    }

    async fn delete_bucket(&self, bucket: &str) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "DeleteBucket", bucket, |ctx| {
            let found = ctx.res.buckets.get(bucket);
            self.reachable(ctx.account, found, bucket)?;
            if found.is_some_and(|b| b.version_count() > 0) {
                return Err(fail("BucketNotEmpty", 409, "The bucket you tried to delete is not empty"));
            }
            ctx.res.buckets.remove(bucket);
            Ok(())
        })
    }

    async fn get_bucket_replication(&self, bucket: &str) -> AwsResult<Option<ReplicationConfig>> {
        self.get("GetBucketReplication", bucket, |b| Ok(b.replication.clone()))
    }

    async fn put_bucket_replication(&self, bucket: &str, config: &ReplicationConfig) -> AwsResult<()> {
        self.put("PutBucketReplication", bucket, |b, ctx| {
            if !b.versioned() {
                return Err(fail(
                    "InvalidRequest",
                    400,
                    "Versioning must be 'Enabled' on the bucket to apply a replication configuration",
                ));
            }
            for rule in &config.rules {
                let name = bucket_of(&rule.destination_bucket);
                match ctx.res.buckets.get(name) {
                    None => return Err(fail("InvalidRequest", 400, format!("Destination bucket must exist: {name}"))),
                    Some(d) if !d.versioned() => {
                        return Err(fail(
                            "InvalidRequest",
                            400,
                            format!("Destination bucket must have versioning enabled: {name}"),
                        ));
                    }
                    Some(_) => {}
                }
            }
            b.replication = Some(config.clone());
            Ok(())
        })
    }

    async fn delete_bucket_replication(&self, bucket: &str) -> AwsResult<()> {
        self.put("DeleteBucketReplication", bucket, |b, _| {
            b.replication = None;
            Ok(())
        })
    }

    async fn clear_object_lock_retention(&self, bucket: &str) -> AwsResult<()> {
        self.put("PutObjectLockConfiguration", bucket, |b, _| {
            lockable(b)?;
            b.object_lock = true;
            b.retention = None;
            Ok(())
        })
    }
}

/// Object Lock can be turned on for a bucket only once versioning is Enabled.
fn lockable(b: &Bucket) -> Result<(), Fail> {
    if b.object_lock || b.versioned() {
        Ok(())
    } else {
        Err(fail(
            "InvalidBucketState",
            409,
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
        ))
    }
}

// ----- helpers for tests' starting states -----

impl ObjectVersion {
    /// A stored version with this id and an ETag derived from it.
    pub fn new(version_id: &str) -> Self {
        Self { version_id: Some(version_id.to_string()), etag: Some(format!("\"{version_id}\"")) }
    }
}

impl FakeAws {
    /// A bucket of this account in `region` as CreateBucket leaves it, with `tags`.
    pub fn with_bucket(&self, region: &str, name: &str, object_lock: bool, tags: &BTreeMap<String, String>) {
        let mut bucket = Bucket::new(name, region, &self.account, object_lock);
        bucket.tags = tags.clone();
        self.edit(|r| r.buckets.insert(name.to_string(), bucket));
    }

    /// A bucket that another account owns: CreateBucket answers `BucketAlreadyExists`,
    /// everything else `AccessDenied`.
    pub fn with_foreign_bucket(&self, region: &str, name: &str) {
        let bucket = Bucket::new(name, region, "999999999999", false);
        self.edit(|r| r.buckets.insert(name.to_string(), bucket));
    }

    /// Changes one bucket; `None` when there is no such bucket.
    pub fn edit_bucket<R>(&self, name: &str, change: impl FnOnce(&mut Bucket) -> R) -> Option<R> {
        self.edit(|r| r.buckets.get_mut(name).map(change))
    }

    /// A copy of one bucket as it is now.
    pub fn bucket(&self, name: &str) -> Option<Bucket> {
        self.world().now.buckets.get(name).cloned()
    }

    /// Puts a new version of an object (a version id when the bucket is versioned, as S3
    /// gives one). Returns the version, or `None` when there is no such bucket.
    pub fn put_object(&self, bucket: &str, key: &str) -> Option<ObjectVersion> {
        let n = self.next_id();
        self.edit_bucket(bucket, |b| {
            let version = ObjectVersion {
                version_id: b.versioned().then(|| format!("v{n:08}")),
                etag: Some(format!("\"{n:032x}\"")),
            };
            let versions = b.objects.entry(key.to_string()).or_default();
            if version.version_id.is_none() {
                versions.clear();
            }
            versions.push(version.clone());
            version
        })
    }
}
