//! The DynamoDB operations lakeops uses.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateReplicationGroupMemberAction, DeleteReplicationGroupMemberAction,
    KeySchemaElement, KeyType, PointInTimeRecoverySpecification, PointInTimeRecoveryStatus, ReplicationGroupUpdate,
    ScalarAttributeType, Select, SseSpecification, SseType, StreamSpecification, StreamViewType, TableDescription, Tag,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::error::operation::BuildError;

use super::error::{AwsError, AwsResult};

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

    // Backup (BackupPolicy): global-table replicas (version 2019.11.21).
    /// UpdateTable with one `ReplicaUpdates` Create for `region`, the replica encrypted with
    /// `kms_key_arn` (a key in that region). DynamoDB takes one replica change at a time.
    async fn create_replica(&self, name: &str, region: &str, kms_key_arn: &str) -> AwsResult<()>;
    /// UpdateTable with one `ReplicaUpdates` Delete for `region`.
    async fn delete_replica(&self, name: &str, region: &str) -> AwsResult<()>;
}

/// [`DynamoApi`] on the AWS SDK.
pub struct SdkDynamo {
    client: aws_sdk_dynamodb::Client,
}

impl SdkDynamo {
    pub fn new(client: aws_sdk_dynamodb::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("dynamodb", operation, resource, err)
}

/// A request lakeops could not even build (a required field the caller left out).
fn build_error(operation: &'static str, resource: &str, err: BuildError) -> AwsError {
    AwsError::classify("dynamodb", operation, resource, Some("InvalidParameter"), Some(&err.to_string()), None)
}

/// A success response that lacks something lakeops needs.
fn incomplete(operation: &'static str, resource: &str, what: &str) -> AwsError {
    AwsError::classify("dynamodb", operation, resource, None, Some(&format!("the response has no {what}")), None)
}

fn table_info(operation: &'static str, resource: &str, table: Option<&TableDescription>) -> AwsResult<TableInfo> {
    let table = table.ok_or_else(|| incomplete(operation, resource, "table description"))?;
    let stream = table.stream_specification();
    Ok(TableInfo {
        arn: table.table_arn().ok_or_else(|| incomplete(operation, resource, "table ARN"))?.to_string(),
        status: table.table_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
        billing_mode: table.billing_mode_summary().and_then(|b| b.billing_mode()).map(|m| m.as_str().to_string()),
        sse_status: table.sse_description().and_then(|s| s.status()).map(|s| s.as_str().to_string()),
        sse_kms_key_arn: table.sse_description().and_then(|s| s.kms_master_key_arn()).map(str::to_string),
        deletion_protection: table.deletion_protection_enabled().unwrap_or(false),
        stream_enabled: stream.is_some_and(|s| s.stream_enabled()),
        stream_view_type: stream.and_then(|s| s.stream_view_type()).map(|v| v.as_str().to_string()),
        item_count: table.item_count(),
        replicas: table
            .replicas()
            .iter()
            .map(|r| Replica {
                region: r.region_name().unwrap_or_default().to_string(),
                status: r.replica_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            })
            .collect(),
    })
}

fn attribute_type(operation: &'static str, resource: &str, key: &KeyDef) -> AwsResult<ScalarAttributeType> {
    match key.type_.as_str() {
        "S" => Ok(ScalarAttributeType::S),
        "N" => Ok(ScalarAttributeType::N),
        "B" => Ok(ScalarAttributeType::B),
        other => Err(AwsError::classify(
            "dynamodb",
            operation,
            resource,
            Some("InvalidAttributeType"),
            Some(&format!("key attribute {} has type {other:?}; expected S, N or B", key.name)),
            None,
        )),
    }
}

fn sdk_tags(operation: &'static str, resource: &str, tags: &BTreeMap<String, String>) -> AwsResult<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| build_error(operation, resource, e)))
        .collect()
}

fn new_and_old_images_stream(operation: &'static str, resource: &str) -> AwsResult<StreamSpecification> {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .map_err(|e| build_error(operation, resource, e))
}

fn kms_sse(key_arn: &str) -> SseSpecification {
    SseSpecification::builder().enabled(true).sse_type(SseType::Kms).kms_master_key_id(key_arn).build()
}

#[async_trait]
impl DynamoApi for SdkDynamo {
    async fn describe_table(&self, name: &str) -> AwsResult<Option<TableInfo>> {
        const OP: &str = "DescribeTable";
        match self.client.describe_table().table_name(name).send().await {
            Ok(out) => table_info(OP, name, out.table()).map(Some),
            // By type as well as by code: a modeled error need not carry its code.
            Err(e) if e.as_service_error().is_some_and(DescribeTableError::is_resource_not_found_exception) => Ok(None),
            Err(e) => match sdk_error(OP, name, &e) {
                err if err.is_not_found() => Ok(None),
                err => Err(err),
            },
        }
    }

