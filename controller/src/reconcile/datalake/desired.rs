//! The AWS state a DataLake asks for: a pure function of the spec and two facts (the
//! account id and the key ARN), unit-tested without AWS.
use std::collections::BTreeMap;

use kube::ResourceExt;
use lakeops_crds::DataLake;
use lakeops_crds::validation::REPLICA_SUFFIX;

use crate::aws::cloudtrail::{EventSelection, TrailSettings};
use crate::aws::dynamodb::KeyDef;
use crate::aws::s3::{BucketEncryption, DefaultRetention, LifecycleRule, Logging, PublicAccessBlock};
use crate::engine::log_group;
use crate::engine::trail_logs::{self, Delivery, TrailLogs};
use crate::policy::{Effect, PolicyDocument, Principal, Statement};

/// Id prefix of the lifecycle rules a DataLake owns; other rules on the bucket are kept.
pub const LIFECYCLE_PREFIX: &str = "lakeops-lake-";
/// Object ownership that disables ACLs (S3.12).
pub const BUCKET_OWNER_ENFORCED: &str = "BucketOwnerEnforced";

/// The lake key.
#[derive(Clone, Debug, PartialEq)]
pub enum DesiredKey {
    /// A key lakeops creates and manages.
    Managed { alias: String, description: String, rotation_days: i32, policy: PolicyDocument },
    /// A key the user brings; lakeops only uses it.
    External { arn: String },
}

/// One bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredBucket {
    pub name: String,
    /// The zone, or `None` for the log bucket.
    pub zone: Option<String>,
    pub object_lock: bool,
    pub encryption: BucketEncryption,
    pub policy: PolicyDocument,
    pub logging: Option<Logging>,
    /// The rules the lake owns (ids start with [`LIFECYCLE_PREFIX`]).
    pub lifecycle: Vec<LifecycleRule>,
    pub tags: BTreeMap<String, String>,
}

/// One catalog table.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredTable {
    /// Name in the spec.
    pub name: String,
    /// DynamoDB table name.
    pub table_name: String,
    pub partition_key: KeyDef,
    pub sort_key: Option<KeyDef>,
    pub ttl_attribute: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Tags that mark a resource as this object's.
pub fn owner_tags(obj: &impl ResourceExt) -> BTreeMap<String, String> {
    crate::reconcile::owner_tags(obj)
}

/// Spec tags plus ownership tags.
pub fn resource_tags(lake: &DataLake) -> BTreeMap<String, String> {
    let mut tags = lake.spec.tags.clone();
    tags.extend(owner_tags(lake));
    tags
}

/// The partition of a region (aws, aws-cn, aws-us-gov), for ARNs.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// ARN of a bucket.
pub fn bucket_arn(region: &str, bucket: &str) -> String {
    format!("arn:{}:s3:::{bucket}", partition(region))
}

/// The audit trail.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredTrail {
    pub settings: TrailSettings,
    /// What the trail records.
    pub events: EventSelection,
    pub tags: BTreeMap<String, String>,
}

/// Prefix of trail log files in the log bucket.
pub const TRAIL_PREFIX: &str = "cloudtrail";

/// Name of the lake's trail.
pub fn trail_name(lake: &DataLake) -> String {
    format!("lakeops-{}-{}", lake.namespace().unwrap_or_default(), lake.name_any())
}

/// ARN of the lake's trail (known before it exists, for policy conditions).
pub fn trail_arn(lake: &DataLake, account_id: &str) -> String {
    format!(
        "arn:{}:cloudtrail:{}:{account_id}:trail/{}",
        partition(&lake.spec.region),
        lake.spec.region,
        trail_name(lake)
    )
}

/// Name of the trail's CloudWatch Logs group.
pub fn trail_log_group(lake: &DataLake) -> String {
    format!("/aws/cloudtrail/{}", trail_name(lake))
}

/// Name of the role CloudTrail delivers to that group with.
pub fn trail_logs_role(lake: &DataLake) -> String {
    crate::reconcile::backuppolicy::desired::bounded_role_name(format!("{}-trail-logs", lake.bucket_prefix()))
}

