//! Writes: each change is exactly one AWS call (the replication role's go through the
//! engine's owned-role step, the replica keys' through its managed-key step).
use crate::aws::clients::Regional;
use crate::aws::error::AwsResult;

use super::catalog::{BackupChange, LOCK_GRACE_DAYS};
use super::diff::Change;

/// Sends one change to AWS: `aws` and `region` are those of the resource the change is
/// about (the lake's region for zone buckets and tables, the backup region for replicas).
/// Returns the ARN of what it created, for creates that have one.
pub async fn change(aws: &Regional, region: &str, change: &Change) -> AwsResult<Option<String>> {
    let done = match change {
        Change::Lake(c) => return crate::reconcile::datalake::apply::change(aws, region, c).await,
        Change::Backup(c) => return backup(aws.backup.as_ref(), c).await,
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

/// One AWS Backup change; returns the vault's ARN, the plan's or the selection's id.
async fn backup(api: &dyn crate::aws::backup::BackupApi, change: &BackupChange) -> AwsResult<Option<String>> {
    match change {
        BackupChange::CreateVault { name, key_arn, tags, request_id, .. } => {
            api.create_vault(name, key_arn, tags, request_id).await.map(Some)
        }
        BackupChange::TagVault { arn, tags, .. } => api.tag_resource(arn, tags).await.map(|()| None),
        BackupChange::LockVault { name, min_days, .. } => {
            api.put_vault_lock(name, *min_days, LOCK_GRACE_DAYS).await.map(|()| None)
        }
        BackupChange::CreatePlan { document, tags, request_id } => {
            api.create_plan(document, tags, request_id).await.map(|c| Some(c.id))
        }
        BackupChange::UpdatePlan { id, document, .. } => api.update_plan(id, document).await.map(|()| None),
        BackupChange::DeletePlan { id, .. } => api.delete_plan(id).await.map(|()| None),
        BackupChange::CreateSelection { plan_id, selection, request_id, .. } => {
            // AWS Backup checks that it can assume the role, which IAM may not show yet.
            crate::engine::role::retry_while_propagating(role_not_assumable, || {
                api.create_selection(plan_id, selection, request_id)
            })
            .await
            .map(Some)
        }
        BackupChange::DeleteSelection { plan_id, selection_id, .. } => {
            api.delete_selection(plan_id, selection_id).await.map(|()| None)
        }
        BackupChange::DeleteVault { name, .. } => api.delete_vault(name).await.map(|()| None),
    }
}

/// AWS Backup's wording for a role it cannot assume (yet).
fn role_not_assumable(e: &crate::aws::error::AwsError) -> bool {
    e.code.as_deref() == Some("InvalidParameterValueException")
        && (e.message.contains("assume") || e.message.contains("IAM Role"))
}
