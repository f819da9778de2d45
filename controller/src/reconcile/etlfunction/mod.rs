//! EtlFunction reconciler: once the referenced lake is Ready, converge the execution role,
//! the log group, the function and its S3 trigger, in that order; on deletion remove the
//! trigger, the function and the role, and the log group as `deletionPolicy` says.
pub mod desired;
pub mod diff;
pub mod plan;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use lakeops_crds::names::{reason, tag};
use lakeops_crds::references::{check_function_against_lake, check_trigger_overlaps};
use lakeops_crds::{DataLake, DeletionPolicy, EtlFunction, EtlFunctionStatus};

use crate::aws::clients::Regional;
use crate::aws::error::{AwsError, AwsResult};
use crate::aws::iam::{IamApi, NewRole};
use crate::aws::lambda::LambdaApi;
use crate::conditions::Outcome;
use crate::context::Context;
use crate::error::Result;
use crate::status;

use super::{Stop, aws_outcome, is_owned_by};
use desired::{Desired, Facts, ROLE_POLICY_NAME};
use diff::{Change, Observed, ObservedRole};

/// IAM is eventually consistent: a role created a moment ago may not be assumable by
/// Lambda yet. Such calls are retried at this pace...
const ROLE_PROPAGATION_STEP: Duration = Duration::from_secs(2);
/// ...for at most this long.
const ROLE_PROPAGATION_LIMIT: Duration = Duration::from_secs(120);
/// How long to wait for a previous update of a function to finish before the next one.
const UPDATE_WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Reconciles one EtlFunction: the finalizer guards clean-up, then apply or clean up.
pub async fn reconcile(etl: Arc<EtlFunction>, ctx: Arc<Context>) -> Result<Action> {
    super::with_finalizer(etl, ctx, apply_function, cleanup).await
}

/// What one convergence did.
#[derive(Debug, Default)]
struct Report {
    applied: usize,
    drift: Vec<String>,
}

async fn apply_function(etl: Arc<EtlFunction>, ctx: Arc<Context>) -> Result<Action> {
    let resync = super::resync_interval(etl.as_ref(), ctx.config.resync_interval);
    let ns = etl.namespace().unwrap_or_default();
    let lake = super::current_lake(&ctx, &ns, &etl.spec.data_lake_ref.name).await?;
    // The function depends on its lake too: a changed lake is a reason to look again.
    let lake_version = lake.as_ref().and_then(|l| l.resource_version()).unwrap_or_default();
    if let Some(left) = ctx.fingerprints.fresh_with(etl.as_ref(), &lake_version, resync) {
        return Ok(Action::requeue(left));
    }
    ctx.fingerprints.forget(etl.as_ref());
    // Status is this reconciler's memory (the deployed package version, what was attached):
    // read it from the API server, not from a cache that may miss the last write, or a
    // package could be deployed twice.
    let api: kube::Api<EtlFunction> = kube::Api::namespaced(ctx.client.clone(), &ns);
    let etl = match api.get_opt(&etl.name_any()).await? {
        Some(fresh) => Arc::new(fresh),
        None => return Ok(Action::await_change()),
    };
    let siblings = ctx.stores.functions.state();
    let outcome = plan_outcome(&etl, lake.as_deref(), siblings.iter().map(AsRef::as_ref));
    let mut next = etl.status.clone().unwrap_or_default();
    let (Outcome::Progressing { .. }, Some(lake)) = (&outcome, lake) else {
        status::apply(&ctx, etl.as_ref(), next, &outcome).await?;
        return Ok(Action::requeue(resync));
    };
    let (outcome, requeue) = match converge(&etl, &lake, &ctx, &mut next).await {
        Ok(report) => {
            if !report.drift.is_empty() {
                super::drift_event(&ctx, etl.as_ref(), &report.drift).await;
            }
            if report.applied > 0 {
                tracing::info!(changes = report.applied, "converged");
            }
            (Outcome::Ready { message: "the function, its role, log group and trigger match the spec".into() }, resync)
        }
        Err(Stop::NotOwned(message)) => (Outcome::Stalled { reason: reason::NOT_OWNED, message }, resync),
        Err(Stop::Kube(e)) => return Err(e),
        Err(Stop::Aws(e)) => aws_outcome(&e, resync, || ctx.backoff.next(etl.as_ref())),
    };
    status::apply(&ctx, etl.as_ref(), next, &outcome).await?;
    if matches!(outcome, Outcome::Ready { .. }) {
        ctx.fingerprints.remember_with(etl.as_ref(), &lake_version);
    }
    Ok(Action::requeue(requeue))
}