/// The trail's CloudWatch Logs delivery (CloudTrail.5): a group encrypted with the lake key,
/// kept `spec.audit.logRetentionDays`, and its delivery role.
pub fn trail_logs(lake: &DataLake, account_id: &str, key_arn: &str, boundary: Option<&str>) -> TrailLogs {
    let trail_arn = trail_arn(lake, account_id);
    trail_logs::desired(&trail_logs::Input {
        region: &lake.spec.region,
        account: account_id,
        trail_arn: &trail_arn,
        group_name: trail_log_group(lake),
        role_name: trail_logs_role(lake),
        key_arn,
        retention_days: lake.spec.audit.log_retention_days,
        tags: resource_tags(lake),
        boundary: boundary.map(str::to_string),
    })
}

/// The lake trail's data events: S3 objects of the zone buckets, their replicas and the
/// audit bucket (and its replica), and Lambda invocations of the namespace's functions
/// (named `lakeops-<namespace>-...`), by ARN prefix. Management events are recorded when
/// `spec.audit.managementEvents` says so, else unless a Ready SecurityBaseline's account
/// trail records them for the lake's region (`baseline_covers`).
pub fn trail_events(lake: &DataLake, account_id: &str, baseline_covers: bool) -> EventSelection {
    let region = &lake.spec.region;
    let mut buckets: Vec<String> = lake.spec.zones.iter().map(|z| lake.zone_bucket(&z.name)).collect();
    buckets.push(lake.audit_bucket());
    let replicas: Vec<String> = buckets.iter().map(|b| format!("{b}{REPLICA_SUFFIX}")).collect();
    buckets.extend(replicas);
    let mut s3_objects: Vec<String> = buckets.iter().map(|b| format!("{}/", bucket_arn(region, b))).collect();
    s3_objects.sort();
    EventSelection {
        management_events: lake.spec.audit.management_events.unwrap_or(!baseline_covers),
        s3_objects,
        lambda_functions: vec![format!(
            "arn:{}:lambda:{region}:{account_id}:function:lakeops-{}-",
            partition(region),
            lake.namespace().unwrap_or_default()
        )],
        other: false,
    }
}

/// The trail the lake asks for, if any: multi-region (replica buckets are in another
/// region), KMS-encrypted with the lake key, log-file validation, delivered to CloudWatch
/// Logs through `delivery`, recording [`trail_events`] (CloudTrail.1, .2, .4, .5, S3.22, S3.23).
pub fn trail(
    lake: &DataLake,
    account_id: &str,
    key_arn: &str,
    delivery: &Delivery,
    baseline_covers: bool,
) -> Option<DesiredTrail> {
    if !lake.spec.audit.trail {
        return None;
    }
    Some(DesiredTrail {
        settings: TrailSettings {
            name: trail_name(lake),
            s3_bucket: lake.audit_bucket(),
            s3_key_prefix: TRAIL_PREFIX.into(),
            kms_key_id: key_arn.into(),
            multi_region: true,
            global_service_events: true,
            log_file_validation: true,
            cloud_watch_logs_group_arn: delivery.log_group_arn.clone(),
            cloud_watch_logs_role_arn: delivery.role_arn.clone(),
        },
        events: trail_events(lake, account_id, baseline_covers),
        tags: resource_tags(lake),
    })
}

/// A key policy naming only the account root: it administers the key and delegates use to
/// IAM policies (the generated roles), so no principal outside the account and no `*` is
/// ever named (KMS.5).
pub fn root_key_policy(region: &str, account_id: &str) -> PolicyDocument {
    let root = format!("arn:{}:iam::{account_id}:root", partition(region));
    PolicyDocument::new(vec![Statement::new(
        "AccountRootAdministersTheKey",
        Effect::Allow,
        Principal::aws(&[root]),
        &["kms:*"],
        &["*".into()],
    )])
}

