//! EtlFunction reconciler: once the referenced lake is Ready, converge the execution role,
//! the log group, the function and its S3 trigger, in that order; on deletion remove the
//! trigger, the function and the role, and the log group as `deletionPolicy` says.
pub mod apply;
mod cleanup;
pub mod desired;
pub mod diff;
pub mod findings;
pub mod observe;
pub mod plan;
pub mod steps;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use lakeops_crds::names::reason;
use lakeops_crds::references::{check_function_against_lake, check_trigger_overlaps};
use lakeops_crds::{DataLake, EtlFunction, EtlFunctionStatus};

use self::cleanup::cleanup;
use crate::aws::clients::Regional;
use crate::aws::error::{AwsError, AwsResult};
use crate::conditions::Outcome;
use crate::context::Context;
use crate::engine::exec::StatusProgress;
use crate::engine::{Exec, Report, Stop};
use crate::error::Result;
use crate::reconcile::securitybaseline::publish;
use crate::status;

use super::KeyedLocks;

/// How long to wait for a previous update of a function to finish before the next one.
pub(crate) const UPDATE_WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Reconciles one EtlFunction: the finalizer guards clean-up, then apply or clean up.
pub async fn reconcile(etl: Arc<EtlFunction>, ctx: Arc<Context>) -> Result<Action> {
    super::with_finalizer(etl, ctx, apply_function, |etl, ctx| {
        let message = deletion_message(&etl);
        publish::after_cleanup(etl, ctx, message, cleanup)
    })
    .await
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
        Ok((report, deployed)) => {
            if !report.drift.is_empty() {
                super::drift_event(&ctx, etl.as_ref(), &report.drift).await;
            }
            if report.applied > 0 {
                tracing::info!(changes = report.applied, "converged");
            }
            if deployed {
                let mut m = publish::Message::about(etl.as_ref(), "FunctionCodeDeployed", &lake.spec.region);
                m.resources.extend(next.function_arn.clone());
                m.code_version = next.deployed_code_version.clone();
                publish::publish(&ctx, publish::Topic::Deployments, &m).await;
            }
            let vulnerable = etl
                .spec
                .maximum_finding_severity
                .and_then(|max| next.findings.as_ref().and_then(|f| findings::violation(f, max)));
            match vulnerable {
                Some(message) => (Outcome::Stalled { reason: reason::VULNERABLE_CODE, message }, resync),
                None => (
                    Outcome::Ready { message: "the function, its role, log group and trigger match the spec".into() },
                    resync,
                ),
            }
        }
        Err(stop) => stop.outcome(resync, || ctx.backoff.next(etl.as_ref()))?,
    };
    status::apply(&ctx, etl.as_ref(), next, &outcome).await?;
    if crate::engine::remembers(&outcome) {
        ctx.fingerprints.remember_with(etl.as_ref(), &lake_version);
    }
    Ok(Action::requeue(requeue))
}

/// The alert sent once the function's clean-up finished: what lakeops deleted (the function
/// and its role, when they were ours) and the log group's fate.
fn deletion_message(etl: &EtlFunction) -> Option<publish::Message> {
    let status = etl.status.as_ref()?;
    let region = status.function_arn.as_deref().and_then(region_of)?;
    let mut m = publish::Message::about(etl, "ObjectDeleted", region);
    m.resources.extend(status.function_arn.iter().chain(&status.role_arn).cloned());
    m.deletion_policy = Some(format!("{:?}", etl.spec.deletion_policy));
    Some(m)
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
    super::lake_readiness(lake, &etl.spec.data_lake_ref.name, "the function")
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

async fn converge(
    etl: &EtlFunction,
    lake: &DataLake,
    ctx: &Context,
    next: &mut EtlFunctionStatus,
) -> std::result::Result<(Report, bool), Stop> {
    let aws = ctx.aws.region(&lake.spec.region);
    let iam = ctx.aws.iam();
    let account = ctx.aws.account_id().await?;
    let key_arn = lake.status.as_ref().and_then(|s| s.kms_key_arn.clone()).unwrap_or_default();
    let input = steps::Inputs {
        etl,
        lake,
        account: &account,
        key_arn: &key_arn,
        boundary: ctx.config.permissions_boundary.as_deref(),
        locks: &ctx.locks,
    };
    let progress = StatusProgress { ctx, obj: etl };
    let exec = Exec::apply(etl, &progress);
    steps::converge(&aws, iam.as_ref(), &input, &exec, next).await?;
    let (report, sent) = exec.finish();
    // New code reached the function: created with it, or its code updated.
    // (The settings of `Change::UpdateCode` and `Change::CreateFunction`.)
    let deployed = sent
        .changes
        .iter()
        .any(|c| c.setting == "code" || (c.setting == "function" && c.action == crate::engine::Action::Create));
    // Inspector's findings at the resync cadence: one read. Informational unless the spec
    // sets a maximum; a failed read keeps the last counts and never fails the round.
    if let Some(arn) = next.function_arn.clone() {
        match findings::read(aws.inspector.as_ref(), &arn).await {
            Ok(found) => next.findings = Some(found),
            Err(e) => tracing::warn!(error = %e, function = %arn, "Inspector findings not read"),
        }
    }
    Ok((report, deployed))
}

/// Removes the entry `id` from `bucket`'s notification document, under the bucket's lock.
/// A bucket that no longer exists took the entry with it.
pub(crate) async fn remove_trigger(locks: &KeyedLocks, aws: &Regional, bucket: &str, id: &str) -> AwsResult<()> {
    let _guard = locks.lock(bucket).await;
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
pub(crate) async fn wait_until_visible(
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

/// True for Lambda's answers to a role (or its policy) that IAM has not propagated yet:
/// "cannot be assumed by Lambda", and for VPC functions "does not have permissions to call
/// CreateNetworkInterface on EC2".
pub fn role_not_yet_assumable(e: &AwsError) -> bool {
    e.code.as_deref() == Some("InvalidParameterValueException")
        && (e.message.contains("cannot be assumed") || e.message.contains("does not have permissions to call"))
}

/// Runs `call`, retrying quickly while Lambda cannot assume a freshly created role yet.
pub async fn retry_role_propagation<T, F, Fut>(call: F) -> AwsResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = AwsResult<T>>,
{
    crate::engine::role::retry_while_propagating(role_not_yet_assumable, call).await
}

/// The region of a recorded Lambda ARN (`arn:aws:lambda:<region>:...`).
pub(crate) fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
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
