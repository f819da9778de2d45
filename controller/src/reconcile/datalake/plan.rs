//! `lakeops plan` for a DataLake: the controller's own step sequence, run by the plan
//! executor (reads only).
use lakeops_crds::DataLake;

use crate::aws::clients::Regional;
use crate::aws::error::AwsResult;
use crate::aws::iam::IamApi;
use crate::engine::{Exec, Stop};

pub use crate::engine::{Action, Blocker, Plan as LakePlan, Planned};

/// Computes what reconciling `lake` would change, with read-only calls. The status the
/// controller would start from is the one the manifest implies (none recorded yet).
/// `baseline_covers`: a SecurityBaseline covers the lake's region (see [`super::steps::Inputs`]).
pub async fn plan(
    lake: &DataLake,
    aws: &Regional,
    iam: &dyn IamApi,
    account: &str,
    baseline_covers: bool,
) -> AwsResult<LakePlan> {
    let current = lake.status.clone().unwrap_or_default();
    let (mut next, _) = super::plan_status(lake, &current);
    let exec = Exec::plan(lake);
    // A plan does not know the controller's flags: generated roles keep the boundary they have.
    let input = super::steps::Inputs { lake, aws, iam, account, boundary: None, baseline_covers };
    finish(super::steps::converge(input, &exec, &mut next).await, exec)
}

/// The plan of a finished planning run. Under the plan executor only an AWS read can stop
/// the sequence (blockers are listed, nothing is written); that error is the plan's.
pub fn finish<S: Sync>(result: Result<(), Stop>, exec: Exec<'_, S>) -> AwsResult<LakePlan> {
    let (_, mut plan) = exec.finish();
    match result {
        Ok(()) => Ok(plan),
        Err(Stop::Aws(e)) => Err(e),
        Err(Stop::Stalled(_, message) | Stop::Waiting(message)) => {
            plan.blockers.push(Blocker { resource: String::new(), message });
            Ok(plan)
        }
        Err(Stop::Kube(e)) => {
            plan.blockers.push(Blocker { resource: String::new(), message: e.to_string() });
            Ok(plan)
        }
    }
}
