//! The fake's own semantics, pinned: what each create of an existing name answers, how keys
//! are found, the checks AWS makes, and what faults do.
use std::collections::BTreeMap;

use super::*;
use crate::aws::cloudtrail::{EventSelection, TrailSettings};
use crate::aws::dynamodb::{KeyDef, TableDef, TableUpdate};
use crate::aws::iam::NewRole;
use crate::aws::lambda::{CodeLocation, FunctionConfig, InvokePermission, NewFunction};
use crate::aws::s3::{NotificationEntry, NotificationTarget, Notifications, PublicAccessBlock};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ACCOUNT: &str = "123456789012";
const EU: &str = "eu-west-1";
const US: &str = "us-east-1";

fn owned_by(owner: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(OWNER_TAG.to_string(), owner.to_string())])
}

fn table_def(name: &str, key_arn: &str) -> TableDef {
    TableDef {
        name: name.into(),
        partition_key: KeyDef { name: "pk".into(), type_: "S".into() },
        sort_key: None,
        kms_key_arn: key_arn.into(),
        tags: owned_by("team/lake"),
    }
}

fn lambda_trust() -> String {
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into()
}

fn new_role<'a>(name: &'a str, trust: &'a str, tags: &'a BTreeMap<String, String>) -> NewRole<'a> {
    NewRole {
        name,
        path: "/lakeops/",
        description: "test",
        assume_role_policy: trust,
        permissions_boundary: None,
        tags,
    }
}

fn function(name: &str, role_arn: &str) -> NewFunction {
    NewFunction {
        name: name.into(),
        config: FunctionConfig {
            runtime: "python3.12".into(),
            handler: "app.handler".into(),
            role_arn: role_arn.into(),
            memory_mb: 256,
            timeout_seconds: 60,
            ..FunctionConfig::default()
        },
        architecture: "arm64".into(),
        code: CodeLocation { bucket: "artifacts".into(), key: "etl.zip".into(), version: None },
        code_signing_config_arn: None,
        tags: owned_by("team/etl"),
    }
}

fn trail_settings(bucket: &str, key_arn: &str) -> TrailSettings {
    TrailSettings {
        name: "lake-trail".into(),
        s3_bucket: bucket.into(),
        s3_key_prefix: "trail".into(),
        kms_key_id: key_arn.into(),
        multi_region: false,
        global_service_events: false,
        log_file_validation: true,
        ..TrailSettings::default()
    }
}

const CLOUDTRAIL_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:PutObject","Resource":"*"}]}"#;

#[tokio::test]
async fn creating_an_existing_bucket_answers_as_s3_does() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let s3 = aws.region(EU).s3;
    s3.create_bucket("lake-raw", EU, true).await?;
    // Our own bucket again: BucketAlreadyOwnedByYou, which the adapter makes success.
    s3.create_bucket("lake-raw", EU, true).await?;
    assert_eq!(aws.count(Kind::Bucket), 1);

    // Bucket names are global: our bucket seen from another region.
    aws.region(US).s3.create_bucket("lake-raw", US, false).await?;
    let moved = aws.region(US).s3.get_bucket_tagging("lake-raw").await.expect_err("another region");
    assert_eq!(moved.code.as_deref(), Some("PermanentRedirect"));

    // Another account's bucket: Conflict on create, AccessDenied on anything else.
    aws.with_foreign_bucket(EU, "taken");
    let taken = s3.create_bucket("taken", EU, false).await.expect_err("not ours");
    assert_eq!((taken.kind, taken.code.as_deref()), (ErrorKind::Conflict, Some("BucketAlreadyExists")));
    let denied = s3.get_bucket_tagging("taken").await.expect_err("not ours");
    assert_eq!(denied.kind, ErrorKind::AccessDenied);
    assert_eq!(aws.count(Kind::Bucket), 1, "another account's bucket is not counted");
    Ok(())
}

