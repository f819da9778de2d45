//! The DataLake reconciler against a real API server and moto: every baseline property is
//! read back through the AWS SDK, drift is corrected, deletion keeps data, ownership is
//! respected, and a crash after any AWS call never duplicates a key.
use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use lakeops::aws::recorder::{RequestRecorder, is_read};
use lakeops_crds::DataLake;
use lakeops_crds::common::find_condition;
use lakeops_crds::names::{annotation, condition, reason, tag};
use lakeops_testenv::TestEnv;

use crate::common::{RunningController, api, assert_iam_policy_covers, eventually, put_encrypted};

const TIMEOUT: Duration = Duration::from_secs(60);
const REGION: &str = "eu-west-1";

fn lake_manifest(name: &str, extra: serde_json::Value) -> DataLake {
    let mut spec = serde_json::json!({
        "region": REGION,
        "zones": [{ "name": "raw" }, { "name": "curated", "lifecycle": { "noncurrentVersionExpirationDays": 30 } }],
        "catalog": { "tables": [{ "name": "runs", "partitionKey": { "name": "id", "type": "S" }, "ttlAttribute": "expiresAt" }] },
        "tags": { "team": "e2e" }
    });
    if let (Some(spec), serde_json::Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "DataLake", "metadata": { "name": name }, "spec": spec
    }))
    .expect("fixture")
}

async fn wait_ready(lakes: &kube::Api<DataLake>, name: &str) -> DataLake {
    crate::common::wait_until(lakes, name, "Ready=True", |r| r.0 == "True").await
}

async fn wait_reason(lakes: &kube::Api<DataLake>, name: &str, why: &str) -> String {
    eventually(TIMEOUT, why, || async {
        let l = lakes.get(name).await?;
        Ok(l.status
            .as_ref()
            .and_then(|s| find_condition(&s.conditions, condition::READY))
            .filter(|c| c.reason == why)
            .map(|c| c.message.clone()))
    })
    .await
    .unwrap_or_else(|e| panic!("{name} never showed {why}: {e}"))
}

/// Asks for a reconcile now and waits until it has been handled.
async fn reconcile_now(lakes: &kube::Api<DataLake>, name: &str, stamp: &str) {
    crate::common::reconcile_now(lakes, name, stamp, |o| {
        o.status.as_ref().and_then(|s| s.last_handled_reconcile_at.clone())
    })
    .await;
}

struct Setup {
    env: &'static TestEnv,
    ns: String,
    lakes: kube::Api<DataLake>,
    ctrl: RunningController,
}

async fn setup(prefix: &str) -> Setup {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace(prefix).await.expect("namespace");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");
    Setup { env, ns, lakes, ctrl }
}

