//! The SecurityBaseline kind: the account-level detective controls of one region
//! (GuardDuty, Inspector, AWS Config), turned on and kept on.
//!
//! Cluster-scoped: these services are per account and region, not per team. One
//! SecurityBaseline per account and region; a second one is refused as a conflict.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{FindingSeverity, HasConditions, default_true};
use crate::validation::{Findings, REGION_PATTERN, check_region};

/// GuardDuty, Inspector and AWS Config for one account and region, never weakened by
/// lakeops: deleting the object leaves every service running.
// Several printer columns share `type_ = "string"`, which clippy takes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "lakeops.dev",
    version = "v1alpha1",
    kind = "SecurityBaseline",
    status = "SecurityBaselineStatus",
    shortname = "sbl",
    category = "lakeops",
    derive = "PartialEq",
    doc = "The detective controls of one AWS account and region (GuardDuty, Inspector, AWS Config), kept on.",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Region", type_ = "string", json_path = ".spec.region"),
    printcolumn(name = "Detector", type_ = "string", json_path = ".status.guardDuty.detectorId"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct SecurityBaselineSpec {
    /// The AWS region whose services this baseline turns on (one baseline per account and region).
    #[schemars(regex(pattern = REGION_PATTERN))]
    pub region: String,
    /// Amazon GuardDuty threat detection.
    #[serde(default)]
    pub guard_duty: GuardDutySpec,
    /// Amazon Inspector vulnerability scanning of Lambda functions.
    #[serde(default)]
    pub inspector: InspectorSpec,
    /// AWS Config recording of resource configurations.
    #[serde(default)]
    pub config: ConfigSpec,
    /// The alert topic: an SNS topic encrypted with the baseline's key, email subscriptions,
    /// and the controller's own deployment and deletion messages. Unset: no topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertsSpec>,
    /// The account audit trail: one multi-region trail recording management events
    /// (CloudTrail.1), with log-file validation, encrypted with the baseline's trail key,
    /// delivered to an encrypted bucket and to CloudWatch Logs, and the CIS CloudWatch.1-14
    /// metric filters and alarms on its log group. On by default.
    #[serde(default)]
    pub audit_trail: AuditTrailSpec,
    /// Must be true for the spec to ask for less than what is running (a protection
    /// turned off). Even then lakeops never disables a detector, Inspector scanning or
    /// the Config recorder: it only stops turning them on.
    #[serde(default)]
    pub allow_protection_downgrade: bool,
}

/// GuardDuty settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardDutySpec {
    /// A detector exists and is enabled in the region (guardduty-enabled-centralized).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Lambda Protection: the LAMBDA_NETWORK_LOGS feature (guardduty-lambda-protection-enabled).
    #[serde(default = "default_true")]
    pub lambda_protection: bool,
    /// How often updated findings are published to EventBridge and Security Hub.
    #[serde(default)]
    pub finding_publishing_frequency: FindingPublishingFrequency,
}

impl Default for GuardDutySpec {
    fn default() -> Self {
        Self { enabled: true, lambda_protection: true, finding_publishing_frequency: Default::default() }
    }
}

/// GuardDuty's finding publishing frequencies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FindingPublishingFrequency {
    FifteenMinutes,
    OneHour,
    #[default]
    SixHours,
}

impl FindingPublishingFrequency {
    /// The identifier GuardDuty uses.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingPublishingFrequency::FifteenMinutes => "FIFTEEN_MINUTES",
            FindingPublishingFrequency::OneHour => "ONE_HOUR",
            FindingPublishingFrequency::SixHours => "SIX_HOURS",
        }
    }
}

/// Inspector settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InspectorSpec {
    /// Standard scanning of Lambda functions' packages (inspector-lambda-standard-scan-enabled).
    #[serde(default = "default_true")]
    pub lambda: bool,
    /// Code scanning of Lambda functions (inspector-lambda-code-scan-enabled); needs `lambda`.
    #[serde(default = "default_true")]
    pub lambda_code: bool,
    /// Accepted risks: each becomes an Inspector suppression filter until it expires, when
    /// lakeops removes it. `lakeops plan --base` marks an added or extended one as weakening.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressions: Vec<Suppression>,
}

impl Default for InspectorSpec {
    fn default() -> Self {
        Self { lambda: true, lambda_code: true, suppressions: Vec::new() }
    }
}

