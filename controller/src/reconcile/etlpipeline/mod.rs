//! EtlPipeline reconciler: once the lake is Ready and every step's EtlFunction exists,
//! converge the state machine (role, log group, machine) and its trigger; on deletion
//! remove the rule, the machine and the roles, and the log group as `deletionPolicy` says.
pub mod desired;
pub mod diff;
pub mod plan;
pub mod steps;

use std::sync::Arc;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use lakeops_crds::names::reason;
use lakeops_crds::references::{check_pipeline_against_lake, check_pipeline_trigger_overlaps};
use lakeops_crds::{DataLake, EtlFunction, EtlPipeline, EtlPipelineStatus};

use crate::conditions::Outcome;
use crate::context::Context;
use crate::engine::exec::StatusProgress;
use crate::engine::{Exec, NoProgress, Report, Stop, log_group};
use crate::error::Result;
use crate::reconcile::securitybaseline::publish;
use crate::status;

/// Reconciles one EtlPipeline: the finalizer guards clean-up, then apply or clean up.
pub async fn reconcile(p: Arc<EtlPipeline>, ctx: Arc<Context>) -> Result<Action> {
    super::with_finalizer(p, ctx, apply_pipeline, |p, ctx| {
        let message = deletion_message(&p);
        publish::after_cleanup(p, ctx, message, cleanup)
    })
    .await
}

/// The alert sent once the pipeline's clean-up finished: the state machine and role lakeops
/// deleted, and the log group's fate (`deletionPolicy`).
fn deletion_message(p: &EtlPipeline) -> Option<publish::Message> {
    let status = p.status.as_ref()?;
    let region = status.state_machine_arn.as_deref()?.split(':').nth(3)?;
    let mut m = publish::Message::about(p, "ObjectDeleted", region);
    m.resources.extend(status.state_machine_arn.iter().chain(&status.role_arn).cloned());
    m.deletion_policy = Some(format!("{:?}", p.spec.deletion_policy));
    Some(m)
}

async fn apply_pipeline(p: Arc<EtlPipeline>, ctx: Arc<Context>) -> Result<Action> {
    let resync = super::resync_interval(p.as_ref(), ctx.config.resync_interval);
    let ns = p.namespace().unwrap_or_default();
    let lake = super::current_lake(&ctx, &ns, &p.spec.data_lake_ref.name).await?;
    let lake_version = lake.as_ref().and_then(|l| l.resource_version()).unwrap_or_default();
    if let Some(left) = ctx.fingerprints.fresh_with(p.as_ref(), &lake_version, resync) {
        return Ok(Action::requeue(left));
    }
    ctx.fingerprints.forget(p.as_ref());
    let functions = ctx.stores.functions.state();
    let outcome = plan_outcome(&p, lake.as_deref(), functions.iter().map(AsRef::as_ref));
    let mut next = p.status.clone().unwrap_or_default();
    let (Outcome::Progressing { .. }, Some(lake)) = (&outcome, lake) else {
        status::apply(&ctx, p.as_ref(), next, &outcome).await?;
        return Ok(Action::requeue(resync));
    };
    let (outcome, requeue) = match converge(&p, &lake, &ctx, &mut next).await {
        Ok(report) => {
            if !report.drift.is_empty() {
                super::drift_event(&ctx, p.as_ref(), &report.drift).await;
            }
            if report.applied > 0 {
                tracing::info!(changes = report.applied, "converged");
            }
            (Outcome::Ready { message: "the state machine, its role, logs and trigger match the spec".into() }, resync)
        }
        Err(stop) => stop.outcome(resync, || ctx.backoff.next(p.as_ref()))?,
    };
    status::apply(&ctx, p.as_ref(), next, &outcome).await?;
    if crate::engine::remembers(&outcome) {
        ctx.fingerprints.remember_with(p.as_ref(), &lake_version);
    }
    Ok(Action::requeue(requeue))
}

/// The outcome from the spec, the lake and the functions, before any AWS call. Pure.
pub fn plan_outcome<'a>(
    p: &EtlPipeline,
    lake: Option<&DataLake>,
    functions: impl IntoIterator<Item = &'a EtlFunction> + Clone,
) -> Outcome {
    let mut findings = p.validate();
    findings.extend(check_pipeline_trigger_overlaps(p, functions.clone()));
    if let Some(lake) = lake {
        findings.extend(check_pipeline_against_lake(p, lake, functions));
    }
    if let Some(message) = findings.error_summary() {
        return Outcome::Stalled { reason: reason::INVALID_SPEC, message };
    }
    super::lake_readiness(lake, &p.spec.data_lake_ref.name, "the pipeline")
}

