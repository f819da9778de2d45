//! The AWS state a BackupPolicy asks for: pure functions of the (accepted) spec, what the
//! referenced DataLake recorded (its buckets, key and tables) and a few facts (account id,
//! replica key ARNs), unit-tested without AWS. Also the guard against weakening protection.
use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;
use lakeops_crds::backuppolicy::{BackupPolicySpec, RetentionMode, StorageClass};
use lakeops_crds::{BackupPolicy, DataLake};

use crate::aws::s3::{DefaultRetention, LifecycleRule, Logging, ReplicationConfig, ReplicationRule};
use crate::policy::{Effect, PolicyDocument, Principal, Statement};
use crate::reconcile::datalake::desired::{
    self as lake_desired, DesiredBucket, bucket_arn, kms_bucket_policy, kms_encryption, lifecycle_rules, partition,
    root_key_policy,
};

/// Id prefix of the lifecycle rules a BackupPolicy owns; the DataLake's (`lakeops-lake-`)
/// and anyone else's rules on the same bucket are kept.
pub const LIFECYCLE_PREFIX: &str = "lakeops-backup-";
/// Id of the one replication rule of a zone bucket.
pub const REPLICATION_RULE_ID: &str = "lakeops-backup-replication";
/// Name of the replication role's inline policy.
pub const ROLE_POLICY_NAME: &str = "lakeops-replication";
/// IAM role names are at most 64 characters.
const ROLE_NAME_MAX: usize = 64;
/// Rotation period of the replica keys, as the DataLake's default.
pub const REPLICA_KEY_ROTATION_DAYS: i32 = 365;

/// One zone of the lake, as the DataLake recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    pub name: String,
    pub bucket: String,
    /// `<bucket>-replica`, in the backup region.
    pub replica_bucket: String,
}

/// The name under which the lake's audit bucket is replicated (a zone name DataLake reserves).
pub const AUDIT: &str = "audit";

impl Zone {
    /// The lake's audit bucket: always Object Lock, its retention set by the DataLake.
    pub fn is_audit(&self) -> bool {
        self.name == AUDIT
    }
}

/// Name of the log bucket in the backup region, which the replica buckets log into.
pub fn backup_log_bucket_name(facts: &LakeFacts, backup_region: &str) -> String {
    format!("{}-logs-{backup_region}", facts.prefix)
}

/// The log bucket in the backup region (S3.9 for the replicas: S3 logs only within a
/// region): the lake's log bucket baseline, receiving the replica buckets' access logs.
pub fn backup_log_bucket(
    lake: &DataLake,
    facts: &LakeFacts,
    backup_region: &str,
    account_id: &str,
    tags: &BTreeMap<String, String>,
) -> DesiredBucket {
    let sources: Vec<String> = facts.zones.iter().map(|z| bucket_arn(backup_region, &z.replica_bucket)).collect();
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    lake_desired::log_bucket_of(
        backup_region,
        &backup_log_bucket_name(facts, backup_region),
        account_id,
        &sources,
        facts.object_lock,
        lifecycle_rules(&lake.spec.lifecycle),
        tags.clone(),
    )
}

/// What the referenced DataLake recorded, which the policy builds on.
#[derive(Clone, Debug, PartialEq)]
pub struct LakeFacts {
    pub region: String,
    pub prefix: String,
    pub key_arn: String,
    pub object_lock: bool,
    pub zones: Vec<Zone>,
    pub tables: Vec<String>,
}

/// The lake's recorded buckets, key and tables; `None` until it has recorded them.
pub fn lake_facts(lake: &DataLake) -> Option<LakeFacts> {
    let status = lake.status.as_ref()?;
    let key_arn = status.kms_key_arn.clone()?;
    let prefix = status.bucket_prefix.clone()?;
    Some(LakeFacts {
        region: lake.spec.region.clone(),
        prefix,
        key_arn,
        // What S3 was asked for at creation, not what the spec says now.
        object_lock: status.object_lock.unwrap_or(lake.spec.object_lock),
        // The audit bucket is replicated like a zone (audit logs survive a region); its
        // Object Lock retention stays the DataLake's.
        zones: status
            .zones
            .iter()
            .map(|z| (z.name.as_str(), &z.bucket))
            .chain(status.audit_bucket.as_ref().map(|b| (AUDIT, b)))
            .map(|(name, bucket)| Zone {
                name: name.to_string(),
                bucket: bucket.clone(),
                replica_bucket: format!("{bucket}-replica"),
            })
            .collect(),
        tables: status.tables.iter().map(|t| t.table_name.clone()).collect(),
    })
}

