//! The EtlFunction kind: a Lambda ETL step reading one zone and writing another.
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{DataLakeRef, DeletionPolicy, FindingSeverity, HasConditions};
use crate::validation::{
    AWS_ACCESS_KEY_RE, CODE_SIGNING_ARN_PATTERN, CODE_SIGNING_ARN_RE, DLQ_ARN_PATTERN, DLQ_ARN_RE, ENV_NAME_RE,
    Findings, KEY_PREFIX_PATTERN, KEY_PREFIX_RE, SNS_TOPIC_ARN_PATTERN, SNS_TOPIC_ARN_RE, TABLE_NAME_PATTERN,
    check_bucket_name, notification_filters_overlap,
};

/// A Lambda ETL step: code from S3, a least-privilege role generated from the declared
/// zones and prefixes, and an S3 trigger on the source zone.
// Several printer columns share `type_ = "string"`, which clippy takes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lakeops.dev",
    version = "v1alpha1",
    kind = "EtlFunction",
    namespaced,
    status = "EtlFunctionStatus",
    shortname = "etl",
    category = "lakeops",
    derive = "PartialEq",
    doc = "A least-privilege Lambda ETL step wired to a DataLake's S3 events.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Lake", type_ = "string", json_path = ".spec.dataLakeRef.name"),
    printcolumn(name = "Runtime", type_ = "string", json_path = ".spec.runtime"),
    printcolumn(name = "Findings", type_ = "string", json_path = ".status.findings.summary"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct EtlFunctionSpec {
    /// The DataLake whose zones this function reads and writes.
    pub data_lake_ref: DataLakeRef,
    /// Where input objects arrive; their creation triggers the function.
    pub source: Source,
    /// Where the function writes.
    pub destination: Destination,
    /// The deployment package in S3.
    pub code: Code,
    /// Lambda runtime; only runtimes AWS still supports are accepted.
    pub runtime: Runtime,
    /// Entry point, e.g. `app.handler`.
    #[schemars(length(min = 1, max = 128))]
    pub handler: String,
    /// Instruction set.
    #[serde(default)]
    pub architecture: Architecture,
    /// Memory in MB (128 to 10240).
    #[serde(default = "default_memory")]
    #[schemars(range(min = 128, max = 10240))]
    pub memory_mb: i32,
    /// Timeout in seconds (1 to 900).
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 900))]
    pub timeout_seconds: i32,
    /// Concurrency reserved for this function; unset leaves it on the account pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub reserved_concurrency: Option<i32>,
    /// Environment variables, encrypted with the lake key. Never put secrets here: pass
    /// the ARN of a Secrets Manager secret instead.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 50))]
    pub environment: BTreeMap<String, String>,
    /// Retention of the function's CloudWatch log group, in days (a CloudWatch value).
    #[serde(default = "default_log_retention")]
    #[schemars(extend("enum" = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]))]
    pub log_retention_days: i32,
    /// SQS queue or SNS topic that receives events the function failed to process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DLQ_ARN_PATTERN))]
    pub dead_letter_queue_arn: Option<String>,
    /// Run inside a VPC; give subnets in at least two Availability Zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<Vpc>,
    /// Code signing configuration that deployments must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CODE_SIGNING_ARN_PATTERN))]
    pub code_signing_config_arn: Option<String>,
    /// What happens to the log group when this object is deleted (the function, its
    /// role and its trigger are always removed).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The highest Inspector finding severity tolerated on the function: a finding at or
    /// above it turns Ready False with reason `VulnerableCode`. Unset: findings are shown only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::common::optional_severity_schema")]
    pub maximum_finding_severity: Option<FindingSeverity>,
    /// Services the function may use beyond its two prefixes; each entry becomes exactly
    /// the actions it needs on exactly that resource in the generated role.
    #[serde(default, skip_serializing_if = "Access::is_empty")]
    pub access: Access,
}

/// Declared service access of a function.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    /// Catalog tables of the function's own DataLake, by their name in the lake's spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 25))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub tables: Vec<TableAccess>,
    /// SNS topics the function may publish to, by ARN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub topics: Vec<TopicAccess>,
    /// Secrets Manager secrets the function may read, by full ARN (with AWS's suffix).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub secrets: Vec<SecretAccess>,
}

impl Access {
    /// True when nothing is declared.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty() && self.topics.is_empty() && self.secrets.is_empty()
    }
}

