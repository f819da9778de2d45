//! What a SecurityBaseline wants, from its spec and what exists: pure functions.
//!
//! The rule everywhere: the baseline only turns things on. Settings that exist are kept
//! when they protect more than the spec asks (a feature someone turned on, global
//! resources recorded), so adopting a detector or recorder never weakens it.
use std::collections::BTreeMap;

use kube::ResourceExt;
use lakeops_crds::SecurityBaseline;
use lakeops_crds::datalake::Lifecycle;

use crate::aws::config::{Channel, Recorder};
use crate::aws::guardduty::{DetectorSettings, FEATURES, LAMBDA_NETWORK_LOGS};
use crate::aws::inspector::{AccountScanning, ENABLED, LAMBDA, LAMBDA_CODE};
use crate::engine::intent;
use crate::engine::key::ManagedKey;
use crate::policy::{Effect, PolicyDocument, Principal, Statement};
use crate::reconcile::datalake::desired::{
    DesiredBucket, bucket_arn, kms_bucket_policy, kms_encryption, lifecycle_rules, partition, root_key_policy,
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
    ManagedKey {
        alias: KEY_ALIAS.into(),
        region: region.clone(),
        description: format!("lakeops SecurityBaseline {}: encrypts AWS Config's deliveries", b.name_any()),
        rotation_days: 365,
        policy,
        tags: tags(b),
        what: "Config key".into(),
        token: token(b, KEY_PURPOSE),
    }
}

/// The delivery bucket: the lake bucket baseline (SSE-KMS with Bucket Keys, TLS-only,
/// uploads only with the key, versioning, public access blocked, ACLs off, lifecycle),
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
        logging: None,
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