/// Tags of every resource the policy creates: the lake's tags and the policy's ownership.
pub fn resource_tags(policy: &BackupPolicy, lake: &DataLake) -> BTreeMap<String, String> {
    let mut tags = lake.spec.tags.clone();
    tags.extend(lake_desired::owner_tags(policy));
    tags
}

/// Why the spec cannot be applied as it is, comparing it with the protection last applied:
/// a change S3 forbids (shortening COMPLIANCE), or a weakening the manifest does not allow.
/// `None` when it may be applied.
pub fn refusal(policy: &BackupPolicy, applied: Option<&BackupPolicySpec>) -> Option<String> {
    let applied = applied?;
    let forbidden = policy.forbidden_changes(applied);
    if !forbidden.is_empty() {
        let list: Vec<String> = forbidden.iter().map(|(path, m)| format!("{path}: {m}")).collect();
        return Some(format!("refused, the last applied protection stays in force: {}", list.join("; ")));
    }
    let downgrades = policy.downgrades_from(applied);
    if downgrades.is_empty() || policy.spec.allow_protection_downgrade {
        return None;
    }
    let list: Vec<String> = downgrades.iter().map(|(path, m)| format!("{path}: {m}")).collect();
    Some(format!(
        "refused, the last applied protection stays in force: {}; set spec.allowProtectionDowngrade: true in the same manifest to accept this",
        list.join("; ")
    ))
}

/// Why deleting the policy must wait: deletion removes replication and the replication
/// role, a weakening the manifest must allow. `None` when it may proceed (also when the
/// policy never applied anything, e.g. a conflicting second policy).
pub fn deletion_refusal(policy: &BackupPolicy) -> Option<String> {
    let applied = policy.status.as_ref()?.applied.as_ref()?;
    if policy.spec.allow_protection_downgrade {
        return None;
    }
    let mut what: Vec<String> = applied
        .replication
        .iter()
        .map(|r| format!("replication to {} stops and its role is deleted", r.region))
        .collect();
    if applied.tables.backup.is_some() {
        what.push("the catalog tables' backup plan is deleted (no new backups)".into());
    }
    let what = if what.is_empty() { "the lake's backups stop being enforced".to_string() } else { what.join("; ") };
    Some(format!(
        "deleting this BackupPolicy weakens protection ({what}); set spec.allowProtectionDowngrade: true to let the deletion proceed (replica buckets, backup vaults holding recovery points, and their data are always kept)"
    ))
}

/// Object Lock default retention for every zone (and replica) bucket.
pub fn retention(spec: &BackupPolicySpec) -> Option<DefaultRetention> {
    spec.retention.as_ref().map(|r| DefaultRetention { mode: r.mode.as_str().into(), days: r.days })
}

/// True when `new` is weaker than `old`: shorter, or COMPLIANCE relaxed to GOVERNANCE.
pub fn retention_weakens(old: &DefaultRetention, new: &DefaultRetention) -> bool {
    let compliance = RetentionMode::Compliance.as_str();
    new.days < old.days || (old.mode == compliance && new.mode != compliance)
}

/// The noncurrent-version rules merged into every zone bucket's lifecycle.
pub fn noncurrent_rules(spec: &BackupPolicySpec) -> Vec<LifecycleRule> {
    spec.noncurrent_version_retention
        .as_ref()
        .map(|n| LifecycleRule {
            id: format!("{LIFECYCLE_PREFIX}noncurrent-versions"),
            enabled: true,
            noncurrent_version_expiration_days: Some(n.days),
            newer_noncurrent_versions: n.newer_noncurrent_versions,
            ..LifecycleRule::default()
        })
        .into_iter()
        .collect()
}

