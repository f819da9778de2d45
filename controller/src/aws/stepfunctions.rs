//! The Step Functions operations an EtlPipeline uses: one STANDARD state machine, read by
//! its ARN (predictable from the name), created once, updated in one call, deleted.
//!
//! CreateStateMachine is idempotent for a name when every parameter is the same (AWS
//! answers `StateMachineAlreadyExists` otherwise); the controller reads the machine by its
//! ARN first, so a retry after a lost answer finds it and converges it with an update.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_sfn::types::{
    CloudWatchLogsLogGroup, EncryptionConfiguration, EncryptionType, LogDestination, LogLevel, LoggingConfiguration,
    StateMachineType, Tag, TracingConfiguration,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};

/// How long Step Functions reuses a data key of the customer managed key (AWS's default).
pub const KMS_DATA_KEY_REUSE_SECONDS: i32 = 300;

/// Everything lakeops sets on a state machine; UpdateStateMachine sends all of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMachineSettings {
    /// The Amazon States Language document (JSON).
    pub definition: String,
    pub role_arn: String,
    /// ALL, ERROR, FATAL or OFF.
    pub log_level: String,
    /// The log group's ARN, ending in `:*`; `None` with level OFF.
    pub log_group_arn: Option<String>,
    pub tracing: bool,
    /// The customer managed key; `None`: AWS owned key.
    pub kms_key_id: Option<String>,
}

/// A state machine as DescribeStateMachine tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMachineInfo {
    pub arn: String,
    pub name: String,
    /// STANDARD or EXPRESS.
    pub machine_type: String,
    pub settings: StateMachineSettings,
}

