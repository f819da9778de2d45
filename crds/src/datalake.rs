//! The DataLake kind: storage zones, the lake key, the log bucket, catalog tables and the
//! audit trail.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{DeletionPolicy, HasConditions, default_true};
use crate::names::tag;
use crate::validation::{
    BUCKET_PREFIX_PATTERN, Findings, KMS_KEY_ARN_PATTERN, KMS_KEY_ARN_RE, MAX_BUCKET_PREFIX, MAX_ZONE_NAME,
    REGION_PATTERN, REPLICA_SUFFIX, TABLE_NAME_PATTERN, TABLE_NAME_RE, ZONE_NAME_PATTERN, ZONE_NAME_RE,
    check_bucket_name, check_region,
};

/// A secure-by-default AWS data lake: one S3 bucket per zone plus a log bucket, a
/// customer-managed KMS key, DynamoDB catalog tables and an optional CloudTrail trail.
// Several printer columns share `type_ = "string"`, which clippy takes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lakeops.dev",
    version = "v1alpha1",
    kind = "DataLake",
    namespaced,
    status = "DataLakeStatus",
    shortname = "dl",
    category = "lakeops",
    derive = "PartialEq",
    doc = "A secure-by-default AWS data lake managed by lakeops.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Region", type_ = "string", json_path = ".spec.region"),
    printcolumn(name = "Prefix", type_ = "string", json_path = ".status.bucketPrefix"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct DataLakeSpec {
    /// AWS region of every bucket, key and table of the lake, e.g. `eu-west-1`.
    #[schemars(regex(pattern = REGION_PATTERN))]
    pub region: String,

    /// Prefix of every bucket name: zones are `<prefix>-<zone>`, the log bucket
    /// `<prefix>-logs`. Defaults to `<namespace>-<name>`. Immutable: buckets cannot be renamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = BUCKET_PREFIX_PATTERN), length(min = 3, max = MAX_BUCKET_PREFIX))]
    pub bucket_prefix: Option<String>,

    /// Storage zones (for example raw, curated, analytics); one S3 bucket each.
    #[schemars(length(min = 1, max = 10))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub zones: Vec<Zone>,

    /// The customer-managed KMS key that encrypts buckets, tables, logs and the trail.
    #[serde(default)]
    pub encryption: Encryption,

    /// Enable S3 Object Lock on every bucket at creation (required for BackupPolicy
    /// retention). Immutable: S3 only allows it when a bucket is created.
    #[serde(default = "default_true")]
    pub object_lock: bool,

    /// Server access logging of every zone bucket into the log bucket.
    #[serde(default = "default_true")]
    pub access_logs: bool,

    /// Lifecycle rules applied to every zone unless the zone overrides them.
    #[serde(default)]
    pub lifecycle: Lifecycle,

    /// DynamoDB tables of the lake's catalog.
    #[serde(default)]
    pub catalog: Catalog,

    /// The lake's CloudTrail audit trail.
    #[serde(default)]
    pub audit: Audit,

    /// Account-level security the lake depends on.
    #[serde(default, skip_serializing_if = "LakeSecurity::is_default")]
    pub security: LakeSecurity,

    /// What happens to AWS resources when this DataLake is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Tags added to every AWS resource of the lake. Keys under `lakeops.dev/` and `aws:` are reserved.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 40))]
    pub tags: BTreeMap<String, String>,
}

/// One storage zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Zone {
    /// Zone name, a DNS label; the bucket is `<prefix>-<name>`. `logs` is reserved.
    #[schemars(regex(pattern = ZONE_NAME_PATTERN), length(min = 1, max = MAX_ZONE_NAME))]
    pub name: String,

    /// Lifecycle settings for this zone only; unset fields take the lake's `lifecycle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<LifecycleOverrides>,
}

