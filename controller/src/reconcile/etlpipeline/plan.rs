//! `lakeops plan` for an EtlPipeline: the controller's own step sequence, run by the plan
//! executor (reads only).
use lakeops_crds::{DataLake, EtlPipeline};

use crate::aws::clients::Regional;
use crate::aws::error::AwsResult;
use crate::aws::iam::IamApi;
use crate::engine::{Exec, Plan};
use crate::reconcile::KeyedLocks;

/// Computes what reconciling `p` would change, with read-only calls.
pub async fn plan(
    p: &EtlPipeline,
    lake: &DataLake,
    aws: &Regional,
    iam: &dyn IamApi,
    account: &str,
    key_arn: &str,
) -> AwsResult<Plan> {
    let locks = KeyedLocks::default();
    let input = super::steps::Inputs { pipeline: p, lake, account, key_arn, boundary: None, locks: &locks };
    let mut next = p.status.clone().unwrap_or_default();
    let exec = Exec::plan(p);
    let result = super::steps::converge(aws, iam, &input, &exec, &mut next).await;
    crate::reconcile::datalake::plan::finish(result, exec)
}
