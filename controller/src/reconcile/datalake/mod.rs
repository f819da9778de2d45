//! DataLake reconciler: observe what exists, compute what the spec wants, apply the
//! difference in dependency order (key, log bucket, zone buckets, tables), write status.
pub mod apply;
mod cleanup;
pub mod desired;
pub mod diff;
pub mod observe;
pub mod plan;
pub mod steps;

use std::sync::Arc;

use kube::runtime::controller::Action;
use lakeops_crds::names::reason;
use lakeops_crds::{DataLake, DataLakeStatus, SecurityBaseline};

use self::cleanup::cleanup;
use crate::conditions::Outcome;
use crate::context::Context;
use crate::engine::{self, Exec, Report, Stop, exec::StatusProgress};
use crate::error::Result;
use crate::reconcile::securitybaseline::publish::{Message, after_cleanup};
use crate::status;

/// Reconciles one DataLake: the finalizer guards clean-up, then apply or clean up.
pub async fn reconcile(lake: Arc<DataLake>, ctx: Arc<Context>) -> Result<Action> {
    super::with_finalizer(lake, ctx, apply_lake, |lake, ctx| {
        let mut message = Message::about(lake.as_ref(), "ObjectDeleted", &lake.spec.region);
        message.deletion_policy = Some(format!("{:?}", lake.spec.deletion_policy));
        after_cleanup(lake, ctx, Some(message), cleanup)
    })
    .await
}

async fn apply_lake(lake: Arc<DataLake>, ctx: Arc<Context>) -> Result<Action> {
    let resync = super::resync_interval(lake.as_ref(), ctx.config.resync_interval);
    // Whether a Ready baseline's account trail records management events decides the lake
    // trail's selectors, so it is part of what makes a round necessary: a baseline becoming
    // Ready, or no longer Ready, re-queues every lake (the baselines' watch) and a lake whose
    // coverage changed converges at once. That watch and the baselines' cache are two
    // streams, so a lake the coverage matters to also looks at the cache again every
    // BASELINE_POLL (in memory: no AWS call unless the coverage changed).
    let watches_coverage =
        ctx.config.security_baselines && lake.spec.audit.trail && lake.spec.audit.management_events.is_none();
    let account = ctx.aws.account_id().await.ok();
    let covered =
        watches_coverage && account.as_deref().is_some_and(|a| baseline_covers(&ctx.stores.baselines.state(), a));
    let depends = if covered { "baseline-covers" } else { "" };
    let requeue_within = |d: std::time::Duration| {
        if watches_coverage { d.min(crate::reconcile::securitybaseline::BASELINE_POLL) } else { d }
    };
    if let Some(left) = ctx.fingerprints.fresh_with(lake.as_ref(), depends, resync) {
        return Ok(Action::requeue(requeue_within(left)));
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
    // A lake that requires a baseline waits for one; not remembered, looked at again soon.
    if lake.spec.security.require_baseline
        && let Some(message) = crate::reconcile::securitybaseline::baseline_missing(&ctx, &lake.spec.region).await?
    {
        let outcome = Outcome::Waiting { reason: lakeops_crds::names::reason::BASELINE_NOT_READY, message };
        status::apply(&ctx, lake.as_ref(), next, &outcome).await?;
        return Ok(Action::requeue(crate::reconcile::securitybaseline::BASELINE_POLL));
    }
    let result = converge(&lake, &ctx, &mut next, covered).await;
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
        ctx.fingerprints.remember_with(lake.as_ref(), depends);
    }
    Ok(Action::requeue(requeue_within(requeue)))
}

async fn converge(
    lake: &DataLake,
    ctx: &Context,
    next: &mut DataLakeStatus,
    baseline_covers: bool,
) -> std::result::Result<Report, Stop> {
    let aws = ctx.aws.region(&lake.spec.region);
    let account = ctx.aws.account_id().await?;
    let progress = StatusProgress { ctx, obj: lake };
    let exec = Exec::apply(lake, &progress);
    let iam = ctx.aws.iam();
    let input = steps::Inputs {
        lake,
        aws: &aws,
        iam: iam.as_ref(),
        account: &account,
        boundary: ctx.config.permissions_boundary.as_deref(),
        baseline_covers,
    };
    steps::converge(input, &exec, next).await?;
    Ok(exec.finish().0)
}

/// True when a Ready SecurityBaseline of this account has an account trail recording
/// management events, so lake trails need not pay for another copy. The account trail is
/// multi-region: it covers the lakes of every region, whichever region the baseline is in.
pub fn baseline_covers(baselines: &[Arc<SecurityBaseline>], account: &str) -> bool {
    baselines.iter().any(|b| b.records_management_events() && ready_in(b, account))
}

/// The baseline is Ready for its generation in `account`.
fn ready_in(b: &SecurityBaseline, account: &str) -> bool {
    let status = b.status.as_ref();
    status.and_then(|s| s.account_id.as_deref()) == Some(account)
        && status.is_some_and(|s| {
            lakeops_crds::common::is_ready(&s.conditions, s.observed_generation, b.metadata.generation)
        })
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

    fn baseline(region: &str, account: &str, ready: &str, trail: bool) -> Arc<SecurityBaseline> {
        let trail = if trail {
            format!(
                "  auditTrail: {{trailArn: \"arn:aws:cloudtrail:{region}:{account}:trail/t\", managementEvents: true}}\n"
            )
        } else {
            String::new()
        };
        Arc::new(
            serde_saphyr::from_str(&format!(
                "apiVersion: lakeops.dev/v1alpha1\nkind: SecurityBaseline\nmetadata: {{name: b, generation: 2}}\nspec: {{region: {region}}}\nstatus:\n  accountId: \"{account}\"\n  observedGeneration: 2\n  conditions: [{{type: Ready, status: \"{ready}\", reason: R, message: m, lastTransitionTime: \"2026-01-01T00:00:00Z\"}}]\n{trail}"
            ))
            .expect("fixture"),
        )
    }

    #[test]
    fn a_ready_baseline_of_the_account_whose_trail_converged_covers_lakes_of_every_region() {
        let acct = "123456789012";
        assert!(ready_in(&baseline("eu-west-1", acct, "True", false), acct));
        assert!(!ready_in(&baseline("eu-west-1", acct, "False", false), acct), "not Ready");
        assert!(!ready_in(&baseline("eu-west-1", "999999999999", "True", false), acct), "another account");
        let mut stale = (*baseline("eu-west-1", acct, "True", true)).clone();
        stale.metadata.generation = Some(3);
        assert!(!ready_in(&stale, acct), "Ready for an older generation");
        assert!(!baseline_covers(&[], acct), "none");
        assert!(!baseline_covers(&[baseline("eu-west-1", acct, "True", false)], acct), "no converged account trail");
        assert!(!baseline_covers(&[baseline("eu-west-1", acct, "False", true)], acct), "not Ready");
        // The account trail is multi-region: the baseline's region does not matter.
        assert!(baseline_covers(&[baseline("us-east-1", acct, "True", true)], acct));
        assert!(!baseline_covers(&[baseline("us-east-1", "999999999999", "True", true)], acct));
    }

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