/// The lake key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Encryption {
    /// ARN of an existing customer-managed key to use instead of one lakeops creates.
    /// lakeops never changes the policy or rotation of a key it did not create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = KMS_KEY_ARN_PATTERN))]
    pub key_arn: Option<String>,

    /// Automatic rotation period of the key lakeops creates, in days (90 to 2560).
    #[serde(default = "default_rotation_days")]
    #[schemars(range(min = 90, max = 2560))]
    pub key_rotation_days: i32,
}

impl Default for Encryption {
    fn default() -> Self {
        Self { key_arn: None, key_rotation_days: default_rotation_days() }
    }
}

fn default_rotation_days() -> i32 {
    365
}

/// Lifecycle rules of the zone buckets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// Days after which noncurrent object versions expire.
    #[serde(default = "default_noncurrent_days")]
    #[schemars(range(min = 1, max = 36500))]
    pub noncurrent_version_expiration_days: i32,

    /// Days after which incomplete multipart uploads are aborted.
    #[serde(default = "default_abort_days")]
    #[schemars(range(min = 1, max = 365))]
    pub abort_incomplete_multipart_upload_days: i32,

    /// Move current objects to S3 Intelligent-Tiering after this many days (0 = at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 36500))]
    pub intelligent_tiering_after_days: Option<i32>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            noncurrent_version_expiration_days: default_noncurrent_days(),
            abort_incomplete_multipart_upload_days: default_abort_days(),
            intelligent_tiering_after_days: None,
        }
    }
}

fn default_noncurrent_days() -> i32 {
    90
}

fn default_abort_days() -> i32 {
    7
}

/// Per-zone lifecycle overrides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleOverrides {
    /// Overrides `lifecycle.noncurrentVersionExpirationDays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 36500))]
    pub noncurrent_version_expiration_days: Option<i32>,

    /// Overrides `lifecycle.abortIncompleteMultipartUploadDays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 365))]
    pub abort_incomplete_multipart_upload_days: Option<i32>,

    /// Overrides `lifecycle.intelligentTieringAfterDays`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 36500))]
    pub intelligent_tiering_after_days: Option<i32>,
}

impl Lifecycle {
    /// The rules in force for one zone.
    pub fn for_zone(&self, zone: &Zone) -> Lifecycle {
        let o = zone.lifecycle.clone().unwrap_or_default();
        Lifecycle {
            noncurrent_version_expiration_days: o
                .noncurrent_version_expiration_days
                .unwrap_or(self.noncurrent_version_expiration_days),
            abort_incomplete_multipart_upload_days: o
                .abort_incomplete_multipart_upload_days
                .unwrap_or(self.abort_incomplete_multipart_upload_days),
            intelligent_tiering_after_days: o.intelligent_tiering_after_days.or(self.intelligent_tiering_after_days),
        }
    }
}

/// The lake's DynamoDB catalog.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// Catalog tables; each becomes the DynamoDB table `<prefix>-<name>`.
    #[serde(default)]
    #[schemars(length(max = 25))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub tables: Vec<CatalogTable>,
}

/// One DynamoDB table (on-demand, encrypted with the lake key, PITR and deletion protection on).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogTable {
    /// Table name within the lake; the DynamoDB table is `<prefix>-<name>`.
    #[schemars(regex(pattern = TABLE_NAME_PATTERN), length(min = 1, max = 200))]
    pub name: String,
    /// The partition (hash) key.
    pub partition_key: KeyAttribute,
    /// The optional sort (range) key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<KeyAttribute>,
    /// Attribute holding each item's expiry time (epoch seconds); enables DynamoDB TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub ttl_attribute: Option<String>,
}

/// A key attribute of a table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyAttribute {
    /// Attribute name.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// Attribute type: S (string), N (number) or B (binary). Quote it (`"N"`): YAML 1.1
    /// parsers such as kubectl's read a bare N as the boolean false.
    #[serde(rename = "type")]
    pub type_: KeyType,
}

/// DynamoDB scalar key types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum KeyType {
    S,
    N,
    B,
}

