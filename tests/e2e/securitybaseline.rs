//! The SecurityBaseline against a real API server and moto: GuardDuty, Inspector and Config
//! read back through the controller's own adapters (over moto's HTTPS endpoint); one
//! baseline per region; deletion leaves every service running; existing singletons adopted.
//!
//! Each test uses its own region: these services are per account and region, and moto is
//! shared by every test of the binary. moto accepts a second GuardDuty detector (AWS
//! refuses it), so "one detector" below is lakeops' doing, not the emulator's.
use std::time::Duration;

use kube::Api;
use kube::api::{DeleteParams, PostParams};
use lakeops::aws::clients::{AwsClients, Regional};
use lakeops::aws::config::Recorder;
use lakeops::aws::guardduty::{DetectorSettings, FEATURES, LAMBDA_NETWORK_LOGS};
use lakeops::aws::inspector::AccountScanning;
use lakeops::aws::recorder::{RequestRecorder, is_read};
use lakeops_crds::SecurityBaseline;
use lakeops_crds::names::reason;
use lakeops_testenv::TestEnv;

use crate::common::{Kind, MOTO_ACCOUNT, RunningController, assert_iam_policy_covers, eventually, wait_until};

/// One baseline controller at a time: every one watches every SecurityBaseline in the
/// cluster, and two controllers without leader election would both create what is missing.
pub(crate) static ONE_CONTROLLER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn manifest(name: &str, region: &str) -> SecurityBaseline {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "SecurityBaseline", "metadata": { "name": name },
        "spec": { "region": region, "guardDuty": { "findingPublishingFrequency": "FIFTEEN_MINUTES" } }
    }))
    .expect("fixture")
}

fn aws(env: &TestEnv, region: &str) -> Regional {
    AwsClients::new(env.aws_config(region), RequestRecorder::new()).region(region)
}

async fn baselines(env: &TestEnv) -> Api<SecurityBaseline> {
    Api::all(env.kube_client().await.expect("client"))
}

async fn wait_reason(api: &Api<SecurityBaseline>, name: &str, why: &str) -> SecurityBaseline {
    wait_until(api, name, why, |r| r.1 == why).await
}

async fn enabled_and_recording(aws: &Regional) -> (Vec<String>, AccountScanning, bool) {
    let detectors = aws.guardduty.list_detectors().await.expect("ListDetectors");
    let inspector = aws.inspector.account_status(MOTO_ACCOUNT).await.expect("BatchGetAccountStatus");
    let recorders = aws.config.recorders().await.expect("DescribeConfigurationRecorders");
    let recording = match recorders.first() {
        Some(r) => aws.config.is_recording(&r.name).await.expect("DescribeConfigurationRecorderStatus"),
        None => false,
    };
    (detectors, inspector, recording)
}

/// One full round of a converged baseline: asserts it wrote nothing, returns its reads.
pub(crate) async fn steady_round(
    ctrl: &RunningController,
    api: &Api<SecurityBaseline>,
    name: &str,
) -> (u64, lakeops::aws::recorder::Counts) {
    let before = ctrl.recorder.snapshot();
    crate::common::reconcile_now(api, name, "steady-1", |o| {
        o.status.as_ref().and_then(|s| s.last_handled_reconcile_at.clone())
    })
    .await;
    let round = ctrl.recorder.since(&before);
    let writes: Vec<_> = round.keys().filter(|(_, op)| !is_read(op)).collect();
    assert!(writes.is_empty(), "a converged baseline wrote: {writes:?}; the round: {round:?}");
    (round.values().sum(), round)
}

fn enabled() -> AccountScanning {
    AccountScanning::States { lambda: Some("ENABLED".into()), lambda_code: Some("ENABLED".into()) }
}

