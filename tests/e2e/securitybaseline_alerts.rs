//! The SecurityBaseline's alerts, Inspector findings on EtlFunctions and suppressions,
//! against a real API server and moto.
//!
//! What moto shows and what it cannot: the topic, its key, its policy and subscriptions are
//! stored and read back; SNS delivers the controller's own messages to an SQS queue, which
//! the test reads. moto confirms email subscriptions at once (AWS keeps them
//! `PendingConfirmation` until the address confirms: the adapter's unit test and the engine
//! tests on the fake cover that state). Inspector findings exist only when seeded through
//! `POST /moto-api/static/inspector2/findings-results`; moto answers the first ListFindings
//! of a region with the seeded list whatever its filter, so the test seeds the region this
//! test alone uses, before the one function there is created, and also asserts the filter
//! the controller sent (the function's ARN).
use std::time::Duration;

use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use lakeops::aws::clients::{AwsClients, Regional};
use lakeops::aws::recorder::{RequestRecorder, is_read};
use lakeops_crds::names::reason;
use lakeops_crds::{DataLake, EtlFunction, SecurityBaseline};
use lakeops_testenv::TestEnv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{Kind, MOTO_ACCOUNT, RunningController, api, assert_iam_policy_covers, eventually, wait_until};

/// A region no other test uses: moto's seeded findings are per region.
const REGION: &str = "eu-west-3";
const TIMEOUT: Duration = Duration::from_secs(60);
const CVE: &str = "CVE-2023-32681";
/// The smallest valid zip archive (an empty one).
const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fn aws(env: &TestEnv) -> Regional {
    AwsClients::new(env.aws_config(REGION), RequestRecorder::new()).region(REGION)
}

/// `POST path` with a JSON body to moto's plain listener.
async fn moto_post(env: &TestEnv, path: &str, body: &serde_json::Value) -> u16 {
    let addr = env.moto_plain_endpoint.trim_start_matches("http://").to_string();
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("moto");
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("answer");
    answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// A CRITICAL package finding on `function_arn`, as Inspector reports Lambda findings.
fn finding(function_arn: &str) -> serde_json::Value {
    serde_json::json!({
        "findingArn": format!("arn:aws:inspector2:{REGION}:{MOTO_ACCOUNT}:finding/0001"),
        "awsAccountId": MOTO_ACCOUNT,
        "type": "PACKAGE_VULNERABILITY",
        "description": "Requests leaks Proxy-Authorization headers",
        "title": format!("{CVE} - requests"),
        "severity": "CRITICAL",
        "status": "ACTIVE",
        "firstObservedAt": 1_700_000_000,
        "lastObservedAt": 1_700_000_000,
        "resources": [{ "type": "AWS_LAMBDA_FUNCTION", "id": format!("{function_arn}:$LATEST") }],
        "packageVulnerabilityDetails": {
            "vulnerabilityId": CVE,
            "source": "NVD",
            "vulnerablePackages": [{ "name": "requests", "version": "2.25.0" }]
        }
    })
}

fn baseline(name: &str, suppression_expires: &str, function: &str) -> SecurityBaseline {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "SecurityBaseline", "metadata": { "name": name },
        "spec": {
            "region": REGION,
            "alerts": { "emails": ["secops@example.com"], "minimumFindingSeverity": "HIGH" },
            "inspector": { "suppressions": [{
                "vulnerabilityId": "CVE-2024-3651", "functions": [function],
                "reason": "idna is not reachable from the handler", "expires": suppression_expires
            }] }
        }
    }))
    .expect("baseline fixture")
}

