//! EtlFunction reconciler.
use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use lakeops_crds::common::is_ready;
use lakeops_crds::names::reason;
use lakeops_crds::references::{check_function_against_lake, check_trigger_overlaps};
use lakeops_crds::{DataLake, EtlFunction};

use crate::conditions::Outcome;
use crate::context::Context;
use crate::error::Result;
use crate::status;

/// Reconciles one EtlFunction.
pub async fn reconcile(etl: Arc<EtlFunction>, ctx: Arc<Context>) -> Result<Action> {
    let ns = etl.namespace().unwrap_or_default();
    let lake = ctx.stores.lakes.get(&ObjectRef::new(&etl.spec.data_lake_ref.name).within(&ns));
    let siblings = ctx.stores.functions.state();
    let outcome = plan_outcome(&etl, lake.as_deref(), siblings.iter().map(AsRef::as_ref));
    let next = etl.status.clone().unwrap_or_default();
    status::apply(&ctx, etl.as_ref(), next, &outcome).await?;
    Ok(Action::requeue(super::resync_interval(etl.as_ref(), ctx.config.resync_interval)))
}

/// The outcome from the spec, the referenced lake and the other functions. Pure.
pub fn plan_outcome<'a>(
    etl: &EtlFunction,
    lake: Option<&DataLake>,
    siblings: impl IntoIterator<Item = &'a EtlFunction>,
) -> Outcome {
    let mut findings = etl.validate();
    findings.extend(check_trigger_overlaps(etl, siblings));
    if let Some(lake) = lake {
        findings.extend(check_function_against_lake(etl, lake));
    }
    if let Some(message) = findings.error_summary() {
        return Outcome::Stalled { reason: reason::INVALID_SPEC, message };
    }
    let lake_name = &etl.spec.data_lake_ref.name;
    match lake {
        None => Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} does not exist in this namespace"),
        },
        Some(l)
            if !is_ready(
                l.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default(),
                l.status.as_ref().and_then(|s| s.observed_generation),
                l.metadata.generation,
            ) =>
        {
            Outcome::Waiting {
                reason: reason::DATA_LAKE_NOT_READY,
                message: format!("DataLake {lake_name:?} is not Ready yet"),
            }
        }
        Some(_) => Outcome::Progressing {
            reason: reason::PROGRESSING,
            message: "spec is valid; the Lambda function is not converged by this controller build yet".into(),
        },
    }
}
