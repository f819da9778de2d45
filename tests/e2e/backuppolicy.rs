//! The BackupPolicy reconciler against a real API server and moto: retention, replication,
//! replica buckets and keys, the replication role, PITR and the lifecycle merge are read back
//! through the AWS SDK; weakening is refused unless the manifest allows it; deletion keeps
//! the replicas. moto with the project's extension layer copies replicated objects and
//! builds table replicas, so both are asserted on what lands in the backup region.
use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use lakeops::aws::clients::AwsClients;
use lakeops::aws::recorder::{RequestRecorder, is_read};
use lakeops_crds::common::find_condition;
use lakeops_crds::names::{condition, reason, tag};
use lakeops_crds::{BackupPolicy, DataLake};
use lakeops_testenv::TestEnv;

use crate::common::{Kind, RunningController, api, assert_iam_policy_covers, eventually, put_encrypted, versioning};

const TIMEOUT: Duration = Duration::from_secs(60);
const REGION: &str = "eu-west-1";
const BACKUP: &str = "eu-central-1";

fn lake_manifest(name: &str) -> DataLake {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "DataLake", "metadata": { "name": name },
        "spec": {
            "region": REGION,
            "zones": [{ "name": "raw" }, { "name": "curated" }],
            "catalog": { "tables": [{ "name": "runs", "partitionKey": { "name": "id", "type": "S" } }] },
            "tags": { "team": "e2e" }
        }
    }))
    .expect("fixture")
}

fn policy_manifest(name: &str, spec: serde_json::Value) -> BackupPolicy {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "BackupPolicy", "metadata": { "name": name }, "spec": spec
    }))
    .expect("fixture")
}

fn full_spec() -> serde_json::Value {
    serde_json::json!({
        "dataLakeRef": { "name": "sales" },
        "retention": { "mode": "GOVERNANCE", "days": 7 },
        "replication": { "region": BACKUP },
        // No newerNoncurrentVersions: moto 5.2.5 drops it from NoncurrentVersionExpiration
        // when it stores a lifecycle rule, so every read would differ from the write. The
        // adapter's unit test (lifecycle_rules_are_written_for_the_whole_bucket) checks it is sent.
        "noncurrentVersionRetention": { "days": 60 }
    })
}

async fn wait_policy(policies: &kube::Api<BackupPolicy>, name: &str, why: &str) -> BackupPolicy {
    crate::common::wait_until(policies, name, why, |r| r.1 == why).await
}

async fn wait_lake(lakes: &kube::Api<DataLake>, name: &str) {
    crate::common::wait_until(lakes, name, "the DataLake Ready", |r| r.0 == "True").await;
}

/// Replaces the policy's spec as a whole (a PUT, as `kubectl replace` does).
async fn set_spec(policies: &kube::Api<BackupPolicy>, name: &str, spec: serde_json::Value) {
    let mut p = policies.get(name).await.expect("policy");
    p.spec = serde_json::from_value(spec).expect("spec");
    policies.replace(name, &PostParams::default(), &p).await.expect("spec replaced");
}

/// Asks for a reconcile now and waits until it has been handled.
async fn reconcile_now(policies: &kube::Api<BackupPolicy>, name: &str, stamp: &str) {
    crate::common::reconcile_now(policies, name, stamp, |o| {
        o.status.as_ref().and_then(|s| s.last_handled_reconcile_at.clone())
    })
    .await;
}

struct Setup {
    env: &'static TestEnv,
    ns: String,
    policies: kube::Api<BackupPolicy>,
    ctrl: RunningController,
}

/// A namespace, the controller, and the lake `sales` converged.
async fn setup(prefix: &str) -> Setup {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace(prefix).await.expect("namespace");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    let policies = api::<BackupPolicy>(env, &ns).await.expect("api");
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");
    lakes.create(&PostParams::default(), &lake_manifest("sales")).await.expect("lake created");
    wait_lake(&lakes, "sales").await;
    Setup { env, ns, policies, ctrl }
}

fn iam(env: &TestEnv) -> std::sync::Arc<dyn lakeops::aws::iam::IamApi> {
    AwsClients::new(env.aws_config(REGION), RequestRecorder::new()).iam()
}

/// `(mode, days)` of a bucket's Object Lock default retention.
async fn retention_of(env: &TestEnv, region: &str, bucket: &str) -> (Option<String>, Option<i32>) {
    let lock = env.s3(region).get_object_lock_configuration().bucket(bucket).send().await.expect("object lock");
    let retention = lock.object_lock_configuration().and_then(|c| c.rule()).and_then(|r| r.default_retention());
    (retention.and_then(|r| r.mode()).map(|m| m.as_str().to_string()), retention.and_then(|r| r.days()))
}

async fn replication_of(env: &TestEnv, bucket: &str) -> Option<aws_sdk_s3::types::ReplicationConfiguration> {
    env.s3(REGION).get_bucket_replication().bucket(bucket).send().await.ok().and_then(|o| o.replication_configuration)
}

