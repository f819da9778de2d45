//! The BackupPolicy kind: retention, replication and table replicas for one DataLake.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{DataLakeRef, HasConditions, default_true};
use crate::validation::{Findings, REGION_PATTERN, check_region};

/// Object Lock retention, cross-region replication and DynamoDB replicas for a DataLake,
/// with guards against weakening any of it.
// Several printer columns share `type_ = "string"`, which clippy takes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lakeops.dev",
    version = "v1alpha1",
    kind = "BackupPolicy",
    namespaced,
    status = "BackupPolicyStatus",
    shortname = "bkp",
    category = "lakeops",
    derive = "PartialEq",
    doc = "Backup and retention of a DataLake, guarded against weakening.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Lake", type_ = "string", json_path = ".spec.dataLakeRef.name"),
    printcolumn(name = "Backup-Region", type_ = "string", json_path = ".spec.replication.region"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicySpec {
    /// The DataLake this policy protects (one policy per lake).
    pub data_lake_ref: DataLakeRef,
    /// Object Lock default retention on every zone bucket (the lake needs `objectLock: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Cross-region replication of every zone bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<Replication>,
    /// Point-in-time recovery and replicas of the catalog tables.
    #[serde(default)]
    pub tables: TablesBackup,
    /// Noncurrent object versions kept in the zone buckets before they expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_version_retention: Option<NoncurrentVersionRetention>,
    /// Must be true in the same manifest for any change that weakens protection
    /// (shorter retention, dropping replication or replicas, turning off PITR, deleting
    /// this policy). COMPLIANCE retention can never be shortened, whatever this says.
    #[serde(default)]
    pub allow_protection_downgrade: bool,
}

/// Object Lock default retention.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// GOVERNANCE (privileged users can bypass) or COMPLIANCE (nobody can, not even root).
    pub mode: RetentionMode,
    /// Days each new object version is locked.
    #[schemars(range(min = 1, max = 36500))]
    pub days: i32,
}

/// Object Lock retention modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RetentionMode {
    Governance,
    Compliance,
}

impl RetentionMode {
    /// The identifier S3 uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionMode::Governance => "GOVERNANCE",
            RetentionMode::Compliance => "COMPLIANCE",
        }
    }
}

/// Cross-region replication.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replication {
    /// Backup region; replica buckets `<prefix>-<zone>-replica` and a replica key live there.
    #[schemars(regex(pattern = REGION_PATTERN))]
    pub region: String,
    /// Replicate delete markers too (off: a delete in the lake does not hide the replica).
    #[serde(default)]
    pub replicate_delete_markers: bool,
    /// Storage class of the replicas.
    #[serde(default)]
    pub storage_class: StorageClass,
    /// S3 Replication Time Control (15-minute SLA) with replication metrics.
    #[serde(default)]
    pub replication_time_control: bool,
}

/// S3 storage classes valid for replicas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    #[default]
    Standard,
    StandardIa,
    OnezoneIa,
    IntelligentTiering,
    GlacierIr,
    Glacier,
    DeepArchive,
}

/// Catalog table protection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TablesBackup {
    /// Point-in-time recovery on every catalog table.
    #[serde(default = "default_true")]
    pub point_in_time_recovery: bool,
    /// Regions that hold a global-table replica of every catalog table.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10), extend("x-kubernetes-list-type" = "set"))]
    pub replica_regions: Vec<String>,
    /// AWS Backup of every catalog table (DynamoDB.4), kept longer than PITR's 35 days: a
    /// vault encrypted with the lake key, a backup plan and a selection of the tables by
    /// ARN; under COMPLIANCE retention the vaults are locked with the same minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<CatalogBackup>,
}

impl Default for TablesBackup {
    fn default() -> Self {
        Self { point_in_time_recovery: true, replica_regions: Vec::new(), backup: None }
    }
}

/// The AWS Backup plan of the catalog tables.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogBackup {
    /// When backups start: an AWS Backup cron expression in UTC, six fields, at most hourly.
    #[serde(default = "default_backup_schedule")]
    pub schedule: String,
    /// Days each recovery point is kept in the lake's region.
    #[schemars(range(min = 1, max = 36500))]
    pub retention_days: i32,
    /// A copy of every recovery point in another region's vault, encrypted with this
    /// policy's replica key there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<BackupCopy>,
}

/// Where recovery points are copied, and for how long they are kept there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupCopy {
    /// Region of the copy vault (usually `spec.replication.region`).
    #[schemars(regex(pattern = REGION_PATTERN))]
    pub region: String,
    /// Days each copy is kept.
    #[schemars(range(min = 1, max = 36500))]
    pub retention_days: i32,
}

