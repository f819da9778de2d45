//! The typed changes of an EtlPipeline and how each is found: pure, no I/O.
use std::collections::BTreeMap;
use std::fmt;

use crate::aws::events::{Rule, RuleInfo, RuleTarget};
use crate::aws::s3::Notifications;
use crate::aws::stepfunctions::{StateMachineInfo, StateMachineSettings};
use crate::engine::log_group::LogGroupChange;
use crate::engine::role::RoleChange;
use crate::engine::{Action, describe_with_inherent};

/// One AWS call.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A change of one of the generated roles (the engine's owned-role step).
    Role(RoleChange),
    /// The execution log group (the engine's owned-log-group step).
    LogGroup(LogGroupChange),
    CreateStateMachine {
        name: String,
        settings: StateMachineSettings,
        tags: BTreeMap<String, String>,
    },
    /// One UpdateStateMachine with every setting; `what` names those that differed.
    UpdateStateMachine {
        arn: String,
        settings: StateMachineSettings,
        what: Vec<&'static str>,
        weakens: bool,
    },
    TagStateMachine {
        arn: String,
        tags: BTreeMap<String, String>,
    },
    /// The bucket's notification document with EventBridge delivery turned on (its
    /// entries, ours and others', kept).
    EnableEventBridge {
        bucket: String,
        notifications: Notifications,
    },
    PutRule {
        rule: Rule,
        tags: BTreeMap<String, String>,
    },
    PutTarget {
        rule: String,
        target: RuleTarget,
    },
    RemoveTargets {
        rule: String,
        ids: Vec<String>,
    },
    DeleteRule {
        rule: String,
    },
    DeleteStateMachine {
        arn: String,
    },
    /// A change of the ingest API.
    Api(super::ingest::ApiChange),
}

impl Change {
    pub fn setting(&self) -> &'static str {
        match self {
            Change::Role(c) => crate::engine::Describe::setting(c),
            Change::LogGroup(c) => crate::engine::Describe::setting(c),
            Change::CreateStateMachine { .. } | Change::DeleteStateMachine { .. } => "state machine",
            Change::UpdateStateMachine { what, .. } => what.first().copied().unwrap_or("state machine"),
            Change::TagStateMachine { .. } => "ownership tags",
            Change::EnableEventBridge { .. } => "EventBridge notifications",
            Change::PutRule { .. } | Change::DeleteRule { .. } => "trigger rule",
            Change::PutTarget { .. } | Change::RemoveTargets { .. } => "trigger target",
            Change::Api(c) => c.setting(),
        }
    }

    pub fn resource(&self) -> &str {
        match self {
            Change::Role(c) => crate::engine::Describe::resource(c),
            Change::LogGroup(c) => crate::engine::Describe::resource(c),
            Change::CreateStateMachine { name, .. } => name,
            Change::UpdateStateMachine { arn, .. }
            | Change::TagStateMachine { arn, .. }
            | Change::DeleteStateMachine { arn } => arn,
            Change::EnableEventBridge { bucket, .. } => bucket,
            Change::PutRule { rule, .. } => &rule.name,
            Change::PutTarget { rule, .. } | Change::RemoveTargets { rule, .. } | Change::DeleteRule { rule } => rule,
            Change::Api(c) => c.resource(),
        }
    }

    pub fn weakens(&self) -> bool {
        match self {
            Change::UpdateStateMachine { weakens, .. } => *weakens,
            Change::Api(c) => c.weakens(),
            _ => false,
        }
    }
}

fn action(change: &Change) -> Option<Action> {
    match change {
        Change::Role(c) => crate::engine::Describe::action(c),
        Change::LogGroup(c) => crate::engine::Describe::action(c),
        Change::Api(c) => c.action(),
        Change::CreateStateMachine { .. } => Some(Action::Create),
        Change::DeleteStateMachine { .. } | Change::DeleteRule { .. } | Change::RemoveTargets { .. } => {
            Some(Action::Delete)
        }
        Change::UpdateStateMachine { .. }
        | Change::TagStateMachine { .. }
        | Change::EnableEventBridge { .. }
        | Change::PutRule { .. }
        | Change::PutTarget { .. } => None,
    }
}

describe_with_inherent!(Change, action);

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Role(c) => c.fmt(f),
            Change::LogGroup(c) => c.fmt(f),
            Change::CreateStateMachine { name, settings, .. } => write!(
                f,
                "create STANDARD state machine {name} (encrypted with the lake key, logging {}, tracing {})",
                settings.log_level,
                if settings.tracing { "on" } else { "off" }
            ),
            Change::UpdateStateMachine { arn, what, .. } => {
                write!(f, "state machine {arn}: update {}", what.join(", "))
            }
            Change::TagStateMachine { arn, .. } => write!(f, "state machine {arn}: tag"),
            Change::EnableEventBridge { bucket, .. } => {
                write!(f, "bucket {bucket}: send object events to EventBridge (other notifications kept)")
            }
            Change::PutRule { rule, .. } => match (&rule.event_pattern, &rule.schedule_expression) {
                (_, Some(expr)) => write!(f, "rule {}: schedule {expr}", rule.name),
                _ => write!(f, "rule {}: match created objects", rule.name),
            },
            Change::PutTarget { rule, target } => write!(f, "rule {rule}: start state machine {}", target.arn),
            Change::RemoveTargets { rule, ids } => write!(f, "rule {rule}: remove targets {}", ids.join(", ")),
            Change::DeleteRule { rule } => write!(f, "delete rule {rule}"),
            Change::DeleteStateMachine { arn } => write!(f, "delete state machine {arn}"),
            Change::Api(c) => c.fmt(f),
        }
    }
}