/// The audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    /// Create a multi-region CloudTrail trail, encrypted with the lake key, with log-file
    /// validation and data events (S3 objects of the lake's buckets, Lambda invocations of
    /// the namespace's functions), delivering to the audit bucket and to an encrypted
    /// CloudWatch Logs group.
    #[serde(default)]
    pub trail: bool,
    /// Record management events in the lake trail too. Unset: unless a Ready
    /// SecurityBaseline covers the lake's region with an account trail that records them
    /// (every further copy of management events is billed per event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management_events: Option<bool>,
    /// Retention of the trail's CloudWatch Logs group, in days (a CloudWatch value).
    #[serde(default = "default_audit_log_retention")]
    #[schemars(extend("enum" = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]))]
    pub log_retention_days: i32,
    /// Object Lock default retention of the audit bucket, in days. COMPLIANCE retention is
    /// never shortened.
    #[serde(default = "default_audit_log_retention")]
    #[schemars(range(min = 1, max = 36500))]
    pub retention_days: i32,
    /// Object Lock mode of the audit bucket's default retention.
    #[serde(default = "default_audit_mode")]
    pub mode: crate::backuppolicy::RetentionMode,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            trail: false,
            management_events: None,
            log_retention_days: default_audit_log_retention(),
            retention_days: default_audit_log_retention(),
            mode: default_audit_mode(),
        }
    }
}

fn default_audit_log_retention() -> i32 {
    365
}

fn default_audit_mode() -> crate::backuppolicy::RetentionMode {
    crate::backuppolicy::RetentionMode::Governance
}

/// What lakeops observed and created.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataLakeStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The bucket prefix in force (recorded so it cannot change later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_prefix: Option<String>,
    /// Whether the buckets were created with Object Lock (recorded so it cannot change later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<bool>,
    /// Creation tokens of non-idempotent creates, recorded before the create (purpose ->
    /// token); the resource carries the token as a tag, so a create whose answer was lost
    /// is found instead of repeated.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub creation_tokens: std::collections::BTreeMap<String, String>,
    /// ARN of the lake key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// Name of the log bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bucket: Option<String>,
    /// Name of the audit bucket (the trail's log files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_bucket: Option<String>,
    /// One entry per zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZoneStatus>,
    /// One entry per catalog table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableStatus>,
    /// ARN of the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_arn: Option<String>,
    /// ARN of the trail's CloudWatch Logs group (`...:*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_log_group_arn: Option<String>,
    /// ARN of the role CloudTrail delivers to that group with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_logs_role_arn: Option<String>,
    /// Protections of the security baseline this spec turns off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled_protections: Vec<String>,
    /// The last `lakeops.dev/reconcile-requested-at` annotation value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// A zone's bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZoneStatus {
    /// Zone name.
    pub name: String,
    /// Bucket name.
    pub bucket: String,
    /// Bucket ARN.
    pub arn: String,
}

/// A catalog table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableStatus {
    /// Name in the spec.
    pub name: String,
    /// DynamoDB table name.
    pub table_name: String,
    /// Table ARN, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

impl HasConditions for DataLakeStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn observed_generation(&self) -> Option<i64> {
        self.observed_generation
    }
}

/// Zone names that would collide with buckets lakeops names itself.
const RESERVED_ZONE_NAMES: [&str; 2] = ["logs", "audit"];