/// Every day at 05:00 UTC, AWS Backup's own default.
pub const DEFAULT_BACKUP_SCHEDULE: &str = "cron(0 5 ? * * *)";

fn default_backup_schedule() -> String {
    DEFAULT_BACKUP_SCHEDULE.to_string()
}

/// Why `expr` is not a schedule AWS Backup takes (`cron(` six fields `)`, a fixed minute so
/// it runs at most hourly), or `None`.
pub fn backup_schedule_error(expr: &str) -> Option<String> {
    let example = "such as cron(0 5 ? * * *) (minutes hours day-of-month month day-of-week year, UTC)";
    let Some(fields) = expr.strip_prefix("cron(").and_then(|e| e.strip_suffix(')')) else {
        return Some(format!("{expr:?} is not an AWS Backup cron expression {example}"));
    };
    let fields: Vec<&str> = fields.split_whitespace().collect();
    if fields.len() != 6 {
        return Some(format!("{expr:?} has {} fields; AWS Backup takes six, {example}", fields.len()));
    }
    if !fields[0].parse::<u8>().is_ok_and(|m| m < 60) {
        return Some(format!(
            "{expr:?}: the minutes field must be one minute 0-59; AWS Backup runs a plan at most once an hour"
        ));
    }
    None
}

/// Noncurrent-version retention.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NoncurrentVersionRetention {
    /// Days a noncurrent version is kept before it expires.
    #[schemars(range(min = 1, max = 36500))]
    pub days: i32,
    /// Keep at least this many noncurrent versions regardless of age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub newer_noncurrent_versions: Option<i32>,
}

/// What lakeops observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupPolicyStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The protection last applied, the baseline that later changes are compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<BackupPolicySpec>,
    /// Replication state per zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZoneReplicationStatus>,
    /// Replicas per table, as AWS reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableReplicaStatus>,
    /// The last `lakeops.dev/reconcile-requested-at` annotation value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// The IAM role S3 assumes to replicate the zone buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_role_arn: Option<String>,
    /// The log bucket in the backup region, which the replica buckets log into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bucket: Option<String>,
    /// Keys lakeops created in the backup regions, recorded as soon as they exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["region"]))]
    pub replica_keys: Vec<ReplicaKeyStatus>,
    /// Creation tokens of non-idempotent creates, recorded before the create (purpose ->
    /// token); the resource carries the token as a tag, so a create whose answer was lost
    /// is found instead of repeated.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub creation_tokens: std::collections::BTreeMap<String, String>,
    /// The catalog tables' AWS Backup: vaults, plan and selection as AWS named them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<CatalogBackupStatus>,
}

/// What lakeops made in AWS Backup for the catalog tables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogBackupStatus {
    /// The vault in the lake's region (encrypted with the lake key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_arn: Option<String>,
    /// The copy vault (encrypted with the replica key of its region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_vault_arn: Option<String>,
    /// The backup plan's id (plan names are not unique in AWS Backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    /// The backup plan's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_arn: Option<String>,
    /// The selection of the catalog tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection_id: Option<String>,
    /// The role AWS Backup assumes to back up and restore the tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The vaults' lock minimum in days, as AWS reports it (COMPLIANCE retention only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_lock_days: Option<i64>,
}

/// A replica key in one backup region.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaKeyStatus {
    /// Backup region of the key.
    pub region: String,
    /// ARN of the key.
    pub key_arn: String,
}

impl BackupPolicyStatus {
    /// The replica key recorded for `region`.
    pub fn replica_key(&self, region: &str) -> Option<&str> {
        self.replica_keys.iter().find(|k| k.region == region).map(|k| k.key_arn.as_str())
    }
}

/// Replication of one zone.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZoneReplicationStatus {
    /// Zone name.
    pub name: String,
    /// Replica bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_bucket: Option<String>,
    /// Replication rule state as S3 reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<String>,
    /// Digest of the replication configuration lakeops wrote together with how S3 read it
    /// back: a later read equal to that echo means nobody changed it since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
}

/// Replicas of one table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableReplicaStatus {
    /// DynamoDB table name.
    pub table_name: String,
    /// Regions whose replica AWS reports ACTIVE.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active_replicas: Vec<String>,
    /// Whether point-in-time recovery is on.
    #[serde(default)]
    pub point_in_time_recovery: bool,
    /// Replicas lakeops asked for that AWS does not report at all yet (not even CREATING).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested_replicas: Vec<String>,
}

