//! Whether a BackupPolicy can be converged now: its spec, its lake, and the other policies.
use kube::ResourceExt;
use lakeops_crds::names::reason;
use lakeops_crds::references::{check_policy_against_lake, owning_policy};
use lakeops_crds::{BackupPolicy, DataLake};

use crate::conditions::Outcome;

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
    if !crate::reconcile::lake_is_ready(lake) {
        return Some(Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} is not Ready yet"),
        });
    }
    None
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