#[tokio::test]
async fn a_new_bucket_has_what_create_bucket_and_aws_defaults_set() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let s3 = aws.region(EU).s3;
    s3.create_bucket("locked", EU, true).await?;
    assert_eq!(s3.get_ownership_controls("locked").await?.as_deref(), Some("BucketOwnerEnforced"));
    assert_eq!(s3.get_public_access_block("locked").await?, Some(PublicAccessBlock::ALL));
    assert_eq!(s3.get_bucket_encryption("locked").await?.map(|e| e.algorithm).as_deref(), Some("AES256"));
    assert_eq!(s3.get_versioning("locked").await?.as_deref(), Some("Enabled"), "Object Lock turns versioning on");
    assert_eq!(s3.get_object_lock("locked").await?, (true, None));
    assert_eq!(s3.get_bucket_policy("locked").await?, None);
    assert_eq!(s3.get_lifecycle("locked").await?, None);
    assert_eq!(s3.get_bucket_replication("locked").await?, None);
    assert_eq!(s3.get_bucket_tagging("locked").await?, BTreeMap::new());

    let missing = s3.get_bucket_policy("missing").await.expect_err("no bucket");
    assert!(missing.is_not_found());
    assert_eq!(s3.head_object("missing", "k").await?, None, "HEAD of a missing bucket is None, as the adapter");
    Ok(())
}

#[tokio::test]
async fn s3_refuses_what_aws_refuses() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let s3 = aws.region(EU).s3;
    s3.create_bucket("plain", EU, false).await?;
    let retention = crate::aws::s3::DefaultRetention { mode: "COMPLIANCE".into(), days: 30 };
    let unversioned = s3.put_object_lock_retention("plain", &retention).await.expect_err("needs versioning");
    assert_eq!(unversioned.code.as_deref(), Some("InvalidBucketState"));
    s3.enable_versioning("plain").await?;
    s3.put_object_lock_retention("plain", &retention).await?;
    assert_eq!(s3.get_object_lock("plain").await?, (true, Some(retention)));

    let bad = s3.put_bucket_policy("plain", "not json").await.expect_err("malformed");
    assert_eq!((bad.kind, bad.code.as_deref()), (ErrorKind::Invalid, Some("MalformedPolicy")));

    assert!(aws.put_object("plain", "data.csv").is_some_and(|v| v.version_id.is_some()));
    let full = s3.delete_bucket("plain").await.expect_err("not empty");
    assert_eq!(full.code.as_deref(), Some("BucketNotEmpty"));
    assert_eq!(s3.count_object_versions("plain", 10).await?, 1);
    assert!(s3.head_object("plain", "data.csv").await?.is_some());

    // A Lambda target needs an invoke permission for this bucket.
    let entry = NotificationEntry {
        target: NotificationTarget::Lambda,
        id: "etl".into(),
        arn: format!("arn:aws:lambda:{EU}:{ACCOUNT}:function:etl"),
        events: vec!["s3:ObjectCreated:*".into()],
        prefix: None,
        suffix: None,
    };
    let notifications = Notifications { entries: vec![entry], event_bridge: false };
    let unvalidated = s3.put_notifications("plain", &notifications).await.expect_err("no permission");
    assert_eq!(unvalidated.code.as_deref(), Some("InvalidArgument"));
    let trust = lambda_trust();
    let role = aws.with_role(&new_role("etl", &trust, &BTreeMap::new()));
    aws.with_function(EU, &function("etl", &role));
    let permission = InvokePermission {
        statement_id: "s3".into(),
        principal: "s3.amazonaws.com".into(),
        source_arn: "arn:aws:s3:::plain".into(),
        source_account: ACCOUNT.into(),
    };
    aws.region(EU).lambda.add_permission("etl", &permission).await?;
    s3.put_notifications("plain", &notifications).await?;
    assert_eq!(s3.get_notifications("plain").await?, notifications);
    Ok(())
}

