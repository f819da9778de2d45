//! The EtlPipeline kind: EtlFunctions run in order by a Step Functions state machine,
//! started by objects arriving in a zone, by a schedule, or by an HTTPS ingest API.
use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{DataLakeRef, DeletionPolicy, HasConditions, default_true};
use crate::etlfunction::LOG_RETENTION_DAYS;
use crate::validation::{DLQ_ARN_PATTERN, DLQ_ARN_RE, Findings, KEY_PREFIX_PATTERN, KEY_PREFIX_RE};

/// A state machine running EtlFunctions in order, with retries and a failure path.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lakeops.dev",
    version = "v1alpha1",
    kind = "EtlPipeline",
    namespaced,
    status = "EtlPipelineStatus",
    shortname = "etlp",
    category = "lakeops",
    derive = "PartialEq",
    doc = "EtlFunctions run in order by an encrypted, logged, traced Step Functions state machine.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Lake", type_ = "string", json_path = ".spec.dataLakeRef.name"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct EtlPipelineSpec {
    /// The DataLake whose key encrypts the state machine and its logs.
    pub data_lake_ref: DataLakeRef,
    /// What starts an execution (besides the ingest API, when there is one).
    #[serde(default, skip_serializing_if = "Trigger::is_empty")]
    pub trigger: Trigger,
    /// The steps, run in this order; each invokes an EtlFunction of the same lake.
    #[schemars(length(min = 1, max = 20))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub steps: Vec<Step>,
    /// Where a failed execution goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// An HTTPS ingest API whose POST starts an execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<Ingest>,
    /// Execution logging of the state machine.
    #[serde(default)]
    pub logging: Logging,
    /// X-Ray tracing of executions.
    #[serde(default = "default_true")]
    pub tracing: bool,
    /// What happens to the log groups when this object is deleted (the state machine,
    /// its roles, rules and API are always removed; no data lives in them).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// What starts an execution: at most one of the two.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// Objects created in a zone under a prefix (through EventBridge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_created: Option<ObjectCreated>,
    /// An EventBridge schedule expression: `rate(1 hour)` or `cron(0 3 * * ? *)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub schedule: Option<String>,
}

impl Trigger {
    /// True when no trigger is set.
    pub fn is_empty(&self) -> bool {
        self.object_created.is_none() && self.schedule.is_none()
    }
}

/// Objects created in a zone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectCreated {
    /// A zone of the referenced DataLake.
    #[schemars(length(min = 1, max = 20))]
    pub zone: String,
    /// Key prefix, e.g. `incoming/orders/` (`""` for the whole zone).
    #[schemars(regex(pattern = KEY_PREFIX_PATTERN), length(max = 512))]
    pub prefix: String,
    /// Optional key suffix, e.g. `.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub suffix: Option<String>,
}

/// One step of the pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// State name: letters, digits, `-` and `_`.
    #[schemars(regex(pattern = STEP_NAME_PATTERN), length(min = 1, max = 80))]
    pub name: String,
    /// The EtlFunction this step invokes (same namespace, same lake).
    pub etl_function_ref: FunctionRef,
    /// Retries on Lambda's transient errors.
    #[serde(default)]
    pub retry: Retry,
    /// Seconds before the step fails with `States.Timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub timeout_seconds: Option<i32>,
}

/// A reference to an EtlFunction in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionRef {
    /// Name of an EtlFunction in the same namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Retry policy of a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Retries after the first attempt (0 turns retrying off).
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 0, max = 10))]
    pub max_attempts: i32,
    /// Seconds before the first retry.
    #[serde(default = "default_interval")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval_seconds: i32,
    /// Multiplier of the interval for each further retry.
    #[serde(default = "default_backoff")]
    #[schemars(range(min = 1.0, max = 10.0))]
    pub backoff_rate: f64,
}

impl Default for Retry {
    fn default() -> Self {
        Self { max_attempts: default_attempts(), interval_seconds: default_interval(), backoff_rate: default_backoff() }
    }
}

fn default_attempts() -> i32 {
    3
}
fn default_interval() -> i32 {
    2
}
fn default_backoff() -> f64 {
    2.0
}

/// The failure path.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnFailure {
    /// SQS queue or SNS topic that receives the failed execution's input and error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DLQ_ARN_PATTERN))]
    pub dead_letter_queue_arn: Option<String>,
    /// Also publish to the SecurityBaseline's alert topic (`lakeops-alerts` of the lake's
    /// region): the pipeline, the execution and the error's name, never data. Without a
    /// baseline with alerts in the region the publish fails and the execution still fails.
    #[serde(default)]
    pub alert: bool,
}

