//! What a SecurityBaseline wants, from its spec and what exists: pure functions.
//!
//! The rule everywhere: the baseline only turns things on. Settings that exist are kept
//! when they protect more than the spec asks (a feature someone turned on, global
//! resources recorded), so adopting a detector or recorder never weakens it.
use std::collections::BTreeMap;

use kube::ResourceExt;
use lakeops_crds::datalake::Lifecycle;
use lakeops_crds::{FindingSeverity, SecurityBaseline};

use crate::aws::cloudtrail::EventSelection;
use crate::aws::config::{Channel, Recorder};
use crate::aws::events::{Rule, RuleTarget};
use crate::aws::guardduty::{DetectorSettings, FEATURES, LAMBDA_NETWORK_LOGS};
use crate::aws::inspector::{AccountScanning, ENABLED, LAMBDA, LAMBDA_CODE, SuppressionFilter};
use crate::aws::s3::Logging;
use crate::engine::intent;
use crate::engine::key::ManagedKey;
use crate::engine::trail_logs::{self, Delivery, TrailLogs};
use crate::policy::{Effect, PolicyDocument, Principal, Statement};
use crate::reconcile::datalake::desired::{
    DesiredBucket, DesiredTrail, bucket_arn, cloudtrail_bucket_statements, cloudtrail_key_statement, kms_bucket_policy,
    kms_encryption, lifecycle_rules, log_bucket_of, partition, root_key_policy, tls_only, trail_settings,
};

/// Purposes under which creation tokens are recorded.
pub const DETECTOR_PURPOSE: &str = "guardduty-detector";
pub const KEY_PURPOSE: &str = "config-key";

/// The name of a recorder or channel lakeops creates (Config's own default name).
pub const DEFAULT_NAME: &str = "default";

/// Inspector's transitional state.
pub const ENABLING: &str = "ENABLING";

/// Ownership tags of what the baseline creates.
pub fn tags(b: &SecurityBaseline) -> BTreeMap<String, String> {
    crate::reconcile::owner_tags(b)
}

/// The creation token of `purpose` for this baseline (none before the API server gave it a UID).
pub fn token(b: &SecurityBaseline, purpose: &str) -> Option<String> {
    b.uid().map(|uid| intent::token(&uid, purpose))
}

/// The detector a create makes: enabled, every feature named (AWS turns an unnamed one
/// on, and bills it), Lambda Protection as the spec says, the others off.
pub fn new_detector(b: &SecurityBaseline) -> DetectorSettings {
    let g = &b.spec.guard_duty;
    DetectorSettings {
        enabled: true,
        finding_publishing_frequency: g.finding_publishing_frequency.as_str().to_string(),
        features: FEATURES.iter().map(|f| (f.to_string(), *f == LAMBDA_NETWORK_LOGS && g.lambda_protection)).collect(),
    }
}

/// What an existing detector must become, or `None` when it already is: enabled, the
/// spec's publishing frequency, Lambda Protection on when asked. Features already on stay
/// on; every feature is sent.
pub fn detector_update(b: &SecurityBaseline, observed: &DetectorSettings) -> Option<DetectorSettings> {
    let g = &b.spec.guard_duty;
    let mut want = DetectorSettings {
        enabled: true,
        finding_publishing_frequency: g.finding_publishing_frequency.as_str().to_string(),
        features: FEATURES
            .iter()
            .map(|f| (f.to_string(), observed.features.get(*f).copied().unwrap_or(false)))
            .collect(),
    };
    if g.lambda_protection {
        want.features.insert(LAMBDA_NETWORK_LOGS.to_string(), true);
    }
    let lambda_off = g.lambda_protection && observed.features.get(LAMBDA_NETWORK_LOGS) != Some(&true);
    let differs = !observed.enabled || observed.finding_publishing_frequency != want.finding_publishing_frequency;
    (lambda_off || differs).then_some(want)
}

/// True when Inspector runs or is starting this resource type.
fn on(state: Option<&String>) -> bool {
    state.is_some_and(|s| s == ENABLED || s == ENABLING)
}

