//! The DynamoDB operations lakeops uses.
use std::collections::BTreeMap;

use async_trait::async_trait;

use super::error::AwsResult;

/// A key attribute: name and scalar type (`S`, `N`, `B`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDef {
    pub name: String,
    pub type_: String,
}

/// What CreateTable needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDef {
    pub name: String,
    pub partition_key: KeyDef,
    pub sort_key: Option<KeyDef>,
    /// SSE with this customer-managed key.
    pub kms_key_arn: String,
    pub tags: BTreeMap<String, String>,
}

/// A replica as DescribeTable reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub region: String,
    pub status: String,
}

/// What DescribeTable tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableInfo {
    pub arn: String,
    /// `CREATING`, `ACTIVE`, `UPDATING`, ...
    pub status: String,
    /// `PAY_PER_REQUEST` or `PROVISIONED` (None when AWS omits it: provisioned).
    pub billing_mode: Option<String>,
    /// SSE status `ENABLED`/`ENABLING`... and the key, when SSE uses a KMS key.
    pub sse_status: Option<String>,
    pub sse_kms_key_arn: Option<String>,
    pub deletion_protection: bool,
    pub stream_enabled: bool,
    pub stream_view_type: Option<String>,
    pub item_count: Option<i64>,
    pub replicas: Vec<Replica>,
}

/// Changes UpdateTable can make at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableUpdate {
    pub billing_pay_per_request: bool,
    pub deletion_protection: Option<bool>,
    /// Switch SSE to this KMS key.
    pub sse_kms_key_arn: Option<String>,
    /// Enable the stream with NEW_AND_OLD_IMAGES.
    pub enable_stream: bool,
}

/// The DynamoDB calls lakeops makes; one AWS request each unless said otherwise.
#[async_trait]
pub trait DynamoApi: Send + Sync {
    /// DescribeTable. `Ok(None)` when the table does not exist.
    async fn describe_table(&self, name: &str) -> AwsResult<Option<TableInfo>>;
    /// CreateTable: PAY_PER_REQUEST, SSE KMS with the given key, deletion protection on,
    /// stream NEW_AND_OLD_IMAGES (ready for global-table replicas), tags.
    async fn create_table(&self, def: &TableDef) -> AwsResult<TableInfo>;
    /// UpdateTable with whatever `update` sets.
    async fn update_table(&self, name: &str, update: &TableUpdate) -> AwsResult<()>;
    /// DescribeContinuousBackups: whether point-in-time recovery is enabled.
    async fn get_pitr(&self, name: &str) -> AwsResult<bool>;
    /// UpdateContinuousBackups.
    async fn set_pitr(&self, name: &str, enabled: bool) -> AwsResult<()>;
    /// DescribeTimeToLive: the attribute when TTL is ENABLED/ENABLING.
    async fn get_ttl(&self, name: &str) -> AwsResult<Option<String>>;
    /// UpdateTimeToLive.
    async fn set_ttl(&self, name: &str, attribute: &str, enabled: bool) -> AwsResult<()>;
    /// ListTagsOfResource (all pages).
    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>>;
    /// TagResource.
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
    /// Whether the table holds any item (Scan, Limit 1, keys only).
    async fn has_items(&self, name: &str) -> AwsResult<bool>;
    /// DeleteTable.
    async fn delete_table(&self, name: &str) -> AwsResult<()>;
}
