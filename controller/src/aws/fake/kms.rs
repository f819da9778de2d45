//! KMS in the fake account: regional keys found by id, ARN or alias, with policy, rotation,
//! tags and state.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Fail, FakeAws, Resources, check_json, fail, merge_tags, none_if_missing};
use crate::aws::error::AwsResult;
use crate::aws::kms::{KeyInfo, KmsApi, Rotation};

const SERVICE: &str = "kms";
pub(super) const ENABLED: &str = "Enabled";
const PENDING_DELETION: &str = "PendingDeletion";

/// A customer managed key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub key_id: String,
    pub arn: String,
    pub region: String,
    pub description: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`.
    pub state: String,
    pub policy: String,
    pub tags: BTreeMap<String, String>,
    pub rotation_enabled: bool,
    pub rotation_period_days: Option<i32>,
    /// The waiting period ScheduleKeyDeletion was given.
    pub pending_window_days: Option<i32>,
}

impl Key {
    /// Key number `n` as CreateKey makes it: Enabled, rotation off.
    fn new(
        n: u64,
        region: &str,
        account: &str,
        description: &str,
        policy: &str,
        tags: &BTreeMap<String, String>,
    ) -> Self {
        let key_id = format!("{n:08x}-fa4e-4000-8000-{n:012x}");
        Self {
            arn: format!("arn:aws:kms:{region}:{account}:key/{key_id}"),
            key_id,
            region: region.to_string(),
            description: description.to_string(),
            state: ENABLED.to_string(),
            policy: policy.to_string(),
            tags: tags.clone(),
            rotation_enabled: false,
            rotation_period_days: None,
            pending_window_days: None,
        }
    }

    /// Not scheduled for deletion.
    pub fn is_live(&self) -> bool {
        self.state != PENDING_DELETION
    }

    fn info(&self) -> KeyInfo {
        KeyInfo {
            key_id: self.key_id.clone(),
            arn: self.arn.clone(),
            state: self.state.clone(),
            manager: "CUSTOMER".to_string(),
        }
    }
}

/// [`KmsApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeKms {
    aws: Arc<FakeAws>,
    region: String,
}

fn not_found(key: &str) -> Fail {
    fail("NotFoundException", 400, format!("Key '{key}' does not exist"))
}

fn invalid_state(key: &Key) -> Fail {
    fail("KMSInvalidStateException", 400, format!("{} is {}", key.arn, key.state.to_lowercase()))
}

/// The id of the key `key` names in `region`: id, key ARN, `alias/...` or alias ARN.
fn resolve(res: &Resources, account: &str, region: &str, key: &str) -> Option<String> {
    let local = match key.strip_prefix("arn:aws:kms:") {
        Some(rest) => {
            let (arn_region, rest) = rest.split_once(':')?;
            let (arn_account, resource) = rest.split_once(':')?;
            if arn_region != region || arn_account != account {
                return None;
            }
            resource
        }
        None => key,
    };
    let id = match local.strip_prefix("key/") {
        Some(id) => id.to_string(),
        None if local.starts_with("alias/") => res.aliases.get(&(region.to_string(), local.to_string()))?.clone(),
        None => local.to_string(),
    };
    res.keys.get(&id).filter(|k| k.region == region).map(|k| k.key_id.clone())
}

impl FakeKms {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }

    fn get<T>(&self, op: &'static str, key: &str, read: impl FnOnce(&Key) -> Result<T, Fail>) -> AwsResult<T> {
        self.aws.read(&self.region, SERVICE, op, key, |ctx| {
            let id = resolve(ctx.res, ctx.account, &self.region, key).ok_or_else(|| not_found(key))?;
            ctx.res.keys.get(&id).map_or_else(|| Err(not_found(key)), read)
        })
    }

    fn put<T>(&self, op: &'static str, key: &str, change: impl FnOnce(&mut Key) -> Result<T, Fail>) -> AwsResult<T> {
        self.aws.write(&self.region, SERVICE, op, key, |ctx| {
            let id = resolve(ctx.res, ctx.account, &self.region, key).ok_or_else(|| not_found(key))?;
            ctx.res.keys.get_mut(&id).map_or_else(|| Err(not_found(key)), change)
        })
    }

    /// The id of the key in this region tagged `tag=value` (a live one first). Logged as one
    /// read call (`ListKeys`); a real lookup lists the keys, then each key's tags.
    pub async fn find_key_by_tag(&self, tag: &str, value: &str) -> AwsResult<Option<String>> {
        self.aws.read(&self.region, SERVICE, "ListKeys", &format!("tag:{tag}={value}"), |ctx| {
            let mut matching: Vec<&Key> = ctx
                .res
                .keys
                .values()
                .filter(|k| k.region == self.region && k.tags.get(tag).is_some_and(|v| v == value))
                .collect();
            matching.sort_by_key(|k| !k.is_live());
            Ok(matching.first().map(|k| k.key_id.clone()))
        })
    }
}

#[async_trait]
impl KmsApi for FakeKms {
    async fn find_key_by_tag(&self, tag_key: &str, tag_value: &str) -> AwsResult<Option<String>> {
        FakeKms::find_key_by_tag(self, tag_key, tag_value).await
    }

    async fn aliases(&self, prefix: &str) -> AwsResult<Vec<(String, String)>> {
        self.aws.read(&self.region, SERVICE, "ListAliases", prefix, |ctx| {
            Ok(ctx
                .res
                .aliases
                .iter()
                .filter(|((region, alias), _)| *region == self.region && alias.starts_with(prefix))
                .map(|((_, alias), id)| (alias.clone(), id.clone()))
                .collect())
        })
    }

    async fn describe_key(&self, key: &str) -> AwsResult<Option<KeyInfo>> {
        none_if_missing(self.get("DescribeKey", key, |k| Ok(k.info())))
    }

