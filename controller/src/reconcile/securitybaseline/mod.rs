//! SecurityBaseline reconciler: one baseline per account and region (the oldest wins, any
//! other is `Conflict`), then GuardDuty, Inspector and Config converged by the steps.
//!
//! There is no finalizer and no clean-up: deleting a SecurityBaseline leaves every service
//! running (detector, Inspector scanning, recorder, channel, bucket and key). lakeops never
//! disables, stops or deletes any of them.
pub mod cis;
pub mod desired;
pub mod diff;
pub mod plan;
pub mod publish;
pub mod steps;

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use lakeops_crds::names::reason;
use lakeops_crds::{SecurityBaseline, SecurityBaselineStatus};

use crate::conditions::Outcome;
use crate::context::Context;
use crate::engine::{self, Exec, Report, Stop, exec::StatusProgress};
use crate::error::Result;
use crate::status;

/// How often a baseline whose services are still starting is looked at again.
const ENABLING_POLL: Duration = Duration::from_secs(30);

/// Reconciles one SecurityBaseline.
pub async fn reconcile(b: Arc<SecurityBaseline>, ctx: Arc<Context>) -> Result<Action> {
    if b.metadata.deletion_timestamp.is_some() {
        // Nothing to undo: the services keep running.
        return Ok(Action::await_change());
    }
    let resync = super::resync_interval(b.as_ref(), ctx.config.resync_interval);
    // The lake-key alarm names the region's lake keys: a lake that became Ready (its key and
    // alias made) is part of what makes a round necessary. The lakes' watch re-queues the
    // baseline; as that watch and the lakes' cache are two streams, the baseline also looks
    // at the cache again every BASELINE_POLL (in memory: no AWS call unless it changed).
    let lake_keys = ready_lake_keys(&ctx.stores.lakes.state(), &b.spec.region);
    if let Some(left) = ctx.fingerprints.fresh_with(b.as_ref(), &lake_keys, resync) {
        return Ok(Action::requeue(left.min(BASELINE_POLL)));
    }
    ctx.fingerprints.forget(b.as_ref());
    let current = b.status.clone().unwrap_or_default();
    let mut next = current.clone();

    if let Some(message) = b.validate().error_summary() {
        let outcome = Outcome::Stalled { reason: reason::INVALID_SPEC, message };
        status::apply(&ctx, b.as_ref(), next, &outcome).await?;
        ctx.fingerprints.remember(b.as_ref());
        return Ok(Action::requeue(resync));
    }
    // One baseline per account and region: every baseline of this controller acts in its
    // one account, so the region decides. Not remembered: the other one may go.
    let api: kube::Api<SecurityBaseline> = kube::Api::all(ctx.client.clone());
    let all = api.list(&Default::default()).await?;
    if let Some(owner) = owner_of_region(all.items.iter(), &b.spec.region)
        && owner.name_any() != b.name_any()
    {
        let message = format!(
            "SecurityBaseline {:?} already manages region {} of this account; delete this one or change its region",
            owner.name_any(),
            b.spec.region
        );
        status::apply(&ctx, b.as_ref(), next, &Outcome::Stalled { reason: reason::CONFLICT, message }).await?;
        return Ok(Action::requeue(resync));
    }

    let (outcome, requeue) = match converge(&b, &ctx, &mut next).await {
        Ok(report) => {
            if !report.drift.is_empty() {
                super::drift_event(&ctx, b.as_ref(), &report.drift).await;
            }
            if report.applied > 0 {
                tracing::info!(changes = report.applied, "converged");
            }
            if report.pending.is_empty() {
                (Outcome::Ready { message: ready_message(&next) }, resync)
            } else {
                let message = report.pending.join("; ");
                (Outcome::Progressing { reason: reason::SERVICES_ENABLING, message }, ENABLING_POLL)
            }
        }
        Err(stop) => stop.outcome(resync, || ctx.backoff.next(b.as_ref()))?,
    };
    status::apply(&ctx, b.as_ref(), next, &outcome).await?;
    if engine::remembers(&outcome) {
        ctx.fingerprints.remember_with(b.as_ref(), &lake_keys);
    }
    Ok(Action::requeue(requeue.min(BASELINE_POLL)))
}