/// The ingest API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ingest {
    pub api: IngestApi,
}

/// A REGIONAL REST API whose POST starts an execution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestApi {
    /// Stage throttling (and the usage plan's).
    pub throttle: Throttle,
    /// `AWS_IAM` (default): callers sign their requests. `NONE` allows anonymous ingest.
    #[serde(default)]
    pub authorization: Authorization,
    /// Largest request body forwarded to an execution, in characters of the body (bytes for
    /// ASCII). Step Functions takes at most 256 KiB of input per execution, so this is at
    /// most 262144. API Gateway itself still receives bodies up to its own 10 MB limit: a
    /// larger body is answered 400 and never reaches an execution.
    #[serde(default = "default_max_body")]
    #[schemars(range(min = 1, max = 262144))]
    pub max_body_bytes: i64,
    /// A custom domain with TLS 1.2; the default execute-api endpoint is then disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
}

fn default_max_body() -> i64 {
    MAX_BODY_BYTES
}

/// Step Functions' limit on the input of one execution (256 KiB).
pub const MAX_BODY_BYTES: i64 = 262_144;

/// Requests per second (steady) and burst.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Throttle {
    /// Steady requests per second.
    #[schemars(range(min = 1, max = 10000))]
    pub rate_limit: i32,
    /// Requests allowed in a burst.
    #[schemars(range(min = 1, max = 5000))]
    pub burst_limit: i32,
}

/// How ingest callers authenticate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Authorization {
    #[default]
    #[serde(rename = "AWS_IAM")]
    AwsIam,
    #[serde(rename = "NONE")]
    None,
}

/// A custom domain of the ingest API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    /// The domain name, e.g. `ingest.example.com`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// An ACM certificate in the lake's region.
    #[schemars(regex(pattern = CERTIFICATE_ARN_PATTERN))]
    pub certificate_arn: String,
}

/// Execution logging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Logging {
    /// ALL, ERROR, FATAL or OFF.
    #[serde(default)]
    pub level: LogLevel,
    /// Retention of the log groups, in days (a CloudWatch value).
    #[serde(default = "default_retention")]
    #[schemars(extend("enum" = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]))]
    pub retention_days: i32,
}

impl Default for Logging {
    fn default() -> Self {
        Self { level: LogLevel::default(), retention_days: default_retention() }
    }
}

fn default_retention() -> i32 {
    365
}

/// Step Functions log levels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Off,
    Fatal,
    #[default]
    Error,
    All,
}

impl LogLevel {
    /// As Step Functions names it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "OFF",
            LogLevel::Fatal => "FATAL",
            LogLevel::Error => "ERROR",
            LogLevel::All => "ALL",
        }
    }
}

/// What lakeops created for the pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EtlPipelineStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// ARN of the state machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_arn: Option<String>,
    /// ARN of the state machine's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The EventBridge rule that starts executions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The bucket whose EventBridge notifications the trigger turned on (kept for clean-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_bucket: Option<String>,
    /// The bucket on which lakeops turned EventBridge delivery on (once: the S3 emulator
    /// never reports the setting back, and EventBridge delivery is never turned off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_bridge_bucket: Option<String>,
    /// The ingest API's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_api_id: Option<String>,
    /// The ingest API's usage plan id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_plan_id: Option<String>,
    /// The ingest API's custom domain (kept for clean-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_domain: Option<String>,
    /// The URL callers POST to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_url: Option<String>,
    /// Creation tokens of non-idempotent creates, recorded before the create.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub creation_tokens: BTreeMap<String, String>,
    /// The last `lakeops.dev/reconcile-requested-at` annotation value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl HasConditions for EtlPipelineStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn observed_generation(&self) -> Option<i64> {
        self.observed_generation
    }
}

/// A Step Functions state name as lakeops accepts it.
pub const STEP_NAME_PATTERN: &str = r"^[A-Za-z0-9_-]{1,80}$";
/// An ACM certificate ARN.
pub const CERTIFICATE_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$";
/// EventBridge schedule expressions.
const SCHEDULE_PATTERN: &str =
    r"^(rate\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\)|cron\([^()]+\))$";

