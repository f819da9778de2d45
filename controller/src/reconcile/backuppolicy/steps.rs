//! The BackupPolicy's convergence, written once: the controller runs it with the apply
//! executor, `lakeops plan` with the plan executor.
//!
//! Order: read the replica keys and replica buckets (ownership checked before any write);
//! record the intent (replica bucket names, the keys' creation tokens) in one status write
//! when something will be created; the replica keys; the replica buckets; the replication
//! role; each zone bucket's retention, replication and lifecycle; the replication role's
//! deletion when replication was removed; the catalog tables' PITR and replicas.
use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;
use kube::ResourceExt;
use lakeops_crds::backuppolicy::{BackupPolicySpec, ReplicaKeyStatus, TableReplicaStatus, ZoneReplicationStatus};
use lakeops_crds::names::{reason, tag};
use lakeops_crds::{BackupPolicy, BackupPolicyStatus, DataLake};

use crate::aws::clients::Regional;
use crate::engine::key::{self, KeyState, ManagedKey};
use crate::engine::role::{self, OwnedRole};
use crate::engine::{Clients, Exec, Stop, intent};
use crate::reconcile::datalake::desired::DesiredBucket;
use crate::reconcile::datalake::diff::{self as lake_diff, ObservedBucket};
use crate::reconcile::datalake::steps::{converge_bucket, observe_bucket};

use super::apply;
use super::desired::{self, LakeFacts, ROLE_POLICY_NAME};
use super::diff::{self, Change, ObservedZone};
use super::observe;

type Exe<'a> = Exec<'a, BackupPolicyStatus>;

/// What the sequence works from.
pub struct Inputs<'a> {
    pub policy: &'a BackupPolicy,
    /// The spec in force: the policy's, or the last applied one when a change is refused.
    pub spec: &'a BackupPolicySpec,
    pub lake: &'a DataLake,
    pub facts: &'a LakeFacts,
    pub account: &'a str,
    /// The permissions boundary every generated role carries (a controller flag).
    pub boundary: Option<&'a str>,
}

/// The purpose under which a replica key's creation token is recorded.
pub fn key_purpose(region: &str) -> String {
    format!("replica-key/{region}")
}