#[tokio::test]
async fn a_lake_converges_to_every_baseline_property_in_aws() {
    let Setup { env, ns, lakes, ctrl } = setup("dl-converge").await;
    lakes.create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({}))).await.expect("created");
    let lake = wait_ready(&lakes, "sales").await;
    let status = lake.status.clone().expect("status");
    let prefix = format!("{ns}-sales");
    assert_eq!(status.bucket_prefix.as_deref(), Some(prefix.as_str()));
    let key_arn = status.kms_key_arn.clone().expect("key recorded");

    // The key: customer-managed, rotating, policy naming only the account root, aliased.
    let kms = env.kms(REGION);
    let key = kms.describe_key().key_id(format!("alias/lakeops/{ns}/sales")).send().await.expect("alias resolves");
    let meta = key.key_metadata().expect("metadata");
    assert_eq!(meta.arn(), Some(key_arn.as_str()));
    assert_eq!(meta.key_manager().map(|m| m.as_str()), Some("CUSTOMER"));
    let rotation = kms.get_key_rotation_status().key_id(meta.key_id()).send().await.expect("rotation");
    assert!(rotation.key_rotation_enabled());
    let policy = kms.get_key_policy().key_id(meta.key_id()).policy_name("default").send().await.expect("policy");
    let policy: serde_json::Value = serde_json::from_str(policy.policy().unwrap_or_default()).expect("json");
    // The account root administers the key; services (CloudTrail, CloudWatch Logs) only
    // under conditions naming this lake's trail or its namespace's function log groups.
    for s in policy["Statement"].as_array().expect("statements") {
        let principal = s["Principal"].to_string();
        assert!(!principal.contains("\"*\""), "{principal}");
        assert!(principal.contains(":root") || (principal.contains("Service") && s.get("Condition").is_some()), "{s}");
    }

    let s3 = env.s3(REGION);
    for zone in ["raw", "curated"] {
        let bucket = format!("{prefix}-{zone}");
        let enc = s3.get_bucket_encryption().bucket(&bucket).send().await.expect("encryption");
        let rule = &enc.server_side_encryption_configuration().expect("config").rules()[0];
        let default = rule.apply_server_side_encryption_by_default().expect("default");
        assert_eq!(default.sse_algorithm().as_str(), "aws:kms");
        assert_eq!(default.kms_master_key_id(), Some(key_arn.as_str()));
        assert_eq!(rule.bucket_key_enabled(), Some(true));
        let pab = s3.get_public_access_block().bucket(&bucket).send().await.expect("pab");
        let pab = pab.public_access_block_configuration().expect("pab config");
        assert_eq!(
            (
                pab.block_public_acls(),
                pab.ignore_public_acls(),
                pab.block_public_policy(),
                pab.restrict_public_buckets()
            ),
            (Some(true), Some(true), Some(true), Some(true))
        );
        let own = s3.get_bucket_ownership_controls().bucket(&bucket).send().await.expect("ownership");
        assert_eq!(
            own.ownership_controls().expect("controls").rules()[0].object_ownership().as_str(),
            "BucketOwnerEnforced"
        );
        assert_eq!(crate::common::versioning(env, REGION, &bucket).await.as_deref(), Some("Enabled"));
        let lock = s3.get_object_lock_configuration().bucket(&bucket).send().await.expect("object lock");
        assert_eq!(
            lock.object_lock_configuration().and_then(|c| c.object_lock_enabled()).map(|e| e.as_str()),
            Some("Enabled")
        );
        let pol = s3.get_bucket_policy().bucket(&bucket).send().await.expect("policy");
        let pol: serde_json::Value = serde_json::from_str(pol.policy().unwrap_or_default()).expect("json");
        let text = pol.to_string();
        assert!(text.contains("aws:SecureTransport") && text.contains("s3:TlsVersion"), "{text}");
        assert!(text.contains("s3:x-amz-server-side-encryption-aws-kms-key-id"), "{text}");
        let logging = s3.get_bucket_logging().bucket(&bucket).send().await.expect("logging");
        let le = logging.logging_enabled().expect("logging on");
        assert_eq!(
            (le.target_bucket(), le.target_prefix()),
            (format!("{prefix}-logs").as_str(), format!("{zone}/").as_str())
        );
        let lc = s3.get_bucket_lifecycle_configuration().bucket(&bucket).send().await.expect("lifecycle");
        let noncurrent: Vec<i32> = lc
            .rules()
            .iter()
            .filter_map(|r| r.noncurrent_version_expiration())
            .filter_map(|n| n.noncurrent_days())
            .collect();
        assert_eq!(noncurrent, [if zone == "curated" { 30 } else { 90 }]);
        assert!(
            lc.rules()
                .iter()
                .any(|r| r.abort_incomplete_multipart_upload().and_then(|a| a.days_after_initiation()) == Some(7))
        );
        let tags = s3.get_bucket_tagging().bucket(&bucket).send().await.expect("tags");
        let tags: BTreeMap<&str, &str> = tags.tag_set().iter().map(|t| (t.key(), t.value())).collect();
        assert_eq!(tags.get(tag::OWNER).copied(), Some(format!("{ns}/sales").as_str()));
        assert_eq!(tags.get("team").copied(), Some("e2e"));
    }
    // The log bucket: private, versioned, SSE-S3 (S3 delivers access logs only to SSE-S3 buckets).
    let logs = format!("{prefix}-logs");
    let enc = s3.get_bucket_encryption().bucket(&logs).send().await.expect("log bucket encryption");
    let algo = enc.server_side_encryption_configuration().expect("config").rules()[0]
        .apply_server_side_encryption_by_default()
        .map(|d| d.sse_algorithm().as_str().to_string());
    assert_eq!(algo.as_deref(), Some("AES256"));
    assert!(s3.get_public_access_block().bucket(&logs).send().await.is_ok());

    // The table: on-demand, encrypted with the lake key, PITR, deletion protection, TTL, stream.
    let ddb = env.dynamodb(REGION);
    let table = format!("{prefix}-runs");
    let d = ddb.describe_table().table_name(&table).send().await.expect("table");
    let t = d.table().expect("description");
    assert_eq!(t.deletion_protection_enabled(), Some(true));
    assert_eq!(t.sse_description().and_then(|s| s.kms_master_key_arn()), Some(key_arn.as_str()));
    assert_eq!(t.billing_mode_summary().and_then(|b| b.billing_mode()).map(|b| b.as_str()), Some("PAY_PER_REQUEST"));
    assert_eq!(t.stream_specification().map(|s| s.stream_enabled()), Some(true));
    let pitr = ddb.describe_continuous_backups().table_name(&table).send().await.expect("backups");
    let pitr_status = pitr
        .continuous_backups_description()
        .and_then(|c| c.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .map(|s| s.as_str().to_string());
    assert_eq!(pitr_status.as_deref(), Some("ENABLED"));
    let ttl = ddb.describe_time_to_live().table_name(&table).send().await.expect("ttl");
    assert_eq!(ttl.time_to_live_description().and_then(|t| t.attribute_name()), Some("expiresAt"));
    assert_eq!(status.tables[0].arn.as_deref(), t.table_arn());
    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn a_converged_lake_costs_only_reads_within_budget_and_no_status_write() {
    let Setup { lakes, ctrl, .. } = setup("dl-steady").await;
    lakes.create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({}))).await.expect("created");
    wait_ready(&lakes, "sales").await;
    reconcile_now(&lakes, "sales", "warm-up").await;

    let before = ctrl.recorder.snapshot();
    reconcile_now(&lakes, "sales", "measure").await;
    let calls = ctrl.recorder.since(&before);
    let writes: Vec<_> = calls.iter().filter(|((_, op), n)| !is_read(op) && **n > 0).collect();
    assert!(writes.is_empty(), "a converged lake must cost no AWS write: {writes:?}");
    let count = |service: &str| calls.iter().filter(|((s, _), _)| s == service).map(|(_, n)| *n).sum::<u64>();
    // 3 buckets (log + 2 zones) x 8, 1 key x 3, 1 table x 3.
    assert!(count("s3") <= 3 * 8, "s3 reads {} > 24: {calls:?}", count("s3"));
    assert!(count("kms") <= 3, "kms reads {} > 3: {calls:?}", count("kms"));
    assert!(count("dynamodb") <= 3, "dynamodb reads {} > 3: {calls:?}", count("dynamodb"));
    assert!(!calls.keys().any(|(_, op)| op == "ListBuckets"), "never ListBuckets");

    // A metadata-only change reconciles without any Kubernetes write either.
    let rv = lakes.get("sales").await.expect("lake").metadata.resource_version;
    let before = ctrl.recorder.snapshot();
    let patch = serde_json::json!({ "metadata": { "labels": { "touched": "yes" } } });
    let labelled = lakes.patch("sales", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("labelled");
    assert_ne!(labelled.metadata.resource_version, rv);
    eventually(TIMEOUT, "the label-triggered reconcile", || async {
        Ok((ctrl.recorder.since(&before).values().sum::<u64>() >= 20).then_some(()))
    })
    .await
    .expect("reconciled");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = lakes.get("sales").await.expect("lake");
    assert_eq!(after.metadata.resource_version, labelled.metadata.resource_version, "no status write");
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn out_of_band_changes_are_corrected_and_reported_as_an_event() {
    let Setup { env, ns, lakes, ctrl } = setup("dl-drift").await;
    lakes.create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({}))).await.expect("created");
    let lake = wait_ready(&lakes, "sales").await;
    let key_arn = lake.status.and_then(|s| s.kms_key_arn).expect("key");
    let prefix = format!("{ns}-sales");
    let raw = format!("{prefix}-raw");
    let table = format!("{prefix}-runs");
    let s3 = env.s3(REGION);
    let kms = env.kms(REGION);
    let ddb = env.dynamodb(REGION);

    // Someone weakens the lake by hand.
    use aws_sdk_s3::types::{
        BucketVersioningStatus, ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule, VersioningConfiguration,
    };
    let aes = ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::Aes256)
                        .build()
                        .expect("sse"),
                )
                .build(),
        )
        .build()
        .expect("config");
    s3.put_bucket_encryption()
        .bucket(&raw)
        .server_side_encryption_configuration(aes)
        .send()
        .await
        .expect("weaken encryption");
    s3.delete_public_access_block().bucket(&raw).send().await.expect("remove public access block");
    s3.delete_bucket_policy().bucket(&raw).send().await.expect("remove policy");
    s3.put_bucket_versioning()
        .bucket(&raw)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Suspended).build())
        .send()
        .await
        .expect("suspend versioning");
    s3.put_bucket_logging()
        .bucket(&raw)
        .bucket_logging_status(aws_sdk_s3::types::BucketLoggingStatus::builder().build())
        .send()
        .await
        .expect("logging off");
    s3.delete_bucket_lifecycle().bucket(&raw).send().await.expect("lifecycle removed");
    kms.disable_key_rotation().key_id(&key_arn).send().await.expect("rotation off");
    ddb.update_continuous_backups()
        .table_name(&table)
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(false)
                .build()
                .expect("spec"),
        )
        .send()
        .await
        .expect("pitr off");

    reconcile_now(&lakes, "sales", "after-drift").await;

    let enc = s3.get_bucket_encryption().bucket(&raw).send().await.expect("encryption");
    let algo = enc.server_side_encryption_configuration().expect("c").rules()[0]
        .apply_server_side_encryption_by_default()
        .map(|d| d.sse_algorithm().as_str().to_string());
    assert_eq!(algo.as_deref(), Some("aws:kms"));
    assert!(s3.get_public_access_block().bucket(&raw).send().await.is_ok(), "public access block restored");
    assert!(s3.get_bucket_policy().bucket(&raw).send().await.is_ok(), "policy restored");
    assert_eq!(crate::common::versioning(env, REGION, &raw).await.as_deref(), Some("Enabled"));
    assert!(s3.get_bucket_logging().bucket(&raw).send().await.expect("logging").logging_enabled().is_some());
    assert!(s3.get_bucket_lifecycle_configuration().bucket(&raw).send().await.is_ok(), "lifecycle restored");
    assert!(kms.get_key_rotation_status().key_id(&key_arn).send().await.expect("rotation").key_rotation_enabled());
    let pitr = ddb.describe_continuous_backups().table_name(&table).send().await.expect("pitr");
    let on = pitr
        .continuous_backups_description()
        .and_then(|c| c.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .map(|s| s.as_str() == "ENABLED");
    assert_eq!(on, Some(true));

    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(env.kube_client().await.expect("client"), &ns);
    let note = eventually(TIMEOUT, "a DriftCorrected event", || async {
        let list = events.list(&Default::default()).await?;
        Ok(list.items.into_iter().find(|e| e.reason.as_deref() == Some("DriftCorrected")).and_then(|e| e.note))
    })
    .await
    .expect("event");
    for setting in [
        "default encryption",
        "public access block",
        "bucket policy",
        "versioning",
        "access logging",
        "lifecycle",
        "key rotation",
        "point-in-time recovery",
    ] {
        assert!(note.contains(setting), "event names {setting}: {note}");
    }
    let (_, metrics) = ctrl.get("/metrics").await.expect("metrics");
    assert!(crate::common::metric(&metrics, "lakeops_drift_corrections_total{kind=\"DataLake\"}") >= 8.0, "{metrics}");
    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn deleting_with_retain_leaves_every_resource_tagged_retained() {
    let Setup { env, ns, lakes, ctrl } = setup("dl-retain").await;
    lakes.create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({}))).await.expect("created");
    wait_ready(&lakes, "sales").await;
    lakes.delete("sales", &DeleteParams::default()).await.expect("deleted");
    eventually(TIMEOUT, "the DataLake gone", || async { Ok(lakes.get_opt("sales").await?.is_none().then_some(())) })
        .await
        .expect("finalizer released");
    let prefix = format!("{ns}-sales");
    let s3 = env.s3(REGION);
    for bucket in ["logs", "raw", "curated"] {
        let tags = s3.get_bucket_tagging().bucket(format!("{prefix}-{bucket}")).send().await.expect("bucket kept");
        assert!(tags.tag_set().iter().any(|t| t.key() == tag::RETAINED), "{bucket} tagged retained");
    }
    let d =
        env.dynamodb(REGION).describe_table().table_name(format!("{prefix}-runs")).send().await.expect("table kept");
    assert!(d.table().is_some());
    let key =
        env.kms(REGION).describe_key().key_id(format!("alias/lakeops/{ns}/sales")).send().await.expect("key kept");
    assert_eq!(key.key_metadata().and_then(|m| m.key_state()).map(|s| s.as_str()), Some("Enabled"));
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn deleting_with_delete_removes_empty_resources_and_keeps_a_bucket_that_holds_data() {
    let Setup { env, ns, lakes, ctrl } = setup("dl-delete").await;
    lakes
        .create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({ "deletionPolicy": "Delete" })))
        .await
        .expect("created");
    wait_ready(&lakes, "sales").await;
    let prefix = format!("{ns}-sales");
    let raw = format!("{prefix}-raw");
    let s3 = env.s3(REGION);
    let key_arn = lakes.get("sales").await.expect("lake").status.and_then(|s| s.kms_key_arn).expect("key");
    put_encrypted(&s3, &raw, "data/orders.json", &key_arn, b"{}").await.expect("object");
    // The log bucket may hold access logs in AWS; moto writes none, so it is empty here.

    lakes.delete("sales", &DeleteParams::default()).await.expect("delete requested");
    let message = wait_reason(&lakes, "sales", reason::DELETION_BLOCKED).await;
    assert!(message.contains(&format!("bucket {raw} holds 1 object version(s)")), "{message}");
    let exists = |b: String| {
        let s3 = s3.clone();
        async move { s3.head_bucket().bucket(b).send().await.is_ok() }
    };
    assert!(exists(raw.clone()).await, "the bucket with data is kept");
    eventually(TIMEOUT, "empty buckets deleted", || async {
        Ok((!exists(format!("{prefix}-curated")).await).then_some(()))
    })
    .await
    .expect("curated deleted");
    let table = env.dynamodb(REGION).describe_table().table_name(format!("{prefix}-runs")).send().await;
    assert!(table.is_err(), "the empty table is deleted");
    let key = env.kms(REGION).describe_key().key_id(format!("alias/lakeops/{ns}/sales")).send().await.expect("key");
    assert_eq!(
        key.key_metadata().and_then(|m| m.key_state()).map(|s| s.as_str()),
        Some("Enabled"),
        "the key stays while a bucket using it exists"
    );

    // Once emptied, deletion completes and the key enters its pending window.
    empty_bucket(&s3, &raw).await;
    eventually(Duration::from_secs(120), "the emptied bucket deleted", || async {
        Ok((!exists(raw.clone()).await).then_some(()))
    })
    .await
    .expect("raw deleted once empty");
    // The log bucket holds the access logs of the others (moto writes them too), so it is
    // the last thing kept; emptied, deletion completes.
    let logs = format!("{prefix}-logs");
    let message = wait_reason(&lakes, "sales", reason::DELETION_BLOCKED).await;
    assert!(message.contains(&format!("bucket {logs} holds")), "{message}");
    empty_bucket(&s3, &logs).await;
    let gone = eventually(Duration::from_secs(120), "the DataLake gone", || async {
        Ok(lakes.get_opt("sales").await?.is_none().then_some(()))
    })
    .await;
    if let Err(e) = gone {
        let last = lakes.get_opt("sales").await.ok().flatten().and_then(|l| l.status).map(|s| s.conditions);
        panic!("deletion did not complete: {e}; conditions: {last:?}");
    }
    assert!(!exists(raw).await);
    let key = env.kms(REGION).describe_key().key_id(format!("alias/lakeops/{ns}/sales")).send().await.expect("key");
    assert_eq!(key.key_metadata().and_then(|m| m.key_state()).map(|s| s.as_str()), Some("PendingDeletion"));
    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn an_existing_bucket_is_left_alone_until_adoption_is_asked_for() {
    let Setup { env, ns, lakes, ctrl } = setup("dl-adopt").await;
    let prefix = format!("{ns}-sales");
    let s3 = env.s3(REGION);
    let raw = format!("{prefix}-raw");
    s3.create_bucket()
        .bucket(&raw)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(REGION))
                .build(),
        )
        .send()
        .await
        .expect("someone else's bucket");
    lakes.create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({}))).await.expect("created");
    let message = wait_reason(&lakes, "sales", reason::NOT_OWNED).await;
    assert!(message.contains(&format!("bucket {raw} already exists")), "{message}");
    assert!(message.contains(annotation::ADOPT), "{message}");
    assert!(s3.get_bucket_policy().bucket(&raw).send().await.is_err(), "nothing was written to the foreign bucket");

    let patch = serde_json::json!({ "metadata": { "annotations": { (annotation::ADOPT): "true" } } });
    lakes.patch("sales", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("annotated");
    wait_ready(&lakes, "sales").await;
    let tags = s3.get_bucket_tagging().bucket(&raw).send().await.expect("tags");
    assert!(tags.tag_set().iter().any(|t| t.key() == tag::OWNER && t.value() == format!("{ns}/sales")));
    assert!(s3.get_bucket_policy().bucket(&raw).send().await.is_ok(), "adopted and converged");
    ctrl.stop().await.expect("stops");
}