static STEP_NAME_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(STEP_NAME_PATTERN).expect("valid"));
static CERTIFICATE_ARN_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(CERTIFICATE_ARN_PATTERN).expect("valid"));
/// A DNS name of at least two labels.
const DOMAIN_PATTERN: &str = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$";
static DOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(DOMAIN_PATTERN).expect("valid"));
static SCHEDULE_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(SCHEDULE_PATTERN).expect("valid"));

impl EtlPipeline {
    /// Every rule the schema cannot express.
    pub fn validate(&self) -> Findings {
        let mut f = Findings::default();
        let s = &self.spec;
        if s.data_lake_ref.name.is_empty() {
            f.error("spec.dataLakeRef.name", "must name a DataLake in this namespace");
        }
        if s.trigger.object_created.is_some() && s.trigger.schedule.is_some() {
            f.error("spec.trigger", "give one of objectCreated and schedule, not both");
        }
        if s.trigger.is_empty() && s.ingest.is_none() {
            f.error("spec.trigger", "nothing would start an execution: give objectCreated, schedule or spec.ingest");
        }
        if let Some(o) = &s.trigger.object_created
            && !KEY_PREFIX_RE.is_match(&o.prefix)
        {
            f.error(
                "spec.trigger.objectCreated.prefix",
                format!("{:?} must not start with '/' or contain whitespace, '*', '?' or '$'", o.prefix),
            );
        }
        if let Some(expr) = &s.trigger.schedule
            && !SCHEDULE_RE.is_match(expr)
        {
            f.error(
                "spec.trigger.schedule",
                format!("{expr:?} is not an EventBridge schedule expression such as rate(1 hour) or cron(0 3 * * ? *)"),
            );
        }
        if s.steps.is_empty() {
            f.error("spec.steps", "give at least one step");
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, step) in s.steps.iter().enumerate() {
            if !STEP_NAME_RE.is_match(&step.name) {
                f.error(format!("spec.steps[{i}].name"), "use 1 to 80 letters, digits, '-' and '_'");
            } else if !seen.insert(step.name.as_str()) {
                f.error(format!("spec.steps[{i}].name"), format!("step {:?} is listed twice", step.name));
            }
            if step.etl_function_ref.name.is_empty() {
                f.error(format!("spec.steps[{i}].etlFunctionRef.name"), "must name an EtlFunction");
            }
            let r = &step.retry;
            if !(0..=10).contains(&r.max_attempts) {
                f.error(format!("spec.steps[{i}].retry.maxAttempts"), "must be 0 to 10");
            }
            if !(1..=3600).contains(&r.interval_seconds) {
                f.error(format!("spec.steps[{i}].retry.intervalSeconds"), "must be 1 to 3600");
            }
            if !(1.0..=10.0).contains(&r.backoff_rate) {
                f.error(format!("spec.steps[{i}].retry.backoffRate"), "must be 1.0 to 10.0");
            }
            if let Some(t) = step.timeout_seconds
                && !(1..=86400).contains(&t)
            {
                f.error(format!("spec.steps[{i}].timeoutSeconds"), "must be 1 to 86400");
            }
        }
        if let Some(arn) = s.on_failure.as_ref().and_then(|o| o.dead_letter_queue_arn.as_ref())
            && !DLQ_ARN_RE.is_match(arn)
        {
            f.error("spec.onFailure.deadLetterQueueArn", format!("{arn:?} is not an SQS queue or SNS topic ARN"));
        }
        if s.on_failure.as_ref().is_none_or(|o| o.dead_letter_queue_arn.is_none() && !o.alert) {
            f.warning("spec.onFailure", "failed executions go nowhere: give a deadLetterQueueArn or alert: true");
        }
        if !LOG_RETENTION_DAYS.contains(&s.logging.retention_days) {
            f.error(
                "spec.logging.retentionDays",
                format!("{} is not a CloudWatch Logs retention value", s.logging.retention_days),
            );
        }
        if s.logging.level == LogLevel::Off {
            f.warning("spec.logging.level", "execution logging is off: failures leave no trace");
        }
        if !s.tracing {
            f.warning("spec.tracing", "X-Ray tracing is off");
        }
        if let Some(api) = s.ingest.as_ref().map(|i| &i.api) {
            let t = &api.throttle;
            if !(1..=10000).contains(&t.rate_limit) {
                f.error("spec.ingest.api.throttle.rateLimit", "must be 1 to 10000 requests a second");
            }
            if !(1..=5000).contains(&t.burst_limit) {
                f.error("spec.ingest.api.throttle.burstLimit", "must be 1 to 5000 requests");
            }
            if !(1..=MAX_BODY_BYTES).contains(&api.max_body_bytes) {
                f.error(
                    "spec.ingest.api.maxBodyBytes",
                    format!(
                        "must be 1 to {MAX_BODY_BYTES} (Step Functions takes at most 256 KiB of input per execution)"
                    ),
                );
            }
            if api.authorization == Authorization::None {
                f.warning("spec.ingest.api.authorization", "NONE lets anyone who finds the URL start executions");
            }
            if let Some(d) = &api.domain
                && !DOMAIN_RE.is_match(&d.name)
            {
                f.error(
                    "spec.ingest.api.domain.name",
                    format!("{:?} is not a lowercase DNS name such as ingest.example.com", d.name),
                );
            }
            match &api.domain {
                Some(d) if !CERTIFICATE_ARN_RE.is_match(&d.certificate_arn) => {
                    f.error("spec.ingest.api.domain.certificateArn", "is not an ACM certificate ARN");
                }
                None => f.warning(
                    "spec.ingest.api.domain",
                    "no custom domain: the default execute-api endpoint also accepts TLS 1.0 and 1.1",
                ),
                _ => {}
            }
        }
        f
    }

