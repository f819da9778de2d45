//! What must change: pure functions from (desired, observed) to typed changes, each one AWS
//! call with a readable description. The same changes drive the controller, drift events
//! and (later) `lakeops plan`.
use std::collections::BTreeMap;
use std::fmt;

use crate::aws::cloudtrail::{EventSelection, TrailInfo, TrailSettings};
use crate::aws::dynamodb::{TableDef, TableInfo, TableUpdate};
use crate::aws::s3::{BucketEncryption, DefaultRetention, LifecycleRule, Logging, PublicAccessBlock};

use super::desired::{BUCKET_OWNER_ENFORCED, DesiredBucket, DesiredTable, LIFECYCLE_PREFIX, PUBLIC_ACCESS_BLOCK};

/// What was read of an existing bucket (8 reads).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedBucket {
    pub tags: BTreeMap<String, String>,
    pub encryption: Option<BucketEncryption>,
    pub public_access_block: Option<PublicAccessBlock>,
    pub ownership: Option<String>,
    pub versioning: Option<String>,
    pub policy: Option<String>,
    pub logging: Option<Logging>,
    pub lifecycle: Option<Vec<LifecycleRule>>,
}

/// What was read of an existing table (3 reads).
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedTable {
    pub info: TableInfo,
    pub pitr: bool,
    pub ttl: Option<String>,
}

/// One AWS write.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    CreateBucket {
        bucket: String,
        object_lock: bool,
    },
    PutBucketTags {
        bucket: String,
        tags: BTreeMap<String, String>,
    },
    PutEncryption {
        bucket: String,
        encryption: BucketEncryption,
    },
    PutPublicAccessBlock {
        bucket: String,
    },
    PutOwnership {
        bucket: String,
    },
    EnableVersioning {
        bucket: String,
    },
    PutBucketPolicy {
        bucket: String,
        policy: String,
    },
    PutLogging {
        bucket: String,
        logging: Option<Logging>,
    },
    PutLifecycle {
        bucket: String,
        rules: Vec<LifecycleRule>,
    },
    /// Object Lock default retention (the audit bucket); `previous` for "old -> new".
    PutRetention {
        bucket: String,
        retention: DefaultRetention,
        previous: Option<DefaultRetention>,
        weakens: bool,
    },
    CreateTable {
        def: TableDef,
    },
    UpdateTable {
        table: String,
        update: TableUpdate,
    },
    EnablePitr {
        table: String,
    },
    SetTtl {
        table: String,
        attribute: String,
        enabled: bool,
    },
    CreateTrail {
        settings: TrailSettings,
        tags: BTreeMap<String, String>,
    },
    /// `from`: the settings found, to name what changes.
    UpdateTrail {
        settings: TrailSettings,
        from: Box<TrailSettings>,
    },
    /// `from`: what the trail recorded (`None` for a new trail).
    PutTrailEvents {
        trail: String,
        events: EventSelection,
        from: Option<EventSelection>,
    },
    StartLogging {
        trail: String,
    },
    DeleteTrail {
        trail: String,
    },
}

/// What was read of an existing trail (3 reads).
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedTrail {
    pub info: TrailInfo,
    pub events: EventSelection,
    pub logging: bool,
}