/// Deletes every object version and delete marker of a bucket.
async fn empty_bucket(s3: &aws_sdk_s3::Client, bucket: &str) {
    loop {
        let listed = match s3.list_object_versions().bucket(bucket).send().await {
            Ok(listed) => listed,
            // The controller deletes the bucket as soon as it sees it empty, which can be
            // between our last delete and this list: gone is as empty as it gets.
            Err(e) if e.as_service_error().and_then(|e| e.meta().code()) == Some("NoSuchBucket") => return,
            Err(e) => panic!("versions: {e:?}"),
        };
        let versions = listed.versions().iter().map(|v| (v.key(), v.version_id()));
        let markers = listed.delete_markers().iter().map(|m| (m.key(), m.version_id()));
        let all: Vec<_> = versions.chain(markers).collect();
        if all.is_empty() {
            return;
        }
        for (key, version) in all {
            s3.delete_object()
                .bucket(bucket)
                .set_key(key.map(str::to_string))
                .set_version_id(version.map(str::to_string))
                .send()
                .await
                .expect("version deleted");
        }
    }
}

/// Keys with this owner tag, over every key in the region.
async fn keys_owned_by(env: &TestEnv, owner: &str) -> usize {
    let kms = env.kms(REGION);
    let keys = kms.list_keys().limit(1000).send().await.expect("keys");
    let mut n = 0;
    for k in keys.keys() {
        let Some(id) = k.key_id() else { continue };
        let tags = kms.list_resource_tags().key_id(id).send().await.expect("tags");
        if tags.tags().iter().any(|t| t.tag_key() == tag::OWNER && t.tag_value() == owner) {
            n += 1;
        }
    }
    n
}