/// One accepted vulnerability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    /// The vulnerability (a CVE id or Inspector's id), e.g. `CVE-2024-3651`.
    #[schemars(length(min = 1, max = 128))]
    pub vulnerability_id: String,
    /// EtlFunctions it applies to, as `namespace/name`; unset: every function of the account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<String>,
    /// Why the risk is accepted (kept in the filter's reason).
    #[schemars(length(min = 1, max = 512))]
    pub reason: String,
    /// The last day it applies (`YYYY-MM-DD`, UTC); lakeops removes the filter after it.
    pub expires: String,
}

/// The alert topic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertsSpec {
    /// Email addresses subscribed to the topic (each must confirm; status shows PendingConfirmation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    /// Inspector and GuardDuty findings at or above this severity are forwarded.
    #[serde(default = "default_alert_severity")]
    pub minimum_finding_severity: FindingSeverity,
    /// lakeops publishes a message when it deploys new function code.
    #[serde(default = "default_true")]
    pub deployments: bool,
    /// lakeops publishes a message when it deletes an AWS resource or a lakeops object goes away.
    #[serde(default = "default_true")]
    pub deletions: bool,
}

fn default_alert_severity() -> FindingSeverity {
    FindingSeverity::High
}

/// The account audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditTrailSpec {
    /// One multi-region trail records the account's management events. Its trail covers
    /// every region, so lake trails stop recording management events once it runs; one
    /// baseline per account is enough (turn it off in the others to avoid paying twice).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The CIS / Security Hub CloudWatch.1-14 metric filters on the trail's log group, one
    /// more for lake key deletion, each with an alarm notifying the alert topic (`spec.alerts`).
    #[serde(default = "default_true")]
    pub cis_alarms: bool,
    /// Retention of the trail's CloudWatch Logs group, in days (a CloudWatch value).
    #[serde(default = "default_trail_log_retention")]
    #[schemars(extend("enum" = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]))]
    pub log_retention_days: i32,
}

impl Default for AuditTrailSpec {
    fn default() -> Self {
        Self { enabled: true, cis_alarms: true, log_retention_days: default_trail_log_retention() }
    }
}

fn default_trail_log_retention() -> i32 {
    365
}

/// AWS Config settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigSpec {
    /// Record every resource type Config supports (Config.1).
    #[serde(default = "default_true")]
    pub record_all_supported: bool,
    /// Record global resources (IAM) too; turn off in all regions but one to avoid duplicates.
    #[serde(default = "default_true")]
    pub include_global_resources: bool,
}

impl Default for ConfigSpec {
    fn default() -> Self {
        Self { record_all_supported: true, include_global_resources: true }
    }
}

/// What lakeops observed and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityBaselineStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling and Stalled.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The last `lakeops.dev/reconcile-requested-at` annotation value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// The account the baseline acts in, recorded at first sight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The GuardDuty detector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard_duty: Option<ServiceStatus>,
    /// Inspector's state for the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspector: Option<InspectorStatus>,
    /// The Config recorder and its delivery channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigStatus>,
    /// Creation tokens of non-idempotent creates, recorded before the create (purpose ->
    /// token); the resource carries the token as a tag, so a create whose answer was lost
    /// is found instead of repeated.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub creation_tokens: std::collections::BTreeMap<String, String>,
    /// The alert topic and its subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertsStatus>,
    /// The Inspector suppression filters in force (vulnerability ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressions: Vec<String>,
    /// The bucket receiving the access logs of the baseline's buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bucket: Option<String>,
    /// The account audit trail, once converged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_trail: Option<AuditTrailStatus>,
}

/// The account audit trail as lakeops knows it (written when the trail step finished).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditTrailStatus {
    /// The trail's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_arn: Option<String>,
    /// True when the trail existed before this baseline and was adopted.
    #[serde(default)]
    pub adopted: bool,
    /// The bucket the trail writes its log files to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// The CloudWatch Logs group's ARN as CloudTrail names it (`...:log-group:NAME:*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group_arn: Option<String>,
    /// The role CloudTrail delivers to the group with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_role_arn: Option<String>,
    /// True when the trail records the account's management events in every region.
    #[serde(default)]
    pub management_events: bool,
    /// The CIS metric filters and alarms in place (0 with `cisAlarms: false`).
    #[serde(default)]
    pub alarms: u32,
}

