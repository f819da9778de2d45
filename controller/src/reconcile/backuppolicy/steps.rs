//! The BackupPolicy's convergence, written once: the controller runs it with the apply
//! executor, `lakeops plan` with the plan executor.
//!
//! Order: read the replica keys and replica buckets (ownership checked before any write);
//! record the intent (replica bucket names, the keys' creation tokens) in one status write
//! when something will be created; the replica keys; the replica buckets; the replication
//! role; each zone bucket's retention, replication and lifecycle; the replication role's
//! deletion when replication was removed; the catalog tables' PITR and replicas; their AWS
//! Backup vaults, backup role, plan and selection (`catalog.rs`), or the plan's removal.
use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;
use kube::ResourceExt;
use lakeops_crds::backuppolicy::{
    BackupPolicySpec, CatalogBackup, CatalogBackupStatus, ReplicaKeyStatus, TableReplicaStatus, ZoneReplicationStatus,
};
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
use super::catalog::{self, BackupChange};
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
    match &spec.tables.backup {
        Some(b) => converge_catalog_backup(aws, exec, input, b, &key_arns, next).await?,
        None => remove_catalog_backup(aws, exec, input, false, next).await?,
    }
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

/// A vault as read: its description and tags. `None` when it does not exist.
type ObservedVault = Option<(crate::aws::backup::VaultInfo, BTreeMap<String, String>)>;

/// Reads a vault (DescribeBackupVault, and ListTags when it exists) and checks it is ours.
async fn observe_vault(aws: &dyn Clients, exec: &Exe<'_>, v: &catalog::DesiredVault) -> Result<ObservedVault, Stop> {
    let api = aws.region(&v.region).backup;
    let Some(info) = api.describe_vault(&v.name).await? else { return Ok(None) };
    let tags = api.list_tags(&info.arn).await?;
    exec.owned(&format!("backup vault {} in {}", v.name, v.region), &tags)?;
    Ok(Some((info, tags)))
}

/// The plan lakeops made for this policy: by the id status recorded (GetBackupPlan), else
/// among the region's plans by its creation token (a create whose answer was lost) or by
/// name and ownership tags (a plan, or a policy whose status was lost).
async fn observe_plan(
    src: &Regional,
    exec: &Exe<'_>,
    name: &str,
    token: Option<&str>,
    recorded: Option<&str>,
) -> Result<Option<crate::aws::backup::PlanInfo>, Stop> {
    if let Some(id) = recorded
        && let Some(plan) = src.backup.get_plan(id).await?.filter(|p| !p.deleted)
    {
        return Ok(Some(plan));
    }
    for p in src.backup.list_plans().await? {
        let by_token = token.is_some() && p.creator_request_id.as_deref() == token;
        let ours = by_token || (p.name == name && exec.is_ours(&src.backup.list_tags(&p.arn).await?));
        if ours {
            return Ok(src.backup.get_plan(&p.id).await?.filter(|p| !p.deleted));
        }
    }
    Ok(None)
}

