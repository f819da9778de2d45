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

/// The severity of an Inspector or GuardDuty finding, lowest first (so `>=` compares).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FindingSeverity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl FindingSeverity {
    /// Every severity, lowest first.
    pub const ALL: [FindingSeverity; 5] = [
        FindingSeverity::Informational,
        FindingSeverity::Low,
        FindingSeverity::Medium,
        FindingSeverity::High,
        FindingSeverity::Critical,
    ];

    /// The name Inspector uses.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingSeverity::Informational => "INFORMATIONAL",
            FindingSeverity::Low => "LOW",
            FindingSeverity::Medium => "MEDIUM",
            FindingSeverity::High => "HIGH",
            FindingSeverity::Critical => "CRITICAL",
        }
    }

    /// Inspector's name back to a severity (`UNTRIAGED` and unknown names: `None`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The lowest GuardDuty numeric severity of this level (GuardDuty: LOW 1.0-3.9,
    /// MEDIUM 4.0-6.9, HIGH 7.0-8.9, CRITICAL 9.0-10.0; it has no informational level).
    pub fn guardduty_floor(self) -> f64 {
        match self {
            FindingSeverity::Informational | FindingSeverity::Low => 1.0,
            FindingSeverity::Medium => 4.0,
            FindingSeverity::High => 7.0,
            FindingSeverity::Critical => 9.0,
        }
    }
}

/// The schema of an optional [`FindingSeverity`]: Kubernetes refuses `null` among the
/// values of an `enum`, which is how an `Option` of an enum would be written.
pub(crate) fn optional_severity_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"],
        "nullable": true
    })
}
