//! The DataLake's convergence, written once: the controller runs it with the apply
//! executor, `lakeops plan` with the plan executor.
//!
//! Order: read the key and every bucket (ownership checked before any write); record the
//! intent (bucket names and the key's creation token) in one status write when something
//! will be created; the key; the log bucket (zone buckets log into it); the zone buckets
//! together; the catalog tables; the audit trail (created, converged, or deleted when the
//! spec turns it off).
use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;
use kube::ResourceExt;
use lakeops_crds::backuppolicy::RetentionMode;
use lakeops_crds::datalake::{TableStatus, ZoneStatus};
use lakeops_crds::names::{reason, tag};
use lakeops_crds::{DataLake, DataLakeStatus};

use crate::aws::clients::Regional;
use crate::aws::iam::IamApi;
use crate::engine::key::{self, ManagedKey};
use crate::engine::trail_logs::{self, Delivery};
use crate::engine::{Exec, Stop, intent, placeholder};
use crate::reconcile::backuppolicy::desired::retention_weakens;

use super::desired::{self, DesiredBucket, DesiredKey, DesiredTable};
use super::diff::{self, Change};
use super::{apply, observe};

/// The purpose under which the lake key's creation token is recorded.
pub const KEY_PURPOSE: &str = "kms-key";

type Exe<'a> = Exec<'a, DataLakeStatus>;

/// What a lake's sequence works with.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub lake: &'a DataLake,
    /// The clients of the lake's region.
    pub aws: &'a Regional,
    pub iam: &'a dyn IamApi,
    pub account: &'a str,
    /// The permissions boundary every generated role carries (a controller flag).
    pub boundary: Option<&'a str>,
    /// A Ready SecurityBaseline covers the lake's account and region: its account trail
    /// records management events, so the lake trail does not by default.
    pub baseline_covers: bool,
}

/// Runs the lake's sequence; `next` is the status being built (recorded intents included).
pub async fn converge(input: Inputs<'_>, exec: &Exe<'_>, next: &mut DataLakeStatus) -> Result<(), Stop> {
    let Inputs { lake, aws, account, .. } = input;
    let region = lake.spec.region.clone();

    // Reads first: the key, then every bucket.
    let key = match desired::key(lake, account) {
        DesiredKey::External { arn } => Key::External(external_key(exec, aws, &arn).await?),
        DesiredKey::Managed { alias, description, rotation_days, policy } => {
            let want = ManagedKey {
                alias,
                region: region.clone(),
                description,
                rotation_days,
                policy,
                tags: desired::resource_tags(lake),
                what: "lake key".into(),
                token: lake.uid().map(|uid| intent::token(&uid, KEY_PURPOSE)),
            };
            let recorded_token = next.creation_tokens.contains_key(KEY_PURPOSE);
            let state =
                key::observe(exec, aws.kms.as_ref(), &want, next.kms_key_arn.as_deref(), recorded_token).await?;
            Key::Managed(Box::new(want), state)
        }
    };
    let names = desired::buckets(lake, account, &placeholder("lake key"));
    let recorded = recorded_buckets(lake.status.as_ref());
    let observed = try_join_all(names.iter().map(|b| observe_bucket(exec, aws, b, &recorded))).await?;

    // The intent, in one status write before the first create: bucket names (S3 cannot tag
    // a bucket as it creates it, so a crash in between leaves an untagged bucket that status
    // proves ours) and the key's creation token.
    let mut write = false;
    if names.iter().zip(&observed).any(|(b, o)| o.is_none() && !recorded.contains(&b.name)) {
        record_buckets(next, &region, &names);
        write = true;
    }
    if let Key::Managed(want, state) = &key
        && state.creates()
        && let Some(token) = &want.token
    {
        write |= intent::record(&mut next.creation_tokens, KEY_PURPOSE, token);
    }
    if write {
        exec.record(next).await?;
    }

    let key_arn = match key {
        Key::External(arn) => arn,
        Key::Managed(want, state) => key::converge(exec, aws.kms.as_ref(), &want, state).await?,
    };
    next.kms_key_arn = Some(key_arn.clone());

    let mut buckets = desired::buckets(lake, account, &key_arn);
    for (b, o) in buckets.iter_mut().zip(&observed) {
        exec.desired_tags(&mut b.tags, o.as_ref().map(|o| &o.tags));
    }
    let audit_existed = observed.last().is_some_and(Option::is_some);
    let mut pairs = buckets.iter().zip(observed);
    if let Some((log, o)) = pairs.next() {
        converge_bucket(exec, aws, &region, log, o.as_ref()).await?;
    }
    let rest: Vec<_> = pairs.collect();
    try_join_all(rest.iter().map(|(b, o)| converge_bucket(exec, aws, &region, b, o.as_ref()))).await?;
    record_buckets(next, &region, &buckets);
    if lake.spec.audit.trail {
        converge_audit_retention(exec, lake, aws, audit_existed).await?;
    }

    let tables = desired::tables(lake);
    let known: BTreeMap<String, Option<String>> =
        next.tables.iter().map(|t| (t.table_name.clone(), t.arn.clone())).collect();
    let arns = try_join_all(
        tables
            .iter()
            .map(|t| converge_table(exec, aws, &region, t, &key_arn, known.get(&t.table_name).cloned().flatten())),
    )
    .await?;
    next.tables = tables
        .iter()
        .zip(arns)
        .map(|(t, arn)| TableStatus { name: t.name.clone(), table_name: t.table_name.clone(), arn: Some(arn) })
        .collect();

    converge_trail(exec, input, &key_arn, next).await?;
    Ok(())
}