#[tokio::test]
async fn keys_are_found_by_id_arn_alias_and_alias_arn_in_their_region_only() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let kms = aws.region(EU).kms;
    let key = kms.create_key("lake", "{}", &owned_by("team/lake")).await?;
    kms.create_alias("alias/lake", &key.key_id).await?;
    for name in [
        key.key_id.clone(),
        key.arn.clone(),
        "alias/lake".to_string(),
        format!("arn:aws:kms:{EU}:{ACCOUNT}:alias/lake"),
    ] {
        assert_eq!(kms.describe_key(&name).await?, Some(key.clone()), "{name}");
    }
    assert_eq!(aws.region(US).kms.describe_key("alias/lake").await?, None, "aliases are regional");
    assert_eq!(aws.region(US).kms.describe_key(&key.arn).await?, None);
    assert_eq!(kms.describe_key("alias/other").await?, None);

    kms.create_alias("alias/lake", &key.key_id).await.expect("our own alias again is success");
    let other = kms.create_key("other", "{}", &BTreeMap::new()).await?;
    let again = kms.create_alias("alias/lake", &other.key_id).await.expect_err("alias taken");
    assert_eq!((again.kind, again.code.as_deref()), (ErrorKind::AlreadyExists, Some("AlreadyExistsException")));
    let missing = kms.get_rotation("no-such-key").await.expect_err("no key");
    assert!(missing.is_not_found());
    Ok(())
}

#[tokio::test]
async fn key_rotation_policy_tags_and_deletion_follow_key_states() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let kms = aws.region(EU).kms;
    let key = kms.create_key("lake", r#"{"a":1}"#, &BTreeMap::new()).await?;
    assert_eq!(kms.get_rotation(&key.key_id).await?, crate::aws::kms::Rotation { enabled: false, period_days: None });
    kms.enable_rotation(&key.key_id, 365).await?;
    assert_eq!(kms.get_rotation(&key.key_id).await?.period_days, Some(365));
    assert!(kms.enable_rotation(&key.key_id, 30).await.is_err(), "periods under 90 days are refused");
    kms.put_key_policy(&key.key_id, r#"{"b":2}"#).await?;
    assert_eq!(kms.get_key_policy(&key.key_id).await?, r#"{"b":2}"#);
    kms.tag(&key.key_id, &owned_by("team/lake")).await?;
    assert_eq!(kms.list_tags(&key.key_id).await?, owned_by("team/lake"));

    kms.schedule_deletion(&key.key_id, 30).await?;
    assert_eq!(kms.describe_key(&key.key_id).await?.map(|k| k.state).as_deref(), Some("PendingDeletion"));
    let pending = kms.enable_rotation(&key.key_id, 365).await.expect_err("pending deletion");
    assert_eq!(pending.code.as_deref(), Some("KMSInvalidStateException"));
    assert_eq!(aws.count(Kind::Key), 0, "a key pending deletion is not live");
    Ok(())
}

#[tokio::test]
async fn keys_are_found_by_tag() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let token = BTreeMap::from([("lakeops.dev/creation-token".to_string(), "t-1".to_string())]);
    let created = aws.region(EU).kms.create_key("lake", "{}", &token).await?;
    let kms = aws.kms(EU);
    assert_eq!(kms.find_key_by_tag("lakeops.dev/creation-token", "t-1").await?, Some(created.key_id));
    assert_eq!(kms.find_key_by_tag("lakeops.dev/creation-token", "t-2").await?, None);
    assert_eq!(aws.kms(US).find_key_by_tag("lakeops.dev/creation-token", "t-1").await?, None);
    Ok(())
}

#[tokio::test]
async fn tables_enforce_deletion_protection_and_answer_create_twice_as_dynamodb_does() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let ddb = aws.region(EU).dynamodb;
    let created = ddb.create_table(&table_def("locks", "arn:k")).await?;
    assert_eq!(created.status, "CREATING", "the create's own answer");
    let info = ddb.describe_table("locks").await?.ok_or("no table")?;
    assert_eq!((info.status.as_str(), info.deletion_protection, info.stream_enabled), ("ACTIVE", true, true));
    assert_eq!(info.sse_kms_key_arn.as_deref(), Some("arn:k"));

    let again = ddb.create_table(&table_def("locks", "arn:k")).await.expect_err("exists");
    assert_eq!((again.kind, again.code.as_deref()), (ErrorKind::Retryable, Some("ResourceInUseException")));

    let protected = ddb.delete_table("locks").await.expect_err("protected");
    assert_eq!((protected.kind, protected.code.as_deref()), (ErrorKind::Invalid, Some("ValidationException")));
    ddb.update_table("locks", &TableUpdate { deletion_protection: Some(false), ..TableUpdate::default() }).await?;
    ddb.delete_table("locks").await?;
    assert_eq!(ddb.describe_table("locks").await?, None);
    assert_eq!(aws.count(Kind::Table), 0);
    Ok(())
}

