//! Reads only: what exists in AWS for a policy. Independent reads run concurrently.
use crate::aws::dynamodb::DynamoApi;
use crate::aws::error::AwsResult;
use crate::aws::s3::S3Api;
use crate::reconcile::datalake::diff::ObservedBucket;

use super::diff::{ObservedTable, ObservedZone};

/// A zone bucket: Object Lock retention, replication and lifecycle at once (3 reads).
pub async fn zone(s3: &dyn S3Api, bucket: &str) -> AwsResult<ObservedZone> {
    let ((object_lock, retention), replication, lifecycle) =
        futures::try_join!(s3.get_object_lock(bucket), s3.get_bucket_replication(bucket), s3.get_lifecycle(bucket))?;
    Ok(ObservedZone { object_lock, retention, replication, lifecycle })
}

/// A replica bucket: the DataLake engine's 8 baseline reads, plus its Object Lock retention
/// (9 reads). `None` when it does not exist.
pub async fn replica_bucket(
    s3: &dyn S3Api,
    bucket: &str,
) -> AwsResult<Option<(ObservedBucket, Option<crate::aws::s3::DefaultRetention>)>> {
    let Some(observed) = crate::reconcile::datalake::observe::bucket(s3, bucket).await? else { return Ok(None) };
    let (_, retention) = s3.get_object_lock(bucket).await?;
    Ok(Some((observed, retention)))
}

/// A catalog table: DescribeTable (status, replicas, stream) and PITR at once (2 reads).
/// `None` when the table does not exist (yet): the DataLake creates it.
pub async fn table(ddb: &dyn DynamoApi, name: &str) -> AwsResult<Option<ObservedTable>> {
    let (info, pitr) = futures::try_join!(ddb.describe_table(name), async {
        // A missing table is reported by DescribeTable; PITR of a missing table reads as off.
        match ddb.get_pitr(name).await {
            Err(e) if e.is_not_found() => Ok(false),
            other => other,
        }
    })?;
    Ok(info.map(|info| ObservedTable { info, pitr }))
}