enum Key {
    External(String),
    Managed(Box<ManagedKey>, key::KeyState),
}

/// A key the user brings must exist and be enabled.
async fn external_key(exec: &Exe<'_>, aws: &Regional, arn: &str) -> Result<String, Stop> {
    let problem = match aws.kms.describe_key(arn).await? {
        Some(k) if k.state == "Enabled" => return Ok(k.arn),
        Some(k) => format!("spec.encryption.keyArn: key {arn} is {}, not Enabled", k.state),
        None => format!("spec.encryption.keyArn: key {arn} does not exist or is not visible"),
    };
    exec.blocked(arn, Stop::not_owned(problem))?;
    Ok(arn.to_string())
}

/// The bucket names in status: the log bucket (first), the zones, the audit bucket.
fn record_buckets(next: &mut DataLakeStatus, region: &str, buckets: &[DesiredBucket]) {
    next.log_bucket = buckets.first().map(|b| b.name.clone());
    next.zones = zone_statuses(region, buckets);
    next.audit_bucket = buckets.iter().skip(1).find(|b| b.zone.is_none()).map(|b| b.name.clone());
}

fn zone_statuses(region: &str, buckets: &[DesiredBucket]) -> Vec<ZoneStatus> {
    buckets
        .iter()
        .filter(|b| b.zone.is_some())
        .map(|b| ZoneStatus {
            name: b.zone.clone().unwrap_or_default(),
            bucket: b.name.clone(),
            arn: desired::bucket_arn(region, &b.name),
        })
        .collect()
}

/// Bucket names this lake recorded in status before creating them.
fn recorded_buckets(status: Option<&DataLakeStatus>) -> BTreeSet<String> {
    let Some(s) = status else { return Default::default() };
    s.log_bucket.iter().chain(&s.audit_bucket).cloned().chain(s.zones.iter().map(|z| z.bucket.clone())).collect()
}

/// Reads a bucket and checks it is its owner's (or adoptable); `recorded`: bucket names the
/// owner recorded in status before creating them. Shared with the SecurityBaseline's bucket.
pub async fn observe_bucket<S: Sync>(
    exec: &Exec<'_, S>,
    aws: &Regional,
    bucket: &DesiredBucket,
    recorded: &BTreeSet<String>,
) -> Result<Option<diff::ObservedBucket>, Stop> {
    let observed = observe::bucket(aws.s3.as_ref(), &bucket.name).await?;
    if let Some(o) = &observed {
        // Untagged and recorded as ours before creation: a create interrupted before tagging.
        let interrupted = !o.tags.contains_key(tag::OWNER) && recorded.contains(&bucket.name);
        if !interrupted {
            exec.owned(&format!("bucket {}", bucket.name), &o.tags)?;
        }
    }
    Ok(observed)
}

/// Creates or converges one bucket to the lake's bucket baseline. Shared with the
/// SecurityBaseline's bucket.
pub async fn converge_bucket<S: Sync>(
    exec: &Exec<'_, S>,
    aws: &Regional,
    region: &str,
    bucket: &DesiredBucket,
    observed: Option<&diff::ObservedBucket>,
) -> Result<(), Stop> {
    let label = format!("bucket {}", bucket.name);
    for change in diff::bucket_changes(bucket, observed) {
        exec.change(&change, observed.is_some(), &label, apply::change(aws, region, &change)).await?;
    }
    Ok(())
}

async fn converge_table(
    exec: &Exe<'_>,
    aws: &Regional,
    region: &str,
    table: &DesiredTable,
    key_arn: &str,
    recorded_arn: Option<String>,
) -> Result<String, Stop> {
    let observed = observe::table(aws.dynamodb.as_ref(), &table.table_name).await?;
    if let Some(o) = &observed
        && recorded_arn.as_deref() != Some(o.info.arn.as_str())
    {
        // First sight of an existing table: is it ours?
        let tags = aws.dynamodb.list_tags(&o.info.arn).await?;
        exec.owned(&format!("table {}", table.table_name), &tags)?;
    }
    let label = format!("table {}", table.table_name);
    let mut arn = observed.as_ref().map(|o| o.info.arn.clone());
    for change in diff::table_changes(table, key_arn, observed.as_ref()) {
        if let Some(created) =
            exec.change(&change, observed.is_some(), &label, apply::change(aws, region, &change)).await?
        {
            arn = Some(created);
        }
    }
    Ok(arn.unwrap_or_else(|| placeholder(&format!("table {}", table.table_name))))
}

