//! DynamoDB in the fake account: tables with status, SSE, deletion protection, stream, PITR,
//! TTL, tags, item presence and global-table replicas.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Fail, FakeAws, Resources, fail, merge_tags, none_if_missing};
use crate::aws::dynamodb::{DynamoApi, KeyDef, Replica, TableDef, TableInfo, TableUpdate};
use crate::aws::error::AwsResult;

const SERVICE: &str = "dynamodb";
const ACTIVE: &str = "ACTIVE";
const NEW_AND_OLD_IMAGES: &str = "NEW_AND_OLD_IMAGES";

/// A replica of a global table, as the source table lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaState {
    pub region: String,
    pub kms_key_arn: String,
    /// `CREATING` until this call index, then `ACTIVE`.
    pub settles_at: usize,
}

/// A table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub region: String,
    pub arn: String,
    pub partition_key: KeyDef,
    pub sort_key: Option<KeyDef>,
    /// `PAY_PER_REQUEST` or `PROVISIONED`.
    pub billing_mode: Option<String>,
    /// The customer managed key of SSE; `None`: an AWS owned key (no SSE description).
    pub sse_kms_key_arn: Option<String>,
    pub deletion_protection: bool,
    /// The stream's view type when a stream is enabled.
    pub stream_view_type: Option<String>,
    pub pitr: bool,
    /// The TTL attribute when TTL is enabled.
    pub ttl_attribute: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub items: usize,
    pub replicas: Vec<ReplicaState>,
    /// The status reported until `settles_at` (`CREATING`, `UPDATING`); `ACTIVE` after.
    pub transition: String,
    pub settles_at: usize,
}

impl Table {
    /// A table as CreateTable leaves it once ACTIVE.
    pub fn new(region: &str, account: &str, def: &TableDef) -> Self {
        Self {
            name: def.name.clone(),
            region: region.to_string(),
            arn: format!("arn:aws:dynamodb:{region}:{account}:table/{}", def.name),
            partition_key: def.partition_key.clone(),
            sort_key: def.sort_key.clone(),
            billing_mode: Some("PAY_PER_REQUEST".to_string()),
            sse_kms_key_arn: Some(def.kms_key_arn.clone()),
            deletion_protection: true,
            stream_view_type: Some(NEW_AND_OLD_IMAGES.to_string()),
            pitr: false,
            ttl_attribute: None,
            tags: def.tags.clone(),
            items: 0,
            replicas: Vec::new(),
            transition: ACTIVE.to_string(),
            settles_at: 0,
        }
    }

    fn status(&self, index: usize) -> &str {
        if index < self.settles_at { &self.transition } else { ACTIVE }
    }

    fn info(&self, index: usize) -> TableInfo {
        TableInfo {
            arn: self.arn.clone(),
            status: self.status(index).to_string(),
            billing_mode: self.billing_mode.clone(),
            sse_status: self.sse_kms_key_arn.as_ref().map(|_| "ENABLED".to_string()),
            sse_kms_key_arn: self.sse_kms_key_arn.clone(),
            deletion_protection: self.deletion_protection,
            stream_enabled: self.stream_view_type.is_some(),
            stream_view_type: self.stream_view_type.clone(),
            item_count: i64::try_from(self.items).ok(),
            replicas: self
                .replicas
                .iter()
                .map(|r| Replica {
                    region: r.region.clone(),
                    status: if index < r.settles_at { "CREATING" } else { ACTIVE }.to_string(),
                })
                .collect(),
        }
    }
}

/// [`DynamoApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeDynamo {
    aws: Arc<FakeAws>,
    region: String,
}

fn not_found(name: &str) -> Fail {
    fail("ResourceNotFoundException", 400, format!("Requested resource not found: Table: {name} not found"))
}

fn in_use(name: &str, status: &str) -> Fail {
    fail("ResourceInUseException", 400, format!("Table {name} is being updated (status {status})"))
}

fn validation(message: impl Into<String>) -> Fail {
    fail("ValidationException", 400, message)
}

fn by_arn<'a>(res: &'a mut Resources, region: &str, arn: &str) -> Option<&'a mut Table> {
    res.tables.values_mut().find(|t| t.region == region && t.arn == arn)
}