#[tokio::test]
async fn table_settings_pitr_ttl_items_tags_and_replicas() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let ddb = aws.region(EU).dynamodb;
    let info = ddb.create_table(&table_def("locks", "arn:k")).await?;
    assert!(!ddb.get_pitr("locks").await?);
    ddb.set_pitr("locks", true).await?;
    assert!(ddb.get_pitr("locks").await?);
    assert!(ddb.get_pitr("missing").await.expect_err("no table").is_not_found());

    ddb.set_ttl("locks", "expires", true).await?;
    assert_eq!(ddb.get_ttl("locks").await?.as_deref(), Some("expires"));
    assert!(ddb.set_ttl("locks", "expires", true).await.is_err(), "already enabled");

    let stream = TableUpdate { enable_stream: true, ..TableUpdate::default() };
    assert!(ddb.update_table("locks", &stream).await.is_err(), "the stream is already on");
    let same_key = TableUpdate { sse_kms_key_arn: Some("arn:k".into()), ..TableUpdate::default() };
    assert!(ddb.update_table("locks", &same_key).await.is_err(), "already encrypted with that key");
    let calls = aws.calls().len();
    ddb.update_table("locks", &TableUpdate::default()).await?;
    assert_eq!(aws.calls().len(), calls, "an empty update sends nothing, as the adapter");

    assert!(!ddb.has_items("locks").await?);
    aws.edit_table(EU, "locks", |t| t.items = 3);
    assert!(ddb.has_items("locks").await?);

    ddb.tag(&info.arn, &BTreeMap::from([("k".to_string(), "v".to_string())])).await?;
    assert_eq!(ddb.list_tags(&info.arn).await?.get("k").map(String::as_str), Some("v"));

    ddb.create_replica("locks", "eu-central-1", "arn:replica-key").await?;
    assert!(ddb.create_replica("locks", "eu-central-1", "arn:replica-key").await.is_err(), "one per region");
    let replicas = ddb.describe_table("locks").await?.ok_or("no table")?.replicas;
    assert_eq!(
        replicas.iter().map(|r| (r.region.as_str(), r.status.as_str())).collect::<Vec<_>>(),
        [("eu-central-1", "ACTIVE")]
    );
    ddb.delete_replica("locks", "eu-central-1").await?;
    assert!(ddb.delete_replica("locks", "eu-central-1").await.is_err(), "no such replica");
    Ok(())
}

#[tokio::test]
async fn settling_delays_active_states_by_the_configured_calls() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    aws.set_settle_calls(2);
    let ddb = aws.region(EU).dynamodb;
    ddb.create_table(&table_def("locks", "arn:k")).await?;
    assert_eq!(ddb.describe_table("locks").await?.ok_or("no table")?.status, "CREATING");
    let busy = ddb.set_ttl("locks", "a", true).await;
    assert!(busy.is_ok(), "TTL does not wait for ACTIVE");
    assert_eq!(ddb.describe_table("locks").await?.ok_or("no table")?.status, "ACTIVE");
    Ok(())
}

