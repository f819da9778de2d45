//! The KMS and DynamoDB adapters and the client factory against the real moto server: every
//! call round-trips, and the request recorder counts exactly the calls made.
use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use lakeops::aws::clients::AwsClients;
use lakeops::aws::dynamodb::{KeyDef, TableDef, TableUpdate};
use lakeops::aws::error::ErrorKind;
use lakeops::aws::kms::Rotation;
use lakeops::aws::recorder::{Counts, RequestRecorder};
use lakeops_testenv::{shared, unique_name};
use serde_json::{Value, json};

const REGION: &str = "eu-west-1";

fn clients(env: &lakeops_testenv::TestEnv) -> AwsClients {
    AwsClients::new(env.aws_config(REGION), RequestRecorder::new())
}

fn counts(service: &str, calls: &[(&str, u64)]) -> Counts {
    calls.iter().map(|(op, n)| ((service.to_string(), (*op).to_string()), *n)).collect()
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

/// A key policy that lets the account administer the key (the KMS default, spelled out).
fn key_policy(account: &str, extra_sid: Option<&str>) -> Value {
    let mut statements = vec![json!({
        "Sid": "EnableRootAccess",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
        "Action": "kms:*",
        "Resource": "*",
    })];
    if let Some(sid) = extra_sid {
        statements.push(json!({
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": "dynamodb.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn parse(policy: &str) -> Value {
    serde_json::from_str(policy).unwrap_or_else(|e| panic!("the key policy is not JSON ({e}): {policy}"))
}

#[tokio::test]
async fn account_id_is_twelve_digits_and_asked_for_once() -> anyhow::Result<()> {
    let env = shared().await;
    let aws = clients(env);

    let first = aws.account_id().await?;
    let second = aws.clone().account_id().await?;

    assert_eq!(first, second);
    assert!(first.len() == 12 && first.chars().all(|c| c.is_ascii_digit()), "{first}");
    assert_eq!(aws.recorder().snapshot(), counts("sts", &[("GetCallerIdentity", 1)]));
    Ok(())
}

#[tokio::test]
async fn kms_adapter_round_trips_every_call() -> anyhow::Result<()> {
    let env = shared().await;
    let aws = clients(env);
    let account = aws.account_id().await?;
    let kms = aws.region(REGION).kms;
    let before = aws.recorder().snapshot();
    let name = unique_name("adapters-kms");
    let alias = format!("alias/{name}");

    // CreateKey with a policy and tags.
    let policy = key_policy(&account, None);
    let created =
        kms.create_key("lakeops adapter test", &policy.to_string(), &tags(&[("lakeops.io/test", &name)])).await?;
    assert_eq!((created.state.as_str(), created.manager.as_str()), ("Enabled", "CUSTOMER"));
    assert!(created.arn.starts_with(&format!("arn:aws:kms:{REGION}:{account}:key/")), "{created:?}");
    assert!(created.arn.ends_with(&created.key_id), "{created:?}");

    // CreateAlias, then DescribeKey by alias; a missing alias or key is None.
    kms.create_alias(&alias, &created.key_id).await?;
    assert_eq!(kms.describe_key(&alias).await?, Some(created.clone()));
    assert_eq!(kms.describe_key(&format!("alias/{}", unique_name("adapters-missing"))).await?, None);
    assert_eq!(kms.describe_key("0b6d1c2e-0000-4000-8000-000000000000").await?, None);

    // Rotation: off for a new key, on after EnableKeyRotation.
    assert!(!kms.get_rotation(&created.key_id).await?.enabled);
    kms.enable_rotation(&created.key_id, 180).await?;
    // moto ignores RotationPeriodInDays: GetKeyRotationStatus reports no period at all (real
    // KMS echoes the 180 asked for), so the engine must not treat a missing period as drift to fix
    // with another EnableKeyRotation, or it writes on every reconcile against moto.
    assert_eq!(kms.get_rotation(&created.key_id).await?, Rotation { enabled: true, period_days: None });

    // Key policy: read back as sent (compared as JSON), replaced, read back again.
    assert_eq!(parse(&kms.get_key_policy(&created.key_id).await?), policy);
    let wider = key_policy(&account, Some("AllowDynamoDB"));
    kms.put_key_policy(&created.key_id, &wider.to_string()).await?;
    assert_eq!(parse(&kms.get_key_policy(&created.key_id).await?), wider);

    // Tags: those of CreateKey, then TagResource adds one.
    assert_eq!(kms.list_tags(&created.key_id).await?, tags(&[("lakeops.io/test", &name)]));
    kms.tag(&created.key_id, &tags(&[("team", "data")])).await?;
    assert_eq!(kms.list_tags(&created.key_id).await?, tags(&[("lakeops.io/test", &name), ("team", "data")]));

    // ScheduleKeyDeletion leaves the key PendingDeletion.
    kms.schedule_deletion(&created.key_id, 7).await?;
    let deleted = kms.describe_key(&created.key_id).await?.map(|k| k.state);
    assert_eq!(deleted.as_deref(), Some("PendingDeletion"));

    assert_eq!(
        aws.recorder().since(&before),
        counts(
            "kms",
            &[
                ("CreateKey", 1),
                ("CreateAlias", 1),
                ("DescribeKey", 4),
                ("GetKeyRotationStatus", 2),
                ("EnableKeyRotation", 1),
                ("GetKeyPolicy", 2),
                ("PutKeyPolicy", 1),
                ("ListResourceTags", 2),
                ("TagResource", 1),
                ("ScheduleKeyDeletion", 1),
            ],
        )
    );
    Ok(())
}

#[tokio::test]
async fn dynamodb_adapter_round_trips_every_call() -> anyhow::Result<()> {
    let env = shared().await;
    let aws = clients(env);
    let regional = aws.region(REGION);
    let account = aws.account_id().await?;
    let key = regional.kms.create_key("lakeops table key", &key_policy(&account, None).to_string(), &tags(&[])).await?;
    let (dynamodb, before) = (regional.dynamodb, aws.recorder().snapshot());
    let name = unique_name("adapters-table");
    let def = TableDef {
        name: name.clone(),
        partition_key: KeyDef { name: "pk".into(), type_: "S".into() },
        sort_key: Some(KeyDef { name: "sk".into(), type_: "N".into() }),
        kms_key_arn: key.arn.clone(),
        tags: tags(&[("lakeops.io/test", &name)]),
    };

    // CreateTable, then DescribeTable shows what it was created with.
    assert_eq!(dynamodb.describe_table(&name).await?, None);
    let created = dynamodb.create_table(&def).await?;
    assert!(created.arn.starts_with(&format!("arn:aws:dynamodb:{REGION}:{account}:table/{name}")), "{created:?}");
    let info = dynamodb.describe_table(&name).await?.expect("the table exists after CreateTable");
    assert_eq!(info.arn, created.arn);
    assert_eq!(info.status, "ACTIVE");
    assert_eq!(info.billing_mode.as_deref(), Some("PAY_PER_REQUEST"));
    assert_eq!(info.sse_status.as_deref(), Some("ENABLED"));
    assert_eq!(info.sse_kms_key_arn.as_deref(), Some(key.arn.as_str()));
    assert!(info.deletion_protection);
    assert!(info.stream_enabled);
    assert_eq!(info.stream_view_type.as_deref(), Some("NEW_AND_OLD_IMAGES"));
    assert!(info.replicas.is_empty(), "{info:?}");

    // Point-in-time recovery: off, then on.
    assert!(!dynamodb.get_pitr(&name).await?);
    dynamodb.set_pitr(&name, true).await?;
    assert!(dynamodb.get_pitr(&name).await?);

    // TTL: none, then on the attribute given.
    assert_eq!(dynamodb.get_ttl(&name).await?, None);
    dynamodb.set_ttl(&name, "expires_at", true).await?;
    assert_eq!(dynamodb.get_ttl(&name).await?.as_deref(), Some("expires_at"));

    // Tags: those of CreateTable, then TagResource adds one.
    assert_eq!(dynamodb.list_tags(&info.arn).await?, def.tags);
    dynamodb.tag(&info.arn, &tags(&[("team", "data")])).await?;
    assert_eq!(dynamodb.list_tags(&info.arn).await?, tags(&[("lakeops.io/test", &name), ("team", "data")]));

    // has_items: false while empty, true after an item is written (by a client the recorder
    // does not see).
    assert!(!dynamodb.has_items(&name).await?);
    env.dynamodb(REGION)
        .put_item()
        .table_name(&name)
        .item("pk", AttributeValue::S("lock".into()))
        .item("sk", AttributeValue::N("1".into()))
        .send()
        .await?;
    assert!(dynamodb.has_items(&name).await?);

    // Deletion protection is enforced; lifting it lets DeleteTable through.
    let refused = dynamodb.delete_table(&name).await.expect_err("deletion protection must refuse DeleteTable");
    // moto answers as AWS does: 400 ValidationException, which lakeops classifies as Invalid.
    assert_eq!((refused.kind, refused.code.as_deref()), (ErrorKind::Invalid, Some("ValidationException")), "{refused}");
    assert!(dynamodb.describe_table(&name).await?.is_some());
    dynamodb.update_table(&name, &TableUpdate { deletion_protection: Some(false), ..TableUpdate::default() }).await?;
    assert!(!dynamodb.describe_table(&name).await?.expect("still there").deletion_protection);
    dynamodb.delete_table(&name).await?;
    assert_eq!(dynamodb.describe_table(&name).await?, None);

    assert_eq!(
        aws.recorder().since(&before),
        counts(
            "dynamodb",
            &[
                ("CreateTable", 1),
                ("DescribeTable", 5),
                ("DescribeContinuousBackups", 2),
                ("UpdateContinuousBackups", 1),
                ("DescribeTimeToLive", 2),
                ("UpdateTimeToLive", 1),
                ("ListTagsOfResource", 2),
                ("TagResource", 1),
                ("Scan", 2),
                ("DeleteTable", 2),
                ("UpdateTable", 1),
            ],
        )
    );
    Ok(())
}

#[tokio::test]
async fn the_fault_hook_refuses_requests_before_moto_sees_them() -> anyhow::Result<()> {
    let env = shared().await;
    let aws = clients(env);
    let kms = aws.region(REGION).kms;
    aws.recorder().fail_after(Some(1));

    let created = kms
        .create_key("lakeops fault hook test", &key_policy(&aws_account(env).await?, None).to_string(), &tags(&[]))
        .await?;
    let refused = kms.describe_key(&created.key_id).await.expect_err("the second request must be refused");
    assert!(refused.message.contains("fault hook"), "{refused}");

    aws.recorder().fail_after(None);
    assert_eq!(kms.describe_key(&created.key_id).await?.map(|k| k.key_id), Some(created.key_id));
    // The refused request was never sent, so it is not counted.
    assert_eq!(aws.recorder().snapshot(), counts("kms", &[("CreateKey", 1), ("DescribeKey", 1)]));
    Ok(())
}

/// The account id, asked through a client whose requests this test does not count.
async fn aws_account(env: &lakeops_testenv::TestEnv) -> anyhow::Result<String> {
    Ok(clients(env).account_id().await?)
}