/// The Step Functions calls lakeops makes; one AWS request each.
#[async_trait]
pub trait StepFunctionsApi: Send + Sync {
    /// DescribeStateMachine. `Ok(None)` when there is no such machine.
    async fn describe_state_machine(&self, arn: &str) -> AwsResult<Option<StateMachineInfo>>;
    /// CreateStateMachine (STANDARD) with its tags; returns the ARN.
    async fn create_state_machine(
        &self,
        name: &str,
        settings: &StateMachineSettings,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<String>;
    /// UpdateStateMachine with every setting.
    async fn update_state_machine(&self, arn: &str, settings: &StateMachineSettings) -> AwsResult<()>;
    /// ListTagsForResource.
    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>>;
    /// TagResource (adds or overwrites).
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
    /// DeleteStateMachine; a missing machine is success.
    async fn delete_state_machine(&self, arn: &str) -> AwsResult<()>;
}

/// [`StepFunctionsApi`] over the AWS SDK.
pub struct SdkStepFunctions {
    client: aws_sdk_sfn::Client,
}

impl SdkStepFunctions {
    /// Wraps a client.
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

/// Step Functions' own name for a missing machine.
const DOES_NOT_EXIST: &str = "StateMachineDoesNotExist";

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("states", operation, resource, err)
}

fn is_missing(e: &AwsError) -> bool {
    e.is_not_found() || e.code.as_deref() == Some(DOES_NOT_EXIST)
}

fn invalid(operation: &'static str, resource: &str, e: impl std::fmt::Display) -> AwsError {
    AwsError::classify("states", operation, resource, Some("ValidationException"), Some(&e.to_string()), None)
}

fn logging(s: &StateMachineSettings) -> Result<LoggingConfiguration, String> {
    let destinations = s
        .log_group_arn
        .iter()
        .map(|arn| {
            LogDestination::builder()
                .cloud_watch_logs_log_group(CloudWatchLogsLogGroup::builder().log_group_arn(arn).build())
                .build()
        })
        .collect();
    Ok(LoggingConfiguration::builder()
        .level(LogLevel::from(s.log_level.as_str()))
        // Execution data holds the records themselves: never logged.
        .include_execution_data(false)
        .set_destinations(Some(destinations))
        .build())
}

fn encryption(s: &StateMachineSettings) -> Result<EncryptionConfiguration, String> {
    let b = match &s.kms_key_id {
        Some(key) => EncryptionConfiguration::builder()
            .r#type(EncryptionType::CustomerManagedKmsKey)
            .kms_key_id(key)
            .kms_data_key_reuse_period_seconds(KMS_DATA_KEY_REUSE_SECONDS),
        None => EncryptionConfiguration::builder().r#type(EncryptionType::AwsOwnedKey),
    };
    b.build().map_err(|e| e.to_string())
}

#[async_trait]
impl StepFunctionsApi for SdkStepFunctions {
    async fn describe_state_machine(&self, arn: &str) -> AwsResult<Option<StateMachineInfo>> {
        let out = match self.client.describe_state_machine().state_machine_arn(arn).send().await {
            Ok(out) => out,
            Err(e) => {
                let err = sdk_error("DescribeStateMachine", arn, &e);
                return if is_missing(&err) { Ok(None) } else { Err(err) };
            }
        };
        let log = out.logging_configuration.as_ref();
        let log_group_arn = log
            .and_then(|l| l.destinations().first())
            .and_then(|d| d.cloud_watch_logs_log_group())
            .and_then(|g| g.log_group_arn())
            .map(str::to_string);
        let enc = out.encryption_configuration.as_ref();
        let kms_key_id = enc
            .filter(|e| e.r#type() == &EncryptionType::CustomerManagedKmsKey)
            .and_then(|e| e.kms_key_id())
            .map(str::to_string);
        Ok(Some(StateMachineInfo {
            arn: out.state_machine_arn,
            name: out.name,
            machine_type: out.r#type.as_str().to_string(),
            settings: StateMachineSettings {
                definition: out.definition,
                role_arn: out.role_arn,
                log_level: log.and_then(|l| l.level()).map_or("OFF", |l| l.as_str()).to_string(),
                log_group_arn,
                tracing: out.tracing_configuration.is_some_and(|t| t.enabled()),
                kms_key_id,
            },
        }))
    }

    async fn create_state_machine(
        &self,
        name: &str,
        settings: &StateMachineSettings,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<String> {
        const OP: &str = "CreateStateMachine";
        let tags = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let out = self
            .client
            .create_state_machine()
            .name(name)
            .r#type(StateMachineType::Standard)
            .definition(&settings.definition)
            .role_arn(&settings.role_arn)
            .logging_configuration(logging(settings).map_err(|e| invalid(OP, name, e))?)
            .tracing_configuration(TracingConfiguration::builder().enabled(settings.tracing).build())
            .encryption_configuration(encryption(settings).map_err(|e| invalid(OP, name, e))?)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_error(OP, name, &e))?;
        Ok(out.state_machine_arn)
    }

    async fn update_state_machine(&self, arn: &str, settings: &StateMachineSettings) -> AwsResult<()> {
        const OP: &str = "UpdateStateMachine";
        self.client
            .update_state_machine()
            .state_machine_arn(arn)
            .definition(&settings.definition)
            .role_arn(&settings.role_arn)
            .logging_configuration(logging(settings).map_err(|e| invalid(OP, arn, e))?)
            .tracing_configuration(TracingConfiguration::builder().enabled(settings.tracing).build())
            .encryption_configuration(encryption(settings).map_err(|e| invalid(OP, arn, e))?)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error(OP, arn, &e))
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| sdk_error("ListTagsForResource", arn, &e))?;
        Ok(out.tags.unwrap_or_default().into_iter().filter_map(|t| Some((t.key?, t.value?))).collect())
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        let tags = tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("TagResource", arn, &e))
    }

    async fn delete_state_machine(&self, arn: &str) -> AwsResult<()> {
        match self.client.delete_state_machine().state_machine_arn(arn).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = sdk_error("DeleteStateMachine", arn, &e);
                if is_missing(&err) { Ok(()) } else { Err(err) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_sfn::operation::create_state_machine::CreateStateMachineOutput;
    use aws_smithy_mocks::mock;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn client(rules: &[aws_smithy_mocks::Rule]) -> SdkStepFunctions {
        SdkStepFunctions::new(aws_sdk_sfn::Client::from_conf(crate::aws::mocked_config!(aws_sdk_sfn, rules).build()))
    }

    fn settings() -> StateMachineSettings {
        StateMachineSettings {
            definition: r#"{"StartAt":"a","States":{"a":{"Type":"Succeed"}}}"#.into(),
            role_arn: "arn:aws:iam::123456789012:role/lakeops/r".into(),
            log_level: "ERROR".into(),
            log_group_arn: Some("arn:aws:logs:eu-west-1:123456789012:log-group:/aws/vendedlogs/states/x:*".into()),
            tracing: true,
            kms_key_id: Some("arn:aws:kms:eu-west-1:123456789012:key/k".into()),
        }
    }

    #[tokio::test]
    async fn create_sends_standard_encryption_logging_without_data_and_tracing() {
        let create = mock!(aws_sdk_sfn::Client::create_state_machine)
            .match_requests(|r| {
                let enc = r.encryption_configuration().expect("encryption");
                let log = r.logging_configuration().expect("logging");
                r.r#type() == Some(&StateMachineType::Standard)
                    && enc.r#type() == &EncryptionType::CustomerManagedKmsKey
                    && enc.kms_key_id() == Some("arn:aws:kms:eu-west-1:123456789012:key/k")
                    && log.level() == Some(&LogLevel::Error)
                    && !log.include_execution_data()
                    && log.destinations().len() == 1
                    && r.tracing_configuration().is_some_and(|t| t.enabled())
                    && r.tags().iter().any(|t| t.key() == Some("lakeops.dev/owner"))
            })
            .then_output(|| {
                CreateStateMachineOutput::builder()
                    .state_machine_arn("arn:sm")
                    .creation_date(aws_smithy_types::DateTime::from_secs(0))
                    .build()
                    .expect("output")
            });
        let tags = BTreeMap::from([("lakeops.dev/owner".to_string(), "a/p".to_string())]);
        let arn = client(&[create]).create_state_machine("m", &settings(), &tags).await.expect("mocked answer");
        assert_eq!(arn, "arn:sm");
    }

    #[tokio::test]
    async fn a_missing_machine_reads_as_none() {
        let missing = mock!(aws_sdk_sfn::Client::describe_state_machine).then_http_response(|| {
            let body = r#"{"__type":"StateMachineDoesNotExist","message":"State Machine Does Not Exist"}"#;
            let mut response = HttpResponse::new(StatusCode::try_from(400).expect("status"), SdkBody::from(body));
            response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
            response
        });
        assert_eq!(client(&[missing]).describe_state_machine("arn:sm").await.expect("mocked answer"), None);
    }
}