/// The alert topic as lakeops knows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertsStatus {
    /// The topic's ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// Whether lakeops publishes deployments and deletions to it (copied from the spec for
    /// the other kinds' reconcilers).
    #[serde(default)]
    pub deployments: bool,
    /// Whether lakeops publishes deletions to it.
    #[serde(default)]
    pub deletions: bool,
    /// Each email subscription and its state (`Confirmed` or `PendingConfirmation`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<SubscriptionStatus>,
}

/// One subscription.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStatus {
    /// The email address.
    pub endpoint: String,
    /// `Confirmed` or `PendingConfirmation`.
    pub state: String,
}

/// A GuardDuty detector as lakeops knows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// The detector id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detector_id: Option<String>,
    /// True when the detector existed before this baseline (adopted, not created).
    #[serde(default)]
    pub adopted: bool,
}

/// Inspector's account status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InspectorStatus {
    /// LAMBDA scanning state as Inspector reports it (ENABLED, ENABLING, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda: Option<String>,
    /// LAMBDA_CODE scanning state as Inspector reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_code: Option<String>,
    /// True when a delegated administrator manages Inspector for this account (read-only here).
    #[serde(default)]
    pub managed_by_organization: bool,
}

/// The Config recorder and delivery channel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    /// The recorder's name (an existing recorder keeps its name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorder: Option<String>,
    /// True when the recorder existed before this baseline (adopted, not created).
    #[serde(default)]
    pub adopted: bool,
    /// The bucket the delivery channel writes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Whether the recorder is recording.
    #[serde(default)]
    pub recording: bool,
}

impl HasConditions for SecurityBaselineStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    fn observed_generation(&self) -> Option<i64> {
        self.observed_generation
    }
}

impl SecurityBaseline {
    /// True when this baseline's account trail records management events in every region,
    /// so lake trails need not: the spec declares the trail and the last round converged it
    /// (status). The caller checks that the baseline is Ready in its account; until then
    /// lake trails keep recording management events (nothing goes unaudited).
    pub fn records_management_events(&self) -> bool {
        self.declares_account_trail()
            && self
                .status
                .as_ref()
                .and_then(|s| s.audit_trail.as_ref())
                .is_some_and(|t| t.management_events && t.trail_arn.is_some())
    }

    /// True when the spec asks for the account trail (for `lakeops plan`, which takes a
    /// baseline among the planned manifests as converged once applied).
    pub fn declares_account_trail(&self) -> bool {
        self.spec.audit_trail.enabled
    }