/// The resource types to enable, in order (LAMBDA before LAMBDA_CODE, which needs it).
pub fn inspector_types(b: &SecurityBaseline, observed: &AccountScanning) -> Vec<&'static str> {
    let AccountScanning::States { lambda, lambda_code } = observed else {
        // A delegated administrator decides; nothing reported yet means nothing enabled.
        return if matches!(observed, AccountScanning::Unknown) { wanted(b) } else { Vec::new() };
    };
    let i = &b.spec.inspector;
    let mut out = Vec::new();
    if i.lambda && !on(lambda.as_ref()) {
        out.push(LAMBDA);
    }
    if i.lambda && i.lambda_code && !on(lambda_code.as_ref()) {
        out.push(LAMBDA_CODE);
    }
    out
}

fn wanted(b: &SecurityBaseline) -> Vec<&'static str> {
    let i = &b.spec.inspector;
    let mut out = Vec::new();
    if i.lambda {
        out.push(LAMBDA);
        if i.lambda_code {
            out.push(LAMBDA_CODE);
        }
    }
    out
}

/// Config's service-linked role, which PutConfigurationRecorder names for a new recorder.
pub fn config_role_arn(region: &str, account: &str) -> String {
    format!(
        "arn:{}:iam::{account}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig",
        partition(region)
    )
}

/// The recorder wanted: an existing one keeps its name and role (Control Tower and others
/// own one) and never records less; a new one is `default` with Config's service-linked role.
pub fn recorder(b: &SecurityBaseline, account: &str, observed: Option<&Recorder>) -> Recorder {
    let c = &b.spec.config;
    match observed {
        Some(o) => Recorder {
            name: o.name.clone(),
            role_arn: o.role_arn.clone(),
            all_supported: o.all_supported || c.record_all_supported,
            include_global_resources: o.include_global_resources || c.include_global_resources,
        },
        None => Recorder {
            name: DEFAULT_NAME.into(),
            role_arn: config_role_arn(&b.spec.region, account),
            all_supported: c.record_all_supported,
            include_global_resources: c.include_global_resources,
        },
    }
}

/// The bucket Config delivers to: one per account and region.
pub fn config_bucket_name(account: &str, region: &str) -> String {
    format!("lakeops-config-{account}-{region}")
}

/// The key alias of the baseline's key (one per region; `_` cannot start a namespace, so
/// no lake alias `alias/lakeops/<namespace>/<name>` can take it).
pub const KEY_ALIAS: &str = "alias/lakeops/_baseline/config";

/// The key that encrypts Config's deliveries: the account root administers it, Config
/// uses it for this account only.
pub fn config_key(b: &SecurityBaseline, account: &str) -> ManagedKey {
    let region = &b.spec.region;
    let mut policy = root_key_policy(region, account);
    policy.statements.push(
        Statement::new(
            "ConfigEncryptsItsDeliveries",
            Effect::Allow,
            Principal::service("config.amazonaws.com"),
            &["kms:GenerateDataKey", "kms:Decrypt"],
            &["*".into()],
        )
        .when("StringEquals", "aws:SourceAccount", &[account]),
    );
    baseline_key(b, KEY_ALIAS, KEY_PURPOSE, "Config key", "AWS Config's deliveries", policy)
}

/// One of the baseline's keys: rotated yearly, tagged as the baseline's, created under the
/// creation token of `purpose`.
fn baseline_key(
    b: &SecurityBaseline,
    alias: &str,
    purpose: &str,
    what: &str,
    encrypts: &str,
    policy: PolicyDocument,
) -> ManagedKey {
    ManagedKey {
        alias: alias.into(),
        region: b.spec.region.clone(),
        description: format!("lakeops SecurityBaseline {}: encrypts {encrypts}", b.name_any()),
        rotation_days: 365,
        policy,
        tags: tags(b),
        what: what.into(),
        token: token(b, purpose),
    }
}

