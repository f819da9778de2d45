//! DataLake reconciler.
use std::sync::Arc;

use kube::runtime::controller::Action;
use lakeops_crds::names::reason;
use lakeops_crds::{DataLake, DataLakeStatus};

use crate::conditions::Outcome;
use crate::context::Context;
use crate::error::Result;
use crate::status;

/// Reconciles one DataLake.
pub async fn reconcile(lake: Arc<DataLake>, ctx: Arc<Context>) -> Result<Action> {
    let current = lake.status.clone().unwrap_or_default();
    let (next, outcome) = plan_status(&lake, &current);
    status::apply(&ctx, lake.as_ref(), next, &outcome).await?;
    Ok(Action::requeue(super::resync_interval(lake.as_ref(), ctx.config.resync_interval)))
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
    let outcome = Outcome::Progressing {
        reason: reason::PROGRESSING,
        message: "spec is valid; AWS resources are not converged by this controller build yet".into(),
    };
    (next, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakeops_crds::datalake::Zone;
    use lakeops_crds::names::reason;

    fn lake(yaml: &str) -> DataLake {
        serde_yaml::from_str(yaml).expect("fixture parses")
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
