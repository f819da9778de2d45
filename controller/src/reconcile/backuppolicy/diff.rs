//! What must change: pure functions from (desired, observed) to typed changes, each one AWS
//! call. Replica buckets, replica keys and PITR reuse the DataLake engine's changes.
use std::collections::BTreeMap;
use std::fmt;

use crate::aws::dynamodb::TableInfo;
use crate::aws::s3::{DefaultRetention, LifecycleRule, ReplicationConfig};
use crate::reconcile::datalake::diff::{Change as LakeChange, merged_lifecycle_owned, sorted};

use super::desired::{LIFECYCLE_PREFIX, fnv1a, retention_weakens};

/// What was read of a zone bucket (3 reads).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedZone {
    /// Whether Object Lock is enabled, and the default retention.
    pub object_lock: bool,
    pub retention: Option<DefaultRetention>,
    pub replication: Option<ReplicationConfig>,
    pub lifecycle: Option<Vec<LifecycleRule>>,
}

/// What was read of a catalog table (2 reads: DescribeTable shows replicas and stream).
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedTable {
    pub info: TableInfo,
    pub pitr: bool,
}

/// One AWS write.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A change the DataLake engine also makes (replica bucket baseline, replica key, PITR).
    Lake(LakeChange),
    /// The catalog tables' AWS Backup (vaults, plan, selection).
    Backup(super::catalog::BackupChange),
    PutRetention {
        bucket: String,
        retention: DefaultRetention,
        /// What the bucket had, for "old -> new" in plans and events.
        previous: Option<DefaultRetention>,
        weakens: bool,
    },
    ClearRetention {
        bucket: String,
    },
    PutReplication {
        bucket: String,
        config: ReplicationConfig,
    },
    DeleteReplication {
        bucket: String,
    },
    CreateReplica {
        table: String,
        region: String,
        kms_key_arn: String,
    },
    DeleteReplica {
        table: String,
        region: String,
    },
}

impl Change {
    /// The setting, as named in events and metrics.
    pub fn setting(&self) -> &'static str {
        match self {
            Change::Lake(c) => c.setting(),
            Change::Backup(c) => c.setting(),
            Change::PutRetention { .. } | Change::ClearRetention { .. } => "Object Lock retention",
            Change::PutReplication { .. } | Change::DeleteReplication { .. } => "replication",
            Change::CreateReplica { .. } | Change::DeleteReplica { .. } => "table replica",
        }
    }

    /// True when the change removes or weakens a protection; the engine only emits those
    /// when the accepted spec asks for them (the guard has checked the flag).
    pub fn weakens(&self) -> bool {
        match self {
            Change::Lake(c) => c.weakens(),
            Change::Backup(c) => c.weakens(),
            Change::PutRetention { weakens, .. } => *weakens,
            Change::ClearRetention { .. } | Change::DeleteReplication { .. } | Change::DeleteReplica { .. } => true,
            Change::PutReplication { .. } | Change::CreateReplica { .. } => false,
        }
    }
}

impl Change {
    /// The AWS resource the change is about.
    pub fn resource(&self) -> &str {
        match self {
            Change::Lake(c) => c.resource(),
            Change::Backup(c) => c.resource(),
            Change::PutRetention { bucket, .. }
            | Change::ClearRetention { bucket }
            | Change::PutReplication { bucket, .. }
            | Change::DeleteReplication { bucket } => bucket,
            Change::CreateReplica { table, .. } | Change::DeleteReplica { table, .. } => table,
        }
    }
}

/// What a change does to its resource, for plans (`None`: a setting).
fn action(change: &Change) -> Option<crate::engine::Action> {
    use crate::engine::Action;
    match change {
        Change::Lake(c) => crate::engine::Describe::action(c),
        Change::Backup(c) => c.action(),
        Change::ClearRetention { .. } | Change::DeleteReplication { .. } | Change::DeleteReplica { .. } => {
            Some(Action::Delete)
        }
        Change::PutRetention { .. } | Change::PutReplication { .. } | Change::CreateReplica { .. } => None,
    }
}