    async fn create_key(&self, description: &str, policy: &str, tags: &BTreeMap<String, String>) -> AwsResult<KeyInfo> {
        self.aws.write(&self.region, SERVICE, "CreateKey", description, |ctx| {
            check_json(policy, "MalformedPolicyDocumentException")?;
            let key = Key::new(ctx.next_id(), ctx.region, ctx.account, description, policy, tags);
            let info = key.info();
            ctx.res.keys.insert(key.key_id.clone(), key);
            Ok(info)
        })
    }

    async fn create_alias(&self, alias: &str, key_id: &str) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "CreateAlias", alias, |ctx| {
            if !alias.starts_with("alias/") || alias.starts_with("alias/aws/") {
                return Err(fail(
                    "ValidationException",
                    400,
                    format!("Alias must start with alias/ and not alias/aws/: {alias}"),
                ));
            }
            let name = (ctx.region.to_string(), alias.to_string());
            if let Some(target) = ctx.res.aliases.get(&name) {
                // As the SDK adapter: our own retried create (the alias already names this
                // key) is success.
                if resolve(ctx.res, ctx.account, ctx.region, key_id).as_ref() == Some(target) {
                    return Ok(());
                }
                return Err(fail(
                    "AlreadyExistsException",
                    400,
                    format!("An alias with the name {alias} already exists"),
                ));
            }
            // The target is a key id or ARN, never another alias.
            let id = (!key_id.contains("alias/"))
                .then(|| resolve(ctx.res, ctx.account, ctx.region, key_id))
                .flatten()
                .ok_or_else(|| not_found(key_id))?;
            let key = ctx.res.keys.get(&id).ok_or_else(|| not_found(key_id))?;
            if !key.is_live() {
                return Err(invalid_state(key));
            }
            ctx.res.aliases.insert(name, id);
            Ok(())
        })
    }

    async fn get_rotation(&self, key_id: &str) -> AwsResult<Rotation> {
        self.get("GetKeyRotationStatus", key_id, |k| {
            if !k.is_live() {
                return Err(invalid_state(k));
            }
            Ok(Rotation {
                enabled: k.rotation_enabled,
                period_days: k.rotation_period_days.filter(|_| k.rotation_enabled),
            })
        })
    }

    async fn enable_rotation(&self, key_id: &str, period_days: i32) -> AwsResult<()> {
        self.put("EnableKeyRotation", key_id, |k| {
            if k.state != ENABLED {
                return Err(invalid_state(k));
            }
            if !(90..=2560).contains(&period_days) {
                return Err(fail("ValidationException", 400, "RotationPeriodInDays must be between 90 and 2560"));
            }
            k.rotation_enabled = true;
            k.rotation_period_days = Some(period_days);
            Ok(())
        })
    }

    async fn get_key_policy(&self, key_id: &str) -> AwsResult<String> {
        self.get("GetKeyPolicy", key_id, |k| Ok(k.policy.clone()))
    }

    async fn put_key_policy(&self, key_id: &str, policy: &str) -> AwsResult<()> {
        self.put("PutKeyPolicy", key_id, |k| {
            check_json(policy, "MalformedPolicyDocumentException")?;
            k.policy = policy.to_string();
            Ok(())
        })
    }

    async fn list_tags(&self, key_id: &str) -> AwsResult<BTreeMap<String, String>> {
        self.get("ListResourceTags", key_id, |k| Ok(k.tags.clone()))
    }

    async fn tag(&self, key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.put("TagResource", key_id, |k| {
            if !k.is_live() {
                return Err(invalid_state(k));
            }
            merge_tags(&mut k.tags, tags);
            Ok(())
        })
    }

    async fn schedule_deletion(&self, key_id: &str, pending_days: i32) -> AwsResult<()> {
        self.put("ScheduleKeyDeletion", key_id, |k| {
            if !k.is_live() {
                return Err(invalid_state(k));
            }
            if !(7..=30).contains(&pending_days) {
                return Err(fail("ValidationException", 400, "PendingWindowInDays must be between 7 and 30"));
            }
            k.state = PENDING_DELETION.to_string();
            k.pending_window_days = Some(pending_days);
            Ok(())
        })
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// A key in `region` (Enabled, rotation off, this policy and tags), with `alias` when
    /// given. Returns its id.
    pub fn with_key(&self, region: &str, alias: Option<&str>, policy: &str, tags: &BTreeMap<String, String>) -> String {
        let key = Key::new(self.next_id(), region, &self.account, "", policy, tags);
        let key_id = key.key_id.clone();
        self.edit(|r| {
            r.keys.insert(key_id.clone(), key);
            if let Some(alias) = alias {
                r.aliases.insert((region.to_string(), alias.to_string()), key_id.clone());
            }
        });
        key_id
    }

    /// Changes the key that `key` (id, ARN or alias) names in `region`; `None` when none.
    pub fn edit_key<R>(&self, region: &str, key: &str, change: impl FnOnce(&mut Key) -> R) -> Option<R> {
        let account = self.account.clone();
        self.edit(|r| {
            let id = resolve(r, &account, region, key)?;
            r.keys.get_mut(&id).map(change)
        })
    }

    /// A copy of the key that `key` (id, ARN or alias) names in `region`.
    pub fn key(&self, region: &str, key: &str) -> Option<Key> {
        let w = self.world();
        let id = resolve(&w.now, &self.account, region, key)?;
        w.now.keys.get(&id).cloned()
    }

    /// Removes an alias (the key stays). True when it existed.
    pub fn remove_alias(&self, region: &str, alias: &str) -> bool {
        self.edit(|r| r.aliases.remove(&(region.to_string(), alias.to_string())).is_some())
    }
}