/// The delivery bucket: the lake bucket baseline (SSE-KMS with Bucket Keys, TLS-only,
/// uploads only with the key, versioning, public access blocked, ACLs off, lifecycle,
/// access-logged into the baseline's log bucket),
/// plus what Config needs to check and write it, for this account only.
pub fn config_bucket(b: &SecurityBaseline, account: &str, key_arn: &str) -> DesiredBucket {
    let region = &b.spec.region;
    let name = config_bucket_name(account, region);
    let arn = bucket_arn(region, &name);
    let mut policy: PolicyDocument = kms_bucket_policy(region, &name, key_arn);
    let config = || Principal::service("config.amazonaws.com");
    policy.statements.push(
        Statement::new(
            "ConfigChecksTheBucket",
            Effect::Allow,
            config(),
            &["s3:GetBucketAcl", "s3:ListBucket"],
            std::slice::from_ref(&arn),
        )
        .when("StringEquals", "aws:SourceAccount", &[account]),
    );
    policy.statements.push(
        Statement::new(
            "ConfigDelivers",
            Effect::Allow,
            config(),
            &["s3:PutObject"],
            &[format!("{arn}/AWSLogs/{account}/Config/*")],
        )
        .when("StringEquals", "aws:SourceAccount", &[account]),
    );
    DesiredBucket {
        name,
        zone: None,
        object_lock: false,
        encryption: kms_encryption(key_arn),
        policy,
        logging: Some(Logging { target_bucket: log_bucket_name(account, region), target_prefix: "config/".into() }),
        lifecycle: lifecycle_rules(&Lifecycle::default()),
        tags: tags(b),
    }
}

/// The delivery channel lakeops creates when the region has none.
pub fn channel(account: &str, region: &str, key_arn: &str) -> Channel {
    Channel {
        name: DEFAULT_NAME.into(),
        bucket: config_bucket_name(account, region),
        kms_key_arn: Some(key_arn.into()),
    }
}

// ----- alerts -----

/// Purpose of the alert key's creation token.
pub const ALERTS_KEY_PURPOSE: &str = "alerts-key";
/// The alert key's alias (one per region, beside the Config key's).
pub const ALERTS_KEY_ALIAS: &str = "alias/lakeops/_baseline/alerts";
/// The alert topic's name (one per account and region).
pub const TOPIC_NAME: &str = "lakeops-alerts";

/// Condition keys and operators of the alert policies.
const SOURCE_ACCOUNT: &str = "aws:SourceAccount";
const SOURCE_ARN: &str = "aws:SourceArn";
const SECURE_TRANSPORT: &str = "aws:SecureTransport";
/// The services that publish alerts: CloudWatch alarms and EventBridge rules.
pub const CLOUDWATCH: &str = "cloudwatch.amazonaws.com";
pub const EVENTS: &str = "events.amazonaws.com";

/// The topic's ARN, which its name decides (so it is found without a list).
pub fn topic_arn(region: &str, account: &str) -> String {
    format!("arn:{}:sns:{region}:{account}:{TOPIC_NAME}", partition(region))
}

/// The publishers allowed, each with the ARN pattern of what may publish: this account's
/// alarms and rules in this region only.
fn publishers(region: &str, account: &str) -> [(&'static str, &'static str, String); 2] {
    let p = partition(region);
    [
        ("CloudWatchAlarms", CLOUDWATCH, format!("arn:{p}:cloudwatch:{region}:{account}:alarm:*")),
        ("EventBridgeRules", EVENTS, format!("arn:{p}:events:{region}:{account}:rule/*")),
    ]
}

/// The key that encrypts the topic: the account root administers it; CloudWatch alarms and
/// EventBridge rules of this account may use it to publish (without this an encrypted topic
/// accepts their configuration and silently delivers nothing).
pub fn alerts_key(b: &SecurityBaseline, account: &str) -> ManagedKey {
    let region = &b.spec.region;
    let mut policy = root_key_policy(region, account);
    for (sid, service, source) in publishers(region, account) {
        policy.statements.push(
            Statement::new(
                &format!("{sid}PublishEncrypted"),
                Effect::Allow,
                Principal::service(service),
                &["kms:GenerateDataKey*", "kms:Decrypt"],
                &["*".into()],
            )
            .when("StringEquals", SOURCE_ACCOUNT, &[account])
            .when("ArnLike", SOURCE_ARN, &[&source]),
        );
    }
    baseline_key(b, ALERTS_KEY_ALIAS, ALERTS_KEY_PURPOSE, "alert key", "the alert topic", policy)
}