crate::engine::describe_with_inherent!(Change, action);

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Lake(c) => c.fmt(f),
            Change::Backup(c) => c.fmt(f),
            Change::PutRetention { bucket, retention, previous, .. } => {
                write!(f, "bucket {bucket}: Object Lock default retention {} {} days", retention.mode, retention.days)?;
                match previous {
                    Some(p) => write!(f, " (was {} {} days)", p.mode, p.days),
                    None => write!(f, " (was none)"),
                }
            }
            Change::ClearRetention { bucket } => write!(f, "bucket {bucket}: remove the Object Lock default retention"),
            Change::PutReplication { bucket, config } => write!(
                f,
                "bucket {bucket}: replicate to {}",
                config.rules.iter().map(|r| r.destination_bucket.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Change::DeleteReplication { bucket } => write!(f, "bucket {bucket}: stop replication"),
            Change::CreateReplica { table, region, .. } => write!(f, "table {table}: add a replica in {region}"),
            Change::DeleteReplica { table, region } => write!(f, "table {table}: remove the replica in {region}"),
        }
    }
}

/// The Object Lock retention change of one bucket. `owned`: the policy applied a retention
/// before, so removing it from the spec clears it; a retention set by someone else stays.
pub fn retention_change(
    bucket: &str,
    desired: Option<&DefaultRetention>,
    observed: Option<&DefaultRetention>,
    owned: bool,
) -> Option<Change> {
    match (desired, observed) {
        (Some(d), o) if o != Some(d) => Some(Change::PutRetention {
            bucket: bucket.into(),
            retention: d.clone(),
            previous: o.cloned(),
            weakens: o.is_some_and(|o| retention_weakens(o, d)),
        }),
        (None, Some(_)) if owned => Some(Change::ClearRetention { bucket: bucket.into() }),
        _ => None,
    }
}

/// A digest of the configuration lakeops wrote and of how S3 read it back. S3 may report
/// a configuration in another shape than it was written (emulators drop fields): a later
/// read equal to that echo means nobody changed it since.
pub fn replication_digest(desired: &ReplicationConfig, echo: Option<&ReplicationConfig>) -> String {
    format!("{:016x}", fnv1a(format!("{desired:?}|{echo:?}").as_bytes()))
}

/// The replication change of one zone bucket. `ours`: the role ARN lakeops uses, so that
/// only a configuration lakeops wrote is ever removed.
pub fn replication_change(
    bucket: &str,
    desired: Option<&ReplicationConfig>,
    observed: Option<&ReplicationConfig>,
    recorded_digest: Option<&str>,
    ours: Option<&str>,
) -> Option<Change> {
    match desired {
        Some(d) => {
            let same = observed == Some(d) || recorded_digest == Some(replication_digest(d, observed).as_str());
            (!same).then(|| Change::PutReplication { bucket: bucket.into(), config: d.clone() })
        }
        None => observed
            .filter(|o| ours.is_some_and(|role| o.role == role))
            .map(|_| Change::DeleteReplication { bucket: bucket.into() }),
    }
}

/// The lifecycle change of one zone bucket: the policy's rules merged with everyone else's.
pub fn lifecycle_change(bucket: &str, ours: &[LifecycleRule], observed: Option<&[LifecycleRule]>) -> Option<Change> {
    let merged = merged_lifecycle_owned(observed.unwrap_or_default(), ours, LIFECYCLE_PREFIX);
    let current = observed.map(sorted).unwrap_or_default();
    (merged != current).then(|| Change::Lake(LakeChange::PutLifecycle { bucket: bucket.into(), rules: merged }))
}

/// What a table's replicas look like after this round.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaState {
    /// Regions AWS reports ACTIVE.
    pub active: Vec<String>,
    /// Regions asked for that AWS does not report at all yet.
    pub requested: Vec<String>,
    /// Regions wanted and not ACTIVE (pending, creating, or not reported).
    pub pending: Vec<String>,
}

