//! DataLake deletion: `Retain` lets go, `Delete` removes only what holds no data.
use std::collections::BTreeMap;
use std::sync::Arc;

use kube::runtime::controller::Action;
use lakeops_crds::names::{reason, tag};
use lakeops_crds::{DataLake, DeletionPolicy};

use super::desired;
use crate::conditions::Outcome;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::status;

/// Deletion: `Retain` tags what exists and lets go; `Delete` removes only what holds no
/// data and keeps the finalizer (reporting why) while anything is left.
pub(super) async fn cleanup(lake: Arc<DataLake>, ctx: Arc<Context>) -> Result<Action> {
    ctx.fingerprints.forget(lake.as_ref());
    let region = lake.spec.region.clone();
    let aws = ctx.aws.region(&region);
    let account = ctx.aws.account_id().await?;
    let key_arn = lake.status.as_ref().and_then(|s| s.kms_key_arn.clone()).unwrap_or_default();
    let buckets = desired::buckets(&lake, &account, &key_arn);
    let tables = desired::tables(&lake);
    let ours = desired::owner_tags(lake.as_ref());
    let owned = |tags: &BTreeMap<String, String>| ours.iter().all(|(k, v)| tags.get(k) == Some(v));

    if lake.spec.deletion_policy == DeletionPolicy::Retain {
        let retained = BTreeMap::from([(tag::RETAINED.to_string(), "true".to_string())]);
        for b in &buckets {
            match aws.s3.get_bucket_tagging(&b.name).await {
                Ok(mut tags) if owned(&tags) => {
                    tags.extend(retained.clone());
                    aws.s3.put_bucket_tagging(&b.name, &tags).await?;
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        for t in &tables {
            if let Some(info) = aws.dynamodb.describe_table(&t.table_name).await?
                && owned(&aws.dynamodb.list_tags(&info.arn).await?)
            {
                aws.dynamodb.tag(&info.arn, &retained).await?;
            }
        }
        if lake.spec.encryption.key_arn.is_none()
            && let Some(k) = aws.kms.describe_key(&lake.key_alias()).await?
            && owned(&aws.kms.list_tags(&k.key_id).await?)
        {
            aws.kms.tag(&k.key_id, &retained).await?;
        }
        return Ok(Action::await_change());
    }

    // Delete: the trail first (it holds no data itself; its logs stay in the log bucket),
    // then zone buckets before the log bucket they log into.
    if let Some(arn) = lake.status.as_ref().and_then(|s| s.trail_arn.clone())
        && let Some(t) = aws.cloudtrail.get_trail(&desired::trail_name(&lake)).await?
        && t.arn == arn
    {
        aws.cloudtrail.delete_trail(&t.settings.name).await?;
    }
    // The trail's delivery role goes with it (looked up only when status recorded one); its
    // log group holds audit records and stays.
    let iam = ctx.aws.iam();
    let role = desired::trail_logs_role(&lake);
    if lake.status.as_ref().is_some_and(|s| s.trail_logs_role_arn.is_some())
        && let Some(r) = iam.get_role(&role).await?
        && owned(&r.tags)
    {
        for policy in iam.list_role_policies(&role).await? {
            iam.delete_role_policy(&role, &policy).await?;
        }
        iam.delete_role(&role).await?;
    }
    let mut kept = Vec::new();
    for b in buckets.iter().rev() {
        let tags = match aws.s3.get_bucket_tagging(&b.name).await {
            Ok(tags) => tags,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        if !owned(&tags) {
            continue;
        }
        let versions = aws.s3.count_object_versions(&b.name, 1000).await?;
        if versions == 0 {
            aws.s3.delete_bucket(&b.name).await?;
        } else {
            let count = if versions >= 1000 { "1000 or more".to_string() } else { versions.to_string() };
            kept.push(format!("bucket {} holds {count} object version(s)", b.name));
        }
    }
    for t in &tables {
        let Some(info) = aws.dynamodb.describe_table(&t.table_name).await? else { continue };
        if !owned(&aws.dynamodb.list_tags(&info.arn).await?) {
            continue;
        }
        if aws.dynamodb.has_items(&t.table_name).await? {
            let count = info.item_count.map(|c| format!("about {c}")).unwrap_or_else(|| "some".into());
            kept.push(format!("table {} holds {count} item(s)", t.table_name));
        } else {
            let update = crate::aws::dynamodb::TableUpdate { deletion_protection: Some(false), ..Default::default() };
            aws.dynamodb.update_table(&t.table_name, &update).await?;
            aws.dynamodb.delete_table(&t.table_name).await?;
        }
    }
    if !kept.is_empty() {
        let message = format!(
            "deletionPolicy Delete: kept what still holds data ({}); empty it, or set deletionPolicy: Retain, and deletion completes",
            kept.join("; ")
        );
        let next = lake.status.clone().unwrap_or_default();
        let outcome = Outcome::Stalled { reason: reason::DELETION_BLOCKED, message: message.clone() };
        status::apply(&ctx, lake.as_ref(), next, &outcome).await?;
        return Err(Error::DeletionBlocked(message));
    }
    // The key goes last, and only through KMS's pending window.
    if lake.spec.encryption.key_arn.is_none()
        && let Some(k) = aws.kms.describe_key(&lake.key_alias()).await?
        && k.state != "PendingDeletion"
        && owned(&aws.kms.list_tags(&k.key_id).await?)
    {
        aws.kms.schedule_deletion(&k.key_id, 30).await?;
    }
    Ok(Action::await_change())
}
