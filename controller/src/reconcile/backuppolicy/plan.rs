//! `lakeops plan` for a BackupPolicy: the engine's own observe and diff, reads only. A plan
//! works from manifests, so the lake's names come from its spec (the same names it records
//! in status) and the guard's baseline (`status.applied`) is unknown: changes that weaken
//! what AWS has now are marked, and `lakeops plan --base` shows weakening between manifests.
use std::collections::BTreeMap;

use futures::future::try_join_all;
use kube::ResourceExt;
use lakeops_crds::{BackupPolicy, DataLake};

use crate::aws::clients::AwsClients;
use crate::aws::error::AwsResult;
use crate::reconcile::datalake::diff as lake_diff;
use crate::reconcile::datalake::observe as lake_observe;
use crate::reconcile::datalake::plan::{Action, LakePlan, Planned, with_observed_uid};

use super::desired::{self, LakeFacts, ROLE_POLICY_NAME, Zone};
use super::diff::{self, Change, DesiredRole, ObservedZone};
use super::observe;

/// The lake as its manifest names it: what the DataLake records in status once it exists.
pub fn manifest_facts(lake: &DataLake, key_arn: &str) -> LakeFacts {
    LakeFacts {
        region: lake.spec.region.clone(),
        prefix: lake.bucket_prefix(),
        key_arn: key_arn.to_string(),
        object_lock: lake.spec.object_lock,
        zones: lake
            .spec
            .zones
            .iter()
            .map(|z| {
                let bucket = lake.zone_bucket(&z.name);
                Zone { name: z.name.clone(), replica_bucket: format!("{bucket}-replica"), bucket }
            })
            .collect(),
        tables: lake.spec.catalog.tables.iter().map(|t| lake.table_name(&t.name)).collect(),
    }
}

fn planned(change: &Change, resource: &str, existed: bool) -> Planned {
    let action = match change {
        Change::ClearRetention { .. } | Change::DeleteReplication { .. } | Change::DeleteReplica { .. } => {
            Action::Delete
        }
        Change::CreateRole { .. } | Change::Lake(lake_diff::Change::CreateBucket { .. }) => Action::Create,
        _ if existed => Action::Update,
        _ => Action::Create,
    };
    Planned {
        action,
        resource: resource.to_string(),
        setting: change.setting().to_string(),
        description: change.to_string(),
        weakens: change.weakens(),
    }
}

fn create(resource: &str, setting: &str, description: String) -> Planned {
    Planned {
        action: Action::Create,
        resource: resource.to_string(),
        setting: setting.to_string(),
        description,
        weakens: false,
    }
}

