//! The in-memory fake account (`lakeops::aws::fake`) and the SDK adapters against the real
//! moto server answer one sequence of calls alike: the same successes, the same `None`s, the
//! same error kinds and codes. The engine's property tests run on the fake; this keeps it
//! honest where the emulator can show the answer.
use std::collections::BTreeMap;
use std::sync::Arc;

use lakeops::aws::clients::{AwsClients, Regional};
use lakeops::aws::cloudtrail::TrailSettings;
use lakeops::aws::dynamodb::{KeyDef, TableDef};
use lakeops::aws::error::AwsResult;
use lakeops::aws::fake::FakeAws;
use lakeops::aws::iam::{IamApi, NewRole};
use lakeops::aws::recorder::RequestRecorder;
use lakeops_testenv::{shared, unique_name};
use serde_json::json;

const REGION: &str = "eu-west-1";

/// Steps where moto 5.2.5 accepts what AWS refuses, with moto's answer: a bucket policy that
/// is not JSON (AWS: `MalformedPolicy`) and a second trail of the same name (AWS:
/// `TrailAlreadyExistsException`). The fake answers as AWS does (its unit tests pin that).
const MOTO_QUIRKS: &[&str] = &["malformed policy: ok ", "create trail again: ok "];

/// One answer, reduced to what must agree: success (with what the caller branches on) or
/// the error's kind and code.
fn outcome<T>(step: &str, result: AwsResult<T>, summary: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(v) => format!("{step}: ok {}", summary(v)),
        Err(e) => format!("{step}: {:?} {}", e.kind, e.code.unwrap_or_default()),
    }
}

fn unit(_: ()) -> String {
    String::new()
}

