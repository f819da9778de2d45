//! The EtlFunction's convergence, written once: the controller runs it with the apply
//! executor, `lakeops plan` with the plan executor.
//!
//! Order: read everything (role, log group, function, permission, the source bucket's
//! notifications, the package); check ownership; record the names before the first write;
//! the role; the log group; the function (configuration, code, concurrency, signing); the
//! invoke permission and the trigger entry.
use kube::ResourceExt;
use lakeops_crds::{DataLake, EtlFunction, EtlFunctionStatus};

use crate::aws::clients::Regional;
use crate::aws::error::AwsError;
use crate::aws::iam::IamApi;
use crate::engine::{Exec, Stop, log_group};
use crate::reconcile::KeyedLocks;

use super::desired::{self, Facts};
use super::diff::{self, Change};
use super::{apply, observe};

type Exe<'a> = Exec<'a, EtlFunctionStatus>;

/// What the sequence works from.
pub struct Inputs<'a> {
    pub etl: &'a EtlFunction,
    pub lake: &'a DataLake,
    pub account: &'a str,
    /// The lake key's ARN (a placeholder when planning a lake not created yet).
    pub key_arn: &'a str,
    /// The permissions boundary every generated role carries (a controller flag; a plan
    /// takes the role's as it is).
    pub boundary: Option<&'a str>,
    /// Serialises writes of a bucket's notification document shared by several functions.
    pub locks: &'a KeyedLocks,
}

/// Runs the function's sequence; `next` is the status being built.
pub async fn converge(
    aws: &Regional,
    iam: &dyn IamApi,
    input: &Inputs<'_>,
    exec: &Exe<'_>,
    next: &mut EtlFunctionStatus,
) -> Result<(), Stop> {
    let Inputs { etl, lake, account, key_arn, .. } = *input;
    let facts = Facts { lake, account_id: account, key_arn, permissions_boundary: input.boundary };
    let mut d = desired::desired(etl, facts);
    // A plan has no status to say whether a config was attached: it reads it, so that
    // removing one from the manifest shows as the weakening it is.
    let check_signing =
        exec.plans() || d.function.code_signing_config_arn.is_some() || next.code_signing_config_arn.is_some();
    let (observed, artifact) = observe::observe(aws, iam, &d, check_signing).await?;
    // The function's tags carry the UID the whole set was created with.
    let uid_source = observed.function.as_ref().map(|f| f.tags.clone());
    for tags in [&mut d.role.tags, &mut d.function.tags, &mut d.log_group.tags] {
        exec.desired_tags(tags, uid_source.as_ref());
    }
    if exec.plans() {
        d.role.boundary = observed.role.as_ref().and_then(|r| r.info.permissions_boundary.clone());
    }
    if artifact.is_none() {
        let code = &d.function.code;
        let missing = AwsError::classify(
            "s3",
            "HeadObject",
            format!("{}/{}", code.bucket, code.key),
            Some("NoSuchKey"),
            Some("spec.code: the deployment package does not exist (or is not readable by the controller)"),
            Some(404),
        );
        exec.blocked(&format!("s3://{}/{}", code.bucket, code.key), Stop::Aws(missing))?;
    }

    // Everything that exists is checked for ownership before anything is written.
    if let Some(r) = &observed.role {
        exec.owned(&format!("IAM role {}", d.role.name), &r.info.tags)?;
    }
    if let Some(f) = &observed.function {
        exec.owned(&format!("Lambda function {}", d.function.name), &f.tags)?;
    }
    let untagged_group = match &observed.log_group {
        Some(g) if next.log_group.is_none() => log_group::check_first_sight(exec, aws.logs.as_ref(), g).await?,
        _ => false,
    };
    // A function cannot follow its lake to another region: the old one would be orphaned.
    if let Some(recorded) = next.function_arn.as_deref().and_then(super::region_of)
        && recorded != lake.spec.region
    {
        exec.blocked(
            &d.function.name,
            Stop::not_owned(format!(
                "spec.dataLakeRef: the function runs in {recorded} and DataLake {:?} is in {}; moving a function between regions is not supported: delete this EtlFunction and create it again",
                lake.name_any(),
                lake.spec.region
            )),
        )?;
    }

    // What will exist is recorded before the first write, so that clean-up finds it even
    // when this round fails (or the process dies) half-way.
    let moved_from = next.trigger_bucket.clone().filter(|b| *b != d.trigger.bucket);
    let names = (Some(d.function.arn.clone()), Some(d.role.arn.clone()), Some(d.trigger.bucket.clone()));
    if (next.function_arn.clone(), next.role_arn.clone(), next.trigger_bucket.clone()) != names {
        (next.function_arn, next.role_arn, next.trigger_bucket) = names;
        // An existing group passed the ownership check above.
        next.log_group = Some(d.log_group.name.clone());
        exec.record(next).await?;
    }

    let send = |change: Change| apply::change(aws, iam, input.locks, &d, change);
    // The source bucket changed (another zone or lake): our entry leaves the old bucket
    // first, or it would fire forever and block overlapping triggers there.
    if let Some(old) = moved_from {
        let change = Change::RemoveTrigger { bucket: old, id: d.trigger.entry.id.clone() };
        exec.change(&change, true, &format!("bucket {}", d.trigger.bucket), send(change.clone())).await?;
    }
    let role_label = format!("role {}", d.role.name);
    for change in diff::role_changes(&d.role, observed.role.as_ref()) {
        exec.change(&change, observed.role.is_some(), &role_label, send(change.clone())).await?;
    }
    let group_label = format!("log group {}", d.log_group.name);
    for change in
        log_group::changes(&d.log_group, observed.log_group.as_ref(), untagged_group).into_iter().map(Change::LogGroup)
    {
        exec.change(&change, observed.log_group.is_some(), &group_label, send(change.clone())).await?;
    }
    next.log_group = Some(d.log_group.name.clone());

    // A plan has no record of the deployed version: with the function in place, the code
    // counts as current (the controller compares with what it recorded).
    let deployed = match exec.plans() && next.deployed_code_version.is_none() && observed.function.is_some() {
        true => artifact.clone(),
        false => next.deployed_code_version.clone(),
    };
    let changes = diff::function_changes(
        &d.function,
        observed.function.as_ref(),
        observed.code_signing.as_ref(),
        deployed.as_deref(),
        artifact.as_deref(),
    );
    // Lambda refuses an update while the previous one is still being applied.
    let mut must_wait =
        observed.function.as_ref().is_some_and(|f| f.last_update_status.as_deref() == Some("InProgress"));
    let function_label = format!("function {}", d.function.name);
    for change in changes {
        let wait = must_wait && !exec.plans();
        must_wait = matches!(
            change,
            Change::UpdateConfiguration { .. } | Change::UpdateCode { .. } | Change::CreateFunction(_)
        );
        let existed = observed.function.is_some() && !matches!(change, Change::UpdateCode { .. });
        let lambda = aws.lambda.clone();
        let name = d.function.name.clone();
        let sent = send(change.clone());
        let call = async move {
            if wait {
                apply::wait_until_updated(lambda.as_ref(), &name).await?;
            }
            sent.await
        };
        exec.change(&change, existed, &function_label, call).await?;
    }
    if let Some(artifact) = artifact {
        next.deployed_code_version = Some(artifact);
    }
    next.code_signing_config_arn = d.function.code_signing_config_arn.clone();

    for change in diff::trigger_changes(&d, &observed) {
        exec.change(&change, observed.function.is_some(), &function_label, send(change.clone())).await?;
    }
    Ok(())
}