#[tokio::test]
async fn a_baseline_converges_is_alone_in_its_region_costs_no_write_at_rest_and_its_deletion_stops_nothing() {
    const REGION: &str = "ap-southeast-2";
    let _one = ONE_CONTROLLER.lock().await;
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("sbl").await.expect("namespace");
    let ctrl = RunningController::start_with_baselines(env, &ns, Duration::from_secs(600)).await.expect("controller");
    let api = baselines(env).await;
    let name = lakeops_testenv::unique_name("sbl");
    api.create(&PostParams::default(), &manifest(&name, REGION)).await.expect("created");
    let b = wait_reason(&api, &name, reason::RECONCILED).await;
    let status = b.status.clone().expect("status");
    let aws = aws(env, REGION);

    // GuardDuty: one detector, enabled, the full feature list with Lambda Protection on.
    let ids = aws.guardduty.list_detectors().await.expect("ListDetectors");
    assert_eq!(ids.len(), 1, "{ids:?}");
    let g = status.guard_duty.clone().expect("detector recorded");
    assert_eq!((g.detector_id.as_deref(), g.adopted), (Some(ids[0].as_str()), false));
    let d = aws.guardduty.get_detector(&ids[0]).await.expect("GetDetector").expect("detector");
    assert!(d.settings.enabled);
    assert_eq!(d.settings.finding_publishing_frequency, "FIFTEEN_MINUTES");
    let mut sent: Vec<&str> = d.settings.features.keys().map(String::as_str).collect();
    sent.sort_unstable();
    let mut all = FEATURES.to_vec();
    all.sort_unstable();
    assert_eq!(sent, all, "every feature is named (unnamed ones default to on)");
    assert_eq!(d.settings.features.get(LAMBDA_NETWORK_LOGS), Some(&true));
    assert_eq!(d.settings.features.values().filter(|on| **on).count(), 1, "{:?}", d.settings.features);
    assert_eq!(d.tags.get(lakeops_crds::names::tag::OWNER).map(String::as_str), Some(format!("/{name}").as_str()));

    // Inspector: LAMBDA and LAMBDA_CODE enabled for the account.
    assert_eq!(aws.inspector.account_status(MOTO_ACCOUNT).await.expect("status"), enabled());
    let i = status.inspector.clone().expect("inspector recorded");
    assert_eq!((i.lambda.as_deref(), i.lambda_code.as_deref()), (Some("ENABLED"), Some("ENABLED")));

    // Config: recording every supported type, global ones included, to the encrypted bucket.
    let recorders = aws.config.recorders().await.expect("recorders");
    assert_eq!(recorders.len(), 1);
    assert!(recorders[0].all_supported && recorders[0].include_global_resources, "{:?}", recorders[0]);
    assert!(aws.config.is_recording(&recorders[0].name).await.expect("recorder status"));
    let channels = aws.config.channels().await.expect("channels");
    let bucket = format!("lakeops-config-{MOTO_ACCOUNT}-{REGION}");
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].bucket, bucket);
    let encryption = aws.s3.get_bucket_encryption(&bucket).await.expect("encryption").expect("configured");
    assert_eq!(encryption.algorithm, "aws:kms");
    assert_eq!(channels[0].kms_key_arn, encryption.kms_key_id, "Config delivers with the bucket's key");
    let policy = aws.s3.get_bucket_policy(&bucket).await.expect("policy").expect("a bucket policy");
    assert!(policy.contains("aws:SecureTransport") && policy.contains("config.amazonaws.com"), "{policy}");
    let c = status.config.clone().expect("config recorded");
    assert!(c.recording && !c.adopted);

    // Steady state: a full round sends reads only.
    let (reads, round) = steady_round(&ctrl, &api, &name).await;
    // ListDetectors, GetDetector, BatchGetAccountStatus, 3 Config reads, the key (4) and
    // the bucket (8).
    assert_eq!(reads, 18, "{round:?}");
    eprintln!("steady-state round: {reads} reads: {round:?}");

    // A second baseline for the same account and region is a Conflict, and changes nothing.
    let second = lakeops_testenv::unique_name("sbl-second");
    api.create(&PostParams::default(), &manifest(&second, REGION)).await.expect("created");
    let conflict = wait_reason(&api, &second, reason::CONFLICT).await;
    let message = conflict.ready().map(|r| r.2).unwrap_or_default();
    assert!(message.contains(&name), "{message}");
    assert_eq!(aws.guardduty.list_detectors().await.expect("ListDetectors"), ids, "still one detector");

    // Deleting a baseline leaves every service running.
    for n in [&second, &name] {
        api.delete(n, &DeleteParams::default()).await.expect("deleted");
        eventually(Duration::from_secs(30), "the baseline gone", || async {
            Ok(api.get_opt(n).await?.is_none().then_some(()))
        })
        .await
        .expect("gone");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (detectors, inspector, recording) = enabled_and_recording(&aws).await;
    assert_eq!(detectors, ids);
    let d = aws.guardduty.get_detector(&ids[0]).await.expect("GetDetector").expect("detector");
    assert!(d.settings.enabled);
    assert_eq!(inspector, enabled());
    assert!(recording);
    assert!(aws.s3.get_bucket_encryption(&bucket).await.is_ok(), "the delivery bucket stays");
    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stopped");
}