#[tokio::test]
async fn trails_need_a_deliverable_bucket_and_answer_create_twice_as_cloudtrail_does() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let eu = aws.region(EU);
    let key = eu.kms.create_key("trail", "{}", &BTreeMap::new()).await?;
    let settings = trail_settings("logs", &key.arn);
    let no_bucket = eu.cloudtrail.create_trail(&settings, &BTreeMap::new()).await.expect_err("no bucket");
    assert_eq!(no_bucket.code.as_deref(), Some("S3BucketDoesNotExistException"));
    eu.s3.create_bucket("logs", EU, false).await?;
    let no_policy = eu.cloudtrail.create_trail(&settings, &BTreeMap::new()).await.expect_err("no policy");
    assert_eq!(no_policy.code.as_deref(), Some("InsufficientS3BucketPolicyException"));
    eu.s3.put_bucket_policy("logs", CLOUDTRAIL_POLICY).await?;

    let arn = eu.cloudtrail.create_trail(&settings, &owned_by("team/lake")).await?;
    assert_eq!(arn, format!("arn:aws:cloudtrail:{EU}:{ACCOUNT}:trail/lake-trail"));
    let again = eu.cloudtrail.create_trail(&settings, &BTreeMap::new()).await.expect_err("exists");
    assert_eq!((again.kind, again.code.as_deref()), (ErrorKind::AlreadyExists, Some("TrailAlreadyExistsException")));

    assert!(!eu.cloudtrail.is_logging("lake-trail").await?);
    eu.cloudtrail.start_logging("lake-trail").await?;
    assert!(eu.cloudtrail.is_logging("lake-trail").await?);
    let fresh = eu.cloudtrail.get_event_selection("lake-trail").await?;
    assert!(fresh.management_events && fresh.s3_objects.is_empty(), "a new trail records management events");
    let wanted = EventSelection {
        management_events: false,
        s3_objects: vec!["arn:aws:s3:::b/".to_string(), "arn:aws:s3:::a/".to_string()],
        lambda_functions: vec!["arn:aws:lambda:eu-west-1:123456789012:function:lakeops-a-".to_string()],
        other: false,
    };
    eu.cloudtrail.put_event_selection("lake-trail", &wanted).await?;
    let read = eu.cloudtrail.get_event_selection("lake-trail").await?;
    assert_eq!(read.s3_objects, ["arn:aws:s3:::a/", "arn:aws:s3:::b/"]);
    assert_eq!((read.management_events, read.lambda_functions), (false, wanted.lambda_functions));
    assert_eq!(eu.cloudtrail.list_tags(&arn).await?, owned_by("team/lake"));
    assert_eq!(eu.cloudtrail.get_trail("lake-trail").await?.map(|t| t.settings), Some(settings));
    assert_eq!(aws.region(US).cloudtrail.get_trail("lake-trail").await?, None);

    eu.cloudtrail.delete_trail("lake-trail").await?;
    assert!(eu.cloudtrail.delete_trail("lake-trail").await.expect_err("gone").is_not_found());
    Ok(())
}

#[tokio::test]
async fn roles_answer_create_twice_and_refuse_deletion_with_inline_policies() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let iam = aws.iam();
    let trust = lambda_trust();
    let tags = owned_by("team/etl");
    let arn = iam.create_role(&new_role("etl", &trust, &tags)).await?;
    assert_eq!(arn, format!("arn:aws:iam::{ACCOUNT}:role/lakeops/etl"));
    assert_eq!(iam.create_role(&new_role("etl", &trust, &tags)).await?, arn, "our own create again is success");
    let again = iam.create_role(&new_role("etl", &trust, &owned_by("team/other"))).await.expect_err("exists");
    assert_eq!(again.code.as_deref(), Some("EntityAlreadyExists"));

    iam.put_role_policy("etl", "access", "{}").await?;
    assert_eq!(iam.list_role_policies("etl").await?, ["access"]);
    assert_eq!(iam.get_role_policy("etl", "access").await?.as_deref(), Some("{}"));
    assert_eq!(iam.get_role_policy("etl", "other").await?, None);
    let conflict = iam.delete_role("etl").await.expect_err("has a policy");
    assert_eq!(conflict.code.as_deref(), Some("DeleteConflict"));
    iam.delete_role_policy("etl", "access").await?;
    iam.delete_role_policy("etl", "access").await?;
    iam.set_permissions_boundary("etl", Some("arn:aws:iam::aws:policy/Boundary")).await?;
    let role = iam.get_role("etl").await?.ok_or("no role")?;
    assert_eq!((role.permissions_boundary.as_deref(), role.tags), (Some("arn:aws:iam::aws:policy/Boundary"), tags));
    iam.delete_role("etl").await?;
    iam.delete_role("etl").await?;
    assert_eq!(iam.get_role("etl").await?, None);
    Ok(())
}