    /// Every rule the schema cannot express, on this object alone.
    pub fn validate(&self) -> Findings {
        let mut f = Findings::default();
        let s = &self.spec;
        check_region(&mut f, "spec.region", &s.region);
        if s.inspector.lambda_code && !s.inspector.lambda {
            f.error(
                "spec.inspector.lambdaCode",
                "code scanning needs standard Lambda scanning (spec.inspector.lambda: true)",
            );
        }
        if s.guard_duty.lambda_protection && !s.guard_duty.enabled {
            f.error("spec.guardDuty.lambdaProtection", "needs an enabled detector (spec.guardDuty.enabled: true)");
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, sup) in s.inspector.suppressions.iter().enumerate() {
            let path = |field: &str| format!("spec.inspector.suppressions[{i}].{field}");
            if !seen.insert(sup.vulnerability_id.as_str()) {
                f.error(
                    path("vulnerabilityId"),
                    format!("{} is suppressed twice; merge the two entries", sup.vulnerability_id),
                );
            }
            if !sup.vulnerability_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
                f.error(path("vulnerabilityId"), "only letters, digits, '-', '_' and '.'");
            }
            if !is_date(&sup.expires) {
                f.error(path("expires"), format!("{:?} is not a date YYYY-MM-DD", sup.expires));
            }
            for fun in &sup.functions {
                if fun.split('/').count() != 2 || fun.split('/').any(str::is_empty) {
                    f.error(path("functions"), format!("{fun:?} must be namespace/name of an EtlFunction"));
                }
            }
        }
        let trail = &s.audit_trail;
        if !crate::etlfunction::LOG_RETENTION_DAYS.contains(&trail.log_retention_days) {
            f.error(
                "spec.auditTrail.logRetentionDays",
                format!(
                    "{} is not a CloudWatch Logs retention value ({:?})",
                    trail.log_retention_days,
                    crate::etlfunction::LOG_RETENTION_DAYS
                ),
            );
        }
        if trail.enabled && trail.cis_alarms && s.alerts.is_none() {
            f.warning(
                "spec.auditTrail.cisAlarms",
                "no alert topic (spec.alerts): the alarms change state but notify nobody",
            );
        }
        if !trail.enabled {
            f.warning(
                "spec.auditTrail.enabled",
                "this baseline keeps no account trail: management events are recorded only by lake trails or a trail lakeops does not manage (CloudTrail.1)",
            );
        } else if !trail.cis_alarms {
            f.warning(
                "spec.auditTrail.cisAlarms",
                "no CIS CloudWatch.1-14 metric filters and alarms (CloudWatch.1-14)",
            );
        }
        if let Some(a) = &s.alerts {
            for (i, e) in a.emails.iter().enumerate() {
                let (local, domain) = e.split_once('@').unwrap_or_default();
                if local.is_empty() || !domain.contains('.') || e.chars().any(char::is_whitespace) {
                    f.error(format!("spec.alerts.emails[{i}]"), format!("{e:?} is not an email address"));
                }
            }
        }
        for (path, what) in self.disabled_protections() {
            if s.allow_protection_downgrade {
                f.warning(path, what);
            } else {
                f.error(
                    path,
                    format!("{what}; set spec.allowProtectionDowngrade: true to accept it (lakeops still never turns a running service off)"),
                );
            }
        }
        f
    }

    /// What `self` weakens compared with `old` (`None`: a new baseline), for review:
    /// protections turned off, every added or extended suppression (a later expiry or a
    /// wider scope), and alerts sent to fewer places.
    pub fn weakening_from(&self, old: Option<&SecurityBaseline>) -> Vec<String> {
        let before = old.map(SecurityBaseline::disabled_protections).unwrap_or_default();
        let mut out: Vec<String> = self
            .disabled_protections()
            .into_iter()
            .filter(|p| old.is_some() && !before.contains(p))
            .map(|(path, what)| format!("{path}: {what}"))
            .collect();
        let old_sup = old.map(|o| o.spec.inspector.suppressions.as_slice()).unwrap_or_default();
        for (i, s) in self.spec.inspector.suppressions.iter().enumerate() {
            let path = format!("spec.inspector.suppressions[{i}]");
            let scope = |f: &[String]| if f.is_empty() { "every function".to_string() } else { f.join(", ") };
            match old_sup.iter().find(|o| o.vulnerability_id == s.vulnerability_id) {
                None => out.push(format!(
                    "{path}: {} is accepted for {} until {} (Inspector stops reporting it)",
                    s.vulnerability_id,
                    scope(&s.functions),
                    s.expires
                )),
                Some(o) => {
                    if s.expires > o.expires {
                        out.push(format!(
                            "{path}: {} accepted longer: {} -> {}",
                            s.vulnerability_id, o.expires, s.expires
                        ));
                    }
                    let wider = (s.functions.is_empty() && !o.functions.is_empty())
                        || (!o.functions.is_empty() && s.functions.iter().any(|f| !o.functions.contains(f)));
                    if wider {
                        out.push(format!(
                            "{path}: {} accepted for more functions: {} -> {}",
                            s.vulnerability_id,
                            scope(&o.functions),
                            scope(&s.functions)
                        ));
                    }
                }
            }
        }
        if let Some(o) = old.map(|o| &o.spec.audit_trail) {
            let n = &self.spec.audit_trail;
            if o.enabled && !n.enabled {
                out.push("spec.auditTrail.enabled: the account trail is no longer kept (it keeps running; lake trails record management events again): true -> false".into());
            }
            if o.enabled && n.enabled && o.cis_alarms && !n.cis_alarms {
                out.push(
                    "spec.auditTrail.cisAlarms: the CIS metric filters and alarms are no longer kept: true -> false"
                        .into(),
                );
            }
            if n.log_retention_days < o.log_retention_days {
                out.push(format!(
                    "spec.auditTrail.logRetentionDays: trail logs kept shorter: {} -> {} days",
                    o.log_retention_days, n.log_retention_days
                ));
            }
        }
        if let Some(old_alerts) = old.and_then(|o| o.spec.alerts.as_ref()) {
            match &self.spec.alerts {
                None => out
                    .push("spec.alerts: removed (the topic stays; lakeops stops managing it and its messages)".into()),
                Some(a) => {
                    if a.minimum_finding_severity > old_alerts.minimum_finding_severity {
                        out.push(format!(
                            "spec.alerts.minimumFindingSeverity: fewer findings forwarded: {} -> {}",
                            old_alerts.minimum_finding_severity.as_str(),
                            a.minimum_finding_severity.as_str()
                        ));
                    }
                    for (path, was, now) in [
                        ("spec.alerts.deployments", old_alerts.deployments, a.deployments),
                        ("spec.alerts.deletions", old_alerts.deletions, a.deletions),
                    ] {
                        if was && !now {
                            out.push(format!("{path}: messages stop: true -> false"));
                        }
                    }
                }
            }
        }
        out
    }

    /// Protections the spec turns off, each as `(field path, what is lost)`.
    pub fn disabled_protections(&self) -> Vec<(&'static str, &'static str)> {
        let s = &self.spec;
        let mut out = Vec::new();
        if !s.guard_duty.enabled {
            out.push(("spec.guardDuty.enabled", "GuardDuty is not turned on (GuardDuty.1)"));
        } else if !s.guard_duty.lambda_protection {
            out.push(("spec.guardDuty.lambdaProtection", "GuardDuty Lambda Protection is off (GuardDuty.6)"));
        }
        if !s.inspector.lambda {
            out.push(("spec.inspector.lambda", "Inspector Lambda scanning is off (Inspector.3)"));
        } else if !s.inspector.lambda_code {
            out.push(("spec.inspector.lambdaCode", "Inspector Lambda code scanning is off (Inspector.4)"));
        }
        if !s.config.record_all_supported {
            out.push(("spec.config.recordAllSupported", "Config does not record every supported type (Config.1)"));
        }
        out
    }
}