/// The key this lake wants.
pub fn key(lake: &DataLake, account_id: &str) -> DesiredKey {
    if let Some(arn) = &lake.spec.encryption.key_arn {
        return DesiredKey::External { arn: arn.clone() };
    }
    let mut policy = root_key_policy(&lake.spec.region, account_id);
    // CloudWatch Logs encrypts the log groups of this namespace's functions, pipelines and
    // ingest APIs with the lake key, and no other group.
    let region = &lake.spec.region;
    let ns = lake.namespace().unwrap_or_default();
    let groups: Vec<String> = log_group::LAKE_LOG_GROUP_PREFIXES
        .iter()
        .map(|p| format!("arn:{}:logs:{region}:{account_id}:log-group:{p}lakeops-{ns}-*", partition(region)))
        .collect();
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    policy.statements.push(log_group::key_statement("CloudWatchLogsEncryptsLakeLogs", region, &groups));
    if lake.spec.audit.trail {
        // CloudTrail encrypts the lake's trail logs, for that trail only.
        policy.statements.push(
            Statement::new(
                "CloudTrailEncryptsTheLakeTrail",
                Effect::Allow,
                Principal::service("cloudtrail.amazonaws.com"),
                &["kms:GenerateDataKey*", "kms:DescribeKey"],
                &["*".into()],
            )
            .when("StringEquals", "aws:SourceArn", &[&trail_arn(lake, account_id)]),
        );
        policy.statements.push(trail_logs::key_statement(region, account_id, &trail_log_group(lake)));
    }
    DesiredKey::Managed {
        alias: lake.key_alias(),
        description: format!(
            "lakeops DataLake {}/{}: encrypts its buckets and tables",
            lake.namespace().unwrap_or_default(),
            lake.name_any()
        ),
        rotation_days: lake.spec.encryption.key_rotation_days,
        policy,
    }
}

/// The Object Lock default retention of the audit bucket (write-once audit logs).
pub fn audit_retention(lake: &DataLake) -> DefaultRetention {
    DefaultRetention { mode: lake.spec.audit.mode.as_str().to_string(), days: lake.spec.audit.retention_days }
}

/// Every bucket: the log bucket first (the others log into it), the zone buckets, and,
/// with a trail, the audit bucket last.
pub fn buckets(lake: &DataLake, account_id: &str, key_arn: &str) -> Vec<DesiredBucket> {
    let region = &lake.spec.region;
    let tags = resource_tags(lake);
    let log_bucket = lake.log_bucket();
    let mut zone_arns: Vec<String> =
        lake.spec.zones.iter().map(|z| bucket_arn(region, &lake.zone_bucket(&z.name))).collect();
    if lake.spec.audit.trail {
        zone_arns.push(bucket_arn(region, &lake.audit_bucket()));
    }
    let zone_arns: Vec<&str> = zone_arns.iter().map(String::as_str).collect();

    let mut out = vec![log_bucket_of(
        region,
        &log_bucket,
        account_id,
        &zone_arns,
        lake.spec.object_lock,
        lifecycle_rules(&lake.spec.lifecycle),
        tags.clone(),
    )];
    for zone in &lake.spec.zones {
        let name = lake.zone_bucket(&zone.name);
        out.push(DesiredBucket {
            policy: kms_bucket_policy(region, &name, key_arn),
            name,
            zone: Some(zone.name.clone()),
            object_lock: lake.spec.object_lock,
            encryption: kms_encryption(key_arn),
            logging: lake
                .spec
                .access_logs
                .then(|| Logging { target_bucket: log_bucket.clone(), target_prefix: format!("{}/", zone.name) }),
            lifecycle: lifecycle_rules(&lake.spec.lifecycle.for_zone(zone)),
            tags: tags.clone(),
        });
    }
    if lake.spec.audit.trail {
        out.push(audit_bucket(lake, account_id, key_arn, tags));
    }
    out
}

