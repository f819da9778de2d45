//! The S3 adapter against moto: every `S3Api` method round-trips through the real wire
//! protocol. Where moto differs from AWS the test says so and asserts what moto does.
use std::collections::BTreeMap;

use anyhow::Result;
use lakeops::aws::error::ErrorKind;
use lakeops::aws::s3::{BucketEncryption, DefaultRetention, LifecycleRule, Logging, PublicAccessBlock, S3Api, SdkS3};
use lakeops_testenv::{shared, unique_name};

const REGION: &str = "eu-west-1";

async fn adapter() -> (SdkS3, aws_sdk_s3::Client) {
    let env = shared().await;
    let raw = env.s3(REGION);
    (SdkS3::new(raw.clone()), raw)
}

/// A fresh bucket in [`REGION`], created through the adapter.
async fn new_bucket(s3: &SdkS3, prefix: &str, object_lock: bool) -> Result<String> {
    let bucket = unique_name(prefix);
    s3.create_bucket(&bucket, REGION, object_lock).await?;
    Ok(bucket)
}

async fn put_object(raw: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &str) -> Result<()> {
    raw.put_object().bucket(bucket).key(key).body(body.as_bytes().to_vec().into()).send().await?;
    Ok(())
}

#[tokio::test]
async fn bucket_created_with_object_lock_reports_lock_and_retention() -> Result<()> {
    let (s3, _) = adapter().await;
    let bucket = new_bucket(&s3, "s3-lock", true).await?;

    assert_eq!(s3.get_object_lock(&bucket).await?, (true, None));
    // Object Lock turns versioning on, on AWS and in moto.
    assert_eq!(s3.get_versioning(&bucket).await?.as_deref(), Some("Enabled"));
    // CreateBucket asked for BucketOwnerEnforced.
    assert_eq!(s3.get_ownership_controls(&bucket).await?.as_deref(), Some("BucketOwnerEnforced"));

    let retention = DefaultRetention { mode: "GOVERNANCE".into(), days: 1 };
    s3.put_object_lock_retention(&bucket, &retention).await?;
    assert_eq!(s3.get_object_lock(&bucket).await?, (true, Some(retention)));

    // Creating a bucket we already own is success, so reconciles can always call it.
    s3.create_bucket(&bucket, REGION, true).await?;
    Ok(())
}

#[tokio::test]
async fn bucket_without_object_lock_reports_it_off() -> Result<()> {
    let (s3, _) = adapter().await;
    let bucket = new_bucket(&s3, "s3-nolock", false).await?;
    assert_eq!(s3.get_object_lock(&bucket).await?, (false, None));
    assert_eq!(s3.get_versioning(&bucket).await?, None, "versioning was never enabled");

    s3.enable_versioning(&bucket).await?;
    assert_eq!(s3.get_versioning(&bucket).await?.as_deref(), Some("Enabled"));
    Ok(())
}

