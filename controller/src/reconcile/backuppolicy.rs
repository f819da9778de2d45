//! BackupPolicy reconciler.
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use lakeops_crds::common::is_ready;
use lakeops_crds::names::reason;
use lakeops_crds::references::{check_policy_against_lake, owning_policy};
use lakeops_crds::{BackupPolicy, DataLake};

use crate::conditions::Outcome;
use crate::context::Context;
use crate::error::Result;
use crate::status;

/// Reconciles one BackupPolicy.
pub async fn reconcile(policy: Arc<BackupPolicy>, ctx: Arc<Context>) -> Result<Action> {
    let ns = policy.namespace().unwrap_or_default();
    let lake = ctx.stores.lakes.get(&ObjectRef::new(&policy.spec.data_lake_ref.name).within(&ns));
    let all = ctx.stores.policies.state();
    let outcome = plan_outcome(&policy, lake.as_deref(), all.iter().map(AsRef::as_ref));
    let next = policy.status.clone().unwrap_or_default();
    status::apply(&ctx, policy.as_ref(), next, &outcome).await?;
    Ok(Action::requeue(super::resync_interval(policy.as_ref(), ctx.config.resync_interval)))
}

/// The outcome from the spec, the referenced lake and every policy in the cache. Pure.
pub fn plan_outcome<'a>(
    policy: &BackupPolicy,
    lake: Option<&DataLake>,
    all: impl IntoIterator<Item = &'a BackupPolicy>,
) -> Outcome {
    let findings = policy.validate();
    if let Some(message) = findings.error_summary() {
        return Outcome::Stalled { reason: reason::INVALID_SPEC, message };
    }
    let same_lake = all
        .into_iter()
        .filter(|p| p.namespace() == policy.namespace() && p.spec.data_lake_ref == policy.spec.data_lake_ref);
    if let Some(owner) = owning_policy(same_lake)
        && owner.name_any() != policy.name_any()
    {
        return Outcome::Stalled {
            reason: reason::CONFLICT,
            message: format!(
                "spec.dataLakeRef.name: BackupPolicy {:?} already protects DataLake {:?}; a lake has one BackupPolicy",
                owner.name_any(),
                policy.spec.data_lake_ref.name
            ),
        };
    }
    let lake_name = &policy.spec.data_lake_ref.name;
    let Some(lake) = lake else {
        return Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} does not exist in this namespace"),
        };
    };
    let against_lake = check_policy_against_lake(policy, lake);
    if let Some(message) = against_lake.error_summary() {
        let r = if policy.spec.retention.is_some() && !lake.spec.object_lock {
            reason::OBJECT_LOCK_DISABLED
        } else {
            reason::INVALID_SPEC
        };
        return Outcome::Stalled { reason: r, message };
    }
    let status = lake.status.as_ref();
    if !is_ready(
        status.map(|s| s.conditions.as_slice()).unwrap_or_default(),
        status.and_then(|s| s.observed_generation),
        lake.metadata.generation,
    ) {
        return Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} is not Ready yet"),
        };
    }
    Outcome::Progressing {
        reason: reason::PROGRESSING,
        message: "spec is valid; backups are not converged by this controller build yet".into(),
    }
}
