//! What must change for an EtlFunction: pure functions of the desired and observed state,
//! each [`Change`] one AWS call (two for a replaced permission).
use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::aws::lambda::{CodeLocation, FunctionConfig, FunctionInfo, InvokePermission, NewFunction};
use crate::aws::logs::LogGroup;
use crate::aws::s3::{NotificationEntry, Notifications};

use crate::engine::log_group::LogGroupChange;
use crate::engine::role::{OwnedRole, RoleChange};

use super::desired::{Desired, DesiredFunction, DesiredRole, ROLE_POLICY_NAME};

/// The execution role as read: GetRole and GetRolePolicy of our one inline policy.
pub use crate::engine::role::ObservedRole;

/// Everything observed about one function.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub role: Option<ObservedRole>,
    pub log_group: Option<LogGroup>,
    pub function: Option<FunctionInfo>,
    /// The attached code signing config; read only when the spec names one.
    pub code_signing: Option<Option<String>>,
    /// The function's resource policy.
    pub permission_policy: Option<String>,
    /// The source bucket's notification configuration.
    pub notifications: Notifications,
}

/// One AWS call.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A change of the execution role (the engine's owned-role step).
    Role(RoleChange),
    /// A change of the log group (the engine's owned-log-group step).
    LogGroup(LogGroupChange),
    /// Our entry leaves a source bucket the spec no longer names.
    RemoveTrigger {
        bucket: String,
        id: String,
    },
    CreateFunction(Box<NewFunction>),
    TagFunction {
        arn: String,
        tags: BTreeMap<String, String>,
    },
    /// `differences` name each setting with its old and new value, for plans and events.
    UpdateConfiguration {
        name: String,
        config: Box<FunctionConfig>,
        differences: Vec<String>,
    },
    UpdateCode {
        name: String,
        code: CodeLocation,
        architecture: String,
    },
    SetConcurrency {
        name: String,
        reserved: Option<i32>,
    },
    SetCodeSigning {
        name: String,
        arn: Option<String>,
    },
    /// S3 may no longer invoke the function (its trigger was turned off).
    RemovePermission {
        name: String,
        statement_id: String,
    },
    /// RemovePermission (when `replace`) then AddPermission.
    Permission {
        name: String,
        permission: InvokePermission,
        replace: bool,
    },
    PutNotifications {
        bucket: String,
        notifications: Notifications,
    },
}

impl Change {
    /// The setting this change corrects, for drift reports.
    pub fn setting(&self) -> &'static str {
        match self {
            Change::Role(c) => crate::engine::Describe::setting(c),
            Change::LogGroup(c) => crate::engine::Describe::setting(c),
            Change::TagFunction { .. } => "ownership tags",
            Change::RemoveTrigger { .. } => "S3 trigger",
            Change::CreateFunction(_) => "function",
            Change::UpdateConfiguration { .. } => "configuration",
            Change::UpdateCode { .. } => "code",
            Change::SetConcurrency { .. } => "reserved concurrency",
            Change::SetCodeSigning { .. } => "code signing",
            Change::Permission { .. } | Change::RemovePermission { .. } => "invoke permission",
            Change::PutNotifications { .. } => "S3 trigger",
        }
    }
}

impl Change {
    /// The AWS resource the change is about.
    pub fn resource(&self) -> &str {
        match self {
            Change::Role(c) => crate::engine::Describe::resource(c),
            Change::LogGroup(c) => crate::engine::Describe::resource(c),
            Change::RemoveTrigger { bucket, .. } => bucket,
            Change::CreateFunction(f) => &f.name,
            Change::TagFunction { arn, .. } => arn,
            Change::UpdateConfiguration { name, .. }
            | Change::UpdateCode { name, .. }
            | Change::SetConcurrency { name, .. }
            | Change::SetCodeSigning { name, .. }
            | Change::Permission { name, .. }
            | Change::RemovePermission { name, .. } => name,
            Change::PutNotifications { bucket, .. } => bucket,
        }
    }

    /// True when the change removes a protection: code signing detached.
    pub fn weakens(&self) -> bool {
        matches!(self, Change::SetCodeSigning { arn: None, .. })
    }

    /// True for changes that create a resource.
    pub fn creates(&self) -> bool {
        matches!(
            self,
            Change::Role(RoleChange::CreateRole(_))
                | Change::LogGroup(LogGroupChange::Create { .. })
                | Change::CreateFunction(_)
        )
    }
}