/// One secret the function reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretAccess {
    /// Secret ARN (no wildcards).
    #[schemars(regex(pattern = SECRET_ARN_PATTERN))]
    pub arn: String,
}

/// A Secrets Manager secret ARN, with the six-character suffix AWS appends; no wildcards.
pub const SECRET_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$";
static SECRET_ARN_RE: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(SECRET_ARN_PATTERN).expect("valid"));

/// One catalog table and how the function uses it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableAccess {
    /// A table in the referenced DataLake's `catalog.tables`.
    #[schemars(regex(pattern = TABLE_NAME_PATTERN), length(min = 1, max = 200))]
    pub name: String,
    /// `read`, `write` (items only, no reads) or `readWrite`.
    pub mode: AccessMode,
}

/// How a table is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AccessMode {
    Read,
    Write,
    ReadWrite,
}

impl AccessMode {
    /// Whether the mode reads items.
    pub fn reads(self) -> bool {
        matches!(self, AccessMode::Read | AccessMode::ReadWrite)
    }
    /// Whether the mode writes items.
    pub fn writes(self) -> bool {
        matches!(self, AccessMode::Write | AccessMode::ReadWrite)
    }
}

/// One SNS topic the function publishes to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicAccess {
    /// Topic ARN (no wildcards).
    #[schemars(regex(pattern = SNS_TOPIC_ARN_PATTERN))]
    pub arn: String,
}

/// The source zone and the objects that trigger the function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// A zone of the referenced DataLake.
    #[schemars(length(min = 1, max = 20))]
    pub zone: String,
    /// Key prefix that triggers the function and that it may read, e.g. `incoming/orders/`.
    #[schemars(regex(pattern = KEY_PREFIX_PATTERN), length(max = 512))]
    pub prefix: String,
    /// Optional key suffix filter, e.g. `.csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub suffix: Option<String>,
    /// Whether S3 invokes the function for new objects. `false` for a step of an
    /// EtlPipeline, which invokes it itself (the function still reads only this prefix).
    #[serde(default = "crate::common::default_true")]
    pub trigger: bool,
}

/// The destination zone and the prefix the function may write under.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// A zone of the referenced DataLake.
    #[schemars(length(min = 1, max = 20))]
    pub zone: String,
    /// Key prefix the function may write under.
    #[schemars(regex(pattern = KEY_PREFIX_PATTERN), length(max = 512))]
    pub prefix: String,
}

/// A deployment package in S3.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Code {
    /// Bucket holding the package (in the lake's region).
    #[schemars(length(min = 3, max = 63))]
    pub s3_bucket: String,
    /// Object key of the package.
    #[schemars(length(min = 1, max = 1024))]
    pub s3_key: String,
    /// Pin an object version; without it, a new version of the object is deployed when seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub s3_object_version: Option<String>,
}

/// Lambda runtimes AWS supports for new functions (reviewed against the runtime
/// deprecation schedule at each release; deprecated ones are refused at admission).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Runtime {
    #[serde(rename = "python3.11")]
    Python311,
    #[serde(rename = "python3.12")]
    Python312,
    #[serde(rename = "python3.13")]
    Python313,
    #[serde(rename = "python3.14")]
    Python314,
    #[serde(rename = "nodejs22.x")]
    Nodejs22,
    #[serde(rename = "nodejs24.x")]
    Nodejs24,
    #[serde(rename = "java17")]
    Java17,
    #[serde(rename = "java21")]
    Java21,
    #[serde(rename = "java25")]
    Java25,
    #[serde(rename = "dotnet10")]
    Dotnet10,
    #[serde(rename = "ruby3.3")]
    Ruby33,
    #[serde(rename = "ruby3.4")]
    Ruby34,
    #[serde(rename = "provided.al2023")]
    ProvidedAl2023,
}

impl Runtime {
    /// The identifier Lambda uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Python311 => "python3.11",
            Runtime::Python312 => "python3.12",
            Runtime::Python313 => "python3.13",
            Runtime::Python314 => "python3.14",
            Runtime::Nodejs22 => "nodejs22.x",
            Runtime::Nodejs24 => "nodejs24.x",
            Runtime::Java17 => "java17",
            Runtime::Java21 => "java21",
            Runtime::Java25 => "java25",
            Runtime::Dotnet10 => "dotnet10",
            Runtime::Ruby33 => "ruby3.3",
            Runtime::Ruby34 => "ruby3.4",
            Runtime::ProvidedAl2023 => "provided.al2023",
        }
    }
}