async fn converge(
    p: &EtlPipeline,
    lake: &DataLake,
    ctx: &Context,
    next: &mut EtlPipelineStatus,
) -> std::result::Result<Report, Stop> {
    let aws = ctx.aws.region(&lake.spec.region);
    let iam = ctx.aws.iam();
    let account = ctx.aws.account_id().await?;
    let key_arn = lake.status.as_ref().and_then(|s| s.kms_key_arn.clone()).unwrap_or_default();
    let input = steps::Inputs {
        pipeline: p,
        lake,
        account: &account,
        key_arn: &key_arn,
        boundary: ctx.config.permissions_boundary.as_deref(),
        locks: &ctx.locks,
    };
    let progress = StatusProgress { ctx, obj: p };
    let exec = Exec::apply(p, &progress);
    steps::converge(&aws, iam.as_ref(), &input, &exec, next).await?;
    Ok(exec.finish().0)
}

/// Deletion: the rule and its role, the state machine, its role, and the log group as
/// `deletionPolicy` says. Only what carries this object's tags is touched. The bucket's
/// EventBridge delivery stays on: other consumers may rely on it, and it holds no data.
async fn cleanup(p: Arc<EtlPipeline>, ctx: Arc<Context>) -> Result<Action> {
    ctx.fingerprints.forget(p.as_ref());
    let status = p.status.clone().unwrap_or_default();
    let iam = ctx.aws.iam();
    let names = desired::names(&p);
    let exec: Exec<'_, EtlPipelineStatus> = Exec::apply(p.as_ref(), &NoProgress);
    let region = status.state_machine_arn.as_deref().and_then(|a| a.split(':').nth(3)).map(str::to_string);
    let result = async {
        if let Some(region) = &region {
            let aws = ctx.aws.region(region);
            if let Some(rule) = &status.rule {
                steps::remove_rule(&aws, iam.as_ref(), &ctx.locks, &exec, rule, &names.events_role).await?;
            }
            if let Some(arn) = &status.state_machine_arn
                && aws.stepfunctions.describe_state_machine(arn).await?.is_some()
                && exec.is_ours(&aws.stepfunctions.list_tags(arn).await?)
            {
                aws.stepfunctions.delete_state_machine(arn).await?;
            }
            log_group::retire(aws.logs.as_ref(), &names.log_group, p.spec.deletion_policy, |t| exec.is_ours(t)).await?;
        }
        crate::engine::role::delete(&exec, iam.as_ref(), &names.events_role, |t| exec.is_ours(t)).await?;
        crate::engine::role::delete(&exec, iam.as_ref(), &names.role, |t| exec.is_ours(t)).await
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!(state_machine = %names.state_machine, "removed");
            Ok(Action::await_change())
        }
        Err(Stop::Aws(e)) => Err(e.into()),
        Err(Stop::Kube(e)) => Err(e),
        Err(Stop::Stalled(_, m) | Stop::Waiting(m)) => Err(crate::error::Error::DeletionBlocked(m)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::aws::fake::FakeAws;
    use crate::engine::Plan;
    use crate::reconcile::KeyedLocks;

    const REGION: &str = "eu-west-1";
    const ACCOUNT: &str = "123456789012";
    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/k1";

    fn fixtures() -> (EtlPipeline, DataLake) {
        let p: EtlPipeline = serde_saphyr::from_str(desired::tests::PIPELINE).expect("pipeline");
        let lake: DataLake = serde_saphyr::from_str(desired::tests::LAKE).expect("lake");
        (p, lake)
    }

    fn with_bucket(aws: &FakeAws) {
        aws.with_bucket(REGION, "team-a-sales-raw", false, &BTreeMap::new());
    }

    #[test]
    fn the_deletion_alert_names_what_was_deleted_and_only_after_a_round_recorded_it() {
        let (mut p, _) = fixtures();
        assert_eq!(deletion_message(&p), None, "nothing was created");
        let machine = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:lakeops-team-a-orders");
        p.status = Some(EtlPipelineStatus {
            state_machine_arn: Some(machine.clone()),
            role_arn: Some(format!("arn:aws:iam::{ACCOUNT}:role/lakeops/lakeops-team-a-orders-sfn")),
            ..Default::default()
        });
        let m = deletion_message(&p).expect("a message");
        assert_eq!((m.event, m.kind.as_str(), m.region.as_str()), ("ObjectDeleted", "EtlPipeline", REGION));
        assert_eq!(m.resources[0], machine);
        assert_eq!(m.resources.len(), 2);
        assert_eq!(m.deletion_policy.as_deref(), Some("Retain"));
    }

    async fn round(
        aws: &Arc<FakeAws>,
        p: &EtlPipeline,
        lake: &DataLake,
        status: &mut EtlPipelineStatus,
    ) -> std::result::Result<(Report, Plan), Stop> {
        let locks = KeyedLocks::default();
        let input = steps::Inputs { pipeline: p, lake, account: ACCOUNT, key_arn: KEY, boundary: None, locks: &locks };
        let exec = Exec::apply(p, &NoProgress);
        let region = aws.region(REGION);
        let result = steps::converge(&region, aws.iam().as_ref(), &input, &exec, status).await;
        let (report, plan) = exec.finish();
        result.map(|()| (report, plan))
    }

    async fn plan_of(aws: &Arc<FakeAws>, p: &EtlPipeline, lake: &DataLake) -> Plan {
        plan::plan(p, lake, &aws.region(REGION), aws.iam().as_ref(), ACCOUNT, KEY).await.expect("reads succeed")
    }

    fn writes(aws: &FakeAws) -> Vec<String> {
        aws.writes().iter().map(|c| c.operation.to_string()).collect()
    }

    #[tokio::test]
    async fn a_new_pipeline_converges_as_planned_and_a_second_round_writes_nothing() {
        let (p, lake) = fixtures();
        let aws = FakeAws::new(ACCOUNT);
        with_bucket(&aws);
        let planned = plan_of(&aws.fork(), &p, &lake).await;
        assert!(planned.blockers.is_empty(), "{planned:?}");
        let mut status = EtlPipelineStatus::default();
        let (_, applied) = round(&aws, &p, &lake, &mut status).await.expect("converges");
        let shape = |p: &Plan| p.changes.iter().map(|c| (c.action, c.setting.clone())).collect::<Vec<_>>();
        assert_eq!(shape(&planned), shape(&applied), "plan == apply");

        let machines = aws.state_machines();
        let machine = machines.values().next().expect("one machine");
        assert_eq!(machines.len(), 1);
        assert_eq!(machine.info.settings.kms_key_id.as_deref(), Some(KEY));
        assert!(machine.info.settings.tracing);
        let rules = aws.event_rules(REGION);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].targets.len(), 1);
        assert!(aws.bucket("team-a-sales-raw").expect("bucket").notifications.event_bridge);
        assert_eq!(status.rule.as_deref(), Some("lakeops-team-a-orders"));

        aws.reset_calls();
        let (report, applied) = round(&aws, &p, &lake, &mut status).await.expect("steady");
        assert_eq!((report.applied, applied.changes.len()), (0, 0));
        assert!(writes(&aws).is_empty(), "{:?}", writes(&aws));
        let reads: Vec<String> = aws.calls().iter().map(|c| c.operation.to_string()).collect();
        assert_eq!(reads.len(), 8, "{reads:?}");
        assert!(plan_of(&aws, &p, &lake).await.changes.is_empty());
    }

    /// `lakeops plan` on a pull request that adds the lake and the pipeline together: the
    /// zone bucket does not exist yet, so it has no notifications to merge into.
    #[tokio::test]
    async fn a_pipeline_is_planned_before_its_lake_bucket_exists() {
        let (p, lake) = fixtures();
        let aws = FakeAws::new(ACCOUNT);
        let planned = plan_of(&aws, &p, &lake).await;
        assert!(planned.blockers.is_empty(), "{planned:?}");
        assert!(
            planned.changes.iter().any(|c| c.description.contains("team-a-sales-raw")),
            "the bucket's EventBridge delivery is planned: {planned:?}"
        );
        assert!(aws.writes().is_empty());
    }

    #[tokio::test]
    async fn a_step_added_is_one_update_state_machine_and_drift_is_corrected_in_one_update() {
        let (mut p, lake) = fixtures();
        let aws = FakeAws::new(ACCOUNT);
        with_bucket(&aws);
        let mut status = EtlPipelineStatus::default();
        round(&aws, &p, &lake, &mut status).await.expect("converges");
        let mut extra = p.spec.steps[1].clone();
        extra.name = "load".into();
        extra.etl_function_ref.name = "orders-load".into();
        p.spec.steps.push(extra);
        aws.reset_calls();
        round(&aws, &p, &lake, &mut status).await.expect("converges");
        // The role may now invoke the new function too; the machine takes one update.
        assert_eq!(writes(&aws), ["PutRolePolicy", "UpdateStateMachine"]);

        let arn = status.state_machine_arn.clone().expect("recorded");
        aws.edit(|r| {
            let m = r.state_machines.get_mut(&arn).expect("machine");
            m.info.settings.role_arn = "arn:aws:iam::123456789012:role/someone-else".into();
            m.info.settings.tracing = false;
        });
        aws.reset_calls();
        let (report, _) = round(&aws, &p, &lake, &mut status).await.expect("converges");
        assert_eq!(writes(&aws), ["UpdateStateMachine"]);
        assert_eq!(report.drift, ["state machine lakeops-team-a-orders: role"]);
    }

    #[tokio::test]
    async fn a_machine_someone_else_owns_is_not_touched() {
        let (p, lake) = fixtures();
        let aws = FakeAws::new(ACCOUNT);
        with_bucket(&aws);
        let d = desired::desired(
            &p,
            desired::Facts { lake: &lake, account_id: ACCOUNT, key_arn: KEY, permissions_boundary: None },
        );
        let sfn = aws.region(REGION).stepfunctions;
        let theirs = BTreeMap::from([("team".to_string(), "other".to_string())]);
        sfn.create_state_machine(&d.names.state_machine, &d.settings, &theirs).await.expect("theirs");
        aws.reset_calls();
        let mut status = EtlPipelineStatus::default();
        let err = round(&aws, &p, &lake, &mut status).await.expect_err("not ours");
        assert!(matches!(err, Stop::Stalled(r, _) if r == reason::NOT_OWNED));
        assert!(writes(&aws).is_empty(), "{:?}", writes(&aws));
    }

    #[tokio::test]
    async fn a_create_whose_answer_was_lost_leaves_one_machine() {
        let (p, lake) = fixtures();
        let aws = FakeAws::new(ACCOUNT);
        with_bucket(&aws);
        aws.drop_response_on(|_, op| op == "CreateStateMachine");
        let mut status = EtlPipelineStatus::default();
        assert!(round(&aws, &p, &lake, &mut status).await.is_err());
        aws.clear_faults();
        round(&aws, &p, &lake, &mut status).await.expect("converges");
        assert_eq!(aws.state_machines().len(), 1);
        assert_eq!(writes(&aws).iter().filter(|o| *o == "CreateStateMachine").count(), 1);
    }

    #[tokio::test]
    async fn a_pipeline_crashed_after_any_call_converges_without_a_second_resource() {
        let (p, lake) = fixtures();
        let total = {
            let aws = FakeAws::new(ACCOUNT);
            with_bucket(&aws);
            round(&aws, &p, &lake, &mut EtlPipelineStatus::default()).await.expect("converges");
            aws.calls().len()
        };
        for n in 0..total {
            let aws = FakeAws::new(ACCOUNT);
            with_bucket(&aws);
            // Status survives the crash as far as it was recorded (here: all of it).
            let mut status = EtlPipelineStatus::default();
            aws.crash_after(n);
            let _ = round(&aws, &p, &lake, &mut status).await;
            aws.clear_faults();
            round(&aws, &p, &lake, &mut status).await.unwrap_or_else(|e| panic!("after a crash at call {n}: {e:?}"));
            aws.reset_calls();
            round(&aws, &p, &lake, &mut status).await.expect("steady");
            assert!(writes(&aws).is_empty(), "crash at {n}: a third round wrote {:?}", writes(&aws));
            let snapshot = aws.snapshot();
            assert_eq!(snapshot.state_machines.len(), 1, "crash at {n}");
            assert_eq!(snapshot.event_rules.len(), 1, "crash at {n}");
            assert_eq!(snapshot.roles.len(), 2, "crash at {n}");
            assert_eq!(snapshot.log_groups.len(), 1, "crash at {n}");
        }
    }

    #[tokio::test]
    async fn removing_the_trigger_removes_its_rule() {
        let (mut p, lake) = fixtures();
        let aws = FakeAws::new(ACCOUNT);
        with_bucket(&aws);
        let mut status = EtlPipelineStatus::default();
        round(&aws, &p, &lake, &mut status).await.expect("converges");
        p.spec.trigger = Default::default();
        round(&aws, &p, &lake, &mut status).await.expect("converges");
        assert!(aws.event_rules(REGION).is_empty());
        assert_eq!(status.rule, None);
    }
}
