//! Rules beyond the OpenAPI schema, shared by the controller and `lakeops validate`.
//!
//! The test API server (1.20) ignores CEL, and older clusters in the field do too, so
//! every rule that matters is enforced here, in plain Rust, whatever the cluster.
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A protection of the security baseline is explicitly turned off: allowed, but shown.
    Warning,
    /// The object cannot be reconciled as written.
    Error,
}

/// One finding about one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.zones[1].name`.
    pub path: String,
    /// What is wrong and what to do about it.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl FieldError {
    /// An error on `path`.
    pub fn error(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into(), severity: Severity::Error }
    }

    /// A warning on `path`.
    pub fn warning(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into(), severity: Severity::Warning }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Findings of one object, errors and warnings together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings(pub Vec<FieldError>);

impl Findings {
    pub(crate) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::error(path, message));
    }

    pub(crate) fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::warning(path, message));
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter().filter(|e| e.severity == Severity::Error)
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter().filter(|e| e.severity == Severity::Warning)
    }

    /// True when there is no error (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }

    /// All errors joined into one message, for a condition.
    pub fn error_summary(&self) -> Option<String> {
        let msgs: Vec<String> = self.errors().map(ToString::to_string).collect();
        (!msgs.is_empty()).then(|| msgs.join("; "))
    }

    /// Merges another object's findings.
    pub fn extend(&mut self, other: Findings) {
        self.0.extend(other.0);
    }
}

/// An AWS region name such as `eu-west-1` or `us-gov-west-1`.
pub const REGION_PATTERN: &str = r"^[a-z]{2}(-gov|-iso|-isob)?-[a-z]+-[0-9]{1}$";
/// A bucket prefix: S3 bucket-name characters, no dots (TLS wildcard certificates break
/// on dotted names with virtual-host addressing), must start and end alphanumeric.
pub const BUCKET_PREFIX_PATTERN: &str = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$";
/// A zone name: a DNS label short enough to fit in a bucket name.
pub const ZONE_NAME_PATTERN: &str = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$";
/// A KMS key ARN.
pub const KMS_KEY_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$";
/// An SQS queue or SNS topic ARN, the targets Lambda accepts for a dead-letter queue.
pub const DLQ_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:(sqs|sns):[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$";
/// An SNS topic ARN; no `*` or `?`, which IAM would read as wildcards.
pub const SNS_TOPIC_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$";
/// A Lambda code signing config ARN.
pub const CODE_SIGNING_ARN_PATTERN: &str =
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:code-signing-config:csc-[a-z0-9]{17}$";
/// A DynamoDB table or attribute-safe name.
pub const TABLE_NAME_PATTERN: &str = r"^[a-zA-Z0-9_.-]+$";
/// An S3 key prefix: printable, no leading slash.
// `*`, `?` and `$` are refused too: the generated role policy puts the prefix into an ARN,
// where IAM reads them as wildcards and variables, widening access beyond the prefix.
pub const KEY_PREFIX_PATTERN: &str = r"^[^/\s*?$][^\s*?$]*$|^$";
/// A Lambda environment variable name.
pub const ENV_NAME_PATTERN: &str = r"^[a-zA-Z]([a-zA-Z0-9_])*$";

/// S3 bucket names are at most 63 characters.
pub const MAX_BUCKET_NAME: usize = 63;
/// The longest suffix lakeops appends to the prefix: `-<zone>-replica`.
pub const REPLICA_SUFFIX: &str = "-replica";
/// Longest zone name, so that `<prefix>-<zone>-replica` still fits.
pub const MAX_ZONE_NAME: usize = 20;
/// Longest bucket prefix.
pub const MAX_BUCKET_PREFIX: usize = MAX_BUCKET_NAME - 1 - MAX_ZONE_NAME - REPLICA_SUFFIX.len();

macro_rules! pattern {
    ($name:ident, $pat:expr) => {
        pub(crate) static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($pat).expect("pattern constants are valid regexes"));
    };
}
pattern!(REGION_RE, REGION_PATTERN);
pattern!(BUCKET_PREFIX_RE, BUCKET_PREFIX_PATTERN);
pattern!(ZONE_NAME_RE, ZONE_NAME_PATTERN);
pattern!(KMS_KEY_ARN_RE, KMS_KEY_ARN_PATTERN);
pattern!(DLQ_ARN_RE, DLQ_ARN_PATTERN);
pattern!(SNS_TOPIC_ARN_RE, SNS_TOPIC_ARN_PATTERN);
pattern!(CODE_SIGNING_ARN_RE, CODE_SIGNING_ARN_PATTERN);
pattern!(TABLE_NAME_RE, TABLE_NAME_PATTERN);
pattern!(KEY_PREFIX_RE, KEY_PREFIX_PATTERN);
pattern!(ENV_NAME_RE, ENV_NAME_PATTERN);
pattern!(AWS_ACCESS_KEY_RE, r"\b(AKIA|ASIA)[0-9A-Z]{16}\b");
pattern!(IPV4_RE, r"^\d+\.\d+\.\d+\.\d+$");