/// The outcome from the spec, the referenced lake and the other functions, before any
/// AWS call. Pure. A trigger overlapping an *older* function's is refused; the older one
/// keeps working (a new manifest must not break a running pipeline).
pub fn plan_outcome<'a>(
    etl: &EtlFunction,
    lake: Option<&DataLake>,
    siblings: impl IntoIterator<Item = &'a EtlFunction>,
) -> Outcome {
    let mut findings = etl.validate();
    let older = siblings.into_iter().filter(|other| created_before(other, etl));
    findings.extend(check_trigger_overlaps(etl, older));
    if let Some(lake) = lake {
        findings.extend(check_function_against_lake(etl, lake));
    }
    if let Some(message) = findings.error_summary() {
        return Outcome::Stalled { reason: reason::INVALID_SPEC, message };
    }
    let lake_name = &etl.spec.data_lake_ref.name;
    let ready =
        lake.is_some_and(|l| super::lake_is_ready(l) && l.status.as_ref().is_some_and(|s| s.kms_key_arn.is_some()));
    match (lake, ready) {
        (None, _) => Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} does not exist in this namespace"),
        },
        (Some(_), false) => Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} is not Ready yet"),
        },
        (Some(_), true) => {
            Outcome::Progressing { reason: reason::PROGRESSING, message: "converging the function".into() }
        }
    }
}

/// Creation order (timestamps have one-second resolution), then a function that already
/// runs before one that does not, then name: a total order every reconcile agrees on.
fn created_before(a: &EtlFunction, b: &EtlFunction) -> bool {
    let key = |f: &EtlFunction| {
        let running = f.status.as_ref().is_some_and(|s| s.function_arn.is_some());
        (f.metadata.creation_timestamp.as_ref().map(|t| t.0), !running, f.name_any())
    };
    match (key(a), key(b)) {
        // Without timestamps (files under review) every other function counts.
        ((None, ..), _) | (_, (None, ..)) => a.name_any() != b.name_any(),
        (ka, kb) => ka < kb,
    }
}

fn check_owned(etl: &EtlFunction, what: &str, tags: &BTreeMap<String, String>) -> std::result::Result<(), Stop> {
    super::check_owned(etl, &super::owner_tags(etl), what, tags).map_err(Stop::NotOwned)
}

/// Reads everything the function consists of, concurrently; nothing is written. The code
/// signing config is read only when `check_signing` (the spec names one, or lakeops attached
/// one before): it costs a request on Lambda's small control-plane budget.
pub(crate) async fn observe(
    aws: &Regional,
    iam: &dyn IamApi,
    d: &Desired,
    check_signing: bool,
) -> AwsResult<(Observed, Option<String>)> {
    let role = async {
        match iam.get_role(&d.role.name).await? {
            Some(info) => {
                let policy = iam.get_role_policy(&d.role.name, ROLE_POLICY_NAME).await?;
                Ok(Some(ObservedRole { info, policy }))
            }
            None => Ok(None),
        }
    };
    let function = async {
        let Some(f) = aws.lambda.get_function(&d.function.name).await? else { return Ok((None, None, None)) };
        let signing = async {
            if check_signing { aws.lambda.get_code_signing_config(&d.function.name).await.map(Some) } else { Ok(None) }
        };
        let (policy, signing) = futures::try_join!(aws.lambda.get_policy(&d.function.name), signing)?;
        Ok::<_, AwsError>((Some(f), policy, signing))
    };
    let artifact = async {
        match &d.function.code.version {
            Some(pinned) => Ok(Some(pinned.clone())),
            None => {
                let head = aws.s3.head_object(&d.function.code.bucket, &d.function.code.key).await?;
                Ok(desired::artifact_version(None, head.as_ref()))
            }
        }
    };
    let (role, log_group, (function, permission_policy, code_signing), notifications, artifact) = futures::try_join!(
        role,
        aws.logs.describe_log_group(&d.log_group.name),
        function,
        notifications(aws, &d.trigger.bucket),
        artifact,
    )?;
    Ok((Observed { role, log_group, function, code_signing, permission_policy, notifications }, artifact))
}

