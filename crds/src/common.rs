//! Types shared by the three kinds.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What happens in AWS when the object is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Leave every AWS resource in place, tagged `lakeops.dev/retained`.
    #[default]
    Retain,
    /// Delete what holds no data; anything that still holds data is kept and reported.
    Delete,
}

/// A reference to a DataLake in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataLakeRef {
    /// Name of a DataLake in the same namespace as this object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Status fields every kind carries.
pub trait HasConditions {
    /// The conditions, keyed by type.
    fn conditions(&self) -> &[Condition];
    /// The generation the conditions describe.
    fn observed_generation(&self) -> Option<i64>;
}

/// Finds a condition by type.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// True when the `Ready` condition is `True` for the current generation.
pub fn is_ready(conditions: &[Condition], observed: Option<i64>, generation: Option<i64>) -> bool {
    observed.is_some()
        && observed == generation
        && find_condition(conditions, crate::names::condition::READY).is_some_and(|c| c.status == "True")
}

/// Default for boolean fields that are on unless turned off.
pub(crate) fn default_true() -> bool {
    true
}
