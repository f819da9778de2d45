//! BackupPolicy reconciler: checks the policy against its lake and the protection last
//! applied (the guard against weakening), then converges, in dependency order, the replica
//! keys, the replica buckets, the replication role, each zone bucket's retention,
//! replication and lifecycle, and the catalog tables' PITR and replicas; then writes status.
//!
//! Point-in-time recovery: the DataLake turns PITR on for every table itself. A BackupPolicy
//! requires it too (and restores it when someone turns it off); `pointInTimeRecovery: false`
//! is a weakening that needs `allowProtectionDowngrade` and then only stops this policy from
//! enforcing it. It never turns PITR off, so the two reconcilers never fight.
//!
//! Deletion keeps everything that holds data: with `allowProtectionDowngrade` the replication
//! configurations, the replication role and the policy's lifecycle rules are removed; the
//! replica buckets, replica keys, table replicas, Object Lock retention and PITR stay.
pub mod apply;
pub mod desired;
pub mod diff;
pub mod observe;
pub mod plan;
pub mod steps;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use lakeops_crds::backuppolicy::BackupPolicySpec;
use lakeops_crds::names::reason;
use lakeops_crds::references::{check_policy_against_lake, owning_policy};
use lakeops_crds::{BackupPolicy, BackupPolicyStatus, DataLake};

use crate::conditions::Outcome;
use crate::context::Context;
use crate::engine::exec::StatusProgress;
use crate::engine::{Exec, NoProgress, Report, Stop, role};
use crate::error::{Error, Result};
use crate::status;

/// How often a policy whose table replicas are not ACTIVE yet is looked at again.
const REPLICA_POLL: Duration = Duration::from_secs(30);

/// Reconciles one BackupPolicy: the finalizer guards clean-up, then apply or clean up.
pub async fn reconcile(policy: Arc<BackupPolicy>, ctx: Arc<Context>) -> Result<Action> {
    super::with_finalizer(policy, ctx, apply_policy, cleanup).await
}

fn lake_of(policy: &BackupPolicy, ctx: &Context) -> Option<Arc<DataLake>> {
    let ns = policy.namespace().unwrap_or_default();
    ctx.stores.lakes.get(&ObjectRef::new(&policy.spec.data_lake_ref.name).within(&ns))
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

/// Why the policy cannot be converged now, from the spec, the referenced lake and every
/// policy in the cache; `None` when it can. Pure.
pub fn preflight<'a>(
    policy: &BackupPolicy,
    lake: Option<&DataLake>,
    all: impl IntoIterator<Item = &'a BackupPolicy>,
) -> Option<Outcome> {
    let findings = policy.validate();
    if let Some(message) = findings.error_summary() {
        return Some(Outcome::Stalled { reason: reason::INVALID_SPEC, message });
    }
    let same_lake = all
        .into_iter()
        .filter(|p| p.namespace() == policy.namespace() && p.spec.data_lake_ref == policy.spec.data_lake_ref);
    if let Some(owner) = owning_policy(same_lake)
        && owner.name_any() != policy.name_any()
    {
        return Some(Outcome::Stalled {
            reason: reason::CONFLICT,
            message: format!(
                "spec.dataLakeRef.name: BackupPolicy {:?} already protects DataLake {:?}; a lake has one BackupPolicy",
                owner.name_any(),
                policy.spec.data_lake_ref.name
            ),
        });
    }
    let lake_name = &policy.spec.data_lake_ref.name;
    let Some(lake) = lake else {
        return Some(Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} does not exist in this namespace"),
        });
    };
    let against_lake = check_policy_against_lake(policy, lake);
    if let Some(message) = against_lake.error_summary() {
        let r = if policy.spec.retention.is_some() && !lake.spec.object_lock {
            reason::OBJECT_LOCK_DISABLED
        } else {
            reason::INVALID_SPEC
        };
        return Some(Outcome::Stalled { reason: r, message });
    }
    if !super::lake_is_ready(lake) {
        return Some(Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} is not Ready yet"),
        });
    }
    None
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

