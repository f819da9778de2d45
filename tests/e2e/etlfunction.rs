//! The EtlFunction reconciler against a real API server and moto: generated role policies,
//! function configuration, the invoke permission and the shared bucket notification
//! document are read back through the AWS SDK; code and configuration changes cost exactly
//! one update each; deletion removes only the function's own entries.
//!
//! Moto cannot run functions (no container runtime) and implements only part of code
//! signing (it stores the ARN given at CreateFunction, but has no
//! PutFunctionCodeSigningConfig): nothing here invokes a function, and the code-signing
//! test asserts on the update request the controller sent and the honest status that follows.
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Event, LambdaFunctionConfiguration, NotificationConfiguration};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use lakeops::aws::clients::AwsClients;
use lakeops::aws::recorder::{RequestRecorder, is_read};
use lakeops::aws::s3::NotificationTarget;
use lakeops_crds::names::reason;
use lakeops_crds::{DataLake, EtlFunction};
use lakeops_testenv::TestEnv;

use crate::common::{Kind, RunningController, api, eventually};

const TIMEOUT: Duration = Duration::from_secs(60);
const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "123456789012";
/// The smallest valid zip archive (an empty one): moto stores the package and hashes it.
const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fn lake(name: &str) -> DataLake {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "DataLake", "metadata": { "name": name },
        "spec": { "region": REGION, "zones": [{ "name": "raw" }, { "name": "curated" }], "audit": { "trail": false } }
    }))
    .expect("lake fixture")
}

fn function(name: &str, artifacts: &str, prefix: &str, extra: serde_json::Value) -> EtlFunction {
    let mut spec = serde_json::json!({
        "dataLakeRef": { "name": "sales" },
        "source": { "zone": "raw", "prefix": prefix, "suffix": ".json" },
        "destination": { "zone": "curated", "prefix": format!("out/{name}/") },
        "code": { "s3Bucket": artifacts, "s3Key": format!("{name}.zip") },
        "runtime": "python3.12",
        "handler": "app.handler",
        "environment": { "OUTPUT_FORMAT": "parquet" },
        "deletionPolicy": "Delete"
    });
    if let (Some(spec), serde_json::Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "EtlFunction", "metadata": { "name": name }, "spec": spec
    }))
    .expect("function fixture")
}

async fn wait_for(fns: &kube::Api<EtlFunction>, name: &str, why: &str) -> EtlFunction {
    crate::common::wait_until(fns, name, why, |r| r.1 == why).await
}

async fn wait_ready(fns: &kube::Api<EtlFunction>, name: &str) -> EtlFunction {
    wait_for(fns, name, reason::RECONCILED).await
}

/// Asks for a reconcile now and waits until it has been handled.
async fn reconcile_now(fns: &kube::Api<EtlFunction>, name: &str, stamp: &str) {
    crate::common::reconcile_now(fns, name, stamp, |f| {
        f.status.as_ref().and_then(|s| s.last_handled_reconcile_at.clone())
    })
    .await;
}

/// A fresh namespace, its APIs, and an artifact bucket holding `packages`.
struct Setup {
    env: &'static TestEnv,
    ns: String,
    lakes: kube::Api<DataLake>,
    fns: kube::Api<EtlFunction>,
    bucket: String,
}

async fn setup(prefix: &str, packages: &[&str]) -> Setup {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace(prefix).await.expect("namespace");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    let fns = api::<EtlFunction>(env, &ns).await.expect("api");
    let bucket = artifacts(env, &ns, packages).await;
    Setup { env, ns, lakes, fns, bucket }
}

/// A versioned bucket the test owns, holding one package per function.
pub(crate) async fn artifacts(env: &TestEnv, ns: &str, names: &[&str]) -> String {
    let s3 = env.s3(REGION);
    let bucket = format!("{ns}-artifacts");
    crate::common::versioned_bucket(&s3, REGION, &bucket).await;
    for name in names {
        upload(env, &bucket, name).await;
    }
    bucket
}

async fn upload(env: &TestEnv, bucket: &str, name: &str) -> String {
    let out = env
        .s3(REGION)
        .put_object()
        .bucket(bucket)
        .key(format!("{name}.zip"))
        .body(ByteStream::from_static(EMPTY_ZIP))
        .send()
        .await
        .expect("package uploaded");
    out.version_id().expect("versioned bucket").to_string()
}

/// Parses an IAM policy document (moto returns it decoded or URL-encoded).
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

