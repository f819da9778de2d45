//! DataLake reconciler: observe what exists, compute what the spec wants, apply the
//! difference in dependency order (key, log bucket, zone buckets, tables), write status.
pub mod apply;
pub mod desired;
pub mod diff;
pub mod observe;
pub mod plan;
pub mod steps;

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::runtime::controller::Action;
use lakeops_crds::names::{reason, tag};
use lakeops_crds::{DataLake, DataLakeStatus, DeletionPolicy};

use crate::conditions::Outcome;
use crate::context::Context;
use crate::engine::{self, Exec, Report, Stop, exec::StatusProgress};
use crate::error::{Error, Result};
use crate::status;

/// Reconciles one DataLake: the finalizer guards clean-up, then apply or clean up.
pub async fn reconcile(lake: Arc<DataLake>, ctx: Arc<Context>) -> Result<Action> {
    super::with_finalizer(lake, ctx, apply_lake, cleanup).await
}

async fn apply_lake(lake: Arc<DataLake>, ctx: Arc<Context>) -> Result<Action> {
    let resync = super::resync_interval(lake.as_ref(), ctx.config.resync_interval);
    if let Some(left) = ctx.fingerprints.fresh(lake.as_ref(), resync) {
        return Ok(Action::requeue(left));
    }
    // Until this round succeeds, the next event must be handled in full.
    ctx.fingerprints.forget(lake.as_ref());
    let current = lake.status.clone().unwrap_or_default();
    let (mut next, outcome) = plan_status(&lake, &current);
    if matches!(outcome, Outcome::Stalled { .. }) {
        status::apply(&ctx, lake.as_ref(), next, &outcome).await?;
        if engine::remembers(&outcome) {
            ctx.fingerprints.remember(lake.as_ref());
        }
        return Ok(Action::requeue(resync));
    }
    let result = converge(&lake, &ctx, &mut next).await;
    let (outcome, requeue) = match result {
        Ok(report) => {
            if !report.drift.is_empty() {
                super::drift_event(&ctx, lake.as_ref(), &report.drift).await;
            }
            if report.applied > 0 {
                tracing::info!(changes = report.applied, "converged");
            }
            // A stable message: a count here would make every convergence a status write.
            (Outcome::Ready { message: "every AWS resource matches the spec".into() }, resync)
        }
        Err(stop) => stop.outcome(resync, || ctx.backoff.next(lake.as_ref()))?,
    };
    status::apply(&ctx, lake.as_ref(), next, &outcome).await?;
    if engine::remembers(&outcome) {
        ctx.fingerprints.remember(lake.as_ref());
    }
    Ok(Action::requeue(requeue))
}

async fn converge(lake: &DataLake, ctx: &Context, next: &mut DataLakeStatus) -> std::result::Result<Report, Stop> {
    let aws = ctx.aws.region(&lake.spec.region);
    let account = ctx.aws.account_id().await?;
    let progress = StatusProgress { ctx, obj: lake };
    let exec = Exec::apply(lake, &progress);
    steps::converge(lake, &aws, &account, &exec, next).await?;
    Ok(exec.finish().0)
}

/// Deletion: `Retain` tags what exists and lets go; `Delete` removes only what holds no
/// data and keeps the finalizer (reporting why) while anything is left.
async fn cleanup(lake: Arc<DataLake>, ctx: Arc<Context>) -> Result<Action> {
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

/// The status to write and the outcome, from the spec and what was recorded before.
/// Pure, so it is tested without a cluster.
pub fn plan_status(lake: &DataLake, current: &DataLakeStatus) -> (DataLakeStatus, Outcome) {
    let mut findings = lake.validate();
    findings.extend(lake.validate_update(current));
    let mut next = current.clone();
    next.disabled_protections =
        lake.disabled_protections().iter().map(|(path, what)| format!("{path}: {what}")).collect();
    if let Some(message) = findings.error_summary() {
        return (next, Outcome::Stalled { reason: reason::INVALID_SPEC, message });
    }
    // The prefix and Object Lock are fixed from the first valid sight on: every AWS name
    // derives from them, and S3 cannot change Object Lock later.
    next.bucket_prefix.get_or_insert_with(|| lake.bucket_prefix());
    next.object_lock.get_or_insert(lake.spec.object_lock);
    next.log_bucket = Some(lake.log_bucket());
    let outcome =
        Outcome::Progressing { reason: reason::PROGRESSING, message: "spec is valid; converging AWS resources".into() };
    (next, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakeops_crds::datalake::Zone;
    use lakeops_crds::names::reason;

    fn lake(yaml: &str) -> DataLake {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    const VALID: &str = "
apiVersion: lakeops.dev/v1alpha1
kind: DataLake
metadata: {name: sales, namespace: team-a, generation: 1}
spec:
  region: eu-west-1
  zones: [{name: raw}, {name: curated}]
";

    #[test]
    fn valid_lake_records_its_prefix_and_object_lock_and_is_progressing() {
        let (status, outcome) = plan_status(&lake(VALID), &DataLakeStatus::default());
        assert_eq!(status.bucket_prefix.as_deref(), Some("team-a-sales"));
        assert_eq!(status.object_lock, Some(true));
        assert_eq!(outcome.reason(), reason::PROGRESSING);
    }

    #[test]
    fn invalid_zone_stalls_with_the_field_named() {
        let mut l = lake(VALID);
        l.spec.zones.push(Zone { name: "raw".into(), lifecycle: None });
        let (status, outcome) = plan_status(&l, &DataLakeStatus::default());
        assert!(status.bucket_prefix.is_none(), "nothing is recorded from an invalid spec");
        match outcome {
            Outcome::Stalled { reason: r, message } => {
                assert_eq!(r, reason::INVALID_SPEC);
                assert!(message.contains("spec.zones[2].name: duplicate zone name \"raw\""), "{message}");
            }
            other => panic!("expected Stalled, got {other:?}"),
        }
    }

    #[test]
    fn changing_the_prefix_after_creation_is_refused() {
        let recorded = plan_status(&lake(VALID), &DataLakeStatus::default()).0;
        let mut l = lake(VALID);
        l.spec.bucket_prefix = Some("other-prefix".into());
        let (_, outcome) = plan_status(&l, &recorded);
        assert!(
            matches!(outcome, Outcome::Stalled { ref message, .. } if message.contains("spec.bucketPrefix: is immutable"))
        );
    }
}