/// The catalog tables' AWS Backup: the vaults (lake key; replica key in the copy region;
/// locked under COMPLIANCE), the role AWS Backup assumes, the plan (changed in place), and
/// the selection of the tables. Creation tokens are recorded in status before the plan and
/// the selection are created (AWS Backup names neither uniquely).
async fn converge_catalog_backup(
    aws: &dyn Clients,
    exec: &Exe<'_>,
    input: &Inputs<'_>,
    b: &CatalogBackup,
    keys: &BTreeMap<String, String>,
    next: &mut BackupPolicyStatus,
) -> Result<(), Stop> {
    let Inputs { policy, spec, lake, facts, account, .. } = *input;
    let src = aws.region(&facts.region);
    let tags = desired::resource_tags(policy, lake);
    let uid = policy.uid();
    let recorded = next.backup.clone().unwrap_or_default();
    let plan_name = catalog::name(policy);
    // The token recorded before an earlier create (its answer may have been lost), else a new
    // one: the generation makes a plan created again after a removal another request.
    let plan_token = next.creation_tokens.get(catalog::PLAN_PURPOSE).cloned().or_else(|| {
        let generation = policy.metadata.generation.unwrap_or_default();
        uid.as_deref().map(|u| catalog::request_id(u, &format!("{}/{generation}", catalog::PLAN_PURPOSE)))
    });

    // Reads: both vaults, the plan, the role.
    let vaults = catalog::vaults(policy, spec, facts, keys, &tags);
    let observed_vaults = try_join_all(vaults.iter().map(|v| observe_vault(aws, exec, v))).await?;
    let plan = observe_plan(&src, exec, &plan_name, plan_token.as_deref(), recorded.plan_id.as_deref()).await?;
    let iam = aws.iam();
    let copy_region = b.copy.as_ref().map(|c| c.region.as_str());
    let mut role = OwnedRole {
        name: catalog::role_name(&facts.prefix),
        path: crate::iam::ROLE_PATH,
        description: "lakeops: AWS Backup of a DataLake's catalog tables (BackupPolicy)",
        trust: catalog::trust_policy(),
        policy_name: catalog::ROLE_POLICY_NAME,
        policy: catalog::role_policy(facts, account, &vaults, copy_region),
        boundary: input.boundary.map(str::to_string),
        tags: tags.clone(),
    };
    let observed_role = role::observe(iam.as_ref(), &role.name, catalog::ROLE_POLICY_NAME).await?;
    exec.desired_tags(&mut role.tags, observed_role.as_ref().map(|o| &o.info.tags));
    if exec.plans() {
        role.boundary = observed_role.as_ref().and_then(|o| o.info.permissions_boundary.clone());
    }

    // The vaults.
    let mut status = CatalogBackupStatus { plan_id: None, ..Default::default() };
    for (i, (mut v, o)) in vaults.into_iter().zip(observed_vaults).enumerate() {
        exec.desired_tags(&mut v.tags, o.as_ref().map(|(_, t)| t));
        let request_id =
            uid.as_deref().map(|u| catalog::request_id(u, &format!("backup-vault/{}", v.region))).unwrap_or_default();
        let changes = match catalog::vault_changes(&v, o.as_ref(), &request_id) {
            Ok(c) => c,
            Err(message) => {
                exec.blocked(&format!("backup vault {}", v.name), Stop::Stalled(reason::CONFLICT, message))?;
                Vec::new()
            }
        };
        let api = aws.region(&v.region);
        let mut arn = o.as_ref().map(|(info, _)| info.arn.clone());
        let mut lock = o.as_ref().and_then(|(info, _)| info.lock.as_ref()).and_then(|l| l.min_retention_days);
        let label = format!("backup vault {} in {}", v.name, v.region);
        for c in changes {
            let change = Change::Backup(c);
            if let Some(created) =
                exec.change(&change, o.is_some(), &label, apply::change(&api, &v.region, &change)).await?
            {
                arn = Some(created);
            }
            if let Change::Backup(BackupChange::LockVault { min_days, .. }) = change {
                lock = Some(min_days);
            }
        }
        let arn = arn.unwrap_or_else(|| catalog::vault_arn(&v.region, account, &v.name));
        if i == 0 {
            status.vault_arn = Some(arn);
            status.vault_lock_days = lock;
        } else {
            status.copy_vault_arn = Some(arn);
        }
    }

    // The role AWS Backup assumes.
    let predicted = desired::role_arn(&facts.region, account, &role.name);
    let role_arn =
        role::converge(exec, iam.as_ref(), &role, observed_role.as_ref(), recorded.role_arn.as_deref(), predicted)
            .await?;
    status.role_arn = Some(role_arn.clone());

    // The plan: created under a recorded token, or changed in place.
    let document = catalog::plan_document(policy, b, account);
    let label = format!("backup plan {plan_name}");
    let (plan_id, selections) = match plan {
        Some(p) => {
            if p.document != document {
                let change = Change::Backup(BackupChange::UpdatePlan {
                    id: p.id.clone(),
                    document: document.clone(),
                    previous: p.document.clone(),
                });
                exec.change(&change, true, &label, apply::change(&src, &facts.region, &change)).await?;
            }
            status.plan_arn = Some(p.arn.clone());
            let selections = src.backup.list_selections(&p.id).await?;
            (p.id, selections)
        }
        None => {
            if let Some(token) = &plan_token
                && intent::record(&mut next.creation_tokens, catalog::PLAN_PURPOSE, token)
            {
                exec.record(next).await?;
            }
            let change = Change::Backup(BackupChange::CreatePlan {
                document: document.clone(),
                tags: tags.clone(),
                request_id: plan_token.clone().unwrap_or_default(),
            });
            let id = exec
                .change(&change, false, &label, apply::change(&src, &facts.region, &change))
                .await?
                .unwrap_or_else(|| crate::engine::placeholder("backup plan"));
            if !crate::engine::is_placeholder(&id) {
                status.plan_arn = Some(format!(
                    "arn:{}:backup:{}:{account}:backup-plan:{id}",
                    crate::reconcile::datalake::desired::partition(&facts.region),
                    facts.region
                ));
            }
            (id, Vec::new())
        }
    };
    status.plan_id = Some(plan_id.clone()).filter(|id| !crate::engine::is_placeholder(id));

    // The selection of the tables, known by the token its content gives.
    let selection = catalog::selection(facts, account, &role_arn);
    let selection_token = catalog::selection_request_id(&plan_id, &selection);
    let mut selection_id = selections
        .iter()
        .find(|s| s.creator_request_id.as_deref() == Some(selection_token.as_str()))
        .map(|s| s.id.clone());
    for c in catalog::selection_changes(&plan_id, &plan_name, &selection, &selection_token, &selections) {
        if matches!(c, BackupChange::CreateSelection { .. }) && !exec.plans() {
            // The plan's id and the selection's token, before the create.
            next.backup = Some(status.clone());
            intent::record(&mut next.creation_tokens, catalog::SELECTION_PURPOSE, &selection_token);
            exec.record(next).await?;
        }
        let change = Change::Backup(c);
        if let Some(id) = exec.change(&change, true, &label, apply::change(&src, &facts.region, &change)).await? {
            selection_id = Some(id);
        }
    }
    status.selection_id = selection_id;
    next.backup = Some(status);
    Ok(())
}