impl HasConditions for BackupPolicyStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn observed_generation(&self) -> Option<i64> {
        self.observed_generation
    }
}

impl BackupPolicy {
    /// Every rule the schema cannot express, on this object alone.
    pub fn validate(&self) -> Findings {
        let mut f = Findings::default();
        let s = &self.spec;
        if s.data_lake_ref.name.is_empty() {
            f.error("spec.dataLakeRef.name", "must name a DataLake in this namespace");
        }
        if let Some(r) = &s.retention
            && !(1..=36500).contains(&r.days)
        {
            f.error("spec.retention.days", "must be between 1 and 36500");
        }
        if let Some(r) = &s.replication {
            check_region(&mut f, "spec.replication.region", &r.region);
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, region) in s.tables.replica_regions.iter().enumerate() {
            let path = format!("spec.tables.replicaRegions[{i}]");
            check_region(&mut f, &path, region);
            if !seen.insert(region) {
                f.error(&path, format!("duplicate region {region:?}"));
            }
        }
        if let Some(n) = &s.noncurrent_version_retention
            && !(1..=36500).contains(&n.days)
        {
            f.error("spec.noncurrentVersionRetention.days", "must be between 1 and 36500");
        }
        if let Some(b) = &s.tables.backup {
            self.validate_backup(&mut f, b);
        }
        if !s.tables.point_in_time_recovery {
            f.warning("spec.tables.pointInTimeRecovery", "point-in-time recovery is off (DynamoDB.2)");
        }
        if s.replication.is_none() {
            f.warning("spec.replication", "no cross-region replication (S3.7)");
        }
        f
    }

    fn validate_backup(&self, f: &mut Findings, b: &CatalogBackup) {
        if let Some(message) = backup_schedule_error(&b.schedule) {
            f.error("spec.tables.backup.schedule", message);
        }
        if !(1..=36500).contains(&b.retention_days) {
            f.error("spec.tables.backup.retentionDays", "must be between 1 and 36500");
        }
        if b.copy.is_none() {
            f.warning(
                "spec.tables.backup.copy",
                "the backups stay in the lake's region: a regional outage takes them too",
            );
        }
        if let Some(c) = &b.copy {
            check_region(f, "spec.tables.backup.copy.region", &c.region);
            if !(1..=36500).contains(&c.retention_days) {
                f.error("spec.tables.backup.copy.retentionDays", "must be between 1 and 36500");
            }
        }
        // A compliance vault lock refuses recovery points kept less than its minimum: the
        // backups (and copies) would fail, so they must be kept at least as long.
        if let Some(r) = self.spec.retention.as_ref().filter(|r| r.mode == RetentionMode::Compliance) {
            if b.retention_days < r.days {
                f.error(
                    "spec.tables.backup.retentionDays",
                    format!(
                        "{} days is less than the COMPLIANCE retention of {} days, which the vault lock enforces as its minimum; AWS Backup would refuse every backup",
                        b.retention_days, r.days
                    ),
                );
            }
            if let Some(c) = b.copy.as_ref().filter(|c| c.retention_days < r.days) {
                f.error(
                    "spec.tables.backup.copy.retentionDays",
                    format!(
                        "{} days is less than the COMPLIANCE retention of {} days, which the copy vault's lock enforces as its minimum; every copy would fail",
                        c.retention_days, r.days
                    ),
                );
            }
        }
    }

    /// The vault lock's minimum retention: the policy's COMPLIANCE retention, `None` otherwise.
    pub fn vault_lock_days(spec: &BackupPolicySpec) -> Option<i32> {
        spec.tables.backup.as_ref()?;
        spec.retention.as_ref().filter(|r| r.mode == RetentionMode::Compliance).map(|r| r.days)
    }

