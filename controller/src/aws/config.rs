//! The AWS Config operations a SecurityBaseline uses: the region's one configuration
//! recorder (an existing one keeps its name), its delivery channel, and recording started.
//! Never StopConfigurationRecorder or DeleteDeliveryChannel.
use async_trait::async_trait;
use aws_sdk_config::types::{ConfigurationRecorder, DeliveryChannel, RecordingGroup};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};

/// A configuration recorder as lakeops sends and reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorder {
    pub name: String,
    pub role_arn: String,
    pub all_supported: bool,
    pub include_global_resources: bool,
}

/// A delivery channel as lakeops sends and reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub bucket: String,
    /// The key Config encrypts what it delivers with.
    pub kms_key_arn: Option<String>,
}

/// The Config calls lakeops makes; one AWS request each.
#[async_trait]
pub trait ConfigApi: Send + Sync {
    /// DescribeConfigurationRecorders: the region's recorders (AWS allows one).
    async fn recorders(&self) -> AwsResult<Vec<Recorder>>;
    /// PutConfigurationRecorder (creates or replaces the recorder of that name).
    async fn put_recorder(&self, recorder: &Recorder) -> AwsResult<()>;
    /// DescribeDeliveryChannels: the region's channels (AWS allows one).
    async fn channels(&self) -> AwsResult<Vec<Channel>>;
    /// PutDeliveryChannel (creates or replaces the channel of that name).
    async fn put_channel(&self, channel: &Channel) -> AwsResult<()>;
    /// StartConfigurationRecorder.
    async fn start_recorder(&self, name: &str) -> AwsResult<()>;
    /// DescribeConfigurationRecorderStatus: whether the recorder is recording.
    async fn is_recording(&self, name: &str) -> AwsResult<bool>;
}

/// [`ConfigApi`] over the AWS SDK.
pub struct SdkConfigService {
    client: aws_sdk_config::Client,
}

impl SdkConfigService {
    /// Wraps a client.
    pub fn new(client: aws_sdk_config::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("config", operation, resource, err)
}

#[async_trait]
impl ConfigApi for SdkConfigService {
    async fn recorders(&self) -> AwsResult<Vec<Recorder>> {
        let out = self
            .client
            .describe_configuration_recorders()
            .send()
            .await
            .map_err(|e| sdk_error("DescribeConfigurationRecorders", "recorders", &e))?;
        Ok(out
            .configuration_recorders()
            .iter()
            .map(|r| {
                let group = r.recording_group.as_ref();
                Recorder {
                    name: r.name.clone().unwrap_or_default(),
                    role_arn: r.role_arn.clone().unwrap_or_default(),
                    all_supported: group.is_some_and(|g| g.all_supported),
                    include_global_resources: group.is_some_and(|g| g.include_global_resource_types),
                }
            })
            .collect())
    }

    async fn put_recorder(&self, r: &Recorder) -> AwsResult<()> {
        let recorder = ConfigurationRecorder::builder()
            .name(&r.name)
            .role_arn(&r.role_arn)
            .recording_group(
                RecordingGroup::builder()
                    .all_supported(r.all_supported)
                    .include_global_resource_types(r.include_global_resources)
                    .build(),
            )
            .build();
        self.client
            .put_configuration_recorder()
            .configuration_recorder(recorder)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("PutConfigurationRecorder", &r.name, &e))
    }

    async fn channels(&self) -> AwsResult<Vec<Channel>> {
        let out = self
            .client
            .describe_delivery_channels()
            .send()
            .await
            .map_err(|e| sdk_error("DescribeDeliveryChannels", "delivery channels", &e))?;
        Ok(out
            .delivery_channels()
            .iter()
            .map(|c| Channel {
                name: c.name.clone().unwrap_or_default(),
                bucket: c.s3_bucket_name.clone().unwrap_or_default(),
                kms_key_arn: c.s3_kms_key_arn.clone(),
            })
            .collect())
    }