/// `spec.tables.backup` removed (or the policy deleted): the selection and the plan go, so no
/// new backups are made, and the backup role; the vaults and their recovery points stay,
/// except, with `delete_empty_vaults` (deletion), vaults of ours that hold none.
pub async fn remove_catalog_backup(
    aws: &dyn Clients,
    exec: &Exe<'_>,
    input: &Inputs<'_>,
    delete_empty_vaults: bool,
    next: &mut BackupPolicyStatus,
) -> Result<(), Stop> {
    let Inputs { policy, facts, .. } = *input;
    let Some(recorded) = next.backup.clone().or_else(|| exec.plans().then(CatalogBackupStatus::default)) else {
        return Ok(());
    };
    let src = aws.region(&facts.region);
    let plan_name = catalog::name(policy);
    let token = next.creation_tokens.get(catalog::PLAN_PURPOSE).cloned();
    let label = format!("backup plan {plan_name}");
    if let Some(plan) = observe_plan(&src, exec, &plan_name, token.as_deref(), recorded.plan_id.as_deref()).await? {
        for s in src.backup.list_selections(&plan.id).await?.into_iter().filter(|s| s.name == catalog::SELECTION_NAME) {
            let change = Change::Backup(BackupChange::DeleteSelection {
                plan_id: plan.id.clone(),
                plan_name: plan_name.clone(),
                selection_id: s.id,
                replaced: false,
            });
            exec.change(&change, true, &label, apply::change(&src, &facts.region, &change)).await?;
        }
        let change = Change::Backup(BackupChange::DeletePlan { id: plan.id, name: plan_name.clone() });
        exec.change(&change, true, &label, apply::change(&src, &facts.region, &change)).await?;
    }
    if recorded.role_arn.is_some() || exec.plans() {
        let iam = aws.iam();
        role::delete(exec, iam.as_ref(), &catalog::role_name(&facts.prefix), |t| exec.is_ours(t)).await?;
    }
    if delete_empty_vaults {
        let regions = [Some(&recorded.vault_arn), Some(&recorded.copy_vault_arn)]
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|arn| arn.split(':').nth(3).map(str::to_string));
        for region in regions {
            let api = aws.region(&region);
            let Some(info) = api.backup.describe_vault(&plan_name).await? else { continue };
            // Recovery points are data: a vault holding any stays.
            if info.recovery_points > 0 || !exec.is_ours(&api.backup.list_tags(&info.arn).await?) {
                continue;
            }
            let change = Change::Backup(BackupChange::DeleteVault { region: region.clone(), name: plan_name.clone() });
            exec.change(
                &change,
                true,
                &format!("backup vault {plan_name} in {region}"),
                apply::change(&api, &region, &change),
            )
            .await?;
        }
    }
    next.backup = None;
    next.creation_tokens.retain(|k, _| k != catalog::PLAN_PURPOSE && k != catalog::SELECTION_PURPOSE);
    Ok(())
}