    /// Changes from `old` to this spec that weaken protection, each as
    /// `(field path, message with old and new values)`. COMPLIANCE shortening is reported by
    /// [`BackupPolicy::forbidden_changes`] instead, since no flag can allow it.
    pub fn downgrades_from(&self, old: &BackupPolicySpec) -> Vec<(String, String)> {
        let new = &self.spec;
        let mut out = Vec::new();
        match (&old.retention, &new.retention) {
            (Some(o), None) => out.push((
                "spec.retention".into(),
                format!("retention removed (was {} {} days)", o.mode.as_str(), o.days),
            )),
            (Some(o), Some(n)) => {
                if n.days < o.days {
                    out.push((
                        "spec.retention.days".into(),
                        format!("retention shortened from {} to {} days", o.days, n.days),
                    ));
                }
                if o.mode == RetentionMode::Compliance && n.mode == RetentionMode::Governance {
                    out.push((
                        "spec.retention.mode".into(),
                        "retention mode relaxed from COMPLIANCE to GOVERNANCE".into(),
                    ));
                }
            }
            _ => {}
        }
        match (&old.replication, &new.replication) {
            (Some(o), None) => out.push(("spec.replication".into(), format!("replication to {} removed", o.region))),
            (Some(o), Some(n)) if o.region != n.region => out.push((
                "spec.replication.region".into(),
                format!("replication moved from {} to {} (the old replicas stop receiving data)", o.region, n.region),
            )),
            _ => {}
        }
        for region in &old.tables.replica_regions {
            if !new.tables.replica_regions.contains(region) {
                out.push(("spec.tables.replicaRegions".into(), format!("table replica region {region} removed")));
            }
        }
        out.extend(backup_downgrades(old, new));
        if old.tables.point_in_time_recovery && !new.tables.point_in_time_recovery {
            out.push(("spec.tables.pointInTimeRecovery".into(), "point-in-time recovery turned off (was on)".into()));
        }
        match (&old.noncurrent_version_retention, &new.noncurrent_version_retention) {
            (Some(o), Some(n)) if n.days < o.days => out.push((
                "spec.noncurrentVersionRetention.days".into(),
                format!("noncurrent-version retention shortened from {} to {} days", o.days, n.days),
            )),
            (Some(o), None) => out.push((
                "spec.noncurrentVersionRetention".into(),
                format!("noncurrent-version retention removed (was {} days)", o.days),
            )),
            _ => {}
        }
        out
    }

    /// Changes S3 itself forbids, which no flag can allow: COMPLIANCE retention shortened,
    /// relaxed or removed.
    pub fn forbidden_changes(&self, old: &BackupPolicySpec) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(o) = &old.retention
            && o.mode == RetentionMode::Compliance
        {
            let msg = "COMPLIANCE retention can never be shortened or relaxed, not even with allowProtectionDowngrade: S3 forbids it for locked versions";
            match &self.spec.retention {
                None => {
                    out.push(("spec.retention".into(), format!("{msg} (was COMPLIANCE {} days, now removed)", o.days)))
                }
                Some(n) if n.days < o.days || n.mode != RetentionMode::Compliance => out.push((
                    "spec.retention".into(),
                    format!("{msg} (was COMPLIANCE {} days, now {} {} days)", o.days, n.mode.as_str(), n.days),
                )),
                _ => {}
            }
        }
        out
    }
}

