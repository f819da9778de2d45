//! The project's extension layer for moto (`tests/support/moto_ext/`), through the AWS SDK:
//! each extension reports itself active for the moto the environment runs, and the behaviour
//! it adds holds as AWS documents it. The controller is not involved here; the DataLake,
//! EtlFunction and BackupPolicy tests rely on the same behaviour with real manifests.
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateReplicationGroupMemberAction, DeleteReplicationGroupMemberAction,
    KeySchemaElement, KeyType, ReplicationGroupUpdate, ScalarAttributeType,
};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    DeleteMarkerReplication, DeleteMarkerReplicationStatus, Destination, EncryptionConfiguration,
    ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus, ReplicationStatus,
    ServerSideEncryption, SourceSelectionCriteria, SseKmsEncryptedObjects, SseKmsEncryptedObjectsStatus, StorageClass,
};
use lakeops_testenv::{TestEnv, shared, unique_name};

use crate::common::{eventually, http_get};

const REGION: &str = "eu-west-1";
const BACKUP: &str = "eu-central-1";
const TIMEOUT: Duration = Duration::from_secs(20);
/// The moto release the extensions were written for (`MOTO_SPEC` in tests/env/install.sh).
const MOTO_VERSION: &str = "5.2.5";
const EXTENSIONS: [&str; 6] = [
    "dynamodb-replica-updates",
    "lambda-dead-letter-config",
    "s3-replication",
    "s3-bucket-policy-conditions",
    "s3-event-bridge-notifications",
    "backup-selections-and-plan-updates",
];

/// `GET /moto-api/lakeops/extensions` on the plain listener (the same server).
async fn extension_report(env: &TestEnv) -> serde_json::Value {
    let addr = env.moto_plain_endpoint.trim_start_matches("http://").parse().expect("moto address");
    let (status, body) = http_get(addr, "/moto-api/lakeops/extensions").await.expect("report");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON report")
}

#[tokio::test]
async fn every_extension_reports_itself_active_for_the_moto_release_it_was_written_for() {
    let env = shared().await;
    let report = extension_report(env).await;
    assert_eq!(report["moto"], MOTO_VERSION, "install.sh pins moto {MOTO_VERSION}: {report}");
    for name in EXTENSIONS {
        let extension = &report["extensions"][name];
        assert_eq!(extension["active"], true, "{name}: moto {MOTO_VERSION} lacks it, so it must be on: {report}");
        assert!(extension["doc"].as_str().is_some_and(|d| d.starts_with("https://docs.aws.amazon.com/")), "{name}");
    }
}

async fn versioned_bucket(s3: &aws_sdk_s3::Client, region: &str, prefix: &str) -> String {
    let bucket = unique_name(prefix);
    crate::common::versioned_bucket(s3, region, &bucket).await;
    bucket
}

async fn new_key(env: &TestEnv, region: &str) -> String {
    let key = env.kms(region).create_key().send().await.expect("key");
    key.key_metadata().map(|m| m.arn().unwrap_or_default().to_string()).expect("key ARN")
}

fn rule(prefix: &str, destination: &str, replica_key: &str, delete_markers: bool) -> ReplicationRule {
    let markers =
        if delete_markers { DeleteMarkerReplicationStatus::Enabled } else { DeleteMarkerReplicationStatus::Disabled };
    ReplicationRule::builder()
        .id(format!("rule-{prefix}"))
        .priority(if delete_markers { 2 } else { 1 })
        .status(ReplicationRuleStatus::Enabled)
        .filter(ReplicationRuleFilter::builder().prefix(prefix).build())
        .delete_marker_replication(DeleteMarkerReplication::builder().status(markers).build())
        .source_selection_criteria(
            SourceSelectionCriteria::builder()
                .sse_kms_encrypted_objects(
                    SseKmsEncryptedObjects::builder()
                        .status(SseKmsEncryptedObjectsStatus::Enabled)
                        .build()
                        .expect("sse"),
                )
                .build(),
        )
        .destination(
            Destination::builder()
                .bucket(format!("arn:aws:s3:::{destination}"))
                .storage_class(StorageClass::StandardIa)
                .encryption_configuration(EncryptionConfiguration::builder().replica_kms_key_id(replica_key).build())
                .build()
                .expect("destination"),
        )
        .build()
        .expect("rule")
}