impl Change {
    /// The setting, as named in events and metrics.
    pub fn setting(&self) -> &'static str {
        match self {
            Change::CreateBucket { .. } => "bucket",
            Change::PutBucketTags { .. } => "tags",
            Change::PutEncryption { .. } => "default encryption",
            Change::PutPublicAccessBlock { .. } => "public access block",
            Change::PutOwnership { .. } => "object ownership",
            Change::EnableVersioning { .. } => "versioning",
            Change::PutBucketPolicy { .. } => "bucket policy",
            Change::PutLogging { .. } => "access logging",
            Change::PutLifecycle { .. } => "lifecycle",
            Change::PutRetention { .. } => "Object Lock retention",
            Change::CreateTable { .. } => "table",
            Change::UpdateTable { .. } => "table settings",
            Change::EnablePitr { .. } => "point-in-time recovery",
            Change::SetTtl { .. } => "time to live",
            Change::CreateTrail { .. } => "audit trail",
            Change::UpdateTrail { .. } => "audit trail settings",
            Change::PutTrailEvents { .. } => "audit trail events",
            Change::StartLogging { .. } => "audit trail logging",
            Change::DeleteTrail { .. } => "audit trail",
        }
    }

    /// The AWS resource the change is about.
    pub fn resource(&self) -> &str {
        match self {
            Change::CreateBucket { bucket, .. }
            | Change::PutBucketTags { bucket, .. }
            | Change::PutEncryption { bucket, .. }
            | Change::PutPublicAccessBlock { bucket }
            | Change::PutOwnership { bucket }
            | Change::EnableVersioning { bucket }
            | Change::PutBucketPolicy { bucket, .. }
            | Change::PutLogging { bucket, .. }
            | Change::PutLifecycle { bucket, .. }
            | Change::PutRetention { bucket, .. } => bucket,
            Change::CreateTable { def } => &def.name,
            Change::UpdateTable { table, .. } | Change::EnablePitr { table } | Change::SetTtl { table, .. } => table,
            Change::CreateTrail { settings, .. } | Change::UpdateTrail { settings, .. } => &settings.name,
            Change::PutTrailEvents { trail, .. } | Change::StartLogging { trail } | Change::DeleteTrail { trail } => {
                trail
            }
        }
    }

    /// True when the change removes a protection (the controller only does so when the
    /// spec explicitly turns it off).
    pub fn weakens(&self) -> bool {
        matches!(
            self,
            Change::PutLogging { logging: None, .. }
                | Change::SetTtl { enabled: false, .. }
                | Change::DeleteTrail { .. }
                | Change::PutRetention { weakens: true, .. }
        )
    }
}

/// What a change does to its resource, for plans (`None`: a setting).
fn action(change: &Change) -> Option<crate::engine::Action> {
    use crate::engine::Action;
    match change {
        Change::CreateBucket { .. } | Change::CreateTable { .. } | Change::CreateTrail { .. } => Some(Action::Create),
        Change::DeleteTrail { .. } => Some(Action::Delete),
        Change::PutBucketTags { .. }
        | Change::PutEncryption { .. }
        | Change::PutPublicAccessBlock { .. }
        | Change::PutOwnership { .. }
        | Change::EnableVersioning { .. }
        | Change::PutBucketPolicy { .. }
        | Change::PutLogging { .. }
        | Change::PutLifecycle { .. }
        | Change::PutRetention { .. }
        | Change::UpdateTable { .. }
        | Change::EnablePitr { .. }
        | Change::SetTtl { .. }
        | Change::UpdateTrail { .. }
        | Change::PutTrailEvents { .. }
        | Change::StartLogging { .. } => None,
    }
}