/// Weakening of the catalog's AWS Backup: turned off, shorter retention, the copy removed,
/// moved or kept shorter, the vault lock no longer enforced.
fn backup_downgrades(old: &BackupPolicySpec, new: &BackupPolicySpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(o) = &old.tables.backup else { return out };
    let Some(n) = &new.tables.backup else {
        out.push((
            "spec.tables.backup".into(),
            format!(
                "AWS Backup of the catalog tables turned off (was every {} kept {} days)",
                o.schedule, o.retention_days
            ),
        ));
        if let Some(days) = BackupPolicy::vault_lock_days(old) {
            out.push((
                "spec.tables.backup".into(),
                format!("the vault lock ({days} days minimum) is no longer enforced on new vaults"),
            ));
        }
        return out;
    };
    if n.retention_days < o.retention_days {
        out.push((
            "spec.tables.backup.retentionDays".into(),
            format!("backup retention shortened from {} to {} days", o.retention_days, n.retention_days),
        ));
    }
    match (&o.copy, &n.copy) {
        (Some(c), None) => out.push((
            "spec.tables.backup.copy".into(),
            format!("the copy of the catalog backups to {} removed", c.region),
        )),
        (Some(c), Some(d)) if c.region != d.region => out.push((
            "spec.tables.backup.copy.region".into(),
            format!("backup copies moved from {} to {} (new copies stop arriving in {})", c.region, d.region, c.region),
        )),
        (Some(c), Some(d)) if d.retention_days < c.retention_days => out.push((
            "spec.tables.backup.copy.retentionDays".into(),
            format!("backup copy retention shortened from {} to {} days", c.retention_days, d.retention_days),
        )),
        _ => {}
    }
    if let (Some(was), None) = (BackupPolicy::vault_lock_days(old), BackupPolicy::vault_lock_days(new)) {
        out.push(("spec.tables.backup".into(), format!("the vault lock ({was} days minimum) is no longer asked for")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(spec: &str) -> BackupPolicy {
        serde_saphyr::from_str(&format!(
            "apiVersion: lakeops.dev/v1alpha1\nkind: BackupPolicy\nmetadata: {{name: backup, namespace: team-a}}\nspec: {spec}\n"
        ))
        .expect("fixture")
    }

    const BACKUP: &str = "{dataLakeRef: {name: sales}, retention: {mode: COMPLIANCE, days: 30}, tables: {backup: {retentionDays: 35, copy: {region: eu-central-1, retentionDays: 90}}}}";

    fn errors(p: &BackupPolicy) -> Vec<String> {
        p.validate().errors().map(|e| format!("{}: {}", e.path, e.message)).collect()
    }

    #[test]
    fn a_backup_defaults_to_aws_backups_daily_schedule_and_validates() {
        let p = policy(BACKUP);
        let b = p.spec.tables.backup.as_ref().expect("backup");
        assert_eq!(b.schedule, DEFAULT_BACKUP_SCHEDULE);
        assert!(errors(&p).is_empty(), "{:?}", errors(&p));
        assert_eq!(BackupPolicy::vault_lock_days(&p.spec), Some(30));
        assert_eq!(BackupPolicy::vault_lock_days(&policy(&BACKUP.replace("COMPLIANCE", "GOVERNANCE")).spec), None);
    }

    #[test]
    fn bad_backup_fields_are_named() {
        let cases = [
            (
                BACKUP.replace("retentionDays: 35", "retentionDays: 35, schedule: 'rate(1 day)'"),
                "spec.tables.backup.schedule",
            ),
            (BACKUP.replace("retentionDays: 35", "retentionDays: 35, schedule: 'cron(0 5 * * ?)'"), "has 5 fields"),
            (
                BACKUP.replace("retentionDays: 35", "retentionDays: 35, schedule: 'cron(*/5 * ? * * *)'"),
                "at most once an hour",
            ),
            (BACKUP.replace("retentionDays: 35", "retentionDays: 0"), "spec.tables.backup.retentionDays: must be"),
            (BACKUP.replace("retentionDays: 90", "retentionDays: 0"), "spec.tables.backup.copy.retentionDays: must be"),
            (BACKUP.replace("eu-central-1", "Europe"), "spec.tables.backup.copy.region"),
            (BACKUP.replace("retentionDays: 35", "retentionDays: 20"), "less than the COMPLIANCE retention of 30 days"),
            (BACKUP.replace("retentionDays: 90", "retentionDays: 7"), "copy vault's lock"),
        ];
        for (spec, expected) in cases {
            let found = errors(&policy(&spec));
            assert!(found.iter().any(|e| e.contains(expected)), "{expected}: {found:?}");
        }
        let governance =
            policy(&BACKUP.replace("COMPLIANCE", "GOVERNANCE").replace("retentionDays: 35", "retentionDays: 7"));
        assert!(errors(&governance).is_empty(), "no lock without COMPLIANCE: {:?}", errors(&governance));
    }

    #[test]
    fn weakening_the_catalog_backup_is_a_downgrade_with_old_and_new_values() {
        let old = policy(BACKUP).spec;
        let cases = [
            ("{dataLakeRef: {name: sales}, retention: {mode: COMPLIANCE, days: 30}}", "turned off"),
            ("{dataLakeRef: {name: sales}, retention: {mode: COMPLIANCE, days: 30}}", "vault lock (30 days minimum)"),
            (&BACKUP.replace("retentionDays: 35", "retentionDays: 31") as &str, "from 35 to 31 days"),
            (&BACKUP.replace(", copy: {region: eu-central-1, retentionDays: 90}", ""), "to eu-central-1 removed"),
            (&BACKUP.replace("region: eu-central-1", "region: eu-north-1"), "moved from eu-central-1 to eu-north-1"),
            (&BACKUP.replace("retentionDays: 90", "retentionDays: 60"), "copy retention shortened from 90 to 60"),
        ];
        for (spec, expected) in cases {
            let found: Vec<String> =
                policy(spec).downgrades_from(&old).into_iter().map(|(p, m)| format!("{p}: {m}")).collect();
            assert!(found.iter().any(|m| m.contains(expected)), "{expected}: {found:?}");
        }
        let longer = policy(&BACKUP.replace("retentionDays: 35", "retentionDays: 400"));
        assert!(longer.downgrades_from(&old).is_empty(), "longer retention strengthens");
        assert!(policy(BACKUP).downgrades_from(&policy("{dataLakeRef: {name: sales}}").spec).is_empty(), "adding it");
    }
}