/// The topic policy: no access without TLS; this account's alarms and rules may publish.
pub fn topic_policy(region: &str, account: &str) -> PolicyDocument {
    let arn = topic_arn(region, account);
    let mut statements = vec![
        Statement::new(
            "DenyInsecureTransport",
            Effect::Deny,
            Principal::anyone(),
            &["sns:Publish", "sns:Subscribe"],
            std::slice::from_ref(&arn),
        )
        .when("Bool", SECURE_TRANSPORT, &["false"]),
    ];
    for (sid, service, source) in publishers(region, account) {
        statements.push(
            Statement::new(
                &format!("{sid}Publish"),
                Effect::Allow,
                Principal::service(service),
                &["sns:Publish"],
                std::slice::from_ref(&arn),
            )
            .when("StringEquals", SOURCE_ACCOUNT, &[account])
            .when("ArnLike", SOURCE_ARN, &[&source]),
        );
    }
    PolicyDocument::new(statements)
}

/// The topic attributes a create sends.
pub fn topic_attributes(region: &str, account: &str, key_arn: &str) -> BTreeMap<String, String> {
    [
        (crate::aws::sns::KMS_MASTER_KEY_ID.to_string(), key_arn.to_string()),
        (crate::aws::sns::POLICY.to_string(), topic_policy(region, account).to_json()),
    ]
    .into()
}

// ----- finding rules -----

/// The EventBridge rules forwarding findings to the alert topic, and their target's id.
pub const INSPECTOR_RULE: &str = "lakeops-inspector-findings";
pub const GUARDDUTY_RULE: &str = "lakeops-guardduty-findings";
pub const ALERT_TARGET_ID: &str = "lakeops-alerts";

/// The rules forwarding Inspector and GuardDuty findings at or above `minimum` (Inspector
/// names severities; GuardDuty numbers them, so its rule compares numbers).
pub fn finding_rules(b: &SecurityBaseline, minimum: FindingSeverity) -> [Rule; 2] {
    let names: Vec<&str> = FindingSeverity::ALL.iter().filter(|s| **s >= minimum).map(|s| s.as_str()).collect();
    let inspector = serde_json::json!({
        "source": ["aws.inspector2"],
        "detail-type": ["Inspector2 Finding"],
        "detail": { "severity": names, "status": ["ACTIVE"] }
    });
    let guardduty = serde_json::json!({
        "source": ["aws.guardduty"],
        "detail-type": ["GuardDuty Finding"],
        "detail": { "severity": [{ "numeric": [">=", minimum.guardduty_floor()] }] }
    });
    let rule = |name: &str, pattern: serde_json::Value, what: &str| Rule {
        name: name.into(),
        event_pattern: Some(pattern.to_string()),
        schedule_expression: None,
        description: format!(
            "lakeops SecurityBaseline {}: {what} findings at or above {} to the alert topic",
            b.name_any(),
            minimum.as_str()
        ),
        enabled: true,
    };
    [rule(INSPECTOR_RULE, inspector, "Inspector"), rule(GUARDDUTY_RULE, guardduty, "GuardDuty")]
}

/// True when an observed rule says what `want` says (patterns compared as JSON).
pub fn same_rule(observed: &Rule, want: &Rule) -> bool {
    let json = |p: &Option<String>| p.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
    json(&observed.event_pattern) == json(&want.event_pattern)
        && observed.description == want.description
        && observed.enabled == want.enabled
        && observed.schedule_expression.is_none()
}

/// The rules' one target: the alert topic (no role: the topic policy lets EventBridge publish).
pub fn alert_target(topic_arn: &str) -> RuleTarget {
    RuleTarget { id: ALERT_TARGET_ID.into(), arn: topic_arn.into(), role_arn: None }
}

// ----- suppressions -----

/// The name prefix of the suppression filters lakeops writes.
pub const SUPPRESSION_PREFIX: &str = "lakeops-";

/// Today's date (UTC) as `YYYY-MM-DD`, for expiry.
pub fn today() -> String {
    humantime::format_rfc3339(std::time::SystemTime::now()).to_string().chars().take(10).collect()
}