#[tokio::test]
async fn an_existing_detector_and_recorder_are_adopted_never_duplicated() {
    const REGION: &str = "ca-central-1";
    let _one = ONE_CONTROLLER.lock().await;
    let env = lakeops_testenv::shared().await;
    let aws = aws(env, REGION);
    // Someone else's detector without Lambda Protection, and a recorder of another name.
    let theirs = DetectorSettings {
        enabled: true,
        finding_publishing_frequency: "SIX_HOURS".into(),
        features: [("S3_DATA_EVENTS".to_string(), true)].into(),
    };
    let existing = aws.guardduty.create_detector(&theirs, &Default::default()).await.expect("detector");
    let recorder = Recorder {
        name: "aws-controltower-BaselineConfigRecorder".into(),
        role_arn: format!("arn:aws:iam::{MOTO_ACCOUNT}:role/ct-config"),
        all_supported: true,
        include_global_resources: false,
    };
    aws.config.put_recorder(&recorder).await.expect("recorder");

    let ns = env.create_namespace("sbl-adopt").await.expect("namespace");
    let ctrl = RunningController::start_with_baselines(env, &ns, Duration::from_secs(600)).await.expect("controller");
    let api = baselines(env).await;
    let name = lakeops_testenv::unique_name("sbl-adopt");
    api.create(&PostParams::default(), &manifest(&name, REGION)).await.expect("created");
    let b = wait_reason(&api, &name, reason::RECONCILED).await;
    let status = b.status.clone().expect("status");

    // moto would have accepted a second detector; lakeops found the first instead.
    assert_eq!(aws.guardduty.list_detectors().await.expect("ListDetectors"), std::slice::from_ref(&existing));
    let creates = ctrl
        .recorder
        .requests()
        .expect("recording")
        .iter()
        .filter(|r| r.operation == "CreateDetector" && r.region.as_deref() == Some(REGION))
        .count();
    assert_eq!(creates, 0);
    let g = status.guard_duty.clone().expect("recorded");
    assert_eq!((g.detector_id.as_deref(), g.adopted), (Some(existing.as_str()), true));
    let d = aws.guardduty.get_detector(&existing).await.expect("GetDetector").expect("detector");
    assert_eq!(d.settings.features.get(LAMBDA_NETWORK_LOGS), Some(&true), "Lambda Protection added");
    assert_eq!(d.settings.features.get("S3_DATA_EVENTS"), Some(&true), "what was on stays on");

    // The recorder keeps its name (and its role), records global resources now, records.
    let recorders = aws.config.recorders().await.expect("recorders");
    assert_eq!(recorders.len(), 1, "{recorders:?}");
    assert_eq!(
        (recorders[0].name.as_str(), recorders[0].role_arn.as_str()),
        (recorder.name.as_str(), recorder.role_arn.as_str())
    );
    assert!(recorders[0].include_global_resources);
    assert!(aws.config.is_recording(&recorder.name).await.expect("status"));
    let c = status.config.clone().expect("recorded");
    assert_eq!((c.recorder.as_deref(), c.adopted, c.recording), (Some(recorder.name.as_str()), true, true));

    api.delete(&name, &DeleteParams::default()).await.expect("deleted");
    ctrl.stop().await.expect("stopped");
}

#[tokio::test]
async fn a_lake_trail_keeps_management_events_until_a_ready_baseline_records_them_and_obeys_the_override() {
    // A region no other test uses for a baseline (one baseline per region).
    const REGION: &str = "sa-east-1";
    let _one = ONE_CONTROLLER.lock().await;
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("sbl-trail").await.expect("namespace");
    let ctrl = RunningController::start_with_baselines(env, &ns, Duration::from_secs(600)).await.expect("controller");
    let api = baselines(env).await;
    let name = lakeops_testenv::unique_name("sbl");
    api.create(&PostParams::default(), &manifest(&name, REGION)).await.expect("created");
    wait_reason(&api, &name, reason::RECONCILED).await;

    let lakes = crate::common::api::<lakeops_crds::DataLake>(env, &ns).await.expect("api");
    let lake: lakeops_crds::DataLake = serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "DataLake", "metadata": { "name": "sales" },
        "spec": { "region": REGION, "zones": [{ "name": "raw" }], "audit": { "trail": true } }
    }))
    .expect("fixture");
    lakes.create(&PostParams::default(), &lake).await.expect("lake created");
    wait_until(&lakes, "sales", "the DataLake Ready", |r| r.0 == "True").await;

    let ct = aws_sdk_cloudtrail::Client::new(&env.aws_config(REGION));
    let trail = format!("lakeops-{ns}-sales");
    let categories = || async {
        let s = ct.get_event_selectors().trail_name(&trail).send().await.expect("selectors");
        let mut c: Vec<String> = s
            .advanced_event_selectors()
            .iter()
            .flat_map(|s| s.field_selectors())
            .filter(|f| f.field() == "eventCategory")
            .flat_map(|f| f.equals().to_vec())
            .collect();
        c.sort();
        c
    };
    // The baseline kind has no account trail yet (SecurityBaseline::records_management_events):
    // a Ready baseline alone does not take management events off the lake trail.
    assert_eq!(categories().await, ["Data", "Data", "Management"]);

    // spec.audit.managementEvents: false overrides, in place: data events only.
    let patch = serde_json::json!({ "spec": { "audit": { "managementEvents": false } } });
    lakes.patch("sales", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.expect("patched");
    eventually(Duration::from_secs(60), "management events off", || async {
        Ok((categories().await == ["Data", "Data"]).then_some(()))
    })
    .await
    .expect("override applied");
    assert_iam_policy_covers(&ctrl.recorder);
    lakes.delete("sales", &DeleteParams::default()).await.expect("lake deleted");
    api.delete(&name, &DeleteParams::default()).await.expect("deleted");
    ctrl.stop().await.expect("stopped");
}