crate::engine::describe_with_inherent!(Change, action);

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::CreateBucket { bucket, object_lock } => {
                write!(f, "create bucket {bucket}{}", if *object_lock { " with Object Lock" } else { "" })
            }
            Change::PutBucketTags { bucket, .. } => write!(f, "bucket {bucket}: set tags"),
            Change::PutEncryption { bucket, encryption } => write!(
                f,
                "bucket {bucket}: default encryption {}{}{}",
                encryption.algorithm,
                encryption.kms_key_id.as_deref().map(|k| format!(" with {k}")).unwrap_or_default(),
                if encryption.bucket_key_enabled { ", bucket keys on" } else { "" }
            ),
            Change::PutPublicAccessBlock { bucket } => write!(f, "bucket {bucket}: block all public access"),
            Change::PutOwnership { bucket } => {
                write!(f, "bucket {bucket}: object ownership {BUCKET_OWNER_ENFORCED} (ACLs off)")
            }
            Change::EnableVersioning { bucket } => write!(f, "bucket {bucket}: enable versioning"),
            Change::PutBucketPolicy { bucket, .. } => write!(f, "bucket {bucket}: set the TLS-only bucket policy"),
            Change::PutLogging { bucket, logging: Some(l) } => {
                write!(f, "bucket {bucket}: access logs to {}/{}", l.target_bucket, l.target_prefix)
            }
            Change::PutLogging { bucket, logging: None } => write!(f, "bucket {bucket}: turn access logging off"),
            Change::PutLifecycle { bucket, rules } => {
                write!(f, "bucket {bucket}: set {} lifecycle rule(s)", rules.len())
            }
            Change::PutRetention { bucket, retention, previous, .. } => {
                write!(f, "bucket {bucket}: Object Lock default retention {} {} days", retention.mode, retention.days)?;
                match previous {
                    Some(p) => write!(f, " (was {} {} days)", p.mode, p.days),
                    None => Ok(()),
                }
            }
            Change::CreateTable { def } => write!(f, "create table {} encrypted with {}", def.name, def.kms_key_arn),
            Change::UpdateTable { table, update } => write!(f, "table {table}: update {update:?}"),
            Change::EnablePitr { table } => write!(f, "table {table}: enable point-in-time recovery"),
            Change::SetTtl { table, attribute, enabled } => {
                write!(f, "table {table}: {} TTL on {attribute}", if *enabled { "enable" } else { "disable" })
            }
            Change::CreateTrail { settings, .. } => {
                write!(
                    f,
                    "create multi-region trail {} to {}/{} encrypted with {}, log-file validation on",
                    settings.name, settings.s3_bucket, settings.s3_key_prefix, settings.kms_key_id
                )?;
                match settings.cloud_watch_logs_group_arn.rsplit_once(":log-group:") {
                    Some((_, group)) => write!(f, ", delivered to CloudWatch Logs {}", group.trim_end_matches(":*")),
                    None => Ok(()),
                }
            }
            Change::UpdateTrail { settings, from } => {
                write!(f, "trail {}: {}", settings.name, settings_changes(from, settings).join(", "))
            }
            Change::PutTrailEvents { trail, events, from } => {
                write!(f, "trail {trail}: {}", describe_events(events))?;
                match from {
                    Some(old) if old.management_events != events.management_events => write!(
                        f,
                        " (management events {} -> {})",
                        on_off(old.management_events),
                        on_off(events.management_events)
                    ),
                    _ => Ok(()),
                }
            }
            Change::StartLogging { trail } => write!(f, "trail {trail}: start logging"),
            Change::DeleteTrail { trail } => write!(f, "delete trail {trail} (spec.audit.trail is off)"),
        }
    }
}

/// Changes that create or converge one bucket. `observed` is `None` when it does not exist.
pub fn bucket_changes(desired: &DesiredBucket, observed: Option<&ObservedBucket>) -> Vec<Change> {
    let bucket = desired.name.clone();
    let created = created_bucket(desired);
    let mut out = Vec::new();
    let o = match observed {
        Some(o) => o,
        None => {
            out.push(Change::CreateBucket { bucket: bucket.clone(), object_lock: desired.object_lock });
            &created
        }
    };
    if desired.tags.iter().any(|(k, v)| o.tags.get(k) != Some(v)) {
        // Tags are one document: keep tags others put there, ours win.
        let mut tags = o.tags.clone();
        tags.extend(desired.tags.clone());
        out.push(Change::PutBucketTags { bucket: bucket.clone(), tags });
    }
    if !encryption_matches(o.encryption.as_ref(), &desired.encryption) {
        out.push(Change::PutEncryption { bucket: bucket.clone(), encryption: desired.encryption.clone() });
    }
    if o.public_access_block != Some(PUBLIC_ACCESS_BLOCK) {
        out.push(Change::PutPublicAccessBlock { bucket: bucket.clone() });
    }
    if o.ownership.as_deref() != Some(BUCKET_OWNER_ENFORCED) {
        out.push(Change::PutOwnership { bucket: bucket.clone() });
    }
    if o.versioning.as_deref() != Some("Enabled") {
        out.push(Change::EnableVersioning { bucket: bucket.clone() });
    }
    if !o.policy.as_deref().is_some_and(|p| desired.policy.matches_json(p)) {
        out.push(Change::PutBucketPolicy { bucket: bucket.clone(), policy: desired.policy.to_json() });
    }
    if o.logging != desired.logging {
        out.push(Change::PutLogging { bucket: bucket.clone(), logging: desired.logging.clone() });
    }
    let rules = merged_lifecycle(o.lifecycle.as_deref().unwrap_or_default(), &desired.lifecycle);
    if o.lifecycle.as_deref().map(sorted) != Some(rules.clone()) {
        out.push(Change::PutLifecycle { bucket, rules });
    }
    out
}