/// Instruction set of the function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Architecture {
    #[serde(rename = "x86_64")]
    #[default]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

/// VPC attachment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Vpc {
    /// Subnets, in at least two Availability Zones.
    #[schemars(length(min = 2, max = 16))]
    pub subnet_ids: Vec<String>,
    /// Security groups (1 to 5).
    #[schemars(length(min = 1, max = 5))]
    pub security_group_ids: Vec<String>,
}

fn default_memory() -> i32 {
    512
}

fn default_timeout() -> i32 {
    60
}

/// A year: audit practice for logs of functions that touch sensitive data.
fn default_log_retention() -> i32 {
    365
}

/// CloudWatch Logs retention values.
pub const LOG_RETENTION_DAYS: [i32; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/// What lakeops created for the function.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EtlFunctionStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// ARN of the Lambda function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_arn: Option<String>,
    /// ARN of the generated execution role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Name of the log group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    /// The source zone's bucket that triggers the function (kept for clean-up, which
    /// must find it even after the DataLake is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_bucket: Option<String>,
    /// The code signing config lakeops attached, so that removing it from the spec is seen
    /// (and detached) without reading the function's signing config on every reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_signing_config_arn: Option<String>,
    /// The code object version or ETag last deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_code_version: Option<String>,
    /// The last `lakeops.dev/reconcile-requested-at` annotation value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Inspector's active findings on the function, read at the resync cadence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<FindingsStatus>,
}

/// Inspector's active findings on one function.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindingsStatus {
    /// One line for `kubectl get etl`: counts by severity, worst first (`none` when clean).
    pub summary: String,
    /// Severity (CRITICAL, HIGH, ...) -> number of active findings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, u32>,
    /// The worst findings (at most five): `SEVERITY vulnerability-id package@version`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worst: Vec<String>,
}

impl HasConditions for EtlFunctionStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
    fn observed_generation(&self) -> Option<i64> {
        self.observed_generation
    }
}

