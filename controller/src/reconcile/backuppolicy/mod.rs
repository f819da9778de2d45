//! BackupPolicy reconciler: checks the policy against its lake and the protection last
//! applied (the guard against weakening), then converges, in dependency order, the replica
//! keys, the replica buckets, the replication role, each zone bucket's retention,
//! replication and lifecycle, and the catalog tables' PITR and replicas; then writes status.
//!
//! Point-in-time recovery: the DataLake turns PITR on for every table itself. A BackupPolicy
//! requires it too (and restores it when someone turns it off); `pointInTimeRecovery: false`
//! is a weakening that needs `allowProtectionDowngrade` and then only stops this policy from
//! enforcing it. It never turns PITR off, so the two reconcilers never fight.
//!
//! Deletion keeps everything that holds data: with `allowProtectionDowngrade` the replication
//! configurations, the replication role and the policy's lifecycle rules are removed; the
//! replica buckets, replica keys, table replicas, Object Lock retention and PITR stay.
pub mod apply;
pub mod desired;
pub mod diff;
pub mod observe;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::try_join_all;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use lakeops_crds::backuppolicy::{BackupPolicySpec, ReplicaKeyStatus, TableReplicaStatus, ZoneReplicationStatus};
use lakeops_crds::names::{reason, tag};
use lakeops_crds::references::{check_policy_against_lake, owning_policy};
use lakeops_crds::{BackupPolicy, BackupPolicyStatus, DataLake};

use crate::aws::clients::Regional;
use crate::aws::error::AwsError;
use crate::aws::iam::IamApi;
use crate::aws::kms::Rotation;
use crate::conditions::Outcome;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::reconcile::aws_outcome;
use crate::reconcile::datalake::desired::{DesiredBucket, owner_tags};
use crate::reconcile::datalake::diff::{self as lake_diff, ObservedBucket, ObservedKey};
use crate::reconcile::datalake::observe as lake_observe;
use crate::status;

use desired::{LakeFacts, ROLE_POLICY_NAME};
use diff::{Change, DesiredRole};

/// How often a policy whose table replicas are not ACTIVE yet is looked at again.
const REPLICA_POLL: Duration = Duration::from_secs(30);

/// Reconciles one BackupPolicy: the finalizer guards clean-up, then apply or clean up.
pub async fn reconcile(policy: Arc<BackupPolicy>, ctx: Arc<Context>) -> Result<Action> {
    super::with_finalizer(policy, ctx, apply_policy, cleanup).await
}

/// What one convergence did.
#[derive(Debug, Default)]
struct Report {
    applied: usize,
    /// Settings corrected on resources that already existed: `resource: setting`.
    drift: Vec<String>,
    /// Protections asked for that AWS does not report as in force yet.
    pending: Vec<String>,
    /// Weakening changes sent (the guard allowed them).
    weakened: Vec<String>,
}

