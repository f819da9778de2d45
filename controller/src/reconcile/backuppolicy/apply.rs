//! Writes: each change is exactly one AWS call (the replication role's go through the
//! engine's owned-role step, the replica keys' through its managed-key step).
use crate::aws::clients::Regional;
use crate::aws::error::AwsResult;

use super::diff::Change;

/// Sends one change to AWS: `aws` and `region` are those of the resource the change is
/// about (the lake's region for zone buckets and tables, the backup region for replicas).
/// Returns the ARN of what it created, for creates that have one.
pub async fn change(aws: &Regional, region: &str, change: &Change) -> AwsResult<Option<String>> {
    let done = match change {
        Change::Lake(c) => return crate::reconcile::datalake::apply::change(aws, region, c).await,
        Change::PutRetention { bucket, retention, .. } => aws.s3.put_object_lock_retention(bucket, retention).await,
        Change::ClearRetention { bucket } => aws.s3.clear_object_lock_retention(bucket).await,
        Change::PutReplication { bucket, config } => aws.s3.put_bucket_replication(bucket, config).await,
        Change::DeleteReplication { bucket } => aws.s3.delete_bucket_replication(bucket).await,
        Change::CreateReplica { table, region: replica, kms_key_arn } => {
            aws.dynamodb.create_replica(table, replica, kms_key_arn).await
        }
        Change::DeleteReplica { table, region: replica } => aws.dynamodb.delete_replica(table, replica).await,
    };
    done.map(|()| None)
}
