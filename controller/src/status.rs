//! Writing status with server-side apply, and only when something changed.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use lakeops_crds::HasConditions;
use lakeops_crds::names::{FIELD_MANAGER, annotation, condition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::conditions::{Outcome, conditions_differ, next_conditions};
use crate::context::Context;
use crate::error::{Error, Result};

/// A status type lakeops writes.
pub trait Status: HasConditions + Serialize + Clone + Default + PartialEq {
    /// Replaces the conditions.
    fn set_conditions(&mut self, conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>);
    /// Sets `observedGeneration`.
    fn set_observed_generation(&mut self, generation: Option<i64>);
    /// Sets the echo of the on-demand reconcile annotation.
    fn set_last_handled_reconcile_at(&mut self, value: Option<String>);
}

macro_rules! impl_status {
    ($t:ty) => {
        impl Status for $t {
            fn set_conditions(&mut self, c: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>) {
                self.conditions = c;
            }
            fn set_observed_generation(&mut self, g: Option<i64>) {
                self.observed_generation = g;
            }
            fn set_last_handled_reconcile_at(&mut self, v: Option<String>) {
                self.last_handled_reconcile_at = v;
            }
        }
    };
}
impl_status!(lakeops_crds::DataLakeStatus);
impl_status!(lakeops_crds::EtlFunctionStatus);
impl_status!(lakeops_crds::BackupPolicyStatus);
impl_status!(lakeops_crds::SecurityBaselineStatus);
impl_status!(lakeops_crds::EtlPipelineStatus);

/// A kind whose status lakeops writes.
pub trait HasStatus: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug {
    type Status: Status;
    /// The current status.
    fn status(&self) -> Option<&Self::Status>;
    /// The API that serves this object: its namespace's, or the cluster's for a
    /// cluster-scoped kind. `None` when a namespaced object names no namespace.
    fn api(&self, client: kube::Client) -> Option<Api<Self>>;
}

/// [`HasStatus::api`] of a namespaced kind.
fn namespaced_api<K>(obj: &K, client: kube::Client) -> Option<Api<K>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    Some(Api::namespaced(client, &obj.namespace()?))
}

impl HasStatus for lakeops_crds::DataLake {
    type Status = lakeops_crds::DataLakeStatus;
    fn status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    fn api(&self, client: kube::Client) -> Option<Api<Self>> {
        namespaced_api(self, client)
    }
}
impl HasStatus for lakeops_crds::EtlFunction {
    type Status = lakeops_crds::EtlFunctionStatus;
    fn status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    fn api(&self, client: kube::Client) -> Option<Api<Self>> {
        namespaced_api(self, client)
    }
}
impl HasStatus for lakeops_crds::BackupPolicy {
    type Status = lakeops_crds::BackupPolicyStatus;
    fn status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    fn api(&self, client: kube::Client) -> Option<Api<Self>> {
        namespaced_api(self, client)
    }
}
impl HasStatus for lakeops_crds::EtlPipeline {
    type Status = lakeops_crds::EtlPipelineStatus;
    fn status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    fn api(&self, client: kube::Client) -> Option<Api<Self>> {
        namespaced_api(self, client)
    }
}
impl HasStatus for lakeops_crds::SecurityBaseline {
    type Status = lakeops_crds::SecurityBaselineStatus;
    fn status(&self) -> Option<&Self::Status> {
        self.status.as_ref()
    }
    fn api(&self, client: kube::Client) -> Option<Api<Self>> {
        Some(Api::all(client))
    }
}

/// Completes `next` with conditions for `outcome`, the generation and the annotation echo,
/// and applies it unless it equals the current status. Returns whether a write happened.
/// A Warning event is recorded when the object newly stalls or fails.
pub async fn apply<K: HasStatus>(ctx: &Context, obj: &K, mut next: K::Status, outcome: &Outcome) -> Result<bool> {
    // Any outcome but a failure ends a run of failures: the next one backs off from the start.
    if !matches!(outcome, Outcome::Failed { .. }) {
        ctx.backoff.reset(obj);
    }
    let current = obj.status().cloned().unwrap_or_default();
    let generation = obj.meta().generation;
    next.set_conditions(next_conditions(
        current.conditions(),
        outcome,
        generation,
        &Time(k8s_openapi::jiff::Timestamp::now()),
    ));
    next.set_observed_generation(generation);
    next.set_last_handled_reconcile_at(obj.annotations().get(annotation::RECONCILE_REQUESTED_AT).cloned());

    let kind = K::kind(&());
    let changed = conditions_differ(current.conditions(), next.conditions()) || {
        let mut a = current.clone();
        let mut b = next.clone();
        a.set_conditions(Vec::new());
        b.set_conditions(Vec::new());
        a != b
    };
    let kind_label = static_kind(&kind);
    ctx.metrics.observe_status_write(kind_label, changed);
    if !changed {
        return Ok(false);
    }

    patch_status(ctx, obj, &next).await?;

    let was_ready_reason =
        lakeops_crds::common::find_condition(current.conditions(), condition::READY).map(|c| c.reason.clone());
    if matches!(outcome, Outcome::Stalled { .. } | Outcome::Failed { .. })
        && was_ready_reason.as_deref() != Some(outcome.reason())
    {
        let note = next.conditions().iter().find(|c| c.type_ == condition::READY).map(|c| truncate(&c.message, 1000));
        let event = Event {
            type_: EventType::Warning,
            reason: outcome.reason().to_string(),
            note,
            action: "Reconcile".into(),
            secondary: None,
        };
        // An event is a courtesy; failing to record one must not fail the reconcile.
        if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, "could not record event");
        }
    }
    Ok(true)
}

/// Writes `next` as it is (conditions untouched) at once: used to record an AWS identity
/// the moment it exists (a new key's ARN), so a crash before the end of the reconcile
/// cannot lead to a second one.
pub async fn record_progress<K: HasStatus>(ctx: &Context, obj: &K, next: &K::Status) -> Result<()> {
    patch_status(ctx, obj, next).await
}

/// Server-side applies `status` as the controller's field manager.
async fn patch_status<K: HasStatus>(ctx: &Context, obj: &K, status: &K::Status) -> Result<()> {
    let api = obj.api(ctx.client.clone()).ok_or_else(|| Error::MissingField(obj.name_any(), "metadata.namespace"))?;
    let patch = serde_json::json!({ "apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status });
    api.patch_status(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(())
}

/// Kind names as `'static` metric labels (the set is closed).
pub fn static_kind(kind: &str) -> &'static str {
    match kind {
        "DataLake" => "DataLake",
        "EtlFunction" => "EtlFunction",
        "BackupPolicy" => "BackupPolicy",
        "SecurityBaseline" => "SecurityBaseline",
        "EtlPipeline" => "EtlPipeline",
        _ => "Other",
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
