//! DataLake reconciler: observe what exists, compute what the spec wants, apply the
//! difference in dependency order (key, log bucket, zone buckets, tables), write status.
pub mod apply;
pub mod desired;
pub mod diff;
pub mod observe;
pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::try_join_all;
use kube::runtime::controller::Action;
use lakeops_crds::datalake::{TableStatus, ZoneStatus};
use lakeops_crds::names::{reason, tag};
use lakeops_crds::{DataLake, DataLakeStatus, DeletionPolicy};

use crate::aws::clients::Regional;
use crate::conditions::Outcome;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::status;

use super::{Stop, aws_outcome};

use desired::{DesiredBucket, DesiredKey, DesiredTable};
use diff::Change;

/// Reconciles one DataLake: the finalizer guards clean-up, then apply or clean up.
pub async fn reconcile(lake: Arc<DataLake>, ctx: Arc<Context>) -> Result<Action> {
    super::with_finalizer(lake, ctx, apply_lake, cleanup).await
}

/// What one convergence did.
#[derive(Debug, Default)]
struct Report {
    applied: usize,
    /// Settings corrected on resources that already existed: `resource: setting`.
    drift: Vec<String>,
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
        ctx.fingerprints.remember(lake.as_ref());
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
        Err(Stop::NotOwned(message)) => (Outcome::Stalled { reason: reason::NOT_OWNED, message }, resync),
        Err(Stop::Kube(e)) => return Err(e),
        Err(Stop::Aws(e)) => aws_outcome(&e, resync, || ctx.backoff.next(lake.as_ref())),
    };
    status::apply(&ctx, lake.as_ref(), next, &outcome).await?;
    if matches!(outcome, Outcome::Failed { .. }) {
        ctx.fingerprints.forget(lake.as_ref());
    } else {
        ctx.fingerprints.remember(lake.as_ref());
    }
    Ok(Action::requeue(requeue))
}

/// Checks that an existing resource carries this lake's ownership tags, or that adoption
/// was asked for.
fn check_owned(lake: &DataLake, what: &str, tags: &BTreeMap<String, String>) -> std::result::Result<(), Stop> {
    super::check_owned(lake, &desired::owner_tags(lake), what, tags).map_err(Stop::NotOwned)
}

async fn converge(lake: &DataLake, ctx: &Context, next: &mut DataLakeStatus) -> std::result::Result<Report, Stop> {
    let region = lake.spec.region.clone();
    let aws = ctx.aws.region(&region);
    let account = ctx.aws.account_id().await?;
    let mut report = Report::default();

    let key_arn = converge_key(lake, ctx, &aws, &account, next, &mut report).await?;
    next.kms_key_arn = Some(key_arn.clone());

    let all_buckets = desired::buckets(lake, &account, &key_arn);
    let recorded = recorded_buckets(lake.status.as_ref());
    // Every bucket is read (and its owner checked) before anything is written.
    let observed = try_join_all(all_buckets.iter().map(|b| observe_bucket(lake, &aws, b, &recorded))).await?;
    // Names are recorded before any CreateBucket: S3 cannot tag a bucket as it creates
    // it, so a crash in between leaves an untagged bucket that status proves ours.
    if all_buckets.iter().zip(&observed).any(|(b, o)| o.is_none() && !recorded.contains(&b.name)) {
        next.log_bucket = all_buckets.first().map(|b| b.name.clone());
        next.zones = zone_statuses(&region, &all_buckets[1..]);
        status::record_progress(ctx, lake, next).await.map_err(Stop::Kube)?;
    }
    let mut buckets = all_buckets.iter().zip(observed);
    // The log bucket first: zone buckets log into it.
    if let Some((log, o)) = buckets.next() {
        apply_bucket(&aws, &region, log, o.as_ref(), &mut report).await?;
        next.log_bucket = Some(log.name.clone());
    }
    let rest: Vec<_> = buckets.collect();
    let zone_reports = try_join_all(rest.iter().map(|(b, o)| async {
        let mut r = Report::default();
        apply_bucket(&aws, &region, b, o.as_ref(), &mut r).await.map(|_| r)
    }))
    .await?;
    let tables = desired::tables(lake);
    let known: BTreeMap<String, Option<String>> =
        next.tables.iter().map(|t| (t.table_name.clone(), t.arn.clone())).collect();
    let table_results = try_join_all(tables.iter().map(|t| async {
        let mut r = Report::default();
        let arn = converge_table(lake, &aws, t, &key_arn, known.get(&t.table_name).cloned().flatten(), &mut r).await?;
        Ok::<_, Stop>((r, arn))
    }))
    .await?;
    next.trail_arn = converge_trail(lake, &aws, &key_arn, next.trail_arn.clone(), &mut report).await?;
    for r in zone_reports {
        report.applied += r.applied;
        report.drift.extend(r.drift);
    }
    next.zones = zone_statuses(&region, &all_buckets[1..]);
    next.tables = tables
        .iter()
        .zip(table_results)
        .map(|(t, (r, arn))| {
            report.applied += r.applied;
            report.drift.extend(r.drift);
            TableStatus { name: t.name.clone(), table_name: t.table_name.clone(), arn: Some(arn) }
        })
        .collect();
    Ok(report)
}