/// The suppression filters in force on `today`: one per vulnerability, scoped to the
/// functions named (their Lambda names); an expired one is not wanted, so it is removed.
pub fn suppression_filters(b: &SecurityBaseline, today: &str) -> Vec<SuppressionFilter> {
    b.spec
        .inspector
        .suppressions
        .iter()
        .filter(|s| s.expires.as_str() >= today)
        .map(|s| {
            let mut functions: Vec<String> = s
                .functions
                .iter()
                .filter_map(|f| f.split_once('/'))
                .map(|(ns, name)| crate::reconcile::etlfunction::desired::function_name(ns, name))
                .collect();
            functions.sort();
            SuppressionFilter {
                name: format!("{SUPPRESSION_PREFIX}{}", s.vulnerability_id),
                vulnerability_id: s.vulnerability_id.clone(),
                functions,
                reason: s.reason.clone(),
                description: format!("lakeops SecurityBaseline {}: accepted until {}", b.name_any(), s.expires),
            }
        })
        .collect()
}

// ----- the baseline's log bucket -----

/// The bucket receiving the server access logs of the baseline's buckets (one per account
/// and region).
pub fn log_bucket_name(account: &str, region: &str) -> String {
    format!("lakeops-logs-{account}-{region}")
}

/// The log bucket: SSE-S3 (S3 delivers access logs only there), TLS-only, versioned,
/// private, receiving access logs from the Config bucket and the trail bucket only.
pub fn log_bucket(b: &SecurityBaseline, account: &str) -> DesiredBucket {
    let region = &b.spec.region;
    let sources = [
        bucket_arn(region, &config_bucket_name(account, region)),
        bucket_arn(region, &trail_bucket_name(account, region)),
    ];
    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    log_bucket_of(
        region,
        &log_bucket_name(account, region),
        account,
        &sources,
        false,
        lifecycle_rules(&Lifecycle::default()),
        tags(b),
    )
}

// ----- the account audit trail -----

/// Purpose of the trail key's creation token.
pub const TRAIL_KEY_PURPOSE: &str = "trail-key";
/// The trail key's alias (one per region, beside the Config and alert keys').
pub const TRAIL_KEY_ALIAS: &str = "alias/lakeops/_baseline/trail";

/// The account trail's name. `_` cannot appear in a Kubernetes name, so no lake trail
/// (`lakeops-<namespace>-<name>`) can take it.
pub fn account_trail_name(region: &str) -> String {
    format!("lakeops_account-{region}")
}

/// The account trail's ARN (known before it exists, for policy conditions).
pub fn account_trail_arn(region: &str, account: &str) -> String {
    format!("arn:{}:cloudtrail:{region}:{account}:trail/{}", partition(region), account_trail_name(region))
}

/// The bucket the account trail writes its log files to.
pub fn trail_bucket_name(account: &str, region: &str) -> String {
    format!("lakeops-trail-{account}-{region}")
}

/// The account trail's CloudWatch Logs group.
pub fn trail_log_group(region: &str) -> String {
    format!("/aws/cloudtrail/{}", account_trail_name(region))
}

/// The role CloudTrail delivers to that group with.
pub fn trail_logs_role(region: &str) -> String {
    format!("{}-logs", account_trail_name(region))
}

/// The key that encrypts the trail's log files and its log group: the account root
/// administers it; CloudTrail uses it for this trail only, CloudWatch Logs for this group only.
pub fn trail_key(b: &SecurityBaseline, account: &str) -> ManagedKey {
    let region = &b.spec.region;
    let mut policy = root_key_policy(region, account);
    policy
        .statements
        .push(cloudtrail_key_statement("CloudTrailEncryptsTheAccountTrail", &account_trail_arn(region, account)));
    policy.statements.push(trail_logs::key_statement(region, account, &trail_log_group(region)));
    baseline_key(b, TRAIL_KEY_ALIAS, TRAIL_KEY_PURPOSE, "trail key", "the account trail's logs", policy)
}

/// The trail bucket: SSE-KMS with the trail key and Bucket Keys, TLS-only, CloudTrail
/// allowed for this trail only, versioned, private, access-logged (CloudTrail.7).
pub fn trail_bucket(b: &SecurityBaseline, account: &str, key_arn: &str) -> DesiredBucket {
    let region = &b.spec.region;
    let name = trail_bucket_name(account, region);
    let mut policy = tls_only(region, &name);
    policy.statements.extend(cloudtrail_bucket_statements(
        region,
        &name,
        account,
        &account_trail_arn(region, account),
        "CloudTrailWritesTheAccountTrail",
    ));
    DesiredBucket {
        name,
        zone: None,
        object_lock: false,
        encryption: kms_encryption(key_arn),
        policy,
        logging: Some(Logging { target_bucket: log_bucket_name(account, region), target_prefix: "trail/".into() }),
        lifecycle: lifecycle_rules(&Lifecycle::default()),
        tags: tags(b),
    }
}