#[tokio::test]
async fn a_policy_converges_retention_replication_replica_buckets_role_and_lifecycle_in_aws() {
    let Setup { env, ns, policies, ctrl } = setup("bp-converge").await;
    policies.create(&PostParams::default(), &policy_manifest("backup", full_spec())).await.expect("created");
    let policy = wait_policy(&policies, "backup", reason::RECONCILED).await;
    let status = policy.status.clone().expect("status");
    let prefix = format!("{ns}-sales");
    let replica_key = status.replica_key(BACKUP).expect("replica key recorded").to_string();
    let role_arn = status.replication_role_arn.clone().expect("role recorded");
    assert!(role_arn.contains(":role/lakeops/"), "{role_arn}");

    // The replica key: in the backup region, customer-managed, rotating.
    let kms = env.kms(BACKUP);
    let key = kms.describe_key().key_id(format!("alias/lakeops/{ns}/sales/replica")).send().await.expect("alias");
    assert_eq!(key.key_metadata().and_then(|m| m.arn()), Some(replica_key.as_str()));
    let rotation = kms.get_key_rotation_status().key_id(&replica_key).send().await.expect("rotation");
    assert!(rotation.key_rotation_enabled());

    let s3 = env.s3(REGION);
    let backup_s3 = env.s3(BACKUP);
    for zone in ["raw", "curated"] {
        let bucket = format!("{prefix}-{zone}");
        let replica = format!("{bucket}-replica");
        // Retention on the zone bucket.
        assert_eq!(retention_of(env, REGION, &bucket).await, (Some("GOVERNANCE".into()), Some(7)));
        // Replication: our role, the replica bucket, the replica key, delete markers off.
        let repl = replication_of(env, &bucket).await.expect("replication configured");
        assert_eq!(repl.role(), role_arn);
        let rule = &repl.rules()[0];
        let dest = rule.destination().expect("destination");
        assert_eq!(dest.bucket(), format!("arn:aws:s3:::{replica}"));
        assert_eq!(dest.encryption_configuration().and_then(|e| e.replica_kms_key_id()), Some(replica_key.as_str()));
        assert_eq!(rule.delete_marker_replication().and_then(|d| d.status()).map(|s| s.as_str()), Some("Disabled"));
        // SSE-KMS objects are selected: S3 skips them otherwise.
        let selection = rule.source_selection_criteria().and_then(|c| c.sse_kms_encrypted_objects());
        assert_eq!(selection.map(|s| s.status().as_str()), Some("Enabled"));

        // The lifecycle: the DataLake's rules kept, the policy's merged in.
        let lc = s3.get_bucket_lifecycle_configuration().bucket(&bucket).send().await.expect("lifecycle");
        let ids: Vec<&str> = lc.rules().iter().filter_map(|r| r.id()).collect();
        assert!(
            ids.contains(&"lakeops-lake-noncurrent-expiry") && ids.contains(&"lakeops-lake-abort-incomplete-uploads")
        );
        let ours = lc.rules().iter().find(|r| r.id() == Some("lakeops-backup-noncurrent-versions")).expect("ours");
        let n = ours.noncurrent_version_expiration().expect("noncurrent");
        assert_eq!(n.noncurrent_days(), Some(60));

        // The replica bucket meets the zone baseline under the replica key.
        let enc = backup_s3.get_bucket_encryption().bucket(&replica).send().await.expect("replica encryption");
        let rule = &enc.server_side_encryption_configuration().expect("config").rules()[0];
        let default = rule.apply_server_side_encryption_by_default().expect("default");
        assert_eq!(
            (default.sse_algorithm().as_str(), default.kms_master_key_id(), rule.bucket_key_enabled()),
            ("aws:kms", Some(replica_key.as_str()), Some(true))
        );
        let pab = backup_s3.get_public_access_block().bucket(&replica).send().await.expect("pab");
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
        let own = backup_s3.get_bucket_ownership_controls().bucket(&replica).send().await.expect("ownership");
        assert_eq!(
            own.ownership_controls().expect("controls").rules()[0].object_ownership().as_str(),
            "BucketOwnerEnforced"
        );
        assert_eq!(versioning(env, BACKUP, &replica).await.as_deref(), Some("Enabled"));
        let pol = backup_s3.get_bucket_policy().bucket(&replica).send().await.expect("policy");
        let text = pol.policy().unwrap_or_default();
        assert!(text.contains("aws:SecureTransport") && text.contains(&replica_key), "{text}");
        assert_eq!(
            retention_of(env, BACKUP, &replica).await,
            (Some("GOVERNANCE".into()), Some(7)),
            "the same retention on the replica"
        );
        let tags = backup_s3.get_bucket_tagging().bucket(&replica).send().await.expect("tags");
        let tags: BTreeMap<&str, &str> = tags.tag_set().iter().map(|t| (t.key(), t.value())).collect();
        assert_eq!(tags.get(tag::OWNER).copied(), Some(format!("{ns}/backup").as_str()));

        let zs = status.zones.iter().find(|z| z.name == zone).expect("zone status");
        assert_eq!(
            (zs.replica_bucket.as_deref(), zs.replication.as_deref()),
            (Some(replica.as_str()), Some("Enabled"))
        );
    }

    // The replication role: trusted by S3 for this account only, least privilege.
    let role_name = role_arn.rsplit('/').next().expect("name");
    let role = iam(env).get_role(role_name).await.expect("get role").expect("role exists");
    let trust: serde_json::Value = serde_json::from_str(&role.assume_role_policy).expect("json");
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], "s3.amazonaws.com");
    assert_eq!(trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"], "123456789012");
    let doc = iam(env).get_role_policy(role_name, "lakeops-replication").await.expect("read").expect("policy");
    let doc: serde_json::Value = serde_json::from_str(&doc).expect("json");
    let actions: Vec<String> = doc["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .flat_map(|s| match &s["Action"] {
            serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            v => v.as_str().map(str::to_string).into_iter().collect::<Vec<_>>(),
        })
        .collect();
    assert!(actions.contains(&"s3:ReplicateObject".to_string()) && actions.contains(&"kms:Encrypt".to_string()));
    assert!(!actions.iter().any(|a| a.contains('*') || a == "s3:ReplicateDelete"), "{actions:?}");
    assert!(doc.to_string().contains("kms:ViaService"), "{doc}");

    // PITR on the catalog table, as status reports it.
    let table = format!("{prefix}-runs");
    let pitr = env.dynamodb(REGION).describe_continuous_backups().table_name(&table).send().await.expect("backups");
    let pitr_status = pitr
        .continuous_backups_description()
        .and_then(|c| c.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .map(|s| s.as_str().to_string());
    assert_eq!(pitr_status.as_deref(), Some("ENABLED"));
    assert!(status.tables.iter().any(|t| t.table_name == table && t.point_in_time_recovery));

    // A locked version cannot be deleted (moto enforces Object Lock).
    let raw = format!("{prefix}-raw");
    let put = put_encrypted(&s3, &raw, "orders.json", &lake_key(env, &ns).await, b"{}").await;
    let version = put.expect("uploaded").version_id().expect("versioned").to_string();
    let deleted = s3.delete_object().bucket(&raw).key("orders.json").version_id(&version).send().await;
    assert!(deleted.is_err(), "a version under GOVERNANCE retention is not deleted without bypass");
    let head = s3.head_object().bucket(&raw).key("orders.json").version_id(&version).send().await.expect("kept");
    assert_eq!(head.object_lock_mode().map(|m| m.as_str()), Some("GOVERNANCE"));

    // A second policy for the same lake stalls as a conflict and touches nothing.
    policies.create(&PostParams::default(), &policy_manifest("other", full_spec())).await.expect("created");
    let other = wait_policy(&policies, "other", reason::CONFLICT).await;
    let (_, _, message) = Kind::ready(&other).expect("ready");
    assert!(message.contains("\"backup\" already protects"), "{message}");
    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn replicas_log_into_the_backup_regions_log_bucket_and_the_audit_bucket_is_replicated() {
    let Setup { env, ns, policies, ctrl } = setup("bp-audit").await;
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    let trail = serde_json::json!({ "spec": { "audit": { "trail": true } } });
    lakes.patch("sales", &PatchParams::default(), &Patch::Merge(&trail)).await.expect("trail on");
    eventually(TIMEOUT, "the audit bucket recorded", || async {
        let l = lakes.get("sales").await?;
        Ok(l.status.and_then(|s| s.audit_bucket.zip(s.trail_arn)).map(|_| ()))
    })
    .await
    .expect("trail converged");
    wait_lake(&lakes, "sales").await;
    policies.create(&PostParams::default(), &policy_manifest("backup", full_spec())).await.expect("created");
    let policy = wait_policy(&policies, "backup", reason::RECONCILED).await;
    let status = policy.status.expect("status");
    let prefix = format!("{ns}-sales");
    let log_bucket = format!("{prefix}-logs-{BACKUP}");
    assert_eq!(status.log_bucket.as_deref(), Some(log_bucket.as_str()));

    // The backup region's log bucket: SSE-S3 (S3 delivers access logs only there), TLS
    // only, access logs accepted from the replica buckets of this account only.
    let backup_s3 = env.s3(BACKUP);
    let enc = backup_s3.get_bucket_encryption().bucket(&log_bucket).send().await.expect("encryption");
    let rule = &enc.server_side_encryption_configuration().expect("sse").rules()[0];
    let algorithm = rule.apply_server_side_encryption_by_default().map(|d| d.sse_algorithm().as_str());
    assert_eq!(algorithm, Some("AES256"));
    let policy_text = backup_s3.get_bucket_policy().bucket(&log_bucket).send().await.expect("policy");
    let policy_text = policy_text.policy().unwrap_or_default().to_string();
    assert!(policy_text.contains("logging.s3.amazonaws.com") && policy_text.contains("aws:SecureTransport"));

    // Every replica, the audit bucket's too, logs into it (S3.9).
    for zone in ["raw", "curated", "audit"] {
        let replica = format!("{prefix}-{zone}-replica");
        assert!(policy_text.contains(&format!("arn:aws:s3:::{replica}")), "{zone}: {policy_text}");
        let logging = backup_s3.get_bucket_logging().bucket(&replica).send().await.expect("logging");
        let target = logging.logging_enabled().unwrap_or_else(|| panic!("{replica} is not access-logged"));
        assert_eq!(
            (target.target_bucket(), target.target_prefix()),
            (log_bucket.as_str(), format!("{zone}/").as_str())
        );
    }

    // The audit bucket is replicated (audit logs survive a region) into a locked replica;
    // its own retention stays the DataLake's (GOVERNANCE 365), not the policy's 7 days.
    let audit = format!("{prefix}-audit");
    let repl = replication_of(env, &audit).await.expect("the audit bucket replicates");
    let dest = repl.rules()[0].destination().expect("destination");
    assert_eq!(dest.bucket(), format!("arn:aws:s3:::{audit}-replica"));
    let lock = backup_s3.get_object_lock_configuration().bucket(format!("{audit}-replica")).send().await;
    let enabled = lock.expect("lock").object_lock_configuration().and_then(|c| c.object_lock_enabled().cloned());
    assert_eq!(enabled.map(|e| e.as_str().to_string()).as_deref(), Some("Enabled"));
    assert_eq!(retention_of(env, REGION, &audit).await, (Some("GOVERNANCE".into()), Some(365)));
    let audit_status = status.zones.iter().find(|z| z.name == "audit").expect("audit in status");
    assert_eq!(audit_status.replication.as_deref(), Some("Enabled"));
    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn a_converged_policy_costs_only_reads_within_budget() {
    let Setup { policies, ctrl, .. } = setup("bp-steady").await;
    policies.create(&PostParams::default(), &policy_manifest("backup", full_spec())).await.expect("created");
    wait_policy(&policies, "backup", reason::RECONCILED).await;
    reconcile_now(&policies, "backup", "warm-up").await;

    let before = ctrl.recorder.snapshot();
    reconcile_now(&policies, "backup", "measure").await;
    let calls = ctrl.recorder.since(&before);
    let writes: Vec<_> = calls.iter().filter(|((_, op), n)| !is_read(op) && **n > 0).collect();
    assert!(writes.is_empty(), "a converged policy must cost no AWS write: {writes:?}");
    let count = |service: &str| calls.iter().filter(|((s, _), _)| s == service).map(|(_, n)| *n).sum::<u64>();
    let op = |name: &str| calls.iter().filter(|((_, o), _)| o == name).map(|(_, n)| *n).sum::<u64>();
    // 2 zones x (retention, replication, lifecycle) + 2 replica buckets x (8 baseline +
    // retention) + the backup region's log bucket (8).
    assert!(count("s3") <= 2 * 3 + 2 * 9 + 8, "s3 reads {} > 32: {calls:?}", count("s3"));
    assert_eq!(op("GetBucketReplication"), 2, "{calls:?}");
    // 1 table x (DescribeTable, DescribeContinuousBackups).
    assert!(count("dynamodb") <= 2, "dynamodb reads {} > 2: {calls:?}", count("dynamodb"));
    // The replica key (DescribeKey, rotation, policy) and the role (GetRole, GetRolePolicy).
    assert!(count("kms") <= 3, "kms reads {} > 3: {calls:?}", count("kms"));
    assert!(count("iam") <= 2, "iam reads {} > 2: {calls:?}", count("iam"));
    eprintln!("steady-state reads per reconcile of a converged BackupPolicy: {calls:?}");
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn weakening_is_refused_with_old_and_new_values_and_accepted_with_the_flag_except_compliance() {
    let Setup { env, ns, policies, ctrl } = setup("bp-guard").await;
    policies.create(&PostParams::default(), &policy_manifest("backup", full_spec())).await.expect("created");
    wait_policy(&policies, "backup", reason::RECONCILED).await;
    let raw = format!("{ns}-sales-raw");

    // Shorter retention, replication removed, PITR off, noncurrent retention shortened, all at once.
    let weaker = serde_json::json!({
        "dataLakeRef": { "name": "sales" },
        "retention": { "mode": "GOVERNANCE", "days": 3 },
        "tables": { "pointInTimeRecovery": false },
        "noncurrentVersionRetention": { "days": 10 }
    });
    set_spec(&policies, "backup", weaker.clone()).await;
    let refused = wait_policy(&policies, "backup", reason::PROTECTION_DOWNGRADE_REFUSED).await;
    let (ready, _, message) = Kind::ready(&refused).expect("ready");
    assert_eq!(ready, "False");
    for expected in [
        "retention shortened from 7 to 3 days",
        &format!("replication to {BACKUP} removed"),
        "point-in-time recovery turned off (was on)",
        "noncurrent-version retention shortened from 60 to 10 days",
        "allowProtectionDowngrade: true",
    ] {
        assert!(message.contains(expected), "{expected:?} missing from {message}");
    }
    // Nothing was weakened in AWS.
    let (_, days) = retention_of(env, REGION, &raw).await;
    assert_eq!(days, Some(7));
    assert!(replication_of(env, &raw).await.is_some(), "replication kept");

    // With the flag in the same manifest, the downgrade is applied.
    let mut allowed = weaker;
    allowed["allowProtectionDowngrade"] = serde_json::json!(true);
    set_spec(&policies, "backup", allowed).await;
    let accepted = wait_policy(&policies, "backup", reason::RECONCILED).await;
    let (_, days) = retention_of(env, REGION, &raw).await;
    assert_eq!(days, Some(3));
    assert!(replication_of(env, &raw).await.is_none(), "replication removed");
    let status = accepted.status.expect("status");
    assert!(status.replication_role_arn.is_none());
    let role = iam(env).get_role(&format!("{ns}-sales-replication")).await.expect("get role");
    assert!(role.is_none(), "the replication role is deleted");
    let replica = env.s3(BACKUP).head_bucket().bucket(format!("{raw}-replica")).send().await;
    assert!(replica.is_ok(), "replica buckets are always retained");

    // COMPLIANCE may be chosen (stronger); shortening it is refused whatever the flag says.
    let compliance = |days: i64| {
        serde_json::json!({
            "dataLakeRef": { "name": "sales" },
            "retention": { "mode": "COMPLIANCE", "days": days },
            "tables": { "pointInTimeRecovery": false },
            "allowProtectionDowngrade": true
        })
    };
    set_spec(&policies, "backup", compliance(5)).await;
    wait_policy(&policies, "backup", reason::RECONCILED).await;
    set_spec(&policies, "backup", compliance(2)).await;
    let refused = wait_policy(&policies, "backup", reason::PROTECTION_DOWNGRADE_REFUSED).await;
    let (_, _, message) = Kind::ready(&refused).expect("ready");
    assert!(message.contains("COMPLIANCE retention can never be shortened"), "{message}");
    assert!(message.contains("was COMPLIANCE 5 days, now COMPLIANCE 2 days"), "{message}");
    assert_eq!(
        retention_of(env, REGION, &raw).await,
        (Some("COMPLIANCE".into()), Some(5)),
        "moto would accept a shorter COMPLIANCE retention; lakeops never sends it"
    );
    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn deletion_waits_for_the_flag_then_removes_replication_and_keeps_replica_buckets() {
    let Setup { env, ns, policies, ctrl } = setup("bp-delete").await;
    policies.create(&PostParams::default(), &policy_manifest("backup", full_spec())).await.expect("created");
    let policy = wait_policy(&policies, "backup", reason::RECONCILED).await;
    let role_arn = policy.status.and_then(|s| s.replication_role_arn).expect("role");
    let raw = format!("{ns}-sales-raw");

    policies.delete("backup", &DeleteParams::default()).await.expect("delete requested");
    let message = eventually(TIMEOUT, "deletion refused", || async {
        let p = policies.get("backup").await?;
        Ok(p.status
            .as_ref()
            .and_then(|s| find_condition(&s.conditions, condition::READY))
            .filter(|c| c.reason == reason::PROTECTION_DOWNGRADE_REFUSED)
            .map(|c| c.message.clone()))
    })
    .await
    .expect("refused");
    assert!(
        message.contains("deleting this BackupPolicy") && message.contains("allowProtectionDowngrade"),
        "{message}"
    );
    assert!(replication_of(env, &raw).await.is_some(), "everything stays while the finalizer holds");

    let patch = serde_json::json!({ "spec": { "allowProtectionDowngrade": true } });
    policies.patch("backup", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("flag set");
    eventually(TIMEOUT, "the BackupPolicy gone", || async {
        Ok(policies.get_opt("backup").await?.is_none().then_some(()))
    })
    .await
    .expect("finalizer released");
    assert!(replication_of(env, &raw).await.is_none(), "replication removed");
    let role_name = role_arn.rsplit('/').next().expect("name");
    assert!(iam(env).get_role(role_name).await.expect("get role").is_none(), "role removed");
    for zone in ["raw", "curated"] {
        let replica = format!("{ns}-sales-{zone}-replica");
        assert!(env.s3(BACKUP).head_bucket().bucket(&replica).send().await.is_ok(), "{replica} retained");
        let lc = env.s3(REGION).get_bucket_lifecycle_configuration().bucket(format!("{ns}-sales-{zone}")).send().await;
        let ids: Vec<String> =
            lc.expect("lifecycle").rules().iter().filter_map(|r| r.id().map(str::to_string)).collect();
        assert!(ids.iter().all(|i| !i.starts_with("lakeops-backup-")), "{ids:?}");
        assert!(ids.iter().any(|i| i.starts_with("lakeops-lake-")), "the lake's rules stay: {ids:?}");
    }
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn a_table_replica_is_requested_once_becomes_active_and_the_policy_ready() {
    let Setup { env, ns, policies, ctrl } = setup("bp-replicas").await;
    let before = ctrl.recorder.snapshot();
    let spec = serde_json::json!({ "dataLakeRef": { "name": "sales" }, "tables": { "replicaRegions": ["us-west-2"] } });
    policies.create(&PostParams::default(), &policy_manifest("backup", spec)).await.expect("created");
    // While DynamoDB builds the replica, the policy is not Ready: no protection yet.
    let policy = wait_policy(&policies, "backup", reason::REPLICAS_NOT_ACTIVE).await;
    let (ready, _, message) = Kind::ready(&policy).expect("ready");
    assert_eq!(ready, "False", "a replica AWS does not report ACTIVE is not protection yet");
    assert!(message.contains("us-west-2"), "{message}");
    let table = format!("{ns}-sales-runs");
    let status = policy.status.expect("status");
    let replica_key = status.replica_key("us-west-2").expect("a key for the replica region").to_string();
    assert!(replica_key.contains(":us-west-2:"), "{replica_key}");

    // The replica exists in its region, encrypted with the policy's key there, and DynamoDB
    // reports it ACTIVE; the policy notices on its own (it re-checks pending replicas).
    let remote = eventually(TIMEOUT, "the replica table in us-west-2", || async {
        Ok(env.dynamodb("us-west-2").describe_table().table_name(&table).send().await.ok())
    })
    .await
    .expect("replica table");
    let sse = remote.table().and_then(|t| t.sse_description()).and_then(|s| s.kms_master_key_arn());
    assert_eq!(sse, Some(replica_key.as_str()));
    let policy = crate::common::wait_until(&policies, "backup", "the policy Ready", |r| r.0 == "True").await;
    let t = policy.status.expect("status").tables.into_iter().find(|t| t.table_name == table).expect("table status");
    assert_eq!(t.active_replicas, ["us-west-2"]);
    let d = env.dynamodb(REGION).describe_table().table_name(&table).send().await.expect("table");
    let reported: Vec<_> = d
        .table()
        .map(|t| t.replicas().iter().map(|r| (r.region_name(), r.replica_status().map(|s| s.as_str()))).collect())
        .unwrap_or_default();
    assert_eq!(reported, [(Some("us-west-2"), Some("ACTIVE"))]);

    // Asked once: later rounds see the replica and write nothing.
    reconcile_now(&policies, "backup", "again").await;
    let calls = ctrl.recorder.since(&before);
    assert_eq!(calls.get(&("dynamodb".to_string(), "UpdateTable".to_string())), Some(&1), "{calls:?}");
    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn an_object_written_to_a_zone_reaches_its_replica_encrypted_with_the_replica_key() {
    let Setup { env, ns, policies, ctrl } = setup("bp-copy").await;
    policies.create(&PostParams::default(), &policy_manifest("backup", full_spec())).await.expect("created");
    let policy = wait_policy(&policies, "backup", reason::RECONCILED).await;
    let replica_key = policy.status.as_ref().and_then(|s| s.replica_key(BACKUP)).expect("replica key").to_string();
    let (raw, key) = (format!("{ns}-sales-raw"), "incoming/orders/2024-06-01.json");
    let put = put_encrypted(&env.s3(REGION), &raw, key, &lake_key(env, &ns).await, b"{\"order\":1}")
        .await
        .expect("written the way the zone's policy demands");

    let backup = env.s3(BACKUP);
    let copy = eventually(TIMEOUT, "the object in the replica bucket", || async {
        Ok(backup.get_object().bucket(format!("{raw}-replica")).key(key).send().await.ok())
    })
    .await
    .expect("replicated");
    assert_eq!(copy.ssekms_key_id(), Some(replica_key.as_str()), "encrypted with the replica key");
    assert_eq!(copy.version_id(), put.version_id());
    assert_eq!(copy.replication_status().map(|s| s.as_str()), Some("REPLICA"));
    assert_eq!(copy.body.collect().await.expect("body").into_bytes().as_ref(), b"{\"order\":1}");
    let source = env.s3(REGION).head_object().bucket(&raw).key(key).send().await.expect("source");
    assert_eq!(source.replication_status().map(|s| s.as_str()), Some("COMPLETED"));
    ctrl.stop().await.expect("stops");
}

/// The lake `sales`'s KMS key, as its status records it.
async fn lake_key(env: &TestEnv, ns: &str) -> String {
    let lakes = api::<DataLake>(env, ns).await.expect("api");
    lakes.get("sales").await.expect("lake").status.and_then(|s| s.kms_key_arn).expect("lake key recorded")
}

/// Plans a lake and its policy from manifests against moto; returns the text, the summary
/// and whether only reads were sent.
async fn plan_of(env: &TestEnv, lake: &DataLake, policy: &BackupPolicy) -> (Vec<lakeops::plan::ObjectPlan>, bool) {
    let recorder = RequestRecorder::new();
    let aws = AwsClients::new(env.aws_config(REGION), recorder.clone());
    let docs =
        [lakeops::manifests::Object::DataLake(lake.clone()), lakeops::manifests::Object::BackupPolicy(policy.clone())]
            .into_iter()
            .map(|object| lakeops::manifests::Document { file: "m.yaml".into(), line: 1, object })
            .collect::<Vec<_>>();
    let plans = lakeops::plan::plan(&docs, &aws).await.expect("plan");
    let read_only = recorder.snapshot().keys().all(|(_, op)| is_read(op));
    (plans, read_only)
}

/// The lake `sales` and `policy` converged by a controller run for the occasion.
async fn converged_by_the_controller(env: &'static TestEnv, ns: &str, policy: &BackupPolicy) {
    let lakes = api::<DataLake>(env, ns).await.expect("api");
    let policies = api::<BackupPolicy>(env, ns).await.expect("api");
    let ctrl = RunningController::start(env, ns, Duration::from_secs(600)).await.expect("controller");
    lakes.create(&PostParams::default(), &lake_manifest("sales")).await.expect("lake");
    wait_lake(&lakes, "sales").await;
    policies.create(&PostParams::default(), policy).await.expect("policy");
    wait_policy(&policies, &policy.metadata.name.clone().unwrap_or_default(), reason::RECONCILED).await;
    ctrl.stop().await.expect("stopped");
}

#[tokio::test]
async fn plan_shows_the_backup_to_create_then_nothing_once_converged_then_a_shortened_retention() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("bkp-plan").await.expect("namespace");
    let mut lake = lake_manifest("sales");
    lake.metadata.namespace = Some(ns.clone());
    let mut policy = policy_manifest("sales-backup", full_spec());
    policy.metadata.namespace = Some(ns.clone());

    // Nothing exists: the replica key, replica buckets, role, and every zone setting are created.
    let (plans, read_only) = plan_of(env, &lake, &policy).await;
    assert!(read_only, "plan sent a write");
    let text = lakeops::plan::render_text(&plans);
    for line in [
        format!("create KMS key alias/lakeops/{ns}/sales/replica in {BACKUP}"),
        format!("create bucket {ns}-sales-raw-replica with Object Lock"),
        format!("create role {ns}-sales-replication with inline policy lakeops-replication"),
        format!("bucket {ns}-sales-raw: Object Lock default retention GOVERNANCE 7 days (was none)"),
        format!("bucket {ns}-sales-curated: replicate to arn:aws:s3:::{ns}-sales-curated-replica"),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }

    // Converged by the controller.
    converged_by_the_controller(env, &ns, &policy_manifest("sales-backup", full_spec())).await;

    // Converged: neither the lake nor its policy has anything left to change (S3 reads the
    // replication configuration back as it was written).
    let (plans, _) = plan_of(env, &lake, &policy).await;
    let text = lakeops::plan::render_text(&plans);
    assert!(plans.iter().all(|p| p.plan.changes.is_empty()), "{text}");

    // Out of band, someone shortens a zone's retention: the plan shows it restored.
    env.s3(REGION)
        .put_object_lock_configuration()
        .bucket(format!("{ns}-sales-raw"))
        .object_lock_configuration(
            aws_sdk_s3::types::ObjectLockConfiguration::builder()
                .object_lock_enabled(aws_sdk_s3::types::ObjectLockEnabled::Enabled)
                .rule(
                    aws_sdk_s3::types::ObjectLockRule::builder()
                        .default_retention(
                            aws_sdk_s3::types::DefaultRetention::builder()
                                .mode(aws_sdk_s3::types::ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("retention shortened");
    let (plans, read_only) = plan_of(env, &lake, &policy).await;
    assert!(read_only);
    let text = lakeops::plan::render_text(&plans);
    assert!(
        text.contains(&format!("~ bucket {ns}-sales-raw: Object Lock default retention GOVERNANCE 7 days")),
        "{text}"
    );
}

fn backup_client(env: &TestEnv, region: &str) -> aws_sdk_backup::Client {
    aws_sdk_backup::Client::new(&env.aws_config(region))
}

/// COMPLIANCE retention, replication and the catalog's AWS Backup with a copy.
fn backup_spec(retention_days: i64) -> serde_json::Value {
    serde_json::json!({
        "dataLakeRef": { "name": "sales" },
        "retention": { "mode": "COMPLIANCE", "days": 3 },
        "replication": { "region": BACKUP },
        "tables": { "backup": { "retentionDays": retention_days, "copy": { "region": BACKUP, "retentionDays": 90 } } }
    })
}

#[tokio::test]
async fn the_catalog_is_backed_up_into_locked_vaults_with_the_lake_and_replica_keys_and_a_copy() {
    let Setup { env, ns, policies, ctrl } = setup("bp-aws-backup").await;
    policies.create(&PostParams::default(), &policy_manifest("backup", backup_spec(35))).await.expect("created");
    let ready = wait_policy(&policies, "backup", reason::RECONCILED).await;
    let status = ready.status.expect("status");
    let recorded = status.backup.clone().expect("status.backup");
    let name = format!("lakeops-{ns}-sales");
    let (here, there) = (backup_client(env, REGION), backup_client(env, BACKUP));

    // The vaults, read back: the lake key here, the policy's replica key in the copy region,
    // both locked with the COMPLIANCE retention as minimum.
    let vault = here.describe_backup_vault().backup_vault_name(&name).send().await.expect("vault");
    assert_eq!(vault.encryption_key_arn(), Some(lake_key(env, &ns).await.as_str()));
    assert_eq!((vault.locked(), vault.min_retention_days()), (Some(true), Some(3)), "{vault:?}");
    let copy_vault = there.describe_backup_vault().backup_vault_name(&name).send().await.expect("copy vault");
    assert_eq!(copy_vault.encryption_key_arn(), status.replica_key(BACKUP));
    assert_eq!((copy_vault.locked(), copy_vault.min_retention_days()), (Some(true), Some(3)));
    assert_eq!(recorded.vault_lock_days, Some(3));
    let tags = here.list_tags().resource_arn(vault.backup_vault_arn().expect("arn")).send().await.expect("tags");
    assert_eq!(tags.tags().and_then(|t| t.get(tag::OWNER)).map(String::as_str), Some(format!("{ns}/backup").as_str()));

    // The plan: schedule, retention, the copy into the copy vault with its own retention.
    let plan_id = recorded.plan_id.clone().expect("plan id");
    let plan = here.get_backup_plan().backup_plan_id(&plan_id).send().await.expect("plan");
    let rule = &plan.backup_plan().expect("document").rules()[0];
    assert_eq!(rule.schedule_expression(), Some("cron(0 5 ? * * *)"));
    assert_eq!(rule.target_backup_vault_name(), name);
    assert_eq!(rule.lifecycle().and_then(|l| l.delete_after_days()), Some(35));
    let copy = &rule.copy_actions()[0];
    assert_eq!(Some(copy.destination_backup_vault_arn()), copy_vault.backup_vault_arn());
    assert_eq!(copy.lifecycle().and_then(|l| l.delete_after_days()), Some(90));

    // The selection: the lake's table by ARN, through the generated role that only AWS Backup
    // may assume. (moto 5.2.5 has no selections; the project's moto extension stores them.)
    let selections = here.list_backup_selections().backup_plan_id(&plan_id).send().await.expect("selections");
    let listed = selections.backup_selections_list();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].selection_id(), recorded.selection_id.as_deref());
    let selection = here
        .get_backup_selection()
        .backup_plan_id(&plan_id)
        .selection_id(listed[0].selection_id().expect("id"))
        .send()
        .await
        .expect("selection");
    let selection = selection.backup_selection().expect("body");
    assert_eq!(selection.resources(), [format!("arn:aws:dynamodb:{REGION}:123456789012:table/{ns}-sales-runs")]);
    assert_eq!(Some(selection.iam_role_arn()), recorded.role_arn.as_deref());
    let role = iam(env).get_role(&format!("{ns}-sales-backup")).await.expect("get role").expect("backup role");
    assert!(role.assume_role_policy.contains("backup.amazonaws.com"), "{}", role.assume_role_policy);

    // Converged: only reads, and the backup's share of them is 6 (two vaults and their tags,
    // the plan, its selections) plus the backup role's 2.
    reconcile_now(&policies, "backup", "warm-up").await;
    let before = ctrl.recorder.snapshot();
    reconcile_now(&policies, "backup", "measure").await;
    let calls = ctrl.recorder.since(&before);
    let writes: Vec<_> = calls.iter().filter(|((_, op), n)| !is_read(op) && **n > 0).collect();
    assert!(writes.is_empty(), "a converged policy must cost no AWS write: {writes:?}");
    let backup_reads: BTreeMap<String, u64> =
        calls.iter().filter(|((s, _), _)| s == "backup").map(|((_, op), n)| (op.clone(), *n)).collect();
    let expected: BTreeMap<String, u64> =
        [("DescribeBackupVault", 2), ("ListTags", 2), ("GetBackupPlan", 1), ("ListBackupSelections", 1)]
            .into_iter()
            .map(|(op, n)| (op.to_string(), n))
            .collect();
    assert_eq!(backup_reads, expected, "{calls:?}");
    eprintln!("steady-state reads of a converged BackupPolicy with AWS Backup: {calls:?}");

    // A shorter backup retention is refused without the flag: AWS keeps 35 days.
    set_spec(&policies, "backup", backup_spec(20)).await;
    let refused = wait_policy(&policies, "backup", reason::PROTECTION_DOWNGRADE_REFUSED).await;
    let (_, _, message) = Kind::ready(&refused).expect("ready");
    assert!(message.contains("backup retention shortened from 35 to 20 days"), "{message}");
    let plan = here.get_backup_plan().backup_plan_id(&plan_id).send().await.expect("plan");
    assert_eq!(plan.backup_plan().expect("doc").rules()[0].lifecycle().and_then(|l| l.delete_after_days()), Some(35));

    // With the flag, the plan is changed in place: same id, the new retention.
    let mut allowed = backup_spec(20);
    allowed["allowProtectionDowngrade"] = serde_json::json!(true);
    set_spec(&policies, "backup", allowed).await;
    let updated = wait_policy(&policies, "backup", reason::RECONCILED).await;
    assert_eq!(updated.status.and_then(|s| s.backup).and_then(|b| b.plan_id), Some(plan_id.clone()));
    let plan = here.get_backup_plan().backup_plan_id(&plan_id).send().await.expect("plan");
    assert_eq!(plan.backup_plan().expect("doc").rules()[0].lifecycle().and_then(|l| l.delete_after_days()), Some(20));
    let plans = here.list_backup_plans().send().await.expect("plans");
    assert_eq!(plans.backup_plans_list().iter().filter(|p| p.backup_plan_name() == Some(name.as_str())).count(), 1);

    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stops");
}

#[tokio::test]
async fn plan_shows_the_catalog_backup_to_create_then_nothing_once_converged() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("bkp-plan-backup").await.expect("namespace");
    let mut lake = lake_manifest("sales");
    lake.metadata.namespace = Some(ns.clone());
    let mut policy = policy_manifest("backup", backup_spec(35));
    policy.metadata.namespace = Some(ns.clone());

    let (plans, read_only) = plan_of(env, &lake, &policy).await;
    assert!(read_only, "plan sent a write");
    let text = lakeops::plan::render_text(&plans);
    for line in [
        format!("create backup vault lakeops-{ns}-sales in {REGION} encrypted with (the new"),
        format!("create backup vault lakeops-{ns}-sales in {BACKUP} encrypted with (the new replica key in {BACKUP})"),
        "vault lock, minimum retention 3 days (was none)".to_string(),
        format!("create role {ns}-sales-backup with inline policy lakeops-catalog-backup"),
        format!(
            "create backup plan lakeops-{ns}-sales: cron(0 5 ? * * *) into lakeops-{ns}-sales kept 35 days, copy to arn:aws:backup:{BACKUP}:123456789012:backup-vault:lakeops-{ns}-sales kept 90 days"
        ),
        format!("select arn:aws:dynamodb:{REGION}:123456789012:table/{ns}-sales-runs"),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }

    converged_by_the_controller(env, &ns, &policy_manifest("backup", backup_spec(35))).await;

    // The manifest (no status, no UID) finds the plan by name and owner tag: nothing to change.
    let (plans, _) = plan_of(env, &lake, &policy).await;
    let text = lakeops::plan::render_text(&plans);
    assert!(plans.iter().all(|p| p.plan.changes.is_empty()), "{text}");

    // A manifest turning the backup off plans the selection's and the plan's deletion.
    let mut off = policy.clone();
    off.spec.tables.backup = None;
    off.spec.allow_protection_downgrade = true;
    let (plans, _) = plan_of(env, &lake, &off).await;
    let text = lakeops::plan::render_text(&plans);
    assert!(text.contains(&format!("delete backup plan lakeops-{ns}-sales")), "{text}");
    assert!(text.contains("delete selection"), "{text}");
}

#[tokio::test]
async fn deleting_the_policy_removes_the_backup_plan_selection_and_role_and_only_vaults_without_recovery_points() {
    let Setup { env, ns, policies, ctrl } = setup("bp-delete-backup").await;
    let mut spec = backup_spec(35);
    spec["allowProtectionDowngrade"] = serde_json::json!(true);
    policies.create(&PostParams::default(), &policy_manifest("backup", spec)).await.expect("created");
    let ready = wait_policy(&policies, "backup", reason::RECONCILED).await;
    let recorded = ready.status.and_then(|s| s.backup).expect("status.backup");
    let plan_id = recorded.plan_id.expect("plan id");
    let name = format!("lakeops-{ns}-sales");
    let here = backup_client(env, REGION);

    policies.delete("backup", &DeleteParams::default()).await.expect("delete requested");
    eventually(TIMEOUT, "the BackupPolicy gone", || async {
        Ok(policies.get_opt("backup").await?.is_none().then_some(()))
    })
    .await
    .expect("finalizer released");
    let plans = here.list_backup_plans().send().await.expect("plans");
    assert!(plans.backup_plans_list().iter().all(|p| p.backup_plan_id() != Some(plan_id.as_str())), "plan deleted");
    assert!(iam(env).get_role(&format!("{ns}-sales-backup")).await.expect("get role").is_none(), "role deleted");
    // moto never runs a backup job, so both vaults are empty here and go; a vault holding a
    // recovery point is kept (engine::tests::deletion_keeps_every_vault_that_holds_a_recovery_point).
    for (region, client) in [(REGION, here), (BACKUP, backup_client(env, BACKUP))] {
        let vault = client.describe_backup_vault().backup_vault_name(&name).send().await;
        assert!(vault.is_err(), "the empty vault in {region} is deleted: {vault:?}");
    }
    assert_iam_policy_covers(&ctrl.recorder);
    ctrl.stop().await.expect("stops");
}