/// What a change does to its resource, for plans (`None`: a setting).
fn action(change: &Change) -> Option<crate::engine::Action> {
    match change {
        Change::Role(c) => crate::engine::Describe::action(c),
        Change::RemoveTrigger { .. } | Change::RemovePermission { .. } => Some(crate::engine::Action::Delete),
        c if c.creates() => Some(crate::engine::Action::Create),
        _ => None,
    }
}

crate::engine::describe_with_inherent!(Change, action);

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Role(c) => c.fmt(f),
            Change::LogGroup(c) => c.fmt(f),
            Change::RemoveTrigger { bucket, id } => write!(f, "bucket {bucket}: remove notification entry {id}"),
            Change::CreateFunction(n) => write!(f, "create function {}", n.name),
            Change::TagFunction { arn, .. } => write!(f, "function {arn}: tag"),
            Change::UpdateConfiguration { name, differences, .. } => {
                write!(f, "function {name}: update configuration ({})", differences.join(", "))
            }
            Change::UpdateCode { name, code, architecture } => write!(
                f,
                "function {name}: deploy s3://{}/{}{} ({architecture})",
                code.bucket,
                code.key,
                code.version.as_deref().map(|v| format!(" version {v}")).unwrap_or_default()
            ),
            Change::SetConcurrency { name, reserved: Some(n) } => write!(f, "function {name}: reserve {n} executions"),
            Change::SetConcurrency { name, reserved: None } => {
                write!(f, "function {name}: release reserved executions")
            }
            Change::SetCodeSigning { name, arn } => {
                write!(f, "function {name}: code signing config {}", arn.as_deref().unwrap_or("none"))
            }
            Change::Permission { name, permission, .. } => {
                write!(f, "function {name}: allow s3.amazonaws.com to invoke from {}", permission.source_arn)
            }
            Change::RemovePermission { name, statement_id } => {
                write!(f, "function {name}: remove the S3 invoke permission {statement_id}")
            }
            Change::PutNotifications { bucket, notifications } => {
                write!(f, "bucket {bucket}: notification configuration with {} entries", notifications.entries.len())
            }
        }
    }
}

/// The execution role as the engine's owned-role step converges it.
pub fn owned_role(d: &DesiredRole) -> OwnedRole {
    OwnedRole {
        name: d.name.clone(),
        path: d.path,
        description: "lakeops EtlFunction execution role (generated; edits are reverted)",
        trust: d.trust.clone(),
        policy_name: ROLE_POLICY_NAME,
        policy: d.permissions.clone(),
        boundary: d.boundary.clone(),
        tags: d.tags.clone(),
    }
}

/// Changes for the execution role.
pub fn role_changes(d: &DesiredRole, observed: Option<&ObservedRole>) -> Vec<Change> {
    crate::engine::role::changes(&owned_role(d), observed).into_iter().map(Change::Role).collect()
}

/// Changes for the function. `deployed` is the package version recorded as deployed,
/// `artifact` the one to deploy now: code is only sent when they differ.
pub fn function_changes(
    d: &DesiredFunction,
    observed: Option<&FunctionInfo>,
    code_signing: Option<&Option<String>>,
    deployed: Option<&str>,
    artifact: Option<&str>,
) -> Vec<Change> {
    // Deploy exactly the version recorded, so status never claims a version that was not sent.
    let code = CodeLocation {
        version: d.code.version.clone().or_else(|| artifact.filter(|a| !a.starts_with("etag:")).map(str::to_string)),
        ..d.code.clone()
    };
    let Some(o) = observed else {
        let mut out = vec![Change::CreateFunction(Box::new(NewFunction {
            name: d.name.clone(),
            config: d.config.clone(),
            architecture: d.architecture.clone(),
            code,
            code_signing_config_arn: d.code_signing_config_arn.clone(),
            tags: d.tags.clone(),
        }))];
        if d.reserved_concurrency.is_some() {
            out.push(Change::SetConcurrency { name: d.name.clone(), reserved: d.reserved_concurrency });
        }
        return out;
    };
    let mut out = Vec::new();
    if let Some(tags) = missing_tags(&d.tags, &o.tags) {
        out.push(Change::TagFunction { arn: o.arn.clone(), tags });
    }
    // Signing first: new code must meet the config it is deployed under, and a config being
    // detached must not block the unsigned package the same change ships.
    if let Some(observed) = code_signing
        && observed != &d.code_signing_config_arn
    {
        out.push(Change::SetCodeSigning { name: d.name.clone(), arn: d.code_signing_config_arn.clone() });
    }
    if o.config != d.config {
        out.push(Change::UpdateConfiguration {
            name: d.name.clone(),
            config: Box::new(d.config.clone()),
            differences: config_differences(&o.config, &d.config),
        });
    }
    if (artifact.is_some() && artifact != deployed) || o.architecture != d.architecture {
        out.push(Change::UpdateCode { name: d.name.clone(), code, architecture: d.architecture.clone() });
    }
    if o.reserved_concurrency != d.reserved_concurrency {
        out.push(Change::SetConcurrency { name: d.name.clone(), reserved: d.reserved_concurrency });
    }
    out
}

