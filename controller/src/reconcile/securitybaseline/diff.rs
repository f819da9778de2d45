//! The SecurityBaseline's own changes (GuardDuty, Inspector, Config, alerts, the account
//! trail's metric filters and alarms), one AWS call each. Its key, bucket, trail and log
//! delivery changes are the engine's and the DataLake's. There is no change that
//! disables, stops or deletes anything: the type cannot express one.
use std::collections::BTreeMap;
use std::fmt;

use crate::aws::cloudwatch::MetricAlarm;
use crate::aws::config::{Channel, Recorder};
use crate::aws::events::{Rule, RuleTarget};
use crate::aws::guardduty::DetectorSettings;
use crate::aws::inspector::SuppressionFilter;
use crate::aws::logs::MetricFilter;
use crate::engine::{Action, describe_with_inherent};

/// One write.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    CreateDetector {
        settings: DetectorSettings,
        tags: BTreeMap<String, String>,
    },
    UpdateDetector {
        id: String,
        settings: DetectorSettings,
    },
    EnableInspector {
        account: String,
        types: Vec<&'static str>,
    },
    PutRecorder {
        recorder: Recorder,
    },
    PutChannel {
        channel: Channel,
    },
    StartRecorder {
        name: String,
    },
    /// CreateTopic: its key and policy are attributes of the create.
    CreateTopic {
        name: String,
        attributes: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    },
    /// SetTopicAttributes (`KmsMasterKeyId` or `Policy`).
    SetTopicAttribute {
        arn: String,
        name: &'static str,
        value: String,
    },
    /// Subscribe an email address.
    SubscribeEmail {
        arn: String,
        email: String,
    },
    /// PutRule of a finding rule (creates it with tags, or rewrites its pattern).
    PutRule {
        rule: Rule,
        tags: BTreeMap<String, String>,
    },
    /// PutTargets: the alert topic as the rule's target.
    PutTarget {
        rule: String,
        target: RuleTarget,
    },
    /// CreateFilter (SUPPRESS): a risk accepted in the spec.
    CreateSuppression {
        filter: SuppressionFilter,
        tags: BTreeMap<String, String>,
    },
    /// UpdateFilter: its scope, reason or expiry changed; `weakens` when it covers more or longer.
    UpdateSuppression {
        arn: String,
        filter: SuppressionFilter,
        weakens: bool,
    },
    /// DeleteFilter: expired or removed from the spec (Inspector reports the findings again).
    DeleteSuppression {
        arn: String,
        vulnerability_id: String,
    },
    /// PutMetricFilter on the account trail's log group (creates or replaces it).
    PutMetricFilter {
        group: String,
        filter: MetricFilter,
    },
    /// PutMetricAlarm (creates it with tags, or replaces its settings).
    PutAlarm {
        alarm: MetricAlarm,
        tags: BTreeMap<String, String>,
    },
}

impl Change {
    /// The setting, as events and metrics name it.
    pub fn setting(&self) -> &'static str {
        match self {
            Change::CreateDetector { .. } => "GuardDuty detector",
            Change::UpdateDetector { .. } => "GuardDuty features",
            Change::EnableInspector { .. } => "Inspector scanning",
            Change::PutRecorder { .. } => "Config recorder",
            Change::PutChannel { .. } => "Config delivery channel",
            Change::StartRecorder { .. } => "Config recording",
            Change::CreateTopic { .. } => "alert topic",
            Change::SetTopicAttribute { name, .. } if *name == crate::aws::sns::KMS_MASTER_KEY_ID => "alert topic key",
            Change::SetTopicAttribute { .. } => "alert topic policy",
            Change::SubscribeEmail { .. } => "alert subscription",
            Change::PutRule { .. } => "finding rule",
            Change::PutTarget { .. } => "finding rule target",
            Change::CreateSuppression { .. } | Change::UpdateSuppression { .. } | Change::DeleteSuppression { .. } => {
                "Inspector suppression"
            }
            Change::PutMetricFilter { .. } => "CIS metric filter",
            Change::PutAlarm { .. } => "CIS alarm",
        }
    }

    /// The AWS resource the change is about.
    pub fn resource(&self) -> &str {
        match self {
            Change::CreateDetector { .. } => "GuardDuty detector",
            Change::UpdateDetector { id, .. } => id,
            Change::EnableInspector { account, .. } => account,
            Change::PutRecorder { recorder } => &recorder.name,
            Change::PutChannel { channel } => &channel.name,
            Change::StartRecorder { name } => name,
            Change::CreateTopic { name, .. } => name,
            Change::SetTopicAttribute { arn, .. } | Change::SubscribeEmail { arn, .. } => arn,
            Change::CreateSuppression { filter, .. } => &filter.name,
            Change::PutRule { rule, .. } => &rule.name,
            Change::PutTarget { rule, .. } => rule,
            Change::UpdateSuppression { arn, .. } | Change::DeleteSuppression { arn, .. } => arn,
            Change::PutMetricFilter { filter, .. } => &filter.name,
            Change::PutAlarm { alarm, .. } => &alarm.name,
        }
    }

    /// Only accepting a risk weakens protection: a new suppression, or one that covers
    /// more functions or lasts longer.
    pub fn weakens(&self) -> bool {
        match self {
            Change::CreateSuppression { .. } => true,
            Change::UpdateSuppression { weakens, .. } => *weakens,
            _ => false,
        }
    }
}

