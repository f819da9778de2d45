//! The managed KMS key step, shared by the DataLake key and BackupPolicy's replica keys:
//! found by its alias (or the ARN status recorded, or its creation token after a create
//! whose answer was lost), checked for ownership, created with its policy and tags, aliased,
//! and its rotation and policy converged.
use std::collections::BTreeMap;
use std::fmt;

use crate::aws::error::AwsResult;
use crate::aws::kms::{KeyInfo, KmsApi, Rotation};
use crate::policy::PolicyDocument;

use super::{Action, Describe, Exec, Stop, intent};

/// A key lakeops creates and manages.
#[derive(Clone, Debug)]
pub struct ManagedKey {
    pub alias: String,
    pub region: String,
    pub description: String,
    pub rotation_days: i32,
    pub policy: PolicyDocument,
    pub tags: BTreeMap<String, String>,
    /// How plans name the key before it exists (`lake key`, `replica key in eu-central-1`).
    pub what: String,
    /// The creation token sent as a tag at create, when an intent is recorded.
    pub token: Option<String>,
}

/// What was read of a key.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedKey {
    pub info: KeyInfo,
    pub rotation: Rotation,
    pub policy: String,
}

/// A key by id, ARN or alias: DescribeKey, then rotation and policy (3 reads).
pub async fn read(kms: &dyn KmsApi, key: &str) -> AwsResult<Option<ObservedKey>> {
    let Some(info) = kms.describe_key(key).await? else { return Ok(None) };
    let (rotation, policy) = futures::try_join!(kms.get_rotation(&info.key_id), kms.get_key_policy(&info.key_id))?;
    Ok(Some(ObservedKey { info, rotation, policy }))
}

/// One KMS write.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyChange {
    CreateKey { alias: String, region: String, description: String, policy: String, tags: BTreeMap<String, String> },
    CreateAlias { alias: String, key_id: String },
    EnableRotation { key_id: String, days: i32 },
    PutPolicy { key_id: String, policy: String },
}

impl Describe for KeyChange {
    fn setting(&self) -> &'static str {
        match self {
            KeyChange::CreateKey { .. } => "key",
            KeyChange::CreateAlias { .. } => "key alias",
            KeyChange::EnableRotation { .. } => "key rotation",
            KeyChange::PutPolicy { .. } => "key policy",
        }
    }

    fn resource(&self) -> &str {
        match self {
            KeyChange::CreateKey { alias, .. } | KeyChange::CreateAlias { alias, .. } => alias,
            KeyChange::EnableRotation { key_id, .. } | KeyChange::PutPolicy { key_id, .. } => key_id,
        }
    }

    fn weakens(&self) -> bool {
        false
    }

    fn action(&self) -> Option<Action> {
        match self {
            KeyChange::CreateKey { .. } => Some(Action::Create),
            KeyChange::CreateAlias { .. } | KeyChange::EnableRotation { .. } | KeyChange::PutPolicy { .. } => None,
        }
    }
}

impl fmt::Display for KeyChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyChange::CreateKey { alias, region, .. } => {
                write!(f, "create KMS key {alias} in {region} with its key policy and tags")
            }
            KeyChange::CreateAlias { alias, key_id } => write!(f, "key {key_id}: alias {alias}"),
            KeyChange::EnableRotation { key_id, days } => {
                write!(f, "key {key_id}: enable automatic rotation every {days} days")
            }
            KeyChange::PutPolicy { key_id, .. } => write!(f, "key {key_id}: set the key policy"),
        }
    }
}

/// Sends one key change. Returns the new key's ARN for CreateKey.
pub async fn apply(kms: &dyn KmsApi, change: &KeyChange) -> AwsResult<Option<String>> {
    match change {
        KeyChange::CreateKey { description, policy, tags, .. } => {
            kms.create_key(description, policy, tags).await.map(|k| Some(k.arn))
        }
        KeyChange::CreateAlias { alias, key_id } => kms.create_alias(alias, key_id).await.map(|()| None),
        KeyChange::EnableRotation { key_id, days } => kms.enable_rotation(key_id, *days).await.map(|()| None),
        KeyChange::PutPolicy { key_id, policy } => kms.put_key_policy(key_id, policy).await.map(|()| None),
    }
}

/// Changes that bring an existing key's rotation and policy in line.
pub fn settings_changes(key: &ObservedKey, rotation_days: i32, policy: &PolicyDocument) -> Vec<KeyChange> {
    let mut out = Vec::new();
    let period_differs = key.rotation.period_days.is_some_and(|p| p != rotation_days);
    if !key.rotation.enabled || period_differs {
        out.push(KeyChange::EnableRotation { key_id: key.info.key_id.clone(), days: rotation_days });
    }
    if !policy.matches_json(&key.policy) {
        out.push(KeyChange::PutPolicy { key_id: key.info.key_id.clone(), policy: policy.to_json() });
    }
    out
}