/// The key ARNs of the Ready lakes of `region`, sorted: what the lake-key alarm follows.
pub fn ready_lake_keys(lakes: &[Arc<lakeops_crds::DataLake>], region: &str) -> String {
    let mut keys: Vec<&str> = lakes
        .iter()
        .filter(|l| l.spec.region == region)
        .filter_map(|l| {
            let s = l.status.as_ref()?;
            lakeops_crds::common::is_ready(&s.conditions, s.observed_generation, l.metadata.generation)
                .then_some(s.kms_key_arn.as_deref())?
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.join(",")
}

/// The baseline that owns `region`: the oldest (then the first by name) of those naming it.
pub fn owner_of_region<'a>(
    all: impl Iterator<Item = &'a SecurityBaseline>,
    region: &str,
) -> Option<&'a SecurityBaseline> {
    all.filter(|o| o.spec.region == region && o.metadata.deletion_timestamp.is_none())
        .min_by(|a, b| (a.creation_timestamp(), a.name_any()).cmp(&(b.creation_timestamp(), b.name_any())))
}

/// How often a lake that requires a baseline looks again while none is Ready.
pub const BASELINE_POLL: Duration = Duration::from_secs(30);

/// Why no Ready SecurityBaseline covers `region` of the controller's account (`None` when
/// one does). The baseline that owns the region (the oldest) must be Ready for its
/// generation and act in this account.
pub async fn baseline_missing(ctx: &Context, region: &str) -> Result<Option<String>> {
    let api: kube::Api<SecurityBaseline> = kube::Api::all(ctx.client.clone());
    let all = api.list(&Default::default()).await?;
    let account = ctx.aws.account_id().await.ok();
    Ok(baseline_gap(all.items.iter(), region, account.as_deref()))
}

/// Pure part of [`baseline_missing`].
pub fn baseline_gap<'a>(
    all: impl Iterator<Item = &'a SecurityBaseline>,
    region: &str,
    account: Option<&str>,
) -> Option<String> {
    let Some(owner) = owner_of_region(all, region) else {
        return Some(format!(
            "spec.security.requireBaseline: no SecurityBaseline covers region {region}; create one (see examples/securitybaseline.yaml)"
        ));
    };
    let status = owner.status.as_ref();
    let ready = status.is_some_and(|s| {
        lakeops_crds::common::is_ready(&s.conditions, s.observed_generation, owner.metadata.generation)
    });
    let same_account = match (status.and_then(|s| s.account_id.as_deref()), account) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => true,
    };
    (!ready || !same_account).then(|| {
        format!(
            "spec.security.requireBaseline: SecurityBaseline {:?} for region {region} is not Ready yet",
            owner.name_any()
        )
    })
}

fn ready_message(status: &SecurityBaselineStatus) -> String {
    // Stable: a count or timestamp here would make every round a status write.
    if status.inspector.as_ref().is_some_and(|i| i.managed_by_organization) {
        "GuardDuty and Config match the spec; Inspector is ManagedByOrganization (a delegated administrator decides; read-only here)".into()
    } else if status.audit_trail.is_some() {
        "GuardDuty, Inspector, Config and the account trail match the spec".into()
    } else {
        "GuardDuty, Inspector and Config match the spec".into()
    }
}