#[tokio::test]
async fn functions_need_an_assumable_role_and_refuse_updates_in_progress() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let lambda = aws.region(EU).lambda;
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/lakeops/etl");
    let unassumable = lambda.create_function(&function("etl", &role_arn)).await.expect_err("no role");
    assert_eq!(unassumable.code.as_deref(), Some("InvalidParameterValueException"));
    assert!(unassumable.message.contains("cannot be assumed"), "the answer the engine retries on");
    let trust = lambda_trust();
    aws.iam().create_role(&new_role("etl", &trust, &BTreeMap::new())).await?;
    let arn = lambda.create_function(&function("etl", &role_arn)).await?;
    let again = lambda.create_function(&function("etl", &role_arn)).await.expect_err("exists");
    assert_eq!((again.kind, again.code.as_deref()), (ErrorKind::Retryable, Some("ResourceConflictException")));

    aws.set_settle_calls(1);
    let mut config = function("etl", &role_arn).config;
    config.memory_mb = 512;
    lambda.update_configuration("etl", &config).await?;
    let busy = lambda.update_code("etl", &CodeLocation::default(), "arm64").await.expect_err("in progress");
    assert_eq!(busy.code.as_deref(), Some("ResourceConflictException"));
    let info = lambda.get_function("etl").await?.ok_or("no function")?;
    assert_eq!((info.config.memory_mb, info.last_update_status.as_deref()), (512, Some("Successful")));

    lambda.set_reserved_concurrency("etl", Some(5)).await?;
    lambda.tag(&arn, &owned_by("team/etl")).await?;
    let info = lambda.get_function("etl").await?.ok_or("no function")?;
    assert_eq!((info.reserved_concurrency, info.tags), (Some(5), owned_by("team/etl")));

    assert_eq!(lambda.get_policy("etl").await?, None);
    let permission = InvokePermission {
        statement_id: "s3".into(),
        principal: "s3.amazonaws.com".into(),
        source_arn: "arn:aws:s3:::b".into(),
        source_account: ACCOUNT.into(),
    };
    lambda.add_permission("etl", &permission).await?;
    let duplicate = lambda.add_permission("etl", &permission).await.expect_err("same statement id");
    assert_eq!(duplicate.code.as_deref(), Some("ResourceConflictException"));
    assert!(lambda.get_policy("etl").await?.is_some_and(|p| p.contains("arn:aws:s3:::b")));
    lambda.remove_permission("etl", "s3").await?;
    lambda.remove_permission("etl", "s3").await?;

    assert_eq!(lambda.get_code_signing_config("etl").await?, None);
    lambda.delete_function("etl").await?;
    lambda.delete_function("etl").await?;
    assert_eq!(lambda.get_function("etl").await?, None);
    Ok(())
}

#[tokio::test]
async fn log_groups_answer_create_twice_and_check_retention() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let logs = aws.region(EU).logs;
    logs.create_log_group("/aws/lambda/etl", "arn:k", &owned_by("team/etl")).await?;
    logs.create_log_group("/aws/lambda/etl", "arn:k", &owned_by("team/etl")).await.expect("ours again is success");
    let again = logs.create_log_group("/aws/lambda/etl", "arn:k", &owned_by("team/other")).await.expect_err("exists");
    assert_eq!((again.kind, again.code.as_deref()), (ErrorKind::AlreadyExists, Some("ResourceAlreadyExistsException")));
    assert!(logs.put_retention("/aws/lambda/etl", 42).await.is_err(), "42 days is not a retention CloudWatch offers");
    logs.put_retention("/aws/lambda/etl", 30).await?;
    let group = logs.describe_log_group("/aws/lambda/etl").await?.ok_or("no group")?;
    assert_eq!((group.retention_days, group.kms_key_id.as_deref()), (Some(30), Some("arn:k")));
    assert_eq!(logs.list_tags(&format!("{}:*", group.arn)).await?, owned_by("team/etl"));
    assert_eq!(logs.describe_log_group("/aws/lambda/et").await?, None, "names match exactly");
    logs.delete_log_group("/aws/lambda/etl").await?;
    logs.delete_log_group("/aws/lambda/etl").await?;
    Ok(())
}

