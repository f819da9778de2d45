//! The SecurityBaseline against a real API server and moto: GuardDuty, Inspector, Config and
//! the account trail with its CIS filters and alarms read back through the controller's own
//! adapters and the SDKs (over moto's HTTPS endpoint); one baseline per region; deletion
//! leaves every service running; existing singletons adopted; lake trails leave management
//! events to a Ready baseline's trail.
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
    // the bucket (8), the log bucket (8), and the account trail (21: its key 4, bucket 8,
    // group 1, role 2, GetTrail, GetEventSelectors, GetTrailStatus, ListAliases,
    // DescribeMetricFilters, DescribeAlarms).
    assert_eq!(reads, 47, "{round:?}");
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

    // No baseline yet: the lake trail records management events itself.
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
    let becomes = |want: &'static [&'static str], what: &'static str| {
        let categories = &categories;
        async move {
            eventually(Duration::from_secs(60), what, || async { Ok((categories().await == want).then_some(())) })
                .await
                .expect(what)
        }
    };
    assert_eq!(categories().await, ["Data", "Data", "Management"]);

    // A baseline whose account trail converges: once it is Ready the lake re-converges on
    // its own (the baselines' watch; no resync, no annotation) and drops management events.
    let name = lakeops_testenv::unique_name("sbl");
    api.create(&PostParams::default(), &manifest(&name, REGION)).await.expect("created");
    let b = wait_reason(&api, &name, reason::RECONCILED).await;
    assert!(b.records_management_events(), "{:?}", b.status);
    becomes(&["Data", "Data"], "management events left to the account trail").await;

    // spec.audit.managementEvents: true overrides, in place.
    let set = |v: serde_json::Value| serde_json::json!({ "spec": { "audit": { "managementEvents": v } } });
    let patch = |v| {
        let lakes = lakes.clone();
        async move {
            let p = kube::api::Patch::Merge(set(v));
            lakes.patch("sales", &kube::api::PatchParams::default(), &p).await.expect("patched");
        }
    };
    patch(serde_json::json!(true)).await;
    becomes(&["Data", "Data", "Management"], "the override keeps management events").await;
    patch(serde_json::Value::Null).await;
    becomes(&["Data", "Data"], "the override removed").await;

    // The baseline goes away: nothing records management events for the lake any more, so
    // its trail takes them back.
    api.delete(&name, &DeleteParams::default()).await.expect("deleted");
    becomes(&["Data", "Data", "Management"], "management events back on the lake trail").await;
    assert_iam_policy_covers(&ctrl.recorder);
    lakes.delete("sales", &DeleteParams::default()).await.expect("lake deleted");
    ctrl.stop().await.expect("stopped");
}

/// `(pattern by filter name, alarms by name)` of the account trail's group, read through the SDKs.
async fn cis_filters_and_alarms(
    env: &TestEnv,
    region: &str,
    group: &str,
) -> (std::collections::BTreeMap<String, String>, Vec<aws_sdk_cloudwatch::types::MetricAlarm>) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&env.aws_config(region));
    let filters = logs.describe_metric_filters().log_group_name(group).send().await.expect("DescribeMetricFilters");
    let patterns = filters
        .metric_filters()
        .iter()
        .map(|f| (f.filter_name().unwrap_or_default().to_string(), f.filter_pattern().unwrap_or_default().to_string()))
        .collect();
    let cw = aws_sdk_cloudwatch::Client::new(&env.aws_config(region));
    let alarms = cw.describe_alarms().alarm_name_prefix("lakeops-cis-").send().await.expect("DescribeAlarms");
    (patterns, alarms.metric_alarms().to_vec())
}