#[tokio::test]
async fn tags_round_trip_and_are_replaced_as_a_whole() -> Result<()> {
    let (s3, _) = adapter().await;
    let bucket = new_bucket(&s3, "s3-tags", false).await?;
    assert_eq!(s3.get_bucket_tagging(&bucket).await?, BTreeMap::new());

    let tags: BTreeMap<String, String> =
        [("lakeops.io/lake", "sales"), ("team", "data")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
    s3.put_bucket_tagging(&bucket, &tags).await?;
    assert_eq!(s3.get_bucket_tagging(&bucket).await?, tags);

    let replaced: BTreeMap<String, String> = [("lakeops.io/lake".to_owned(), "sales".to_owned())].into();
    s3.put_bucket_tagging(&bucket, &replaced).await?;
    assert_eq!(s3.get_bucket_tagging(&bucket).await?, replaced);
    Ok(())
}

#[tokio::test]
async fn kms_default_encryption_round_trips() -> Result<()> {
    let (s3, _) = adapter().await;
    let bucket = new_bucket(&s3, "s3-sse", false).await?;
    // moto differs from AWS: since 2023 AWS encrypts every new bucket with SSE-S3 and
    // GetBucketEncryption returns AES256; moto reports no configuration.
    assert_eq!(s3.get_bucket_encryption(&bucket).await?, None);

    // moto does not check that the key exists (AWS does, when objects are written).
    let encryption = BucketEncryption {
        algorithm: "aws:kms".into(),
        kms_key_id: Some("arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab".into()),
        bucket_key_enabled: true,
    };
    s3.put_bucket_encryption(&bucket, &encryption).await?;
    assert_eq!(s3.get_bucket_encryption(&bucket).await?, Some(encryption));
    Ok(())
}

#[tokio::test]
async fn public_access_block_round_trips() -> Result<()> {
    let (s3, _) = adapter().await;
    let bucket = new_bucket(&s3, "s3-pab", false).await?;
    // moto differs from AWS: new AWS buckets have all four flags on by default; moto has none.
    assert_eq!(s3.get_public_access_block(&bucket).await?, None);

    s3.put_public_access_block(&bucket, PublicAccessBlock::ALL).await?;
    assert_eq!(s3.get_public_access_block(&bucket).await?, Some(PublicAccessBlock::ALL));

    let partial = PublicAccessBlock { block_public_acls: true, block_public_policy: true, ..Default::default() };
    s3.put_public_access_block(&bucket, partial).await?;
    assert_eq!(s3.get_public_access_block(&bucket).await?, Some(partial));
    Ok(())
}

#[tokio::test]
async fn ownership_controls_round_trip() -> Result<()> {
    let (s3, _) = adapter().await;
    let bucket = new_bucket(&s3, "s3-own", false).await?;
    assert_eq!(s3.get_ownership_controls(&bucket).await?.as_deref(), Some("BucketOwnerEnforced"));

    s3.put_ownership_controls(&bucket, "BucketOwnerPreferred").await?;
    assert_eq!(s3.get_ownership_controls(&bucket).await?.as_deref(), Some("BucketOwnerPreferred"));
    s3.put_ownership_controls(&bucket, "BucketOwnerEnforced").await?;
    assert_eq!(s3.get_ownership_controls(&bucket).await?.as_deref(), Some("BucketOwnerEnforced"));
    Ok(())
}

#[tokio::test]
async fn tls_only_policy_round_trips() -> Result<()> {
    let (s3, raw) = adapter().await;
    let bucket = new_bucket(&s3, "s3-policy", false).await?;
    assert_eq!(s3.get_bucket_policy(&bucket).await?, None);

    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }]
    });
    s3.put_bucket_policy(&bucket, &policy.to_string()).await?;
    let stored = s3.get_bucket_policy(&bucket).await?.ok_or_else(|| anyhow::anyhow!("policy missing"))?;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stored)?, policy);

    // Over HTTPS objects still go in; over plain HTTP the policy refuses them.
    put_object(&raw, &bucket, "over-tls.txt", "x").await?;
    let env = shared().await;
    let plain = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&env.aws_config_without_tls(REGION)).force_path_style(true).build(),
    );
    let refused = put_object(&plain, &bucket, "plain.txt", "x").await.expect_err("plain HTTP is refused");
    let status = refused
        .downcast_ref::<aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::put_object::PutObjectError>>()
        .and_then(|e| e.raw_response())
        .map(|r| r.status().as_u16());
    assert_eq!(status, Some(403), "{refused:?}");

    // Bucket-level reads still work with the policy in place (the engine needs them).
    assert_eq!(s3.count_object_versions(&bucket, 10).await?, 1);
    Ok(())
}

#[tokio::test]
async fn access_logging_is_turned_on_and_off() -> Result<()> {
    let (s3, _) = adapter().await;
    let bucket = new_bucket(&s3, "s3-logged", false).await?;
    let target = new_bucket(&s3, "s3-logs", false).await?;
    assert_eq!(s3.get_bucket_logging(&bucket).await?, None);

    let logging = Logging { target_bucket: target.clone(), target_prefix: format!("s3/{bucket}/") };
    let refused = s3.put_bucket_logging(&bucket, Some(&logging)).await.expect_err("target has no delivery policy");
    assert_eq!(refused.code.as_deref(), Some("InvalidTargetBucketForLogging"), "{refused}");
    assert_eq!(refused.kind, ErrorKind::Invalid);

    // The target must let the logging service write; with BucketOwnerEnforced (ACLs off) a
    // bucket policy is the only way. moto differs from AWS in how it recognises that policy: it
    // ignores the Condition, and matches only a statement whose `Principal.Service` and
    // `Resource` are single strings (the Resource equal to `arn:aws:s3:::TARGET/PREFIX*`,
    // `.../*` or the bucket ARN). The same grant written with one-element lists, as AWS accepts
    // and as typed policy builders emit, is refused.
    let delivery = |as_lists: bool| {
        let service = "logging.s3.amazonaws.com";
        let resource = format!("arn:aws:s3:::{target}/*");
        let (principal, resource) = if as_lists {
            (serde_json::json!([service]), serde_json::json!([resource]))
        } else {
            (serde_json::json!(service), serde_json::json!(resource))
        };
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "S3ServerAccessLogs",
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": ["s3:PutObject"],
                "Resource": resource,
                "Condition": {"ArnLike": {"aws:SourceArn": [format!("arn:aws:s3:::{bucket}")]}}
            }]
        })
        .to_string()
    };
    s3.put_bucket_policy(&target, &delivery(true)).await?;
    let refused = s3.put_bucket_logging(&bucket, Some(&logging)).await.expect_err("moto: lists are not matched");
    assert_eq!(refused.code.as_deref(), Some("InvalidTargetBucketForLogging"), "{refused}");
    s3.put_bucket_policy(&target, &delivery(false)).await?;

    s3.put_bucket_logging(&bucket, Some(&logging)).await?;
    assert_eq!(s3.get_bucket_logging(&bucket).await?, Some(logging));

    s3.put_bucket_logging(&bucket, None).await?;
    assert_eq!(s3.get_bucket_logging(&bucket).await?, None);
    Ok(())
}