/// Each differing setting as `setting: old -> new`. Environment values are never shown
/// (they may be sensitive); only the names of variables that changed.
pub fn config_differences(old: &FunctionConfig, new: &FunctionConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name}: {a} -> {b}"));
        }
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    field("runtime", old.runtime.clone(), new.runtime.clone());
    field("handler", old.handler.clone(), new.handler.clone());
    field("role", old.role_arn.clone(), new.role_arn.clone());
    field("memory MB", old.memory_mb.to_string(), new.memory_mb.to_string());
    field("timeout s", old.timeout_seconds.to_string(), new.timeout_seconds.to_string());
    field("environment key", opt(&old.kms_key_arn), opt(&new.kms_key_arn));
    field("tracing", tracing_mode(old.tracing_active).into(), tracing_mode(new.tracing_active).into());
    field("dead-letter target", opt(&old.dead_letter_target), opt(&new.dead_letter_target));
    field("subnets", old.subnet_ids.join(","), new.subnet_ids.join(","));
    field("security groups", old.security_group_ids.join(","), new.security_group_ids.join(","));
    let names: std::collections::BTreeSet<&String> = old.environment.keys().chain(new.environment.keys()).collect();
    let changed: Vec<&str> =
        names.into_iter().filter(|k| old.environment.get(*k) != new.environment.get(*k)).map(String::as_str).collect();
    if !changed.is_empty() {
        out.push(format!("environment variables changed: {}", changed.join(", ")));
    }
    out
}

fn tracing_mode(active: bool) -> &'static str {
    if active { "Active" } else { "PassThrough" }
}

/// How the function's resource policy stands towards our invoke permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermissionState {
    Missing,
    Matches,
    /// A statement with our id exists but grants something else.
    Differs,
}

