//! The in-memory AWS account is usable from integration tests (cargo feature `fake-aws`,
//! which this crate's dev-dependency on itself turns on): adapters for any region and IAM,
//! sharing one state, observed through the call log and the census.
use std::collections::BTreeMap;

use lakeops::aws::error::ErrorKind;
use lakeops::aws::fake::{FakeAws, Kind};

#[tokio::test]
async fn integration_tests_drive_the_fake_through_the_adapter_traits() -> Result<(), Box<dyn std::error::Error>> {
    let aws = FakeAws::new("123456789012");
    let owner = BTreeMap::from([("lakeops.dev/owner".to_string(), "team/sales".to_string())]);
    let eu = aws.region("eu-west-1");

    let key = eu.kms.create_key("sales", "{}", &owner).await?;
    eu.kms.create_alias("alias/lakeops/sales", &key.key_id).await?;
    eu.s3.create_bucket("sales-raw", "eu-west-1", true).await?;
    eu.s3.put_bucket_tagging("sales-raw", &owner).await?;

    // A restart that repeats the creates: the bucket is recognised, the alias is taken.
    aws.reset_calls();
    eu.s3.create_bucket("sales-raw", "eu-west-1", true).await?;
    let alias = eu.kms.create_alias("alias/lakeops/sales", &key.key_id).await.expect_err("alias exists");
    assert_eq!(alias.kind, ErrorKind::Invalid);
    assert_eq!(aws.writes().len(), 2);

    assert_eq!(aws.count(Kind::Bucket), 1);
    assert_eq!(aws.count(Kind::Key), 1);
    assert_eq!(aws.resources_owned_by("team/sales").len(), 2);
    assert_eq!(aws.iam().get_role("sales").await?, None);
    Ok(())
}