/// A bucket that receives server access logs from `sources` (bucket ARNs of this account,
/// in the same region: S3 logs only within a region). SSE-S3, as S3 requires for log
/// targets. The lake's log bucket, and a BackupPolicy's log bucket in the backup region.
pub fn log_bucket_of(
    region: &str,
    name: &str,
    account_id: &str,
    sources: &[&str],
    object_lock: bool,
    lifecycle: Vec<LifecycleRule>,
    tags: BTreeMap<String, String>,
) -> DesiredBucket {
    let mut policy = tls_only(region, name);
    // S3 delivers server access logs as the logging service, only for the lake's own
    // buckets in this account (S3.6: no cross-account grants).
    policy.statements.push(
        Statement::new(
            "AllowServerAccessLogsFromLakeBuckets",
            Effect::Allow,
            Principal::service("logging.s3.amazonaws.com"),
            &["s3:PutObject"],
            &[format!("{}/*", bucket_arn(region, name))],
        )
        .when("ArnLike", "aws:SourceArn", sources)
        .when("StringEquals", "aws:SourceAccount", &[account_id]),
    );
    DesiredBucket {
        name: name.to_string(),
        zone: None,
        object_lock,
        // S3 delivers server access logs only to buckets encrypted with SSE-S3.
        encryption: BucketEncryption { algorithm: "AES256".into(), kms_key_id: None, bucket_key_enabled: false },
        policy,
        logging: None,
        lifecycle,
        tags,
    }
}

/// The audit bucket: the trail's log files, apart from the access logs (CloudTrail.7).
/// SSE-KMS with the lake key, Object Lock (its default retention is a step of its own),
/// TLS only, CloudTrail allowed for this trail only, access-logged into the log bucket.
fn audit_bucket(lake: &DataLake, account_id: &str, key_arn: &str, tags: BTreeMap<String, String>) -> DesiredBucket {
    let region = &lake.spec.region;
    let name = lake.audit_bucket();
    let trail = trail_arn(lake, account_id);
    let mut policy = tls_only(region, &name);
    policy.statements.push(
        Statement::new(
            "CloudTrailChecksTheBucketAcl",
            Effect::Allow,
            Principal::service("cloudtrail.amazonaws.com"),
            &["s3:GetBucketAcl"],
            &[bucket_arn(region, &name)],
        )
        .when("StringEquals", "aws:SourceArn", &[&trail]),
    );
    policy.statements.push(
        Statement::new(
            "CloudTrailWritesTheLakeTrail",
            Effect::Allow,
            Principal::service("cloudtrail.amazonaws.com"),
            &["s3:PutObject"],
            &[format!("{}/{TRAIL_PREFIX}/AWSLogs/{account_id}/*", bucket_arn(region, &name))],
        )
        .when("StringEquals", "aws:SourceArn", &[&trail]),
    );
    DesiredBucket {
        name,
        zone: None,
        object_lock: true,
        encryption: kms_encryption(key_arn),
        policy,
        logging: Some(Logging { target_bucket: lake.log_bucket(), target_prefix: "audit/".into() }),
        lifecycle: lifecycle_rules(&lake.spec.lifecycle),
        tags,
    }
}

/// SSE-KMS with `key_arn` and S3 Bucket Keys (S3.17).
pub fn kms_encryption(key_arn: &str) -> BucketEncryption {
    BucketEncryption { algorithm: "aws:kms".into(), kms_key_id: Some(key_arn.to_string()), bucket_key_enabled: true }
}

/// The policy of a bucket encrypted with `key_arn`: TLS only, and uploads must use that key
/// (zone buckets, and the BackupPolicy's replica buckets with their replica key).
pub fn kms_bucket_policy(region: &str, name: &str, key_arn: &str) -> PolicyDocument {
    let mut policy = tls_only(region, name);
    policy.statements.push(
        Statement::new(
            "DenyUploadsWithAnotherEncryption",
            Effect::Deny,
            Principal::anyone(),
            &["s3:PutObject"],
            &[format!("{}/*", bucket_arn(region, name))],
        )
        .when("StringNotEqualsIfExists", "s3:x-amz-server-side-encryption", &["aws:kms"]),
    );
    policy.statements.push(
        Statement::new(
            "DenyUploadsWithAnotherKmsKey",
            Effect::Deny,
            Principal::anyone(),
            &["s3:PutObject"],
            &[format!("{}/*", bucket_arn(region, name))],
        )
        .when("StringNotEqualsIfExists", "s3:x-amz-server-side-encryption-aws-kms-key-id", &[key_arn]),
    );
    policy
}

