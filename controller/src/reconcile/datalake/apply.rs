//! Writes: each change is exactly one AWS call.
use crate::aws::clients::Regional;
use crate::aws::error::AwsResult;

use super::desired::{BUCKET_OWNER_ENFORCED, PUBLIC_ACCESS_BLOCK};
use super::diff::Change;

/// Sends one change to AWS. Returns the ARN of what it created, for creates that have one.
pub async fn change(aws: &Regional, region: &str, change: &Change) -> AwsResult<Option<String>> {
    let done = match change {
        Change::CreateBucket { bucket, object_lock } => aws.s3.create_bucket(bucket, region, *object_lock).await,
        Change::PutBucketTags { bucket, tags } => aws.s3.put_bucket_tagging(bucket, tags).await,
        Change::PutEncryption { bucket, encryption } => aws.s3.put_bucket_encryption(bucket, encryption).await,
        Change::PutPublicAccessBlock { bucket } => aws.s3.put_public_access_block(bucket, PUBLIC_ACCESS_BLOCK).await,
        Change::PutOwnership { bucket } => aws.s3.put_ownership_controls(bucket, BUCKET_OWNER_ENFORCED).await,
        Change::EnableVersioning { bucket } => aws.s3.enable_versioning(bucket).await,
        Change::PutBucketPolicy { bucket, policy } => aws.s3.put_bucket_policy(bucket, policy).await,
        Change::PutLogging { bucket, logging } => aws.s3.put_bucket_logging(bucket, logging.as_ref()).await,
        Change::PutLifecycle { bucket, rules } => aws.s3.put_lifecycle(bucket, rules).await,
        Change::PutRetention { bucket, retention, .. } => aws.s3.put_object_lock_retention(bucket, retention).await,
        Change::CreateTable { def } => return aws.dynamodb.create_table(def).await.map(|t| Some(t.arn)),
        Change::UpdateTable { table, update } => aws.dynamodb.update_table(table, update).await,
        Change::EnablePitr { table } => aws.dynamodb.set_pitr(table, true).await,
        Change::SetTtl { table, attribute, enabled } => aws.dynamodb.set_ttl(table, attribute, *enabled).await,
        Change::CreateTrail { settings, tags } => return aws.cloudtrail.create_trail(settings, tags).await.map(Some),
        Change::UpdateTrail { settings, .. } => aws.cloudtrail.update_trail(settings).await,
        Change::PutTrailEvents { trail, events, .. } => aws.cloudtrail.put_event_selection(trail, events).await,
        Change::StartLogging { trail } => aws.cloudtrail.start_logging(trail).await,
        Change::DeleteTrail { trail } => aws.cloudtrail.delete_trail(trail).await,
    };
    done.map(|()| None)
}