/// Words in an environment variable name that suggest a secret.
const SECRET_WORDS: [&str; 8] =
    ["PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "CREDENTIAL"];

impl EtlFunction {
    /// Every rule the schema cannot express.
    pub fn validate(&self) -> Findings {
        let mut f = Findings::default();
        let s = &self.spec;
        if s.data_lake_ref.name.is_empty() {
            f.error("spec.dataLakeRef.name", "must name a DataLake in this namespace");
        }
        for (path, prefix) in
            [("spec.source.prefix", &s.source.prefix), ("spec.destination.prefix", &s.destination.prefix)]
        {
            if !KEY_PREFIX_RE.is_match(prefix) {
                f.error(
                    path,
                    format!(
                        "{prefix:?} must not start with '/' or contain whitespace, '*', '?' or '$' (IAM would read them as wildcards in the generated role policy)"
                    ),
                );
            }
        }
        if s.source.trigger
            && s.source.zone == s.destination.zone
            && notification_filters_overlap(
                &s.source.prefix,
                s.source.suffix.as_deref().unwrap_or(""),
                &s.destination.prefix,
                "",
            )
        {
            f.error(
                "spec.destination.prefix",
                format!(
                    "writes under {:?} in zone {:?}, which the source filter {:?} matches: every output would trigger the function again; use a prefix outside the source filter",
                    s.destination.prefix, s.destination.zone, s.source.prefix
                ),
            );
        }
        check_bucket_name(&mut f, "spec.code.s3Bucket", &s.code.s3_bucket);
        if s.code.s3_key.is_empty() {
            f.error("spec.code.s3Key", "must name the deployment package object");
        }
        if s.handler.trim().is_empty() {
            f.error("spec.handler", "must not be empty");
        }
        if !(128..=10240).contains(&s.memory_mb) {
            f.error("spec.memoryMb", format!("{} is out of range: Lambda allows 128 to 10240 MB", s.memory_mb));
        }
        if !(1..=900).contains(&s.timeout_seconds) {
            f.error(
                "spec.timeoutSeconds",
                format!("{} is out of range: Lambda allows 1 to 900 seconds", s.timeout_seconds),
            );
        }
        if let Some(rc) = s.reserved_concurrency
            && rc < 0
        {
            f.error("spec.reservedConcurrency", "must not be negative");
        }
        if !LOG_RETENTION_DAYS.contains(&s.log_retention_days) {
            f.error(
                "spec.logRetentionDays",
                format!("{} is not a CloudWatch Logs retention value ({LOG_RETENTION_DAYS:?})", s.log_retention_days),
            );
        }
        let mut env_size = 0;
        for (key, value) in &s.environment {
            let path = format!("spec.environment.{key}");
            env_size += key.len() + value.len();
            if !ENV_NAME_RE.is_match(key) {
                f.error(&path, "names must start with a letter and hold only letters, digits and '_'");
            }
            if key.starts_with("AWS_") || key.starts_with("LAMBDA_") || key.starts_with("_") {
                f.error(&path, "names starting with AWS_ or LAMBDA_ are reserved by Lambda");
            }
            let upper = key.to_ascii_uppercase();
            let secret_name = SECRET_WORDS.iter().any(|w| upper.contains(w));
            let is_reference = value.starts_with("arn:") || upper.ends_with("_ARN");
            if secret_name && !is_reference {
                f.error(
                    &path,
                    "looks like a literal secret: manifests live in Git and Lambda shows environment values to anyone who can read the function; store it in Secrets Manager and pass the secret's ARN (for example under a name ending in _ARN)",
                );
            } else if AWS_ACCESS_KEY_RE.is_match(value) {
                f.error(
                    &path,
                    "holds what looks like an AWS access key id; the function's role already grants what it needs",
                );
            }
        }
        // Lambda measures the variables as it serialises them (JSON with quotes and commas).
        let env_size = serde_json::to_string(&s.environment).map_or(env_size, |j| j.len());
        if env_size > 4096 {
            f.error("spec.environment", format!("total size {env_size} bytes exceeds Lambda's 4 KB limit"));
        }
        if let Some(arn) = &s.dead_letter_queue_arn
            && !DLQ_ARN_RE.is_match(arn)
        {
            f.error("spec.deadLetterQueueArn", format!("{arn:?} is not an SQS queue or SNS topic ARN"));
        }
        if let Some(arn) = &s.code_signing_config_arn
            && !CODE_SIGNING_ARN_RE.is_match(arn)
        {
            f.error("spec.codeSigningConfigArn", format!("{arn:?} is not a Lambda code signing config ARN"));
        }
        if let Some(vpc) = &s.vpc {
            if vpc.subnet_ids.len() < 2 {
                f.error("spec.vpc.subnetIds", "give subnets in at least two Availability Zones (Lambda.5)");
            }
            if vpc.security_group_ids.is_empty() || vpc.security_group_ids.len() > 5 {
                f.error("spec.vpc.securityGroupIds", "give 1 to 5 security groups");
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in s.access.tables.iter().enumerate() {
            if !seen.insert(t.name.as_str()) {
                f.error(
                    format!("spec.access.tables[{i}].name"),
                    format!("table {:?} is listed twice; use mode readWrite for both", t.name),
                );
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in s.access.topics.iter().enumerate() {
            let path = format!("spec.access.topics[{i}].arn");
            if !SNS_TOPIC_ARN_RE.is_match(&t.arn) {
                f.error(&path, format!("{:?} is not an SNS topic ARN (wildcards are refused)", t.arn));
            } else if !seen.insert(t.arn.as_str()) {
                f.error(&path, format!("topic {:?} is listed twice", t.arn));
            }
        }
        for (i, secret) in s.access.secrets.iter().enumerate() {
            if !SECRET_ARN_RE.is_match(&secret.arn) {
                f.error(
                    format!("spec.access.secrets[{i}].arn"),
                    format!("{:?} is not a Secrets Manager secret ARN (wildcards are refused)", secret.arn),
                );
            }
        }
        if s.dead_letter_queue_arn.is_none() {
            f.warning(
                "spec.deadLetterQueueArn",
                "no dead-letter queue: failed events are dropped after Lambda's retries",
            );
        }
        f
    }

    /// The S3 notification filter `(prefix, suffix)` of this function on its source bucket.
    pub fn notification_filter(&self) -> (&str, &str) {
        (&self.spec.source.prefix, self.spec.source.suffix.as_deref().unwrap_or(""))
    }
}