/// Runs the policy's sequence; `next` is the status being built.
pub async fn converge(
    aws: &dyn Clients,
    input: &Inputs<'_>,
    exec: &Exe<'_>,
    next: &mut BackupPolicyStatus,
) -> Result<(), Stop> {
    let Inputs { policy, spec, lake, facts, account, .. } = *input;
    let src = aws.region(&facts.region);
    let iam = aws.iam();
    let applied = policy.status.as_ref().and_then(|s| s.applied.clone());
    let tags = desired::resource_tags(policy, lake);

    // Reads first: the replica keys, then the replica buckets.
    let mut keys = Vec::new();
    for region in desired::key_regions(spec) {
        let r = desired::replica_key(policy, &region, account);
        let want = ManagedKey {
            alias: r.alias,
            region: region.clone(),
            description: r.description,
            rotation_days: r.rotation_days,
            policy: r.policy,
            tags: tags.clone(),
            what: format!("replica key in {region}"),
            token: policy.uid().map(|uid| intent::token(&uid, &key_purpose(&region))),
        };
        let kms = aws.region(&region).kms;
        let recorded = next.replica_key(&region).map(str::to_string);
        let token_recorded = next.creation_tokens.contains_key(&key_purpose(&region));
        let state = key::observe(exec, kms.as_ref(), &want, recorded.as_deref(), token_recorded).await?;
        keys.push((region, want, state));
    }
    let replicas = match &spec.replication {
        Some(r) => Some(observe_replica_buckets(aws, exec, input, &r.region, next).await?),
        None => None,
    };
    // The backup region's log bucket, which the replica buckets log into.
    let log_bucket = match &spec.replication {
        Some(r) => {
            let b = desired::backup_log_bucket(lake, facts, &r.region, account, &tags);
            let recorded: BTreeSet<String> = next.log_bucket.iter().cloned().collect();
            let o = observe_bucket(exec, &aws.region(&r.region), &b, &recorded).await?;
            Some((r.region.clone(), b, o))
        }
        None => None,
    };

    // The intent, in one status write before the first create.
    let mut write = false;
    if let Some((buckets, observed)) = &replicas {
        let recorded: BTreeSet<String> = next.zones.iter().filter_map(|z| z.replica_bucket.clone()).collect();
        if buckets.iter().zip(observed).any(|(b, o)| o.is_none() && !recorded.contains(&b.name)) {
            for (z, b) in facts.zones.iter().zip(buckets) {
                match next.zones.iter_mut().find(|s| s.name == z.name) {
                    Some(s) => s.replica_bucket = Some(b.name.clone()),
                    None => next.zones.push(ZoneReplicationStatus {
                        name: z.name.clone(),
                        replica_bucket: Some(b.name.clone()),
                        ..Default::default()
                    }),
                }
            }
            write = true;
        }
    }
    if let Some((_, b, None)) = &log_bucket
        && next.log_bucket.as_ref() != Some(&b.name)
    {
        next.log_bucket = Some(b.name.clone());
        write = true;
    }
    for (region, want, state) in &keys {
        if state.creates()
            && let Some(token) = &want.token
        {
            write |= intent::record(&mut next.creation_tokens, &key_purpose(region), token);
        }
    }
    if write {
        exec.record(next).await?;
    }

    let mut key_arns = BTreeMap::new();
    for (region, want, state) in keys {
        let arn = converge_key(aws, exec, &region, &want, state).await?;
        if !crate::engine::is_placeholder(&arn) && next.replica_key(&region) != Some(arn.as_str()) {
            next.replica_keys.retain(|k| k.region != region);
            next.replica_keys.push(ReplicaKeyStatus { region: region.clone(), key_arn: arn.clone() });
            next.replica_keys.sort_by(|a, b| a.region.cmp(&b.region));
        }
        key_arns.insert(region, arn);
    }

    let previous_role = next.replication_role_arn.clone();
    let mut replication_configs = BTreeMap::new();
    if let (Some(r), Some((buckets, observed))) = (&spec.replication, replicas) {
        let key = key_arns.get(&r.region).cloned().unwrap_or_default();
        debug_assert_eq!(buckets.len(), observed.len());
        if let Some((region, mut b, o)) = log_bucket {
            exec.desired_tags(&mut b.tags, o.as_ref().map(|o| &o.tags));
            converge_bucket(exec, &aws.region(&region), &region, &b, o.as_ref()).await?;
            next.log_bucket = Some(b.name);
        }
        converge_replica_buckets(aws, exec, input, &r.region, &key, observed).await?;
        let role_arn = converge_role(aws, exec, input, r, &key, next).await?;
        for z in &facts.zones {
            replication_configs.insert(z.name.clone(), desired::replication(r, &role_arn, z, &key));
        }
    }

    // Zone buckets, in the lake's region: every one read before any is written.
    let retention = desired::retention(spec);
    let owned_retention = applied.as_ref().is_some_and(|a| a.retention.is_some());
    let noncurrent = desired::noncurrent_rules(spec);
    let observed = try_join_all(facts.zones.iter().map(|z| observe_zone(exec, &src, facts, &z.bucket))).await?;
    let recorded: BTreeMap<String, ZoneReplicationStatus> =
        next.zones.iter().map(|z| (z.name.clone(), z.clone())).collect();
    // Only a replication configuration naming our role is ever removed. A plan has no
    // status: the role's predictable ARN stands for it.
    let ours_role = previous_role
        .clone()
        .or_else(|| next.replication_role_arn.clone())
        .or_else(|| exec.plans().then(|| replication_role_arn(facts, account)));
    let mut zones = Vec::new();
    for (z, o) in facts.zones.iter().zip(observed) {
        if retention.is_some() && !o.object_lock && !z.is_audit() {
            exec.blocked(
                &z.bucket,
                Stop::Stalled(
                    reason::OBJECT_LOCK_DISABLED,
                    format!(
                        "bucket {} has no Object Lock; S3 enables it only when a bucket is created, so the DataLake must be recreated with objectLock: true",
                        z.bucket
                    ),
                ),
            )?;
        }
        let wanted = replication_configs.get(&z.name);
        let digest = recorded.get(&z.name).and_then(|s| s.config_digest.clone());
        let changes = [
            // The audit bucket's retention is the DataLake's (spec.audit).
            diff::retention_change(&z.bucket, retention.as_ref(), o.retention.as_ref(), owned_retention)
                .filter(|_| o.object_lock && !z.is_audit()),
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
        let label = format!("bucket {}", z.bucket);
        for change in changes.into_iter().flatten() {
            exec.change(&change, true, &label, apply::change(&src, &facts.region, &change)).await?;
            if let Change::PutReplication { config, .. } = &change
                && !exec.plans()
            {
                // How S3 reads back what was written, so a later equal read is no drift.
                let echo = src.s3.get_bucket_replication(&z.bucket).await?;
                status.replication = echo.as_ref().map(rule_state);
                status.config_digest = Some(diff::replication_digest(config, echo.as_ref()));
            }
        }
        zones.push(status);
    }
    next.zones = zones;

    // Replication removed: the role goes too (a plan, without status, looks it up by name).
    if spec.replication.is_none()
        && let Some(arn) = next.replication_role_arn.clone().or_else(|| ours_role.clone())
    {
        let name = arn.rsplit('/').next().unwrap_or_default().to_string();
        role::delete(exec, iam.as_ref(), &name, |t| exec.is_ours(t)).await?;
        next.replication_role_arn = None;
    }

    converge_tables(exec, spec, applied.as_ref(), facts, &key_arns, &src, next).await?;
    Ok(())
}

/// The replication role's ARN as IAM will give it.
fn replication_role_arn(facts: &LakeFacts, account: &str) -> String {
    desired::role_arn(&facts.region, account, &desired::role_name(&facts.prefix))
}

/// `Enabled`/`Disabled` of the first rule, as S3 reports it.
fn rule_state(config: &crate::aws::s3::ReplicationConfig) -> String {
    match config.rules.first() {
        Some(r) if r.enabled => "Enabled".into(),
        Some(_) => "Disabled".into(),
        None => "NoRules".into(),
    }
}

async fn converge_key(
    aws: &dyn Clients,
    exec: &Exe<'_>,
    region: &str,
    want: &ManagedKey,
    state: KeyState,
) -> Result<String, Stop> {
    let kms = aws.region(region).kms;
    key::converge(exec, kms.as_ref(), want, state).await
}

/// A zone bucket's retention, replication and lifecycle. A plan may run before the lake
/// created the bucket: it then has nothing yet, with the Object Lock the lake will give it.
async fn observe_zone(exec: &Exe<'_>, src: &Regional, facts: &LakeFacts, bucket: &str) -> Result<ObservedZone, Stop> {
    match observe::zone(src.s3.as_ref(), bucket).await {
        Ok(o) => Ok(o),
        Err(e) if e.is_not_found() && exec.plans() => {
            Ok(ObservedZone { object_lock: facts.object_lock, ..ObservedZone::default() })
        }
        Err(e) => Err(e.into()),
    }
}

type ReplicaBuckets = (Vec<DesiredBucket>, Vec<Option<(ObservedBucket, Option<crate::aws::s3::DefaultRetention>)>>);

/// Reads every replica bucket (in the backup region) and checks it is this policy's.
async fn observe_replica_buckets(
    aws: &dyn Clients,
    exec: &Exe<'_>,
    input: &Inputs<'_>,
    backup_region: &str,
    next: &BackupPolicyStatus,
) -> Result<ReplicaBuckets, Stop> {
    let backup = aws.region(backup_region);
    let tags = desired::resource_tags(input.policy, input.lake);
    let placeholder = crate::engine::placeholder(&format!("replica key in {backup_region}"));
    let buckets: Vec<DesiredBucket> = input
        .facts
        .zones
        .iter()
        .map(|z| desired::replica_bucket(input.lake, input.facts, z, backup_region, &placeholder, &tags))
        .collect();
    let recorded: BTreeSet<String> = next.zones.iter().filter_map(|z| z.replica_bucket.clone()).collect();
    let observed = try_join_all(buckets.iter().map(|b| async {
        let o = observe::replica_bucket(backup.s3.as_ref(), &b.name).await?;
        if let Some((bucket, _)) = &o {
            // Untagged and recorded as ours before creation: a create interrupted before tagging.
            let interrupted = !bucket.tags.contains_key(tag::OWNER) && recorded.contains(&b.name);
            if !interrupted {
                exec.owned(&format!("bucket {}", b.name), &bucket.tags)?;
            }
        }
        Ok::<_, Stop>(o)
    }))
    .await?;
    Ok((buckets, observed))
}

/// Creates or converges every replica bucket with the DataLake's own bucket baseline plus
/// the policy's Object Lock retention.
async fn converge_replica_buckets(
    aws: &dyn Clients,
    exec: &Exe<'_>,
    input: &Inputs<'_>,
    backup_region: &str,
    key_arn: &str,
    observed: Vec<Option<(ObservedBucket, Option<crate::aws::s3::DefaultRetention>)>>,
) -> Result<(), Stop> {
    let backup = aws.region(backup_region);
    let tags = desired::resource_tags(input.policy, input.lake);
    let retention = desired::retention(input.spec).filter(|_| input.facts.object_lock);
    let owned_retention =
        input.policy.status.as_ref().and_then(|s| s.applied.as_ref()).is_some_and(|a| a.retention.is_some());
    let buckets: Vec<DesiredBucket> = input
        .facts
        .zones
        .iter()
        .map(|z| desired::replica_bucket(input.lake, input.facts, z, backup_region, key_arn, &tags))
        .collect();
    try_join_all(buckets.into_iter().zip(observed).map(|(mut b, o)| {
        let backup = backup.clone();
        let retention = retention.clone();
        async move {
            let (bucket, seen_retention) = match o {
                Some((bucket, retention)) => (Some(bucket), retention),
                None => (None, None),
            };
            exec.desired_tags(&mut b.tags, bucket.as_ref().map(|o| &o.tags));
            let existed = bucket.is_some();
            let mut changes: Vec<Change> =
                lake_diff::bucket_changes(&b, bucket.as_ref()).into_iter().map(Change::Lake).collect();
            // A plan has no applied baseline: a retention on an existing replica counts as ours.
            let owned = owned_retention || (exec.plans() && seen_retention.is_some());
            changes.extend(diff::retention_change(&b.name, retention.as_ref(), seen_retention.as_ref(), owned));
            let label = format!("bucket {}", b.name);
            for change in changes {
                exec.change(&change, existed, &label, apply::change(&backup, backup_region, &change)).await?;
            }
            Ok::<_, Stop>(())
        }
    }))
    .await?;
    Ok(())
}

/// Creates or converges the replication role; returns its ARN.
async fn converge_role(
    aws: &dyn Clients,
    exec: &Exe<'_>,
    input: &Inputs<'_>,
    r: &lakeops_crds::backuppolicy::Replication,
    replica_key: &str,
    next: &mut BackupPolicyStatus,
) -> Result<String, Stop> {
    let Inputs { facts, account, .. } = *input;
    let iam = aws.iam();
    let mut want = OwnedRole {
        name: desired::role_name(&facts.prefix),
        path: crate::iam::ROLE_PATH,
        description: "lakeops: S3 replication of a DataLake's zone buckets (BackupPolicy)",
        trust: desired::trust_policy(&facts.region, account, facts),
        policy_name: ROLE_POLICY_NAME,
        policy: desired::role_policy(r, facts, replica_key),
        boundary: input.boundary.map(str::to_string),
        tags: desired::resource_tags(input.policy, input.lake),
    };
    let observed = role::observe(iam.as_ref(), &want.name, ROLE_POLICY_NAME).await?;
    exec.desired_tags(&mut want.tags, observed.as_ref().map(|o| &o.info.tags));
    if exec.plans() {
        // A plan does not know the controller's flags: the boundary is taken as it is.
        want.boundary = observed.as_ref().and_then(|o| o.info.permissions_boundary.clone());
    }
    let predicted = desired::role_arn(&facts.region, account, &want.name);
    let arn =
        role::converge(exec, iam.as_ref(), &want, observed.as_ref(), next.replication_role_arn.as_deref(), predicted)
            .await?;
    next.replication_role_arn = Some(arn.clone());
    Ok(arn)
}

/// PITR and replicas of every catalog table.
async fn converge_tables(
    exec: &Exe<'_>,
    spec: &BackupPolicySpec,
    applied: Option<&BackupPolicySpec>,
    facts: &LakeFacts,
    keys: &BTreeMap<String, String>,
    src: &Regional,
    next: &mut BackupPolicyStatus,
) -> Result<(), Stop> {
    let owned: Vec<String> = applied.map(|a| a.tables.replica_regions.clone()).unwrap_or_default();
    let observed = try_join_all(facts.tables.iter().map(|t| observe::table(src.dynamodb.as_ref(), t))).await?;
    let mut tables = Vec::new();
    for (t, o) in facts.tables.iter().zip(observed) {
        let Some(o) = o else {
            exec.pending(format!("table {t} does not exist yet"));
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
        let label = format!("table {t}");
        for change in changes {
            exec.change(&change, true, &label, apply::change(src, &facts.region, &change)).await?;
            if matches!(change, Change::Lake(lake_diff::Change::EnablePitr { .. })) {
                pitr = true;
            }
        }
        if !state.pending.is_empty() {
            let reported: Vec<String> = o.info.replicas.iter().map(|r| format!("{} {}", r.region, r.status)).collect();
            let reported = if reported.is_empty() { "none".to_string() } else { reported.join(", ") };
            exec.pending(format!(
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
