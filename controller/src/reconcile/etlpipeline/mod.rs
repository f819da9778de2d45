//! EtlPipeline reconciler: once the lake is Ready and every step's EtlFunction exists,
//! converge the state machine (role, log group, machine) and its trigger; on deletion
//! remove the rule, the machine and the roles, and the log group as `deletionPolicy` says.
pub mod desired;
pub mod diff;
pub mod ingest;
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
            let mut status = status.clone();
            steps::remove_api(&aws, iam.as_ref(), &exec, &mut status, &names, p.spec.deletion_policy).await?;
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
    use crate::aws::fake::{FakeAws, Resources};
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

    /// Crashes a first round after each call in turn, then checks a second round converges,
    /// a third writes nothing, and `check` holds on what exists (`n`: the crash point).
    async fn crash_after_every_call(p: &EtlPipeline, lake: &DataLake, check: impl Fn(&Resources, usize)) {
        let total = {
            let aws = FakeAws::new(ACCOUNT);
            with_bucket(&aws);
            recorded_round(&aws, p, lake, &mut EtlPipelineStatus::default()).await.expect("converges");
            aws.calls().len()
        };
        for n in 0..total {
            let aws = FakeAws::new(ACCOUNT);
            with_bucket(&aws);
            // Status survives the crash as far as it was recorded.
            let mut status = EtlPipelineStatus::default();
            aws.crash_after(n);
            let _ = recorded_round(&aws, p, lake, &mut status).await;
            aws.clear_faults();
            recorded_round(&aws, p, lake, &mut status)
                .await
                .unwrap_or_else(|e| panic!("after a crash at call {n}: {e:?}"));
            aws.reset_calls();
            recorded_round(&aws, p, lake, &mut status).await.expect("steady");
            assert!(writes(&aws).is_empty(), "crash at {n}: a third round wrote {:?}", writes(&aws));
            check(&aws.snapshot(), n);
        }
    }

    #[tokio::test]
    async fn a_pipeline_crashed_after_any_call_converges_without_a_second_resource() {
        let (p, lake) = fixtures();
        crash_after_every_call(&p, &lake, |snapshot, n| {
            assert_eq!(snapshot.state_machines.len(), 1, "crash at {n}");
            assert_eq!(snapshot.event_rules.len(), 1, "crash at {n}");
            assert_eq!(snapshot.roles.len(), 2, "crash at {n}");
            assert_eq!(snapshot.log_groups.len(), 1, "crash at {n}");
        })
        .await;
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

    // ----- the ingest API -----

    const INGEST: &str = "  ingest:\n    api:\n      throttle: {rateLimit: 50, burstLimit: 100}\n";
    const DOMAIN: &str = "      domain: {name: ingest.example.com, certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc'}\n";

    fn with_ingest(extra: &str) -> (EtlPipeline, DataLake) {
        let yaml = format!("{}{INGEST}{extra}", desired::tests::PIPELINE);
        let p: EtlPipeline = serde_saphyr::from_str(&yaml).expect("pipeline with ingest");
        let lake: DataLake = serde_saphyr::from_str(desired::tests::LAKE).expect("lake");
        (p, lake)
    }

    /// The API server, as far as progress goes: the last status recorded.
    #[derive(Default)]
    struct Saved(std::sync::Mutex<Option<EtlPipelineStatus>>);

    #[async_trait::async_trait]
    impl crate::engine::Progress<EtlPipelineStatus> for Saved {
        async fn record(&self, status: &EtlPipelineStatus) -> crate::error::Result<()> {
            *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(status.clone());
            Ok(())
        }
    }

    /// One round whose status survives only as far as it was recorded (a crash loses the
    /// rest); a round that finished keeps all of it.
    async fn recorded_round(
        aws: &Arc<FakeAws>,
        p: &EtlPipeline,
        lake: &DataLake,
        status: &mut EtlPipelineStatus,
    ) -> std::result::Result<Report, Stop> {
        let locks = KeyedLocks::default();
        let input = steps::Inputs { pipeline: p, lake, account: ACCOUNT, key_arn: KEY, boundary: None, locks: &locks };
        let saved = Saved::default();
        let exec = Exec::apply(p, &saved);
        let mut next = status.clone();
        let result = steps::converge(&aws.region(REGION), aws.iam().as_ref(), &input, &exec, &mut next).await;
        match &result {
            Ok(()) => *status = next,
            Err(_) => {
                if let Some(last) = saved.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() {
                    *status = last;
                }
            }
        }
        result.map(|()| exec.finish().0)
    }

    fn stage_of(aws: &FakeAws) -> crate::aws::apigateway::StageInfo {
        let apis = aws.rest_apis();
        let api = apis.values().next().expect("one API");
        api.stages.get(ingest::STAGE).cloned().expect("the stage")
    }

    #[tokio::test]
    async fn the_ingest_api_converges_as_planned_and_a_second_round_writes_nothing() {
        let (p, lake) = with_ingest("");
        let aws = FakeAws::new(ACCOUNT);
        with_bucket(&aws);
        let planned = plan_of(&aws.fork(), &p, &lake).await;
        assert!(planned.blockers.is_empty(), "{planned:?}");
        let mut status = EtlPipelineStatus::default();
        let (_, applied) = round(&aws, &p, &lake, &mut status).await.expect("converges");
        let shape = |p: &Plan| p.changes.iter().map(|c| (c.action, c.setting.clone())).collect::<Vec<_>>();
        assert_eq!(shape(&planned), shape(&applied), "plan == apply");

        let apis = aws.rest_apis();
        assert_eq!(apis.len(), 1);
        let api = apis.values().next().expect("one API");
        assert_eq!(api.info.endpoint_types, ["REGIONAL"]);
        assert!(!api.info.disable_execute_api_endpoint, "no custom domain: the default endpoint serves");
        let policy: serde_json::Value =
            serde_json::from_str(api.info.policy.as_deref().expect("policy")).expect("json");
        let deny = &policy["Statement"][1];
        assert_eq!(
            (deny["Effect"].as_str(), deny["Condition"]["Bool"]["aws:SecureTransport"].as_str()),
            (Some("Deny"), Some("false"))
        );
        let method = api.method.as_ref().expect("POST /");
        assert_eq!(method.settings.authorization, "AWS_IAM");
        let validator = &api.validators[0];
        assert!(validator.validate_body);
        assert_eq!(method.settings.request_validator_id.as_deref(), Some(validator.id.as_str()));
        let integration = method.integration.as_ref().expect("integration");
        assert_eq!(integration.uri, "arn:aws:apigateway:eu-west-1:states:action/StartExecution");
        assert_eq!(integration.credentials, "arn:aws:iam::123456789012:role/lakeops/lakeops-team-a-orders-apigw");
        assert_eq!(integration.passthrough_behavior, "NEVER");
        let stage = stage_of(&aws);
        assert_eq!(stage.throttle, Some(crate::aws::apigateway::Throttle { rate_limit: 50.0, burst_limit: 100 }));
        assert!(stage.tracing);
        let (dest, format) = stage.access_log.clone().expect("access logs");
        assert_eq!(dest, "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/apigateway/lakeops-team-a-orders");
        assert!(!format.contains("$input"), "the body is never logged");
        let plans = aws.usage_plans();
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].throttle, stage.throttle);
        assert_eq!(plans[0].api_stages, [(api.info.id.clone(), ingest::STAGE.to_string())]);
        let group = aws
            .snapshot()
            .log_groups
            .get(&(REGION.to_string(), "/aws/apigateway/lakeops-team-a-orders".to_string()))
            .cloned()
            .expect("group");
        assert_eq!(group.kms_key_id.as_deref(), Some(KEY));
        let role = aws.snapshot().roles.get("lakeops-team-a-orders-apigw").cloned().expect("role");
        let policy: serde_json::Value =
            serde_json::from_str(role.policies.values().next().expect("inline policy")).expect("json");
        assert_eq!(policy["Statement"][0]["Action"], "states:StartExecution");
        assert_eq!(
            policy["Statement"][0]["Resource"],
            "arn:aws:states:eu-west-1:123456789012:stateMachine:lakeops-team-a-orders"
        );
        assert_eq!(status.rest_api_id.as_deref(), Some(api.info.id.as_str()));
        assert!(status.ingest_url.as_deref().is_some_and(|u| u.starts_with("https://") && u.ends_with("/ingest/")));

        aws.reset_calls();
        let (report, applied) = round(&aws, &p, &lake, &mut status).await.expect("steady");
        assert_eq!((report.applied, applied.changes.len()), (0, 0), "{applied:?}");
        assert!(writes(&aws).is_empty(), "{:?}", writes(&aws));
        let reads: Vec<String> = aws.calls().iter().map(|c| c.operation.to_string()).collect();
        assert_eq!(reads.len(), 8 + 9, "{reads:?}");
        assert!(plan_of(&aws, &p, &lake).await.changes.is_empty());
    }

    #[tokio::test]
    async fn a_throttle_change_is_one_stage_update_and_stage_drift_is_corrected() {
        let (mut p, lake) = with_ingest("");
        let aws = FakeAws::new(ACCOUNT);
        with_bucket(&aws);
        let mut status = EtlPipelineStatus::default();
        round(&aws, &p, &lake, &mut status).await.expect("converges");
        p.spec.ingest.as_mut().expect("ingest").api.throttle.rate_limit = 20;
        aws.reset_calls();
        let planned = plan_of(&aws.fork(), &p, &lake).await;
        round(&aws, &p, &lake, &mut status).await.expect("converges");
        assert_eq!(writes(&aws), ["UpdateStage", "UpdateUsagePlan"], "one stage update, and the plan's");
        assert!(planned.changes.iter().all(|c| !c.weakens), "lowering the throttle strengthens: {planned:?}");
        assert_eq!(stage_of(&aws).throttle.map(|t| t.rate_limit), Some(20.0));

        // Someone raises the stage's throttle out of band.
        aws.edit(|r| {
            let api = r.rest_apis.values_mut().next().expect("api");
            api.stages.get_mut(ingest::STAGE).expect("stage").throttle =
                Some(crate::aws::apigateway::Throttle { rate_limit: 5000.0, burst_limit: 5000 });
        });
        aws.reset_calls();
        let (report, _) = round(&aws, &p, &lake, &mut status).await.expect("converges");
        assert_eq!(writes(&aws), ["UpdateStage"]);
        assert_eq!(report.drift, ["stage ingest of REST API lakeops-team-a-orders: stage throttling"]);
        assert_eq!(stage_of(&aws).throttle.map(|t| (t.rate_limit, t.burst_limit)), Some((20.0, 100)));

        // Raising it in the spec is planned as weakening.
        p.spec.ingest.as_mut().expect("ingest").api.throttle.rate_limit = 500;
        let planned = plan_of(&aws, &p, &lake).await;
        assert!(planned.changes.iter().any(|c| c.setting == "stage throttling" && c.weakens), "{planned:?}");
    }

    #[tokio::test]
    async fn anonymous_ingest_is_planned_as_weakening_and_puts_the_method_again() {
        let (mut p, lake) = with_ingest("");
        let aws = FakeAws::new(ACCOUNT);
        with_bucket(&aws);
        let mut status = EtlPipelineStatus::default();
        round(&aws, &p, &lake, &mut status).await.expect("converges");
        p.spec.ingest.as_mut().expect("ingest").api.authorization = lakeops_crds::etlpipeline::Authorization::None;
        let planned = plan_of(&aws, &p, &lake).await;
        assert!(planned.changes.iter().any(|c| c.setting == "ingest method" && c.weakens), "{planned:?}");
        aws.reset_calls();
        round(&aws, &p, &lake, &mut status).await.expect("converges");
        let api = aws.rest_apis().into_values().next().expect("api");
        assert_eq!(api.method.as_ref().map(|m| m.settings.authorization.as_str()), Some("NONE"));
        assert!(writes(&aws).contains(&"CreateDeployment".to_string()), "the changed method is deployed");
        aws.reset_calls();
        round(&aws, &p, &lake, &mut status).await.expect("steady");
        assert!(writes(&aws).is_empty(), "{:?}", writes(&aws));
    }

    #[tokio::test]
    async fn a_custom_domain_has_tls_1_2_and_the_default_endpoint_is_disabled() {
        let (p, lake) = with_ingest(DOMAIN);
        let aws = FakeAws::new(ACCOUNT);
        with_bucket(&aws);
        let mut status = EtlPipelineStatus::default();
        round(&aws, &p, &lake, &mut status).await.expect("converges");
        let api = aws.rest_apis().into_values().next().expect("api");
        assert!(api.info.disable_execute_api_endpoint);
        let domain = aws.snapshot().domains.values().next().cloned().expect("domain");
        assert_eq!(domain.info.security_policy, "TLS_1_2");
        assert_eq!(domain.mappings.len(), 1);
        assert_eq!(
            (domain.mappings[0].rest_api_id.as_str(), domain.mappings[0].stage.as_str()),
            (api.info.id.as_str(), ingest::STAGE)
        );
        assert_eq!(status.ingest_url.as_deref(), Some("https://ingest.example.com/"));
        aws.reset_calls();
        round(&aws, &p, &lake, &mut status).await.expect("steady");
        assert!(writes(&aws).is_empty(), "{:?}", writes(&aws));
        assert_eq!(aws.calls().len(), 8 + 11);

        // A lowered policy is raised again.
        aws.edit(|r| r.domains.values_mut().next().expect("domain").info.security_policy = "TLS_1_0".into());
        aws.reset_calls();
        let (report, _) = round(&aws, &p, &lake, &mut status).await.expect("converges");
        assert_eq!(writes(&aws), ["UpdateDomainName"]);
        assert_eq!(report.drift, ["custom domain ingest.example.com: TLS security policy"]);

        // Dropping the domain is planned as weakening (the default endpoint comes back).
        let (plain, _) = with_ingest("");
        let planned = plan_of(&aws, &plain, &lake).await;
        assert!(planned.changes.iter().any(|c| c.setting == "default endpoint" && c.weakens), "{planned:?}");
    }

    #[tokio::test]
    async fn lost_create_answers_leave_one_api_and_one_usage_plan() {
        let (p, lake) = with_ingest("");
        let aws = FakeAws::new(ACCOUNT);
        with_bucket(&aws);
        aws.drop_response_on(|_, op| op == "CreateRestApi" || op == "CreateUsagePlan");
        let mut status = EtlPipelineStatus::default();
        assert!(recorded_round(&aws, &p, &lake, &mut status).await.is_err());
        assert!(recorded_round(&aws, &p, &lake, &mut status).await.is_err(), "the usage plan's answer is lost too");
        aws.clear_faults();
        recorded_round(&aws, &p, &lake, &mut status).await.expect("converges");
        assert_eq!(aws.rest_apis().len(), 1);
        assert_eq!(aws.usage_plans().len(), 1);
        aws.reset_calls();
        recorded_round(&aws, &p, &lake, &mut status).await.expect("steady");
        assert!(writes(&aws).is_empty(), "{:?}", writes(&aws));
    }

    #[tokio::test]
    async fn an_ingest_api_crashed_after_any_call_converges_without_a_second_resource() {
        let (p, lake) = with_ingest(DOMAIN);
        crash_after_every_call(&p, &lake, |snapshot, n| {
            assert_eq!(snapshot.rest_apis.len(), 1, "crash at {n}");
            assert_eq!(snapshot.usage_plans.len(), 1, "crash at {n}");
            assert_eq!(snapshot.domains.len(), 1, "crash at {n}");
            assert_eq!(snapshot.roles.len(), 3, "crash at {n}");
            assert_eq!(snapshot.log_groups.len(), 2, "crash at {n}");
            let api = snapshot.rest_apis.values().next().expect("api");
            assert_eq!(api.validators.len(), 1, "crash at {n}");
            assert!(api.stages[ingest::STAGE].throttle.is_some(), "crash at {n}");
        })
        .await;
    }

    #[tokio::test]
    async fn removing_the_ingest_api_removes_the_api_its_plan_and_role() {
        let (p, lake) = with_ingest("");
        let aws = FakeAws::new(ACCOUNT);
        with_bucket(&aws);
        let mut status = EtlPipelineStatus::default();
        round(&aws, &p, &lake, &mut status).await.expect("converges");
        let (plain, _) = fixtures();
        round(&aws, &plain, &lake, &mut status).await.expect("converges");
        assert!(aws.rest_apis().is_empty());
        assert!(aws.usage_plans().is_empty());
        assert!(!aws.snapshot().roles.contains_key("lakeops-team-a-orders-apigw"));
        assert_eq!(status.rest_api_id, None);
        aws.reset_calls();
        round(&aws, &plain, &lake, &mut status).await.expect("steady");
        assert!(writes(&aws).is_empty());
    }

    /// The engine's properties for the ingest API, over generated specs and starting states
    /// (empty; converged with another throttle, authorization and domain; the stage's
    /// throttle drifted; half-created by a crash): the plan's changes are the changes apply
    /// sends, apply converges, a second apply writes nothing and plans nothing.
    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn spec(rate: i32, burst: i32, anonymous: bool, domain: bool) -> EtlPipeline {
            let (mut p, _) = with_ingest(if domain { DOMAIN } else { "" });
            let api = &mut p.spec.ingest.as_mut().expect("ingest").api;
            api.throttle.rate_limit = rate;
            api.throttle.burst_limit = burst;
            if anonymous {
                api.authorization = lakeops_crds::etlpipeline::Authorization::None;
            }
            p
        }

        fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
            #[test]
            fn an_ingest_plan_is_what_apply_sends_and_apply_converges(
                rate in 1i32..1000, burst in 1i32..500, anonymous: bool, domain: bool, start in 0usize..4, crash in 0usize..40,
            ) {
                let p = spec(rate, burst, anonymous, domain);
                let (_, lake) = with_ingest("");
                block_on(async {
                    let aws = FakeAws::new(ACCOUNT);
                    with_bucket(&aws);
                    let mut status = EtlPipelineStatus::default();
                    match start {
                        1 => {
                            let other = spec(rate + 7, burst + 3, !anonymous, !domain);
                            recorded_round(&aws, &other, &lake, &mut status).await.expect("other converges");
                        }
                        2 => {
                            recorded_round(&aws, &p, &lake, &mut status).await.expect("converges");
                            aws.edit(|r| {
                                let api = r.rest_apis.values_mut().next().expect("api");
                                api.stages.get_mut(ingest::STAGE).expect("stage").throttle = None;
                            });
                        }
                        3 => {
                            aws.crash_after(crash);
                            let _ = recorded_round(&aws, &p, &lake, &mut status).await;
                            aws.clear_faults();
                        }
                        _ => {}
                    }
                    // The plan of a status-less manifest, on a copy, from the same state.
                    let planned = plan_of(&aws.fork(), &p, &lake).await;
                    aws.reset_calls();
                    let report = recorded_round(&aws, &p, &lake, &mut status).await.expect("converges");
                    let sent = writes(&aws);
                    let shape: Vec<String> = planned.changes.iter().map(|c| c.setting.clone()).collect();
                    assert_eq!(report.applied, sent.len(), "every change is one call");
                    if start != 3 {
                        assert_eq!(planned.changes.len(), sent.len(), "plan == apply: {shape:?} vs {sent:?}");
                    }
                    aws.reset_calls();
                    recorded_round(&aws, &p, &lake, &mut status).await.expect("steady");
                    assert!(writes(&aws).is_empty(), "a second apply wrote {:?}", writes(&aws));
                    let again = plan_of(&aws, &p, &lake).await;
                    assert!(again.changes.is_empty(), "{again:?}");
                    let snapshot = aws.snapshot();
                    assert_eq!((snapshot.rest_apis.len(), snapshot.usage_plans.len()), (1, 1));
                    assert_eq!(snapshot.domains.len(), usize::from(domain), "a dropped domain is deleted");
                });
            }
        }
    }
}
