//! The KMS operations lakeops uses.
use std::collections::BTreeMap;

use async_trait::async_trait;

use super::error::AwsResult;

/// What DescribeKey tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub key_id: String,
    pub arn: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub state: String,
    /// `CUSTOMER` or `AWS`.
    pub manager: String,
}

/// Rotation settings of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub enabled: bool,
    /// `RotationPeriodInDays`, when AWS reports it.
    pub period_days: Option<i32>,
}

/// The KMS calls lakeops makes; one AWS request each.
#[async_trait]
pub trait KmsApi: Send + Sync {
    /// DescribeKey by id, ARN or `alias/...`. `Ok(None)` when there is no such key or alias.
    async fn describe_key(&self, key: &str) -> AwsResult<Option<KeyInfo>>;
    /// CreateKey: symmetric, ENCRYPT_DECRYPT, with this policy and tags.
    async fn create_key(&self, description: &str, policy: &str, tags: &BTreeMap<String, String>) -> AwsResult<KeyInfo>;
    /// CreateAlias.
    async fn create_alias(&self, alias: &str, key_id: &str) -> AwsResult<()>;
    /// GetKeyRotationStatus.
    async fn get_rotation(&self, key_id: &str) -> AwsResult<Rotation>;
    /// EnableKeyRotation with RotationPeriodInDays.
    async fn enable_rotation(&self, key_id: &str, period_days: i32) -> AwsResult<()>;
    /// GetKeyPolicy (policy name `default`).
    async fn get_key_policy(&self, key_id: &str) -> AwsResult<String>;
    /// PutKeyPolicy (policy name `default`).
    async fn put_key_policy(&self, key_id: &str, policy: &str) -> AwsResult<()>;
    /// ListResourceTags (all pages).
    async fn list_tags(&self, key_id: &str) -> AwsResult<BTreeMap<String, String>>;
    /// TagResource.
    async fn tag(&self, key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
    /// ScheduleKeyDeletion with a pending window.
    async fn schedule_deletion(&self, key_id: &str, pending_days: i32) -> AwsResult<()>;
}
