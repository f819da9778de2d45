//! The CloudTrail operations lakeops uses for a lake's audit trail.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudtrail::types::{DataResource, EventSelector, ReadWriteType, Tag};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};

/// The settings of a trail lakeops manages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrailSettings {
    pub name: String,
    pub s3_bucket: String,
    pub s3_key_prefix: String,
    pub kms_key_id: String,
    pub multi_region: bool,
    pub global_service_events: bool,
    pub log_file_validation: bool,
    /// CloudWatch Logs delivery (CloudTrail.5): the log group's ARN as CloudTrail names it
    /// (`arn:...:log-group:NAME:*`); empty for none.
    pub cloud_watch_logs_group_arn: String,
    /// The role CloudTrail assumes to write into that group; empty for none.
    pub cloud_watch_logs_role_arn: String,
}

/// What GetTrail tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrailInfo {
    pub arn: String,
    pub settings: TrailSettings,
}

/// The CloudTrail calls lakeops makes; one AWS request each.
#[async_trait]
pub trait CloudTrailApi: Send + Sync {
    /// GetTrail. `Ok(None)` when there is no such trail.
    async fn get_trail(&self, name: &str) -> AwsResult<Option<TrailInfo>>;
    /// GetEventSelectors: the S3 object data-event ARNs (`arn:aws:s3:::bucket/`) selected.
    async fn get_s3_data_events(&self, name: &str) -> AwsResult<Vec<String>>;
    /// GetTrailStatus: whether the trail is logging.
    async fn is_logging(&self, name: &str) -> AwsResult<bool>;
    /// CreateTrail with tags; returns the ARN.
    async fn create_trail(&self, settings: &TrailSettings, tags: &BTreeMap<String, String>) -> AwsResult<String>;
    /// UpdateTrail to these settings.
    async fn update_trail(&self, settings: &TrailSettings) -> AwsResult<()>;
    /// PutEventSelectors: management events plus S3 object data events for these ARNs.
    async fn put_s3_data_events(&self, name: &str, object_arns: &[String]) -> AwsResult<()>;
    /// StartLogging.
    async fn start_logging(&self, name: &str) -> AwsResult<()>;
    /// ListTags of one trail.
    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>>;
    /// DeleteTrail.
    async fn delete_trail(&self, name: &str) -> AwsResult<()>;
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// [`CloudTrailApi`] over the AWS SDK.
pub struct SdkCloudTrail {
    client: aws_sdk_cloudtrail::Client,
}

impl SdkCloudTrail {
    /// Wraps a client.
    pub fn new(client: aws_sdk_cloudtrail::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("cloudtrail", operation, resource, err)
}

#[async_trait]
impl CloudTrailApi for SdkCloudTrail {
    async fn get_trail(&self, name: &str) -> AwsResult<Option<TrailInfo>> {
        match self.client.get_trail().name(name).send().await {
            Ok(out) => Ok(out.trail.map(|t| TrailInfo {
                arn: t.trail_arn.unwrap_or_default(),
                settings: TrailSettings {
                    name: t.name.unwrap_or_default(),
                    s3_bucket: t.s3_bucket_name.unwrap_or_default(),
                    s3_key_prefix: t.s3_key_prefix.unwrap_or_default(),
                    kms_key_id: t.kms_key_id.unwrap_or_default(),
                    multi_region: t.is_multi_region_trail.unwrap_or_default(),
                    global_service_events: t.include_global_service_events.unwrap_or_default(),
                    log_file_validation: t.log_file_validation_enabled.unwrap_or_default(),
                    cloud_watch_logs_group_arn: t.cloud_watch_logs_log_group_arn.unwrap_or_default(),
                    cloud_watch_logs_role_arn: t.cloud_watch_logs_role_arn.unwrap_or_default(),
                },
            })),
            Err(e) => {
                let err = sdk_error("GetTrail", name, &e);
                if err.is_not_found() { Ok(None) } else { Err(err) }
            }
        }
    }