#[tokio::test]
async fn a_dropped_response_still_applies_the_write() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    aws.drop_response_on(|service, operation| (service, operation) == ("kms", "CreateKey"));
    let kms = aws.region(EU).kms;
    let lost = kms.create_key("lake", "{}", &owned_by("team/lake")).await.expect_err("answer lost");
    assert_eq!((lost.kind, lost.code), (ErrorKind::Other, None));
    assert_eq!(aws.count(Kind::Key), 1, "the key exists although the caller never heard of it");

    aws.clear_faults();
    aws.reset_calls();
    aws.drop_response_at(1);
    aws.region(EU).s3.create_bucket("lake-raw", EU, false).await?;
    let lost = aws.region(EU).s3.put_bucket_tagging("lake-raw", &owned_by("team/lake")).await.expect_err("lost");
    assert_eq!(lost.code, None);
    assert_eq!(aws.bucket("lake-raw").map(|b| b.tags), Some(owned_by("team/lake")));
    Ok(())
}

#[tokio::test]
async fn after_a_crash_nothing_more_is_sent_or_changed() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let s3 = aws.region(EU).s3;
    aws.crash_after(2);
    s3.create_bucket("a", EU, false).await?;
    s3.put_bucket_tagging("a", &owned_by("team/lake")).await?;
    let refused = s3.create_bucket("b", EU, false).await.expect_err("crashed");
    assert_eq!((refused.kind, refused.code), (ErrorKind::Retryable, None));
    assert!(s3.get_bucket_tagging("a").await.is_err(), "reads are refused too");
    assert_eq!((aws.count(Kind::Bucket), aws.calls().len(), aws.refused_calls()), (1, 2, 2));

    aws.clear_faults();
    s3.create_bucket("b", EU, false).await?;
    assert_eq!(aws.count(Kind::Bucket), 2, "a restart runs again");
    Ok(())
}

#[tokio::test]
async fn injected_failures_have_no_effect_and_are_classified() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let ddb = aws.region(EU).dynamodb;
    aws.fail_times("CreateTable", "ThrottlingException", 400, 1);
    let throttled = ddb.create_table(&table_def("locks", "arn:k")).await.expect_err("throttled");
    assert_eq!((throttled.kind, throttled.code.as_deref()), (ErrorKind::Retryable, Some("ThrottlingException")));
    assert_eq!(aws.count(Kind::Table), 0);
    ddb.create_table(&table_def("locks", "arn:k")).await?;

    aws.fail_with("kms:TagResource", "AccessDeniedException", 400);
    let kms = aws.region(EU).kms;
    let key = kms.create_key("k", "{}", &BTreeMap::new()).await?;
    assert_eq!(kms.tag(&key.key_id, &BTreeMap::new()).await.expect_err("denied").kind, ErrorKind::AccessDenied);
    ddb.tag(&format!("arn:aws:dynamodb:{EU}:{ACCOUNT}:table/locks"), &BTreeMap::new()).await?;
    Ok(())
}

#[tokio::test]
async fn with_a_read_lag_writes_show_after_k_calls() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    aws.set_read_lag(2);
    let s3 = aws.region(EU).s3;
    s3.create_bucket("lake-raw", EU, false).await?;
    assert!(s3.get_bucket_tagging("lake-raw").await.expect_err("not visible yet").is_not_found());
    assert!(s3.get_bucket_tagging("lake-raw").await.expect_err("not visible yet").is_not_found());
    assert_eq!(s3.get_bucket_tagging("lake-raw").await?, BTreeMap::new(), "visible after 2 further calls");
    // Writes see the latest state at once.
    s3.put_bucket_tagging("lake-raw", &owned_by("team/lake")).await?;
    assert_eq!(s3.get_bucket_tagging("lake-raw").await?, BTreeMap::new());
    Ok(())
}