/// Why convergence stopped short.
#[derive(Debug)]
enum Stop {
    Aws(AwsError),
    Stalled(&'static str, String),
    Waiting(String),
    Kube(Error),
}

impl From<AwsError> for Stop {
    fn from(e: AwsError) -> Self {
        Stop::Aws(e)
    }
}

fn lake_of(policy: &BackupPolicy, ctx: &Context) -> Option<Arc<DataLake>> {
    let ns = policy.namespace().unwrap_or_default();
    ctx.stores.lakes.get(&ObjectRef::new(&policy.spec.data_lake_ref.name).within(&ns))
}

async fn apply_policy(policy: Arc<BackupPolicy>, ctx: Arc<Context>) -> Result<Action> {
    let resync = super::resync_interval(policy.as_ref(), ctx.config.resync_interval);
    let lake =
        super::current_lake(&ctx, &policy.namespace().unwrap_or_default(), &policy.spec.data_lake_ref.name).await?;
    // The policy builds on what its lake recorded: a change there is a change here.
    let lake_version = lake.as_ref().and_then(|l| l.resource_version()).unwrap_or_default();
    if let Some(left) = ctx.fingerprints.fresh_with(policy.as_ref(), &lake_version, resync) {
        return Ok(Action::requeue(left));
    }
    ctx.fingerprints.forget(policy.as_ref());
    // Status is this reconciler's memory (the applied baseline, requested replicas, recorded
    // names): read it from the API server, not from a cache that may miss the last write.
    let ns = policy.namespace().unwrap_or_default();
    let api: kube::Api<BackupPolicy> = kube::Api::namespaced(ctx.client.clone(), &ns);
    let policy = match api.get_opt(&policy.name_any()).await? {
        Some(fresh) => Arc::new(fresh),
        None => return Ok(Action::await_change()),
    };
    let current = policy.status.clone().unwrap_or_default();
    let mut next = current.clone();
    let all = ctx.stores.policies.state();
    if let Some(outcome) = preflight(&policy, lake.as_deref(), all.iter().map(AsRef::as_ref)) {
        // Not remembered: the lake becoming Ready (or the other policy going) must be seen.
        status::apply(&ctx, policy.as_ref(), next, &outcome).await?;
        return Ok(Action::requeue(resync));
    }
    let Some(lake) = lake else { return Ok(Action::requeue(resync)) };
    // A refused change leaves the last applied protection in force (and enforced).
    let refused = desired::refusal(&policy, current.applied.as_ref());
    let spec = match (&refused, &current.applied) {
        (Some(_), Some(applied)) => applied.clone(),
        _ => policy.spec.clone(),
    };
    let result = converge(&policy, &spec, &lake, &ctx, &mut next).await;
    let (outcome, requeue) = match result {
        Ok(report) => {
            if !report.drift.is_empty() {
                event(&ctx, &policy, EventType::Normal, "DriftCorrected", &report.drift).await;
                ctx.metrics
                    .drift_corrections
                    .get_or_create(&crate::metrics::KindLabels { kind: "BackupPolicy" })
                    .inc_by(report.drift.len() as u64);
            }
            if !report.weakened.is_empty() {
                event(&ctx, &policy, EventType::Warning, "ProtectionDowngraded", &report.weakened).await;
            }
            if report.applied > 0 {
                tracing::info!(changes = report.applied, "converged");
            }
            match refused {
                Some(message) => (Outcome::Stalled { reason: reason::PROTECTION_DOWNGRADE_REFUSED, message }, resync),
                None => {
                    next.applied = Some(policy.spec.clone());
                    if report.pending.is_empty() {
                        (
                            Outcome::Ready {
                                message: "retention, replication and table backups match the spec".into(),
                            },
                            resync,
                        )
                    } else {
                        let message = report.pending.join("; ");
                        (Outcome::Progressing { reason: reason::REPLICAS_NOT_ACTIVE, message }, REPLICA_POLL)
                    }
                }
            }
        }
        Err(Stop::Stalled(r, message)) => (Outcome::Stalled { reason: r, message }, resync),
        Err(Stop::Waiting(message)) => (Outcome::Waiting { reason: reason::DATA_LAKE_NOT_READY, message }, resync),
        Err(Stop::Kube(e)) => return Err(e),
        Err(Stop::Aws(e)) => aws_outcome(&e, resync, || ctx.backoff.next(policy.as_ref())),
    };
    status::apply(&ctx, policy.as_ref(), next, &outcome).await?;
    // Polled outcomes and failures are looked at again in full.
    if matches!(outcome, Outcome::Failed { .. } | Outcome::Progressing { .. } | Outcome::Waiting { .. }) {
        ctx.fingerprints.forget(policy.as_ref());
    } else {
        ctx.fingerprints.remember_with(policy.as_ref(), &lake_version);
    }
    Ok(Action::requeue(requeue))
}

/// Why the policy cannot be converged now, from the spec, the referenced lake and every
/// policy in the cache; `None` when it can. Pure.
pub fn preflight<'a>(
    policy: &BackupPolicy,
    lake: Option<&DataLake>,
    all: impl IntoIterator<Item = &'a BackupPolicy>,
) -> Option<Outcome> {
    let findings = policy.validate();
    if let Some(message) = findings.error_summary() {
        return Some(Outcome::Stalled { reason: reason::INVALID_SPEC, message });
    }
    let same_lake = all
        .into_iter()
        .filter(|p| p.namespace() == policy.namespace() && p.spec.data_lake_ref == policy.spec.data_lake_ref);
    if let Some(owner) = owning_policy(same_lake)
        && owner.name_any() != policy.name_any()
    {
        return Some(Outcome::Stalled {
            reason: reason::CONFLICT,
            message: format!(
                "spec.dataLakeRef.name: BackupPolicy {:?} already protects DataLake {:?}; a lake has one BackupPolicy",
                owner.name_any(),
                policy.spec.data_lake_ref.name
            ),
        });
    }
    let lake_name = &policy.spec.data_lake_ref.name;
    let Some(lake) = lake else {
        return Some(Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} does not exist in this namespace"),
        });
    };
    let against_lake = check_policy_against_lake(policy, lake);
    if let Some(message) = against_lake.error_summary() {
        let r = if policy.spec.retention.is_some() && !lake.spec.object_lock {
            reason::OBJECT_LOCK_DISABLED
        } else {
            reason::INVALID_SPEC
        };
        return Some(Outcome::Stalled { reason: r, message });
    }
    if !super::lake_is_ready(lake) {
        return Some(Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} is not Ready yet"),
        });
    }
    None
}