    /// Edits from `old` to this spec that weaken protection, each as `path: old -> new`
    /// (`lakeops plan --base`).
    pub fn weakening_from(&self, old: &EtlPipeline) -> Vec<String> {
        let (o, n) = (&old.spec, &self.spec);
        let mut out = Vec::new();
        if n.logging.level < o.logging.level {
            out.push(format!(
                "spec.logging.level: {} -> {} (less execution logging)",
                o.logging.level.as_str(),
                n.logging.level.as_str()
            ));
        }
        if n.logging.retention_days < o.logging.retention_days {
            out.push(format!(
                "spec.logging.retentionDays: {} -> {} (logs kept for less time)",
                o.logging.retention_days, n.logging.retention_days
            ));
        }
        if o.tracing && !n.tracing {
            out.push("spec.tracing: true -> false (X-Ray tracing off)".into());
        }
        if o.on_failure.as_ref().and_then(|f| f.dead_letter_queue_arn.as_ref()).is_some()
            && n.on_failure.as_ref().and_then(|f| f.dead_letter_queue_arn.as_ref()).is_none()
        {
            out.push("spec.onFailure.deadLetterQueueArn removed (failed executions are no longer kept)".into());
        }
        let (oa, na) = (o.ingest.as_ref().map(|i| &i.api), n.ingest.as_ref().map(|i| &i.api));
        if let (Some(oa), Some(na)) = (oa, na) {
            if na.throttle.rate_limit > oa.throttle.rate_limit {
                out.push(format!(
                    "spec.ingest.api.throttle.rateLimit: {} -> {} (throttle raised)",
                    oa.throttle.rate_limit, na.throttle.rate_limit
                ));
            }
            if na.throttle.burst_limit > oa.throttle.burst_limit {
                out.push(format!(
                    "spec.ingest.api.throttle.burstLimit: {} -> {} (throttle raised)",
                    oa.throttle.burst_limit, na.throttle.burst_limit
                ));
            }
            if oa.authorization == Authorization::AwsIam && na.authorization == Authorization::None {
                out.push("spec.ingest.api.authorization: AWS_IAM -> NONE (anonymous ingest)".into());
            }
            if na.max_body_bytes > oa.max_body_bytes {
                out.push(format!(
                    "spec.ingest.api.maxBodyBytes: {} -> {} (larger bodies accepted)",
                    oa.max_body_bytes, na.max_body_bytes
                ));
            }
            if oa.domain.is_some() && na.domain.is_none() {
                out.push(
                    "spec.ingest.api.domain removed (the default endpoint, which cannot enforce TLS 1.2, is enabled)"
                        .into(),
                );
            }
        }
        out
    }