fn zone_statuses(region: &str, zones: &[DesiredBucket]) -> Vec<ZoneStatus> {
    zones
        .iter()
        .map(|b| ZoneStatus {
            name: b.zone.clone().unwrap_or_default(),
            bucket: b.name.clone(),
            arn: desired::bucket_arn(region, &b.name),
        })
        .collect()
}

/// Bucket names this lake recorded in status before creating them.
fn recorded_buckets(status: Option<&DataLakeStatus>) -> std::collections::BTreeSet<String> {
    let Some(s) = status else { return Default::default() };
    s.log_bucket.iter().cloned().chain(s.zones.iter().map(|z| z.bucket.clone())).collect()
}

/// Finds or creates the lake key. A new key's ARN is written to status before anything
/// else, so a crash right after CreateKey never leads to a second key.
async fn converge_key(
    lake: &DataLake,
    ctx: &Context,
    aws: &Regional,
    account: &str,
    next: &mut DataLakeStatus,
    report: &mut Report,
) -> std::result::Result<String, Stop> {
    let (alias, description, rotation_days, policy) = match desired::key(lake, account) {
        DesiredKey::External { arn } => {
            return match aws.kms.describe_key(&arn).await? {
                Some(k) if k.state == "Enabled" => Ok(k.arn),
                Some(k) => {
                    Err(Stop::NotOwned(format!("spec.encryption.keyArn: key {arn} is {}, not Enabled", k.state)))
                }
                None => {
                    Err(Stop::NotOwned(format!("spec.encryption.keyArn: key {arn} does not exist or is not visible")))
                }
            };
        }
        DesiredKey::Managed { alias, description, rotation_days, policy } => {
            (alias, description, rotation_days, policy)
        }
    };
    let by_alias = observe::key(aws.kms.as_ref(), &alias).await?;
    let (observed, alias_missing) = match (by_alias, &next.kms_key_arn) {
        (Some(k), _) => (Some(k), false),
        // Recorded but not aliased: the alias step was interrupted, or someone removed it.
        (None, Some(arn)) => (observe::key(aws.kms.as_ref(), arn).await?, true),
        (None, None) => (None, true),
    };
    let created = observed.is_none();
    let observed = match observed {
        Some(k) => {
            if next.kms_key_arn.is_none() {
                // First sight of a key found by its alias: is it ours?
                let tags = aws.kms.list_tags(&k.info.key_id).await?;
                check_owned(lake, &format!("KMS key {alias}"), &tags)?;
            }
            if k.info.state == "PendingDeletion" {
                return Err(Stop::NotOwned(format!(
                    "KMS key {} is scheduled for deletion; cancel the deletion (kms cancel-key-deletion) and re-enable it",
                    k.info.arn
                )));
            }
            k
        }
        None => {
            let info = aws.kms.create_key(&description, &policy.to_json(), &desired::resource_tags(lake)).await?;
            report.applied += 1;
            next.kms_key_arn = Some(info.arn.clone());
            status::record_progress(ctx, lake, next).await.map_err(Stop::Kube)?;
            let rotation = crate::aws::kms::Rotation { enabled: false, period_days: None };
            diff::ObservedKey { info, rotation, policy: policy.to_json() }
        }
    };
    if alias_missing {
        aws.kms.create_alias(&alias, &observed.info.key_id).await?;
        report.applied += 1;
    }
    for change in diff::key_changes(&observed, rotation_days, &policy) {
        apply::change(aws, &lake.spec.region, &change).await?;
        report.applied += 1;
        // A recorded key without its alias is our own create, interrupted before the alias:
        // finishing it is not drift.
        if !created && !alias_missing {
            report.drift.push(format!("key {alias}: {}", change.setting()));
        }
    }
    Ok(observed.info.arn)
}

