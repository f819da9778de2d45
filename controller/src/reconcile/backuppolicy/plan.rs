//! `lakeops plan` for a BackupPolicy: the engine's own observe and diff, reads only. A plan
//! works from manifests, so the lake's names come from its spec (the same names it records
//! in status) and the guard's baseline (`status.applied`) is unknown: changes that weaken
//! what AWS has now are marked, and `lakeops plan --base` shows weakening between manifests.
use kube::ResourceExt;
use lakeops_crds::references::check_policy_against_lake;
use lakeops_crds::{BackupPolicy, DataLake};

use crate::aws::error::AwsResult;
use crate::engine::{Clients, Exec, Stop};
use crate::reconcile::datalake::plan::LakePlan;

use super::desired::{self, LakeFacts, Zone};
use super::steps;

/// The lake as its manifest names it: what the DataLake records in status once it exists.
pub fn manifest_facts(lake: &DataLake, key_arn: &str) -> LakeFacts {
    LakeFacts {
        region: lake.spec.region.clone(),
        prefix: lake.bucket_prefix(),
        key_arn: key_arn.to_string(),
        object_lock: lake.spec.object_lock,
        // With its trail, the lake records its audit bucket too, replicated like a zone.
        zones: lake
            .spec
            .zones
            .iter()
            .map(|z| (z.name.clone(), lake.zone_bucket(&z.name)))
            .chain(lake.spec.audit.trail.then(|| (desired::AUDIT.to_string(), lake.audit_bucket())))
            .map(|(name, bucket)| Zone { name, replica_bucket: format!("{bucket}-replica"), bucket })
            .collect(),
        tables: lake.spec.catalog.tables.iter().map(|t| lake.table_name(&t.name)).collect(),
    }
}

/// What reconciling `policy` would change, given its lake (from the same manifests) and
/// the lake key's ARN (or a placeholder for a key that does not exist yet): the
/// controller's own sequence under the plan executor. Reads only. Blockers the controller
/// would stall on before converging (a lake without Object Lock) are listed too.
pub async fn plan(
    policy: &BackupPolicy,
    lake: &DataLake,
    aws: &dyn Clients,
    account: &str,
    lake_key: &str,
) -> AwsResult<LakePlan> {
    let facts = manifest_facts(lake, lake_key);
    let exec = Exec::plan(policy).weakening_apart();
    if let Some(message) = check_policy_against_lake(policy, lake).error_summary() {
        let _ = exec.blocked(&format!("DataLake {}", lake.name_any()), Stop::Waiting(message));
    }
    let mut next = policy.status.clone().unwrap_or_default();
    // A refused change leaves the last applied protection in force.
    let applied = next.applied.clone();
    let spec = match (desired::refusal(policy, applied.as_ref()), &applied) {
        (Some(_), Some(applied)) => applied.clone(),
        _ => policy.spec.clone(),
    };
    let input = steps::Inputs { policy, spec: &spec, lake, facts: &facts, account, boundary: None };
    let result = steps::converge(aws, &input, &exec, &mut next).await;
    tracing::debug!(policy = %policy.name_any(), "planned");
    crate::reconcile::datalake::plan::finish(result, exec)
}