    /// The EventBridge filter `(zone, prefix, suffix)` of an objectCreated trigger.
    pub fn object_filter(&self) -> Option<(&str, &str, &str)> {
        self.spec
            .trigger
            .object_created
            .as_ref()
            .map(|o| (o.zone.as_str(), o.prefix.as_str(), o.suffix.as_deref().unwrap_or("")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(spec: &str) -> EtlPipeline {
        let yaml = format!(
            "apiVersion: lakeops.dev/v1alpha1\nkind: EtlPipeline\nmetadata: {{name: p, namespace: a}}\nspec:\n{spec}"
        );
        serde_saphyr::from_str(&yaml).expect("fixture parses")
    }

    const STEPS: &str = "  dataLakeRef: {name: sales}\n  steps: [{name: validate, etlFunctionRef: {name: v}}, {name: tokenise, etlFunctionRef: {name: t}}]\n  onFailure: {alert: true}\n";

    #[test]
    fn defaults_are_the_secure_ones() {
        let p = pipeline(&format!("{STEPS}  trigger: {{schedule: rate(1 hour)}}\n"));
        assert!(p.spec.tracing);
        assert_eq!(p.spec.logging, Logging { level: LogLevel::Error, retention_days: 365 });
        assert_eq!(p.spec.steps[0].retry, Retry { max_attempts: 3, interval_seconds: 2, backoff_rate: 2.0 });
        assert!(p.validate().error_summary().is_none(), "{:?}", p.validate());
        let p = pipeline(&format!("{STEPS}  ingest: {{api: {{throttle: {{rateLimit: 5, burstLimit: 10}}}}}}\n"));
        let api = &p.spec.ingest.as_ref().expect("ingest").api;
        assert_eq!((api.authorization, api.max_body_bytes), (Authorization::AwsIam, 262_144));
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases = [
            ("  trigger: {schedule: every hour}\n", "spec.trigger.schedule"),
            ("  trigger: {schedule: rate(1 hour), objectCreated: {zone: raw, prefix: in/}}\n", "spec.trigger"),
            ("", "spec.trigger"),
            ("  trigger: {objectCreated: {zone: raw, prefix: 'in/*'}}\n", "spec.trigger.objectCreated.prefix"),
        ];
        for (extra, field) in cases {
            let p = pipeline(&format!("{STEPS}{extra}"));
            let findings = p.validate();
            assert!(findings.errors().any(|e| e.path == field), "{extra}: {findings:?}");
        }
        let ingest =
            |api: &str| format!("{STEPS}  ingest: {{api: {{throttle: {{rateLimit: 5, burstLimit: 10}}{api}}}}}\n");
        let api_cases = [
            (", maxBodyBytes: 1048576", "spec.ingest.api.maxBodyBytes"),
            (
                ", domain: {name: 'Not A Domain', certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc'}",
                "spec.ingest.api.domain.name",
            ),
            (
                ", domain: {name: i.example.com, certificateArn: 'arn:aws:iam::123456789012:role/x'}",
                "spec.ingest.api.domain.certificateArn",
            ),
        ];
        for (extra, field) in api_cases {
            let findings = pipeline(&ingest(extra)).validate();
            assert!(findings.errors().any(|e| e.path == field), "{extra}: {findings:?}");
        }
        let anonymous = pipeline(&ingest(", authorization: NONE")).validate();
        assert!(anonymous.error_summary().is_none(), "an ingest API alone is a valid trigger: {anonymous:?}");
        assert!(anonymous.warnings().any(|w| w.path == "spec.ingest.api.authorization"), "{anonymous:?}");
        let p = pipeline(
            "  dataLakeRef: {name: sales}\n  trigger: {schedule: rate(1 hour)}\n  steps: [{name: a, etlFunctionRef: {name: v}}, {name: a, etlFunctionRef: {name: t}}]\n",
        );
        assert!(p.validate().errors().any(|e| e.path == "spec.steps[1].name"));
    }

    #[test]
    fn raising_the_throttle_anonymous_ingest_dropping_the_domain_and_less_logging_weaken() {
        let api = |rate: i32, auth: &str, domain: &str| {
            format!(
                "{STEPS}  logging: {{level: ALL}}\n  ingest: {{api: {{throttle: {{rateLimit: {rate}, burstLimit: 10}}, authorization: {auth}{domain}}}}}\n"
            )
        };
        let domain =
            ", domain: {name: i.example.com, certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc'}";
        let old = pipeline(&api(5, "AWS_IAM", domain));
        let mut new = pipeline(&api(50, "NONE", ""));
        new.spec.logging.level = LogLevel::Error;
        new.spec.tracing = false;
        let w = new.weakening_from(&old);
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w[0].starts_with("spec.logging.level: ALL -> ERROR"));
        assert!(w.iter().any(|l| l.starts_with("spec.ingest.api.throttle.rateLimit: 5 -> 50")));
        assert!(w.iter().any(|l| l.contains("AWS_IAM -> NONE")));
        assert!(w.iter().any(|l| l.starts_with("spec.ingest.api.domain removed")));
        assert!(old.weakening_from(&new).is_empty(), "the way back strengthens");
    }
}