/// Reads a bucket and checks it is this lake's (or adoptable).
async fn observe_bucket(
    lake: &DataLake,
    aws: &Regional,
    bucket: &DesiredBucket,
    recorded: &std::collections::BTreeSet<String>,
) -> std::result::Result<Option<diff::ObservedBucket>, Stop> {
    let observed = observe::bucket(aws.s3.as_ref(), &bucket.name).await?;
    if let Some(o) = &observed {
        // Untagged and recorded as ours before creation: a create interrupted before tagging.
        let interrupted = !o.tags.contains_key(tag::OWNER) && recorded.contains(&bucket.name);
        if !interrupted {
            check_owned(lake, &format!("bucket {}", bucket.name), &o.tags)?;
        }
    }
    Ok(observed)
}

async fn apply_bucket(
    aws: &Regional,
    region: &str,
    bucket: &DesiredBucket,
    observed: Option<&diff::ObservedBucket>,
    report: &mut Report,
) -> std::result::Result<(), Stop> {
    for change in diff::bucket_changes(bucket, observed) {
        apply::change(aws, region, &change).await?;
        report.applied += 1;
        if observed.is_some() {
            report.drift.push(format!("bucket {}: {}", bucket.name, change.setting()));
        }
    }
    Ok(())
}

async fn converge_table(
    lake: &DataLake,
    aws: &Regional,
    table: &DesiredTable,
    key_arn: &str,
    recorded_arn: Option<String>,
    report: &mut Report,
) -> std::result::Result<String, Stop> {
    let observed = observe::table(aws.dynamodb.as_ref(), &table.table_name).await?;
    if let Some(o) = &observed
        && recorded_arn.as_deref() != Some(o.info.arn.as_str())
    {
        // First sight of an existing table: is it ours?
        let tags = aws.dynamodb.list_tags(&o.info.arn).await?;
        check_owned(lake, &format!("table {}", table.table_name), &tags)?;
    }
    let mut arn = observed.as_ref().map(|o| o.info.arn.clone());
    for change in diff::table_changes(table, key_arn, observed.as_ref()) {
        if let Some(created) = apply::change(aws, &lake.spec.region, &change).await? {
            arn = Some(created);
        }
        report.applied += 1;
        if observed.is_some() {
            report.drift.push(format!("table {}: {}", table.table_name, change.setting()));
        }
    }
    Ok(arn.unwrap_or_default())
}

/// Creates, converges or (when the spec turns the trail off) deletes the audit trail.
async fn converge_trail(
    lake: &DataLake,
    aws: &Regional,
    key_arn: &str,
    recorded_arn: Option<String>,
    report: &mut Report,
) -> std::result::Result<Option<String>, Stop> {
    let name = desired::trail_name(lake);
    let desired = desired::trail(lake, key_arn);
    if desired.is_none() && recorded_arn.is_none() {
        return Ok(None);
    }
    let observed = observe::trail(aws.cloudtrail.as_ref(), &name).await?;
    if let Some(o) = &observed
        && recorded_arn.as_deref() != Some(o.info.arn.as_str())
    {
        let tags = aws.cloudtrail.list_tags(&o.info.arn).await?;
        check_owned(lake, &format!("trail {name}"), &tags)?;
    }
    let Some(desired) = desired else {
        if observed.is_some() {
            apply::change(aws, &lake.spec.region, &Change::DeleteTrail { trail: name }).await?;
            report.applied += 1;
        }
        return Ok(None);
    };
    let mut arn = observed.as_ref().map(|o| o.info.arn.clone());
    for change in diff::trail_changes(&desired, observed.as_ref()) {
        if let Some(created) = apply::change(aws, &lake.spec.region, &change).await? {
            arn = Some(created);
        }
        report.applied += 1;
        if observed.is_some() {
            report.drift.push(format!("trail {name}: {}", change.setting()));
        }
    }
    Ok(arn)
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