fn owned_check(policy: &BackupPolicy, what: &str, tags: &BTreeMap<String, String>) -> std::result::Result<(), Stop> {
    super::check_owned(policy, &owner_tags(policy), what, tags).map_err(|m| Stop::Stalled(reason::NOT_OWNED, m))
}

/// Records one change's outcome in the report.
fn count(report: &mut Report, change: &Change, existed: bool, resource: &str) {
    report.applied += 1;
    if change.weakens() {
        report.weakened.push(change.to_string());
    } else if existed {
        report.drift.push(format!("{resource}: {}", change.setting()));
    }
}

async fn converge(
    policy: &BackupPolicy,
    spec: &BackupPolicySpec,
    lake: &DataLake,
    ctx: &Context,
    next: &mut BackupPolicyStatus,
) -> std::result::Result<Report, Stop> {
    let facts = desired::lake_facts(lake).ok_or_else(|| {
        Stop::Waiting(format!("DataLake {:?} has not recorded its buckets and key yet", lake.name_any()))
    })?;
    let account = ctx.aws.account_id().await?;
    let src = ctx.aws.region(&facts.region);
    let iam = ctx.aws.iam();
    let applied = policy.status.as_ref().and_then(|s| s.applied.clone());
    let mut report = Report::default();

    let mut keys = BTreeMap::new();
    for region in desired::key_regions(spec) {
        let arn = converge_key(policy, ctx, &region, &account, next, &mut report).await?;
        keys.insert(region, arn);
    }

    let previous_role = next.replication_role_arn.clone();
    let mut replication_configs = BTreeMap::new();
    if let Some(r) = &spec.replication {
        let key = keys.get(&r.region).cloned().unwrap_or_default();
        converge_replica_buckets(policy, spec, lake, &facts, &key, ctx, next, &mut report).await?;
        let boundary = ctx.config.permissions_boundary.clone();
        let role_arn =
            converge_role(policy, r, lake, &facts, &account, &key, boundary, iam.as_ref(), &src, next, &mut report)
                .await?;
        for z in &facts.zones {
            replication_configs.insert(z.name.clone(), desired::replication(r, &role_arn, z, &key));
        }
    }

    // Zone buckets, in the lake's region: every one read before any is written.
    let retention = desired::retention(spec);
    let owned_retention = applied.as_ref().is_some_and(|a| a.retention.is_some());
    let noncurrent = desired::noncurrent_rules(spec);
    let observed = try_join_all(facts.zones.iter().map(|z| observe::zone(src.s3.as_ref(), &z.bucket))).await?;
    let recorded: BTreeMap<String, ZoneReplicationStatus> =
        next.zones.iter().map(|z| (z.name.clone(), z.clone())).collect();
    let ours_role = previous_role.clone().or_else(|| next.replication_role_arn.clone());
    let mut zones = Vec::new();
    for (z, o) in facts.zones.iter().zip(observed) {
        if retention.is_some() && !o.object_lock {
            return Err(Stop::Stalled(
                reason::OBJECT_LOCK_DISABLED,
                format!(
                    "bucket {} has no Object Lock; S3 enables it only when a bucket is created, so the DataLake must be recreated with objectLock: true",
                    z.bucket
                ),
            ));
        }
        let wanted = replication_configs.get(&z.name);
        let digest = recorded.get(&z.name).and_then(|s| s.config_digest.clone());
        let changes = [
            diff::retention_change(&z.bucket, retention.as_ref(), o.retention.as_ref(), owned_retention),
            diff::replication_change(
                &z.bucket,
                wanted,
                o.replication.as_ref(),
                digest.as_deref(),
                ours_role.as_deref(),
            ),
            diff::lifecycle_change(&z.bucket, &noncurrent, o.lifecycle.as_deref()),
        ];
        let mut status = ZoneReplicationStatus {
            name: z.name.clone(),
            replica_bucket: wanted.map(|_| z.replica_bucket.clone()),
            replication: o.replication.as_ref().filter(|_| wanted.is_some()).map(rule_state),
            config_digest: digest.filter(|_| wanted.is_some()),
        };
        for change in changes.into_iter().flatten() {
            apply::change(&src, &facts.region, iam.as_ref(), &change).await?;
            count(&mut report, &change, true, &format!("bucket {}", z.bucket));
            if let Change::PutReplication { config, .. } = &change {
                // How S3 reads back what was written, so a later equal read is no drift.
                let echo = src.s3.get_bucket_replication(&z.bucket).await?;
                status.replication = echo.as_ref().map(rule_state);
                status.config_digest = Some(diff::replication_digest(config, echo.as_ref()));
            }
        }
        zones.push(status);
    }
    next.zones = zones;

    if spec.replication.is_none()
        && let Some(arn) = next.replication_role_arn.clone()
    {
        delete_role(policy, iam.as_ref(), &arn).await?;
        report.weakened.push(format!("deleted replication role {arn}"));
        next.replication_role_arn = None;
    }

    converge_tables(spec, applied.as_ref(), &facts, &keys, &src, iam.as_ref(), next, &mut report).await?;
    Ok(report)
}