/// Deny every request over plain HTTP or TLS older than 1.2 (S3.5).
fn tls_only(region: &str, bucket: &str) -> PolicyDocument {
    let resources = [bucket_arn(region, bucket), format!("{}/*", bucket_arn(region, bucket))];
    PolicyDocument::new(vec![
        Statement::new("DenyInsecureTransport", Effect::Deny, Principal::anyone(), &["s3:*"], &resources).when(
            "Bool",
            "aws:SecureTransport",
            &["false"],
        ),
        Statement::new("DenyOutdatedTls", Effect::Deny, Principal::anyone(), &["s3:*"], &resources).when(
            "NumericLessThan",
            "s3:TlsVersion",
            &["1.2"],
        ),
    ])
}

/// The lake's own lifecycle rules for one set of settings (ids start with [`LIFECYCLE_PREFIX`]).
pub fn lifecycle_rules(lc: &lakeops_crds::datalake::Lifecycle) -> Vec<LifecycleRule> {
    let mut rules = vec![
        LifecycleRule {
            id: format!("{LIFECYCLE_PREFIX}abort-incomplete-uploads"),
            enabled: true,
            abort_incomplete_multipart_upload_days: Some(lc.abort_incomplete_multipart_upload_days),
            ..LifecycleRule::default()
        },
        LifecycleRule {
            id: format!("{LIFECYCLE_PREFIX}noncurrent-expiry"),
            enabled: true,
            noncurrent_version_expiration_days: Some(lc.noncurrent_version_expiration_days),
            ..LifecycleRule::default()
        },
    ];
    if let Some(days) = lc.intelligent_tiering_after_days {
        rules.push(LifecycleRule {
            id: format!("{LIFECYCLE_PREFIX}intelligent-tiering"),
            enabled: true,
            intelligent_tiering_after_days: Some(days),
            ..LifecycleRule::default()
        });
    }
    rules
}

/// Every catalog table.
pub fn tables(lake: &DataLake) -> Vec<DesiredTable> {
    let key = |k: &lakeops_crds::datalake::KeyAttribute| KeyDef {
        name: k.name.clone(),
        type_: serde_json::to_value(k.type_).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
    };
    lake.spec
        .catalog
        .tables
        .iter()
        .map(|t| DesiredTable {
            name: t.name.clone(),
            table_name: lake.table_name(&t.name),
            partition_key: key(&t.partition_key),
            sort_key: t.sort_key.as_ref().map(key),
            ttl_attribute: t.ttl_attribute.clone(),
            tags: resource_tags(lake),
        })
        .collect()
}

/// Block Public Access, all four (S3.1, S3.8).
pub const PUBLIC_ACCESS_BLOCK: PublicAccessBlock = PublicAccessBlock::ALL;

#[cfg(test)]
mod tests {
    use super::*;

    fn lake() -> DataLake {
        serde_saphyr::from_str(
            "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {name: sales, namespace: team-a, uid: u-1}\nspec:\n  region: eu-west-1\n  zones: [{name: raw, lifecycle: {noncurrentVersionExpirationDays: 30}}, {name: curated}]\n  tags: {team: a}\n  catalog: {tables: [{name: runs, partitionKey: {name: id, type: S}, ttlAttribute: exp}]}\n",
        )
        .expect("fixture")
    }