/// What differs between the observed machine and the desired settings, by name; the
/// definition is compared as JSON (formatting and key order are not drift).
pub fn machine_differences(desired: &StateMachineSettings, observed: &StateMachineSettings) -> Vec<&'static str> {
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    let mut out = Vec::new();
    if json(&desired.definition).is_none() || json(&desired.definition) != json(&observed.definition) {
        out.push("definition");
    }
    if desired.role_arn != observed.role_arn {
        out.push("role");
    }
    if desired.log_level != observed.log_level || desired.log_group_arn != observed.log_group_arn {
        out.push("logging");
    }
    if desired.tracing != observed.tracing {
        out.push("tracing");
    }
    if desired.kms_key_id != observed.kms_key_id {
        out.push("encryption");
    }
    out
}

/// Changes for the state machine: a create, or one update carrying every setting.
pub fn machine_changes(
    name: &str,
    arn: &str,
    settings: &StateMachineSettings,
    tags: &BTreeMap<String, String>,
    observed: Option<&StateMachineInfo>,
) -> Vec<Change> {
    let Some(o) = observed else {
        return vec![Change::CreateStateMachine { name: name.into(), settings: settings.clone(), tags: tags.clone() }];
    };
    let what = machine_differences(settings, &o.settings);
    if what.is_empty() {
        return Vec::new();
    }
    // The spec asked for less: tracing or logging off, or a lower level.
    let level = |l: &str| ["OFF", "FATAL", "ERROR", "ALL"].iter().position(|x| *x == l).unwrap_or(0);
    let weakens =
        (o.settings.tracing && !settings.tracing) || level(&settings.log_level) < level(&o.settings.log_level);
    vec![Change::UpdateStateMachine { arn: arn.into(), settings: settings.clone(), what, weakens }]
}

/// Changes for the rule and its one target.
pub fn rule_changes(
    rule: &Rule,
    target: &RuleTarget,
    tags: &BTreeMap<String, String>,
    observed: Option<&RuleInfo>,
    targets: &[RuleTarget],
) -> Vec<Change> {
    let mut out = Vec::new();
    if observed.is_none_or(|o| !same_rule(&o.rule, rule)) {
        out.push(Change::PutRule { rule: rule.clone(), tags: tags.clone() });
    }
    if !targets.contains(target) {
        out.push(Change::PutTarget { rule: rule.name.clone(), target: target.clone() });
    }
    let stale: Vec<String> = targets.iter().filter(|t| t.id != target.id).map(|t| t.id.clone()).collect();
    if !stale.is_empty() {
        out.push(Change::RemoveTargets { rule: rule.name.clone(), ids: stale });
    }
    out
}

/// Patterns compare as JSON.
fn same_rule(observed: &Rule, desired: &Rule) -> bool {
    let json = |s: &Option<String>| s.as_deref().and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
    json(&observed.event_pattern) == json(&desired.event_pattern)
        && observed.schedule_expression == desired.schedule_expression
        && observed.description == desired.description
        && observed.enabled == desired.enabled
}

/// The bucket's document with EventBridge on, when it is off.
pub fn event_bridge_change(bucket: &str, current: &Notifications) -> Option<Change> {
    (!current.event_bridge).then(|| Change::EnableEventBridge {
        bucket: bucket.into(),
        notifications: Notifications { entries: current.entries.clone(), event_bridge: true },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> StateMachineSettings {
        StateMachineSettings {
            definition: r#"{"StartAt":"a","States":{"a":{"Type":"Fail"}}}"#.into(),
            role_arn: "r".into(),
            log_level: "ERROR".into(),
            log_group_arn: Some("g".into()),
            tracing: true,
            kms_key_id: Some("k".into()),
        }
    }

    #[test]
    fn any_difference_is_one_update_and_reformatted_json_is_none() {
        let want = settings();
        let observed = StateMachineInfo {
            arn: "arn".into(),
            settings: StateMachineSettings {
                definition: "{ \"States\": {\"a\": {\"Type\": \"Fail\"}}, \"StartAt\": \"a\" }".into(),
                ..want.clone()
            },
            ..StateMachineInfo::default()
        };
        assert!(machine_changes("m", "arn", &want, &BTreeMap::new(), Some(&observed)).is_empty());
        let drifted = StateMachineInfo {
            settings: StateMachineSettings { role_arn: "other".into(), tracing: false, ..want.clone() },
            ..observed
        };
        let changes = machine_changes("m", "arn", &want, &BTreeMap::new(), Some(&drifted));
        assert_eq!(changes.len(), 1, "one UpdateStateMachine");
        assert!(
            matches!(&changes[0], Change::UpdateStateMachine { what, weakens: false, .. } if *what == ["role", "tracing"])
        );
    }

    #[test]
    fn eventbridge_is_turned_on_keeping_every_entry() {
        let entry = crate::aws::s3::NotificationEntry {
            target: crate::aws::s3::NotificationTarget::Lambda,
            id: "theirs".into(),
            arn: "arn:f".into(),
            events: vec!["s3:ObjectCreated:*".into()],
            prefix: None,
            suffix: None,
        };
        let current = Notifications { entries: vec![entry.clone()], event_bridge: false };
        let Some(Change::EnableEventBridge { notifications, .. }) = event_bridge_change("b", &current) else {
            panic!("a change")
        };
        assert_eq!(notifications, Notifications { entries: vec![entry], event_bridge: true });
        assert_eq!(event_bridge_change("b", &notifications), None);
    }
}