/// `Enabled`/`Disabled` of the first rule, as S3 reports it.
fn rule_state(config: &crate::aws::s3::ReplicationConfig) -> String {
    match config.rules.first() {
        Some(r) if r.enabled => "Enabled".into(),
        Some(_) => "Disabled".into(),
        None => "NoRules".into(),
    }
}

/// Finds or creates the replica key of one region. A new key's ARN is written to status
/// before anything else, so a crash right after CreateKey never leads to a second key.
async fn converge_key(
    policy: &BackupPolicy,
    ctx: &Context,
    region: &str,
    account: &str,
    next: &mut BackupPolicyStatus,
    report: &mut Report,
) -> std::result::Result<String, Stop> {
    let want = desired::replica_key(policy, region, account);
    let aws = ctx.aws.region(region);
    let recorded = next.replica_key(region).map(str::to_string);
    let by_alias = lake_observe::key(aws.kms.as_ref(), &want.alias).await?;
    let (observed, alias_missing) = match (by_alias, &recorded) {
        (Some(k), _) => (Some(k), false),
        (None, Some(arn)) => (lake_observe::key(aws.kms.as_ref(), arn).await?, true),
        (None, None) => (None, true),
    };
    let existed = observed.is_some();
    let observed = match observed {
        Some(k) => {
            if recorded.as_deref() != Some(k.info.arn.as_str()) {
                let tags = aws.kms.list_tags(&k.info.key_id).await?;
                owned_check(policy, &format!("KMS key {} in {region}", want.alias), &tags)?;
            }
            if k.info.state == "PendingDeletion" {
                return Err(Stop::Stalled(
                    reason::NOT_OWNED,
                    format!(
                        "replica key {} is scheduled for deletion; cancel the deletion and re-enable it",
                        k.info.arn
                    ),
                ));
            }
            k
        }
        None => {
            let lake_tags = lake_of(policy, ctx).map(|l| desired::resource_tags(policy, &l)).unwrap_or_default();
            let info = aws.kms.create_key(&want.description, &want.policy.to_json(), &lake_tags).await?;
            report.applied += 1;
            next.replica_keys.retain(|k| k.region != region);
            next.replica_keys.push(ReplicaKeyStatus { region: region.into(), key_arn: info.arn.clone() });
            next.replica_keys.sort_by(|a, b| a.region.cmp(&b.region));
            status::record_progress(ctx, policy, next).await.map_err(Stop::Kube)?;
            ObservedKey {
                info,
                rotation: Rotation { enabled: false, period_days: None },
                policy: want.policy.to_json(),
            }
        }
    };
    if recorded.as_deref() != Some(observed.info.arn.as_str()) {
        next.replica_keys.retain(|k| k.region != region);
        next.replica_keys.push(ReplicaKeyStatus { region: region.into(), key_arn: observed.info.arn.clone() });
        next.replica_keys.sort_by(|a, b| a.region.cmp(&b.region));
    }
    if alias_missing {
        aws.kms.create_alias(&want.alias, &observed.info.key_id).await?;
        report.applied += 1;
    }
    for change in lake_diff::key_changes(&observed, want.rotation_days, &want.policy) {
        crate::reconcile::datalake::apply::change(&aws, region, &change).await?;
        // A recorded key without its alias is our own create, interrupted: not drift.
        count(report, &Change::Lake(change), existed && !alias_missing, &format!("key {} in {region}", want.alias));
    }
    Ok(observed.info.arn)
}