/// Finds our statement in the resource policy and checks its principal, action and
/// both source conditions (without them any bucket in any account could invoke).
pub fn permission_state(policy: Option<&str>, p: &InvokePermission) -> PermissionState {
    let Some(doc) = policy.and_then(|j| serde_json::from_str::<Value>(j).ok()) else {
        return PermissionState::Missing;
    };
    let statements = match doc.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(single) => vec![single.clone()],
        None => Vec::new(),
    };
    let Some(ours) = statements.iter().find(|s| s.get("Sid").and_then(Value::as_str) == Some(&p.statement_id)) else {
        return PermissionState::Missing;
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
            Some(Value::Object(m)) => m
                .values()
                .flat_map(|x| match x {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a.iter().filter_map(|y| y.as_str().map(str::to_string)).collect(),
                    _ => Vec::new(),
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let condition = |op: &str, key: &str| -> Vec<String> {
        ours.get("Condition")
            .and_then(|c| c.get(op))
            .and_then(Value::as_object)
            .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
            .map(|v| strings(Some(v)))
            .unwrap_or_default()
    };
    let ok = ours.get("Effect").and_then(Value::as_str) == Some("Allow")
        && strings(ours.get("Principal")) == [p.principal.clone()]
        && strings(ours.get("Action")) == ["lambda:InvokeFunction"]
        && condition("ArnLike", "AWS:SourceArn") == [p.source_arn.clone()]
        && condition("StringEquals", "AWS:SourceAccount") == [p.source_account.clone()];
    if ok { PermissionState::Matches } else { PermissionState::Differs }
}

/// The bucket's notification document with our entry in it: entries with other ids
/// (other functions', other tools') kept as they are, ours replaced, sorted for a
/// deterministic document.
pub fn with_entry(observed: &Notifications, ours: &NotificationEntry) -> Notifications {
    let mut entries: Vec<NotificationEntry> = observed.entries.iter().filter(|e| e.id != ours.id).cloned().collect();
    entries.push(ours.clone());
    entries.sort();
    Notifications { entries, event_bridge: observed.event_bridge }
}

/// The document without the entry `id`.
pub fn without_entry(observed: &Notifications, id: &str) -> Notifications {
    let mut entries: Vec<NotificationEntry> = observed.entries.iter().filter(|e| e.id != id).cloned().collect();
    entries.sort();
    Notifications { entries, event_bridge: observed.event_bridge }
}

/// True when both documents hold the same entries, whatever their order.
pub fn same_notifications(a: &Notifications, b: &Notifications) -> bool {
    let sorted = |n: &Notifications| {
        let mut e = n.entries.clone();
        e.sort();
        e
    };
    a.event_bridge == b.event_bridge && sorted(a) == sorted(b)
}

/// Changes for the trigger: the permission first (S3 checks it can invoke before it
/// accepts the notification), then the notification entry.
pub fn trigger_changes(d: &Desired, observed: &Observed) -> Vec<Change> {
    let mut out = Vec::new();
    if !d.trigger.enabled {
        // A pipeline step: S3 must not invoke it; an entry and a permission left from
        // before go (a permission with no entry would still let that bucket invoke it).
        if observed.notifications.entries.iter().any(|e| e.id == d.trigger.entry.id) {
            out.push(Change::RemoveTrigger { bucket: d.trigger.bucket.clone(), id: d.trigger.entry.id.clone() });
        }
        if permission_state(observed.permission_policy.as_deref(), &d.trigger.permission) != PermissionState::Missing {
            out.push(Change::RemovePermission {
                name: d.function.name.clone(),
                statement_id: d.trigger.permission.statement_id.clone(),
            });
        }
        return out;
    }
    let permission = &d.trigger.permission;
    match permission_state(observed.permission_policy.as_deref(), permission) {
        PermissionState::Matches => {}
        state => out.push(Change::Permission {
            name: d.function.name.clone(),
            permission: permission.clone(),
            replace: state == PermissionState::Differs,
        }),
    }
    let merged = with_entry(&observed.notifications, &d.trigger.entry);
    if !same_notifications(&merged, &observed.notifications) {
        out.push(Change::PutNotifications { bucket: d.trigger.bucket.clone(), notifications: merged });
    }
    out
}

/// Tags of `desired` that `observed` lacks or holds with another value, if any.
fn missing_tags(
    desired: &BTreeMap<String, String>,
    observed: &BTreeMap<String, String>,
) -> Option<BTreeMap<String, String>> {
    let missing: BTreeMap<String, String> =
        desired.iter().filter(|(k, v)| observed.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    (!missing.is_empty()).then_some(missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::iam::RoleInfo;
    use crate::aws::s3::NotificationTarget;
    use crate::reconcile::etlfunction::desired::{Facts, desired};
    use lakeops_crds::{DataLake, EtlFunction};

    fn fixture() -> Desired {
        let etl: EtlFunction = serde_saphyr::from_str(crate::reconcile::etlfunction::desired::tests::ETL).expect("etl");
        let lake: DataLake = serde_saphyr::from_str(crate::reconcile::etlfunction::desired::tests::LAKE).expect("lake");
        desired(
            &etl,
            Facts {
                lake: &lake,
                account_id: "123456789012",
                key_arn: "arn:aws:kms:eu-west-1:123456789012:key/k1",
                permissions_boundary: None,
            },
        )
    }

    /// What AWS would report once everything in `d` exists.
    fn converged(d: &Desired) -> Observed {
        Observed {
            role: Some(ObservedRole {
                info: RoleInfo {
                    name: d.role.name.clone(),
                    arn: d.role.arn.clone(),
                    assume_role_policy: d.role.trust.to_json(),
                    permissions_boundary: None,
                    tags: d.role.tags.clone(),
                },
                policy: Some(d.role.permissions.to_json()),
            }),
            log_group: Some(LogGroup {
                name: d.log_group.name.clone(),
                arn: String::new(),
                retention_days: Some(d.log_group.retention_days),
                kms_key_id: Some(d.log_group.kms_key_arn.clone()),
            }),
            function: Some(FunctionInfo {
                arn: d.function.arn.clone(),
                config: d.function.config.clone(),
                architecture: d.function.architecture.clone(),
                state: Some("Active".into()),
                last_update_status: Some("Successful".into()),
                reserved_concurrency: None,
                tags: d.function.tags.clone(),
            }),
            code_signing: None,
            permission_policy: Some(format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"lakeops-s3-invoke","Effect":"Allow","Principal":{{"Service":"s3.amazonaws.com"}},"Action":"lambda:InvokeFunction","Resource":"{}","Condition":{{"StringEquals":{{"AWS:SourceAccount":"123456789012"}},"ArnLike":{{"AWS:SourceArn":"arn:aws:s3:::team-a-sales-raw"}}}}}}]}}"#,
                d.function.arn
            )),
            notifications: Notifications { entries: vec![d.trigger.entry.clone()], event_bridge: false },
        }
    }

    fn all_changes(d: &Desired, o: &Observed, deployed: Option<&str>, artifact: Option<&str>) -> Vec<Change> {
        let mut out = role_changes(&d.role, o.role.as_ref());
        out.extend(
            crate::engine::log_group::changes(&d.log_group, o.log_group.as_ref(), false)
                .into_iter()
                .map(Change::LogGroup),
        );
        out.extend(function_changes(&d.function, o.function.as_ref(), o.code_signing.as_ref(), deployed, artifact));
        out.extend(trigger_changes(d, o));
        out
    }

    #[test]
    fn a_function_without_trigger_adds_no_entry_and_removes_its_old_one_and_the_permission() {
        let mut d = fixture();
        d.trigger.enabled = false;
        let mut o = converged(&d);
        let foreign = NotificationEntry { id: "theirs".into(), ..d.trigger.entry.clone() };
        o.notifications.entries.push(foreign);
        let changes = trigger_changes(&d, &o);
        assert!(
            matches!(changes.as_slice(), [
                Change::RemoveTrigger { id, .. },
                Change::RemovePermission { statement_id, .. },
            ] if *id == d.trigger.entry.id && *statement_id == d.trigger.permission.statement_id),
            "{changes:?}"
        );
        o.notifications.entries.retain(|e| e.id == "theirs");
        o.permission_policy = None;
        assert!(trigger_changes(&d, &o).is_empty());
    }

    #[test]
    fn nothing_exists_creates_in_dependency_order() {
        let d = fixture();
        let settings: Vec<&str> =
            all_changes(&d, &Observed::default(), None, Some("v1")).iter().map(Change::setting).collect();
        assert_eq!(
            settings,
            ["role", "role permissions", "log group", "log retention", "function", "invoke permission", "S3 trigger"]
        );
    }

    #[test]
    fn a_converged_function_needs_nothing() {
        let d = fixture();
        assert_eq!(all_changes(&d, &converged(&d), Some("v1"), Some("v1")), []);
    }

    #[test]
    fn a_new_package_version_is_one_code_update_and_nothing_else() {
        let d = fixture();
        let changes = all_changes(&d, &converged(&d), Some("v1"), Some("v2"));
        assert_eq!(changes.len(), 1, "{changes:?}");
        match &changes[0] {
            Change::UpdateCode { code, .. } => assert_eq!(code.version.as_deref(), Some("v2")),
            other => panic!("expected a code update, got {other:?}"),
        }
    }

    #[test]
    fn a_memory_change_is_one_configuration_update() {
        let mut d = fixture();
        let o = converged(&d);
        d.function.config.memory_mb = 1024;
        let changes = all_changes(&d, &o, Some("v1"), Some("v1"));
        let settings: Vec<&str> = changes.iter().map(Change::setting).collect();
        assert_eq!(settings, ["configuration"]);
        assert!(changes[0].to_string().ends_with("(memory MB: 512 -> 1024)"), "{}", changes[0]);
    }

    #[test]
    fn environment_changes_name_the_variable_and_never_show_its_value() {
        let d = fixture();
        let mut new = d.function.config.clone();
        new.environment.insert("API_TOKEN_ARN".into(), "arn:aws:secretsmanager:eu-west-1:1:secret:x".into());
        let diffs = config_differences(&d.function.config, &new);
        assert_eq!(diffs, ["environment variables changed: API_TOKEN_ARN"]);
    }

    #[test]
    fn a_widened_role_policy_and_a_loosened_permission_are_restored() {
        let d = fixture();
        let mut o = converged(&d);
        if let Some(r) = o.role.as_mut() {
            r.policy = Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#.into(),
            );
        }
        o.permission_policy = o.permission_policy.map(|p| p.replace("123456789012\"}", "999999999999\"}"));
        let changes = all_changes(&d, &o, Some("v1"), Some("v1"));
        assert!(matches!(&changes[0], Change::Role(RoleChange::PutRolePolicy { .. })), "{changes:?}");
        assert!(matches!(&changes[1], Change::Permission { replace: true, .. }), "{changes:?}");
    }

    #[test]
    fn foreign_and_sibling_entries_are_kept_and_ours_is_replaced() {
        let d = fixture();
        let foreign = NotificationEntry {
            target: NotificationTarget::Queue,
            id: "audit-queue".into(),
            arn: "arn:aws:sqs:eu-west-1:123456789012:audit".into(),
            events: vec!["s3:ObjectRemoved:*".into()],
            prefix: None,
            suffix: None,
        };
        let sibling = NotificationEntry {
            id: "lakeops-team-a-other".into(),
            prefix: Some("other/".into()),
            ..d.trigger.entry.clone()
        };
        let stale = NotificationEntry { prefix: Some("old/".into()), ..d.trigger.entry.clone() };
        let observed = Notifications { entries: vec![stale, foreign.clone(), sibling.clone()], event_bridge: true };

        let merged = with_entry(&observed, &d.trigger.entry);

        assert_eq!(merged.entries.len(), 3);
        assert!(merged.entries.contains(&foreign) && merged.entries.contains(&sibling));
        assert!(merged.entries.contains(&d.trigger.entry));
        assert!(merged.event_bridge, "EventBridge delivery is not ours to turn off");
        assert_eq!(
            merged,
            with_entry(
                &Notifications { entries: merged.entries.iter().rev().cloned().collect(), event_bridge: true },
                &d.trigger.entry
            ),
            "deterministic"
        );
        let removed = without_entry(&merged, &d.trigger.entry.id);
        assert_eq!(removed.entries, {
            let mut e = vec![foreign, sibling];
            e.sort();
            e
        });
    }

    #[test]
    fn permission_checks_principal_action_and_both_conditions() {
        let d = fixture();
        let o = converged(&d);
        let p = &d.trigger.permission;
        assert_eq!(permission_state(o.permission_policy.as_deref(), p), PermissionState::Matches);
        assert_eq!(permission_state(None, p), PermissionState::Missing);
        let without_account = o
            .permission_policy
            .as_deref()
            .map(|j| j.replace(r#""StringEquals":{"AWS:SourceAccount":"123456789012"},"#, ""));
        assert_eq!(permission_state(without_account.as_deref(), p), PermissionState::Differs);
        assert_eq!(permission_state(Some("not json"), p), PermissionState::Missing);
    }

    #[test]
    fn code_signing_removed_from_the_spec_is_detached_and_marked_as_weakening() {
        let d = fixture();
        let mut o = converged(&d);
        o.code_signing = Some(Some("arn:aws:lambda:eu-west-1:123456789012:code-signing-config:csc-1".into()));
        let changes = all_changes(&d, &o, Some("v1"), Some("v1"));
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(matches!(&changes[0], Change::SetCodeSigning { arn: None, .. }) && changes[0].weakens());
    }

    #[test]
    fn a_signing_config_is_attached_before_new_code_is_deployed() {
        let mut d = fixture();
        let o = converged(&d);
        d.function.code_signing_config_arn =
            Some("arn:aws:lambda:eu-west-1:123456789012:code-signing-config:csc-1".into());
        let mut o = o;
        o.code_signing = Some(None);
        let settings: Vec<&str> = all_changes(&d, &o, Some("v1"), Some("v2")).iter().map(Change::setting).collect();
        assert_eq!(settings, ["code signing", "code"]);
    }

    #[test]
    fn an_unversioned_package_is_deployed_by_key_and_changes_by_etag() {
        let d = fixture();
        let changes = all_changes(&d, &converged(&d), Some("etag:a"), Some("etag:b"));
        match changes.as_slice() {
            [Change::UpdateCode { code, .. }] => assert_eq!(code.version, None),
            other => panic!("{other:?}"),
        }
    }
}