/// The same calls against either implementation; `n` makes the names unique per run.
async fn scenario(aws: &Regional, iam: &Arc<dyn IamApi>, account: &str, n: &str) -> Vec<String> {
    let bucket = format!("{n}-raw");
    let trail_bucket = format!("{n}-trail");
    let tags = BTreeMap::from([("lakeops.dev/owner".to_string(), format!("test/{n}"))]);
    let root = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Root", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"}]})
    .to_string();
    let trail_policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Trail", "Effect": "Allow",
        "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": ["s3:GetBucketAcl", "s3:PutObject"],
        "Resource": [format!("arn:aws:s3:::{trail_bucket}"), format!("arn:aws:s3:::{trail_bucket}/*")]}]})
    .to_string();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let mut out = Vec::new();

    // S3
    out.push(outcome("create bucket", aws.s3.create_bucket(&bucket, REGION, true).await, unit));
    out.push(outcome("create bucket again", aws.s3.create_bucket(&bucket, REGION, true).await, unit));
    out.push(outcome("get policy of a new bucket", aws.s3.get_bucket_policy(&bucket).await, |p| format!("{p:?}")));
    out.push(outcome("object lock of a new bucket", aws.s3.get_object_lock(&bucket).await, |l| format!("{l:?}")));
    out.push(outcome("versioning of a locked bucket", aws.s3.get_versioning(&bucket).await, |v| format!("{v:?}")));
    out.push(outcome("malformed policy", aws.s3.put_bucket_policy(&bucket, "not json").await, unit));
    out.push(outcome("tags of a missing bucket", aws.s3.get_bucket_tagging(&format!("{n}-missing")).await, |t| {
        format!("{t:?}")
    }));
    out.push(outcome("put tags", aws.s3.put_bucket_tagging(&bucket, &tags).await, unit));
    out.push(outcome("tags", aws.s3.get_bucket_tagging(&bucket).await, |t| format!("{t:?}")));

    // KMS
    let key = aws.kms.create_key("agreement", &root, &tags).await;
    let key_id = key.as_ref().map(|k| k.key_id.clone()).unwrap_or_default();
    out.push(outcome("create key", key, |k| format!("{} {}", k.state, k.manager)));
    let alias = format!("alias/{n}");
    out.push(outcome("create alias", aws.kms.create_alias(&alias, &key_id).await, unit));
    out.push(outcome("create alias again", aws.kms.create_alias(&alias, &key_id).await, unit));
    out.push(outcome("describe by alias", aws.kms.describe_key(&alias).await, |k| {
        format!("{}", k.is_some_and(|k| k.key_id == key_id))
    }));
    out.push(outcome("describe a missing alias", aws.kms.describe_key(&format!("alias/{n}-missing")).await, |k| {
        format!("{k:?}")
    }));
    out.push(outcome("rotation of a new key", aws.kms.get_rotation(&key_id).await, |r| format!("{}", r.enabled)));
    out.push(outcome("key tags", aws.kms.list_tags(&key_id).await, |t| format!("{t:?}")));

    // DynamoDB
    let def = TableDef {
        name: n.to_string(),
        partition_key: KeyDef { name: "pk".into(), type_: "S".into() },
        sort_key: None,
        kms_key_arn: format!("arn:aws:kms:{REGION}:{account}:key/{key_id}"),
        tags: tags.clone(),
    };
    out.push(outcome("create table", aws.dynamodb.create_table(&def).await, |t| format!("{}", t.deletion_protection)));
    out.push(outcome("create table again", aws.dynamodb.create_table(&def).await, |_| String::new()));
    out.push(outcome("describe a missing table", aws.dynamodb.describe_table(&format!("{n}-missing")).await, |t| {
        format!("{t:?}")
    }));
    out.push(outcome("pitr of a new table", aws.dynamodb.get_pitr(n).await, |p| format!("{p}")));
    out.push(outcome("items of a new table", aws.dynamodb.has_items(n).await, |i| format!("{i}")));
    out.push(outcome("delete a protected table", aws.dynamodb.delete_table(n).await, unit));

    // CloudTrail
    let settings = TrailSettings {
        name: n.to_string(),
        s3_bucket: trail_bucket.clone(),
        s3_key_prefix: "trail".into(),
        kms_key_id: format!("arn:aws:kms:{REGION}:{account}:key/{key_id}"),
        multi_region: false,
        global_service_events: false,
        log_file_validation: true,
        ..TrailSettings::default()
    };
    out.push(outcome("trail without its bucket", aws.cloudtrail.create_trail(&settings, &tags).await, |_| {
        String::new()
    }));
    out.push(outcome("create trail bucket", aws.s3.create_bucket(&trail_bucket, REGION, false).await, unit));
    out.push(outcome("trail bucket policy", aws.s3.put_bucket_policy(&trail_bucket, &trail_policy).await, unit));
    out.push(outcome("create trail", aws.cloudtrail.create_trail(&settings, &tags).await, |_| String::new()));
    out.push(outcome("create trail again", aws.cloudtrail.create_trail(&settings, &tags).await, |_| String::new()));
    out.push(outcome("new trail logging", aws.cloudtrail.is_logging(n).await, |l| format!("{l}")));
    out.push(outcome("get a missing trail", aws.cloudtrail.get_trail(&format!("{n}-missing")).await, |t| {
        format!("{t:?}")
    }));

    // IAM
    let role = NewRole {
        name: n,
        path: "/lakeops/",
        description: "agreement",
        assume_role_policy: &trust,
        permissions_boundary: None,
        tags: &tags,
    };
    out.push(outcome("create role", iam.create_role(&role).await, |arn| format!("{}", arn.ends_with(n))));
    out.push(outcome("create role again", iam.create_role(&role).await, |_| String::new()));
    out.push(outcome("put inline policy", iam.put_role_policy(n, "access", &root).await, unit));
    out.push(outcome("list inline policies", iam.list_role_policies(n).await, |p| format!("{p:?}")));
    out.push(outcome("delete a role with an inline policy", iam.delete_role(n).await, unit));
    out.push(outcome("missing inline policy", iam.get_role_policy(n, "other").await, |p| format!("{p:?}")));
    out.push(outcome("get a missing role", iam.get_role(&format!("{n}-missing")).await, |r| format!("{r:?}")));

    // CloudWatch Logs
    let group = format!("/lakeops/{n}");
    out.push(outcome("create log group", aws.logs.create_log_group(&group, "", &tags).await, unit));
    out.push(outcome("create log group again", aws.logs.create_log_group(&group, "", &tags).await, unit));
    out.push(outcome("describe log group", aws.logs.describe_log_group(&group).await, |g| {
        format!("{:?}", g.map(|g| g.retention_days))
    }));
    out.push(outcome("delete a missing log group", aws.logs.delete_log_group(&format!("{group}-x")).await, unit));

    // Lambda
    out.push(outcome("get a missing function", aws.lambda.get_function(n).await, |f| format!("{f:?}")));
    out.push(outcome("delete a missing function", aws.lambda.delete_function(n).await, unit));

    // AWS Backup (moto with the project's extension for selections, UpdateBackupPlan, ListTags)
    let key = format!("arn:aws:kms:{REGION}:{account}:key/{n}");
    let b = &aws.backup;
    let vault = b.create_vault(n, &key, &tags, "r1").await;
    let vault_arn = vault.as_ref().ok().cloned().unwrap_or_default();
    out.push(outcome("create vault", vault, |arn| format!("{}", arn.ends_with(n))));
    out.push(outcome("create vault again", b.create_vault(n, &key, &tags, "r2").await, |_| String::new()));
    out.push(outcome("describe vault", b.describe_vault(n).await, |v| {
        format!("{:?}", v.map(|v| (v.encryption_key_arn, v.recovery_points, v.lock)))
    }));
    out.push(outcome("describe a missing vault", b.describe_vault(&format!("{n}-x")).await, |v| format!("{v:?}")));
    out.push(outcome("lock vault", b.put_vault_lock(n, 7, 3).await, unit));
    out.push(outcome("vault lock minimum", b.describe_vault(n).await, |v| {
        format!("{:?}", v.and_then(|v| v.lock).map(|l| l.min_retention_days))
    }));
    out.push(outcome("vault tags", b.list_tags(&vault_arn).await, |t| format!("{t:?}")));
    let rule = |days| lakeops::aws::backup::PlanRule {
        name: "r".into(),
        target_vault: n.to_string(),
        schedule: "cron(0 5 ? * * *)".into(),
        delete_after_days: Some(days),
        copies: vec![],
    };
    let doc = |days| lakeops::aws::backup::PlanDocument { name: n.to_string(), rules: vec![rule(days)] };
    let plan = b.create_plan(&doc(35), &tags, &format!("{n}-plan")).await;
    let plan_id = plan.as_ref().map(|c| c.id.clone()).unwrap_or_default();
    out.push(outcome("create plan", plan, unit_of));
    out.push(outcome("list plans by token", b.list_plans().await, |p| {
        format!("{:?}", p.iter().filter(|p| p.creator_request_id.as_deref() == Some(&format!("{n}-plan"))).count())
    }));
    out.push(outcome("update plan", b.update_plan(&plan_id, &doc(20)).await, unit));
    out.push(outcome("get plan", b.get_plan(&plan_id).await, |p| format!("{:?}", p.map(|p| (p.document, p.deleted)))));
    let backup_role = format!("{n}-backup");
    let role = NewRole {
        name: &backup_role,
        path: "/lakeops/",
        description: "",
        assume_role_policy: &trust,
        permissions_boundary: None,
        tags: &tags,
    };
    let role_arn = iam.create_role(&role).await.unwrap_or_default();
    let selection = lakeops::aws::backup::SelectionSpec {
        name: "s".into(),
        iam_role_arn: role_arn,
        resources: vec![format!("arn:aws:dynamodb:{REGION}:{account}:table/{n}")],
    };
    let created = b.create_selection(&plan_id, &selection, &format!("{n}-s")).await;
    let selection_id = created.as_ref().ok().cloned().unwrap_or_default();
    out.push(outcome("create selection", created, |_| String::new()));
    out.push(outcome(
        "create selection again",
        b.create_selection(&plan_id, &selection, &format!("{n}-s")).await,
        |_| String::new(),
    ));
    out.push(outcome("list selections", b.list_selections(&plan_id).await, |s| {
        format!("{:?}", s.iter().map(|s| (s.name.clone(), s.creator_request_id.clone())).collect::<Vec<_>>())
    }));
    out.push(outcome("delete a plan with a selection", b.delete_plan(&plan_id).await, unit));
    out.push(outcome("delete selection", b.delete_selection(&plan_id, &selection_id).await, unit));
    out.push(outcome("delete plan", b.delete_plan(&plan_id).await, unit));
    out.push(outcome("list plans after deletion", b.list_plans().await, |p| {
        format!("{:?}", p.iter().filter(|p| p.creator_request_id.as_deref() == Some(&format!("{n}-plan"))).count())
    }));
    out.push(outcome("delete vault", b.delete_vault(n).await, unit));
    out.push(outcome("vault after deletion", b.describe_vault(n).await, |v| format!("{v:?}")));
    out
}