    async fn get_s3_data_events(&self, name: &str) -> AwsResult<Vec<String>> {
        let out = self
            .client
            .get_event_selectors()
            .trail_name(name)
            .send()
            .await
            .map_err(|e| sdk_error("GetEventSelectors", name, &e))?;
        let mut arns: Vec<String> = out
            .event_selectors()
            .iter()
            .flat_map(|s| s.data_resources())
            .filter(|d| d.r#type() == Some("AWS::S3::Object"))
            .flat_map(|d| d.values().iter().cloned())
            .collect();
        arns.sort();
        Ok(arns)
    }

    async fn is_logging(&self, name: &str) -> AwsResult<bool> {
        let out = self
            .client
            .get_trail_status()
            .name(name)
            .send()
            .await
            .map_err(|e| sdk_error("GetTrailStatus", name, &e))?;
        Ok(out.is_logging.unwrap_or_default())
    }

    async fn create_trail(&self, s: &TrailSettings, tags: &BTreeMap<String, String>) -> AwsResult<String> {
        let tags: Vec<Tag> =
            tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect::<Result<_, _>>().map_err(
                |e| AwsError {
                    kind: super::error::ErrorKind::Invalid,
                    service: "cloudtrail",
                    operation: "CreateTrail",
                    resource: s.name.clone(),
                    code: None,
                    message: format!("could not build the request: {e}"),
                },
            )?;
        let out = self
            .client
            .create_trail()
            .name(&s.name)
            .s3_bucket_name(&s.s3_bucket)
            .s3_key_prefix(&s.s3_key_prefix)
            .kms_key_id(&s.kms_key_id)
            .is_multi_region_trail(s.multi_region)
            .include_global_service_events(s.global_service_events)
            .enable_log_file_validation(s.log_file_validation)
            .set_cloud_watch_logs_log_group_arn(non_empty(&s.cloud_watch_logs_group_arn))
            .set_cloud_watch_logs_role_arn(non_empty(&s.cloud_watch_logs_role_arn))
            .set_tags_list(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_error("CreateTrail", &s.name, &e))?;
        Ok(out.trail_arn.unwrap_or_default())
    }

    async fn update_trail(&self, s: &TrailSettings) -> AwsResult<()> {
        self.client
            .update_trail()
            .name(&s.name)
            .s3_bucket_name(&s.s3_bucket)
            .s3_key_prefix(&s.s3_key_prefix)
            .kms_key_id(&s.kms_key_id)
            .is_multi_region_trail(s.multi_region)
            .include_global_service_events(s.global_service_events)
            .enable_log_file_validation(s.log_file_validation)
            // Always sent: an empty value is how UpdateTrail turns the delivery off.
            .cloud_watch_logs_log_group_arn(&s.cloud_watch_logs_group_arn)
            .cloud_watch_logs_role_arn(&s.cloud_watch_logs_role_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("UpdateTrail", &s.name, &e))
    }

    async fn put_s3_data_events(&self, name: &str, object_arns: &[String]) -> AwsResult<()> {
        let selector = EventSelector::builder()
            .read_write_type(ReadWriteType::All)
            .include_management_events(true)
            .data_resources(
                DataResource::builder().r#type("AWS::S3::Object").set_values(Some(object_arns.to_vec())).build(),
            )
            .build();
        self.client
            .put_event_selectors()
            .trail_name(name)
            .event_selectors(selector)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("PutEventSelectors", name, &e))
    }

    async fn start_logging(&self, name: &str) -> AwsResult<()> {
        self.client.start_logging().name(name).send().await.map(|_| ()).map_err(|e| sdk_error("StartLogging", name, &e))
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        let out =
            self.client.list_tags().resource_id_list(arn).send().await.map_err(|e| sdk_error("ListTags", arn, &e))?;
        Ok(out
            .resource_tag_list()
            .iter()
            .flat_map(|r| r.tags_list())
            .map(|t| (t.key().to_string(), t.value().unwrap_or_default().to_string()))
            .collect())
    }

    async fn delete_trail(&self, name: &str) -> AwsResult<()> {
        self.client.delete_trail().name(name).send().await.map(|_| ()).map_err(|e| sdk_error("DeleteTrail", name, &e))
    }
}