    async fn create_table(&self, def: &TableDef) -> AwsResult<TableInfo> {
        const OP: &str = "CreateTable";
        let name = def.name.as_str();
        let mut keys = vec![(&def.partition_key, KeyType::Hash)];
        keys.extend(def.sort_key.as_ref().map(|k| (k, KeyType::Range)));
        let mut request = self
            .client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .sse_specification(kms_sse(&def.kms_key_arn))
            .deletion_protection_enabled(true)
            .stream_specification(new_and_old_images_stream(OP, name)?);
        for (key, key_type) in keys {
            let attribute = AttributeDefinition::builder()
                .attribute_name(&key.name)
                .attribute_type(attribute_type(OP, name, key)?)
                .build()
                .map_err(|e| build_error(OP, name, e))?;
            let element = KeySchemaElement::builder()
                .attribute_name(&key.name)
                .key_type(key_type)
                .build()
                .map_err(|e| build_error(OP, name, e))?;
            request = request.attribute_definitions(attribute).key_schema(element);
        }
        if !def.tags.is_empty() {
            request = request.set_tags(Some(sdk_tags(OP, name, &def.tags)?));
        }
        let out = request.send().await.map_err(|e| sdk_error(OP, name, &e))?;
        table_info(OP, name, out.table_description())
    }

    /// An update that sets nothing sends no request (AWS would reject an empty UpdateTable).
    async fn update_table(&self, name: &str, update: &TableUpdate) -> AwsResult<()> {
        const OP: &str = "UpdateTable";
        if *update == TableUpdate::default() {
            return Ok(());
        }
        let mut request = self
            .client
            .update_table()
            .table_name(name)
            .set_deletion_protection_enabled(update.deletion_protection)
            .set_sse_specification(update.sse_kms_key_arn.as_deref().map(kms_sse));
        if update.billing_pay_per_request {
            request = request.billing_mode(BillingMode::PayPerRequest);
        }
        if update.enable_stream {
            request = request.stream_specification(new_and_old_images_stream(OP, name)?);
        }
        request.send().await.map_err(|e| sdk_error(OP, name, &e))?;
        Ok(())
    }

    async fn get_pitr(&self, name: &str) -> AwsResult<bool> {
        let out = self
            .client
            .describe_continuous_backups()
            .table_name(name)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeContinuousBackups", name, &e))?;
        Ok(out
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            .is_some_and(|s| *s == PointInTimeRecoveryStatus::Enabled))
    }

    async fn set_pitr(&self, name: &str, enabled: bool) -> AwsResult<()> {
        const OP: &str = "UpdateContinuousBackups";
        let spec = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(enabled)
            .build()
            .map_err(|e| build_error(OP, name, e))?;
        self.client
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(spec)
            .send()
            .await
            .map_err(|e| sdk_error(OP, name, &e))?;
        Ok(())
    }

    async fn get_ttl(&self, name: &str) -> AwsResult<Option<String>> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTimeToLive", name, &e))?;
        let Some(ttl) = out.time_to_live_description() else { return Ok(None) };
        let on = matches!(ttl.time_to_live_status(), Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
        Ok(ttl.attribute_name().filter(|_| on).map(str::to_string))
    }