#[tokio::test]
async fn the_account_trail_records_management_events_everywhere_with_the_cis_alarms_on_the_topic_and_leaves_a_foreign_trail_alone()
 {
    const REGION: &str = "eu-north-1";
    let _one = ONE_CONTROLLER.lock().await;
    let env = lakeops_testenv::shared().await;
    let aws = aws(env, REGION);
    // A lake key of the region (its alias is what a DataLake gives its key) and someone
    // else's trail, with its own bucket.
    let kms = aws_sdk_kms::Client::new(&env.aws_config(REGION));
    let lake_key = kms.create_key().send().await.expect("CreateKey").key_metadata.expect("key").arn.expect("arn");
    kms.create_alias().alias_name("alias/lakeops/team-z/sales").target_key_id(&lake_key).send().await.expect("alias");
    let s3 = env.s3(REGION);
    let theirs = lakeops_testenv::unique_name("org-trail");
    crate::common::versioned_bucket(&s3, REGION, &theirs).await;
    let ct = aws_sdk_cloudtrail::Client::new(&env.aws_config(REGION));
    ct.create_trail().name(&theirs).s3_bucket_name(&theirs).send().await.expect("their trail");
    let before = ct.get_trail().name(&theirs).send().await.expect("GetTrail").trail;

    let ns = env.create_namespace("sbl-account-trail").await.expect("namespace");
    let ctrl = RunningController::start_with_baselines(env, &ns, Duration::from_secs(600)).await.expect("controller");
    let api = baselines(env).await;
    let name = lakeops_testenv::unique_name("sbl-trail");
    let mut b = manifest(&name, REGION);
    b.spec.alerts = serde_json::from_value(serde_json::json!({ "emails": ["secops@example.com"] })).expect("alerts");
    b.spec.audit_trail.log_retention_days = 400;
    api.create(&PostParams::default(), &b).await.expect("created");
    let b = wait_reason(&api, &name, reason::RECONCILED).await;
    let status = b.status.clone().expect("status").audit_trail.expect("the account trail in status");

    // The trail: multi-region, management events, validation, the trail key, its bucket and group.
    let trail_name = format!("lakeops_account-{REGION}");
    let t = ct.get_trail().name(&trail_name).send().await.expect("GetTrail").trail.expect("the account trail");
    assert_eq!(t.is_multi_region_trail, Some(true));
    assert_eq!(t.log_file_validation_enabled, Some(true));
    assert_eq!(t.include_global_service_events, Some(true));
    let trail_key = aws.kms.describe_key("alias/lakeops/_baseline/trail").await.expect("DescribeKey").expect("key");
    assert!(t.kms_key_id.as_deref().is_some_and(|k| k.ends_with(&trail_key.key_id)), "{t:?}");
    let bucket = format!("lakeops-trail-{MOTO_ACCOUNT}-{REGION}");
    assert_eq!(t.s3_bucket_name.as_deref(), Some(bucket.as_str()));
    let group = format!("/aws/cloudtrail/{trail_name}");
    assert!(
        t.cloud_watch_logs_log_group_arn.as_deref().is_some_and(|a| a.contains(&format!("log-group:{group}"))),
        "{t:?}"
    );
    assert!(t.cloud_watch_logs_role_arn.as_deref().is_some_and(|a| a.contains(":role/lakeops/")), "{t:?}");
    assert_eq!(status.trail_arn, t.trail_arn);
    assert!(status.management_events && !status.adopted);
    let selectors = ct.get_event_selectors().trail_name(&trail_name).send().await.expect("GetEventSelectors");
    let management = selectors
        .advanced_event_selectors()
        .iter()
        .any(|s| s.field_selectors().iter().any(|f| f.field() == "eventCategory" && f.equals() == ["Management"]));
    assert!(management, "{selectors:?}");
    let logging = ct.get_trail_status().name(&trail_name).send().await.expect("GetTrailStatus");
    assert_eq!(logging.is_logging, Some(true));
    // The bucket: SSE-KMS with the trail key, TLS only, CloudTrail by SourceArn, versioned,
    // private, access-logged. (moto delivers no log files: the configuration is what is shown.)
    let encryption = aws.s3.get_bucket_encryption(&bucket).await.expect("encryption").expect("configured");
    assert_eq!(
        (encryption.algorithm.as_str(), encryption.kms_key_id.as_deref()),
        ("aws:kms", Some(trail_key.arn.as_str()))
    );
    let policy = aws.s3.get_bucket_policy(&bucket).await.expect("policy").expect("a policy");
    assert!(policy.contains("aws:SecureTransport") && policy.contains("cloudtrail.amazonaws.com"), "{policy}");
    assert!(policy.contains(&format!("trail/{trail_name}")), "CloudTrail by SourceArn: {policy}");
    assert_eq!(crate::common::versioning(env, REGION, &bucket).await.as_deref(), Some("Enabled"));
    let logging = aws.s3.get_bucket_logging(&bucket).await.expect("logging").expect("access-logged");
    assert_eq!(logging.target_bucket, format!("lakeops-logs-{MOTO_ACCOUNT}-{REGION}"));
    // The group: encrypted with the trail key, kept 400 days.
    let g = aws.logs.describe_log_group(&group).await.expect("DescribeLogGroups").expect("the group");
    assert_eq!((g.retention_days, g.kms_key_id.as_deref()), (Some(400), Some(trail_key.arn.as_str())));

    // 14 CIS filters with Security Hub's exact patterns, one for the lake key; 15 alarms on the topic.
    let (patterns, alarms) = cis_filters_and_alarms(env, REGION, &group).await;
    assert_eq!(patterns.len(), 15, "{patterns:?}");
    for c in lakeops::reconcile::securitybaseline::cis::CIS_FILTERS {
        assert_eq!(
            patterns.get(&format!("lakeops-cis-{}", c.slug)).map(String::as_str),
            Some(c.pattern),
            "{}",
            c.control
        );
    }
    let lake_key_filter = &patterns["lakeops-cis-lake-key-disable-or-deletion"];
    assert!(
        lake_key_filter.contains(&lake_key) && lake_key_filter.contains("ScheduleKeyDeletion"),
        "{lake_key_filter}"
    );
    assert_eq!(alarms.len(), 15, "{alarms:?}");
    let topic = format!("arn:aws:sns:{REGION}:{MOTO_ACCOUNT}:lakeops-alerts");
    for a in &alarms {
        assert_eq!(a.alarm_actions(), std::slice::from_ref(&topic), "{a:?}");
        assert_eq!((a.period(), a.threshold(), a.evaluation_periods()), (Some(300), Some(1.0), Some(1)), "{a:?}");
        assert_eq!(a.namespace(), Some("lakeops/CIS"));
    }
    assert_eq!(status.alarms, 15);

    // Someone else's trail is exactly as it was.
    assert_eq!(ct.get_trail().name(&theirs).send().await.expect("GetTrail").trail, before);

    // Steady state: reads only.
    let (reads, round) = steady_round(&ctrl, &api, &name).await;
    eprintln!("steady-state round with the account trail and alerts: {reads} reads: {round:?}");
    for op in ["DescribeMetricFilters", "DescribeAlarms", "ListAliases", "GetTrail"] {
        let n: u64 = round.iter().filter(|((_, o), _)| o == op).map(|(_, n)| n).sum();
        assert_eq!(n, 1, "{op} once per round: {round:?}");
    }
    // The first slice's 18, the log bucket (8), the alerts (13), the trail (21).
    assert_eq!(reads, 60, "{round:?}");

    // A lake made afterwards re-queues the baseline once Ready: its key joins the lake-key filter.
    let lakes = crate::common::api::<lakeops_crds::DataLake>(env, &ns).await.expect("api");
    let lake: lakeops_crds::DataLake = serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "DataLake", "metadata": { "name": "late" },
        "spec": { "region": REGION, "zones": [{ "name": "raw" }] }
    }))
    .expect("fixture");
    lakes.create(&PostParams::default(), &lake).await.expect("lake created");
    let late = wait_until(&lakes, "late", "the DataLake Ready", |r| r.0 == "True").await;
    let late_key = late.status.and_then(|s| s.kms_key_arn).expect("the lake key");
    eventually(Duration::from_secs(45), "the new lake key in the lake-key filter", || async {
        let (patterns, _) = cis_filters_and_alarms(env, REGION, &group).await;
        Ok(patterns["lakeops-cis-lake-key-disable-or-deletion"].contains(&late_key).then_some(()))
    })
    .await
    .expect("the baseline follows the region's lakes");
    assert_iam_policy_covers(&ctrl.recorder);
    lakes.delete("late", &DeleteParams::default()).await.expect("lake deleted");

    // Deleting the baseline leaves the trail logging and the alarms in place.
    api.delete(&name, &DeleteParams::default()).await.expect("deleted");
    eventually(Duration::from_secs(30), "the baseline gone", || async {
        Ok(api.get_opt(&name).await?.is_none().then_some(()))
    })
    .await
    .expect("gone");
    let logging = ct.get_trail_status().name(&trail_name).send().await.expect("GetTrailStatus");
    assert_eq!(logging.is_logging, Some(true));
    assert_eq!(cis_filters_and_alarms(env, REGION, &group).await.1.len(), 15);
    ctrl.stop().await.expect("stopped");
}