    async fn put_channel(&self, c: &Channel) -> AwsResult<()> {
        let channel = DeliveryChannel::builder()
            .name(&c.name)
            .s3_bucket_name(&c.bucket)
            .set_s3_kms_key_arn(c.kms_key_arn.clone())
            .build();
        self.client
            .put_delivery_channel()
            .delivery_channel(channel)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("PutDeliveryChannel", &c.name, &e))
    }

    async fn start_recorder(&self, name: &str) -> AwsResult<()> {
        self.client
            .start_configuration_recorder()
            .configuration_recorder_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("StartConfigurationRecorder", name, &e))
    }

    async fn is_recording(&self, name: &str) -> AwsResult<bool> {
        let out = self
            .client
            .describe_configuration_recorder_status()
            .configuration_recorder_names(name)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeConfigurationRecorderStatus", name, &e))?;
        Ok(out.configuration_recorders_status().iter().any(|s| s.name.as_deref() == Some(name) && s.recording))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_config::operation::describe_configuration_recorder_status::DescribeConfigurationRecorderStatusOutput;
    use aws_sdk_config::operation::describe_configuration_recorders::DescribeConfigurationRecordersOutput;
    use aws_sdk_config::operation::put_configuration_recorder::PutConfigurationRecorderOutput;
    use aws_sdk_config::operation::put_delivery_channel::PutDeliveryChannelOutput;
    use aws_sdk_config::types::ConfigurationRecorderStatus;
    use aws_smithy_mocks::mock;

    use super::*;

    fn client(rules: &[aws_smithy_mocks::Rule]) -> SdkConfigService {
        SdkConfigService::new(aws_sdk_config::Client::from_conf(
            crate::aws::mocked_config!(aws_sdk_config, rules).build(),
        ))
    }

    #[tokio::test]
    async fn an_existing_recorder_reads_back_with_its_name() {
        let describe = mock!(aws_sdk_config::Client::describe_configuration_recorders).then_output(|| {
            DescribeConfigurationRecordersOutput::builder()
                .configuration_recorders(
                    ConfigurationRecorder::builder()
                        .name("aws-controltower-BaselineConfigRecorder")
                        .role_arn("arn:aws:iam::123456789012:role/ct")
                        .recording_group(RecordingGroup::builder().all_supported(true).build())
                        .build(),
                )
                .build()
        });
        let found = client(&[describe]).recorders().await.expect("mocked answer");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "aws-controltower-BaselineConfigRecorder");
        assert!(found[0].all_supported && !found[0].include_global_resources);
    }

    #[tokio::test]
    async fn put_recorder_and_channel_send_what_is_asked() {
        let recorder = mock!(aws_sdk_config::Client::put_configuration_recorder)
            .match_requests(|r| {
                r.configuration_recorder().is_some_and(|c| {
                    c.name() == Some("default")
                        && c.recording_group().is_some_and(|g| g.all_supported && g.include_global_resource_types)
                })
            })
            .then_output(|| PutConfigurationRecorderOutput::builder().build());
        let channel = mock!(aws_sdk_config::Client::put_delivery_channel)
            .match_requests(|r| {
                r.delivery_channel().is_some_and(|c| {
                    c.s3_bucket_name() == Some("b") && c.s3_kms_key_arn() == Some("arn:aws:kms:eu-west-1:1:key/k")
                })
            })
            .then_output(|| PutDeliveryChannelOutput::builder().build());
        let status = mock!(aws_sdk_config::Client::describe_configuration_recorder_status).then_output(|| {
            DescribeConfigurationRecorderStatusOutput::builder()
                .configuration_recorders_status(
                    ConfigurationRecorderStatus::builder().name("default").recording(true).build(),
                )
                .build()
        });
        let config = client(&[recorder, channel, status]);
        let r = Recorder {
            name: "default".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            all_supported: true,
            include_global_resources: true,
        };
        config.put_recorder(&r).await.expect("mocked answer");
        let c = Channel {
            name: "default".into(),
            bucket: "b".into(),
            kms_key_arn: Some("arn:aws:kms:eu-west-1:1:key/k".into()),
        };
        config.put_channel(&c).await.expect("mocked answer");
        assert!(config.is_recording("default").await.expect("mocked answer"));
    }
}