    async fn set_ttl(&self, name: &str, attribute: &str, enabled: bool) -> AwsResult<()> {
        const OP: &str = "UpdateTimeToLive";
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(enabled)
            .build()
            .map_err(|e| build_error(OP, name, e))?;
        self.client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| sdk_error(OP, name, &e))?;
        Ok(())
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        let mut tags = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_tags_of_resource()
                .resource_arn(arn)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| sdk_error("ListTagsOfResource", arn, &e))?;
            tags.extend(out.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())));
            match out.next_token {
                Some(next) if !next.is_empty() => token = Some(next),
                _ => return Ok(tags),
            }
        }
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        const OP: &str = "TagResource";
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(sdk_tags(OP, arn, tags)?))
            .send()
            .await
            .map_err(|e| sdk_error(OP, arn, &e))?;
        Ok(())
    }

    /// A page with no item but a `LastEvaluatedKey` counts as "may hold items": the answer
    /// guards deletion, so it errs on the side of keeping data.
    async fn has_items(&self, name: &str) -> AwsResult<bool> {
        let out = self
            .client
            .scan()
            .table_name(name)
            .limit(1)
            .select(Select::Count)
            .send()
            .await
            .map_err(|e| sdk_error("Scan", name, &e))?;
        Ok(out.count() > 0 || out.last_evaluated_key().is_some_and(|k| !k.is_empty()))
    }

    async fn delete_table(&self, name: &str) -> AwsResult<()> {
        self.client.delete_table().table_name(name).send().await.map_err(|e| sdk_error("DeleteTable", name, &e))?;
        Ok(())
    }

    async fn create_replica(&self, name: &str, region: &str, kms_key_arn: &str) -> AwsResult<()> {
        const OP: &str = "UpdateTable";
        let create = CreateReplicationGroupMemberAction::builder()
            .region_name(region)
            .kms_master_key_id(kms_key_arn)
            .build()
            .map_err(|e| build_error(OP, name, e))?;
        self.client
            .update_table()
            .table_name(name)
            .replica_updates(ReplicationGroupUpdate::builder().create(create).build())
            .send()
            .await
            .map_err(|e| sdk_error(OP, name, &e))?;
        Ok(())
    }

    async fn delete_replica(&self, name: &str, region: &str) -> AwsResult<()> {
        const OP: &str = "UpdateTable";
        let delete = DeleteReplicationGroupMemberAction::builder()
            .region_name(region)
            .build()
            .map_err(|e| build_error(OP, name, e))?;
        self.client
            .update_table()
            .table_name(name)
            .replica_updates(ReplicationGroupUpdate::builder().delete(delete).build())
            .send()
            .await
            .map_err(|e| sdk_error(OP, name, &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use aws_sdk_dynamodb::operation::create_table::CreateTableOutput;
    use aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput;
    use aws_sdk_dynamodb::operation::scan::ScanOutput;
    use aws_sdk_dynamodb::types::error::ResourceNotFoundException;
    use aws_sdk_dynamodb::types::{
        AttributeValue, BillingModeSummary, ReplicaDescription, ReplicaStatus, SseDescription, SseStatus, TableStatus,
    };
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::aws::error::ErrorKind;

    const ARN: &str = "arn:aws:dynamodb:eu-west-1:123456789012:table/locks";
    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/k1";

    fn dynamo(rules: &[&Rule]) -> SdkDynamo {
        SdkDynamo::new(aws_sdk_dynamodb::Client::from_conf(crate::aws::mocked_config!(aws_sdk_dynamodb, rules).build()))
    }

    /// An error response as DynamoDB sends it (awsJson1.0).
    fn json_error(status: u16, code: &'static str) -> impl Fn() -> HttpResponse + Send + Sync + 'static {
        move || {
            let body = format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{code} happened"}}"#);
            let mut response = HttpResponse::new(StatusCode::try_from(status).expect("status"), SdkBody::from(body));
            response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
            response
        }
    }

    fn description() -> TableDescription {
        TableDescription::builder()
            .table_arn(ARN)
            .table_status(TableStatus::Active)
            .billing_mode_summary(BillingModeSummary::builder().billing_mode(BillingMode::PayPerRequest).build())
            .sse_description(SseDescription::builder().status(SseStatus::Enabled).kms_master_key_arn(KEY).build())
            .deletion_protection_enabled(true)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .expect("stream"),
            )
            .item_count(3)
            .replicas(
                ReplicaDescription::builder().region_name("eu-central-1").replica_status(ReplicaStatus::Active).build(),
            )
            .build()
    }

    fn table_def() -> TableDef {
        TableDef {
            name: "locks".into(),
            partition_key: KeyDef { name: "pk".into(), type_: "S".into() },
            sort_key: Some(KeyDef { name: "sk".into(), type_: "N".into() }),
            kms_key_arn: KEY.into(),
            tags: BTreeMap::from([("lakeops.io/owner".to_string(), "ns/lake".to_string())]),
        }
    }

    #[tokio::test]
    async fn describing_a_missing_table_is_none() {
        let modeled = mock!(aws_sdk_dynamodb::Client::describe_table)
            .then_error(|| DescribeTableError::ResourceNotFoundException(ResourceNotFoundException::builder().build()));
        let on_the_wire = mock!(aws_sdk_dynamodb::Client::describe_table)
            .then_http_response(json_error(400, "ResourceNotFoundException"));
        let dynamo = dynamo(&[&modeled, &on_the_wire]);

        assert_eq!(dynamo.describe_table("locks").await, Ok(None));
        assert_eq!(dynamo.describe_table("locks").await, Ok(None));
    }

    #[tokio::test]
    async fn describing_a_table_reads_encryption_protection_stream_billing_and_replicas() {
        let rule = mock!(aws_sdk_dynamodb::Client::describe_table)
            .then_output(|| DescribeTableOutput::builder().table(description()).build());

        let info = dynamo(&[&rule]).describe_table("locks").await;

        let expected = TableInfo {
            arn: ARN.into(),
            status: "ACTIVE".into(),
            billing_mode: Some("PAY_PER_REQUEST".into()),
            sse_status: Some("ENABLED".into()),
            sse_kms_key_arn: Some(KEY.into()),
            deletion_protection: true,
            stream_enabled: true,
            stream_view_type: Some("NEW_AND_OLD_IMAGES".into()),
            item_count: Some(3),
            replicas: vec![Replica { region: "eu-central-1".into(), status: "ACTIVE".into() }],
        };
        assert_eq!(info, Ok(Some(expected)));
    }

    #[tokio::test]
    async fn throttling_is_retryable() {
        let throttled =
            mock!(aws_sdk_dynamodb::Client::describe_table).then_http_response(json_error(400, "ThrottlingException"));
        let exceeded = mock!(aws_sdk_dynamodb::Client::scan)
            .then_http_response(json_error(400, "ProvisionedThroughputExceededException"));
        let dynamo = dynamo(&[&throttled, &exceeded]);

        let err = dynamo.describe_table("locks").await.expect_err("throttled");
        assert_eq!(err.kind, ErrorKind::Retryable);
        assert_eq!((err.service, err.operation, err.resource.as_str()), ("dynamodb", "DescribeTable", "locks"));
        assert_eq!(dynamo.has_items("locks").await.map_err(|e| e.kind), Err(ErrorKind::Retryable));
    }

    #[tokio::test]
    async fn created_tables_are_on_demand_encrypted_protected_and_streamed() {
        let rule = mock!(aws_sdk_dynamodb::Client::create_table)
            .match_requests(|r| {
                let sse = r.sse_specification();
                let stream = r.stream_specification();
                let attributes: Vec<_> = r
                    .attribute_definitions()
                    .iter()
                    .map(|a| (a.attribute_name(), a.attribute_type().as_str()))
                    .collect();
                let keys: Vec<_> = r.key_schema().iter().map(|k| (k.attribute_name(), k.key_type().as_str())).collect();
                r.billing_mode() == Some(&BillingMode::PayPerRequest)
                    && sse.and_then(|s| s.enabled()) == Some(true)
                    && sse.and_then(|s| s.sse_type()) == Some(&SseType::Kms)
                    && sse.and_then(|s| s.kms_master_key_id()) == Some(KEY)
                    && r.deletion_protection_enabled() == Some(true)
                    && stream.is_some_and(|s| s.stream_enabled())
                    && stream.and_then(|s| s.stream_view_type()) == Some(&StreamViewType::NewAndOldImages)
                    && attributes == [("pk", "S"), ("sk", "N")]
                    && keys == [("pk", "HASH"), ("sk", "RANGE")]
                    && r.tags().len() == 1
            })
            .then_output(|| CreateTableOutput::builder().table_description(description()).build());

        let info = dynamo(&[&rule]).create_table(&table_def()).await;

        assert_eq!(info.map(|t| t.arn), Ok(ARN.to_string()));
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_key_type_other_than_s_n_or_b_is_refused_before_any_request() {
        let mut def = table_def();
        def.partition_key.type_ = "SS".into();

        let err = dynamo(&[]).create_table(&def).await.expect_err("invalid");

        assert_eq!(err.kind, ErrorKind::Invalid);
    }

    #[tokio::test]
    async fn an_update_that_sets_nothing_sends_nothing() {
        assert_eq!(dynamo(&[]).update_table("locks", &TableUpdate::default()).await, Ok(()));
    }

    #[tokio::test]
    async fn has_items_scans_one_and_counts() {
        let empty = mock!(aws_sdk_dynamodb::Client::scan)
            .match_requests(|r| r.limit() == Some(1) && r.select() == Some(&Select::Count))
            .then_output(|| ScanOutput::builder().count(0).build());
        let one = mock!(aws_sdk_dynamodb::Client::scan).then_output(|| ScanOutput::builder().count(1).build());
        let page_without_items = mock!(aws_sdk_dynamodb::Client::scan).then_output(|| {
            ScanOutput::builder().count(0).last_evaluated_key("pk", AttributeValue::S("a".into())).build()
        });
        let dynamo = dynamo(&[&empty, &one, &page_without_items]);

        assert_eq!(dynamo.has_items("locks").await, Ok(false));
        assert_eq!(dynamo.has_items("locks").await, Ok(true));
        assert_eq!(dynamo.has_items("locks").await, Ok(true), "more pages may hold items");
    }

    #[tokio::test]
    async fn a_replica_is_requested_one_region_at_a_time_with_its_regional_key() -> AwsResult<()> {
        let replica_key = "arn:aws:kms:us-west-2:123456789012:key/r";
        let create = mock!(aws_sdk_dynamodb::Client::update_table)
            .match_requests(move |req| {
                let [update] = req.replica_updates() else { return false };
                update
                    .create()
                    .is_some_and(|c| c.region_name() == "us-west-2" && c.kms_master_key_id() == Some(replica_key))
                    && update.delete().is_none()
                    && req.sse_specification().is_none()
            })
            .then_output(|| aws_sdk_dynamodb::operation::update_table::UpdateTableOutput::builder().build());
        let delete = mock!(aws_sdk_dynamodb::Client::update_table)
            .match_requests(|req| {
                let [update] = req.replica_updates() else { return false };
                update.delete().is_some_and(|d| d.region_name() == "us-west-2") && update.create().is_none()
            })
            .then_output(|| aws_sdk_dynamodb::operation::update_table::UpdateTableOutput::builder().build());
        let ddb = dynamo(&[&create, &delete]);
        ddb.create_replica("locks", "us-west-2", replica_key).await?;
        ddb.delete_replica("locks", "us-west-2").await?;
        assert_eq!((create.num_calls(), delete.num_calls()), (1, 1));
        Ok(())
    }
}