/// What CreateBucket itself sets, which counts as observed for a new bucket: object
/// ownership (the request carries `BucketOwnerEnforced`) and, with Object Lock, versioning.
fn created_bucket(desired: &DesiredBucket) -> ObservedBucket {
    ObservedBucket {
        ownership: Some(BUCKET_OWNER_ENFORCED.to_string()),
        versioning: desired.object_lock.then(|| "Enabled".to_string()),
        ..ObservedBucket::default()
    }
}

fn encryption_matches(observed: Option<&BucketEncryption>, desired: &BucketEncryption) -> bool {
    let Some(o) = observed else { return false };
    // AWS may report the key by id or by ARN.
    let key_matches = match (&o.kms_key_id, &desired.kms_key_id) {
        (None, None) => true,
        (Some(a), Some(b)) => a == b || b.ends_with(&format!("/{a}")) || a.ends_with(&format!("/{b}")),
        _ => false,
    };
    o.algorithm == desired.algorithm && key_matches && o.bucket_key_enabled == desired.bucket_key_enabled
}

/// The bucket's lifecycle document: rules others own are kept, ours replaced, by id order.
pub fn merged_lifecycle(observed: &[LifecycleRule], ours: &[LifecycleRule]) -> Vec<LifecycleRule> {
    merged_lifecycle_owned(observed, ours, LIFECYCLE_PREFIX)
}

/// One lifecycle document shared by several owners, each owning the rules whose id starts
/// with its prefix: the rules under `prefix` become `ours`, every other rule is kept, and
/// the result is in id order so that equal documents compare equal.
pub fn merged_lifecycle_owned(observed: &[LifecycleRule], ours: &[LifecycleRule], prefix: &str) -> Vec<LifecycleRule> {
    let mut rules: Vec<LifecycleRule> = observed.iter().filter(|r| !r.id.starts_with(prefix)).cloned().collect();
    rules.extend(ours.iter().cloned());
    sorted(&rules)
}

/// Rules in id order.
pub fn sorted(rules: &[LifecycleRule]) -> Vec<LifecycleRule> {
    let mut r = rules.to_vec();
    r.sort_by(|a, b| a.id.cmp(&b.id));
    r
}

/// Changes that create or converge one table.
pub fn table_changes(desired: &DesiredTable, key_arn: &str, observed: Option<&ObservedTable>) -> Vec<Change> {
    let table = desired.table_name.clone();
    let Some(o) = observed else {
        let mut out = vec![Change::CreateTable {
            def: TableDef {
                name: table.clone(),
                partition_key: desired.partition_key.clone(),
                sort_key: desired.sort_key.clone(),
                kms_key_arn: key_arn.to_string(),
                tags: desired.tags.clone(),
            },
        }];
        out.push(Change::EnablePitr { table: table.clone() });
        if let Some(attr) = &desired.ttl_attribute {
            out.push(Change::SetTtl { table, attribute: attr.clone(), enabled: true });
        }
        return out;
    };
    let mut out = Vec::new();
    let info = &o.info;
    let mut update = TableUpdate::default();
    if info.billing_mode.as_deref() != Some("PAY_PER_REQUEST") {
        update.billing_pay_per_request = true;
    }
    if !info.deletion_protection {
        update.deletion_protection = Some(true);
    }
    let sse_ok = info.sse_kms_key_arn.as_deref().is_some_and(|k| k == key_arn || key_arn.ends_with(&format!("/{k}")));
    if !sse_ok {
        update.sse_kms_key_arn = Some(key_arn.to_string());
    }
    if !info.stream_enabled {
        update.enable_stream = true;
    }
    if update != TableUpdate::default() {
        out.push(Change::UpdateTable { table: table.clone(), update });
    }
    if !o.pitr {
        out.push(Change::EnablePitr { table: table.clone() });
    }
    match (&o.ttl, &desired.ttl_attribute) {
        (Some(a), Some(b)) if a == b => {}
        (Some(a), None) => out.push(Change::SetTtl { table, attribute: a.clone(), enabled: false }),
        (Some(a), Some(b)) => {
            // DynamoDB allows one TTL attribute; switching means disabling the old one first.
            out.push(Change::SetTtl { table: table.clone(), attribute: a.clone(), enabled: false });
            out.push(Change::SetTtl { table, attribute: b.clone(), enabled: true });
        }
        (None, Some(b)) => out.push(Change::SetTtl { table, attribute: b.clone(), enabled: true }),
        (None, None) => {}
    }
    out
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// What a trail's selectors record, for plans and events.
fn describe_events(e: &EventSelection) -> String {
    let mut parts = Vec::new();
    if !e.s3_objects.is_empty() {
        parts.push(format!("S3 object events under {}", e.s3_objects.join(", ")));
    }
    if !e.lambda_functions.is_empty() {
        parts.push(format!("Lambda invocations of functions under {}", e.lambda_functions.join(", ")));
    }
    parts.push(format!("management events {}", on_off(e.management_events)));
    parts.join("; ")
}

/// The trail settings that differ, as `name: old -> new`.
fn settings_changes(from: &TrailSettings, to: &TrailSettings) -> Vec<String> {
    let none = |s: &str| if s.is_empty() { "(none)".to_string() } else { s.to_string() };
    let mut out = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name} {a} -> {b}"));
        }
    };
    field("S3 bucket", none(&from.s3_bucket), none(&to.s3_bucket));
    field("S3 key prefix", none(&from.s3_key_prefix), none(&to.s3_key_prefix));
    field("KMS key", none(&from.kms_key_id), none(&to.kms_key_id));
    field("multi-region", from.multi_region.to_string(), to.multi_region.to_string());
    field("global service events", from.global_service_events.to_string(), to.global_service_events.to_string());
    field("log-file validation", from.log_file_validation.to_string(), to.log_file_validation.to_string());
    field("CloudWatch Logs group", none(&from.cloud_watch_logs_group_arn), none(&to.cloud_watch_logs_group_arn));
    field("CloudWatch Logs role", none(&from.cloud_watch_logs_role_arn), none(&to.cloud_watch_logs_role_arn));
    if out.is_empty() {
        out.push("restore its settings".into());
    }
    out
}

