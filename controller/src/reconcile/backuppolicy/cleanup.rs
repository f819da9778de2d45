//! BackupPolicy deletion: what may go, what must stay.
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use lakeops_crds::names::reason;
use lakeops_crds::{BackupPolicy, BackupPolicyStatus, DataLake};

use super::{apply, desired, diff, observe, steps};
use crate::conditions::Outcome;
use crate::context::Context;
use crate::engine::{Exec, NoProgress, Stop, role};
use crate::error::{Error, Result};
use crate::reconcile::securitybaseline::publish::Message;
use crate::status;

pub(super) fn lake_of(policy: &BackupPolicy, ctx: &Context) -> Option<Arc<DataLake>> {
    let ns = policy.namespace().unwrap_or_default();
    ctx.stores.lakes.get(&ObjectRef::new(&policy.spec.data_lake_ref.name).within(&ns))
}

/// The alert sent once the policy's clean-up finished (a refused deletion sends none): the
/// replication role, the backup plan and backup role lakeops deleted; the replicas, their keys
/// and the backup vaults holding recovery points stay.
/// `lake_region`: the region of the policy's lake, whose alert topic is used.
pub(super) fn deletion_message(policy: &BackupPolicy, lake_region: Option<&str>) -> Option<Message> {
    let status = policy.status.as_ref().filter(|s| s.applied.is_some())?;
    let mut m = Message::about(policy, "ObjectDeleted", lake_region?);
    m.resources.extend(status.replication_role_arn.iter().cloned());
    // The catalog's backup plan and role (its vaults holding recovery points stay).
    m.resources.extend(status.backup.iter().flat_map(|b| [b.plan_arn.clone(), b.role_arn.clone()]).flatten());
    Some(m)
}

/// Deletion: refused (the finalizer holds) unless the manifest allows the downgrade; then
/// the replication configurations lakeops wrote, the replication role, the policy's
/// lifecycle rules, the catalog's backup selection, plan and role, and backup vaults that
/// hold no recovery point go. Everything holding data stays.
pub(super) async fn cleanup(policy: Arc<BackupPolicy>, ctx: Arc<Context>) -> Result<Action> {
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
                apply::change(&src, &facts.region, &change).await?;
            }
        }
        if status.backup.is_some() {
            // The plan and its selection stop new backups; vaults holding recovery points stay.
            let account = ctx.aws.account_id().await?;
            let input = steps::Inputs {
                policy: &policy,
                spec: &policy.spec,
                lake: &lake,
                facts: &facts,
                account: &account,
                boundary: None,
            };
            let exec: Exec<'_, BackupPolicyStatus> = Exec::apply(policy.as_ref(), &NoProgress);
            let mut next = status.clone();
            stop_to_error(steps::remove_catalog_backup(&ctx.aws, &exec, &input, true, &mut next).await)?;
        }
    }
    if let Some(arn) = role {
        let name = arn.rsplit('/').next().unwrap_or_default();
        let exec: Exec<'_, BackupPolicyStatus> = Exec::apply(policy.as_ref(), &NoProgress);
        stop_to_error(role::delete(&exec, ctx.aws.iam().as_ref(), name, |t| exec.is_ours(t)).await)?;
    }
    Ok(Action::await_change())
}

/// A deletion step's stop as the finalizer's error.
fn stop_to_error(result: std::result::Result<(), Stop>) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(Stop::Aws(e)) => Err(e.into()),
        Err(Stop::Kube(e)) => Err(e),
        Err(Stop::Stalled(_, m) | Stop::Waiting(m)) => Err(Error::DeletionBlocked(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::backuppolicy::desired::tests::policy;

    #[test]
    fn the_deletion_alert_goes_to_the_lake_region_once_the_policy_was_applied() {
        let mut p = policy("{dataLakeRef: {name: sales}, replication: {region: eu-central-1}}");
        assert_eq!(deletion_message(&p, Some("eu-west-1")), None, "never applied: nothing to report");
        p.status = Some(BackupPolicyStatus {
            applied: Some(p.spec.clone()),
            replication_role_arn: Some("arn:aws:iam::123456789012:role/lakeops/team-a-sales-replication".into()),
            ..Default::default()
        });
        assert_eq!(deletion_message(&p, None), None, "no lake: no region to alert in");
        let m = deletion_message(&p, Some("eu-west-1")).expect("a message");
        assert_eq!((m.event, m.kind.as_str(), m.region.as_str()), ("ObjectDeleted", "BackupPolicy", "eu-west-1"));
        assert_eq!(m.resources, ["arn:aws:iam::123456789012:role/lakeops/team-a-sales-replication"]);
    }
}