#[tokio::test]
async fn the_call_log_and_census_tell_what_happened() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    let eu = aws.region(EU);
    eu.s3.create_bucket("lake-raw", EU, false).await?;
    eu.s3.put_bucket_tagging("lake-raw", &owned_by("team/lake")).await?;
    eu.s3.get_bucket_policy("lake-raw").await?;
    let key = eu.kms.create_key("lake", "{}", &owned_by("team/lake")).await?;
    eu.dynamodb.create_table(&table_def("locks", &key.arn)).await?;
    eu.kms.create_key("other", "{}", &owned_by("team/other")).await?;

    let ops: Vec<_> = aws.calls().iter().map(|c| (c.service, c.operation, c.write)).collect();
    assert_eq!(
        ops,
        [
            ("s3", "CreateBucket", true),
            ("s3", "PutBucketTagging", true),
            ("s3", "GetBucketPolicy", false),
            ("kms", "CreateKey", true),
            ("dynamodb", "CreateTable", true),
            ("kms", "CreateKey", true),
        ]
    );
    assert_eq!(aws.writes().len(), 5);
    assert_eq!(aws.counts(), BTreeMap::from([(Kind::Bucket, 1), (Kind::Key, 2), (Kind::Table, 1)]));
    let mut owned = aws.resources_owned_by("team/lake");
    owned.sort();
    assert_eq!(
        owned,
        [(Kind::Key, key.arn), (Kind::Bucket, "lake-raw".to_string()), (Kind::Table, format!("{EU}/locks"))]
    );
    aws.reset_calls();
    assert!(aws.calls().is_empty());
    Ok(())
}

#[tokio::test]
async fn test_helpers_build_starting_states_without_calls() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    aws.with_bucket(EU, "lake-raw", true, &owned_by("team/lake"));
    aws.edit_bucket("lake-raw", |b| b.objects.insert("a.csv".into(), vec![ObjectVersion::new("v1")]));
    aws.with_role(&new_role("other", "{}", &owned_by("team/other")));
    assert_eq!(aws.role("other"), Some(Role::foreign("other", ACCOUNT, "team/other")));
    let key = aws.with_key(EU, Some("alias/lake"), "{}", &owned_by("team/lake"));
    aws.edit_bucket("lake-raw", |b| b.versioning = Some("Suspended".into()));
    aws.edit_key(EU, "alias/lake", |k| k.rotation_enabled = true);
    assert!(aws.calls().is_empty());

    let eu = aws.region(EU);
    assert_eq!(eu.s3.get_versioning("lake-raw").await?.as_deref(), Some("Suspended"));
    assert_eq!(eu.s3.head_object("lake-raw", "a.csv").await?.and_then(|v| v.version_id).as_deref(), Some("v1"));
    assert_eq!(eu.kms.describe_key("alias/lake").await?.map(|k| k.key_id), Some(key.clone()));
    assert!(eu.kms.get_rotation(&key).await?.enabled);
    assert!(aws.remove_alias(EU, "alias/lake"));
    assert_eq!(eu.kms.describe_key("alias/lake").await?, None);
    Ok(())
}

#[tokio::test]
async fn a_fork_starts_from_the_same_state_and_makes_the_same_ids() -> TestResult {
    let aws = FakeAws::new(ACCOUNT);
    aws.with_bucket(EU, "lake-raw", false, &owned_by("team/lake"));
    aws.region(EU).s3.get_bucket_tagging("lake-raw").await?;
    aws.crash_after(0);
    let fork = aws.fork();
    assert!(fork.calls().is_empty(), "a fresh call log");
    let a = fork.region(EU).kms.create_key("k", "{}", &BTreeMap::new()).await?;
    aws.clear_faults();
    let b = aws.region(EU).kms.create_key("k", "{}", &BTreeMap::new()).await?;
    assert_eq!(a, b, "the same calls from the same state make the same ids");
    assert!(fork.bucket("lake-raw").is_some());
    fork.edit_bucket("lake-raw", |b| b.policy = Some("{}".into()));
    assert_eq!(aws.bucket("lake-raw").and_then(|b| b.policy), None, "the copies are independent");
    Ok(())
}