/// Deletion: refused (the finalizer holds) unless the manifest allows the downgrade; then
/// the replication configurations lakeops wrote, the replication role and the policy's
/// lifecycle rules go. Everything holding data stays.
async fn cleanup(policy: Arc<BackupPolicy>, ctx: Arc<Context>) -> Result<Action> {
    ctx.fingerprints.forget(policy.as_ref());
    if let Some(message) = desired::deletion_refusal(&policy) {
        let next = policy.status.clone().unwrap_or_default();
        let outcome = Outcome::Stalled { reason: reason::PROTECTION_DOWNGRADE_REFUSED, message: message.clone() };
        status::apply(&ctx, policy.as_ref(), next, &outcome).await?;
        return Err(Error::DeletionBlocked(message));
    }
    let Some(status) = policy.status.as_ref().filter(|s| s.applied.is_some()) else {
        return Ok(Action::await_change());
    };
    let role = status.replication_role_arn.clone();
    if let Some(lake) = lake_of(&policy, &ctx)
        && let Some(facts) = desired::lake_facts(&lake)
    {
        let src = ctx.aws.region(&facts.region);
        for z in &facts.zones {
            let observed = match observe::zone(src.s3.as_ref(), &z.bucket).await {
                Ok(o) => o,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            let changes = [
                diff::replication_change(&z.bucket, None, observed.replication.as_ref(), None, role.as_deref()),
                diff::lifecycle_change(&z.bucket, &[], observed.lifecycle.as_deref()),
            ];
            for change in changes.into_iter().flatten() {
                apply::change(&src, &facts.region, &change).await?;
            }
        }
    }
    if let Some(arn) = role {
        let name = arn.rsplit('/').next().unwrap_or_default();
        let exec: Exec<'_, BackupPolicyStatus> = Exec::apply(policy.as_ref(), &NoProgress);
        match role::delete(&exec, ctx.aws.iam().as_ref(), name, |t| exec.is_ours(t)).await {
            Ok(()) => {}
            Err(Stop::Aws(e)) => return Err(e.into()),
            Err(Stop::Kube(e)) => return Err(e),
            Err(Stop::Stalled(_, m) | Stop::Waiting(m)) => return Err(Error::DeletionBlocked(m)),
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lake(ready: bool, object_lock: bool) -> DataLake {
        let status = if ready {
            "status: {observedGeneration: 1, conditions: [{type: Ready, status: 'True', reason: Reconciled, message: ok, lastTransitionTime: '2024-01-01T00:00:00Z'}]}"
        } else {
            ""
        };
        serde_saphyr::from_str(&format!(
            "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {{name: sales, namespace: team-a, generation: 1}}\nspec: {{region: eu-west-1, objectLock: {object_lock}, zones: [{{name: raw}}]}}\n{status}\n"
        ))
        .expect("fixture")
    }

    fn policy(name: &str, created: &str, spec: &str) -> BackupPolicy {
        serde_saphyr::from_str(&format!(
            "apiVersion: lakeops.dev/v1alpha1\nkind: BackupPolicy\nmetadata: {{name: {name}, namespace: team-a, creationTimestamp: '{created}'}}\nspec: {spec}\n"
        ))
        .expect("fixture")
    }

    const SPEC: &str =
        "{dataLakeRef: {name: sales}, retention: {mode: GOVERNANCE, days: 7}, replication: {region: eu-central-1}}";

    #[test]
    fn a_valid_policy_for_a_ready_lake_goes_ahead() {
        let p = policy("backup", "2024-01-01T00:00:00Z", SPEC);
        assert_eq!(preflight(&p, Some(&lake(true, true)), [&p]), None);
    }

    #[test]
    fn a_second_policy_for_the_same_lake_is_stalled_as_a_conflict() {
        let first = policy("first", "2024-01-01T00:00:00Z", SPEC);
        let second = policy("second", "2024-01-02T00:00:00Z", SPEC);
        let outcome = preflight(&second, Some(&lake(true, true)), [&first, &second]).expect("stopped");
        assert!(
            matches!(outcome, Outcome::Stalled { reason: r, ref message } if r == reason::CONFLICT && message.contains("\"first\""))
        );
        assert_eq!(preflight(&first, Some(&lake(true, true)), [&first, &second]), None, "the oldest owns the lake");
    }

    #[test]
    fn retention_on_a_lake_without_object_lock_says_it_must_be_recreated() {
        let p = policy("backup", "2024-01-01T00:00:00Z", SPEC);
        let outcome = preflight(&p, Some(&lake(true, false)), [&p]).expect("stopped");
        let Outcome::Stalled { reason: r, message } = outcome else { panic!("stalled expected") };
        assert_eq!(r, reason::OBJECT_LOCK_DISABLED);
        assert!(message.contains("only when a bucket is created"), "{message}");
    }

    #[test]
    fn a_missing_or_unready_lake_is_waited_for() {
        let p = policy("backup", "2024-01-01T00:00:00Z", SPEC);
        assert!(matches!(preflight(&p, None, [&p]), Some(Outcome::Waiting { .. })));
        assert!(matches!(preflight(&p, Some(&lake(false, true)), [&p]), Some(Outcome::Waiting { .. })));
    }
}
