//! `lakeops plan` for a SecurityBaseline: the controller's own step sequence, run by the
//! plan executor (reads only).
use lakeops_crds::SecurityBaseline;

use crate::aws::error::AwsResult;
use crate::engine::{Clients, Exec, Plan};

/// Computes what reconciling `b` would change, with read-only calls.
pub async fn plan(b: &SecurityBaseline, aws: &dyn Clients) -> AwsResult<Plan> {
    let account = aws.account_id().await?;
    let regional = aws.region(&b.spec.region);
    let mut next = b.status.clone().unwrap_or_default();
    let exec = Exec::plan(b);
    let iam = aws.iam();
    let input = super::steps::Inputs { aws: &regional, iam: iam.as_ref(), account: &account, boundary: None };
    let result = super::steps::converge(b, input, &exec, &mut next).await;
    crate::reconcile::datalake::plan::finish(result, exec)
}