/// Creates or converges every replica bucket in the backup region, with the DataLake's own
/// bucket baseline plus the policy's Object Lock retention.
#[allow(clippy::too_many_arguments)]
async fn converge_replica_buckets(
    policy: &BackupPolicy,
    spec: &BackupPolicySpec,
    lake: &DataLake,
    facts: &LakeFacts,
    key_arn: &str,
    ctx: &Context,
    next: &mut BackupPolicyStatus,
    report: &mut Report,
) -> std::result::Result<(), Stop> {
    let Some(r) = &spec.replication else { return Ok(()) };
    let backup = ctx.aws.region(&r.region);
    let tags = desired::resource_tags(policy, lake);
    let buckets: Vec<DesiredBucket> =
        facts.zones.iter().map(|z| desired::replica_bucket(lake, facts, z, &r.region, key_arn, &tags)).collect();
    let recorded: BTreeSet<String> = next.zones.iter().filter_map(|z| z.replica_bucket.clone()).collect();
    let observed = try_join_all(buckets.iter().map(|b| async {
        let o = observe::replica_bucket(backup.s3.as_ref(), &b.name).await?;
        if let Some((bucket, _)) = &o {
            // Untagged and recorded as ours before creation: a create interrupted before tagging.
            let interrupted = !bucket.tags.contains_key(tag::OWNER) && recorded.contains(&b.name);
            if !interrupted {
                owned_check(policy, &format!("bucket {}", b.name), &bucket.tags)?;
            }
        }
        Ok::<_, Stop>(o)
    }))
    .await?;
    // Names are recorded before any CreateBucket: S3 cannot tag a bucket as it creates it.
    if buckets.iter().zip(&observed).any(|(b, o)| o.is_none() && !recorded.contains(&b.name)) {
        for (z, b) in facts.zones.iter().zip(&buckets) {
            match next.zones.iter_mut().find(|s| s.name == z.name) {
                Some(s) => s.replica_bucket = Some(b.name.clone()),
                None => next.zones.push(ZoneReplicationStatus {
                    name: z.name.clone(),
                    replica_bucket: Some(b.name.clone()),
                    ..Default::default()
                }),
            }
        }
        status::record_progress(ctx, policy, next).await.map_err(Stop::Kube)?;
    }
    let retention = desired::retention(spec).filter(|_| facts.object_lock);
    let owned_retention =
        policy.status.as_ref().and_then(|s| s.applied.as_ref()).is_some_and(|a| a.retention.is_some());
    let results = try_join_all(buckets.iter().zip(observed).map(|(b, o)| {
        let backup = backup.clone();
        let retention = retention.clone();
        let r_region = r.region.clone();
        async move {
            let mut r = Report::default();
            let (bucket, seen_retention): (Option<ObservedBucket>, _) = match o {
                Some((bucket, retention)) => (Some(bucket), retention),
                None => (None, None),
            };
            let existed = bucket.is_some();
            let mut changes: Vec<Change> =
                lake_diff::bucket_changes(b, bucket.as_ref()).into_iter().map(Change::Lake).collect();
            changes.extend(diff::retention_change(
                &b.name,
                retention.as_ref(),
                seen_retention.as_ref(),
                owned_retention,
            ));
            for change in changes {
                apply_in(&backup, &r_region, &b.name, &change).await?;
                count(&mut r, &change, existed, &format!("bucket {}", b.name));
            }
            Ok::<_, Stop>(r)
        }
    }))
    .await?;
    for r in results {
        report.applied += r.applied;
        report.drift.extend(r.drift);
        report.weakened.extend(r.weakened);
    }
    Ok(())
}