#[tokio::test]
async fn a_crash_after_any_aws_call_never_creates_a_second_key_bucket_or_table() {
    let env = lakeops_testenv::shared().await;
    // Count the calls of a full first convergence, then crash after each of them in turn.
    let probe = setup("dl-crash-probe").await;
    probe.lakes.create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({}))).await.expect("created");
    wait_ready(&probe.lakes, "sales").await;
    let total: u64 = probe.ctrl.recorder.snapshot().values().sum();
    probe.ctrl.stop().await.expect("stops");
    assert!(total > 20, "a first convergence makes many calls ({total})");

    for n in 1..=total {
        let ns = env.create_namespace("dl-crash").await.expect("namespace");
        let lakes = api::<DataLake>(env, &ns).await.expect("api");
        lakes.create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({}))).await.expect("created");
        let recorder = RequestRecorder::new();
        recorder.fail_after(Some(n));
        let crashing = RunningController::start_with(env, &ns, Duration::from_secs(600), recorder.clone())
            .await
            .expect("controller");
        // The fault hook refuses every call after the n-th; the reconcile then fails (or,
        // for the last n, completes).
        eventually(TIMEOUT, "the fault to hit", || async {
            let l = lakes.get("sales").await?;
            let why = l
                .status
                .as_ref()
                .and_then(|s| find_condition(&s.conditions, condition::READY))
                .map(|c| c.reason.clone());
            Ok(why.filter(|r| r == reason::RETRYING || r == reason::RECONCILED))
        })
        .await
        .unwrap_or_else(|e| panic!("call {n}: {e}"));
        drop(crashing); // aborted, as a crash would
        let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("restarted");
        wait_ready(&lakes, "sales").await;
        // Dropped rather than stopped gracefully: graceful stops are tested elsewhere, and
        // here they only add waiting for in-flight AWS calls on a busy emulator.
        drop(ctrl);
        assert_eq!(keys_owned_by(env, &format!("{ns}/sales")).await, 1, "crash after call {n}: exactly one key");
    }
}