/// True for `YYYY-MM-DD` with a plausible month and day.
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
        return false;
    }
    let month: u32 = s[5..7].parse().unwrap_or(0);
    let day: u32 = s[8..10].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_and_extended_suppressions_weaken() {
        let sup = |expires: &str, functions: &[&str]| Suppression {
            vulnerability_id: "CVE-2024-1".into(),
            functions: functions.iter().map(|f| f.to_string()).collect(),
            reason: "no fix yet".into(),
            expires: expires.into(),
        };
        let old = baseline(MINIMAL);
        let mut new = old.clone();
        new.spec.inspector.suppressions = vec![sup("2026-12-31", &["team/etl"])];
        assert_eq!(new.weakening_from(Some(&old)).len(), 1, "added");
        assert_eq!(new.weakening_from(None).len(), 1, "a new baseline's suppression too");
        let mut later = new.clone();
        later.spec.inspector.suppressions = vec![sup("2027-06-30", &[])];
        let w = later.weakening_from(Some(&new));
        assert_eq!(w.len(), 2, "longer and wider: {w:?}");
        let mut shorter = new.clone();
        shorter.spec.inspector.suppressions = vec![sup("2026-12-01", &["team/etl"])];
        assert!(shorter.weakening_from(Some(&new)).is_empty());
    }

    #[test]
    fn suppressions_and_emails_are_checked_by_field() {
        let mut b = baseline(MINIMAL);
        b.spec.inspector.suppressions = vec![
            Suppression {
                vulnerability_id: "CVE-1".into(),
                functions: vec!["team".into()],
                reason: "r".into(),
                expires: "2026-13-01".into(),
            },
            Suppression {
                vulnerability_id: "CVE-1".into(),
                functions: vec![],
                reason: "r".into(),
                expires: "2026-12-01".into(),
            },
        ];
        b.spec.alerts = Some(AlertsSpec {
            emails: vec!["nobody".into()],
            minimum_finding_severity: FindingSeverity::High,
            deployments: true,
            deletions: true,
        });
        let summary = b.validate().error_summary().expect("errors");
        for field in [
            "suppressions[0].expires",
            "suppressions[0].functions",
            "suppressions[1].vulnerabilityId",
            "spec.alerts.emails[0]",
        ] {
            assert!(summary.contains(field), "{field}: {summary}");
        }
    }

    fn baseline(yaml: &str) -> SecurityBaseline {
        serde_saphyr::from_str(yaml).expect("fixture parses")
    }

    const MINIMAL: &str = "
