//! Writes: the function's one applier, an exhaustive match over its changes.
use std::time::Duration;

use crate::aws::clients::Regional;
use crate::aws::error::AwsResult;
use crate::aws::iam::IamApi;
use crate::engine::{log_group, role};
use crate::reconcile::KeyedLocks;

use super::desired::Desired;
use super::diff::{self, Change};

/// Sends one change: an exhaustive match, one AWS call each (a replaced permission is two;
/// a notification document is re-read and merged under the bucket's lock).
pub async fn change(
    aws: &Regional,
    iam: &dyn IamApi,
    locks: &KeyedLocks,
    d: &Desired,
    change: Change,
) -> AwsResult<Option<String>> {
    let lambda = aws.lambda.as_ref();
    let done = match change {
        Change::Role(c) => return role::apply(iam, &c).await,
        Change::LogGroup(c) => return log_group::apply(aws.logs.as_ref(), &c).await,
        Change::RemoveTrigger { bucket, id } => super::remove_trigger(locks, aws, &bucket, &id).await,
        Change::CreateFunction(f) => super::retry_role_propagation(|| lambda.create_function(&f)).await.map(drop),
        Change::TagFunction { arn, tags } => lambda.tag(&arn, &tags).await,
        Change::UpdateConfiguration { name, config, .. } => {
            super::retry_role_propagation(|| lambda.update_configuration(&name, &config)).await
        }
        Change::UpdateCode { name, code, architecture } => lambda.update_code(&name, &code, &architecture).await,
        Change::SetConcurrency { name, reserved } => lambda.set_reserved_concurrency(&name, reserved).await,
        Change::SetCodeSigning { name, arn } => lambda.set_code_signing_config(&name, arn.as_deref()).await,
        Change::Permission { name, permission, replace } => {
            if replace {
                lambda.remove_permission(&name, &permission.statement_id).await?;
            }
            lambda.add_permission(&name, &permission).await
        }
        Change::RemovePermission { name, statement_id } => lambda.remove_permission(&name, &statement_id).await,
        Change::PutNotifications { bucket, .. } => {
            // Other functions on this bucket write the same document: re-read and merge
            // under the bucket's lock so no writer drops another's entry.
            let _guard = locks.lock(&bucket).await;
            let current = aws.s3.get_notifications(&bucket).await?;
            let merged = diff::with_entry(&current, &d.trigger.entry);
            if !diff::same_notifications(&merged, &current) {
                aws.s3.put_notifications(&bucket, &merged).await?;
                // Bucket configuration is eventually consistent: the next writer must not
                // read a document without this entry and write it back.
                super::wait_until_visible(aws, &bucket, |n| n.entries.contains(&d.trigger.entry)).await?;
            }
            Ok(())
        }
    };
    done.map(|()| None)
}

/// Polls GetFunction until the last update is no longer in progress.
pub async fn wait_until_updated(lambda: &dyn crate::aws::lambda::LambdaApi, name: &str) -> AwsResult<()> {
    let deadline = tokio::time::Instant::now() + super::UPDATE_WAIT_LIMIT;
    loop {
        let status = lambda.get_function(name).await?.and_then(|f| f.last_update_status);
        if status.as_deref() != Some("InProgress") || tokio::time::Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