#[tokio::test]
async fn the_audit_trail_is_multi_region_encrypted_validated_and_records_lake_data_events() {
    let Setup { env, ns, lakes, ctrl } = setup("dl-trail").await;
    lakes
        .create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({ "audit": { "trail": true } })))
        .await
        .expect("created");
    let lake = wait_ready(&lakes, "sales").await;
    let status = lake.status.expect("status");
    let key_arn = status.kms_key_arn.expect("key");
    let trail_arn = status.trail_arn.expect("trail recorded");
    let ct = aws_sdk_cloudtrail::Client::new(&env.aws_config(REGION));
    let name = format!("lakeops-{ns}-sales");
    let trail = ct.get_trail().name(&name).send().await.expect("trail").trail.expect("trail");
    assert_eq!(trail.trail_arn(), Some(trail_arn.as_str()));
    assert_eq!(trail.is_multi_region_trail(), Some(true));
    assert_eq!(trail.log_file_validation_enabled(), Some(true));
    assert_eq!(trail.kms_key_id(), Some(key_arn.as_str()));
    assert_eq!(trail.s3_bucket_name(), Some(format!("{ns}-sales-audit").as_str()), "the audit bucket");
    // Data events only (no management events without a SecurityBaseline? they stay on:
    // nothing else records them here), as advanced selectors by ARN prefix.
    let selectors = ct.get_event_selectors().trail_name(&name).send().await.expect("selectors");
    assert!(selectors.event_selectors().is_empty(), "no basic selectors");
    let advanced = selectors.advanced_event_selectors();
    let field = |sel: &aws_sdk_cloudtrail::types::AdvancedEventSelector, f: &str| -> Vec<String> {
        let found = sel.field_selectors().iter().find(|x| x.field() == f);
        found.map(|x| [x.equals(), x.starts_with()].concat()).unwrap_or_default()
    };
    let of_type = |t: &str| {
        advanced
            .iter()
            .find(|s| field(s, "resources.type") == [t])
            .map(|s| field(s, "resources.ARN"))
            .unwrap_or_default()
    };
    let s3 = of_type("AWS::S3::Object");
    for bucket in ["raw", "curated", "audit", "raw-replica", "curated-replica", "audit-replica"] {
        assert!(s3.contains(&format!("arn:aws:s3:::{ns}-sales-{bucket}/")), "{bucket}: {s3:?}");
    }
    let account = trail_arn.split(':').nth(4).expect("account").to_string();
    assert_eq!(of_type("AWS::Lambda::Function"), [format!("arn:aws:lambda:{REGION}:{account}:function:lakeops-{ns}-")]);
    let management = advanced.iter().any(|s| field(s, "eventCategory") == ["Management"]);
    assert!(management, "no Ready SecurityBaseline covers the region: the lake trail records management events");
    assert_eq!(ct.get_trail_status().name(&name).send().await.expect("status").is_logging(), Some(true));

    // Delivered to CloudWatch Logs (CloudTrail.5): a group encrypted with the lake key and
    // kept 365 days, written through a role that trusts CloudTrail for this trail only and
    // may write only that group's streams.
    let group = format!("/aws/cloudtrail/lakeops-{ns}-sales");
    let group_arn = format!("arn:aws:logs:{REGION}:{account}:log-group:{group}");
    assert_eq!(trail.cloud_watch_logs_log_group_arn(), Some(format!("{group_arn}:*").as_str()));
    assert_eq!(status.trail_log_group_arn.as_deref(), trail.cloud_watch_logs_log_group_arn());
    let logs = aws_sdk_cloudwatchlogs::Client::new(&env.aws_config(REGION));
    let found = logs.describe_log_groups().log_group_name_prefix(&group).send().await.expect("groups");
    let found = found.log_groups().iter().find(|g| g.log_group_name() == Some(group.as_str())).expect("group");
    assert_eq!(found.kms_key_id(), Some(key_arn.as_str()));
    assert_eq!(found.retention_in_days(), Some(365));
    let role_arn = trail.cloud_watch_logs_role_arn().expect("delivery role").to_string();
    assert_eq!(status.trail_logs_role_arn.as_deref(), Some(role_arn.as_str()));
    let iam = aws_sdk_iam::Client::new(&env.aws_config(REGION));
    let role_name = role_arn.rsplit('/').next().expect("role name");
    let role = iam.get_role().role_name(role_name).send().await.expect("role").role.expect("role");
    let trust = lakeops::aws::iam::decode_policy(role.assume_role_policy_document().unwrap_or_default());
    assert!(trust.contains("cloudtrail.amazonaws.com") && trust.contains(&trail_arn), "{trust}");
    let inline = iam.get_role_policy().role_name(role_name).policy_name("cloudtrail-to-cloudwatch-logs").send().await;
    let inline = lakeops::aws::iam::decode_policy(inline.expect("inline policy").policy_document());
    let inline: serde_json::Value = serde_json::from_str(&inline).expect("json");
    assert_eq!(inline["Statement"][0]["Action"], serde_json::json!(["logs:CreateLogStream", "logs:PutLogEvents"]));
    assert_eq!(inline["Statement"][0]["Resource"], serde_json::json!(format!("{group_arn}:log-stream:*")));

    // The audit bucket: the lake key, versioned, write-once by default (GOVERNANCE 365
    // days), CloudTrail allowed for this trail only, access-logged into the log bucket,
    // which keeps only access logs.
    let s3 = env.s3(REGION);
    let audit = format!("{ns}-sales-audit");
    let policy = s3.get_bucket_policy().bucket(&audit).send().await.expect("policy");
    assert!(policy.policy().unwrap_or_default().contains(&trail_arn), "scoped to the trail");
    let enc = s3.get_bucket_encryption().bucket(&audit).send().await.expect("encryption");
    let rule = &enc.server_side_encryption_configuration().expect("sse").rules()[0];
    let by_default = rule.apply_server_side_encryption_by_default().expect("default");
    assert_eq!(by_default.kms_master_key_id(), Some(key_arn.as_str()));
    assert_eq!(crate::common::versioning(env, REGION, &audit).await.as_deref(), Some("Enabled"));
    let lock = s3.get_object_lock_configuration().bucket(&audit).send().await.expect("lock");
    let lock = lock.object_lock_configuration().expect("lock configuration");
    let retention = lock.rule().and_then(|r| r.default_retention()).expect("default retention");
    assert_eq!((retention.mode().map(|m| m.as_str()), retention.days()), (Some("GOVERNANCE"), Some(365)));
    let logging = s3.get_bucket_logging().bucket(&audit).send().await.expect("logging");
    let target = logging.logging_enabled().expect("access-logged");
    assert_eq!((target.target_bucket(), target.target_prefix()), (format!("{ns}-sales-logs").as_str(), "audit/"));
    let log_policy = s3.get_bucket_policy().bucket(format!("{ns}-sales-logs")).send().await.expect("policy");
    assert!(!log_policy.policy().unwrap_or_default().contains("cloudtrail"), "the log bucket keeps only access logs");

    // Steady state: no write; the audit pieces cost 8 + 1 (Object Lock) reads for the audit
    // bucket, 1 for the log group and 2 for the delivery role, next to the trail's 3.
    reconcile_now(&lakes, "sales", "warm-up").await;
    let before = ctrl.recorder.snapshot();
    reconcile_now(&lakes, "sales", "measure").await;
    let calls = ctrl.recorder.since(&before);
    let writes: Vec<_> = calls.iter().filter(|((_, op), n)| !is_read(op) && **n > 0).collect();
    assert!(writes.is_empty(), "a converged lake with its trail costs no AWS write: {writes:?}");
    let count = |service: &str| calls.iter().filter(|((s, _), _)| s == service).map(|(_, n)| *n).sum::<u64>();
    assert_eq!(count("s3"), 4 * 8 + 1, "log, 2 zones and audit bucket x 8, Object Lock of the audit bucket: {calls:?}");
    assert_eq!((count("cloudtrail"), count("cloudwatch logs"), count("iam")), (3, 1, 2), "{calls:?}");

    // Someone stops the trail: the next reconcile starts it again.
    ct.stop_logging().name(&name).send().await.expect("stopped");
    reconcile_now(&lakes, "sales", "after-stop").await;
    assert_eq!(ct.get_trail_status().name(&name).send().await.expect("status").is_logging(), Some(true));
    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn a_trail_of_a_lake_created_before_the_audit_bucket_migrates_in_one_round_shown_as_drift_first() {
    let Setup { env, ns, lakes, ctrl } = setup("dl-trail-migrate").await;
    lakes
        .create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({ "audit": { "trail": true } })))
        .await
        .expect("created");
    wait_ready(&lakes, "sales").await;
    ctrl.stop().await.expect("stops");

    // The trail as lakes had it before: into the log bucket, no CloudWatch Logs, basic
    // selectors with management events and the zone buckets' data events.
    let ct = aws_sdk_cloudtrail::Client::new(&env.aws_config(REGION));
    let name = format!("lakeops-{ns}-sales");
    ct.update_trail()
        .name(&name)
        .s3_bucket_name(format!("{ns}-sales-logs"))
        .cloud_watch_logs_log_group_arn("")
        .cloud_watch_logs_role_arn("")
        .send()
        .await
        .expect("old settings");
    let old_selector = aws_sdk_cloudtrail::types::EventSelector::builder()
        .include_management_events(true)
        .read_write_type(aws_sdk_cloudtrail::types::ReadWriteType::All)
        .data_resources(
            aws_sdk_cloudtrail::types::DataResource::builder()
                .r#type("AWS::S3::Object")
                .values(format!("arn:aws:s3:::{ns}-sales-raw/"))
                .values(format!("arn:aws:s3:::{ns}-sales-curated/"))
                .build(),
        )
        .build();
    // moto keeps advanced selectors when basic ones are put: clear them as AWS would.
    ct.put_event_selectors().trail_name(&name).set_advanced_event_selectors(Some(vec![])).send().await.ok();
    ct.put_event_selectors().trail_name(&name).event_selectors(old_selector).send().await.expect("old selectors");

    // The plan names the migration as drift first: one UpdateTrail and the new selectors.
    let lake = lakes.get("sales").await.expect("lake");
    let mut manifest = lake.clone();
    manifest.status = None;
    manifest.metadata.uid = None;
    let (plans, calls) = plan_of(env, &manifest).await;
    assert!(calls.keys().all(|(_, op)| is_read(op)), "plan sent a write: {calls:?}");
    let lines: Vec<String> = plans[0].plan.changes.iter().map(|c| c.description.clone()).collect();
    let update = lines.iter().find(|l| l.contains("S3 bucket")).expect("an UpdateTrail line");
    assert!(update.contains(&format!("{ns}-sales-logs -> {ns}-sales-audit")), "{update}");
    assert!(update.contains("CloudWatch Logs group (none) -> "), "{update}");
    assert!(lines.iter().any(|l| l.contains("Lambda invocations")), "{lines:?}");

    // One round migrates it: exactly one UpdateTrail and one PutEventSelectors, then nothing.
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("restarted");
    let before = ctrl.recorder.snapshot();
    reconcile_now(&lakes, "sales", "migrate").await;
    let calls = ctrl.recorder.since(&before);
    let sent = |op: &str| calls.iter().filter(|((_, o), _)| o == op).map(|(_, n)| *n).sum::<u64>();
    assert_eq!((sent("UpdateTrail"), sent("PutEventSelectors")), (1, 1), "{calls:?}");
    let trail = ct.get_trail().name(&name).send().await.expect("trail").trail.expect("trail");
    assert_eq!(trail.s3_bucket_name(), Some(format!("{ns}-sales-audit").as_str()));
    assert!(trail.cloud_watch_logs_log_group_arn().is_some_and(|g| g.contains("/aws/cloudtrail/")));
    let selectors = ct.get_event_selectors().trail_name(&name).send().await.expect("selectors");
    assert!(!selectors.advanced_event_selectors().is_empty(), "advanced selectors now");
    let before = ctrl.recorder.snapshot();
    reconcile_now(&lakes, "sales", "after").await;
    let writes: Vec<_> =
        ctrl.recorder.since(&before).into_iter().filter(|((_, op), n)| !is_read(op) && *n > 0).collect();
    assert!(writes.is_empty(), "migrated once: {writes:?}");
    ctrl.stop().await.expect("stops");
}

