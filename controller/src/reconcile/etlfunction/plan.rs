//! `lakeops plan` for an EtlFunction: the controller's own step sequence, run by the plan
//! executor (reads only).
use lakeops_crds::{DataLake, EtlFunction};

use crate::aws::clients::Regional;
use crate::aws::error::AwsResult;
use crate::aws::iam::IamApi;
use crate::engine::Exec;
use crate::reconcile::KeyedLocks;
use crate::reconcile::datalake::plan::LakePlan;

/// Stands in for the lake key's ARN when the lake does not exist yet.
pub const NEW_KEY: &str = "(the new lake key)";

/// What reconciling `etl` would change, given its lake (from the same manifests) and the
/// lake key's ARN (or [`NEW_KEY`]). Reads only.
pub async fn plan(
    etl: &EtlFunction,
    lake: &DataLake,
    aws: &Regional,
    iam: &dyn IamApi,
    account: &str,
    key_arn: &str,
) -> AwsResult<LakePlan> {
    let locks = KeyedLocks::default();
    let input = super::steps::Inputs { etl, lake, account, key_arn, boundary: None, locks: &locks };
    let exec = Exec::plan(etl);
    let mut next = etl.status.clone().unwrap_or_default();
    let result = super::steps::converge(aws, iam, &input, &exec, &mut next).await;
    crate::reconcile::datalake::plan::finish(result, exec)
}