/// The source bucket's notifications; a bucket that does not exist yet (a plan before its
/// lake) has none.
async fn notifications(aws: &Regional, bucket: &str) -> AwsResult<crate::aws::s3::Notifications> {
    match aws.s3.get_notifications(bucket).await {
        Err(e) if e.is_not_found() => Ok(Default::default()),
        other => other,
    }
}

async fn converge(
    etl: &EtlFunction,
    lake: &DataLake,
    ctx: &Context,
    next: &mut EtlFunctionStatus,
) -> std::result::Result<Report, Stop> {
    let aws = ctx.aws.region(&lake.spec.region);
    let iam = ctx.aws.iam();
    let account = ctx.aws.account_id().await?;
    let key_arn = lake.status.as_ref().and_then(|s| s.kms_key_arn.clone()).unwrap_or_default();
    let facts = Facts {
        lake,
        account_id: &account,
        key_arn: &key_arn,
        permissions_boundary: ctx.config.permissions_boundary.as_deref(),
    };
    let d = desired::desired(etl, facts);
    let check_signing = d.function.code_signing_config_arn.is_some() || next.code_signing_config_arn.is_some();
    let (observed, artifact) = observe(&aws, iam.as_ref(), &d, check_signing).await?;
    let Some(artifact) = artifact else {
        let code = &d.function.code;
        return Err(Stop::Aws(AwsError::classify(
            "s3",
            "HeadObject",
            format!("{}/{}", code.bucket, code.key),
            Some("NoSuchKey"),
            Some("spec.code: the deployment package does not exist (or is not readable by the controller)"),
            Some(404),
        )));
    };

    // Everything that exists is checked for ownership before anything is written.
    if let Some(r) = &observed.role {
        check_owned(etl, &format!("IAM role {}", d.role.name), &r.info.tags)?;
    }
    if let Some(f) = &observed.function {
        check_owned(etl, &format!("Lambda function {}", d.function.name), &f.tags)?;
    }
    if let Some(g) = &observed.log_group
        && next.log_group.is_none()
    {
        let tags = aws.logs.list_tags(&g.arn).await?;
        check_owned(etl, &format!("log group {}", g.name), &tags)?;
        // Adopted (or created before tagging): tag it now, so that clean-up recognises it.
        if !is_owned_by(etl, &tags) {
            aws.logs.tag(&g.arn, &d.log_group.tags).await?;
        }
    }

    // A function cannot follow its lake to another region: the old one would be orphaned.
    if let Some(recorded) = next.function_arn.as_deref().and_then(region_of)
        && recorded != lake.spec.region
    {
        return Err(Stop::NotOwned(format!(
            "spec.dataLakeRef: the function runs in {recorded} and DataLake {:?} is in {}; moving a function between regions is not supported: delete this EtlFunction and create it again",
            lake.name_any(),
            lake.spec.region
        )));
    }
    // The source bucket changed (another zone or lake): our entry leaves the old bucket
    // first, or it would fire forever and block overlapping triggers there.
    if let Some(old) = next.trigger_bucket.clone().filter(|b| *b != d.trigger.bucket) {
        remove_trigger(ctx, &aws, &old, &d.trigger.entry.id).await?;
    }
    // What will exist is recorded before the first write, so that clean-up finds it even
    // when this round fails (or the process dies) half-way.
    let names = (Some(d.function.arn.clone()), Some(d.role.arn.clone()), Some(d.trigger.bucket.clone()));
    if (next.function_arn.clone(), next.role_arn.clone(), next.trigger_bucket.clone()) != names {
        (next.function_arn, next.role_arn, next.trigger_bucket) = names;
        // An existing group passed the ownership check above.
        next.log_group = Some(d.log_group.name.clone());
        status::record_progress(ctx, etl, next).await.map_err(Stop::Kube)?;
    }

    let mut report = Report::default();
    let record = |report: &mut Report, change: &Change, existed: bool, what: &str| {
        report.applied += 1;
        if existed {
            report.drift.push(format!("{what}: {}", change.setting()));
        }
    };
    for change in diff::role_changes(&d.role, observed.role.as_ref()) {
        apply_role_change(iam.as_ref(), &change).await?;
        record(&mut report, &change, observed.role.is_some(), &format!("role {}", d.role.name));
    }
    for change in diff::log_group_changes(&d.log_group, observed.log_group.as_ref()) {
        apply_log_change(&aws, &change).await?;
        record(&mut report, &change, observed.log_group.is_some(), &format!("log group {}", d.log_group.name));
    }
    next.log_group = Some(d.log_group.name.clone());

    let deployed = next.deployed_code_version.clone();
    let changes = diff::function_changes(
        &d.function,
        observed.function.as_ref(),
        observed.code_signing.as_ref(),
        deployed.as_deref(),
        Some(&artifact),
    );
    // Lambda refuses an update while the previous one is still being applied.
    let mut must_wait =
        observed.function.as_ref().is_some_and(|f| f.last_update_status.as_deref() == Some("InProgress"));
    for change in changes {
        if must_wait {
            wait_until_updated(aws.lambda.as_ref(), &d.function.name).await?;
        }
        apply_function_change(aws.lambda.as_ref(), &change).await?;
        must_wait = matches!(
            change,
            Change::UpdateConfiguration { .. } | Change::UpdateCode { .. } | Change::CreateFunction(_)
        );
        let existed = observed.function.is_some() && !matches!(change, Change::UpdateCode { .. });
        record(&mut report, &change, existed, &format!("function {}", d.function.name));
    }
    next.deployed_code_version = Some(artifact);
    next.code_signing_config_arn = d.function.code_signing_config_arn.clone();

    for change in diff::trigger_changes(&d, &observed) {
        match &change {
            Change::PutNotifications { bucket, .. } => {
                // Other functions on this bucket write the same document: re-read and merge
                // under the bucket's lock so no writer drops another's entry.
                let _guard = ctx.locks.lock(bucket).await;
                let current = aws.s3.get_notifications(bucket).await?;
                let merged = diff::with_entry(&current, &d.trigger.entry);
                if !diff::same_notifications(&merged, &current) {
                    aws.s3.put_notifications(bucket, &merged).await?;
                    // Bucket configuration is eventually consistent: the next writer must not
                    // read a document without this entry and write it back.
                    wait_until_visible(&aws, bucket, |n| n.entries.contains(&d.trigger.entry)).await?;
                }
            }
            other => apply_function_change(aws.lambda.as_ref(), other).await?,
        }
        record(&mut report, &change, observed.function.is_some(), &format!("function {}", d.function.name));
    }
    Ok(report)
}