/// Plans one manifest against moto with reads only, returning the plan and the requests.
async fn plan_of(env: &TestEnv, lake: &DataLake) -> (Vec<lakeops::plan::ObjectPlan>, lakeops::aws::recorder::Counts) {
    let recorder = RequestRecorder::new();
    let aws = lakeops::aws::clients::AwsClients::new(env.aws_config(REGION), recorder.clone());
    let doc = lakeops::manifests::Document {
        file: "lake.yaml".into(),
        line: 1,
        object: lakeops::manifests::Object::DataLake(lake.clone()),
    };
    let plans = lakeops::plan::plan(&[doc], &aws).await.expect("plan");
    (plans, recorder.snapshot())
}

#[tokio::test]
async fn plan_shows_creates_for_a_new_lake_nothing_for_a_converged_one_and_the_drift_of_a_changed_one() {
    let Setup { env, ns, lakes, ctrl } = setup("dl-plan").await;
    let mut manifest = lake_manifest("sales", serde_json::json!({}));
    manifest.metadata.namespace = Some(ns.clone());

    // Not applied yet: everything is a create, and planning wrote nothing.
    let (plans, calls) = plan_of(env, &manifest).await;
    let summary = lakeops::plan::Summary::of(&plans);
    assert!(summary.create > 10 && summary.update == 0 && summary.delete == 0, "{summary:?}");
    assert!(calls.keys().all(|(_, op)| is_read(op)), "plan sent a write: {calls:?}");
    let text = lakeops::plan::render_text(&plans);
    assert!(text.contains(&format!("create bucket {ns}-sales-raw with Object Lock")), "{text}");

    // Converged by the controller: no changes.
    lakes.create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({}))).await.expect("created");
    wait_ready(&lakes, "sales").await;
    ctrl.stop().await.expect("stops");
    let (plans, _) = plan_of(env, &manifest).await;
    assert!(!lakeops::plan::Summary::of(&plans).has_changes(), "{}", lakeops::plan::render_text(&plans));

    // Out-of-band drift shows as an update naming the setting.
    env.s3(REGION).delete_public_access_block().bucket(format!("{ns}-sales-raw")).send().await.expect("drift");
    let (plans, calls) = plan_of(env, &manifest).await;
    let md = lakeops::plan::render_markdown(&plans);
    assert!(md.starts_with("**lakeops plan**: 0 to create, 1 to update, 0 to delete"), "{md}");
    assert!(md.contains(&format!("bucket {ns}-sales-raw: block all public access")), "{md}");
    assert!(calls.keys().all(|(_, op)| is_read(op)), "plan sent a write: {calls:?}");
}

