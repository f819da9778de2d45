//! BackupPolicy reconciler: checks the policy against its lake and the protection last
//! applied (the guard against weakening), then converges, in dependency order, the replica
//! keys, the replica buckets, the replication role, each zone bucket's retention,
//! replication and lifecycle, the catalog tables' PITR and replicas, and their AWS Backup
//! vaults, plan and selection (`catalog.rs`); then writes status.
//!
//! Point-in-time recovery: the DataLake turns PITR on for every table itself. A BackupPolicy
//! requires it too (and restores it when someone turns it off); `pointInTimeRecovery: false`
//! is a weakening that needs `allowProtectionDowngrade` and then only stops this policy from
//! enforcing it. It never turns PITR off, so the two reconcilers never fight.
//!
//! Deletion keeps everything that holds data: with `allowProtectionDowngrade` the replication
//! configurations, the replication role and the policy's lifecycle rules are removed; the
//! replica buckets, replica keys, table replicas, Object Lock retention and PITR stay.
//!
//! `preflight.rs` decides whether the policy can be converged now; `cleanup.rs` handles deletion.
pub mod apply;
pub mod catalog;
mod cleanup;
pub mod desired;
pub mod diff;
pub mod observe;
pub mod plan;
mod preflight;
pub mod steps;

pub use preflight::preflight;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use lakeops_crds::backuppolicy::BackupPolicySpec;
use lakeops_crds::names::reason;
use lakeops_crds::{BackupPolicy, BackupPolicyStatus, DataLake};

use self::cleanup::cleanup;
use crate::conditions::Outcome;
use crate::context::Context;
use crate::engine::exec::StatusProgress;
use crate::engine::{Exec, Report, Stop};
use crate::error::Result;
use crate::reconcile::securitybaseline::publish;
use crate::status;

/// How often a policy whose table replicas are not ACTIVE yet is looked at again.
const REPLICA_POLL: Duration = Duration::from_secs(30);

/// Reconciles one BackupPolicy: the finalizer guards clean-up, then apply or clean up.
pub async fn reconcile(policy: Arc<BackupPolicy>, ctx: Arc<Context>) -> Result<Action> {
    super::with_finalizer(policy, ctx, apply_policy, |policy, ctx| {
        let region = cleanup::lake_of(&policy, &ctx).map(|l| l.spec.region.clone());
        let message = cleanup::deletion_message(&policy, region.as_deref());
        publish::after_cleanup(policy, ctx, message, cleanup)
    })
    .await
}

async fn apply_policy(policy: Arc<BackupPolicy>, ctx: Arc<Context>) -> Result<Action> {
    let resync = super::resync_interval(policy.as_ref(), ctx.config.resync_interval);
    let lake =
        super::current_lake(&ctx, &policy.namespace().unwrap_or_default(), &policy.spec.data_lake_ref.name).await?;
    // The policy builds on what its lake recorded: a change there is a change here.
    let lake_version = lake.as_ref().and_then(|l| l.resource_version()).unwrap_or_default();
    if let Some(left) = ctx.fingerprints.fresh_with(policy.as_ref(), &lake_version, resync) {
        return Ok(Action::requeue(left));
    }
    ctx.fingerprints.forget(policy.as_ref());
    // Status is this reconciler's memory (the applied baseline, requested replicas, recorded
    // names): read it from the API server, not from a cache that may miss the last write.
    let ns = policy.namespace().unwrap_or_default();
    let api: kube::Api<BackupPolicy> = kube::Api::namespaced(ctx.client.clone(), &ns);
    let policy = match api.get_opt(&policy.name_any()).await? {
        Some(fresh) => Arc::new(fresh),
        None => return Ok(Action::await_change()),
    };
    let current = policy.status.clone().unwrap_or_default();
    let mut next = current.clone();
    let all = ctx.stores.policies.state();
    if let Some(outcome) = preflight(&policy, lake.as_deref(), all.iter().map(AsRef::as_ref)) {
        // Not remembered: the lake becoming Ready (or the other policy going) must be seen.
        status::apply(&ctx, policy.as_ref(), next, &outcome).await?;
        return Ok(Action::requeue(resync));
    }
    let Some(lake) = lake else { return Ok(Action::requeue(resync)) };
    // A refused change leaves the last applied protection in force (and enforced).
    let refused = desired::refusal(&policy, current.applied.as_ref());
    let spec = match (&refused, &current.applied) {
        (Some(_), Some(applied)) => applied.clone(),
        _ => policy.spec.clone(),
    };
    let result = converge(&policy, &spec, &lake, &ctx, &mut next).await;
    let (outcome, requeue) = match result {
        Ok(report) => {
            if !report.drift.is_empty() && super::was_converged(policy.as_ref()) {
                event(&ctx, &policy, EventType::Normal, "DriftCorrected", &report.drift).await;
                ctx.metrics
                    .drift_corrections
                    .get_or_create(&crate::metrics::KindLabels { kind: "BackupPolicy" })
                    .inc_by(report.drift.len() as u64);
            }
            if !report.weakened.is_empty() {
                event(&ctx, &policy, EventType::Warning, "ProtectionDowngraded", &report.weakened).await;
            }
            if report.applied > 0 {
                tracing::info!(changes = report.applied, "converged");
            }
            match refused {
                Some(message) => (Outcome::Stalled { reason: reason::PROTECTION_DOWNGRADE_REFUSED, message }, resync),
                None => {
                    next.applied = Some(policy.spec.clone());
                    if report.pending.is_empty() {
                        (
                            Outcome::Ready {
                                message: "retention, replication and table backups match the spec".into(),
                            },
                            resync,
                        )
                    } else {
                        let message = report.pending.join("; ");
                        (Outcome::Progressing { reason: reason::REPLICAS_NOT_ACTIVE, message }, REPLICA_POLL)
                    }
                }
            }
        }
        Err(stop) => stop.outcome(resync, || ctx.backoff.next(policy.as_ref()))?,
    };
    status::apply(&ctx, policy.as_ref(), next, &outcome).await?;
    if crate::engine::remembers(&outcome) {
        ctx.fingerprints.remember_with(policy.as_ref(), &lake_version);
    }
    Ok(Action::requeue(requeue))
}

async fn converge(
    policy: &BackupPolicy,
    spec: &BackupPolicySpec,
    lake: &DataLake,
    ctx: &Context,
    next: &mut BackupPolicyStatus,
) -> std::result::Result<Report, Stop> {
    let facts = desired::lake_facts(lake).ok_or_else(|| {
        Stop::Waiting(format!("DataLake {:?} has not recorded its buckets and key yet", lake.name_any()))
    })?;
    let account = ctx.aws.account_id().await?;
    let input = steps::Inputs {
        policy,
        spec,
        lake,
        facts: &facts,
        account: &account,
        boundary: ctx.config.permissions_boundary.as_deref(),
    };
    let progress = StatusProgress { ctx, obj: policy };
    let exec = Exec::apply(policy, &progress).weakening_apart();
    steps::converge(&ctx.aws, &input, &exec, next).await?;
    Ok(exec.finish().0)
}

async fn event(ctx: &Context, policy: &BackupPolicy, type_: EventType, why: &str, what: &[String]) {
    let event =
        Event { type_, reason: why.into(), note: Some(what.join("; ")), action: "Reconcile".into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &policy.object_ref(&())).await {
        tracing::warn!(error = %e, "could not record event");
    }
}
