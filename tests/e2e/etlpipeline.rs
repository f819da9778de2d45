//! The EtlPipeline reconciler against a real API server and moto: the state machine, its
//! roles, log group, EventBridge rule and the bucket's notification document are read back
//! through the AWS SDK; a step added costs one UpdateStateMachine; drift of the machine's
//! role is corrected with a DriftCorrected event; the steady state writes nothing. The
//! ingest API: stage throttling, usage plan, validator, access logs and resource policy read
//! back; a throttle change is one UpdateStage; stage drift is corrected with an event; a
//! dropped CreateRestApi answer leaves one API.
//!
//! Moto cannot run Lambda functions (no container runtime), so no execution is started
//! here: the test asserts on the definition Step Functions stored, not on a run. Moto does
//! not check the KMS key, the log group or the roles a state machine names either: the
//! test asserts on what was sent and stored.
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use lakeops::aws::recorder::is_read;
use lakeops_crds::names::reason;
use lakeops_crds::{DataLake, EtlFunction, EtlPipeline};
use lakeops_testenv::TestEnv;

use crate::common::{RunningController, api, eventually};

const TIMEOUT: Duration = Duration::from_secs(60);
const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";

fn lake() -> DataLake {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "DataLake", "metadata": { "name": "sales" },
        "spec": { "region": REGION, "zones": [{ "name": "raw" }, { "name": "curated" }], "audit": { "trail": false } }
    }))
    .expect("lake fixture")
}

fn function(name: &str, artifacts: &str) -> EtlFunction {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "EtlFunction", "metadata": { "name": name },
        "spec": {
            "dataLakeRef": { "name": "sales" },
            "source": { "zone": "raw", "prefix": format!("fn/{name}/") },
            "destination": { "zone": "curated", "prefix": format!("out/{name}/") },
            "code": { "s3Bucket": artifacts, "s3Key": format!("{name}.zip") },
            "runtime": "python3.12",
            "handler": "app.handler",
            "deletionPolicy": "Delete"
        }
    }))
    .expect("function fixture")
}

fn pipeline(steps: &[&str]) -> EtlPipeline {
    let steps: Vec<serde_json::Value> = steps
        .iter()
        .map(|s| serde_json::json!({ "name": s, "etlFunctionRef": { "name": s }, "timeoutSeconds": 300 }))
        .collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "EtlPipeline", "metadata": { "name": "orders" },
        "spec": {
            "dataLakeRef": { "name": "sales" },
            "trigger": { "objectCreated": { "zone": "raw", "prefix": "incoming/orders/", "suffix": ".json" } },
            "steps": steps,
            "onFailure": { "deadLetterQueueArn": format!("arn:aws:sqs:{REGION}:{ACCOUNT}:orders-dlq") },
            "deletionPolicy": "Delete"
        }
    }))
    .expect("pipeline fixture")
}

fn sfn(env: &TestEnv) -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&env.aws_config(REGION))
}

fn events(env: &TestEnv) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(&env.aws_config(REGION))
}

fn policy_json(raw: &str) -> serde_json::Value {
    serde_json::from_str(&lakeops::aws::iam::decode_policy(raw)).expect("policy JSON")
}