/// Every region that needs a replica key: the replication region, the table replica
/// regions (DynamoDB replicas of a table under a customer-managed key need a key there) and
/// the region of the catalog backups' copy vault.
pub fn key_regions(spec: &BackupPolicySpec) -> BTreeSet<String> {
    let copy = spec.tables.backup.as_ref().and_then(|b| b.copy.as_ref()).map(|c| c.region.clone());
    spec.replication
        .iter()
        .map(|r| r.region.clone())
        .chain(spec.tables.replica_regions.iter().cloned())
        .chain(copy)
        .collect()
}

/// Alias of the replica key in every backup region.
pub fn replica_key_alias(policy: &BackupPolicy) -> String {
    format!("alias/lakeops/{}/{}/replica", policy.namespace().unwrap_or_default(), policy.spec.data_lake_ref.name)
}

/// A replica key lakeops creates and manages in one backup region.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplicaKey {
    pub alias: String,
    pub description: String,
    pub rotation_days: i32,
    pub policy: PolicyDocument,
}

/// The replica key of one backup region: customer-managed, rotating, administered by the
/// account root only.
pub fn replica_key(policy: &BackupPolicy, region: &str, account_id: &str) -> ReplicaKey {
    ReplicaKey {
        alias: replica_key_alias(policy),
        description: format!(
            "lakeops BackupPolicy {}/{}: encrypts the replicas of DataLake {} in {region}",
            policy.namespace().unwrap_or_default(),
            policy.name_any(),
            policy.spec.data_lake_ref.name
        ),
        rotation_days: REPLICA_KEY_ROTATION_DAYS,
        policy: root_key_policy(region, account_id),
    }
}

/// The replica bucket of one zone: the same baseline as a zone bucket (SSE-KMS with the
/// replica key and bucket keys, Block Public Access, ownership enforced, versioning, TLS-only
/// policy, the lake's lifecycle), Object Lock when the lake (or, for the audit bucket, its
/// source) has it, access-logged into the backup region's log bucket.
pub fn replica_bucket(
    lake: &DataLake,
    facts: &LakeFacts,
    zone: &Zone,
    backup_region: &str,
    replica_key_arn: &str,
    tags: &BTreeMap<String, String>,
) -> DesiredBucket {
    let lifecycle = match lake.spec.zones.iter().find(|z| z.name == zone.name) {
        Some(z) => lake.spec.lifecycle.for_zone(z),
        None => lake.spec.lifecycle.clone(),
    };
    DesiredBucket {
        name: zone.replica_bucket.clone(),
        zone: Some(zone.name.clone()),
        object_lock: facts.object_lock || zone.is_audit(),
        encryption: kms_encryption(replica_key_arn),
        policy: kms_bucket_policy(backup_region, &zone.replica_bucket, replica_key_arn),
        logging: Some(Logging {
            target_bucket: backup_log_bucket_name(facts, backup_region),
            target_prefix: format!("{}/", zone.name),
        }),
        lifecycle: lifecycle_rules(&lifecycle),
        tags: tags.clone(),
    }
}

/// Name of the replication role: `<prefix>-replication`, shortened with a stable hash when
/// it would exceed IAM's 64 characters.
pub fn role_name(prefix: &str) -> String {
    bounded_role_name(format!("{prefix}-replication"))
}

/// `name`, or when IAM's 64 characters are exceeded, its start and a hash of the whole.
pub fn bounded_role_name(name: String) -> String {
    bounded_name(name, ROLE_NAME_MAX)
}

/// `name`, or when longer than `max`, its start and a stable hash of the whole.
pub fn bounded_name(name: String, max: usize) -> String {
    if name.len() <= max {
        return name;
    }
    let hash = format!("{:08x}", fnv1a(name.as_bytes()) & 0xffff_ffff);
    let keep: String = name.chars().take(max - hash.len() - 1).collect();
    format!("{}-{hash}", keep.trim_end_matches('-'))
}