/// Checks an AWS region name.
pub(crate) fn check_region(f: &mut Findings, path: &str, region: &str) {
    if !REGION_RE.is_match(region) {
        f.error(path, format!("{region:?} is not an AWS region name (expected something like eu-west-1)"));
    }
}

/// Checks a full S3 bucket name against S3's general-purpose bucket naming rules.
pub fn check_bucket_name(f: &mut Findings, path: &str, name: &str) {
    if name.len() < 3 || name.len() > MAX_BUCKET_NAME {
        f.error(path, format!("bucket name {name:?} must be 3 to 63 characters long (is {})", name.len()));
    }
    if !BUCKET_PREFIX_RE.is_match(name) {
        f.error(
            path,
            format!("bucket name {name:?} may contain only lowercase letters, digits and hyphens, and must start and end with a letter or digit"),
        );
    }
    if name.contains("--") && (name.starts_with("xn--") || name.ends_with("--ol-s3") || name.ends_with("--x-s3")) {
        f.error(path, format!("bucket name {name:?} uses a prefix or suffix S3 reserves"));
    }
    if name.starts_with("xn--") || name.starts_with("sthree-") || name.starts_with("amzn-s3-demo-") {
        f.error(path, format!("bucket name {name:?} starts with a prefix S3 reserves"));
    }
    if name.ends_with("-s3alias") || name.ends_with("--ol-s3") || name.ends_with(".mrap") || name.ends_with("--x-s3") {
        f.error(path, format!("bucket name {name:?} ends with a suffix S3 reserves"));
    }
    if IPV4_RE.is_match(name) {
        f.error(path, format!("bucket name {name:?} must not look like an IP address"));
    }
}

/// S3 refuses two notification configurations for the same event whose filters overlap:
/// one prefix starts with the other and one suffix ends with the other (an empty filter
/// matches everything).
pub fn notification_filters_overlap(prefix_a: &str, suffix_a: &str, prefix_b: &str, suffix_b: &str) -> bool {
    let prefixes = prefix_a.starts_with(prefix_b) || prefix_b.starts_with(prefix_a);
    let suffixes = suffix_a.ends_with(suffix_b) || suffix_b.ends_with(suffix_a);
    prefixes && suffixes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_prefix_leaves_room_for_the_longest_generated_name() {
        assert_eq!(MAX_BUCKET_PREFIX, 34);
        let longest = format!("{}-{}{}", "a".repeat(MAX_BUCKET_PREFIX), "z".repeat(MAX_ZONE_NAME), REPLICA_SUFFIX);
        assert_eq!(longest.len(), MAX_BUCKET_NAME);
    }

    #[test]
    fn overlapping_filters_are_those_s3_refuses() {
        assert!(notification_filters_overlap("in/", "", "in/a/", ".csv"));
        assert!(notification_filters_overlap("", "", "x/", ""));
        assert!(!notification_filters_overlap("in/a/", "", "in/b/", ""));
        assert!(!notification_filters_overlap("in/", ".csv", "in/", ".json"));
        assert!(notification_filters_overlap("in/", ".csv", "in/", "data.csv"));
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for bad in ["ab", "Upper-case", "-lead", "trail-", "xn--abc", "192.168.1.1", "x-s3alias", "dot.ted"] {
            let mut f = Findings::default();
            check_bucket_name(&mut f, "spec.bucketPrefix", bad);
            assert!(!f.is_ok(), "{bad} should be refused");
        }
        let mut f = Findings::default();
        check_bucket_name(&mut f, "spec.bucketPrefix", "team-a-sales-raw");
        assert!(f.is_ok());
    }

    #[test]
    fn regions_are_recognised() {
        for good in ["eu-west-1", "us-gov-west-1", "ap-southeast-3"] {
            assert!(REGION_RE.is_match(good), "{good}");
        }
        for bad in ["EU-west-1", "eu-west", "mars-1", ""] {
            assert!(!REGION_RE.is_match(bad), "{bad}");
        }
    }
}
