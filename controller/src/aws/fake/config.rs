//! AWS Config in the fake account: one recorder and one delivery channel per region (a
//! second of either is refused, as AWS does), the channel's bucket checked, recording
//! status.
use std::sync::Arc;

use async_trait::async_trait;

use super::{FakeAws, fail};
use crate::aws::config::{Channel, ConfigApi, Recorder};
use crate::aws::error::AwsResult;

const SERVICE: &str = "config";

/// Config in one region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigRegion {
    pub recorder: Option<Recorder>,
    pub channel: Option<Channel>,
    pub recording: bool,
}

/// [`ConfigApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    aws: Arc<FakeAws>,
    region: String,
}

impl FakeConfig {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }
}

#[async_trait]
impl ConfigApi for FakeConfig {
    async fn recorders(&self) -> AwsResult<Vec<Recorder>> {
        self.aws.read(&self.region, SERVICE, "DescribeConfigurationRecorders", "recorders", |ctx| {
            Ok(ctx.res.config.get(&self.region).and_then(|c| c.recorder.clone()).into_iter().collect())
        })
    }

    async fn put_recorder(&self, recorder: &Recorder) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "PutConfigurationRecorder", &recorder.name, |ctx| {
            let c = ctx.res.config.entry(ctx.region.to_string()).or_default();
            if c.recorder.as_ref().is_some_and(|r| r.name != recorder.name) {
                return Err(fail(
                    "MaxNumberOfConfigurationRecordersExceededException",
                    400,
                    "Failed to put configuration recorder because you have reached the limit for the maximum number of customer managed configuration records: (1)",
                ));
            }
            c.recorder = Some(recorder.clone());
            Ok(())
        })
    }

    async fn channels(&self) -> AwsResult<Vec<Channel>> {
        self.aws.read(&self.region, SERVICE, "DescribeDeliveryChannels", "delivery channels", |ctx| {
            Ok(ctx.res.config.get(&self.region).and_then(|c| c.channel.clone()).into_iter().collect())
        })
    }

    async fn put_channel(&self, channel: &Channel) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "PutDeliveryChannel", &channel.name, |ctx| {
            if !ctx.res.buckets.contains_key(&channel.bucket) {
                return Err(fail(
                    "NoSuchBucketException",
                    400,
                    format!("Cannot find a S3 bucket with an appropriate bucket policy: {}", channel.bucket),
                ));
            }
            let c = ctx.res.config.entry(ctx.region.to_string()).or_default();
            if c.recorder.is_none() {
                return Err(fail(
                    "NoAvailableConfigurationRecorderException",
                    400,
                    "Configuration recorder is not available to put delivery channel.",
                ));
            }
            if c.channel.as_ref().is_some_and(|ch| ch.name != channel.name) {
                return Err(fail(
                    "MaxNumberOfDeliveryChannelsExceededException",
                    400,
                    "You have reached the limit of the number of delivery channels you can create.",
                ));
            }
            c.channel = Some(channel.clone());
            Ok(())
        })
    }

    async fn start_recorder(&self, name: &str) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "StartConfigurationRecorder", name, |ctx| {
            let c = ctx.res.config.entry(ctx.region.to_string()).or_default();
            if c.recorder.as_ref().is_none_or(|r| r.name != name) {
                return Err(fail(
                    "NoSuchConfigurationRecorderException",
                    400,
                    format!("Cannot find configuration recorder with the specified name '{name}'."),
                ));
            }
            if c.channel.is_none() {
                return Err(fail(
                    "NoAvailableDeliveryChannelException",
                    400,
                    "Delivery channel is not available to start configuration recorder.",
                ));
            }
            c.recording = true;
            Ok(())
        })
    }

    async fn is_recording(&self, name: &str) -> AwsResult<bool> {
        self.aws.read(&self.region, SERVICE, "DescribeConfigurationRecorderStatus", name, |ctx| {
            let c = ctx.res.config.get(&self.region);
            match c.and_then(|c| c.recorder.as_ref()) {
                Some(r) if r.name == name => Ok(c.is_some_and(|c| c.recording)),
                _ => Err(fail(
                    "NoSuchConfigurationRecorderException",
                    400,
                    format!("Cannot find configuration recorder with the specified name '{name}'."),
                )),
            }
        })
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// A recorder (someone else's, e.g. Control Tower's) in `region`, recording or not.
    pub fn with_recorder(&self, region: &str, recorder: &Recorder, recording: bool) {
        self.edit(|r| {
            let c = r.config.entry(region.to_string()).or_default();
            c.recorder = Some(recorder.clone());
            c.recording = recording;
        });
    }

    /// Config's state in `region`.
    pub fn config(&self, region: &str) -> ConfigRegion {
        self.world().now.config.get(region).cloned().unwrap_or_default()
    }
}