/// FNV-1a, 64 bits: a hash that stays the same across builds and platforms.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Only S3, replicating this account's zone buckets, may assume the role (confused deputy).
pub fn trust_policy(region: &str, account_id: &str, facts: &LakeFacts) -> PolicyDocument {
    let sources: Vec<String> = facts.zones.iter().map(|z| bucket_arn(region, &z.bucket)).collect();
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    PolicyDocument::new(vec![
        Statement::new(
            "S3ReplicatesTheLake",
            Effect::Allow,
            Principal::service("s3.amazonaws.com"),
            &["sts:AssumeRole"],
            &[],
        )
        .when("StringEquals", "aws:SourceAccount", &[account_id])
        .when("ArnLike", "aws:SourceArn", &sources),
    ])
}

/// The replication role's permissions, least privilege: read the zone buckets' versions,
/// write replicas (deletes only when delete markers are replicated), decrypt with the lake
/// key through S3 in the lake's region and encrypt with the replica key through S3 in the
/// backup region.
pub fn role_policy(
    spec_replication: &lakeops_crds::backuppolicy::Replication,
    facts: &LakeFacts,
    replica_key_arn: &str,
) -> PolicyDocument {
    let src = &facts.region;
    let dst = &spec_replication.region;
    let sources: Vec<String> = facts.zones.iter().map(|z| bucket_arn(src, &z.bucket)).collect();
    let source_objects: Vec<String> = sources.iter().map(|b| format!("{b}/*")).collect();
    let replica_objects: Vec<String> =
        facts.zones.iter().map(|z| format!("{}/*", bucket_arn(dst, &z.replica_bucket))).collect();
    let mut read_versions =
        vec!["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"];
    if facts.object_lock || facts.zones.iter().any(Zone::is_audit) {
        // Replicating locked versions carries their retention and legal hold over.
        read_versions.extend(["s3:GetObjectRetention", "s3:GetObjectLegalHold"]);
    }
    let mut write = vec!["s3:ReplicateObject", "s3:ReplicateTags"];
    if spec_replication.replicate_delete_markers {
        write.push("s3:ReplicateDelete");
    }
    PolicyDocument::new(vec![
        Statement::new(
            "ReadReplicationConfiguration",
            Effect::Allow,
            Principal::none(),
            &["s3:GetReplicationConfiguration", "s3:ListBucket"],
            &sources,
        ),
        Statement::new("ReadSourceVersions", Effect::Allow, Principal::none(), &read_versions, &source_objects),
        Statement::new("WriteReplicas", Effect::Allow, Principal::none(), &write, &replica_objects),
        Statement::new(
            "DecryptSourceObjects",
            Effect::Allow,
            Principal::none(),
            &["kms:Decrypt"],
            std::slice::from_ref(&facts.key_arn),
        )
        .when("StringEquals", "kms:ViaService", &[&format!("s3.{src}.amazonaws.com")]),
        Statement::new(
            "EncryptReplicas",
            Effect::Allow,
            Principal::none(),
            &["kms:Encrypt"],
            &[replica_key_arn.to_string()],
        )
        .when("StringEquals", "kms:ViaService", &[&format!("s3.{dst}.amazonaws.com")]),
    ])
}

/// ARN of a role under [`crate::iam::ROLE_PATH`], known before it exists.
pub fn role_arn(region: &str, account_id: &str, name: &str) -> String {
    format!("arn:{}:iam::{account_id}:role{}{name}", partition(region), crate::iam::ROLE_PATH)
}

fn storage_class(class: StorageClass) -> &'static str {
    match class {
        StorageClass::Standard => "STANDARD",
        StorageClass::StandardIa => "STANDARD_IA",
        StorageClass::OnezoneIa => "ONEZONE_IA",
        StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
        StorageClass::GlacierIr => "GLACIER_IR",
        StorageClass::Glacier => "GLACIER",
        StorageClass::DeepArchive => "DEEP_ARCHIVE",
    }
}