/// The audit bucket's Object Lock default retention (write-once audit logs; 1 read). A
/// COMPLIANCE retention is never shortened or relaxed (S3 refuses it for locked versions,
/// and the guard is the BackupPolicy's); a shorter GOVERNANCE retention the spec asks for
/// is sent and reported as weakening.
async fn converge_audit_retention(exec: &Exe<'_>, lake: &DataLake, aws: &Regional, existed: bool) -> Result<(), Stop> {
    let bucket = lake.audit_bucket();
    let want = desired::audit_retention(lake);
    let found = if existed { aws.s3.get_object_lock(&bucket).await?.1 } else { None };
    if let Some(o) = &found
        && o.mode == RetentionMode::Compliance.as_str()
        && retention_weakens(o, &want)
    {
        return exec.blocked(
            &bucket,
            Stop::Stalled(
                reason::PROTECTION_DOWNGRADE_REFUSED,
                format!(
                    "spec.audit: the audit bucket {bucket} has COMPLIANCE retention of {} days, which can never be shortened or relaxed (asked: {} {} days)",
                    o.days, want.mode, want.days
                ),
            ),
        );
    }
    if found.as_ref() != Some(&want) {
        let weakens = found.as_ref().is_some_and(|o| retention_weakens(o, &want));
        let change = Change::PutRetention { bucket: bucket.clone(), retention: want, previous: found, weakens };
        let label = format!("bucket {bucket}");
        exec.change(&change, existed, &label, apply::change(aws, &lake.spec.region, &change)).await?;
    }
    Ok(())
}

/// Creates, converges or (when the spec turns the trail off) deletes the audit trail; its
/// CloudWatch Logs group and delivery role first (CloudTrail checks them when the trail
/// names them). With the trail off, the controller reads it only when status recorded one;
/// a plan has no status, so it always looks. The group and role of a trail turned off are
/// kept: the group holds audit records.
async fn converge_trail(
    exec: &Exe<'_>,
    input: Inputs<'_>,
    key_arn: &str,
    next: &mut DataLakeStatus,
) -> Result<(), Stop> {
    let Inputs { lake, aws, .. } = input;
    let name = desired::trail_name(lake);
    let recorded_arn = next.trail_arn.clone();
    let delivery = if lake.spec.audit.trail {
        let want = desired::trail_logs(lake, input.account, key_arn, input.boundary);
        let recorded = trail_logs::Recorded {
            log_group_arn: next.trail_log_group_arn.as_deref(),
            role_arn: next.trail_logs_role_arn.as_deref(),
        };
        let delivery = trail_logs::converge(exec, aws.logs.as_ref(), input.iam, &want, recorded).await?;
        next.trail_log_group_arn = Some(delivery.log_group_arn.clone());
        next.trail_logs_role_arn = Some(delivery.role_arn.clone());
        delivery
    } else {
        Delivery::default()
    };
    let desired = desired::trail(lake, input.account, key_arn, &delivery, input.baseline_covers);
    if desired.is_none() && recorded_arn.is_none() && !exec.plans() {
        next.trail_arn = None;
        return Ok(());
    }
    let observed = observe::trail(aws.cloudtrail.as_ref(), &name).await?;
    let mut ours = true;
    if let Some(o) = &observed
        && recorded_arn.as_deref() != Some(o.info.arn.as_str())
    {
        let tags = aws.cloudtrail.list_tags(&o.info.arn).await?;
        ours = exec.owned(&format!("trail {name}"), &tags)?;
    }
    let label = format!("trail {name}");
    let region = &lake.spec.region;
    let Some(desired) = desired else {
        if observed.is_some() && ours {
            let change = Change::DeleteTrail { trail: name };
            exec.change(&change, true, &label, apply::change(aws, region, &change)).await?;
        }
        next.trail_arn = None;
        return Ok(());
    };
    let mut arn = observed.as_ref().map(|o| o.info.arn.clone());
    for change in diff::trail_changes(&desired, observed.as_ref()) {
        if let Some(created) =
            exec.change(&change, observed.is_some(), &label, apply::change(aws, region, &change)).await?
        {
            arn = Some(created);
        }
    }
    next.trail_arn = Some(arn.unwrap_or_else(|| placeholder("trail")));
    Ok(())
}