fn unit_of<T>(_: T) -> String {
    String::new()
}

#[tokio::test]
async fn the_fake_and_the_sdk_adapters_answer_alike() -> anyhow::Result<()> {
    let env = shared().await;
    let clients = AwsClients::new(env.aws_config(REGION), RequestRecorder::new());
    let account = clients.account_id().await?;
    let n = unique_name("agree");
    let real = scenario(&clients.region(REGION), &clients.iam(), &account, &n).await;

    let fake = FakeAws::new(&account);
    let faked = scenario(&fake.region(REGION), &fake.iam(), &account, &n).await;

    assert_eq!(real.len(), faked.len());
    for step in ["create plan: ok ", "update plan: ok ", "create selection: ok ", "delete vault: ok "] {
        assert!(real.iter().any(|r| r == step), "moto answered {step:?} otherwise: {real:#?}");
    }
    let differing: Vec<String> = real
        .iter()
        .zip(&faked)
        .filter(|(r, f)| r != f && !MOTO_QUIRKS.contains(&r.as_str()))
        .map(|(r, f)| format!("moto: {r}\nfake: {f}"))
        .collect();
    assert!(differing.is_empty(), "the fake disagrees with moto:\n{}", differing.join("\n"));
    for quirk in MOTO_QUIRKS {
        assert!(real.iter().any(|r| r == quirk), "moto no longer answers {quirk:?}; compare that step again");
    }
    Ok(())
}