    #[test]
    fn zone_buckets_are_kms_encrypted_with_bucket_keys_and_log_to_the_log_bucket() {
        let b = buckets(&lake(), "123456789012", "arn:aws:kms:eu-west-1:123456789012:key/k");
        let names: Vec<_> = b.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["team-a-sales-logs", "team-a-sales-raw", "team-a-sales-curated"]);
        let raw = &b[1];
        assert_eq!(raw.encryption.kms_key_id.as_deref(), Some("arn:aws:kms:eu-west-1:123456789012:key/k"));
        assert!(raw.encryption.bucket_key_enabled && raw.object_lock);
        assert_eq!(
            raw.logging,
            Some(Logging { target_bucket: "team-a-sales-logs".into(), target_prefix: "raw/".into() })
        );
        assert_eq!(raw.tags.get(lakeops_crds::names::tag::OWNER).map(String::as_str), Some("team-a/sales"));
        assert_eq!(raw.tags.get("team").map(String::as_str), Some("a"));
        let expiry = raw.lifecycle.iter().find(|r| r.id.ends_with("noncurrent-expiry")).expect("rule");
        assert_eq!(expiry.noncurrent_version_expiration_days, Some(30), "zone override wins");
        assert_eq!(b[2].lifecycle[1].noncurrent_version_expiration_days, Some(90), "lake default");
    }

    #[test]
    fn every_bucket_policy_denies_plain_http_and_old_tls_and_never_allows_anyone() {
        for b in buckets(&lake(), "123456789012", "arn:k") {
            let sids: Vec<_> = b.policy.statements.iter().map(|s| s.sid.as_str()).collect();
            assert!(sids.contains(&"DenyInsecureTransport") && sids.contains(&"DenyOutdatedTls"), "{sids:?}");
            for s in &b.policy.statements {
                if s.effect == Effect::Allow {
                    assert_ne!(s.principal, Principal::anyone(), "{} allows everyone", s.sid);
                    assert!(s.condition.contains_key("StringEquals"), "{} is not scoped to the account", s.sid);
                }
            }
        }
    }

    #[test]
    fn the_key_policy_names_the_account_root_and_scopes_cloudwatch_logs_to_the_namespace_log_groups() {
        let DesiredKey::Managed { policy, rotation_days, alias, .. } = key(&lake(), "123456789012") else {
            panic!("managed key expected");
        };
        assert_eq!(alias, "alias/lakeops/team-a/sales");
        assert_eq!(rotation_days, 365);
        assert_eq!(policy.statements.len(), 2);
        assert_eq!(policy.statements[0].principal, Principal::aws(&["arn:aws:iam::123456789012:root".into()]));
        let logs = &policy.statements[1];
        assert_eq!(logs.principal, Principal::service("logs.eu-west-1.amazonaws.com"));
        assert_eq!(
            logs.condition["ArnLike"]["kms:EncryptionContext:aws:logs:arn"],
            [
                "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/lakeops-team-a-*",
                "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/vendedlogs/states/lakeops-team-a-*",
                "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/apigateway/lakeops-team-a-*",
            ]
        );
    }

    #[test]
    fn the_trail_records_data_events_of_every_copy_and_management_events_only_without_a_baseline() {
        let mut l = lake();
        l.spec.audit.trail = true;
        let d = Delivery { log_group_arn: "arn:g:*".into(), role_arn: "arn:r".into() };
        let t = trail(&l, "123456789012", "arn:k", &d, false).expect("trail");
        assert_eq!(
            t.events.s3_objects,
            [
                "arn:aws:s3:::team-a-sales-audit-replica/",
                "arn:aws:s3:::team-a-sales-audit/",
                "arn:aws:s3:::team-a-sales-curated-replica/",
                "arn:aws:s3:::team-a-sales-curated/",
                "arn:aws:s3:::team-a-sales-raw-replica/",
                "arn:aws:s3:::team-a-sales-raw/",
            ]
        );
        assert_eq!(t.events.lambda_functions, ["arn:aws:lambda:eu-west-1:123456789012:function:lakeops-team-a-"]);
        assert!(t.events.management_events, "nothing else records them");
        assert_eq!(
            (t.settings.cloud_watch_logs_group_arn.as_str(), t.settings.cloud_watch_logs_role_arn.as_str()),
            ("arn:g:*", "arn:r")
        );
        let covered = trail(&l, "123456789012", "arn:k", &d, true).expect("trail");
        assert!(!covered.events.management_events, "the baseline's account trail records them");
        l.spec.audit.management_events = Some(true);
        assert!(trail(&l, "123456789012", "arn:k", &d, true).expect("trail").events.management_events, "override");
    }

    #[test]
    fn tables_are_named_after_the_prefix() {
        let t = tables(&lake());
        assert_eq!(t[0].table_name, "team-a-sales-runs");
        assert_eq!(t[0].partition_key, KeyDef { name: "id".into(), type_: "S".into() });
        assert_eq!(t[0].ttl_attribute.as_deref(), Some("exp"));
    }
}