/// Applies a change to a replica bucket (no IAM involved).
async fn apply_in(aws: &Regional, region: &str, bucket: &str, change: &Change) -> std::result::Result<(), Stop> {
    match change {
        Change::Lake(c) => {
            crate::reconcile::datalake::apply::change(aws, region, c).await?;
        }
        Change::PutRetention { retention, .. } => aws.s3.put_object_lock_retention(bucket, retention).await?,
        Change::ClearRetention { .. } => aws.s3.clear_object_lock_retention(bucket).await?,
        // Replica buckets get no other kind of change.
        _ => {}
    }
    Ok(())
}

/// Creates or converges the replication role; returns its ARN.
#[allow(clippy::too_many_arguments)]
async fn converge_role(
    policy: &BackupPolicy,
    r: &lakeops_crds::backuppolicy::Replication,
    lake: &DataLake,
    facts: &LakeFacts,
    account: &str,
    replica_key: &str,
    ctx_boundary: Option<String>,
    iam: &dyn IamApi,
    src: &Regional,
    next: &mut BackupPolicyStatus,
    report: &mut Report,
) -> std::result::Result<String, Stop> {
    let want = DesiredRole {
        name: desired::role_name(&facts.prefix),
        trust: desired::trust_policy(&facts.region, account, facts),
        policy: desired::role_policy(r, facts, replica_key),
        boundary: ctx_boundary.clone(),
        tags: desired::resource_tags(policy, lake),
    };
    let observed = observe::role(iam, &want.name, ROLE_POLICY_NAME).await?;
    if let Some(o) = &observed
        && next.replication_role_arn.as_deref() != Some(o.info.arn.as_str())
    {
        owned_check(policy, &format!("IAM role {}", want.name), &o.info.tags)?;
    }
    let mut arn = observed.as_ref().map(|o| o.info.arn.clone());
    for change in diff::role_changes(&want, observed.as_ref(), ROLE_POLICY_NAME) {
        if let Some(created) = apply::change(src, &facts.region, iam, &change).await? {
            arn = Some(created);
        }
        count(report, &change, observed.is_some(), &format!("role {}", want.name));
    }
    let arn = arn.unwrap_or_else(|| desired::role_arn(&facts.region, account, &want.name));
    next.replication_role_arn = Some(arn.clone());
    Ok(arn)
}