impl FakeDynamo {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }

    fn id(&self, name: &str) -> (String, String) {
        (self.region.clone(), name.to_string())
    }

    /// A read of table `name`; `missing` is AWS's answer when there is none.
    fn get<T>(
        &self,
        op: &'static str,
        name: &str,
        missing: fn(&str) -> Fail,
        read: impl FnOnce(&Table, usize) -> Result<T, Fail>,
    ) -> AwsResult<T> {
        self.aws.read(&self.region, SERVICE, op, name, |ctx| match ctx.res.tables.get(&self.id(name)) {
            Some(t) => read(t, ctx.index),
            None => Err(missing(name)),
        })
    }

    /// A write to table `name`, refused while it is not ACTIVE when `needs_active`.
    fn put<T>(
        &self,
        op: &'static str,
        name: &str,
        missing: fn(&str) -> Fail,
        needs_active: bool,
        change: impl FnOnce(&mut Table, usize, usize) -> Result<T, Fail>,
    ) -> AwsResult<T> {
        self.aws.write(&self.region, SERVICE, op, name, |ctx| {
            let (index, settles_at) = (ctx.index, ctx.settles_at);
            let table = ctx.res.tables.get_mut(&self.id(name)).ok_or_else(|| missing(name))?;
            if needs_active && table.status(index) != ACTIVE {
                return Err(in_use(name, table.status(index)));
            }
            change(table, index, settles_at)
        })
    }
}

fn table_not_found(name: &str) -> Fail {
    fail("TableNotFoundException", 400, format!("Table not found: {name}"))
}

#[async_trait]
impl DynamoApi for FakeDynamo {
    async fn describe_table(&self, name: &str) -> AwsResult<Option<TableInfo>> {
        none_if_missing(self.get("DescribeTable", name, not_found, |t, index| Ok(t.info(index))))
    }

    async fn create_table(&self, def: &TableDef) -> AwsResult<TableInfo> {
        self.aws.write(&self.region, SERVICE, "CreateTable", &def.name, |ctx| {
            let id = (ctx.region.to_string(), def.name.clone());
            if ctx.res.tables.contains_key(&id) {
                return Err(fail("ResourceInUseException", 400, format!("Table already exists: {}", def.name)));
            }
            for key in std::iter::once(&def.partition_key).chain(&def.sort_key) {
                if !["S", "N", "B"].contains(&key.type_.as_str()) {
                    return Err(validation(format!("key attribute {} has type {:?}", key.name, key.type_)));
                }
            }
            let mut table = Table::new(ctx.region, ctx.account, def);
            table.transition = "CREATING".to_string();
            table.settles_at = ctx.settles_at;
            let info = table.info(ctx.index);
            ctx.res.tables.insert(id, table);
            Ok(info)
        })
    }

    async fn update_table(&self, name: &str, update: &TableUpdate) -> AwsResult<()> {
        // As the adapter: an update that sets nothing sends no request.
        if *update == TableUpdate::default() {
            return Ok(());
        }
        self.put("UpdateTable", name, not_found, true, |t, _, settles_at| {
            if update.enable_stream && t.stream_view_type.is_some() {
                return Err(validation(format!("Table already has an enabled stream: {}", t.arn)));
            }
            if update.sse_kms_key_arn.is_some() && update.sse_kms_key_arn == t.sse_kms_key_arn {
                return Err(validation("Table is already encrypted by given KMSMasterKeyId"));
            }
            if update.billing_pay_per_request {
                t.billing_mode = Some("PAY_PER_REQUEST".to_string());
            }
            if let Some(on) = update.deletion_protection {
                t.deletion_protection = on;
            }
            if let Some(key) = &update.sse_kms_key_arn {
                t.sse_kms_key_arn = Some(key.clone());
            }
            if update.enable_stream {
                t.stream_view_type = Some(NEW_AND_OLD_IMAGES.to_string());
            }
            t.transition = "UPDATING".to_string();
            t.settles_at = settles_at;
            Ok(())
        })
    }

    async fn get_pitr(&self, name: &str) -> AwsResult<bool> {
        self.get("DescribeContinuousBackups", name, table_not_found, |t, _| Ok(t.pitr))
    }