apiVersion: lakeops.dev/v1alpha1
kind: SecurityBaseline
metadata: {name: eu-west-1}
spec: {region: eu-west-1}
";

    #[test]
    fn defaults_turn_everything_on() {
        let b = baseline(MINIMAL);
        assert!(b.spec.guard_duty.enabled && b.spec.guard_duty.lambda_protection);
        assert!(b.spec.inspector.lambda && b.spec.inspector.lambda_code);
        assert!(b.spec.config.record_all_supported && b.spec.config.include_global_resources);
        assert_eq!(b.spec.guard_duty.finding_publishing_frequency.as_str(), "SIX_HOURS");
        assert!(b.validate().is_ok(), "{:?}", b.validate());
    }

    #[test]
    fn the_account_trail_is_on_by_default_and_recorded_only_once_converged() {
        let mut b = baseline(MINIMAL);
        assert!(b.spec.audit_trail.enabled && b.spec.audit_trail.cis_alarms);
        assert_eq!(b.spec.audit_trail.log_retention_days, 365);
        assert!(b.declares_account_trail());
        assert!(!b.records_management_events(), "nothing converged yet");
        b.status = Some(SecurityBaselineStatus {
            audit_trail: Some(AuditTrailStatus {
                trail_arn: Some("arn:aws:cloudtrail:eu-west-1:1:trail/lakeops-account-eu-west-1".into()),
                management_events: true,
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(b.records_management_events());
        b.spec.audit_trail.enabled = false;
        assert!(!b.records_management_events(), "a trail no longer declared is not relied on");
    }

    #[test]
    fn turning_the_trail_or_its_alarms_off_or_shortening_its_logs_weakens() {
        let old = baseline(MINIMAL);
        let mut new = old.clone();
        new.spec.audit_trail.log_retention_days = 90;
        new.spec.audit_trail.cis_alarms = false;
        let w = new.weakening_from(Some(&old));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w.iter().any(|l| l.starts_with("spec.auditTrail.cisAlarms")) && w.iter().any(|l| l.contains("365 -> 90"))
        );
        new.spec.audit_trail.enabled = false;
        assert!(new.weakening_from(Some(&old)).iter().any(|l| l.starts_with("spec.auditTrail.enabled")));
        assert!(old.weakening_from(Some(&new)).is_empty(), "turning it back on weakens nothing");
        new.spec.audit_trail.log_retention_days = 400;
        let f = new.validate();
        assert!(f.is_ok(), "{f:?}");
        new.spec.audit_trail.log_retention_days = 42;
        let summary = new.validate().error_summary().expect("not a CloudWatch value");
        assert!(summary.contains("spec.auditTrail.logRetentionDays"), "{summary}");
    }

    #[test]
    fn a_bad_region_is_named() {
        let mut b = baseline(MINIMAL);
        b.spec.region = "moon-1".into();
        let summary = b.validate().error_summary().expect("an error");
        assert!(summary.contains("spec.region"), "{summary}");
    }

    #[test]
    fn turning_a_protection_off_needs_the_downgrade_flag() {
        let mut b = baseline(MINIMAL);
        b.spec.guard_duty.lambda_protection = false;
        let summary = b.validate().error_summary().expect("refused without the flag");
        assert!(summary.contains("spec.guardDuty.lambdaProtection"), "{summary}");
        b.spec.allow_protection_downgrade = true;
        let f = b.validate();
        assert!(f.is_ok(), "allowed with the flag");
        let flagged: Vec<_> = f.warnings().filter(|w| w.path == "spec.guardDuty.lambdaProtection").collect();
        assert_eq!(flagged.len(), 1, "but still flagged");
    }

    #[test]
    fn code_scanning_without_standard_scanning_is_refused() {
        let mut b = baseline(MINIMAL);
        b.spec.inspector.lambda = false;
        b.spec.allow_protection_downgrade = true;
        let summary = b.validate().error_summary().expect("an error");
        assert!(summary.contains("spec.inspector.lambdaCode"), "{summary}");
    }
}
