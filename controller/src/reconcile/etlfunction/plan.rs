//! `lakeops plan` for an EtlFunction: the controller's own observe and diff, reads only.
use kube::ResourceExt;
use lakeops_crds::{DataLake, EtlFunction};

use crate::aws::clients::Regional;
use crate::aws::error::AwsResult;
use crate::aws::iam::IamApi;
use crate::reconcile::datalake::plan::{Action, Blocker, LakePlan, Planned, blocker, with_observed_uid};

use super::desired::{self, Facts};
use super::diff::{self, Change};

/// Stands in for the lake key's ARN when the lake does not exist yet.
pub const NEW_KEY: &str = "(the new lake key)";

/// One plan line for `change`; `existed` tells whether its resource exists already.
pub fn planned(change: &Change, existed: bool) -> Planned {
    Planned {
        action: if change.creates() || !existed { Action::Create } else { Action::Update },
        resource: change.resource().to_string(),
        setting: change.setting().to_string(),
        description: change.to_string(),
        weakens: change.weakens(),
    }
}

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
    let facts = Facts { lake, account_id: account, key_arn, permissions_boundary: None };
    let mut d = desired::desired(etl, facts);
    // A plan has no status to say whether a config was attached: read it, so that removing
    // one from the manifest shows as the weakening it is.
    let (observed, artifact) = super::observe(aws, iam, &d, true).await?;
    let mut out = LakePlan::default();
    // The function's tags carry the UID the whole set was created with.
    if etl.uid().is_none() {
        for tags in [&mut d.role.tags, &mut d.function.tags, &mut d.log_group.tags] {
            with_observed_uid(tags, observed.function.as_ref().map(|f| &f.tags));
        }
    }
    if let Some(r) = &observed.role {
        out.blockers.extend(blocker(etl, &format!("IAM role {}", d.role.name), &r.info.tags));
    }
    if let Some(f) = &observed.function {
        out.blockers.extend(blocker(etl, &format!("Lambda function {}", d.function.name), &f.tags));
    }
    let role = diff::role_changes(&d.role, observed.role.as_ref());
    out.changes.extend(role.iter().map(|c| planned(c, observed.role.is_some())));
    let logs = diff::log_group_changes(&d.log_group, observed.log_group.as_ref());
    out.changes.extend(logs.iter().map(|c| planned(c, observed.log_group.is_some())));
    // Without status, the deployed version is unknown: a plan shows code as current when
    // the function exists, since the controller compares against what it recorded.
    let deployed = if observed.function.is_some() { artifact.clone() } else { None };
    let function = diff::function_changes(
        &d.function,
        observed.function.as_ref(),
        observed.code_signing.as_ref(),
        deployed.as_deref(),
        artifact.as_deref(),
    );
    out.changes.extend(function.iter().map(|c| planned(c, observed.function.is_some())));
    let trigger = diff::trigger_changes(&d, &observed);
    out.changes.extend(trigger.iter().map(|c| planned(c, observed.function.is_some())));
    if artifact.is_none() {
        out.blockers.push(Blocker {
            resource: format!("s3://{}/{}", d.function.code.bucket, d.function.code.key),
            message: "spec.code: the deployment package does not exist; the function cannot be created".into(),
        });
    }
    Ok(out)
}