impl DataLake {
    /// The bucket prefix in force: the spec's, else `<namespace>-<name>`.
    pub fn bucket_prefix(&self) -> String {
        self.spec
            .bucket_prefix
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.namespace().unwrap_or_default(), self.name_any()))
    }

    /// Bucket name of a zone.
    pub fn zone_bucket(&self, zone: &str) -> String {
        format!("{}-{zone}", self.bucket_prefix())
    }

    /// Name of the log bucket.
    pub fn log_bucket(&self) -> String {
        format!("{}-logs", self.bucket_prefix())
    }

    /// Name of the audit bucket (the trail's log files).
    pub fn audit_bucket(&self) -> String {
        format!("{}-audit", self.bucket_prefix())
    }

    /// DynamoDB name of a catalog table.
    pub fn table_name(&self, table: &str) -> String {
        format!("{}-{table}", self.bucket_prefix())
    }

    /// Alias of the key lakeops creates for this lake.
    pub fn key_alias(&self) -> String {
        format!("alias/lakeops/{}/{}", self.namespace().unwrap_or_default(), self.name_any())
    }

    /// Every rule the schema cannot express, plus the security baseline's warnings.
    pub fn validate(&self) -> Findings {
        let mut f = Findings::default();
        let spec = &self.spec;
        check_region(&mut f, "spec.region", &spec.region);

        let prefix = self.bucket_prefix();
        let prefix_path = if spec.bucket_prefix.is_some() { "spec.bucketPrefix" } else { "metadata.name" };
        if prefix.len() > MAX_BUCKET_PREFIX {
            f.error(
                prefix_path,
                format!(
                    "bucket prefix {prefix:?} is {} characters; at most {MAX_BUCKET_PREFIX} leave room for `-<zone>{REPLICA_SUFFIX}` within S3's 63; set spec.bucketPrefix",
                    prefix.len()
                ),
            );
        } else {
            check_bucket_name(&mut f, prefix_path, &format!("{prefix}-logs"));
        }

        if spec.zones.is_empty() {
            f.error("spec.zones", "at least one zone is required");
        }
        if spec.zones.len() > 10 {
            f.error("spec.zones", format!("at most 10 zones are allowed (got {})", spec.zones.len()));
        }
        let mut seen = BTreeSet::new();
        for (i, zone) in spec.zones.iter().enumerate() {
            let path = format!("spec.zones[{i}].name");
            if !ZONE_NAME_RE.is_match(&zone.name) || zone.name.len() > MAX_ZONE_NAME {
                f.error(
                    &path,
                    format!("{:?} must be a DNS label of at most {MAX_ZONE_NAME} characters (lowercase letters, digits, hyphens)", zone.name),
                );
            }
            if RESERVED_ZONE_NAMES.contains(&zone.name.as_str()) || zone.name.ends_with(REPLICA_SUFFIX) {
                f.error(
                    &path,
                    format!("{:?} is reserved: it would collide with the log or replica buckets", zone.name),
                );
            }
            if !seen.insert(zone.name.as_str()) {
                f.error(&path, format!("duplicate zone name {:?}", zone.name));
            }
        }

        if let Some(arn) = &spec.encryption.key_arn {
            if !KMS_KEY_ARN_RE.is_match(arn) {
                f.error(
                    "spec.encryption.keyArn",
                    format!("{arn:?} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"),
                );
            } else if arn.split(':').nth(3) != Some(spec.region.as_str()) {
                f.error("spec.encryption.keyArn", format!("the key must be in the lake's region {}", spec.region));
            }
        }
        if !(90..=2560).contains(&spec.encryption.key_rotation_days) {
            f.error("spec.encryption.keyRotationDays", "must be between 90 and 2560 days (KMS limits)");
        }

        let audit = &spec.audit;
        if !crate::etlfunction::LOG_RETENTION_DAYS.contains(&audit.log_retention_days) {
            f.error(
                "spec.audit.logRetentionDays",
                format!(
                    "{} is not a CloudWatch Logs retention value ({:?})",
                    audit.log_retention_days,
                    crate::etlfunction::LOG_RETENTION_DAYS
                ),
            );
        }
        if !(1..=36500).contains(&audit.retention_days) {
            f.error("spec.audit.retentionDays", "must be between 1 and 36500 days");
        }

        let lc = &spec.lifecycle;
        check_lifecycle(
            &mut f,
            "spec.lifecycle",
            lc.noncurrent_version_expiration_days,
            lc.abort_incomplete_multipart_upload_days,
        );
        for (i, zone) in spec.zones.iter().enumerate() {
            if zone.lifecycle.is_some() {
                let eff = lc.for_zone(zone);
                check_lifecycle(
                    &mut f,
                    &format!("spec.zones[{i}].lifecycle"),
                    eff.noncurrent_version_expiration_days,
                    eff.abort_incomplete_multipart_upload_days,
                );
            }
        }

        let mut tables = BTreeSet::new();
        for (i, t) in spec.catalog.tables.iter().enumerate() {
            let path = format!("spec.catalog.tables[{i}]");
            if !TABLE_NAME_RE.is_match(&t.name) {
                f.error(
                    format!("{path}.name"),
                    format!("{:?} may contain only letters, digits, '_', '-' and '.'", t.name),
                );
            }
            let full = self.table_name(&t.name);
            if full.len() > 255 {
                f.error(format!("{path}.name"), format!("DynamoDB table name {full:?} exceeds 255 characters"));
            }
            if !tables.insert(t.name.as_str()) {
                f.error(format!("{path}.name"), format!("duplicate table name {:?}", t.name));
            }
            if let Some(sk) = &t.sort_key
                && sk.name == t.partition_key.name
            {
                f.error(format!("{path}.sortKey.name"), "must differ from partitionKey.name");
            }
            if let Some(ttl) = &t.ttl_attribute
                && (ttl == &t.partition_key.name || t.sort_key.as_ref().is_some_and(|k| &k.name == ttl))
            {
                f.error(format!("{path}.ttlAttribute"), "must not be a key attribute (TTL needs a number attribute)");
            }
        }

        for key in spec.tags.keys() {
            if key.starts_with(tag::RESERVED_PREFIX) || key.to_ascii_lowercase().starts_with("aws:") {
                f.error(format!("spec.tags.{key}"), "keys under lakeops.dev/ and aws: are reserved");
            }
            if key.is_empty() || key.len() > 128 {
                f.error(format!("spec.tags.{key}"), "tag keys must be 1 to 128 characters");
            }
        }
        for (key, value) in &spec.tags {
            if value.len() > 256 {
                f.error(format!("spec.tags.{key}"), "tag values must be at most 256 characters");
            }
        }

        for (path, what) in self.disabled_protections() {
            f.warning(path, what);
        }
        f
    }

    /// Protections of the security baseline that this spec explicitly turns off, as
    /// `(field path, what is lost)`.
    pub fn disabled_protections(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if !self.spec.object_lock {
            out.push(("spec.objectLock", "Object Lock is off: retention (S3.15) can never be added to these buckets"));
        }
        if !self.spec.access_logs {
            out.push(("spec.accessLogs", "server access logging is off (S3.9)"));
        }
        out
    }

    /// Rules about changing a lake that exists: the prefix and Object Lock are fixed at
    /// creation. `status` holds what was recorded then.
    pub fn validate_update(&self, status: &DataLakeStatus) -> Findings {
        let mut f = Findings::default();
        if let Some(recorded) = &status.bucket_prefix
            && recorded != &self.bucket_prefix()
        {
            f.error(
                "spec.bucketPrefix",
                format!(
                    "is immutable: the buckets exist as {recorded:?}-*; restore the old value or create a new DataLake"
                ),
            );
        }
        if let Some(recorded) = status.object_lock
            && recorded != self.spec.object_lock
        {
            f.error(
                "spec.objectLock",
                format!("is immutable: S3 sets Object Lock only when a bucket is created (was {recorded}); create a new DataLake to change it"),
            );
        }
        f
    }
}

fn check_lifecycle(f: &mut Findings, path: &str, noncurrent: i32, abort: i32) {
    if !(1..=36500).contains(&noncurrent) {
        f.error(format!("{path}.noncurrentVersionExpirationDays"), "must be between 1 and 36500");
    }
    if !(1..=365).contains(&abort) {
        f.error(format!("{path}.abortIncompleteMultipartUploadDays"), "must be between 1 and 365");
    }
}

/// Account-level security a lake depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LakeSecurity {
    /// Wait (`BaselineNotReady`) until a Ready SecurityBaseline covers the lake's account and
    /// region before creating anything. Default false, so existing lakes keep working.
    #[serde(default)]
    pub require_baseline: bool,
}

impl LakeSecurity {
    /// True when nothing is asked (kept out of serialized manifests).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}