/// Deletes the replication role and its inline policies, if it carries the policy's tags.
async fn delete_role(policy: &BackupPolicy, iam: &dyn IamApi, arn: &str) -> std::result::Result<(), Stop> {
    let name = arn.rsplit('/').next().unwrap_or_default();
    let Some(role) = iam.get_role(name).await? else { return Ok(()) };
    let ours = owner_tags(policy);
    if !ours.iter().all(|(k, v)| role.tags.get(k) == Some(v)) {
        return Ok(());
    }
    for p in iam.list_role_policies(name).await? {
        iam.delete_role_policy(name, &p).await?;
    }
    iam.delete_role(name).await?;
    Ok(())
}

/// PITR and replicas of every catalog table.
#[allow(clippy::too_many_arguments)]
async fn converge_tables(
    spec: &BackupPolicySpec,
    applied: Option<&BackupPolicySpec>,
    facts: &LakeFacts,
    keys: &BTreeMap<String, String>,
    src: &Regional,
    iam: &dyn IamApi,
    next: &mut BackupPolicyStatus,
    report: &mut Report,
) -> std::result::Result<(), Stop> {
    let owned: Vec<String> = applied.map(|a| a.tables.replica_regions.clone()).unwrap_or_default();
    let observed = try_join_all(facts.tables.iter().map(|t| observe::table(src.dynamodb.as_ref(), t))).await?;
    let mut tables = Vec::new();
    for (t, o) in facts.tables.iter().zip(observed) {
        let Some(o) = o else {
            report.pending.push(format!("table {t} does not exist yet"));
            continue;
        };
        let requested: Vec<String> =
            next.tables.iter().find(|s| &s.table_name == t).map(|s| s.requested_replicas.clone()).unwrap_or_default();
        let (changes, state) = diff::table_changes(
            t,
            spec.tables.point_in_time_recovery,
            &spec.tables.replica_regions,
            keys,
            &o,
            &requested,
            &owned,
        );
        let mut pitr = o.pitr;
        for change in changes {
            apply::change(src, &facts.region, iam, &change).await?;
            count(report, &change, true, &format!("table {t}"));
            if matches!(change, Change::Lake(lake_diff::Change::EnablePitr { .. })) {
                pitr = true;
            }
        }
        if !state.pending.is_empty() {
            let reported: Vec<String> = o.info.replicas.iter().map(|r| format!("{} {}", r.region, r.status)).collect();
            let reported = if reported.is_empty() { "none".to_string() } else { reported.join(", ") };
            report.pending.push(format!(
                "table {t}: replicas in {} requested, not ACTIVE yet (AWS reports: {reported})",
                state.pending.join(", ")
            ));
        }
        tables.push(TableReplicaStatus {
            table_name: t.clone(),
            active_replicas: state.active,
            point_in_time_recovery: pitr,
            requested_replicas: state.requested,
        });
    }
    next.tables = tables;
    Ok(())
}

async fn event(ctx: &Context, policy: &BackupPolicy, type_: EventType, why: &str, what: &[String]) {
    let event =
        Event { type_, reason: why.into(), note: Some(what.join("; ")), action: "Reconcile".into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &policy.object_ref(&())).await {
        tracing::warn!(error = %e, "could not record event");
    }
}

