//! The CloudTrail operations lakeops uses for a lake's audit trail.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_cloudtrail::types::{AdvancedEventSelector, AdvancedFieldSelector, EventSelector, Tag};
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

/// What a trail records, written as advanced event selectors (one per kind of event, so
/// the list does not grow with the resources: data events are selected by ARN prefix).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventSelection {
    /// Management events (read and write).
    pub management_events: bool,
    /// S3 object data events for objects whose ARN starts with one of these
    /// (`arn:aws:s3:::bucket/`), sorted.
    pub s3_objects: Vec<String>,
    /// Lambda `Invoke` data events for functions whose ARN starts with one of these, sorted.
    pub lambda_functions: Vec<String>,
    /// The trail also has selectors lakeops does not write (read back only; a put replaces them).
    pub other: bool,
}

/// The CloudTrail names of the selector fields lakeops writes.
mod field {
    pub const EVENT_CATEGORY: &str = "eventCategory";
    pub const RESOURCES_TYPE: &str = "resources.type";
    pub const RESOURCES_ARN: &str = "resources.ARN";
    pub const MANAGEMENT: &str = "Management";
    pub const DATA: &str = "Data";
    pub const S3_OBJECT: &str = "AWS::S3::Object";
    pub const LAMBDA_FUNCTION: &str = "AWS::Lambda::Function";
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
    /// GetEventSelectors: what the trail records (basic or advanced selectors).
    async fn get_event_selection(&self, name: &str) -> AwsResult<EventSelection>;
    /// GetTrailStatus: whether the trail is logging.
    async fn is_logging(&self, name: &str) -> AwsResult<bool>;
    /// CreateTrail with tags; returns the ARN.
    async fn create_trail(&self, settings: &TrailSettings, tags: &BTreeMap<String, String>) -> AwsResult<String>;
    /// UpdateTrail to these settings.
    async fn update_trail(&self, settings: &TrailSettings) -> AwsResult<()>;
    /// PutEventSelectors with advanced event selectors for `selection` (replacing basic ones).
    async fn put_event_selection(&self, name: &str, selection: &EventSelection) -> AwsResult<()>;
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

/// The advanced selectors of `selection`: management events, S3 objects and Lambda
/// functions by ARN prefix, each its own selector (CloudTrail ORs selectors).
fn advanced_selectors(selection: &EventSelection) -> Result<Vec<AdvancedEventSelector>, String> {
    let equals = |f: &str, v: &str| AdvancedFieldSelector::builder().field(f).equals(v).build();
    let starts =
        |f: &str, vs: &[String]| AdvancedFieldSelector::builder().field(f).set_starts_with(Some(vs.to_vec())).build();
    let mut out = Vec::new();
    if selection.management_events {
        out.push(
            AdvancedEventSelector::builder()
                .name("Management events")
                .field_selectors(equals(field::EVENT_CATEGORY, field::MANAGEMENT).map_err(|e| e.to_string())?)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    for (name, kind, prefixes) in [
        ("S3 object events of the lake's buckets", field::S3_OBJECT, &selection.s3_objects),
        ("Lambda invocations of the lake's functions", field::LAMBDA_FUNCTION, &selection.lambda_functions),
    ] {
        if prefixes.is_empty() {
            continue;
        }
        let fields = [
            equals(field::EVENT_CATEGORY, field::DATA),
            equals(field::RESOURCES_TYPE, kind),
            starts(field::RESOURCES_ARN, prefixes),
        ]
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
        out.push(
            AdvancedEventSelector::builder()
                .name(name)
                .set_field_selectors(Some(fields))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}

/// What the trail's selectors record; basic selectors (trails written before advanced ones)
/// are read too, so a trail still on them shows as a difference and is rewritten.
fn read_selection(basic: &[EventSelector], advanced: &[AdvancedEventSelector]) -> EventSelection {
    let mut out = EventSelection::default();
    for s in basic {
        out.management_events |= s.include_management_events().unwrap_or(true);
        for d in s.data_resources() {
            match d.r#type() {
                Some(field::S3_OBJECT) => out.s3_objects.extend(d.values().iter().cloned()),
                Some(field::LAMBDA_FUNCTION) => out.lambda_functions.extend(d.values().iter().cloned()),
                _ => out.other = true,
            }
        }
    }
    for s in advanced {
        let find = |name: &str| s.field_selectors().iter().find(|f| f.field() == name);
        let category = find(field::EVENT_CATEGORY).map(|f| f.equals().to_vec()).unwrap_or_default();
        let kind = find(field::RESOURCES_TYPE).map(|f| f.equals().to_vec()).unwrap_or_default();
        let prefixes = find(field::RESOURCES_ARN).map(|f| f.starts_with().to_vec());
        let known = [field::EVENT_CATEGORY, field::RESOURCES_TYPE, field::RESOURCES_ARN];
        let extra = s.field_selectors().iter().any(|f| !known.contains(&f.field()));
        match (category.as_slice(), kind.as_slice(), prefixes) {
            ([c], [], None) if c == field::MANAGEMENT && !extra => out.management_events = true,
            ([c], [k], Some(p)) if c == field::DATA && k == field::S3_OBJECT && !extra => out.s3_objects.extend(p),
            ([c], [k], Some(p)) if c == field::DATA && k == field::LAMBDA_FUNCTION && !extra => {
                out.lambda_functions.extend(p)
            }
            _ => out.other = true,
        }
    }
    out.s3_objects.sort();
    out.lambda_functions.sort();
    out
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

    async fn get_event_selection(&self, name: &str) -> AwsResult<EventSelection> {
        let out = self
            .client
            .get_event_selectors()
            .trail_name(name)
            .send()
            .await
            .map_err(|e| sdk_error("GetEventSelectors", name, &e))?;
        Ok(read_selection(out.event_selectors(), out.advanced_event_selectors()))
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

    async fn put_event_selection(&self, name: &str, selection: &EventSelection) -> AwsResult<()> {
        let selectors = advanced_selectors(selection).map_err(|message| AwsError {
            kind: super::error::ErrorKind::Invalid,
            service: "cloudtrail",
            operation: "PutEventSelectors",
            resource: name.to_string(),
            code: None,
            message,
        })?;
        self.client
            .put_event_selectors()
            .trail_name(name)
            .set_advanced_event_selectors(Some(selectors))
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

#[cfg(test)]
mod tests {
    use aws_sdk_cloudtrail::operation::get_event_selectors::GetEventSelectorsOutput;
    use aws_sdk_cloudtrail::operation::put_event_selectors::PutEventSelectorsOutput;
    use aws_sdk_cloudtrail::types::DataResource;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;

    fn trail(rules: &[&Rule]) -> SdkCloudTrail {
        SdkCloudTrail::new(aws_sdk_cloudtrail::Client::from_conf(
            crate::aws::mocked_config!(aws_sdk_cloudtrail, rules).build(),
        ))
    }

    fn lake_selection(management_events: bool) -> EventSelection {
        EventSelection {
            management_events,
            s3_objects: vec!["arn:aws:s3:::a/".into(), "arn:aws:s3:::b/".into()],
            lambda_functions: vec!["arn:aws:lambda:eu-west-1:123456789012:function:lakeops-ns-".into()],
            other: false,
        }
    }

    #[tokio::test]
    async fn data_events_are_sent_as_advanced_selectors_by_arn_prefix_without_management_events() {
        let rule = mock!(aws_sdk_cloudtrail::Client::put_event_selectors)
            .match_requests(|r| {
                let s = r.advanced_event_selectors();
                let fields = |i: usize| -> Vec<(String, Vec<String>, Vec<String>)> {
                    s[i].field_selectors()
                        .iter()
                        .map(|f| (f.field().to_string(), f.equals().to_vec(), f.starts_with().to_vec()))
                        .collect()
                };
                r.event_selectors().is_empty()
                    && s.len() == 2
                    && fields(0)
                        == [
                            ("eventCategory".into(), vec!["Data".into()], vec![]),
                            ("resources.type".into(), vec!["AWS::S3::Object".into()], vec![]),
                            ("resources.ARN".into(), vec![], vec!["arn:aws:s3:::a/".into(), "arn:aws:s3:::b/".into()]),
                        ]
                    && fields(1)[1].1 == ["AWS::Lambda::Function"]
            })
            .then_output(|| PutEventSelectorsOutput::builder().build());

        trail(&[&rule]).put_event_selection("t", &lake_selection(false)).await.expect("sent as expected");
    }

    #[tokio::test]
    async fn advanced_selectors_read_back_as_the_selection_written() {
        let written = advanced_selectors(&lake_selection(true)).expect("valid");
        let rule = mock!(aws_sdk_cloudtrail::Client::get_event_selectors).then_output(move || {
            GetEventSelectorsOutput::builder().set_advanced_event_selectors(Some(written.clone())).build()
        });

        assert_eq!(trail(&[&rule]).get_event_selection("t").await, Ok(lake_selection(true)));
    }

    #[tokio::test]
    async fn a_trail_still_on_basic_selectors_reads_as_management_events_on() {
        let basic = EventSelector::builder()
            .data_resources(DataResource::builder().r#type("AWS::S3::Object").values("arn:aws:s3:::a/").build())
            .build();
        let rule = mock!(aws_sdk_cloudtrail::Client::get_event_selectors)
            .then_output(move || GetEventSelectorsOutput::builder().event_selectors(basic.clone()).build());

        let read = trail(&[&rule]).get_event_selection("t").await.expect("read");
        assert!(read.management_events, "IncludeManagementEvents defaults to true");
        assert_eq!(read.s3_objects, ["arn:aws:s3:::a/"]);
        assert!(read.lambda_functions.is_empty() && !read.other);
    }
}