#[tokio::test]
async fn lifecycle_rules_round_trip_with_every_field() -> Result<()> {
    let (s3, _) = adapter().await;
    let bucket = new_bucket(&s3, "s3-lifecycle", false).await?;
    assert_eq!(s3.get_lifecycle(&bucket).await?, None);

    let rules = vec![
        LifecycleRule {
            id: "noncurrent-versions".into(),
            enabled: true,
            noncurrent_version_expiration_days: Some(30),
            newer_noncurrent_versions: Some(3),
            abort_incomplete_multipart_upload_days: Some(7),
            intelligent_tiering_after_days: Some(0),
        },
        LifecycleRule {
            id: "paused".into(),
            enabled: false,
            abort_incomplete_multipart_upload_days: Some(1),
            ..Default::default()
        },
    ];
    s3.put_lifecycle(&bucket, &rules).await?;
    // moto differs from AWS: it stores NoncurrentVersionExpiration.NoncurrentDays but drops
    // NewerNoncurrentVersions, so it reads back as unset (AWS returns it). The unit tests check
    // that the adapter sends it.
    let moto_reads = {
        let mut rules = rules.clone();
        rules[0].newer_noncurrent_versions = None;
        rules
    };
    assert_eq!(s3.get_lifecycle(&bucket).await?, Some(moto_reads));

    // A put replaces every rule.
    s3.put_lifecycle(&bucket, &rules[1..]).await?;
    assert_eq!(s3.get_lifecycle(&bucket).await?, Some(rules[1..].to_vec()));
    Ok(())
}

#[tokio::test]
async fn object_versions_are_counted_up_to_the_cap() -> Result<()> {
    let (s3, raw) = adapter().await;
    let bucket = new_bucket(&s3, "s3-count", false).await?;
    s3.enable_versioning(&bucket).await?;
    assert_eq!(s3.count_object_versions(&bucket, 100).await?, 0);

    put_object(&raw, &bucket, "a.txt", "1").await?;
    put_object(&raw, &bucket, "a.txt", "2").await?;
    put_object(&raw, &bucket, "b.txt", "3").await?;
    assert_eq!(s3.count_object_versions(&bucket, 100).await?, 3);
    assert_eq!(s3.count_object_versions(&bucket, 2).await?, 2);
    assert_eq!(s3.count_object_versions(&bucket, 1).await?, 1);

    // A delete in a versioned bucket adds a delete marker, which also counts.
    raw.delete_object().bucket(&bucket).key("b.txt").send().await?;
    assert_eq!(s3.count_object_versions(&bucket, 100).await?, 4);

    let err = s3.delete_bucket(&bucket).await.expect_err("a bucket with versions cannot be deleted");
    assert_eq!(err.code.as_deref(), Some("BucketNotEmpty"), "{err}");
    Ok(())
}

#[tokio::test]
async fn empty_bucket_is_deleted_and_then_not_found() -> Result<()> {
    let (s3, _) = adapter().await;
    let bucket = new_bucket(&s3, "s3-delete", false).await?;
    s3.delete_bucket(&bucket).await?;
    let err = s3.get_versioning(&bucket).await.expect_err("deleted");
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    Ok(())
}

#[tokio::test]
async fn every_read_of_a_missing_bucket_is_not_found() -> Result<()> {
    let (s3, _) = adapter().await;
    let bucket = unique_name("s3-missing");
    let results = [
        ("GetBucketTagging", s3.get_bucket_tagging(&bucket).await.err()),
        ("GetBucketEncryption", s3.get_bucket_encryption(&bucket).await.err()),
        ("GetPublicAccessBlock", s3.get_public_access_block(&bucket).await.err()),
        ("GetBucketOwnershipControls", s3.get_ownership_controls(&bucket).await.err()),
        ("GetBucketVersioning", s3.get_versioning(&bucket).await.err()),
        ("GetBucketPolicy", s3.get_bucket_policy(&bucket).await.err()),
        ("GetBucketLogging", s3.get_bucket_logging(&bucket).await.err()),
        ("GetBucketLifecycleConfiguration", s3.get_lifecycle(&bucket).await.err()),
        ("GetObjectLockConfiguration", s3.get_object_lock(&bucket).await.err()),
        ("ListObjectVersions", s3.count_object_versions(&bucket, 10).await.err()),
    ];
    for (operation, err) in results {
        let err = err.ok_or_else(|| anyhow::anyhow!("{operation} on a missing bucket succeeded"))?;
        assert_eq!(
            (err.operation, err.kind, err.code.as_deref()),
            (operation, ErrorKind::NotFound, Some("NoSuchBucket"))
        );
        assert_eq!(err.resource, bucket);
    }
    Ok(())
}