#[tokio::test]
async fn functions_converge_with_least_privilege_roles_and_share_the_bucket_notification_document() {
    let Setup { env, ns, lakes, fns, bucket } = setup("etl", &["orders", "customers"]).await;
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");

    // Functions first: they wait for their lake, and converge when it is Ready (watch, not polling).
    let dlq = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:customers-dlq");
    let customers = serde_json::json!({ "deadLetterQueueArn": dlq });
    for (name, prefix, extra) in
        [("orders", "incoming/orders/", serde_json::json!({})), ("customers", "incoming/customers/", customers)]
    {
        fns.create(&PostParams::default(), &function(name, &bucket, prefix, extra)).await.expect("function created");
    }
    let waiting = wait_for(&fns, "orders", reason::DATA_LAKE_NOT_READY).await;
    assert!(Kind::ready(&waiting).is_some_and(|r| r.2.contains("\"sales\" does not exist")), "{:?}", waiting.status);
    lakes.create(&PostParams::default(), &lake("sales")).await.expect("lake created");
    let raw = format!("{ns}-sales-raw");
    // A notification someone else configured on the raw bucket before the functions attach.
    let foreign = LambdaFunctionConfiguration::builder()
        .id("team-audit")
        .lambda_function_arn(format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:team-audit"))
        .events(Event::from("s3:ObjectRemoved:*"))
        .build()
        .expect("foreign entry");
    eventually(TIMEOUT, "raw bucket exists", || async {
        let put = env
            .s3(REGION)
            .put_bucket_notification_configuration()
            .bucket(&raw)
            .notification_configuration(
                NotificationConfiguration::builder().lambda_function_configurations(foreign.clone()).build(),
            )
            .send()
            .await;
        Ok(put.ok())
    })
    .await
    .expect("foreign entry written");

    let orders = wait_ready(&fns, "orders").await;
    wait_ready(&fns, "customers").await;
    let lake = lakes.get("sales").await.expect("lake");
    let key_arn = lake.status.and_then(|s| s.kms_key_arn).expect("lake key");
    let status = orders.status.clone().expect("status");
    let function_name = format!("lakeops-{ns}-orders");
    assert_eq!(
        status.function_arn.as_deref(),
        Some(format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}").as_str())
    );

    // The role: Lambda may assume it for this account only; the inline policy has no
    // wildcard action and exactly the declared prefixes.
    let iam = env.iam();
    let role = iam.get_role().role_name(&function_name).send().await.expect("role").role.expect("role");
    assert_eq!(role.path(), "/lakeops/");
    let trust = policy_json(role.assume_role_policy_document().unwrap_or_default());
    let trust_stmt = &trust["Statement"][0];
    assert_eq!(as_list(&trust_stmt["Principal"]["Service"]), ["lambda.amazonaws.com"]);
    assert_eq!(as_list(&trust_stmt["Condition"]["StringEquals"]["aws:SourceAccount"]), [ACCOUNT]);
    let inline =
        iam.get_role_policy().role_name(&function_name).policy_name("lakeops-etl").send().await.expect("policy");
    let doc = policy_json(inline.policy_document());
    let mut resources = std::collections::BTreeMap::new();
    for st in doc["Statement"].as_array().expect("statements") {
        let actions = as_list(&st["Action"]);
        assert!(actions.iter().all(|a| !a.contains('*')), "wildcard action in {st}");
        resources.insert(st["Sid"].as_str().unwrap_or_default().to_string(), as_list(&st["Resource"]));
    }
    assert_eq!(resources["ReadSourcePrefix"], [format!("arn:aws:s3:::{raw}/incoming/orders/*")]);
    assert_eq!(resources["WriteDestinationPrefix"], [format!("arn:aws:s3:::{ns}-sales-curated/out/orders/*")]);
    assert_eq!(resources["UseLakeKeyThroughS3"], std::slice::from_ref(&key_arn));
    assert!(!resources.contains_key("SendFailedEvents"), "no dead-letter queue, no SQS rights");
    let starred: Vec<&String> = resources.iter().filter(|(_, r)| r.iter().any(|x| x == "*")).map(|(s, _)| s).collect();
    assert_eq!(starred, ["WriteTraces"], "only X-Ray, which has no resource-level permissions, gets *");

    // The function.
    let lambda = env.lambda(REGION);
    let f = lambda.get_function().function_name(&function_name).send().await.expect("function");
    let c = f.configuration().expect("configuration");
    assert_eq!(c.runtime().map(|r| r.as_str()), Some("python3.12"));
    assert_eq!(c.handler(), Some("app.handler"));
    assert_eq!(c.role(), Some(role.arn()));
    assert_eq!((c.memory_size(), c.timeout()), (Some(512), Some(60)));
    assert_eq!(c.kms_key_arn(), Some(key_arn.as_str()), "environment encrypted with the lake key");
    assert_eq!(c.tracing_config().and_then(|t| t.mode()).map(|m| m.as_str()), Some("Active"));
    assert_eq!(
        f.tags().and_then(|t| t.get("lakeops.dev/owner")).map(String::as_str),
        Some(format!("{ns}/orders").as_str())
    );

    // The other function's failed events go to its dead-letter queue, which its role may reach.
    let other = lambda.get_function().function_name(format!("lakeops-{ns}-customers")).send().await.expect("function");
    let target = other.configuration().and_then(|c| c.dead_letter_config()).and_then(|d| d.target_arn());
    assert_eq!(target, Some(dlq.as_str()));
    let inline = iam
        .get_role_policy()
        .role_name(format!("lakeops-{ns}-customers"))
        .policy_name("lakeops-etl")
        .send()
        .await
        .expect("policy");
    let sends = policy_json(inline.policy_document())["Statement"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["Sid"] == "SendFailedEvents").map(|s| as_list(&s["Resource"])));
    assert_eq!(sends, Some(vec![dlq.clone()]));

    // The invoke permission, scoped to the source bucket and the account.
    let policy = lambda.get_policy().function_name(&function_name).send().await.expect("resource policy");
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap_or_default()).expect("json");
    let st = policy["Statement"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["Sid"] == "lakeops-s3-invoke"))
        .expect("our statement");
    assert_eq!(as_list(&st["Principal"]["Service"]), ["s3.amazonaws.com"]);
    assert_eq!(as_list(&st["Condition"]["ArnLike"]["AWS:SourceArn"]), [format!("arn:aws:s3:::{raw}")]);
    assert_eq!(as_list(&st["Condition"]["StringEquals"]["AWS:SourceAccount"]), [ACCOUNT]);

    // The log group: retention and the lake key.
    let groups = env
        .logs(REGION)
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{function_name}"))
        .send()
        .await
        .expect("log groups");
    let group = groups.log_groups().first().expect("log group");
    assert_eq!(
        (group.retention_in_days(), group.kms_key_id()),
        (Some(365), Some(key_arn.as_str())),
        "a year by default"
    );

    // One notification document: both functions' entries and the foreign one.
    let ids = notification_ids(env, &raw).await;
    assert_eq!(ids, [format!("lakeops-{ns}-customers"), format!("lakeops-{ns}-orders"), "team-audit".into()]);

    // Steady state: a reconcile of a converged function reads a handful of things and writes nothing.
    let before = ctrl.recorder.snapshot();
    reconcile_now(&fns, "orders", "steady-1").await;
    let calls = ctrl.recorder.since(&before);
    let writes: Vec<_> = calls.keys().filter(|(_, op)| !is_read(op)).collect();
    assert!(writes.is_empty(), "a converged function needs no AWS write: {calls:?}");
    // Nor one with a dead-letter queue (AWS returns the configuration as it was set).
    let with_dlq = ctrl.recorder.snapshot();
    reconcile_now(&fns, "customers", "steady-1").await;
    let dlq_calls = ctrl.recorder.since(&with_dlq);
    assert!(dlq_calls.keys().all(|(_, op)| is_read(op)), "no write for a converged dead-letter queue: {dlq_calls:?}");
    let reads: u64 = calls.values().sum();
    eprintln!("steady-state EtlFunction reconcile: {reads} reads: {calls:?}");
    // GetFunction, GetPolicy, GetRole, GetRolePolicy, GetBucketNotificationConfiguration,
    // DescribeLogGroups, HeadObject for the unpinned package, and Inspector's ListFindings.
    assert!(reads <= 8, "{reads} reads: {calls:?}");
    assert_eq!(calls.get(&("inspector2".into(), "ListFindings".into())), Some(&1), "{calls:?}");
    assert_eq!(calls.get(&("lambda".into(), "GetFunction".into())), Some(&1), "{calls:?}");

    // Out-of-band drift: a widened role policy and a removed trigger entry are restored.
    let wide = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    iam.put_role_policy()
        .role_name(&function_name)
        .policy_name("lakeops-etl")
        .policy_document(wide)
        .send()
        .await
        .expect("widened");
    env.s3(REGION)
        .put_bucket_notification_configuration()
        .bucket(&raw)
        .notification_configuration(
            NotificationConfiguration::builder().lambda_function_configurations(foreign.clone()).build(),
        )
        .send()
        .await
        .expect("entries removed");
    reconcile_now(&fns, "orders", "drift-1").await;
    reconcile_now(&fns, "customers", "drift-1").await;
    let restored =
        iam.get_role_policy().role_name(&function_name).policy_name("lakeops-etl").send().await.expect("policy");
    assert!(!restored.policy_document().contains("s3:*"), "the widened policy is replaced");
    let ids = notification_ids(env, &raw).await;
    assert_eq!(ids, [format!("lakeops-{ns}-customers"), format!("lakeops-{ns}-orders"), "team-audit".into()]);
    let events = api::<k8s_openapi::api::events::v1::Event>(env, &ns).await.expect("events api");
    let drift = eventually(TIMEOUT, "DriftCorrected event", || async {
        let list = events.list(&Default::default()).await?;
        Ok(list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("DriftCorrected")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("orders")
        }))
    })
    .await
    .expect("drift reported");
    let note = drift.note.unwrap_or_default();
    assert!(note.contains("role permissions") && note.contains("S3 trigger"), "{note}");

    // A new package version: exactly one code update, nothing else written.
    let v2 = upload(env, &bucket, "orders").await;
    let before = ctrl.recorder.snapshot();
    reconcile_now(&fns, "orders", "new-code").await;
    let writes = writes_since(&ctrl, &before);
    assert_eq!(writes, [("lambda".to_string(), "UpdateFunctionCode".to_string(), 1)], "one code update");
    let f = fns.get("orders").await.expect("function");
    assert_eq!(f.status.and_then(|s| s.deployed_code_version).as_deref(), Some(v2.as_str()));

    // More memory: exactly one configuration update, and the code is not sent again.
    let before = ctrl.recorder.snapshot();
    fns.patch("orders", &PatchParams::default(), &Patch::Merge(&serde_json::json!({ "spec": { "memoryMb": 1024 } })))
        .await
        .expect("patched");
    wait_ready(&fns, "orders").await;
    let writes = writes_since(&ctrl, &before);
    assert_eq!(writes, [("lambda".to_string(), "UpdateFunctionConfiguration".to_string(), 1)]);
    let c = lambda.get_function().function_name(&function_name).send().await.expect("function");
    assert_eq!(c.configuration().and_then(|c| c.memory_size()), Some(1024));

    // Deleting one function removes its entry, function, role and log group, and nothing else.
    fns.delete("orders", &DeleteParams::default()).await.expect("deleted");
    eventually(TIMEOUT, "orders gone", || async { Ok(fns.get_opt("orders").await?.is_none().then_some(())) })
        .await
        .expect("finalizer released");
    assert_eq!(notification_ids(env, &raw).await, [format!("lakeops-{ns}-customers"), "team-audit".into()]);
    assert!(lambda.get_function().function_name(&function_name).send().await.is_err(), "function deleted");
    assert!(iam.get_role().role_name(&function_name).send().await.is_err(), "role deleted");
    let customers = format!("lakeops-{ns}-customers");
    assert!(lambda.get_function().function_name(&customers).send().await.is_ok(), "the sibling is untouched");
    let groups = env
        .logs(REGION)
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{function_name}"))
        .send()
        .await
        .expect("log groups");
    assert!(groups.log_groups().is_empty(), "deletionPolicy Delete removes the log group");

    // Moving the sibling's source to another zone moves its trigger: the old bucket loses
    // the entry (it would fire forever), the new one gets it.
    let patch = serde_json::json!({ "spec": { "source": { "zone": "curated" } } });
    fns.patch("customers", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patched");
    wait_ready(&fns, "customers").await;
    assert_eq!(notification_ids(env, &raw).await, ["team-audit".to_string()]);
    assert_eq!(notification_ids(env, &format!("{ns}-sales-curated")).await, std::slice::from_ref(&customers));

    // Turning the trigger off (the function becomes a pipeline step) takes the entry and
    // the invoke permission away: a permission alone would still let the bucket invoke it.
    let patch = serde_json::json!({ "spec": { "source": { "trigger": false } } });
    fns.patch("customers", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patched");
    let customers_fn = format!("lakeops-{ns}-customers");
    eventually(TIMEOUT, "the invoke permission removed", || async {
        let policy = lambda.get_policy().function_name(&customers_fn).send().await;
        let gone = match policy {
            Ok(p) => !p.policy().unwrap_or_default().contains("lakeops-s3-invoke"),
            Err(e) => e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()),
        };
        Ok(gone.then_some(()))
    })
    .await
    .expect("permission removed");
    assert!(notification_ids(env, &format!("{ns}-sales-curated")).await.is_empty());

    crate::common::assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stopped");
}