#[tokio::test]
async fn a_zone_takes_data_over_https_with_the_lake_key_and_refuses_another_key_or_plain_http() {
    let Setup { env, ns, lakes, ctrl } = setup("dl-write").await;
    lakes.create(&PostParams::default(), &lake_manifest("sales", serde_json::json!({}))).await.expect("created");
    let lake = wait_ready(&lakes, "sales").await;
    let key_arn = lake.status.and_then(|s| s.kms_key_arn).expect("key");
    let raw = format!("{ns}-sales-raw");
    let s3 = env.s3(REGION);

    // The normal way in: HTTPS, SSE-KMS with the lake key named, as the policy demands.
    let put = put_encrypted(&s3, &raw, "incoming/a.json", &key_arn, b"{}").await.expect("accepted");
    assert_eq!(put.ssekms_key_id(), Some(key_arn.as_str()));
    let got = s3.get_object().bucket(&raw).key("incoming/a.json").send().await.expect("read back");
    assert_eq!(got.body.collect().await.expect("body").into_bytes().as_ref(), b"{}");

    let refused =
        |what: &str,
         result: Result<(), aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::put_object::PutObjectError>>| {
            let e = result.expect_err(what);
            assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(403), "{what}: {e:?}");
        };
    // Another KMS key (here a second lake-region key), SSE-S3, or no encryption header at all.
    let other = env.kms(REGION).create_key().send().await.expect("key");
    let other = other.key_metadata().map(|m| m.arn().unwrap_or_default().to_string()).expect("arn");
    refused("another KMS key", put_encrypted(&s3, &raw, "incoming/b.json", &other, b"{}").await.map(drop));
    let sse_s3 = s3
        .put_object()
        .bucket(&raw)
        .key("incoming/c.json")
        .body(b"{}".to_vec().into())
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256)
        .send()
        .await;
    refused("SSE-S3", sse_s3.map(drop));
    let bare = s3.put_object().bucket(&raw).key("incoming/d.json").body(b"{}".to_vec().into()).send().await;
    refused("no encryption header", bare.map(drop));
    // The right key over plain HTTP: refused by the TLS-only statement, and so is a read.
    let plain = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&env.aws_config_without_tls(REGION)).force_path_style(true).build(),
    );
    refused("plain HTTP", put_encrypted(&plain, &raw, "incoming/e.json", &key_arn, b"{}").await.map(drop));
    let read = plain.get_object().bucket(&raw).key("incoming/a.json").send().await;
    assert_eq!(read.expect_err("plain HTTP read").raw_response().map(|r| r.status().as_u16()), Some(403));
    let versions = s3.list_object_versions().bucket(&raw).send().await.expect("versions");
    assert_eq!(versions.versions().len(), 1, "only the accepted object is stored");
    ctrl.stop().await.expect("stops");
}