async fn converge(
    b: &SecurityBaseline,
    ctx: &Context,
    next: &mut SecurityBaselineStatus,
) -> std::result::Result<Report, Stop> {
    let aws = ctx.aws.region(&b.spec.region);
    let account = ctx.aws.account_id().await?;
    let progress = StatusProgress { ctx, obj: b };
    let exec = Exec::apply(b, &progress);
    let iam = ctx.aws.iam();
    let input = steps::Inputs {
        aws: &aws,
        iam: iam.as_ref(),
        account: &account,
        boundary: ctx.config.permissions_boundary.as_deref(),
    };
    steps::converge(b, input, &exec, next).await?;
    Ok(exec.finish().0)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use lakeops_crds::SecurityBaseline;

    use super::*;
    use crate::aws::config::Recorder;
    use crate::aws::fake::FakeAws;
    use crate::aws::guardduty::{DetectorSettings, FEATURES, LAMBDA_NETWORK_LOGS};
    use crate::engine::{NoProgress, Plan};

    const REGION: &str = "eu-west-1";
    const ACCOUNT: &str = "123456789012";

    fn baseline() -> SecurityBaseline {
        serde_saphyr::from_str(
            "apiVersion: lakeops.dev/v1alpha1\nkind: SecurityBaseline\nmetadata: {name: eu, uid: u-1}\nspec: {region: eu-west-1}\n",
        )
        .expect("fixture parses")
    }

    /// One apply round on the fake; `status` carries what the controller would have written.
    async fn round(
        aws: &Arc<FakeAws>,
        b: &SecurityBaseline,
        status: &mut SecurityBaselineStatus,
    ) -> std::result::Result<(Report, Plan), Stop> {
        let exec = Exec::apply(b, &NoProgress);
        let (regional, iam) = (aws.region(REGION), aws.iam());
        let input = steps::Inputs { aws: &regional, iam: iam.as_ref(), account: ACCOUNT, boundary: None };
        let result = steps::converge(b, input, &exec, status).await;
        let (report, plan) = exec.finish();
        result.map(|()| (report, plan))
    }

    async fn plan_of(aws: &Arc<FakeAws>, b: &SecurityBaseline, status: &SecurityBaselineStatus) -> Plan {
        let exec = Exec::plan(b);
        let mut next = status.clone();
        let (regional, iam) = (aws.region(REGION), aws.iam());
        let input = steps::Inputs { aws: &regional, iam: iam.as_ref(), account: ACCOUNT, boundary: None };
        let result = steps::converge(b, input, &exec, &mut next).await;
        crate::reconcile::datalake::plan::finish(result, exec).expect("reads succeed")
    }

    fn ops(aws: &FakeAws, write: bool) -> Vec<String> {
        aws.calls().iter().filter(|c| c.write == write).map(|c| c.operation.to_string()).collect()
    }

    #[tokio::test]
    async fn an_empty_region_converges_and_the_plan_lists_exactly_what_apply_sends() {
        let b = baseline();
        let aws = FakeAws::new(ACCOUNT);
        // Inspector stays ENABLING for a while, as in AWS.
        aws.set_settle_calls(50);
        let planned = plan_of(&aws.fork(), &b, &SecurityBaselineStatus::default()).await;
        assert!(planned.blockers.is_empty(), "{planned:?}");
        let mut status = SecurityBaselineStatus::default();
        let (report, applied) = round(&aws, &b, &mut status).await.expect("converges");
        // The same changes in the same order; the plan names what does not exist yet by a
        // placeholder where apply has the new key's id.
        let shape = |p: &Plan| p.changes.iter().map(|c| (c.action, c.setting.clone(), c.weakens)).collect::<Vec<_>>();
        assert_eq!(shape(&planned), shape(&applied), "plan == apply's changes");
        let count = |setting: &str| planned.changes.iter().filter(|c| c.setting == setting).count();
        // 14 CIS filters and alarms (no lake key in the region, so no lake-key alarm).
        assert_eq!((count("CIS metric filter"), count("CIS alarm")), (14, 14), "{planned:?}");
        assert_eq!(count("audit trail"), 1);
        assert_eq!(planned.changes.len(), 69, "{:#?}", shape(&planned));
        assert_eq!(report.pending.len(), 2, "Inspector starts ENABLING: {:?}", report.pending);

        let detectors = aws.detectors(REGION);
        assert_eq!(detectors.len(), 1);
        let features = &detectors[0].settings.features;
        assert_eq!(features.len(), FEATURES.len(), "the full feature list was sent");
        assert_eq!(features.get(LAMBDA_NETWORK_LOGS), Some(&true));
        assert_eq!(features.values().filter(|on| **on).count(), 1);
        let config = aws.config(REGION);
        assert!(config.recording);
        let channel = config.channel.expect("a delivery channel");
        assert_eq!(channel.bucket, desired::config_bucket_name(ACCOUNT, REGION));
        let bucket = aws.snapshot().buckets.get(&channel.bucket).cloned().expect("the bucket exists");
        assert!(bucket.tags.get(lakeops_crds::names::tag::OWNER).is_some_and(|o| o == "/eu"));
        let g = status.guard_duty.clone().expect("detector recorded");
        assert!(!g.adopted, "created, not adopted");
        assert!(status.creation_tokens.contains_key(desired::DETECTOR_PURPOSE));

        // A round while ENABLING writes nothing and stays pending; once AWS reports ENABLED
        // the round is done.
        aws.reset_calls();
        let (report, _) = round(&aws, &b, &mut status).await.expect("converges");
        assert_eq!(report.pending.len(), 2);
        assert!(ops(&aws, true).is_empty(), "nothing is re-enabled while ENABLING: {:?}", ops(&aws, true));
        // (The enable settles 50 calls after it was sent: a few rounds.)
        for _ in 0..3 {
            round(&aws, &b, &mut status).await.expect("converges");
        }
        let (report, _) = round(&aws, &b, &mut status).await.expect("converges");
        assert!(report.pending.is_empty(), "{:?}", report.pending);
        let inspector = status.inspector.clone().expect("inspector recorded");
        assert_eq!((inspector.lambda.as_deref(), inspector.lambda_code.as_deref()), (Some("ENABLED"), Some("ENABLED")));
    }

    #[tokio::test]
    async fn a_converged_region_costs_reads_only() {
        let b = baseline();
        let aws = FakeAws::new(ACCOUNT);
        let mut status = SecurityBaselineStatus::default();
        round(&aws, &b, &mut status).await.expect("converges");
        round(&aws, &b, &mut status).await.expect("settles");
        aws.reset_calls();
        let (report, applied) = round(&aws, &b, &mut status).await.expect("steady");
        assert_eq!(report.applied, 0);
        assert!(applied.changes.is_empty());
        assert!(ops(&aws, true).is_empty(), "writes: {:?}", ops(&aws, true));
        let reads = ops(&aws, false);
        // ListDetectors, GetDetector, BatchGetAccountStatus, the log bucket (8),
        // DescribeConfigurationRecorders, DescribeDeliveryChannels, the Config key (DescribeKey,
        // rotation, policy, its tags), its bucket (8), DescribeConfigurationRecorderStatus: 26;
        // the account trail: its key (4), bucket (8), DescribeLogGroups, GetRole,
        // GetRolePolicy, GetTrail, GetEventSelectors, GetTrailStatus, ListAliases,
        // DescribeMetricFilters, DescribeAlarms: 21.
        assert_eq!(reads.len(), 47, "{reads:?}");
        let once = ["ListAliases", "DescribeMetricFilters", "DescribeAlarms", "GetTrail"];
        for op in once {
            assert_eq!(reads.iter().filter(|r| *r == op).count(), 1, "{op} once: {reads:?}");
        }
        assert!(plan_of(&aws, &b, &status).await.changes.is_empty());
    }

    #[tokio::test]
    async fn an_existing_detector_is_adopted_and_never_doubled() {
        let b = baseline();
        let aws = FakeAws::new(ACCOUNT);
        let theirs = DetectorSettings {
            enabled: true,
            finding_publishing_frequency: "SIX_HOURS".into(),
            features: [("S3_DATA_EVENTS".to_string(), true)].into(),
        };
        let id = aws.with_detector(REGION, &theirs, &Default::default());
        let mut status = SecurityBaselineStatus::default();
        round(&aws, &b, &mut status).await.expect("converges");
        assert!(!ops(&aws, true).contains(&"CreateDetector".to_string()));
        let detectors = aws.detectors(REGION);
        assert_eq!(detectors.len(), 1);
        assert_eq!(detectors[0].id, id);
        assert_eq!(detectors[0].settings.features.get(LAMBDA_NETWORK_LOGS), Some(&true), "Lambda Protection added");
        assert_eq!(detectors[0].settings.features.get("S3_DATA_EVENTS"), Some(&true), "theirs kept");
        assert_eq!(
            status.guard_duty,
            Some(lakeops_crds::securitybaseline::ServiceStatus { detector_id: Some(id), adopted: true })
        );
    }

    #[tokio::test]
    async fn a_create_whose_answer_was_lost_is_found_not_repeated() {
        let b = baseline();
        let aws = FakeAws::new(ACCOUNT);
        aws.drop_response_on(|service, op| service == "guardduty" && op == "CreateDetector");
        let mut status = SecurityBaselineStatus::default();
        assert!(round(&aws, &b, &mut status).await.is_err(), "the answer was lost");
        aws.clear_faults();
        round(&aws, &b, &mut status).await.expect("converges");
        assert_eq!(aws.detectors(REGION).len(), 1);
        assert_eq!(ops(&aws, true).iter().filter(|o| *o == "CreateDetector").count(), 1);
        assert!(!status.guard_duty.expect("recorded").adopted, "its creation token says it is ours");
    }

    #[tokio::test]
    async fn an_existing_recorder_keeps_its_name_and_inspector_under_an_administrator_is_read_only() {
        let b = baseline();
        let aws = FakeAws::new(ACCOUNT);
        let theirs = Recorder {
            name: "aws-controltower-BaselineConfigRecorder".into(),
            role_arn: format!("arn:aws:iam::{ACCOUNT}:role/ct"),
            all_supported: true,
            include_global_resources: true,
        };
        aws.with_recorder(REGION, &theirs, false);
        aws.with_inspector_managed_by_organization(REGION);
        let mut status = SecurityBaselineStatus::default();
        let (report, _) = round(&aws, &b, &mut status).await.expect("converges");
        assert!(report.pending.is_empty());
        let writes = ops(&aws, true);
        assert!(!writes.contains(&"PutConfigurationRecorder".to_string()), "{writes:?}");
        assert!(!writes.contains(&"Enable".to_string()), "{writes:?}");
        let config = aws.config(REGION);
        assert_eq!(config.recorder, Some(theirs.clone()));
        assert!(config.recording);
        let c = status.config.expect("recorded");
        assert_eq!((c.recorder.as_deref(), c.adopted), (Some(theirs.name.as_str()), true));
        assert!(status.inspector.expect("recorded").managed_by_organization);
    }

    fn with_alerts_and_a_suppression(expires: &str) -> SecurityBaseline {
        let mut b = baseline();
        b.spec.alerts = Some(lakeops_crds::securitybaseline::AlertsSpec {
            emails: vec!["secops@example.com".into()],
            minimum_finding_severity: lakeops_crds::FindingSeverity::High,
            deployments: true,
            deletions: true,
        });
        b.spec.inspector.suppressions = vec![lakeops_crds::securitybaseline::Suppression {
            vulnerability_id: "CVE-2024-3651".into(),
            functions: vec!["team/etl".into()],
            reason: "not reachable".into(),
            expires: expires.into(),
        }];
        b
    }

    #[tokio::test]
    async fn alerts_and_suppressions_converge_once_plan_as_apply_and_survive_lost_answers() {
        let b = with_alerts_and_a_suppression("2099-12-31");
        let aws = FakeAws::new(ACCOUNT);
        // Lost answers on the two creates that AWS does not deduplicate the same way.
        aws.drop_response_on(|service, op| (service, op) == ("inspector2", "CreateFilter") || op == "CreateTopic");
        let planned = plan_of(&aws.fork(), &b, &SecurityBaselineStatus::default()).await;
        let mut status = SecurityBaselineStatus::default();
        assert!(round(&aws, &b, &mut status).await.is_err(), "an answer was lost");
        aws.clear_faults();
        let (_, applied) = round(&aws, &b, &mut status).await.expect("converges");
        let creates = |ops: &[String], op: &str| ops.iter().filter(|o| *o == op).count();
        let writes = ops(&aws, true);
        assert_eq!(creates(&writes, "CreateTopic"), 1, "{writes:?}");
        assert_eq!(creates(&writes, "CreateFilter"), 1, "found by name and tags, not repeated: {writes:?}");
        assert!(planned.changes.iter().any(|c| c.setting == "Inspector suppression" && c.weakens), "{planned:?}");
        assert!(applied.changes.iter().all(|c| c.setting != "Inspector suppression"), "already there: {applied:?}");

        let topic_arn = desired::topic_arn(REGION, ACCOUNT);
        let topic = aws.topic(&topic_arn).expect("the topic");
        let key = aws.snapshot().aliases.get(&(REGION.to_string(), desired::ALERTS_KEY_ALIAS.to_string())).cloned();
        assert!(
            topic
                .attributes
                .get(crate::aws::sns::KMS_MASTER_KEY_ID)
                .is_some_and(|k| key.as_ref().is_some_and(|id| k.ends_with(id.as_str())))
        );
        let alerts = status.alerts.clone().expect("alerts");
        assert_eq!(alerts.subscriptions[0].state, "PendingConfirmation");
        assert_eq!(status.suppressions, ["CVE-2024-3651"]);

        // At rest: no write; a confirmed address shows as such.
        aws.confirm_subscriptions(&topic_arn);
        aws.reset_calls();
        round(&aws, &b, &mut status).await.expect("converges");
        assert!(ops(&aws, true).is_empty(), "{:?}", ops(&aws, true));
        assert_eq!(status.alerts.as_ref().expect("alerts").subscriptions[0].state, "Confirmed");
        let plan = plan_of(&aws, &b, &status).await;
        assert!(plan.changes.is_empty(), "{plan:?}");
    }

    #[tokio::test]
    async fn an_expired_suppression_is_deleted_and_a_foreign_filter_is_left_alone() {
        let live = with_alerts_and_a_suppression("2099-12-31");
        let aws = FakeAws::new(ACCOUNT);
        let mut status = SecurityBaselineStatus::default();
        round(&aws, &live, &mut status).await.expect("converges");
        let foreign = crate::aws::inspector::SuppressionFilter {
            name: "lakeops-CVE-1".into(),
            vulnerability_id: "CVE-1".into(),
            ..Default::default()
        };
        aws.region(REGION).inspector.create_suppression(&foreign, &Default::default()).await.expect("someone's filter");
        let expired = with_alerts_and_a_suppression("2020-01-01");
        aws.reset_calls();
        round(&aws, &expired, &mut status).await.expect("converges");
        assert_eq!(ops(&aws, true), ["DeleteFilter"]);
        let left: Vec<_> = aws.inspector(REGION).filters.into_values().map(|f| f.filter.name).collect();
        assert_eq!(left, ["lakeops-CVE-1"]);
        assert!(status.suppressions.is_empty());
    }

    #[tokio::test]
    async fn the_account_trail_records_management_events_everywhere_with_its_cis_alarms_on_the_topic() {
        let mut b = with_alerts_and_a_suppression("2099-12-31");
        b.spec.inspector.suppressions.clear();
        let aws = FakeAws::new(ACCOUNT);
        // A lake key in the region (and the baseline's own keys, which are not lake keys).
        let lake_key = aws.region(REGION).kms.create_key("lake", "{}", &Default::default()).await.expect("a lake key");
        aws.region(REGION).kms.create_alias("alias/lakeops/team-a/sales", &lake_key.key_id).await.expect("alias");
        // Someone else's trail in the region: never touched.
        let theirs = crate::aws::cloudtrail::TrailSettings { name: "org-trail".into(), ..Default::default() };
        aws.edit(|r| {
            r.trails.insert(
                (REGION.to_string(), "org-trail".to_string()),
                crate::aws::fake::Trail {
                    arn: "arn:aws:cloudtrail:eu-west-1:123456789012:trail/org-trail".into(),
                    settings: theirs.clone(),
                    ..Default::default()
                },
            )
        });
        let mut status = SecurityBaselineStatus::default();
        round(&aws, &b, &mut status).await.expect("converges");

        let name = desired::account_trail_name(REGION);
        let trail = aws.trail(REGION, &name).expect("the account trail");
        let s = &trail.settings;
        assert!(s.multi_region && s.log_file_validation && s.global_service_events, "{s:?}");
        assert!(trail.selection.management_events && trail.selection.s3_objects.is_empty(), "{:?}", trail.selection);
        assert!(trail.logging);
        let key = aws.snapshot().aliases.get(&(REGION.to_string(), desired::TRAIL_KEY_ALIAS.to_string())).cloned();
        assert!(key.is_some_and(|id| s.kms_key_id.ends_with(&id)), "encrypted with the trail key: {s:?}");
        assert_eq!(s.s3_bucket, desired::trail_bucket_name(ACCOUNT, REGION));
        let group = aws.log_group(REGION, &desired::trail_log_group(REGION)).expect("the trail's group");
        assert_eq!(group.retention_days, Some(365));
        assert!(s.cloud_watch_logs_group_arn.starts_with(&group.arn), "{s:?}");
        let bucket = aws.snapshot().buckets.get(&s.s3_bucket).cloned().expect("the trail bucket");
        assert!(bucket.logging.is_some_and(|l| l.target_bucket == desired::log_bucket_name(ACCOUNT, REGION)));
        assert_eq!(aws.trail(REGION, "org-trail").map(|t| t.settings), Some(theirs), "someone else's trail untouched");

        // 14 CIS filters with the exact patterns, one naming the lake key; 15 alarms on the topic.
        assert_eq!(group.metric_filters.len(), 15);
        for c in cis::CIS_FILTERS {
            assert_eq!(group.metric_filters[&format!("{}{}", cis::NAME_PREFIX, c.slug)].pattern, c.pattern);
        }
        assert!(
            group.metric_filters[&format!("{}{}", cis::NAME_PREFIX, cis::LAKE_KEY_SLUG)]
                .pattern
                .contains(&lake_key.arn)
        );
        let alarms = aws.alarms(REGION);
        assert_eq!(alarms.len(), 15);
        let topic = desired::topic_arn(REGION, ACCOUNT);
        assert!(alarms.values().all(|a| a.alarm.alarm_actions == [topic.clone()]), "{alarms:?}");
        let t = status.audit_trail.clone().expect("recorded");
        assert_eq!(
            (t.trail_arn.as_deref(), t.management_events, t.alarms, t.adopted),
            (Some(trail.arn.as_str()), true, 15, false)
        );
        b.status = Some(status.clone());
        assert!(b.records_management_events());

        // At rest nothing is written; a shortened retention and a changed alarm are restored.
        aws.reset_calls();
        round(&aws, &b, &mut status).await.expect("steady");
        assert!(ops(&aws, true).is_empty(), "{:?}", ops(&aws, true));
        aws.edit_log_group(REGION, &desired::trail_log_group(REGION), |g| g.retention_days = Some(30));
        aws.edit(|r| r.alarms.values_mut().for_each(|a| a.alarm.alarm_actions.clear()));
        let (report, _) = round(&aws, &b, &mut status).await.expect("restored");
        assert_eq!(report.drift.len(), 16, "{:?}", report.drift);
    }

    #[tokio::test]
    async fn a_foreign_trail_of_the_account_trails_name_is_left_alone_unless_adoption_is_asked_for() {
        let b = baseline();
        let aws = FakeAws::new(ACCOUNT);
        let name = desired::account_trail_name(REGION);
        let theirs = crate::aws::cloudtrail::TrailSettings {
            name: name.clone(),
            s3_bucket: "their-bucket".into(),
            ..Default::default()
        };
        let arn = format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{name}");
        aws.edit(|r| {
            r.trails.insert(
                (REGION.to_string(), name.clone()),
                crate::aws::fake::Trail { arn: arn.clone(), settings: theirs.clone(), ..Default::default() },
            )
        });
        let plan = plan_of(&aws, &b, &SecurityBaselineStatus::default()).await;
        assert!(plan.blockers.iter().any(|x| x.resource.contains(&name)), "{plan:?}");
        let mut status = SecurityBaselineStatus::default();
        match round(&aws, &b, &mut status).await {
            Err(Stop::Stalled(r, _)) => assert_eq!(r, reason::NOT_OWNED),
            other => panic!("expected NotOwned, got {other:?}"),
        }
        assert_eq!(aws.trail(REGION, &name).map(|t| t.settings), Some(theirs.clone()), "untouched");
        assert!(aws.alarms(REGION).is_empty(), "no alarm without our trail");

        let mut adopt = b.clone();
        adopt.metadata.annotations =
            Some([(lakeops_crds::names::annotation::ADOPT.to_string(), "true".to_string())].into());
        round(&aws, &adopt, &mut status).await.expect("adopted");
        let t = aws.trail(REGION, &name).expect("still one trail");
        assert!(t.settings.multi_region && t.settings.log_file_validation);
        assert_eq!(aws.snapshot().trails.len(), 1, "never a second trail");
        assert!(status.audit_trail.expect("recorded").adopted);
    }

    #[tokio::test]
    async fn lost_answers_and_crashes_in_the_account_trail_never_make_a_second_trail_key_or_alarm() {
        let b = baseline();
        let aws = FakeAws::new(ACCOUNT);
        aws.drop_response_on(|_, op| matches!(op, "CreateTrail" | "PutMetricAlarm" | "PutMetricFilter" | "CreateKey"));
        let mut status = SecurityBaselineStatus::default();
        for _ in 0..8 {
            if round(&aws, &b, &mut status).await.is_ok() {
                break;
            }
        }
        aws.clear_faults();
        round(&aws, &b, &mut status).await.expect("converges");
        let snap = aws.snapshot();
        assert_eq!(snap.trails.len(), 1);
        assert_eq!(aws.alarms(REGION).len(), 14);
        assert_eq!(snap.keys.len(), 2, "the Config key and the trail key, once each: {:?}", snap.keys.keys());
        aws.reset_calls();
        round(&aws, &b, &mut status).await.expect("steady");
        assert!(ops(&aws, true).is_empty(), "{:?}", ops(&aws, true));
    }

    #[tokio::test]
    async fn turning_the_trail_off_stops_relying_on_it_and_deletes_nothing() {
        let mut b = baseline();
        let aws = FakeAws::new(ACCOUNT);
        let mut status = SecurityBaselineStatus::default();
        round(&aws, &b, &mut status).await.expect("converges");
        b.spec.audit_trail.enabled = false;
        aws.reset_calls();
        round(&aws, &b, &mut status).await.expect("converges");
        assert!(ops(&aws, true).is_empty(), "{:?}", ops(&aws, true));
        assert!(status.audit_trail.is_none());
        assert!(aws.trail(REGION, &desired::account_trail_name(REGION)).is_some_and(|t| t.logging));
        assert_eq!(aws.alarms(REGION).len(), 14);
    }

    #[test]
    fn a_lake_that_requires_a_baseline_needs_a_ready_one_in_its_account_and_region() {
        let mut b = baseline();
        b.metadata.generation = Some(1);
        assert!(
            baseline_gap(std::iter::empty(), REGION, Some(ACCOUNT)).is_some_and(|m| m.contains("no SecurityBaseline"))
        );
        assert!(baseline_gap([&b].into_iter(), REGION, Some(ACCOUNT)).is_some_and(|m| m.contains("not Ready")));
        let outcome = Outcome::Ready { message: "ok".into() };
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        let conditions = crate::conditions::next_conditions(&[], &outcome, Some(1), &now);
        let status = SecurityBaselineStatus {
            account_id: Some(ACCOUNT.into()),
            conditions,
            observed_generation: Some(1),
            ..Default::default()
        };
        b.status = Some(status);
        assert_eq!(baseline_gap([&b].into_iter(), REGION, Some(ACCOUNT)), None);
        assert!(baseline_gap([&b].into_iter(), REGION, Some("999999999999")).is_some(), "another account's");
        assert!(baseline_gap([&b].into_iter(), "us-east-1", Some(ACCOUNT)).is_some(), "another region");
    }

    #[test]
    fn the_lake_keys_a_baseline_follows_are_those_of_ready_lakes_of_its_region() {
        let lake = |name: &str, region: &str, ready: &str, key: &str| -> Arc<lakeops_crds::DataLake> {
            Arc::new(
                serde_saphyr::from_str(&format!(
                    "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {{name: {name}, namespace: t, generation: 1}}\nspec: {{region: {region}, zones: [{{name: raw}}]}}\nstatus:\n  kmsKeyArn: {key}\n  observedGeneration: 1\n  conditions: [{{type: Ready, status: \"{ready}\", reason: R, message: m, lastTransitionTime: \"2026-01-01T00:00:00Z\"}}]\n"
                ))
                .expect("fixture"),
            )
        };
        let lakes = [
            lake("b", REGION, "True", "arn:k2"),
            lake("a", REGION, "True", "arn:k1"),
            lake("c", REGION, "False", "arn:k3"),
            lake("d", "us-east-1", "True", "arn:k4"),
        ];
        assert_eq!(ready_lake_keys(&lakes, REGION), "arn:k1,arn:k2");
    }

    #[test]
    fn the_oldest_baseline_of_a_region_owns_it() {
        let mut a = baseline();
        a.metadata.name = Some("b".into());
        let mut other = baseline();
        other.metadata.name = Some("a".into());
        let mut elsewhere = baseline();
        elsewhere.spec.region = "us-east-1".into();
        let all = [a.clone(), other.clone(), elsewhere];
        assert_eq!(owner_of_region(all.iter(), REGION).map(ResourceExt::name_any).as_deref(), Some("a"));
        assert_eq!(owner_of_region(all.iter(), "us-east-1").map(ResourceExt::name_any).as_deref(), Some("eu"));
    }
}