/// Changes that create or converge the trail. A trail created before the lake trail became
/// data-events-only, with CloudWatch Logs and the audit bucket, migrates here in place: one
/// UpdateTrail and one PutEventSelectors.
pub fn trail_changes(desired: &super::desired::DesiredTrail, observed: Option<&ObservedTrail>) -> Vec<Change> {
    let name = desired.settings.name.clone();
    let Some(o) = observed else {
        return vec![
            Change::CreateTrail { settings: desired.settings.clone(), tags: desired.tags.clone() },
            Change::PutTrailEvents { trail: name.clone(), events: desired.events.clone(), from: None },
            Change::StartLogging { trail: name },
        ];
    };
    let mut out = Vec::new();
    let mut seen = o.info.settings.clone();
    // AWS reports the key as an ARN; accept an id that the desired ARN ends with.
    if desired.settings.kms_key_id.ends_with(&format!("/{}", seen.kms_key_id)) {
        seen.kms_key_id = desired.settings.kms_key_id.clone();
    }
    seen.s3_key_prefix = seen.s3_key_prefix.trim_end_matches('/').to_string();
    // A plan does not know the ARNs of a group or role it would create.
    let mut want = desired.settings.clone();
    if crate::engine::is_placeholder(&want.cloud_watch_logs_role_arn) {
        want.cloud_watch_logs_role_arn = seen.cloud_watch_logs_role_arn.clone();
    }
    if seen != want {
        out.push(Change::UpdateTrail { settings: desired.settings.clone(), from: Box::new(seen) });
    }
    if o.events != desired.events {
        out.push(Change::PutTrailEvents {
            trail: name.clone(),
            events: desired.events.clone(),
            from: Some(o.events.clone()),
        });
    }
    if !o.logging {
        out.push(Change::StartLogging { trail: name });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::datalake::desired;

    fn lake() -> lakeops_crds::DataLake {
        serde_saphyr::from_str(
            "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {name: sales, namespace: team-a, uid: u-1}\nspec:\n  region: eu-west-1\n  zones: [{name: raw}]\n  catalog: {tables: [{name: runs, partitionKey: {name: id, type: S}}]}\n",
        )
        .expect("fixture")
    }

    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/k-1";

    fn converged(b: &DesiredBucket) -> ObservedBucket {
        ObservedBucket {
            tags: b.tags.clone(),
            encryption: Some(b.encryption.clone()),
            public_access_block: Some(PublicAccessBlock::ALL),
            ownership: Some(BUCKET_OWNER_ENFORCED.into()),
            versioning: Some("Enabled".into()),
            policy: Some(b.policy.to_json()),
            logging: b.logging.clone(),
            lifecycle: Some(b.lifecycle.clone()),
        }
    }

    #[test]
    fn a_missing_bucket_is_created_with_every_protection() {
        let b = &desired::buckets(&lake(), "123456789012", KEY)[1];
        let settings: Vec<_> = bucket_changes(b, None).iter().map(Change::setting).collect();
        assert_eq!(
            settings,
            [
                "bucket",
                "tags",
                "default encryption",
                "public access block",
                "bucket policy",
                "access logging",
                "lifecycle"
            ],
            "versioning comes with Object Lock and ownership with the CreateBucket request"
        );
    }

    #[test]
    fn a_converged_bucket_needs_no_change() {
        for b in desired::buckets(&lake(), "123456789012", KEY) {
            assert_eq!(bucket_changes(&b, Some(&converged(&b))), vec![], "{}", b.name);
        }
    }

    #[test]
    fn each_drifted_setting_is_one_change() {
        let b = &desired::buckets(&lake(), "123456789012", KEY)[1];
        let mut o = converged(b);
        o.encryption =
            Some(BucketEncryption { algorithm: "AES256".into(), kms_key_id: None, bucket_key_enabled: false });
        o.versioning = Some("Suspended".into());
        o.public_access_block = Some(PublicAccessBlock { block_public_policy: false, ..PublicAccessBlock::ALL });
        o.policy = None;
        let settings: Vec<_> = bucket_changes(b, Some(&o)).iter().map(Change::setting).collect();
        assert_eq!(settings, ["default encryption", "public access block", "versioning", "bucket policy"]);
    }

    #[test]
    fn foreign_lifecycle_rules_and_tags_are_kept() {
        let b = &desired::buckets(&lake(), "123456789012", KEY)[1];
        let mut o = converged(b);
        let foreign = LifecycleRule { id: "team-archive".into(), enabled: true, ..LifecycleRule::default() };
        o.lifecycle = Some(vec![foreign.clone()]);
        o.tags = BTreeMap::from([("someone".into(), "else".into())]);
        let changes = bucket_changes(b, Some(&o));
        let Some(Change::PutLifecycle { rules, .. }) = changes.iter().find(|c| c.setting() == "lifecycle") else {
            panic!("lifecycle change expected: {changes:?}");
        };
        assert!(rules.contains(&foreign) && rules.len() == b.lifecycle.len() + 1);
        let Some(Change::PutBucketTags { tags, .. }) = changes.iter().find(|c| c.setting() == "tags") else {
            panic!("tags change expected");
        };
        assert_eq!(tags.get("someone").map(String::as_str), Some("else"));
    }

    #[test]
    fn encryption_reported_by_key_id_matches_the_arn() {
        let desired =
            BucketEncryption { algorithm: "aws:kms".into(), kms_key_id: Some(KEY.into()), bucket_key_enabled: true };
        let observed = BucketEncryption { kms_key_id: Some("k-1".into()), ..desired.clone() };
        assert!(encryption_matches(Some(&observed), &desired));
    }

    #[test]
    fn a_table_drifting_off_pitr_and_protection_is_restored() {
        let t = &desired::tables(&lake())[0];
        let o = ObservedTable {
            info: TableInfo {
                billing_mode: Some("PAY_PER_REQUEST".into()),
                sse_kms_key_arn: Some(KEY.into()),
                deletion_protection: false,
                stream_enabled: true,
                ..TableInfo::default()
            },
            pitr: false,
            ttl: None,
        };
        let changes = table_changes(t, KEY, Some(&o));
        assert_eq!(
            changes,
            vec![
                Change::UpdateTable {
                    table: "team-a-sales-runs".into(),
                    update: TableUpdate { deletion_protection: Some(true), ..TableUpdate::default() }
                },
                Change::EnablePitr { table: "team-a-sales-runs".into() },
            ]
        );
    }
}