/// The replication configuration of one zone bucket: every object (SSE-KMS ones included,
/// which S3 skips unless selected), replicas encrypted with the replica key, delete markers
/// only when asked, Replication Time Control and metrics when asked.
pub fn replication(
    spec_replication: &lakeops_crds::backuppolicy::Replication,
    role_arn: &str,
    zone: &Zone,
    replica_key_arn: &str,
) -> ReplicationConfig {
    ReplicationConfig {
        role: role_arn.to_string(),
        rules: vec![ReplicationRule {
            id: REPLICATION_RULE_ID.into(),
            priority: 1,
            enabled: true,
            destination_bucket: bucket_arn(&spec_replication.region, &zone.replica_bucket),
            storage_class: Some(storage_class(spec_replication.storage_class).into()),
            replica_kms_key_id: Some(replica_key_arn.to_string()),
            sse_kms_encrypted_objects: true,
            delete_marker_replication: spec_replication.replicate_delete_markers,
            replication_time_control: spec_replication.replication_time_control,
        }],
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lakeops_crds::names::tag;

    fn lake() -> DataLake {
        serde_saphyr::from_str(
            "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {name: sales, namespace: team-a, uid: l-1}\nspec:\n  region: eu-west-1\n  zones: [{name: raw}, {name: curated}]\n  tags: {team: a}\n  catalog: {tables: [{name: runs, partitionKey: {name: id, type: S}}]}\nstatus:\n  bucketPrefix: team-a-sales\n  objectLock: true\n  kmsKeyArn: arn:aws:kms:eu-west-1:123456789012:key/lake\n  zones: [{name: raw, bucket: team-a-sales-raw, arn: 'arn:aws:s3:::team-a-sales-raw'}, {name: curated, bucket: team-a-sales-curated, arn: 'arn:aws:s3:::team-a-sales-curated'}]\n  tables: [{name: runs, tableName: team-a-sales-runs}]\n",
        )
        .expect("fixture")
    }

    pub(crate) fn policy(spec: &str) -> BackupPolicy {
        serde_saphyr::from_str(&format!(
            "apiVersion: lakeops.dev/v1alpha1\nkind: BackupPolicy\nmetadata: {{name: backup, namespace: team-a, uid: p-1}}\nspec: {spec}\n"
        ))
        .expect("fixture")
    }

    const FULL: &str = "{dataLakeRef: {name: sales}, retention: {mode: COMPLIANCE, days: 30}, replication: {region: eu-central-1}, tables: {replicaRegions: [us-west-2]}, noncurrentVersionRetention: {days: 60}}";
    const REPLICA_KEY: &str = "arn:aws:kms:eu-central-1:123456789012:key/replica";

    #[test]
    fn facts_come_from_what_the_lake_recorded() {
        let f = lake_facts(&lake()).expect("recorded");
        assert_eq!(f.zones[0].replica_bucket, "team-a-sales-raw-replica");
        assert_eq!(f.tables, ["team-a-sales-runs"]);
        assert!(f.object_lock);
        let mut bare = lake();
        bare.status = None;
        assert_eq!(lake_facts(&bare), None, "nothing to build on before the lake recorded its resources");
    }

    #[test]
    fn the_replication_role_trusts_only_s3_for_the_lake_buckets_of_this_account() {
        let trust = trust_policy("eu-west-1", "123456789012", &lake_facts(&lake()).expect("facts"));
        let json: serde_json::Value = serde_json::from_str(&trust.to_json()).expect("json");
        let s = &json["Statement"][0];
        assert_eq!(s["Principal"]["Service"], "s3.amazonaws.com");
        assert_eq!(s["Condition"]["StringEquals"]["aws:SourceAccount"], "123456789012");
        assert!(s.get("Resource").is_none(), "trust policies name no resource");
        assert_eq!(s["Condition"]["ArnLike"]["aws:SourceArn"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn the_role_policy_is_least_privilege_and_replicates_deletes_only_when_asked() {
        let facts = lake_facts(&lake()).expect("facts");
        let p = policy(FULL);
        let replication = p.spec.replication.clone().expect("replication");
        let doc = role_policy(&replication, &facts, REPLICA_KEY);
        let actions: Vec<&str> = doc.statements.iter().flat_map(|s| s.actions.iter().map(String::as_str)).collect();
        assert!(actions.iter().all(|a| !a.contains('*')), "{actions:?}");
        assert!(!actions.contains(&"s3:ReplicateDelete"), "delete markers are off by default");
        assert!(actions.contains(&"s3:GetObjectRetention"), "the lake has Object Lock");
        for s in &doc.statements {
            assert!(
                s.principal.is_none() && !s.resources.is_empty() && s.resources.iter().all(|r| r != "*"),
                "{}",
                s.sid
            );
            if s.actions.iter().any(|a| a.starts_with("kms:")) {
                assert!(s.condition["StringEquals"].contains_key("kms:ViaService"), "{}", s.sid);
            }
        }
        let encrypt = doc.statements.iter().find(|s| s.sid == "EncryptReplicas").expect("encrypt");
        assert_eq!(encrypt.resources, [REPLICA_KEY]);
        assert_eq!(encrypt.condition["StringEquals"]["kms:ViaService"], ["s3.eu-central-1.amazonaws.com"]);
        let with_deletes = lakeops_crds::backuppolicy::Replication { replicate_delete_markers: true, ..replication };
        let doc = role_policy(&with_deletes, &facts, REPLICA_KEY);
        assert!(doc.statements.iter().any(|s| s.actions.iter().any(|a| a == "s3:ReplicateDelete")));
    }

    #[test]
    fn replication_selects_kms_objects_and_encrypts_replicas_with_the_replica_key() {
        let facts = lake_facts(&lake()).expect("facts");
        let p = policy(FULL);
        let c = replication(p.spec.replication.as_ref().expect("r"), "arn:role", &facts.zones[0], REPLICA_KEY);
        let r = &c.rules[0];
        assert_eq!(r.destination_bucket, "arn:aws:s3:::team-a-sales-raw-replica");
        assert_eq!(r.replica_kms_key_id.as_deref(), Some(REPLICA_KEY));
        assert!(r.sse_kms_encrypted_objects && !r.delete_marker_replication && !r.replication_time_control);
        assert_eq!(r.storage_class.as_deref(), Some("STANDARD"));
    }

    #[test]
    fn replica_buckets_meet_the_zone_baseline_with_the_replica_key_and_policy_ownership() {
        let l = lake();
        let facts = lake_facts(&l).expect("facts");
        let p = policy(FULL);
        let tags = resource_tags(&p, &l);
        let b = replica_bucket(&l, &facts, &facts.zones[0], "eu-central-1", REPLICA_KEY, &tags);
        assert_eq!(b.name, "team-a-sales-raw-replica");
        assert!(b.object_lock && b.encryption.bucket_key_enabled);
        assert_eq!(b.encryption.kms_key_id.as_deref(), Some(REPLICA_KEY));
        assert_eq!(b.tags.get(tag::OWNER).map(String::as_str), Some("team-a/backup"));
        assert_eq!(b.tags.get("team").map(String::as_str), Some("a"));
        let text = b.policy.to_json();
        assert!(text.contains("aws:SecureTransport") && text.contains(REPLICA_KEY), "{text}");
        assert!(!b.lifecycle.is_empty(), "abort uploads and noncurrent expiry, as the lake's buckets");
    }

    #[test]
    fn long_role_names_are_shortened_stably() {
        assert_eq!(role_name("team-a-sales"), "team-a-sales-replication");
        let long = role_name(&"x".repeat(70));
        assert!(long.len() <= 64, "{long}");
        assert_eq!(long, role_name(&"x".repeat(70)));
        assert_ne!(long, role_name(&"x".repeat(71)));
    }

    #[test]
    fn a_first_spec_and_strengthening_changes_are_accepted() {
        let p = policy(FULL);
        assert_eq!(refusal(&p, None), None);
        let mut stronger = p.clone();
        stronger.spec.retention =
            Some(lakeops_crds::backuppolicy::Retention { mode: RetentionMode::Compliance, days: 90 });
        assert_eq!(refusal(&stronger, Some(&p.spec)), None);
    }

    #[test]
    fn every_weakening_is_refused_with_old_and_new_values_unless_allowed() {
        let applied = policy(FULL).spec;
        let cases = [
            (
                "{dataLakeRef: {name: sales}, retention: {mode: COMPLIANCE, days: 30}, tables: {replicaRegions: [us-west-2]}, noncurrentVersionRetention: {days: 60}}",
                "replication to eu-central-1 removed",
            ),
            (
                "{dataLakeRef: {name: sales}, retention: {mode: COMPLIANCE, days: 30}, replication: {region: eu-central-1}, noncurrentVersionRetention: {days: 60}}",
                "table replica region us-west-2 removed",
            ),
            (
                "{dataLakeRef: {name: sales}, retention: {mode: COMPLIANCE, days: 30}, replication: {region: eu-central-1}, tables: {pointInTimeRecovery: false, replicaRegions: [us-west-2]}, noncurrentVersionRetention: {days: 60}}",
                "point-in-time recovery turned off",
            ),
            (
                "{dataLakeRef: {name: sales}, retention: {mode: COMPLIANCE, days: 30}, replication: {region: eu-central-1}, tables: {replicaRegions: [us-west-2]}, noncurrentVersionRetention: {days: 10}}",
                "from 60 to 10 days",
            ),
        ];
        for (spec, expected) in cases {
            let p = policy(spec);
            let message = refusal(&p, Some(&applied)).unwrap_or_else(|| panic!("{expected}: not refused"));
            assert!(message.contains(expected) && message.contains("allowProtectionDowngrade"), "{message}");
            let mut allowed = p.clone();
            allowed.spec.allow_protection_downgrade = true;
            assert_eq!(refusal(&allowed, Some(&applied)), None, "{expected}: allowed with the flag");
        }
    }

    #[test]
    fn compliance_retention_is_never_shortened_or_relaxed_whatever_the_flag() {
        let applied = policy(FULL).spec;
        for retention in ["{mode: COMPLIANCE, days: 10}", "{mode: GOVERNANCE, days: 30}"] {
            let mut p = policy(&FULL.replace("{mode: COMPLIANCE, days: 30}", retention));
            p.spec.allow_protection_downgrade = true;
            let message = refusal(&p, Some(&applied)).expect("refused");
            assert!(message.contains("COMPLIANCE retention can never be shortened"), "{message}");
            assert!(message.contains("was COMPLIANCE 30 days"), "{message}");
        }
        let governance = policy(&FULL.replace("COMPLIANCE", "GOVERNANCE"));
        let mut shorter = policy(&FULL.replace("{mode: COMPLIANCE, days: 30}", "{mode: GOVERNANCE, days: 7}"));
        let message = refusal(&shorter, Some(&governance.spec)).expect("refused without the flag");
        assert!(message.contains("retention shortened from 30 to 7 days"), "{message}");
        shorter.spec.allow_protection_downgrade = true;
        assert_eq!(refusal(&shorter, Some(&governance.spec)), None, "GOVERNANCE may be shortened with the flag");
    }

    #[test]
    fn deleting_an_applied_policy_needs_the_flag_and_a_never_applied_one_does_not() {
        let mut p = policy(FULL);
        assert_eq!(deletion_refusal(&p), None, "nothing applied yet");
        p.status = Some(lakeops_crds::BackupPolicyStatus { applied: Some(p.spec.clone()), ..Default::default() });
        let message = deletion_refusal(&p).expect("refused");
        assert!(message.contains("replication to eu-central-1 stops") && message.contains("always kept"), "{message}");
        p.spec.allow_protection_downgrade = true;
        assert_eq!(deletion_refusal(&p), None);
    }

    #[test]
    fn key_regions_cover_replication_and_table_replicas() {
        let regions: Vec<String> = key_regions(&policy(FULL).spec).into_iter().collect();
        assert_eq!(regions, ["eu-central-1", "us-west-2"]);
    }

    #[test]
    fn retention_weakening_is_shorter_or_relaxed() {
        let r = |mode: &str, days| DefaultRetention { mode: mode.into(), days };
        assert!(retention_weakens(&r("GOVERNANCE", 30), &r("GOVERNANCE", 7)));
        assert!(retention_weakens(&r("COMPLIANCE", 30), &r("GOVERNANCE", 30)));
        assert!(!retention_weakens(&r("GOVERNANCE", 30), &r("COMPLIANCE", 30)));
        assert!(!retention_weakens(&r("GOVERNANCE", 7), &r("GOVERNANCE", 30)));
    }
}