/// Removes the entry `id` from `bucket`'s notification document, under the bucket's lock.
/// A bucket that no longer exists took the entry with it.
async fn remove_trigger(ctx: &Context, aws: &Regional, bucket: &str, id: &str) -> AwsResult<()> {
    let _guard = ctx.locks.lock(bucket).await;
    match aws.s3.get_notifications(bucket).await {
        Ok(current) if current.entries.iter().any(|e| e.id == id) => {
            aws.s3.put_notifications(bucket, &diff::without_entry(&current, id)).await?;
            wait_until_visible(aws, bucket, |n| n.entries.iter().all(|e| e.id != id)).await
        }
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads the notification document until `visible` holds (a few tries, half a second apart).
async fn wait_until_visible(
    aws: &Regional,
    bucket: &str,
    visible: impl Fn(&crate::aws::s3::Notifications) -> bool,
) -> AwsResult<()> {
    for _ in 0..10 {
        if visible(&aws.s3.get_notifications(bucket).await?) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tracing::warn!(bucket, "the notification configuration written is not visible yet");
    Ok(())
}

async fn apply_role_change(iam: &dyn IamApi, change: &Change) -> AwsResult<()> {
    match change {
        Change::CreateRole(r) => {
            let trust = r.trust.to_json();
            iam.create_role(&NewRole {
                name: &r.name,
                path: r.path,
                description: "lakeops EtlFunction execution role (generated; edits are reverted)",
                assume_role_policy: &trust,
                permissions_boundary: r.boundary.as_deref(),
                tags: &r.tags,
            })
            .await
            .map(drop)
        }
        Change::UpdateTrust { role, policy } => iam.update_assume_role_policy(role, policy).await,
        Change::SetBoundary { role, boundary } => iam.set_permissions_boundary(role, boundary.as_deref()).await,
        Change::TagRole { role, tags } => iam.tag_role(role, tags).await,
        Change::PutRolePolicy { role, policy } => iam.put_role_policy(role, ROLE_POLICY_NAME, policy).await,
        _ => Ok(()),
    }
}

async fn apply_log_change(aws: &Regional, change: &Change) -> AwsResult<()> {
    match change {
        Change::CreateLogGroup { name, kms_key_arn, tags } => aws.logs.create_log_group(name, kms_key_arn, tags).await,
        Change::PutRetention { name, days } => aws.logs.put_retention(name, *days).await,
        Change::AssociateKey { name, kms_key_arn } => aws.logs.associate_key(name, kms_key_arn).await,
        _ => Ok(()),
    }
}

async fn apply_function_change(lambda: &dyn LambdaApi, change: &Change) -> AwsResult<()> {
    match change {
        Change::CreateFunction(f) => retry_role_propagation(|| lambda.create_function(f)).await.map(drop),
        Change::TagFunction { arn, tags } => lambda.tag(arn, tags).await,
        Change::UpdateConfiguration { name, config, .. } => {
            retry_role_propagation(|| lambda.update_configuration(name, config)).await
        }
        Change::UpdateCode { name, code, architecture } => lambda.update_code(name, code, architecture).await,
        Change::SetConcurrency { name, reserved } => lambda.set_reserved_concurrency(name, *reserved).await,
        Change::SetCodeSigning { name, arn } => lambda.set_code_signing_config(name, arn.as_deref()).await,
        Change::Permission { name, permission, replace } => {
            if *replace {
                lambda.remove_permission(name, &permission.statement_id).await?;
            }
            lambda.add_permission(name, permission).await
        }
        _ => Ok(()),
    }
}

/// True for Lambda's answers to a role (or its policy) that IAM has not propagated yet:
/// "cannot be assumed by Lambda", and for VPC functions "does not have permissions to call
/// CreateNetworkInterface on EC2".
pub fn role_not_yet_assumable(e: &AwsError) -> bool {
    e.code.as_deref() == Some("InvalidParameterValueException")
        && (e.message.contains("cannot be assumed") || e.message.contains("does not have permissions to call"))
}

/// Runs `call`, retrying quickly while Lambda cannot assume a freshly created role yet.
pub async fn retry_role_propagation<T, F, Fut>(mut call: F) -> AwsResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = AwsResult<T>>,
{
    let deadline = tokio::time::Instant::now() + ROLE_PROPAGATION_LIMIT;
    loop {
        match call().await {
            Err(e) if role_not_yet_assumable(&e) && tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "the execution role is not assumable yet; retrying");
                tokio::time::sleep(ROLE_PROPAGATION_STEP).await;
            }
            result => return result,
        }
    }
}

/// Polls GetFunction until the last update is no longer in progress.
async fn wait_until_updated(lambda: &dyn LambdaApi, name: &str) -> AwsResult<()> {
    let deadline = tokio::time::Instant::now() + UPDATE_WAIT_LIMIT;
    loop {
        let status = lambda.get_function(name).await?.and_then(|f| f.last_update_status);
        if status.as_deref() != Some("InProgress") || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The region of a recorded Lambda ARN (`arn:aws:lambda:<region>:...`).
fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// Deletes the role `name` and its inline policies (a role with any cannot be deleted) when
/// its tags say it is ours.
async fn delete_role_if_owned(
    iam: &dyn IamApi,
    name: &str,
    owned: &impl Fn(&BTreeMap<String, String>) -> bool,
) -> AwsResult<()> {
    if let Some(role) = iam.get_role(name).await?
        && owned(&role.tags)
    {
        for policy in iam.list_role_policies(name).await? {
            iam.delete_role_policy(name, &policy).await?;
        }
        iam.delete_role(name).await?;
    }
    Ok(())
}

/// Deletion: the trigger entry, the function (its permission goes with it), the role, and
/// the log group as `deletionPolicy` says. Only what carries this object's tags is touched.
async fn cleanup(etl: Arc<EtlFunction>, ctx: Arc<Context>) -> Result<Action> {
    ctx.fingerprints.forget(etl.as_ref());
    let status = etl.status.clone().unwrap_or_default();
    let iam = ctx.aws.iam();
    let names = desired::names(&etl);
    let owned = |tags: &BTreeMap<String, String>| is_owned_by(etl.as_ref(), tags);
    let Some(region) = status.function_arn.as_deref().and_then(region_of).map(str::to_string) else {
        // Nothing regional was recorded, so nothing regional was created; the role is global
        // and removed if it is ours (it is tagged at creation).
        delete_role_if_owned(iam.as_ref(), &names.role, &owned).await?;
        return Ok(Action::await_change());
    };
    let aws = ctx.aws.region(&region);

    if let Some(bucket) = &status.trigger_bucket {
        remove_trigger(&ctx, &aws, bucket, &names.notification_id).await?;
    }
    if let Some(f) = aws.lambda.get_function(&names.function).await?
        && owned(&f.tags)
    {
        aws.lambda.delete_function(&names.function).await?;
    }
    delete_role_if_owned(iam.as_ref(), &names.role, &owned).await?;
    if let Some(group) = aws.logs.describe_log_group(&names.log_group).await? {
        let tags = aws.logs.list_tags(&group.arn).await?;
        if owned(&tags) {
            match etl.spec.deletion_policy {
                DeletionPolicy::Delete => aws.logs.delete_log_group(&names.log_group).await?,
                DeletionPolicy::Retain => {
                    let retained = BTreeMap::from([(tag::RETAINED.to_string(), "true".to_string())]);
                    aws.logs.tag(&group.arn, &retained).await?;
                }
            }
        }
    }
    tracing::info!(function = %names.function, "removed");
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::error::ErrorKind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn not_assumable() -> AwsError {
        AwsError::classify(
            "lambda",
            "CreateFunction",
            "f",
            Some("InvalidParameterValueException"),
            Some("The role defined for the function cannot be assumed by Lambda."),
            Some(400),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_role_not_yet_assumable_is_retried_every_two_seconds_until_it_works() {
        let calls = AtomicUsize::new(0);
        let start = tokio::time::Instant::now();
        let result = retry_role_propagation(|| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 { Err(not_assumable()) } else { Ok("arn") }
        })
        .await;
        assert_eq!(result, Ok("arn"));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(tokio::time::Instant::now() - start, Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_gives_up_after_two_minutes_and_other_errors_are_not_retried() {
        let calls = AtomicUsize::new(0);
        let err = retry_role_propagation(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(not_assumable())
        })
        .await
        .expect_err("gives up");
        assert!(role_not_yet_assumable(&err));
        assert_eq!(calls.load(Ordering::SeqCst), 61, "one call, then one every 2 s for 120 s");

        let other = AwsError::classify(
            "lambda",
            "CreateFunction",
            "f",
            Some("InvalidParameterValueException"),
            Some("bad handler"),
            Some(400),
        );
        let calls = AtomicUsize::new(0);
        let err = retry_role_propagation(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(other.clone())
        })
        .await
        .expect_err("fails");
        assert_eq!((err.kind, calls.load(Ordering::SeqCst)), (ErrorKind::Invalid, 1));
    }

    #[test]
    fn the_region_comes_from_the_recorded_function_arn() {
        assert_eq!(region_of("arn:aws:lambda:eu-west-1:123456789012:function:f"), Some("eu-west-1"));
        assert_eq!(region_of("garbage"), None);
    }

    fn function(name: &str, created: Option<&str>, prefix: &str) -> EtlFunction {
        let mut f: EtlFunction = serde_saphyr::from_str(desired::tests::ETL).expect("etl");
        f.metadata.name = Some(name.into());
        f.metadata.creation_timestamp =
            created.map(|t| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t.parse().expect("timestamp")));
        f.spec.source.prefix = prefix.into();
        f
    }

    #[test]
    fn within_the_same_second_the_running_function_wins_whatever_the_names() {
        let mut running = function("zeta", Some("2026-01-01T00:00:00Z"), "incoming/");
        running.status = Some(EtlFunctionStatus { function_arn: Some("arn:f".into()), ..Default::default() });
        let newcomer = function("alpha", Some("2026-01-01T00:00:00Z"), "incoming/orders/");
        assert!(created_before(&running, &newcomer));
        assert!(!created_before(&newcomer, &running));
    }

    #[test]
    fn an_overlapping_newcomer_is_refused_and_the_older_function_keeps_working() {
        let old = function("old", Some("2026-01-01T00:00:00Z"), "incoming/");
        let new = function("new", Some("2026-06-01T00:00:00Z"), "incoming/orders/");
        let lake: DataLake = serde_saphyr::from_str(desired::tests::LAKE).expect("lake");
        let all = [old.clone(), new.clone()];

        let refused = plan_outcome(&new, Some(&lake), all.iter());
        let kept = plan_outcome(&old, Some(&lake), all.iter());

        assert!(
            matches!(&refused, Outcome::Stalled { reason: r, message } if *r == reason::INVALID_SPEC && message.contains("overlaps EtlFunction \"old\"")),
            "{refused:?}"
        );
        assert_eq!(kept.reason(), reason::DATA_LAKE_NOT_READY, "the lake fixture has no status: waiting, not refused");
    }
}