/// The lakeops messages the queue received, parsed from SNS's envelope.
async fn messages(sqs: &aws_sdk_sqs::Client, queue: &str) -> Vec<serde_json::Value> {
    let out = sqs
        .receive_message()
        .queue_url(queue)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("ReceiveMessage");
    let mut found = Vec::new();
    for m in out.messages() {
        let body = m.body().unwrap_or_default();
        let envelope: serde_json::Value = serde_json::from_str(body).expect("SNS envelope");
        let inner = envelope["Message"].as_str().expect("Message");
        assert!(!inner.contains("parquet"), "an environment value leaked into an alert: {inner}");
        found.push(serde_json::from_str(inner).expect("lakeops message is JSON"));
        if let Some(handle) = m.receipt_handle() {
            sqs.delete_message().queue_url(queue).receipt_handle(handle).send().await.expect("DeleteMessage");
        }
    }
    found
}

#[tokio::test]
async fn alerts_findings_and_suppressions_converge_publish_deployments_and_deletions_and_cost_no_write_at_rest() {
    let _one = crate::securitybaseline::ONE_CONTROLLER.lock().await;
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("sbl-alerts").await.expect("namespace");
    let aws = aws(env);
    let fn_name = "orders";
    let function_arn = format!("arn:aws:lambda:{REGION}:{MOTO_ACCOUNT}:function:lakeops-{ns}-{fn_name}");
    let seeded = moto_post(
        env,
        "/moto-api/static/inspector2/findings-results",
        &serde_json::json!({ "results": [[finding(&function_arn)]], "account_id": MOTO_ACCOUNT, "region": REGION }),
    )
    .await;
    assert_eq!(seeded, 201, "moto took the seeded finding");

    let ctrl = RunningController::start_with_baselines(env, &ns, Duration::from_secs(600)).await.expect("controller");
    let baselines: Api<SecurityBaseline> = Api::all(env.kube_client().await.expect("client"));
    let name = lakeops_testenv::unique_name("sbl-alerts");
    let scope = format!("{ns}/{fn_name}");
    baselines.create(&PostParams::default(), &baseline(&name, "2099-12-31", &scope)).await.expect("created");
    let b = wait_until(&baselines, &name, "Ready", |r| r.1 == reason::RECONCILED).await;
    let status = b.status.clone().expect("status");

    // The topic: encrypted with the baseline's alert key, TLS only, alarms and rules may publish.
    let topic = format!("arn:aws:sns:{REGION}:{MOTO_ACCOUNT}:lakeops-alerts");
    let alerts = status.alerts.clone().expect("alerts in status");
    assert_eq!(alerts.topic_arn.as_deref(), Some(topic.as_str()));
    assert!(alerts.deployments && alerts.deletions);
    let attributes = aws.sns.topic_attributes(&topic).await.expect("GetTopicAttributes").expect("the topic exists");
    let key =
        aws.kms.describe_key("alias/lakeops/_baseline/alerts").await.expect("DescribeKey").expect("the alert key");
    assert_eq!(attributes.get("KmsMasterKeyId"), Some(&key.arn), "{attributes:?}");
    let policy: serde_json::Value = serde_json::from_str(&attributes["Policy"]).expect("topic policy JSON");
    let statements = policy["Statement"].as_array().expect("statements");
    let deny = statements.iter().find(|s| s["Effect"] == "Deny").expect("a deny");
    assert_eq!(deny["Condition"]["Bool"]["aws:SecureTransport"], "false", "{deny}");
    for service in ["cloudwatch.amazonaws.com", "events.amazonaws.com"] {
        let allow = statements.iter().find(|s| s["Principal"]["Service"] == service).expect(service);
        assert_eq!(allow["Condition"]["StringEquals"]["aws:SourceAccount"], MOTO_ACCOUNT, "{allow}");
        assert!(allow["Condition"]["ArnLike"]["aws:SourceArn"].is_string(), "{allow}");
    }
    let key_policy = aws.kms.get_key_policy(&key.key_id).await.expect("GetKeyPolicy");
    for service in ["cloudwatch.amazonaws.com", "events.amazonaws.com"] {
        assert!(key_policy.contains(service), "the key lets {service} publish encrypted: {key_policy}");
    }
    let subscriptions = aws.sns.subscriptions(&topic).await.expect("ListSubscriptionsByTopic");
    assert!(
        subscriptions.iter().any(|s| s.protocol == "email" && s.endpoint == "secops@example.com"),
        "{subscriptions:?}"
    );
    assert_eq!(alerts.subscriptions.len(), 1);
    assert_eq!(alerts.subscriptions[0].endpoint, "secops@example.com");
    // moto confirms at once; AWS would show PendingConfirmation here.
    assert!(["Confirmed", "PendingConfirmation"].contains(&alerts.subscriptions[0].state.as_str()));

    // EventBridge rules forward findings at or above HIGH to the topic (moto stores rules and
    // targets; it delivers nothing to SNS, so the delivery itself cannot be shown here).
    for (rule, source) in
        [("lakeops-inspector-findings", "aws.inspector2"), ("lakeops-guardduty-findings", "aws.guardduty")]
    {
        let r = aws.events.describe_rule(rule).await.expect("DescribeRule").expect(rule);
        assert!(r.rule.enabled, "{r:?}");
        let pattern: serde_json::Value =
            serde_json::from_str(r.rule.event_pattern.as_deref().expect("a pattern")).expect("JSON");
        assert_eq!(pattern["source"], serde_json::json!([source]));
        let targets = aws.events.list_targets(rule).await.expect("ListTargetsByRule");
        assert_eq!(targets.iter().map(|t| t.arn.as_str()).collect::<Vec<_>>(), [topic.as_str()], "{rule}");
        if source == "aws.inspector2" {
            assert_eq!(pattern["detail"]["severity"], serde_json::json!(["HIGH", "CRITICAL"]));
        } else {
            assert_eq!(pattern["detail"]["severity"][0]["numeric"], serde_json::json!([">=", 7.0]));
        }
    }

    // The suppression is an Inspector filter scoped to the function.
    let filters = aws.inspector.suppression_filters().await.expect("ListFilters");
    let ours: Vec<_> = filters.iter().filter(|f| f.filter.name == "lakeops-CVE-2024-3651").collect();
    assert_eq!(ours.len(), 1, "{filters:?}");
    assert_eq!(ours[0].filter.functions, [format!("lakeops-{ns}-{fn_name}")]);
    assert_eq!(ours[0].filter.reason, "idna is not reachable from the handler");
    assert_eq!(status.suppressions, ["CVE-2024-3651"]);

    // Steady state: reads only.
    let (reads, round) = crate::securitybaseline::steady_round(&ctrl, &baselines, &name).await;
    eprintln!("steady-state round with alerts and a suppression: {reads} reads: {round:?}");
    // The first slice's 18, the alert key (4), the topic (GetTopicAttributes,
    // ListTagsForResource, ListSubscriptionsByTopic), two rules (DescribeRule,
    // ListTagsForResource, ListTargetsByRule each) and ListFilters: 32; the log bucket (8)
    // and the account trail (21).
    assert_eq!(reads, 61, "{round:?}");

    // A queue subscribed to the topic receives what the controller publishes.
    let sqs = aws_sdk_sqs::Client::new(&env.aws_config(REGION));
    let queue = sqs.create_queue().queue_name(format!("{ns}-alerts")).send().await.expect("CreateQueue");
    let queue_url = queue.queue_url().expect("queue url").to_string();
    let queue_arn = format!("arn:aws:sqs:{REGION}:{MOTO_ACCOUNT}:{ns}-alerts");
    aws.sns.subscribe(&topic, "sqs", &queue_arn).await.expect("Subscribe");

    // A lake and a function with a maximum severity: deployed (one message), then refused
    // as VulnerableCode by the seeded CRITICAL finding.
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    let fns = api::<EtlFunction>(env, &ns).await.expect("api");
    let artifacts = format!("{ns}-artifacts");
    crate::common::versioned_bucket(&env.s3(REGION), REGION, &artifacts).await;
    env.s3(REGION)
        .put_object()
        .bucket(&artifacts)
        .key("orders.zip")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(EMPTY_ZIP))
        .send()
        .await
        .expect("package");
    let lake: DataLake = serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "DataLake", "metadata": { "name": "sales" },
        "spec": { "region": REGION, "zones": [{ "name": "raw" }, { "name": "curated" }], "audit": { "trail": false } }
    }))
    .expect("lake fixture");
    lakes.create(&PostParams::default(), &lake).await.expect("lake created");
    let function: EtlFunction = serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "EtlFunction", "metadata": { "name": fn_name },
        "spec": {
            "dataLakeRef": { "name": "sales" },
            "source": { "zone": "raw", "prefix": "in/" },
            "destination": { "zone": "curated", "prefix": "out/" },
            "code": { "s3Bucket": artifacts, "s3Key": "orders.zip" },
            "runtime": "python3.12", "handler": "app.handler",
            "environment": { "OUTPUT_FORMAT": "parquet" },
            "deletionPolicy": "Delete",
            "maximumFindingSeverity": "HIGH"
        }
    }))
    .expect("function fixture");
    fns.create(&PostParams::default(), &function).await.expect("function created");
    let vulnerable = wait_until(&fns, fn_name, "VulnerableCode", |r| r.1 == reason::VULNERABLE_CODE).await;
    let findings = vulnerable.status.as_ref().and_then(|s| s.findings.clone()).expect("findings in status");
    assert_eq!(findings.summary, "1 CRITICAL", "{findings:?}");
    assert_eq!(findings.counts.get("CRITICAL"), Some(&1));
    assert!(findings.worst[0].contains(CVE) && findings.worst[0].contains("requests@2.25.0"), "{findings:?}");
    let (ready, why, message) = vulnerable.ready().expect("Ready condition");
    assert_eq!((ready.as_str(), why.as_str()), ("False", reason::VULNERABLE_CODE));
    assert!(message.contains("maximumFindingSeverity"), "{message}");
    // The controller read them with ListFindings in the function's region (the filter by the
    // function's ARN is pinned by the adapter's unit test: moto does not apply it).
    let sent = ctrl.recorder.requests().expect("recording");
    assert!(sent.iter().any(|r| r.operation == "ListFindings" && r.region.as_deref() == Some(REGION)));

    let deployed = eventually(TIMEOUT, "the deployment message", || async {
        let m = messages(&sqs, &queue_url).await;
        Ok(m.into_iter().find(|m| m["event"] == "FunctionCodeDeployed"))
    })
    .await
    .expect("published");
    assert_eq!((deployed["kind"].as_str(), deployed["name"].as_str()), (Some("EtlFunction"), Some(fn_name)));
    assert_eq!(deployed["namespace"].as_str(), Some(ns.as_str()));
    assert_eq!(deployed["resources"][0].as_str(), Some(function_arn.as_str()));
    assert!(deployed["codeVersion"].is_string(), "{deployed}");

    // Deleting the function deletes AWS resources: one message naming them.
    fns.delete(fn_name, &DeleteParams::default()).await.expect("deleted");
    let deleted = eventually(TIMEOUT, "the deletion message", || async {
        let m = messages(&sqs, &queue_url).await;
        Ok(m.into_iter().find(|m| m["event"] == "ObjectDeleted" && m["kind"] == "EtlFunction"))
    })
    .await
    .expect("published");
    assert_eq!(deleted["name"].as_str(), Some(fn_name));
    let resources: Vec<&str> =
        deleted["resources"].as_array().expect("resources").iter().filter_map(|v| v.as_str()).collect();
    assert!(resources.contains(&function_arn.as_str()), "{deleted}");

    // An expired suppression is removed by the controller.
    let patch = serde_json::json!({ "spec": { "inspector": { "suppressions": [{
        "vulnerabilityId": "CVE-2024-3651", "functions": [scope],
        "reason": "idna is not reachable from the handler", "expires": "2020-01-01"
    }] } } });
    baselines.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await.expect("patched");
    eventually(TIMEOUT, "the expired suppression removed", || async {
        let filters = aws.inspector.suppression_filters().await?;
        Ok((!filters.iter().any(|f| f.filter.name == "lakeops-CVE-2024-3651")).then_some(()))
    })
    .await
    .expect("removed");
    let b = eventually(TIMEOUT, "status without the suppression", || async {
        let b = baselines.get(&name).await?;
        Ok(b.status.as_ref().is_some_and(|s| s.suppressions.is_empty()).then_some(b))
    })
    .await
    .expect("status");
    assert!(b.status.expect("status").alerts.is_some());

    // The lake (deletionPolicy Retain: its resources stay, tagged) going away is one message.
    lakes.delete("sales", &DeleteParams::default()).await.expect("lake deleted");
    let lake_gone = eventually(TIMEOUT, "the lake's deletion message", || async {
        let m = messages(&sqs, &queue_url).await;
        Ok(m.into_iter().find(|m| m["event"] == "ObjectDeleted" && m["kind"] == "DataLake"))
    })
    .await
    .expect("published");
    assert_eq!(lake_gone["deletionPolicy"].as_str(), Some("Retain"), "{lake_gone}");
    baselines.delete(&name, &DeleteParams::default()).await.expect("baseline deleted");
    assert!(aws.sns.topic_attributes(&topic).await.expect("read").is_some(), "the topic stays");
    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stopped");
}