#[tokio::test]
async fn replication_reads_back_as_written_and_copies_selected_versions_with_the_replica_key() {
    let env = shared().await;
    let (s3, backup) = (env.s3(REGION), env.s3(BACKUP));
    let source = versioned_bucket(&s3, REGION, "ext-src").await;
    let target = versioned_bucket(&backup, BACKUP, "ext-dst").await;
    let (lake_key, replica_key) = (new_key(env, REGION).await, new_key(env, BACKUP).await);
    let config = ReplicationConfiguration::builder()
        .role("arn:aws:iam::123456789012:role/replication")
        .rules(rule("data/", &target, &replica_key, false))
        .rules(rule("markers/", &target, &replica_key, true))
        .build()
        .expect("config");
    s3.put_bucket_replication().bucket(&source).replication_configuration(config).send().await.expect("put");

    // Read back as written: SourceSelectionCriteria, filters and delete-marker settings kept.
    let read = s3.get_bucket_replication().bucket(&source).send().await.expect("get");
    let rules = read.replication_configuration().expect("config").rules();
    assert_eq!(rules.len(), 2);
    for rule in rules {
        let selection = rule.source_selection_criteria().and_then(|c| c.sse_kms_encrypted_objects());
        assert_eq!(selection.map(|s| s.status().as_str()), Some("Enabled"), "{rule:?}");
    }
    let markers = |id: &str| {
        let rule = rules.iter().find(|r| r.id() == Some(id)).expect("rule");
        let prefix = rule.filter().and_then(|f| f.prefix()).map(str::to_string);
        (prefix, rule.delete_marker_replication().and_then(|d| d.status()).map(|s| s.as_str().to_string()))
    };
    assert_eq!(markers("rule-data/"), (Some("data/".into()), Some("Disabled".into())));
    assert_eq!(markers("rule-markers/"), (Some("markers/".into()), Some("Enabled".into())));

    let put = |key: &'static str| {
        s3.put_object()
            .bucket(&source)
            .key(key)
            .body(ByteStream::from_static(b"{}"))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&lake_key)
            .send()
    };
    let written = put("data/orders.json").await.expect("put");
    put("other/ignored.json").await.expect("put outside every rule");
    put("markers/gone.json").await.expect("put");

    // Asynchronous, as on AWS: the source version is PENDING until the copy is made.
    let copy = eventually(TIMEOUT, "the replica of data/orders.json", || async {
        Ok(backup.head_object().bucket(&target).key("data/orders.json").send().await.ok())
    })
    .await
    .expect("replicated");
    assert_eq!(copy.version_id(), written.version_id(), "a replica keeps the version id");
    assert_eq!(copy.ssekms_key_id(), Some(replica_key.as_str()), "encrypted with the replica key");
    assert_eq!(copy.storage_class(), Some(&StorageClass::StandardIa));
    assert_eq!(copy.replication_status(), Some(&ReplicationStatus::Replica));
    let head = s3.head_object().bucket(&source).key("data/orders.json").send().await.expect("source");
    assert_eq!(head.replication_status(), Some(&ReplicationStatus::Completed));
    assert_eq!(head.ssekms_key_id(), Some(lake_key.as_str()), "the source keeps its key");

    // Delete markers follow only where the rule says so.
    eventually(TIMEOUT, "the replica of markers/gone.json", || async {
        Ok(backup.head_object().bucket(&target).key("markers/gone.json").send().await.ok())
    })
    .await
    .expect("replicated");
    s3.delete_object().bucket(&source).key("markers/gone.json").send().await.expect("delete marker");
    s3.delete_object().bucket(&source).key("data/orders.json").send().await.expect("delete marker");
    eventually(TIMEOUT, "the delete marker replicated", || async {
        Ok(backup.head_object().bucket(&target).key("markers/gone.json").send().await.is_err().then_some(()))
    })
    .await
    .expect("the marker rule replicates delete markers");
    // By now the copy of the other marker would have happened too, had it been selected.
    assert!(backup.head_object().bucket(&target).key("data/orders.json").send().await.is_ok(), "markers off");
    let listed = backup.list_object_versions().bucket(&target).send().await.expect("versions");
    let keys: Vec<&str> = listed.versions().iter().filter_map(|v| v.key()).collect();
    assert!(!keys.contains(&"other/ignored.json"), "no rule selects other/: {keys:?}");
}