/// Changes for one catalog table: PITR when the policy enforces it, then at most one
/// replica change (DynamoDB takes one at a time, and none while the table is UPDATING).
/// `requested`: regions asked for earlier that AWS never reported, not asked again (on AWS
/// a requested replica shows at once as CREATING; asking again would only repeat the write).
/// `owned`: replica regions the policy applied before, the only ones it ever removes.
pub fn table_changes(
    table: &str,
    pitr: bool,
    replicas: &[String],
    replica_keys: &BTreeMap<String, String>,
    observed: &ObservedTable,
    requested: &[String],
    owned: &[String],
) -> (Vec<Change>, ReplicaState) {
    let mut out = Vec::new();
    if pitr && !observed.pitr {
        out.push(Change::Lake(LakeChange::EnablePitr { table: table.into() }));
    }
    let reported: BTreeMap<&str, &str> =
        observed.info.replicas.iter().map(|r| (r.region.as_str(), r.status.as_str())).collect();
    let mut still_requested: Vec<String> =
        requested.iter().filter(|r| replicas.contains(r) && !reported.contains_key(r.as_str())).cloned().collect();
    if observed.info.status == "ACTIVE" {
        let missing = replicas.iter().find(|r| {
            !reported.contains_key(r.as_str()) && !still_requested.contains(r) && replica_keys.contains_key(*r)
        });
        let extra = reported.keys().find(|r| !replicas.iter().any(|w| w == *r) && owned.iter().any(|o| o == *r));
        if let Some(region) = missing {
            out.push(Change::CreateReplica {
                table: table.into(),
                region: region.clone(),
                kms_key_arn: replica_keys.get(region).cloned().unwrap_or_default(),
            });
            still_requested.push(region.clone());
        } else if let Some(region) = extra {
            out.push(Change::DeleteReplica { table: table.into(), region: (*region).to_string() });
        }
    }
    still_requested.sort();
    let active: Vec<String> = reported.iter().filter(|(_, s)| **s == "ACTIVE").map(|(r, _)| (*r).to_string()).collect();
    let pending = replicas.iter().filter(|r| !active.contains(r)).cloned().collect();
    (out, ReplicaState { active, requested: still_requested, pending })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::dynamodb::Replica;
    use crate::aws::s3::ReplicationRule;

    fn config(role: &str) -> ReplicationConfig {
        ReplicationConfig {
            role: role.into(),
            rules: vec![ReplicationRule {
                id: "lakeops-backup-replication".into(),
                priority: 1,
                enabled: true,
                destination_bucket: "arn:aws:s3:::b-replica".into(),
                sse_kms_encrypted_objects: true,
                ..ReplicationRule::default()
            }],
        }
    }

    #[test]
    fn retention_is_set_when_missing_or_different_and_flagged_when_weaker() {
        let r = |mode: &str, days| DefaultRetention { mode: mode.into(), days };
        assert_eq!(retention_change("b", Some(&r("GOVERNANCE", 7)), Some(&r("GOVERNANCE", 7)), true), None);
        let c = retention_change("b", Some(&r("GOVERNANCE", 7)), None, false).expect("set");
        assert!(!c.weakens());
        let c = retention_change("b", Some(&r("GOVERNANCE", 7)), Some(&r("GOVERNANCE", 30)), true).expect("set");
        assert!(c.weakens(), "{c}");
        assert_eq!(retention_change("b", None, Some(&r("GOVERNANCE", 7)), false), None, "not ours: left alone");
        assert_eq!(
            retention_change("b", None, Some(&r("GOVERNANCE", 7)), true),
            Some(Change::ClearRetention { bucket: "b".into() })
        );
    }

    #[test]
    fn replication_matching_or_echoing_what_was_written_needs_no_change() {
        let d = config("arn:ours");
        assert_eq!(replication_change("b", Some(&d), Some(&d), None, Some("arn:ours")), None);
        // An emulator that drops SourceSelectionCriteria on read: the recorded echo matches.
        let echo = ReplicationConfig {
            rules: vec![ReplicationRule { sse_kms_encrypted_objects: false, ..d.rules[0].clone() }],
            ..d.clone()
        };
        let digest = replication_digest(&d, Some(&echo));
        assert_eq!(replication_change("b", Some(&d), Some(&echo), Some(&digest), Some("arn:ours")), None);
        // Someone changes it afterwards: the read no longer echoes the write.
        let tampered = ReplicationConfig { role: "arn:other".into(), ..echo.clone() };
        assert!(matches!(
            replication_change("b", Some(&d), Some(&tampered), Some(&digest), Some("arn:ours")),
            Some(Change::PutReplication { .. })
        ));
        assert!(replication_change("b", Some(&d), None, Some(&digest), Some("arn:ours")).is_some());
    }

    #[test]
    fn only_a_replication_lakeops_wrote_is_removed() {
        let d = config("arn:ours");
        assert_eq!(
            replication_change("b", None, Some(&d), None, Some("arn:ours")),
            Some(Change::DeleteReplication { bucket: "b".into() })
        );
        assert_eq!(replication_change("b", None, Some(&config("arn:theirs")), None, Some("arn:ours")), None);
        assert_eq!(replication_change("b", None, None, None, Some("arn:ours")), None);
    }

    #[test]
    fn lifecycle_merge_keeps_the_lakes_rules_and_is_deterministic() {
        let lake = LifecycleRule { id: "lakeops-lake-noncurrent-expiry".into(), enabled: true, ..Default::default() };
        let foreign = LifecycleRule { id: "archive".into(), enabled: true, ..Default::default() };
        let ours = LifecycleRule {
            id: "lakeops-backup-noncurrent-versions".into(),
            enabled: true,
            noncurrent_version_expiration_days: Some(60),
            ..Default::default()
        };
        let observed = vec![lake.clone(), foreign.clone()];
        let Some(Change::Lake(LakeChange::PutLifecycle { rules, .. })) =
            lifecycle_change("b", std::slice::from_ref(&ours), Some(&observed))
        else {
            panic!("lifecycle change expected");
        };
        assert_eq!(rules, vec![foreign.clone(), ours.clone(), lake.clone()], "by id");
        assert_eq!(lifecycle_change("b", std::slice::from_ref(&ours), Some(&rules)), None, "converged");
        let reordered = vec![lake.clone(), ours.clone(), foreign.clone()];
        assert_eq!(lifecycle_change("b", &[ours], Some(&reordered)), None, "order does not matter");
        let Some(Change::Lake(LakeChange::PutLifecycle { rules, .. })) = lifecycle_change("b", &[], Some(&reordered))
        else {
            panic!("removal expected");
        };
        assert_eq!(rules, vec![foreign, lake], "only our rule goes");
        assert_eq!(lifecycle_change("b", &[], None), None);
    }

    fn table(status: &str, replicas: &[(&str, &str)], pitr: bool) -> ObservedTable {
        ObservedTable {
            info: TableInfo {
                status: status.into(),
                replicas: replicas.iter().map(|(r, s)| Replica { region: (*r).into(), status: (*s).into() }).collect(),
                ..TableInfo::default()
            },
            pitr,
        }
    }

    fn keys() -> BTreeMap<String, String> {
        ["us-west-2", "ap-south-1"].iter().map(|r| ((*r).to_string(), format!("arn:key:{r}"))).collect()
    }

    #[test]
    fn replicas_are_added_one_region_at_a_time_and_pitr_is_restored() {
        let want = vec!["us-west-2".to_string(), "ap-south-1".to_string()];
        let (changes, state) = table_changes("t", true, &want, &keys(), &table("ACTIVE", &[], false), &[], &[]);
        assert_eq!(
            changes,
            vec![
                Change::Lake(LakeChange::EnablePitr { table: "t".into() }),
                Change::CreateReplica {
                    table: "t".into(),
                    region: "us-west-2".into(),
                    kms_key_arn: "arn:key:us-west-2".into()
                },
            ]
        );
        assert_eq!(state.requested, ["us-west-2"]);
        assert!(state.active.is_empty() && state.pending.len() == 2);
    }

    #[test]
    fn nothing_is_asked_while_the_table_is_updating_or_again_while_a_request_is_unanswered() {
        let want = vec!["us-west-2".to_string()];
        let (changes, _) = table_changes("t", true, &want, &keys(), &table("UPDATING", &[], true), &[], &[]);
        assert!(changes.is_empty());
        let requested = vec!["us-west-2".to_string()];
        let (changes, state) = table_changes("t", true, &want, &keys(), &table("ACTIVE", &[], true), &requested, &[]);
        assert!(changes.is_empty(), "asked already: {changes:?}");
        assert_eq!((state.requested, state.pending), (requested.clone(), requested));
    }

    #[test]
    fn only_active_replicas_count_and_only_owned_ones_are_removed() {
        let want = vec!["us-west-2".to_string()];
        let observed = table("ACTIVE", &[("us-west-2", "CREATING"), ("eu-north-1", "ACTIVE")], true);
        let (changes, state) = table_changes("t", true, &want, &keys(), &observed, &["us-west-2".into()], &[]);
        assert!(changes.is_empty(), "eu-north-1 is not ours: {changes:?}");
        assert_eq!(state.active, ["eu-north-1"]);
        assert!(state.requested.is_empty(), "reported now, so no longer merely requested");
        assert_eq!(state.pending, ["us-west-2"]);
        let observed = table("ACTIVE", &[("us-west-2", "ACTIVE"), ("ap-south-1", "ACTIVE")], true);
        let (changes, state) = table_changes("t", true, &want, &keys(), &observed, &[], &["ap-south-1".into()]);
        assert_eq!(changes, vec![Change::DeleteReplica { table: "t".into(), region: "ap-south-1".into() }]);
        assert!(changes[0].weakens() && state.pending.is_empty());
    }
}