#[tokio::test]
async fn a_lake_that_requires_a_baseline_waits_until_one_is_ready_in_its_region() {
    // A region no other test uses for a baseline (one baseline per region).
    const LAKE_REGION: &str = "ap-northeast-1";
    let _one = crate::securitybaseline::ONE_CONTROLLER.lock().await;
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("sbl-require").await.expect("namespace");
    let ctrl = RunningController::start_with_baselines(env, &ns, Duration::from_secs(600)).await.expect("controller");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    let lake: DataLake = serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "DataLake", "metadata": { "name": "guarded" },
        "spec": { "region": LAKE_REGION, "zones": [{ "name": "raw" }], "audit": { "trail": false },
                  "security": { "requireBaseline": true } }
    }))
    .expect("lake fixture");
    lakes.create(&PostParams::default(), &lake).await.expect("lake created");
    let waiting = wait_until(&lakes, "guarded", "BaselineNotReady", |r| r.1 == reason::BASELINE_NOT_READY).await;
    assert!(waiting.ready().is_some_and(|r| r.2.contains("requireBaseline")), "{:?}", waiting.ready());
    let key_writes = ctrl
        .recorder
        .requests()
        .expect("recording")
        .iter()
        .filter(|r| r.region.as_deref() == Some(LAKE_REGION) && !is_read(&r.operation))
        .count();
    assert_eq!(key_writes, 0, "nothing is created while the lake waits");

    let baselines: Api<SecurityBaseline> = Api::all(env.kube_client().await.expect("client"));
    let name = lakeops_testenv::unique_name("sbl-require");
    let b: SecurityBaseline = serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "SecurityBaseline", "metadata": { "name": name },
        "spec": { "region": LAKE_REGION }
    }))
    .expect("baseline fixture");
    baselines.create(&PostParams::default(), &b).await.expect("created");
    wait_until(&baselines, &name, "Ready", |r| r.1 == reason::RECONCILED).await;
    // The lake looks again every 30 s while it waits.
    wait_until(&lakes, "guarded", "Ready", |r| r.1 == reason::RECONCILED).await;
    baselines.delete(&name, &DeleteParams::default()).await.expect("deleted");
    ctrl.stop().await.expect("stopped");
}
