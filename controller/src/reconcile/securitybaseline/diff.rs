//! The SecurityBaseline's own changes (GuardDuty, Inspector, Config), one AWS call each.
//! Its key and bucket changes are the engine's and the DataLake's. There is no change that
//! disables, stops or deletes anything: the type cannot express one.
use std::collections::BTreeMap;
use std::fmt;

use crate::aws::config::{Channel, Recorder};
use crate::aws::guardduty::DetectorSettings;
use crate::engine::{Action, describe_with_inherent};

/// One write.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    CreateDetector { settings: DetectorSettings, tags: BTreeMap<String, String> },
    UpdateDetector { id: String, settings: DetectorSettings },
    EnableInspector { account: String, types: Vec<&'static str> },
    PutRecorder { recorder: Recorder },
    PutChannel { channel: Channel },
    StartRecorder { name: String },
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
        }
    }

    /// Nothing here weakens protection.
    pub fn weakens(&self) -> bool {
        false
    }
}

fn action(change: &Change) -> Option<Action> {
    matches!(change, Change::CreateDetector { .. }).then_some(Action::Create)
}

describe_with_inherent!(Change, action);

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
        }
    }
}