/// What the observe phase found: the key, and whether its alias must be (re)created.
#[derive(Clone, Debug)]
pub struct KeyState {
    pub observed: Option<ObservedKey>,
    pub alias_missing: bool,
    /// Found by its creation token: our own create whose answer was lost, or that a crash
    /// interrupted. Finishing it (alias, rotation) is not drift.
    pub resumed: bool,
}

impl KeyState {
    /// True when the converge phase will send CreateKey: the caller records the intent first.
    pub fn creates(&self) -> bool {
        self.observed.is_none()
    }
}

/// Reads the key: by alias; else by the ARN status recorded (the alias step was interrupted,
/// or someone removed the alias); else, when an intent was recorded without an ARN, by its
/// creation token (a create whose answer was lost). Checks ownership at first sight.
pub async fn observe<S: Sync>(
    exec: &Exec<'_, S>,
    kms: &dyn KmsApi,
    want: &ManagedKey,
    recorded: Option<&str>,
    token_recorded: bool,
) -> Result<KeyState, Stop> {
    let by_alias = read(kms, &want.alias).await?;
    let (observed, alias_missing, resumed) = match (by_alias, recorded, &want.token) {
        (Some(k), ..) => (Some(k), false, false),
        (None, Some(arn), _) => (read(kms, arn).await?, true, false),
        (None, None, Some(token)) if token_recorded => match intent::find_key(kms, token).await? {
            Some(id) => (read(kms, &id).await?, true, true),
            None => (None, true, false),
        },
        (None, None, _) => (None, true, false),
    };
    if let Some(k) = &observed {
        if recorded != Some(k.info.arn.as_str()) {
            // First sight of a key found by its alias or token: is it ours?
            let tags = kms.list_tags(&k.info.key_id).await?;
            exec.owned(&format!("KMS key {}", want.alias), &tags)?;
        }
        if k.info.state == "PendingDeletion" {
            exec.blocked(
                &want.alias,
                Stop::not_owned(format!(
                    "KMS key {} is scheduled for deletion; cancel the deletion (kms cancel-key-deletion) and re-enable it",
                    k.info.arn
                )),
            )?;
        }
    }
    Ok(KeyState { observed, alias_missing, resumed })
}

/// Creates the key when it does not exist (the caller recorded the intent), aliases it,
/// and converges rotation and policy. Returns its ARN, or a placeholder when planning a
/// key that does not exist yet. What CreateKey set (the policy) counts as observed.
pub async fn converge<S: Sync>(
    exec: &Exec<'_, S>,
    kms: &dyn KmsApi,
    want: &ManagedKey,
    state: KeyState,
) -> Result<String, Stop> {
    // Settings of a key we are still creating are part of the create, not drift.
    let existed = state.observed.is_some() && !state.resumed;
    let label = format!("key {}", want.alias);
    let observed = match state.observed {
        Some(k) => k,
        None => {
            let mut tags = want.tags.clone();
            if let Some(token) = &want.token {
                tags.insert(intent::CREATION_TOKEN_TAG.to_string(), token.clone());
            }
            let create = KeyChange::CreateKey {
                alias: want.alias.clone(),
                region: want.region.clone(),
                description: want.description.clone(),
                policy: want.policy.to_json(),
                tags,
            };
            let arn = exec.change(&create, false, &label, apply(kms, &create)).await?;
            let arn = arn.unwrap_or_else(|| super::placeholder(&want.what));
            // The key id is the last segment of the ARN (a placeholder stands for both).
            let key_id = if super::is_placeholder(&arn) { arn.clone() } else { key_id_of(&arn) };
            let info = KeyInfo { key_id, arn, state: "Enabled".into(), manager: "CUSTOMER".into() };
            ObservedKey {
                info,
                rotation: Rotation { enabled: false, period_days: None },
                policy: want.policy.to_json(),
            }
        }
    };
    let mut changes = Vec::new();
    if state.alias_missing {
        changes.push(KeyChange::CreateAlias { alias: want.alias.clone(), key_id: observed.info.key_id.clone() });
    }
    changes.extend(settings_changes(&observed, want.rotation_days, &want.policy));
    // Alias, rotation and policy are independent settings of one key: sent at once.
    futures::future::try_join_all(changes.iter().map(|c| exec.change(c, existed, &label, apply(kms, c)))).await?;
    Ok(observed.info.arn)
}

/// `key/<id>` of a key ARN.
fn key_id_of(arn: &str) -> String {
    arn.rsplit('/').next().unwrap_or(arn).to_string()
}