/// The trail's CloudWatch Logs delivery (CloudTrail.5): a group encrypted with the trail
/// key, kept `spec.auditTrail.logRetentionDays`, and its delivery role.
pub fn trail_logs(b: &SecurityBaseline, account: &str, key_arn: &str, boundary: Option<&str>) -> TrailLogs {
    let region = &b.spec.region;
    let trail_arn = account_trail_arn(region, account);
    trail_logs::desired(&trail_logs::Input {
        region,
        account,
        trail_arn: &trail_arn,
        group_name: trail_log_group(region),
        role_name: trail_logs_role(region),
        key_arn,
        retention_days: b.spec.audit_trail.log_retention_days,
        tags: tags(b),
        boundary: boundary.map(str::to_string),
    })
}

/// The account trail: multi-region, management events (read and write) of every region,
/// global service events, log-file validation, encrypted with the trail key, to the trail
/// bucket and to CloudWatch Logs through `delivery` (CloudTrail.1, .2, .4, .5).
pub fn account_trail(b: &SecurityBaseline, account: &str, key_arn: &str, delivery: &Delivery) -> DesiredTrail {
    let region = &b.spec.region;
    DesiredTrail {
        settings: trail_settings(account_trail_name(region), trail_bucket_name(account, region), key_arn, delivery),
        events: EventSelection { management_events: true, ..EventSelection::default() },
        tags: tags(b),
    }
}

