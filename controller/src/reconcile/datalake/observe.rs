//! Reads only: what exists in AWS for a lake. Independent reads run concurrently.
use crate::aws::dynamodb::DynamoApi;
use crate::aws::error::AwsResult;
use crate::aws::s3::S3Api;

use super::diff::{ObservedBucket, ObservedTable};

/// A bucket: tags first (they also tell whether it exists and whose it is), then the
/// other seven settings at once (8 reads).
pub async fn bucket(s3: &dyn S3Api, bucket: &str) -> AwsResult<Option<ObservedBucket>> {
    let tags = match s3.get_bucket_tagging(bucket).await {
        Ok(tags) => tags,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let (encryption, public_access_block, ownership, versioning, policy, logging, lifecycle) = futures::try_join!(
        s3.get_bucket_encryption(bucket),
        s3.get_public_access_block(bucket),
        s3.get_ownership_controls(bucket),
        s3.get_versioning(bucket),
        s3.get_bucket_policy(bucket),
        s3.get_bucket_logging(bucket),
        s3.get_lifecycle(bucket),
    )?;
    Ok(Some(ObservedBucket {
        tags,
        encryption,
        public_access_block,
        ownership,
        versioning,
        policy,
        logging,
        lifecycle,
    }))
}

/// A trail: GetTrail, then its event selectors and status at once (3 reads).
pub async fn trail(
    ct: &dyn crate::aws::cloudtrail::CloudTrailApi,
    name: &str,
) -> AwsResult<Option<super::diff::ObservedTrail>> {
    let Some(info) = ct.get_trail(name).await? else { return Ok(None) };
    let (events, logging) = futures::try_join!(ct.get_event_selection(name), ct.is_logging(name))?;
    Ok(Some(super::diff::ObservedTrail { info, events, logging }))
}

/// A table: DescribeTable, then PITR and TTL at once (3 reads).
pub async fn table(ddb: &dyn DynamoApi, name: &str) -> AwsResult<Option<ObservedTable>> {
    let Some(info) = ddb.describe_table(name).await? else { return Ok(None) };
    let (pitr, ttl) = futures::try_join!(ddb.get_pitr(name), ddb.get_ttl(name))?;
    Ok(Some(ObservedTable { info, pitr, ttl }))
}