    async fn set_pitr(&self, name: &str, enabled: bool) -> AwsResult<()> {
        self.put("UpdateContinuousBackups", name, table_not_found, false, |t, _, _| {
            t.pitr = enabled;
            Ok(())
        })
    }

    async fn get_ttl(&self, name: &str) -> AwsResult<Option<String>> {
        self.get("DescribeTimeToLive", name, not_found, |t, _| Ok(t.ttl_attribute.clone()))
    }

    async fn set_ttl(&self, name: &str, attribute: &str, enabled: bool) -> AwsResult<()> {
        self.put("UpdateTimeToLive", name, not_found, false, |t, _, _| {
            match (&t.ttl_attribute, enabled) {
                (Some(_), true) => return Err(validation("TimeToLive is already enabled")),
                (None, false) => return Err(validation("TimeToLive is already disabled")),
                (Some(current), false) if current != attribute => {
                    return Err(validation(format!("TimeToLive is enabled on attribute {current}, not {attribute}")));
                }
                _ => {}
            }
            t.ttl_attribute = enabled.then(|| attribute.to_string());
            Ok(())
        })
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        self.aws.read(&self.region, SERVICE, "ListTagsOfResource", arn, |ctx| {
            let table = ctx.res.tables.values().find(|t| t.region == self.region && t.arn == arn);
            table.map(|t| t.tags.clone()).ok_or_else(|| not_found(arn))
        })
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "TagResource", arn, |ctx| {
            let table = by_arn(ctx.res, &self.region, arn).ok_or_else(|| not_found(arn))?;
            merge_tags(&mut table.tags, tags);
            Ok(())
        })
    }

    async fn has_items(&self, name: &str) -> AwsResult<bool> {
        self.get("Scan", name, not_found, |t, _| Ok(t.items > 0))
    }

    async fn delete_table(&self, name: &str) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "DeleteTable", name, |ctx| {
            let id = self.id(name);
            let table = ctx.res.tables.get(&id).ok_or_else(|| not_found(name))?;
            if table.deletion_protection {
                return Err(validation(format!(
                    "Resource cannot be deleted as it is currently protected against deletion: {}",
                    table.arn
                )));
            }
            if table.status(ctx.index) != ACTIVE {
                return Err(in_use(name, table.status(ctx.index)));
            }
            ctx.res.tables.remove(&id);
            Ok(())
        })
    }

    async fn create_replica(&self, name: &str, region: &str, kms_key_arn: &str) -> AwsResult<()> {
        self.put("UpdateTable", name, not_found, true, |t, _, settles_at| {
            if region == t.region || t.replicas.iter().any(|r| r.region == region) {
                return Err(validation(format!(
                    "Failed to create a new replica of table {name}: one already exists in {region}"
                )));
            }
            if t.stream_view_type.as_deref() != Some(NEW_AND_OLD_IMAGES) {
                return Err(validation("Table must have DynamoDB Streams enabled with NEW_AND_OLD_IMAGES"));
            }
            t.replicas.push(ReplicaState {
                region: region.to_string(),
                kms_key_arn: kms_key_arn.to_string(),
                settles_at,
            });
            Ok(())
        })
    }

    async fn delete_replica(&self, name: &str, region: &str) -> AwsResult<()> {
        self.put("UpdateTable", name, not_found, true, |t, _, _| {
            let before = t.replicas.len();
            t.replicas.retain(|r| r.region != region);
            if t.replicas.len() == before {
                return Err(validation(format!("Replica specified in the Replica Update or Replica Delete action of the request was not found: {region}")));
            }
            Ok(())
        })
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// An ACTIVE table in `region` as CreateTable makes it from `def`.
    pub fn with_table(&self, region: &str, def: &TableDef) {
        let table = Table::new(region, &self.account, def);
        self.edit(|r| r.tables.insert((region.to_string(), def.name.clone()), table));
    }

    /// Changes one table; `None` when there is no such table.
    pub fn edit_table<R>(&self, region: &str, name: &str, change: impl FnOnce(&mut Table) -> R) -> Option<R> {
        self.edit(|r| r.tables.get_mut(&(region.to_string(), name.to_string())).map(change))
    }

    /// A copy of one table as it is now.
    pub fn table(&self, region: &str, name: &str) -> Option<Table> {
        self.world().now.tables.get(&(region.to_string(), name.to_string())).cloned()
    }
}