/// The ARNs of the lake keys of the region from their aliases (`alias/lakeops/<ns>/<name>`
/// and replicas; the baseline's own keys excluded), sorted and without repeats.
pub fn lake_key_arns(region: &str, account: &str, aliases: &[(String, String)]) -> Vec<String> {
    let own = format!("{}_baseline/", super::cis::LAKE_KEY_ALIAS_PREFIX);
    let mut out: Vec<String> = aliases
        .iter()
        .filter(|(alias, _)| alias.starts_with(super::cis::LAKE_KEY_ALIAS_PREFIX) && !alias.starts_with(&own))
        .map(|(_, id)| format!("arn:{}:kms:{region}:{account}:key/{id}", partition(region)))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> SecurityBaseline {
        serde_saphyr::from_str("apiVersion: lakeops.dev/v1alpha1\nkind: SecurityBaseline\nmetadata: {name: eu, uid: u-1}\nspec: {region: eu-west-1}\n")
            .expect("fixture parses")
    }

    #[test]
    fn a_new_detector_names_every_feature_with_only_lambda_on() {
        let d = new_detector(&baseline());
        assert_eq!(d.features.len(), FEATURES.len());
        assert_eq!(
            d.features.iter().filter(|(_, on)| **on).map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
            [LAMBDA_NETWORK_LOGS]
        );
    }

    #[test]
    fn an_existing_detector_only_gains_protection() {
        let b = baseline();
        let mut observed = new_detector(&b);
        assert_eq!(detector_update(&b, &observed), None, "converged");
        observed.features.insert("S3_DATA_EVENTS".into(), true);
        observed.features.insert(LAMBDA_NETWORK_LOGS.into(), false);
        let want = detector_update(&b, &observed).expect("lambda turned on");
        assert_eq!(want.features.get("S3_DATA_EVENTS"), Some(&true), "a feature someone turned on stays on");
        assert_eq!(want.features.get(LAMBDA_NETWORK_LOGS), Some(&true));
        let mut off = b.clone();
        off.spec.guard_duty.lambda_protection = false;
        observed.features.insert(LAMBDA_NETWORK_LOGS.into(), true);
        assert_eq!(detector_update(&off, &observed), None, "turning the spec off never turns the feature off");
    }

    #[test]
    fn inspector_enables_only_what_is_not_on_or_starting() {
        let b = baseline();
        let s = |l: Option<&str>, c: Option<&str>| AccountScanning::States {
            lambda: l.map(Into::into),
            lambda_code: c.map(Into::into),
        };
        assert_eq!(inspector_types(&b, &s(None, None)), [LAMBDA, LAMBDA_CODE]);
        assert_eq!(inspector_types(&b, &s(Some("ENABLED"), Some("DISABLED"))), [LAMBDA_CODE]);
        assert!(inspector_types(&b, &s(Some("ENABLED"), Some("ENABLING"))).is_empty());
        assert!(inspector_types(&b, &AccountScanning::ManagedByOrganization).is_empty());
    }

    #[test]
    fn the_alert_key_and_topic_let_only_this_accounts_alarms_and_rules_publish() {
        let b = baseline();
        let key = serde_json::to_value(&alerts_key(&b, "1").policy).expect("json");
        let topic = serde_json::to_value(topic_policy("eu-west-1", "1")).expect("json");
        for (doc, sid) in [(&key, "CloudWatchAlarmsPublishEncrypted"), (&topic, "EventBridgeRulesPublish")] {
            let s = doc["Statement"].as_array().expect("statements").iter().find(|s| s["Sid"] == sid).expect(sid);
            assert_eq!(s["Condition"]["StringEquals"]["aws:SourceAccount"], "1", "{s}");
            assert!(
                s["Condition"]["ArnLike"]["aws:SourceArn"].as_str().is_some_and(|a| a.starts_with("arn:aws:")),
                "{s}"
            );
        }
        let deny = &topic["Statement"][0];
        assert_eq!(
            (deny["Effect"].as_str(), deny["Condition"]["Bool"]["aws:SecureTransport"].as_str()),
            (Some("Deny"), Some("false"))
        );
        assert_eq!(topic_arn("eu-west-1", "1"), "arn:aws:sns:eu-west-1:1:lakeops-alerts");
    }

    #[test]
    fn an_expired_suppression_is_not_wanted_and_scopes_name_the_lambda_functions() {
        let mut b = baseline();
        let sup = |id: &str, expires: &str, functions: &[&str]| lakeops_crds::securitybaseline::Suppression {
            vulnerability_id: id.into(),
            functions: functions.iter().map(|f| f.to_string()).collect(),
            reason: "accepted".into(),
            expires: expires.into(),
        };
        b.spec.inspector.suppressions =
            vec![sup("CVE-1", "2026-11-29", &[]), sup("CVE-2", "2026-11-30", &["team/etl"])];
        let want = suppression_filters(&b, "2026-11-30");
        assert_eq!(want.len(), 1, "the expired one is dropped: {want:?}");
        assert_eq!(
            (want[0].name.as_str(), want[0].functions.as_slice()),
            ("lakeops-CVE-2", ["lakeops-team-etl".to_string()].as_slice())
        );
        assert_eq!(today().len(), 10);
    }

    #[test]
    fn finding_rules_forward_at_or_above_the_minimum() {
        let [inspector, guardduty] = finding_rules(&baseline(), FindingSeverity::High);
        let p: serde_json::Value =
            serde_json::from_str(inspector.event_pattern.as_deref().expect("pattern")).expect("json");
        assert_eq!(p["detail"]["severity"], serde_json::json!(["HIGH", "CRITICAL"]));
        let g: serde_json::Value =
            serde_json::from_str(guardduty.event_pattern.as_deref().expect("pattern")).expect("json");
        assert_eq!(g["detail"]["severity"][0]["numeric"], serde_json::json!([">=", 7.0]));
        let mut reordered = inspector.clone();
        reordered.event_pattern = Some(r#"{"detail":{"status":["ACTIVE"],"severity":["HIGH","CRITICAL"]},"detail-type":["Inspector2 Finding"],"source":["aws.inspector2"]}"#.into());
        assert!(same_rule(&reordered, &inspector), "key order is not a difference");
    }

    #[test]
    fn an_existing_recorder_keeps_its_name_and_never_records_less() {
        let mut b = baseline();
        b.spec.config.include_global_resources = false;
        let theirs = Recorder {
            name: "aws-controltower-BaselineConfigRecorder".into(),
            role_arn: "arn:aws:iam::1:role/ct".into(),
            all_supported: false,
            include_global_resources: true,
        };
        let want = recorder(&b, "1", Some(&theirs));
        assert_eq!(want.name, theirs.name);
        assert_eq!(want.role_arn, theirs.role_arn);
        assert!(want.all_supported && want.include_global_resources);
    }
}