fn action(change: &Change) -> Option<Action> {
    match change {
        Change::CreateDetector { .. } | Change::CreateTopic { .. } | Change::CreateSuppression { .. } => {
            Some(Action::Create)
        }
        Change::DeleteSuppression { .. } => Some(Action::Delete),
        _ => None,
    }
}

describe_with_inherent!(Change, action);

fn scope(f: &SuppressionFilter) -> String {
    if f.functions.is_empty() { "every function".into() } else { f.functions.join(", ") }
}

fn on_features(s: &DetectorSettings) -> String {
    let on: Vec<&str> = s.features.iter().filter(|(_, on)| **on).map(|(f, _)| f.as_str()).collect();
    if on.is_empty() { "none".into() } else { on.join(", ") }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::CreateDetector { settings, .. } => write!(
                f,
                "create the GuardDuty detector (features on: {}; every other feature sent as off), publishing every {}",
                on_features(settings),
                settings.finding_publishing_frequency
            ),
            Change::UpdateDetector { id, settings } => write!(
                f,
                "GuardDuty detector {id}: enable it with features on: {}, publishing every {}",
                on_features(settings),
                settings.finding_publishing_frequency
            ),
            Change::EnableInspector { account, types } => {
                write!(f, "Inspector: enable {} scanning for account {account}", types.join(" and "))
            }
            Change::PutRecorder { recorder } => write!(
                f,
                "Config recorder {}: record {} resource types{}",
                recorder.name,
                if recorder.all_supported { "all supported" } else { "the listed" },
                if recorder.include_global_resources { ", global resources included" } else { "" }
            ),
            Change::PutChannel { channel } => {
                write!(
                    f,
                    "Config delivery channel {}: deliver to bucket {} encrypted with the Config key",
                    channel.name, channel.bucket
                )
            }
            Change::StartRecorder { name } => write!(f, "Config recorder {name}: start recording"),
            Change::CreateTopic { name, attributes, .. } => write!(
                f,
                "create the alert topic {name}, encrypted with {}, TLS only, CloudWatch alarms and EventBridge rules of this account may publish",
                attributes.get(crate::aws::sns::KMS_MASTER_KEY_ID).map_or("the alert key", String::as_str)
            ),
            Change::SetTopicAttribute { arn, name, value } if *name == crate::aws::sns::KMS_MASTER_KEY_ID => {
                write!(f, "alert topic {arn}: encrypt with {value}")
            }
            Change::SetTopicAttribute { arn, .. } => {
                write!(f, "alert topic {arn}: policy TLS only, publishing by this account's alarms and rules")
            }
            // The address is the user's own manifest content; it is not a secret.
            Change::SubscribeEmail { email, .. } => write!(f, "alert topic: subscribe {email} (it must confirm)"),
            Change::CreateSuppression { filter, .. } => write!(
                f,
                "Inspector: suppress {} for {} ({}; reason: {})",
                filter.vulnerability_id,
                scope(filter),
                filter.description,
                filter.reason
            ),
            Change::UpdateSuppression { filter, .. } => write!(
                f,
                "Inspector: suppression of {} now for {} ({}; reason: {})",
                filter.vulnerability_id,
                scope(filter),
                filter.description,
                filter.reason
            ),
            Change::PutRule { rule, .. } => {
                write!(f, "EventBridge rule {}: {}", rule.name, rule.event_pattern.as_deref().unwrap_or_default())
            }
            Change::PutTarget { rule, target } => write!(f, "EventBridge rule {rule}: send to {}", target.arn),
            Change::DeleteSuppression { vulnerability_id, .. } => {
                write!(f, "Inspector: remove the suppression of {vulnerability_id} (expired or no longer in the spec)")
            }
            Change::PutMetricFilter { group, filter } => write!(
                f,
                "metric filter {} on {group}: count {} into {}/{}",
                filter.name, filter.pattern, filter.metric_namespace, filter.metric_name
            ),
            Change::PutAlarm { alarm, .. } => {
                write!(
                    f,
                    "alarm {}: {} of {}/{} >= {} in {} s, notify {}",
                    alarm.name,
                    alarm.statistic,
                    alarm.namespace,
                    alarm.metric_name,
                    alarm.threshold,
                    alarm.period_seconds,
                    if alarm.alarm_actions.is_empty() {
                        "nobody (no alert topic)".into()
                    } else {
                        alarm.alarm_actions.join(", ")
                    }
                )
            }
        }
    }
}