fn as_list(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

fn writes_since(ctrl: &RunningController, before: &lakeops::aws::recorder::Counts) -> Vec<(String, String, u64)> {
    ctrl.recorder
        .since(before)
        .into_iter()
        .filter(|((_, op), _)| !is_read(op))
        .map(|((svc, op), n)| (svc, op, n))
        .collect()
}

async fn wait_ready<K: crate::common::Kind>(api: &kube::Api<K>, name: &str) -> K {
    crate::common::wait_until(api, name, reason::RECONCILED, |r| r.1 == reason::RECONCILED).await
}

async fn reconcile_now(pipelines: &kube::Api<EtlPipeline>, stamp: &str) {
    crate::common::reconcile_now(pipelines, "orders", stamp, |p| {
        p.status.as_ref().and_then(|s| s.last_handled_reconcile_at.clone())
    })
    .await;
}

#[tokio::test]
async fn a_pipeline_converges_to_an_encrypted_logged_traced_state_machine_started_by_eventbridge() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("etlp").await.expect("namespace");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    let fns = api::<EtlFunction>(env, &ns).await.expect("api");
    let pipelines = api::<EtlPipeline>(env, &ns).await.expect("api");
    let bucket = crate::etlfunction::artifacts(env, &ns, &["validate", "tokenise", "load"]).await;
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");

    lakes.create(&PostParams::default(), &lake()).await.expect("lake created");
    for name in ["validate", "tokenise"] {
        fns.create(&PostParams::default(), &function(name, &bucket)).await.expect("function created");
    }
    for name in ["validate", "tokenise"] {
        wait_ready(&fns, name).await;
    }
    // After the functions: their own notification writes round-trip the document, and moto
    // never reports EventBridge delivery back, so a later write of theirs would drop it
    // there (AWS reports it, and the round-trip keeps it).
    pipelines.create(&PostParams::default(), &pipeline(&["validate", "tokenise"])).await.expect("pipeline created");
    let p = wait_ready(&pipelines, "orders").await;
    let status = p.status.expect("status");
    let key_arn = lakes.get("sales").await.expect("lake").status.and_then(|s| s.kms_key_arn).expect("lake key");
    let machine_name = format!("lakeops-{ns}-orders");
    let machine_arn = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{machine_name}");
    assert_eq!(status.state_machine_arn.as_deref(), Some(machine_arn.as_str()));

    // The state machine as Step Functions stored it.
    let m = sfn(env).describe_state_machine().state_machine_arn(&machine_arn).send().await.expect("machine");
    assert_eq!(m.r#type().as_str(), "STANDARD");
    let enc = m.encryption_configuration().expect("encryption");
    assert_eq!((enc.r#type().as_str(), enc.kms_key_id()), ("CUSTOMER_MANAGED_KMS_KEY", Some(key_arn.as_str())));
    let log = m.logging_configuration().expect("logging");
    assert_eq!(log.level().map(|l| l.as_str()), Some("ERROR"));
    assert!(!log.include_execution_data(), "records are never logged");
    let group_name = format!("/aws/vendedlogs/states/{machine_name}");
    let destination =
        log.destinations().first().and_then(|d| d.cloud_watch_logs_log_group()).and_then(|g| g.log_group_arn());
    assert_eq!(destination, Some(format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group_name}:*").as_str()));
    assert!(m.tracing_configuration().is_some_and(|t| t.enabled()), "X-Ray on");
    let role_name = format!("lakeops-{ns}-orders-sfn");
    assert_eq!(m.role_arn(), format!("arn:aws:iam::{ACCOUNT}:role/lakeops/{role_name}"));
    let definition: serde_json::Value = serde_json::from_str(m.definition()).expect("definition JSON");
    let function_arn = |f: &str| format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:lakeops-{ns}-{f}");
    assert_eq!(definition["StartAt"], "validate");
    assert_eq!(definition["States"]["validate"]["Resource"], function_arn("validate"));
    assert_eq!(definition["States"]["validate"]["Next"], "tokenise");
    assert_eq!(definition["States"]["validate"]["Retry"][0]["MaxAttempts"], 3);
    assert_eq!(definition["States"]["tokenise"]["End"], true);
    assert_eq!(definition["States"]["tokenise"]["Catch"][0]["Next"], "Send to dead-letter queue");
    assert_eq!(definition["States"]["Send to dead-letter queue"]["Next"], "Pipeline failed");

    // Its role invokes exactly the two functions and uses the lake key only through Step Functions.
    let iam = env.iam();
    let role = iam.get_role().role_name(&role_name).send().await.expect("role").role.expect("role");
    let trust = policy_json(role.assume_role_policy_document().unwrap_or_default());
    assert_eq!(as_list(&trust["Statement"][0]["Principal"]["Service"]), ["states.amazonaws.com"]);
    let doc = iam.get_role_policy().role_name(&role_name).policy_name("lakeops-pipeline").send().await.expect("policy");
    let doc = policy_json(doc.policy_document());
    let statement =
        |sid: &str| doc["Statement"].as_array().and_then(|a| a.iter().find(|s| s["Sid"] == sid).cloned()).expect(sid);
    assert_eq!(
        as_list(&statement("InvokeListedFunctions")["Resource"]),
        [function_arn("tokenise"), function_arn("validate")]
    );
    let key = statement("UseLakeKeyThroughStepFunctions");
    assert_eq!(as_list(&key["Resource"]), std::slice::from_ref(&key_arn));
    assert_eq!(
        as_list(&key["Condition"]["StringEquals"]["kms:ViaService"]),
        [format!("states.{REGION}.amazonaws.com")]
    );

    // The log group: the lake key and the retention.
    let groups =
        env.logs(REGION).describe_log_groups().log_group_name_prefix(&group_name).send().await.expect("groups");
    let group = groups.log_groups().first().expect("log group");
    assert_eq!((group.retention_in_days(), group.kms_key_id()), (Some(365), Some(key_arn.as_str())));

    // The rule: S3's Object Created events of the raw bucket under the prefix and suffix,
    // starting this machine through a role allowed only that.
    let raw = format!("{ns}-sales-raw");
    let rule = events(env).describe_rule().name(&machine_name).send().await.expect("rule");
    let pattern: serde_json::Value = serde_json::from_str(rule.event_pattern().unwrap_or_default()).expect("pattern");
    assert_eq!(pattern["detail"]["bucket"]["name"], serde_json::json!([raw]));
    assert_eq!(pattern["detail"]["object"]["key"], serde_json::json!([{ "wildcard": "incoming/orders/*.json" }]));
    let targets = events(env).list_targets_by_rule().rule(&machine_name).send().await.expect("targets");
    let target = targets.targets().first().expect("one target");
    assert_eq!((targets.targets().len(), target.arn()), (1, machine_arn.as_str()));
    let events_role = format!("lakeops-{ns}-orders-events");
    assert_eq!(target.role_arn(), Some(format!("arn:aws:iam::{ACCOUNT}:role/lakeops/{events_role}").as_str()));
    let doc =
        iam.get_role_policy().role_name(&events_role).policy_name("lakeops-pipeline").send().await.expect("policy");
    let doc = policy_json(doc.policy_document());
    assert_eq!(doc["Statement"].as_array().map(Vec::len), Some(1));
    assert_eq!(as_list(&doc["Statement"][0]["Action"]), ["states:StartExecution"]);
    assert_eq!(as_list(&doc["Statement"][0]["Resource"]), std::slice::from_ref(&machine_arn));

    // EventBridge delivery on the bucket, the functions' own S3 entries kept.
    // Moto never returns EventBridgeConfiguration from GetBucketNotificationConfiguration,
    // and in this server setup it delivered no S3 event to a test-owned EventBridge rule
    // even with a document the test wrote itself: the write sent and the status recording
    // it are what this test can show (the fake's unit test checks the document's content).
    assert_eq!(status.event_bridge_bucket.as_deref(), Some(raw.as_str()));
    let sent = ctrl.recorder.requests().expect("recorded requests");
    assert!(
        sent.iter()
            .any(|r| r.operation == "PutBucketNotificationConfiguration" && r.param("Bucket") == Some(raw.as_str())),
        "the raw bucket's notification document was written"
    );
    let n = env.s3(REGION).get_bucket_notification_configuration().bucket(&raw).send().await.expect("notifications");
    assert_eq!(n.lambda_function_configurations().len(), 2, "the functions' entries are kept");

    // Steady state: reads only.
    let before = ctrl.recorder.snapshot();
    reconcile_now(&pipelines, "steady-1").await;
    let calls = ctrl.recorder.since(&before);
    let writes: Vec<_> = calls.keys().filter(|(_, op)| !is_read(op)).collect();
    assert!(writes.is_empty(), "a converged pipeline needs no AWS write: {calls:?}");
    let reads: u64 = calls.values().sum();
    eprintln!("steady-state EtlPipeline reconcile: {reads} reads: {calls:?}");
    assert!(reads <= 8, "{reads} reads: {calls:?}");

    // A step added: the role may invoke the new function, and the machine takes one update.
    fns.create(&PostParams::default(), &function("load", &bucket)).await.expect("function created");
    wait_ready(&fns, "load").await;
    let before = ctrl.recorder.snapshot();
    let steps = serde_json::json!({ "spec": { "steps": pipeline(&["validate", "tokenise", "load"]).spec.steps } });
    pipelines.patch("orders", &PatchParams::default(), &Patch::Merge(&steps)).await.expect("patched");
    wait_ready(&pipelines, "orders").await;
    let writes = writes_since(&ctrl, &before);
    assert_eq!(
        writes,
        [("iam".to_string(), "PutRolePolicy".to_string(), 1), ("sfn".to_string(), "UpdateStateMachine".to_string(), 1)],
        "one role policy and one UpdateStateMachine"
    );
    let m = sfn(env).describe_state_machine().state_machine_arn(&machine_arn).send().await.expect("machine");
    let definition: serde_json::Value = serde_json::from_str(m.definition()).expect("definition JSON");
    assert_eq!(definition["States"]["tokenise"]["Next"], "load");

    // Drift: the machine's role swapped out of band is put back in one update, with an event.
    sfn(env)
        .update_state_machine()
        .state_machine_arn(&machine_arn)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/someone-else"))
        .send()
        .await
        .expect("drifted");
    let before = ctrl.recorder.snapshot();
    reconcile_now(&pipelines, "drift-1").await;
    assert_eq!(writes_since(&ctrl, &before), [("sfn".to_string(), "UpdateStateMachine".to_string(), 1)]);
    let m = sfn(env).describe_state_machine().state_machine_arn(&machine_arn).send().await.expect("machine");
    assert_eq!(m.role_arn(), format!("arn:aws:iam::{ACCOUNT}:role/lakeops/{role_name}"));
    let k8s_events = api::<k8s_openapi::api::events::v1::Event>(env, &ns).await.expect("events api");
    let drift = eventually(TIMEOUT, "DriftCorrected event", || async {
        let list = k8s_events.list(&Default::default()).await?;
        Ok(list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("DriftCorrected")
                && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("EtlPipeline")
        }))
    })
    .await
    .expect("drift reported");
    assert!(drift.note.unwrap_or_default().contains("role"));

    crate::common::assert_iam_policy_covers(&ctrl.recorder);

    // Deletion removes the rule, the machine and both roles; the functions stay.
    pipelines.delete("orders", &DeleteParams::default()).await.expect("deleted");
    eventually(TIMEOUT, "pipeline gone", || async { Ok(pipelines.get_opt("orders").await?.is_none().then_some(())) })
        .await
        .expect("finalizer released");
    assert!(sfn(env).describe_state_machine().state_machine_arn(&machine_arn).send().await.is_err(), "machine gone");
    assert!(events(env).describe_rule().name(&machine_name).send().await.is_err(), "rule gone");
    assert!(iam.get_role().role_name(&role_name).send().await.is_err(), "machine role gone");
    assert!(iam.get_role().role_name(&events_role).send().await.is_err(), "events role gone");
    assert!(fns.get("validate").await.is_ok());
    ctrl.stop().await.expect("stopped");
}

#[tokio::test]
async fn a_trigger_overlapping_a_function_and_a_missing_function_are_refused_naming_the_field() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("etlp-bad").await.expect("namespace");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    let fns = api::<EtlFunction>(env, &ns).await.expect("api");
    let pipelines = api::<EtlPipeline>(env, &ns).await.expect("api");
    let bucket = crate::etlfunction::artifacts(env, &ns, &["validate"]).await;
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");
    lakes.create(&PostParams::default(), &lake()).await.expect("lake created");
    let mut f = function("validate", &bucket);
    f.spec.source.prefix = "incoming/".into();
    fns.create(&PostParams::default(), &f).await.expect("function created");
    pipelines.create(&PostParams::default(), &pipeline(&["validate", "missing"])).await.expect("pipeline created");
    let p = crate::common::wait_until(&pipelines, "orders", "stalled", |r| r.1 == reason::INVALID_SPEC).await;
    let message = p.status.and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready")).map(|c| c.message);
    let message = message.unwrap_or_default();
    assert!(message.contains("spec.trigger.objectCreated.prefix"), "{message}");
    assert!(message.contains("spec.steps[1].etlFunctionRef.name"), "{message}");
    assert!(
        sfn(env)
            .list_state_machines()
            .send()
            .await
            .expect("list")
            .state_machines()
            .iter()
            .all(|m| !m.name().contains(&ns))
    );
    ctrl.stop().await.expect("stopped");
}

/// A namespace with the lake and the `validate` function, and a controller talking to moto
/// through a proxy that carries out the first `operation` and drops its answer (the plain
/// listener: the proxy reads and rewrites HTTP).
struct LostAnswer {
    env: &'static TestEnv,
    ns: String,
    pipelines: kube::Api<EtlPipeline>,
    proxy: lakeops_testenv::faultproxy::FaultProxy,
    ctrl: RunningController,
}

async fn behind_lost_answer(prefix: &str, seed: u64, operation: &str) -> LostAnswer {
    use lakeops_testenv::faultproxy::{FaultProxy, Faults};
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace(prefix).await.expect("namespace");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    let fns = api::<EtlFunction>(env, &ns).await.expect("api");
    let pipelines = api::<EtlPipeline>(env, &ns).await.expect("api");
    let bucket = crate::etlfunction::artifacts(env, &ns, &["validate"]).await;
    let mut faults = Faults::none(seed);
    faults.drop_first.insert(operation.into(), 1);
    let proxy = FaultProxy::start(&env.moto_plain_endpoint, faults).await.expect("fault proxy");
    let ctrl = RunningController::start_through(env, &ns, Duration::from_secs(600), &proxy.endpoint)
        .await
        .expect("controller");
    lakes.create(&PostParams::default(), &lake()).await.expect("lake created");
    fns.create(&PostParams::default(), &function("validate", &bucket)).await.expect("function created");
    LostAnswer { env, ns, pipelines, proxy, ctrl }
}

#[tokio::test]
async fn a_create_state_machine_whose_answer_is_lost_leaves_exactly_one_machine() {
    // Moto carries out the first CreateStateMachine; the proxy then closes the connection
    // without an answer.
    let LostAnswer { env, ns, pipelines, proxy, ctrl } =
        behind_lost_answer("etlp-lost", 7, "states:CreateStateMachine").await;
    let mut p = pipeline(&["validate"]);
    p.spec.trigger = Default::default();
    p.spec.trigger.schedule = Some("rate(1 hour)".into());
    pipelines.create(&PostParams::default(), &p).await.expect("pipeline created");
    wait_ready(&pipelines, "orders").await;
    let tally = proxy.tally();
    assert_eq!(tally.dropped.get("states:CreateStateMachine"), Some(&1), "{tally:?}");
    let machines = sfn(env).list_state_machines().send().await.expect("list");
    let ours: Vec<&str> =
        machines.state_machines().iter().map(|m| m.name()).filter(|n| n.contains(&format!("-{ns}-"))).collect();
    assert_eq!(ours, [format!("lakeops-{ns}-orders")], "exactly one machine");
    ctrl.stop().await.expect("stopped");
}

fn apigateway(env: &TestEnv) -> aws_sdk_apigateway::Client {
    aws_sdk_apigateway::Client::new(&env.aws_config(REGION))
}

/// The example pipeline's ingest API against moto, through a proxy that carries out the
/// first CreateRestApi and drops its answer: exactly one API results. Moto stores what API
/// Gateway stores (methods, integrations, validators, stages with method settings, access
/// logs and tracing, usage plans) but serves no request to the API itself, so throttling,
/// the body limit, SigV4 and the TLS-only policy are shown by what was stored and sent.
#[tokio::test]
async fn an_ingest_api_converges_throttled_validated_logged_and_a_lost_create_leaves_one_api() {
    let LostAnswer { env, ns, pipelines, proxy, ctrl } =
        behind_lost_answer("etlp-api", 11, "apigateway:CreateRestApi").await;
    let mut p = pipeline(&["validate"]);
    p.spec.trigger = Default::default();
    p.spec.on_failure.as_mut().expect("on failure").alert = true;
    p.spec.ingest = Some(
        serde_json::from_value(serde_json::json!({ "api": { "throttle": { "rateLimit": 50, "burstLimit": 100 } } }))
            .expect("ingest"),
    );
    pipelines.create(&PostParams::default(), &p).await.expect("pipeline created");
    let p = wait_ready(&pipelines, "orders").await;
    let status = p.status.expect("status");
    let tally = proxy.tally();
    assert_eq!(tally.dropped.get("apigateway:CreateRestApi"), Some(&1), "{tally:?}");

    // Exactly one API, found by its creation token after the lost answer.
    let name = format!("lakeops-{ns}-orders");
    let gw = apigateway(env);
    let apis = gw.get_rest_apis().limit(500).send().await.expect("apis");
    let ours: Vec<_> = apis.items().iter().filter(|a| a.name() == Some(name.as_str())).collect();
    assert_eq!(ours.len(), 1, "exactly one API: {ours:?}");
    let rest = ours[0];
    let id = rest.id().expect("id").to_string();
    assert_eq!(status.rest_api_id.as_deref(), Some(id.as_str()));
    let types: Vec<&str> =
        rest.endpoint_configuration().map(|c| c.types().iter().map(|t| t.as_str()).collect()).unwrap_or_default();
    assert_eq!(types, ["REGIONAL"]);
    let policy: serde_json::Value = serde_json::from_str(rest.policy().expect("resource policy")).expect("json");
    let deny =
        policy["Statement"].as_array().and_then(|a| a.iter().find(|s| s["Effect"] == "Deny").cloned()).expect("deny");
    assert_eq!(deny["Condition"]["Bool"]["aws:SecureTransport"], "false");

    // POST / : IAM authorization, the body validator and model, Step Functions through its role.
    let root = rest.root_resource_id().expect("root").to_string();
    let method = gw.get_method().rest_api_id(&id).resource_id(&root).http_method("POST").send().await.expect("method");
    assert_eq!(method.authorization_type(), Some("AWS_IAM"));
    let validators = gw.get_request_validators().rest_api_id(&id).send().await.expect("validators");
    let validator = validators.items().first().expect("a validator");
    assert!(validator.validate_request_body());
    assert_eq!(method.request_validator_id(), validator.id());
    assert_eq!(
        method.request_models().and_then(|m| m.get("application/json")).map(String::as_str),
        Some("IngestRecord")
    );
    let integration = method.method_integration().expect("integration");
    assert_eq!(integration.uri(), Some(format!("arn:aws:apigateway:{REGION}:states:action/StartExecution").as_str()));
    let api_role = format!("lakeops-{ns}-orders-apigw");
    assert_eq!(integration.credentials(), Some(format!("arn:aws:iam::{ACCOUNT}:role/lakeops/{api_role}").as_str()));
    let template = integration.request_templates().and_then(|t| t.get("application/json")).expect("template");
    assert!(template.contains("$body.length() > 262144"), "{template}");
    let doc =
        env.iam().get_role_policy().role_name(&api_role).policy_name("lakeops-pipeline").send().await.expect("policy");
    let doc = policy_json(doc.policy_document());
    assert_eq!(as_list(&doc["Statement"][0]["Action"]), ["states:StartExecution"]);
    assert_eq!(
        as_list(&doc["Statement"][0]["Resource"]),
        [format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}")]
    );

    // The stage: throttling, X-Ray, access logs to the lake-key log group; the usage plan.
    let stage = gw.get_stage().rest_api_id(&id).stage_name("ingest").send().await.expect("stage");
    let all = stage.method_settings().and_then(|m| m.get("*/*")).expect("*/* method settings");
    assert_eq!((all.throttling_rate_limit(), all.throttling_burst_limit()), (50.0, 100));
    assert!(stage.tracing_enabled());
    let group_name = format!("/aws/apigateway/{name}");
    let access = stage.access_log_settings().expect("access logs");
    assert_eq!(
        access.destination_arn(),
        Some(format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group_name}").as_str())
    );
    assert!(!access.format().unwrap_or_default().contains("$input"), "bodies are never logged");
    let key_arn = api::<DataLake>(env, &ns)
        .await
        .expect("api")
        .get("sales")
        .await
        .expect("lake")
        .status
        .and_then(|s| s.kms_key_arn)
        .expect("lake key");
    let groups =
        env.logs(REGION).describe_log_groups().log_group_name_prefix(&group_name).send().await.expect("groups");
    let group = groups.log_groups().first().expect("access log group");
    assert_eq!((group.retention_in_days(), group.kms_key_id()), (Some(365), Some(key_arn.as_str())));
    let plans = gw.get_usage_plans().send().await.expect("plans");
    let plan = plans.items().iter().find(|p| p.name() == Some(name.as_str())).expect("usage plan");
    let throttle = plan.throttle().expect("plan throttle");
    assert_eq!((throttle.rate_limit(), throttle.burst_limit()), (50.0, 100));
    assert!(plan.api_stages().iter().any(|s| s.api_id() == Some(id.as_str()) && s.stage() == Some("ingest")));

    // onFailure.alert: after the dead-letter queue, the failure path publishes to the
    // SecurityBaseline's topic (moto runs no execution: the stored definition and the role
    // show it), and the machine's role may publish there and use its key only through SNS.
    let machine_arn = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}");
    let m = sfn(env).describe_state_machine().state_machine_arn(&machine_arn).send().await.expect("machine");
    let definition: serde_json::Value = serde_json::from_str(m.definition()).expect("definition JSON");
    let alert = &definition["States"]["Alert the security topic"];
    assert_eq!(definition["States"]["Send to dead-letter queue"]["Next"], "Alert the security topic");
    assert_eq!(alert["Parameters"]["TopicArn"], format!("arn:aws:sns:{REGION}:{ACCOUNT}:lakeops-alerts"));
    let doc = env
        .iam()
        .get_role_policy()
        .role_name(format!("lakeops-{ns}-orders-sfn"))
        .policy_name("lakeops-pipeline")
        .send()
        .await
        .expect("policy");
    let doc = policy_json(doc.policy_document());
    let publish = doc["Statement"].as_array().and_then(|a| a.iter().find(|s| s["Sid"] == "PublishAlerts").cloned());
    let publish = publish.expect("PublishAlerts");
    assert_eq!(as_list(&publish["Resource"]), [format!("arn:aws:sns:{REGION}:{ACCOUNT}:lakeops-alerts")]);

    // Steady state: reads only.
    let before = ctrl.recorder.snapshot();
    reconcile_now(&pipelines, "api-steady-1").await;
    let calls = ctrl.recorder.since(&before);
    assert!(calls.keys().all(|(_, op)| is_read(op)), "a converged ingest API needs no AWS write: {calls:?}");
    let reads: u64 = calls.values().sum();
    eprintln!("steady-state EtlPipeline with ingest API: {reads} reads: {calls:?}");
    assert!(reads <= 5 + 9, "{reads} reads: {calls:?}");

    // A throttle change: one UpdateStage (and the usage plan's own update).
    let before = ctrl.recorder.snapshot();
    let patch =
        serde_json::json!({ "spec": { "ingest": { "api": { "throttle": { "rateLimit": 20, "burstLimit": 40 } } } } });
    pipelines.patch("orders", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patched");
    eventually(TIMEOUT, "throttle applied", || async {
        let s = gw.get_stage().rest_api_id(&id).stage_name("ingest").send().await?;
        let t = s
            .method_settings()
            .and_then(|m| m.get("*/*"))
            .map(|m| (m.throttling_rate_limit(), m.throttling_burst_limit()));
        Ok((t == Some((20.0, 40))).then_some(()))
    })
    .await
    .expect("stage throttled at 20/40");
    wait_ready(&pipelines, "orders").await;
    let writes = writes_since(&ctrl, &before);
    assert_eq!(
        writes,
        [
            ("api gateway".to_string(), "UpdateStage".to_string(), 1),
            ("api gateway".to_string(), "UpdateUsagePlan".to_string(), 1)
        ],
        "a throttle change is one stage update"
    );
    let sent = ctrl.recorder.requests().expect("recorded requests");
    assert_eq!(sent.iter().filter(|r| r.operation == "UpdateStage").count(), 1);

    // Drift: the stage's throttle raised out of band is lowered again, with an event.
    gw.update_stage()
        .rest_api_id(&id)
        .stage_name("ingest")
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/*/*/throttling/rateLimit")
                .value("5000")
                .build(),
        )
        .send()
        .await
        .expect("drifted");
    let before = ctrl.recorder.snapshot();
    reconcile_now(&pipelines, "api-drift-1").await;
    assert_eq!(writes_since(&ctrl, &before), [("api gateway".to_string(), "UpdateStage".to_string(), 1)]);
    let s = gw.get_stage().rest_api_id(&id).stage_name("ingest").send().await.expect("stage");
    let t = s.method_settings().and_then(|m| m.get("*/*")).expect("settings");
    assert_eq!((t.throttling_rate_limit(), t.throttling_burst_limit()), (20.0, 40));
    let k8s_events = api::<k8s_openapi::api::events::v1::Event>(env, &ns).await.expect("events api");
    let drift = eventually(TIMEOUT, "DriftCorrected event", || async {
        let list = k8s_events.list(&Default::default()).await?;
        Ok(list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("DriftCorrected")
                && e.note.as_deref().is_some_and(|n| n.contains("stage throttling"))
        }))
    })
    .await
    .expect("drift reported");
    assert_eq!(drift.regarding.and_then(|r| r.kind).as_deref(), Some("EtlPipeline"));

    crate::common::assert_iam_policy_covers(&ctrl.recorder);

    // Deletion removes the usage plan, the API and its role.
    pipelines.delete("orders", &DeleteParams::default()).await.expect("deleted");
    eventually(TIMEOUT, "pipeline gone", || async { Ok(pipelines.get_opt("orders").await?.is_none().then_some(())) })
        .await
        .expect("finalizer released");
    assert!(gw.get_rest_api().rest_api_id(&id).send().await.is_err(), "API gone");
    let plans = gw.get_usage_plans().send().await.expect("plans");
    assert!(plans.items().iter().all(|p| p.name() != Some(name.as_str())), "usage plan gone");
    assert!(env.iam().get_role().role_name(&api_role).send().await.is_err(), "API role gone");
    ctrl.stop().await.expect("stopped");
}