/// Writes since `before`, as `(service, operation, count)`.
fn writes_since(ctrl: &RunningController, before: &lakeops::aws::recorder::Counts) -> Vec<(String, String, u64)> {
    ctrl.recorder
        .since(before)
        .into_iter()
        .filter(|((_, op), _)| !is_read(op))
        .map(|((svc, op), n)| (svc, op, n))
        .collect()
}

/// The ids of the bucket's Lambda notification entries, read through the controller's S3
/// adapter (which reads moto's answer for an emptied document as no entries).
async fn notification_ids(env: &TestEnv, bucket: &str) -> Vec<String> {
    let aws = AwsClients::new(env.aws_config(REGION), RequestRecorder::new()).region(REGION);
    let n = aws.s3.get_notifications(bucket).await.expect("notification configuration");
    let mut ids: Vec<String> =
        n.entries.into_iter().filter(|e| e.target == NotificationTarget::Lambda).map(|e| e.id).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn an_overlapping_trigger_is_refused_and_the_running_function_keeps_its_trigger() {
    let Setup { env, ns, lakes, fns, bucket } = setup("etl-overlap", &["orders", "everything"]).await;
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");
    lakes.create(&PostParams::default(), &lake("sales")).await.expect("lake");
    fns.create(&PostParams::default(), &function("orders", &bucket, "incoming/orders/", serde_json::json!({})))
        .await
        .expect("created");
    wait_ready(&fns, "orders").await;

    fns.create(&PostParams::default(), &function("everything", &bucket, "incoming/", serde_json::json!({})))
        .await
        .expect("created");
    let refused = wait_for(&fns, "everything", reason::INVALID_SPEC).await;
    let message = Kind::ready(&refused).map(|r| r.2).unwrap_or_default();
    assert!(message.contains("spec.source.prefix") && message.contains("overlaps EtlFunction \"orders\""), "{message}");

    // The refused function created nothing; the running one still holds its trigger.
    let everything = format!("lakeops-{ns}-everything");
    assert!(env.lambda(REGION).get_function().function_name(&everything).send().await.is_err());
    assert_eq!(notification_ids(env, &format!("{ns}-sales-raw")).await, [format!("lakeops-{ns}-orders")]);
    let orders = fns.get("orders").await.expect("orders");
    assert_eq!(Kind::ready(&orders).map(|r| r.0).as_deref(), Some("True"));
    ctrl.stop().await.expect("stopped");
}

#[tokio::test]
async fn code_signing_is_attached_at_creation_and_an_update_the_emulator_lacks_is_reported() {
    let Setup { env, ns, lakes, fns, bucket } = setup("etl-signing", &["signed"]).await;
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");
    lakes.create(&PostParams::default(), &lake("sales")).await.expect("lake");
    let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-0123456789abcdef0");
    fns.create(
        &PostParams::default(),
        &function("signed", &bucket, "incoming/", serde_json::json!({ "codeSigningConfigArn": arn })),
    )
    .await
    .expect("created");

    // CreateFunction carries the config ARN; moto stores it and reports it back.
    wait_ready(&fns, "signed").await;
    let lambda = env.lambda(REGION);
    let name = format!("lakeops-{ns}-signed");
    let attached = lambda.get_function_code_signing_config().function_name(&name).send().await.expect("read back");
    assert_eq!(attached.code_signing_config_arn(), arn);

    // A new config ARN is attached with PutFunctionCodeSigningConfig, which moto does not
    // implement: the request is sent, and status reports the failure instead of Ready.
    let other = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-0fedcba9876543210");
    let patch = serde_json::json!({ "spec": { "codeSigningConfigArn": other } });
    fns.patch("signed", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patched");
    let f = eventually(TIMEOUT, "code signing update attempted", || async {
        let f = fns.get("signed").await?;
        let sent = ctrl.recorder.snapshot().contains_key(&("lambda".into(), "PutFunctionCodeSigningConfig".into()));
        Ok((sent && Kind::ready(&f).is_some_and(|r| r.0 == "False")).then_some(f))
    })
    .await;
    let f = match f {
        Ok(f) => f,
        Err(e) => {
            let last = fns.get("signed").await.ok().and_then(|f| f.status);
            panic!("the update was not sent or not reported: {e}; calls {:?}; last {last:?}", ctrl.recorder.snapshot())
        }
    };
    let message = Kind::ready(&f).map(|r| r.2).unwrap_or_default();
    assert!(message.contains("PutFunctionCodeSigningConfig"), "{message}");
    let created = ctrl.recorder.snapshot().get(&("lambda".into(), "CreateFunction".into())).copied();
    assert_eq!(created, Some(1), "the function is updated, never re-created");

    // Removing the config from the spec detaches it (status remembers what was attached, so
    // the signing config is read although the spec names none): DeleteFunctionCodeSigningConfig
    // is sent; moto lacks it too, and status says so.
    let patch = serde_json::json!({ "spec": { "codeSigningConfigArn": null } });
    fns.patch("signed", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patched");
    eventually(TIMEOUT, "detach attempted", || async {
        let f = fns.get("signed").await?;
        let sent = ctrl.recorder.snapshot().contains_key(&("lambda".into(), "DeleteFunctionCodeSigningConfig".into()));
        let reported =
            Kind::ready(&f).is_some_and(|r| r.0 == "False" && r.2.contains("DeleteFunctionCodeSigningConfig"));
        Ok((sent && reported).then_some(()))
    })
    .await
    .expect("the detach was sent and its failure reported");
    ctrl.stop().await.expect("stopped");
}

/// Plans manifests against moto with reads only.
async fn plan_of(env: &TestEnv, objects: Vec<lakeops::manifests::Object>) -> (String, lakeops::plan::Summary, bool) {
    let recorder = lakeops::aws::recorder::RequestRecorder::new();
    let aws = lakeops::aws::clients::AwsClients::new(env.aws_config(REGION), recorder.clone());
    let docs: Vec<_> = objects
        .into_iter()
        .map(|object| lakeops::manifests::Document { file: "m.yaml".into(), line: 1, object })
        .collect();
    let plans = lakeops::plan::plan(&docs, &aws).await.expect("plan");
    let read_only = recorder.snapshot().keys().all(|(_, op)| is_read(op));
    (lakeops::plan::render_text(&plans), lakeops::plan::Summary::of(&plans), read_only)
}

#[tokio::test]
async fn plan_shows_the_function_to_create_then_nothing_once_converged_then_a_memory_change() {
    let Setup { env, ns, lakes, fns, bucket } = setup("etl-plan", &["orders"]).await;
    let mut lake_doc = lake("sales");
    lake_doc.metadata.namespace = Some(ns.clone());
    let mut fn_doc = function("orders", &bucket, "incoming/", serde_json::json!({}));
    fn_doc.metadata.namespace = Some(ns.clone());
    let docs = |f: &EtlFunction| {
        vec![lakeops::manifests::Object::DataLake(lake_doc.clone()), lakeops::manifests::Object::EtlFunction(f.clone())]
    };

    let (text, _, read_only) = plan_of(env, docs(&fn_doc)).await;
    assert!(read_only, "plan sent a write");
    let name = format!("lakeops-{ns}-orders");
    for line in [
        format!("create role {name} with inline policy lakeops-etl"),
        format!("create log group /aws/lambda/{name}, encrypted with (the new lake key)"),
        format!("create function {name}"),
        format!("bucket {ns}-sales-raw: notification configuration with 1 entries"),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }

    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");
    lakes.create(&PostParams::default(), &lake("sales")).await.expect("lake");
    fns.create(&PostParams::default(), &function("orders", &bucket, "incoming/", serde_json::json!({})))
        .await
        .expect("function");
    wait_ready(&fns, "orders").await;
    ctrl.stop().await.expect("stopped");

    let (text, summary, _) = plan_of(env, docs(&fn_doc)).await;
    assert!(!summary.has_changes(), "a converged lake and function plan nothing:\n{text}");

    fn_doc.spec.memory_mb = 2048;
    let (text, summary, read_only) = plan_of(env, docs(&fn_doc)).await;
    assert!(read_only);
    assert_eq!((summary.create, summary.update), (0, 1), "{text}");
    assert!(text.contains(&format!("function {name}: update configuration (memory MB: 512 -> 2048)")), "{text}");
}