/// Deletion: refused (the finalizer holds) unless the manifest allows the downgrade; then
/// the replication configurations lakeops wrote, the replication role and the policy's
/// lifecycle rules go. Everything holding data stays.
async fn cleanup(policy: Arc<BackupPolicy>, ctx: Arc<Context>) -> Result<Action> {
    ctx.fingerprints.forget(policy.as_ref());
    if let Some(message) = desired::deletion_refusal(&policy) {
        let next = policy.status.clone().unwrap_or_default();
        let outcome = Outcome::Stalled { reason: reason::PROTECTION_DOWNGRADE_REFUSED, message: message.clone() };
        status::apply(&ctx, policy.as_ref(), next, &outcome).await?;
        return Err(Error::DeletionBlocked(message));
    }
    let Some(status) = policy.status.as_ref().filter(|s| s.applied.is_some()) else {
        return Ok(Action::await_change());
    };
    let role = status.replication_role_arn.clone();
    if let Some(lake) = lake_of(&policy, &ctx)
        && let Some(facts) = desired::lake_facts(&lake)
    {
        let src = ctx.aws.region(&facts.region);
        for z in &facts.zones {
            let observed = match observe::zone(src.s3.as_ref(), &z.bucket).await {
                Ok(o) => o,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            let changes = [
                diff::replication_change(&z.bucket, None, observed.replication.as_ref(), None, role.as_deref()),
                diff::lifecycle_change(&z.bucket, &[], observed.lifecycle.as_deref()),
            ];
            for change in changes.into_iter().flatten() {
                apply::change(&src, &facts.region, ctx.aws.iam().as_ref(), &change).await?;
            }
        }
    }
    if let Some(arn) = role {
        match delete_role(&policy, ctx.aws.iam().as_ref(), &arn).await {
            Ok(()) => {}
            Err(Stop::Aws(e)) => return Err(e.into()),
            Err(Stop::Kube(e)) => return Err(e),
            Err(Stop::Stalled(_, m) | Stop::Waiting(m)) => return Err(Error::DeletionBlocked(m)),
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lake(ready: bool, object_lock: bool) -> DataLake {
        let status = if ready {
            "status: {observedGeneration: 1, conditions: [{type: Ready, status: 'True', reason: Reconciled, message: ok, lastTransitionTime: '2024-01-01T00:00:00Z'}]}"
        } else {
            ""
        };
        serde_saphyr::from_str(&format!(
            "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {{name: sales, namespace: team-a, generation: 1}}\nspec: {{region: eu-west-1, objectLock: {object_lock}, zones: [{{name: raw}}]}}\n{status}\n"
        ))
        .expect("fixture")
    }

    fn policy(name: &str, created: &str, spec: &str) -> BackupPolicy {
        serde_saphyr::from_str(&format!(
            "apiVersion: lakeops.dev/v1alpha1\nkind: BackupPolicy\nmetadata: {{name: {name}, namespace: team-a, creationTimestamp: '{created}'}}\nspec: {spec}\n"
        ))
        .expect("fixture")
    }

    const SPEC: &str =
        "{dataLakeRef: {name: sales}, retention: {mode: GOVERNANCE, days: 7}, replication: {region: eu-central-1}}";

    #[test]
    fn a_valid_policy_for_a_ready_lake_goes_ahead() {
        let p = policy("backup", "2024-01-01T00:00:00Z", SPEC);
        assert_eq!(preflight(&p, Some(&lake(true, true)), [&p]), None);
    }

    #[test]
    fn a_second_policy_for_the_same_lake_is_stalled_as_a_conflict() {
        let first = policy("first", "2024-01-01T00:00:00Z", SPEC);
        let second = policy("second", "2024-01-02T00:00:00Z", SPEC);
        let outcome = preflight(&second, Some(&lake(true, true)), [&first, &second]).expect("stopped");
        assert!(
            matches!(outcome, Outcome::Stalled { reason: r, ref message } if r == reason::CONFLICT && message.contains("\"first\""))
        );
        assert_eq!(preflight(&first, Some(&lake(true, true)), [&first, &second]), None, "the oldest owns the lake");
    }

    #[test]
    fn retention_on_a_lake_without_object_lock_says_it_must_be_recreated() {
        let p = policy("backup", "2024-01-01T00:00:00Z", SPEC);
        let outcome = preflight(&p, Some(&lake(true, false)), [&p]).expect("stopped");
        let Outcome::Stalled { reason: r, message } = outcome else { panic!("stalled expected") };
        assert_eq!(r, reason::OBJECT_LOCK_DISABLED);
        assert!(message.contains("only when a bucket is created"), "{message}");
    }

    #[test]
    fn a_missing_or_unready_lake_is_waited_for() {
        let p = policy("backup", "2024-01-01T00:00:00Z", SPEC);
        assert!(matches!(preflight(&p, None, [&p]), Some(Outcome::Waiting { .. })));
        assert!(matches!(preflight(&p, Some(&lake(false, true)), [&p]), Some(Outcome::Waiting { .. })));
    }
}
