//! EtlFunction deletion: trigger, function, role, and the log group as `deletionPolicy` says.
use std::collections::BTreeMap;
use std::sync::Arc;

use kube::runtime::controller::Action;
use lakeops_crds::{EtlFunction, EtlFunctionStatus};

use super::{desired, region_of, remove_trigger};
use crate::aws::iam::IamApi;
use crate::context::Context;
use crate::engine::{Exec, NoProgress, Stop, log_group, role};
use crate::error::Result;
use crate::reconcile::is_owned_by;

/// Deletes the role `name` and its inline policies when its tags say it is ours.
async fn delete_role_if_owned(etl: &EtlFunction, iam: &dyn IamApi, name: &str) -> Result<()> {
    let exec: Exec<'_, EtlFunctionStatus> = Exec::apply(etl, &NoProgress);
    match role::delete(&exec, iam, name, |t| exec.is_ours(t)).await {
        Ok(()) => Ok(()),
        Err(Stop::Aws(e)) => Err(e.into()),
        Err(Stop::Kube(e)) => Err(e),
        Err(Stop::Stalled(_, m) | Stop::Waiting(m)) => Err(crate::error::Error::DeletionBlocked(m)),
    }
}

/// Deletion: the trigger entry, the function (its permission goes with it), the role, and
/// the log group as `deletionPolicy` says. Only what carries this object's tags is touched.
pub(super) async fn cleanup(etl: Arc<EtlFunction>, ctx: Arc<Context>) -> Result<Action> {
    ctx.fingerprints.forget(etl.as_ref());
    let status = etl.status.clone().unwrap_or_default();
    let iam = ctx.aws.iam();
    let names = desired::names(&etl);
    let owned = |tags: &BTreeMap<String, String>| is_owned_by(etl.as_ref(), tags);
    let Some(region) = status.function_arn.as_deref().and_then(region_of).map(str::to_string) else {
        // Nothing regional was recorded, so nothing regional was created; the role is global
        // and removed if it is ours (it is tagged at creation).
        delete_role_if_owned(etl.as_ref(), iam.as_ref(), &names.role).await?;
        return Ok(Action::await_change());
    };
    let aws = ctx.aws.region(&region);

    if let Some(bucket) = &status.trigger_bucket {
        remove_trigger(&ctx.locks, &aws, bucket, &names.notification_id).await?;
    }
    if let Some(f) = aws.lambda.get_function(&names.function).await?
        && owned(&f.tags)
    {
        aws.lambda.delete_function(&names.function).await?;
    }
    delete_role_if_owned(etl.as_ref(), iam.as_ref(), &names.role).await?;
    log_group::retire(aws.logs.as_ref(), &names.log_group, etl.spec.deletion_policy, &owned).await?;
    tracing::info!(function = %names.function, "removed");
    Ok(Action::await_change())
}