/// What reconciling `policy` would change, given its lake (from the same manifests) and
/// the lake key's ARN (or a placeholder for a key that does not exist yet). Reads only.
pub async fn plan(
    policy: &BackupPolicy,
    lake: &DataLake,
    aws: &AwsClients,
    account: &str,
    lake_key: &str,
) -> AwsResult<LakePlan> {
    let spec = &policy.spec;
    let facts = manifest_facts(lake, lake_key);
    let src = aws.region(&facts.region);
    let mut out = LakePlan::default();

    // Replica keys, one per backup region.
    let mut keys = BTreeMap::new();
    for region in desired::key_regions(spec) {
        let want = desired::replica_key(policy, &region, account);
        let regional = aws.region(&region);
        let arn = match lake_observe::key(regional.kms.as_ref(), &want.alias).await? {
            Some(k) => {
                for c in lake_diff::key_changes(&k, want.rotation_days, &want.policy) {
                    out.changes.push(planned(&Change::Lake(c), &want.alias, true));
                }
                k.info.arn
            }
            None => {
                out.changes.push(create(
                    &want.alias,
                    "replica key",
                    format!(
                        "create KMS key {} in {region} with rotation every {} days",
                        want.alias, want.rotation_days
                    ),
                ));
                format!("(the new replica key in {region})")
            }
        };
        keys.insert(region, arn);
    }

    let tags = desired::resource_tags(policy, lake);
    let mut replication_configs = BTreeMap::new();
    if let Some(r) = &spec.replication {
        let key = keys.get(&r.region).cloned().unwrap_or_default();
        let backup = aws.region(&r.region);
        let retention = desired::retention(spec).filter(|_| facts.object_lock);
        let buckets: Vec<_> =
            facts.zones.iter().map(|z| desired::replica_bucket(lake, &facts, z, &r.region, &key, &tags)).collect();
        let observed =
            try_join_all(buckets.iter().map(|b| observe::replica_bucket(backup.s3.as_ref(), &b.name))).await?;
        for (b, o) in buckets.iter().zip(observed) {
            let mut b = b.clone();
            if policy.uid().is_none() {
                with_observed_uid(&mut b.tags, o.as_ref().map(|(bucket, _)| &bucket.tags));
            }
            let b = &b;
            let (bucket, seen) = match o {
                Some((bucket, retention)) => (Some(bucket), retention),
                None => (None, None),
            };
            let existed = bucket.is_some();
            for c in lake_diff::bucket_changes(b, bucket.as_ref()) {
                out.changes.push(planned(&Change::Lake(c), &b.name, existed));
            }
            // Without the policy's status, a retention on the replica counts as ours.
            let owned = seen.is_some();
            if let Some(c) = diff::retention_change(&b.name, retention.as_ref(), seen.as_ref(), owned) {
                out.changes.push(planned(&c, &b.name, existed));
            }
        }
        let mut want = DesiredRole {
            name: desired::role_name(&facts.prefix),
            trust: desired::trust_policy(&facts.region, account, &facts),
            policy: desired::role_policy(r, &facts, &key),
            // A plan does not know the controller's flags: the boundary is taken as it is.
            boundary: None,
            tags: tags.clone(),
        };
        let observed = observe::role(aws.iam().as_ref(), &want.name, ROLE_POLICY_NAME).await?;
        if policy.uid().is_none() {
            with_observed_uid(&mut want.tags, observed.as_ref().map(|o| &o.info.tags));
        }
        want.boundary = observed.as_ref().and_then(|o| o.info.permissions_boundary.clone());
        for c in diff::role_changes(&want, observed.as_ref(), ROLE_POLICY_NAME) {
            out.changes.push(planned(&c, &want.name, observed.is_some()));
        }
        let role_arn =
            observed.map(|o| o.info.arn).unwrap_or_else(|| desired::role_arn(&facts.region, account, &want.name));
        for z in &facts.zones {
            replication_configs.insert(z.name.clone(), desired::replication(r, &role_arn, z, &key));
        }
    }

    // Zone buckets: a bucket the lake has not created yet gets everything.
    let retention = desired::retention(spec);
    let noncurrent = desired::noncurrent_rules(spec);
    let zones = try_join_all(facts.zones.iter().map(|z| async {
        match observe::zone(src.s3.as_ref(), &z.bucket).await {
            Ok(o) => Ok((o, true)),
            Err(e) if e.is_not_found() => {
                Ok((ObservedZone { object_lock: facts.object_lock, ..ObservedZone::default() }, false))
            }
            Err(e) => Err(e),
        }
    }))
    .await?;
    for (z, (o, existed)) in facts.zones.iter().zip(zones) {
        let changes = [
            diff::retention_change(&z.bucket, retention.as_ref(), o.retention.as_ref(), false),
            diff::replication_change(&z.bucket, replication_configs.get(&z.name), o.replication.as_ref(), None, None),
            diff::lifecycle_change(&z.bucket, &noncurrent, o.lifecycle.as_deref()),
        ];
        for c in changes.into_iter().flatten() {
            out.changes.push(planned(&c, &z.bucket, existed));
        }
    }

    // Tables: PITR and replicas; a table the lake has not created yet gets them once it does.
    let tables = try_join_all(facts.tables.iter().map(|t| observe::table(src.dynamodb.as_ref(), t))).await?;
    for (t, o) in facts.tables.iter().zip(tables) {
        match o {
            Some(o) => {
                let (changes, _) = diff::table_changes(
                    t,
                    spec.tables.point_in_time_recovery,
                    &spec.tables.replica_regions,
                    &keys,
                    &o,
                    &[],
                    &[],
                );
                out.changes.extend(changes.iter().map(|c| planned(c, t, true)));
            }
            None => {
                for region in &spec.tables.replica_regions {
                    out.changes.push(create(t, "table replica", format!("table {t}: add a replica in {region}")));
                }
            }
        }
    }
    tracing::debug!(policy = %policy.name_any(), changes = out.changes.len(), "planned");
    Ok(out)
}