#[tokio::test]
async fn a_table_replica_is_created_active_after_a_while_and_deleted() {
    let env = shared().await;
    let (ddb, remote) = (env.dynamodb(REGION), env.dynamodb(BACKUP));
    let table = unique_name("ext-table");
    ddb.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().expect("key"))
        .send()
        .await
        .expect("table");
    let replica_key = new_key(env, BACKUP).await;
    let create =
        CreateReplicationGroupMemberAction::builder().region_name(BACKUP).kms_master_key_id(&replica_key).build();
    ddb.update_table()
        .table_name(&table)
        .replica_updates(ReplicationGroupUpdate::builder().create(create.expect("create")).build())
        .send()
        .await
        .expect("replica requested");
    let replicas = |d: &aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput| {
        d.table()
            .map(|t| {
                t.replicas()
                    .iter()
                    .map(|r| {
                        (
                            r.region_name().unwrap_or_default().to_string(),
                            r.replica_status().map(|s| s.as_str().to_string()),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let first = ddb.describe_table().table_name(&table).send().await.expect("describe");
    assert_eq!(replicas(&first), [(BACKUP.to_string(), Some("CREATING".to_string()))], "asynchronous, as on AWS");
    eventually(TIMEOUT, "the replica ACTIVE", || async {
        let d = ddb.describe_table().table_name(&table).send().await?;
        Ok((replicas(&d) == [(BACKUP.to_string(), Some("ACTIVE".to_string()))]).then_some(()))
    })
    .await
    .expect("ACTIVE");
    let there = remote.describe_table().table_name(&table).send().await.expect("a table in the replica region");
    let sse = there.table().and_then(|t| t.sse_description()).and_then(|s| s.kms_master_key_arn());
    assert_eq!(sse, Some(replica_key.as_str()), "encrypted with the key given for its region");

    let delete = DeleteReplicationGroupMemberAction::builder().region_name(BACKUP).build().expect("delete");
    ddb.update_table()
        .table_name(&table)
        .replica_updates(ReplicationGroupUpdate::builder().delete(delete).build())
        .send()
        .await
        .expect("replica deletion requested");
    eventually(TIMEOUT, "the replica gone", || async {
        let d = ddb.describe_table().table_name(&table).send().await?;
        let gone = remote.describe_table().table_name(&table).send().await.is_err();
        Ok((replicas(&d).is_empty() && gone).then_some(()))
    })
    .await
    .expect("deleted");
}

#[tokio::test]
async fn a_function_keeps_its_dead_letter_config_until_an_update_removes_it() {
    use aws_sdk_lambda::types::{DeadLetterConfig, FunctionCode, Runtime};
    let env = shared().await;
    let lambda = env.lambda(REGION);
    let name = unique_name("ext-fn");
    let role = env
        .iam()
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .expect("role");
    let role_arn = role.role().map(|r| r.arn().to_string()).expect("arn");
    let dlq = |queue: &str| {
        DeadLetterConfig::builder().target_arn(format!("arn:aws:sqs:{REGION}:123456789012:{queue}")).build()
    };
    // The smallest valid zip archive (an empty one).
    let zip = aws_sdk_lambda::primitives::Blob::new(b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec());
    lambda
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Python312)
        .role(&role_arn)
        .handler("app.handler")
        .code(FunctionCode::builder().zip_file(zip).build())
        .dead_letter_config(dlq("first"))
        .send()
        .await
        .expect("function");
    let target = || async {
        let f = lambda.get_function().function_name(&name).send().await.expect("get");
        f.configuration().and_then(|c| c.dead_letter_config()).and_then(|d| d.target_arn()).map(str::to_string)
    };
    assert_eq!(target().await.as_deref(), Some(&*format!("arn:aws:sqs:{REGION}:123456789012:first")));
    lambda
        .update_function_configuration()
        .function_name(&name)
        .dead_letter_config(dlq("second"))
        .send()
        .await
        .expect("update");
    lambda.update_function_configuration().function_name(&name).timeout(5).send().await.expect("other update");
    assert_eq!(target().await.as_deref(), Some(&*format!("arn:aws:sqs:{REGION}:123456789012:second")));
    // An empty TargetArn removes it.
    let empty = DeadLetterConfig::builder().target_arn("").build();
    lambda.update_function_configuration().function_name(&name).dead_letter_config(empty).send().await.expect("remove");
    assert_eq!(target().await, None);
}

#[tokio::test]
async fn a_bucket_reports_its_event_bridge_delivery_beside_its_other_notifications() {
    use aws_sdk_s3::types::{Event, EventBridgeConfiguration, NotificationConfiguration, QueueConfiguration};
    let env = shared().await;
    let s3 = env.s3(REGION);
    let bucket = versioned_bucket(&s3, REGION, "ext-eb").await;
    let read = || async {
        let out = s3.get_bucket_notification_configuration().bucket(&bucket).send().await.expect("read");
        (out.event_bridge_configuration().is_some(), out.queue_configurations().len())
    };
    // (moto answers a bucket that never had a notification document with a root element the
    // SDK refuses; the controller's adapter reads that as empty. A queue entry keeps every
    // read here a real document.)
    let queue = QueueConfiguration::builder()
        .id("q")
        .queue_arn(format!("arn:aws:sqs:{REGION}:123456789012:q"))
        .events(Event::S3ObjectCreated)
        .build()
        .expect("queue entry");
    let put = |config: NotificationConfiguration| {
        s3.put_bucket_notification_configuration().bucket(&bucket).notification_configuration(config).send()
    };
    let on = EventBridgeConfiguration::builder().build();
    put(NotificationConfiguration::builder().queue_configurations(queue.clone()).build()).await.expect("a queue");
    assert_eq!(read().await, (false, 1));
    put(NotificationConfiguration::builder().event_bridge_configuration(on.clone()).build()).await.expect("on");
    assert_eq!(read().await, (true, 0));
    put(NotificationConfiguration::builder()
        .event_bridge_configuration(on)
        .queue_configurations(queue.clone())
        .build())
    .await
    .expect("on, with a queue");
    assert_eq!(read().await, (true, 1));
    put(NotificationConfiguration::builder().queue_configurations(queue).build()).await.expect("off");
    assert_eq!(read().await, (false, 1));
}

#[test]
fn the_extension_layers_own_unit_tests_pass() {
    // Condition operators on missing keys, the request's context, and stepping aside: pure
    // Python, run with moto's venv as the server runs.
    let python = lakeops_testenv::moto_python(&TestEnv::bin_dir()).expect("moto's venv");
    let out = std::process::Command::new(python)
        .args(["-m", "unittest", "discover", "-s", concat!(env!("CARGO_MANIFEST_DIR"), "/support"), "-p", "test_*.py"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("running python");
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("Ran ") && !report.contains("Ran 0 tests"), "tests were found: {report}");
}
