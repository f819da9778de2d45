//! The GuardDuty operations a SecurityBaseline uses: the region's one detector, found or
//! created, and its features converged. Never DeleteDetector.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_guardduty::types::{
    DetectorFeature, DetectorFeatureConfiguration, FeatureStatus, FindingPublishingFrequency,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};

/// Every detector feature GuardDuty takes in CreateDetector/UpdateDetector. A feature left
/// out of CreateDetector is turned on (and billed) by default, so every one is always sent.
/// `EKS_RUNTIME_MONITORING` is not listed: AWS refuses it together with its successor
/// `RUNTIME_MONITORING`.
pub const FEATURES: [&str; 6] = [
    "S3_DATA_EVENTS",
    "EKS_AUDIT_LOGS",
    "EBS_MALWARE_PROTECTION",
    "RDS_LOGIN_EVENTS",
    "LAMBDA_NETWORK_LOGS",
    "RUNTIME_MONITORING",
];

/// Lambda Protection.
pub const LAMBDA_NETWORK_LOGS: &str = "LAMBDA_NETWORK_LOGS";

/// A detector's settings as lakeops sends and reads them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectorSettings {
    pub enabled: bool,
    /// FIFTEEN_MINUTES, ONE_HOUR or SIX_HOURS.
    pub finding_publishing_frequency: String,
    /// Feature name -> enabled.
    pub features: BTreeMap<String, bool>,
}

/// What GetDetector tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DetectorInfo {
    pub id: String,
    pub settings: DetectorSettings,
    pub tags: BTreeMap<String, String>,
}

/// The GuardDuty calls lakeops makes; one AWS request each.
#[async_trait]
pub trait GuardDutyApi: Send + Sync {
    /// ListDetectors: the region's detector ids (AWS allows one).
    async fn list_detectors(&self) -> AwsResult<Vec<String>>;
    /// GetDetector. `Ok(None)` when there is no such detector.
    async fn get_detector(&self, id: &str) -> AwsResult<Option<DetectorInfo>>;
    /// CreateDetector with these settings (every feature in `settings.features` sent) and
    /// tags (GuardDuty takes tags only here); returns the detector id.
    async fn create_detector(&self, settings: &DetectorSettings, tags: &BTreeMap<String, String>) -> AwsResult<String>;
    /// UpdateDetector to these settings.
    async fn update_detector(&self, id: &str, settings: &DetectorSettings) -> AwsResult<()>;
}

/// [`GuardDutyApi`] over the AWS SDK.
pub struct SdkGuardDuty {
    client: aws_sdk_guardduty::Client,
}

impl SdkGuardDuty {
    /// Wraps a client.
    pub fn new(client: aws_sdk_guardduty::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("guardduty", operation, resource, err)
}

fn features(settings: &DetectorSettings) -> Vec<DetectorFeatureConfiguration> {
    settings
        .features
        .iter()
        .map(|(name, on)| {
            DetectorFeatureConfiguration::builder()
                .name(DetectorFeature::from(name.as_str()))
                .status(if *on { FeatureStatus::Enabled } else { FeatureStatus::Disabled })
                .build()
        })
        .collect()
}

#[async_trait]
impl GuardDutyApi for SdkGuardDuty {
    async fn list_detectors(&self) -> AwsResult<Vec<String>> {
        let out = self.client.list_detectors().send().await.map_err(|e| sdk_error("ListDetectors", "detectors", &e))?;
        Ok(out.detector_ids.unwrap_or_default())
    }

    async fn get_detector(&self, id: &str) -> AwsResult<Option<DetectorInfo>> {
        let out = match self.client.get_detector().detector_id(id).send().await {
            Ok(out) => out,
            Err(e) => {
                let err = sdk_error("GetDetector", id, &e);
                return if err.is_not_found() { Ok(None) } else { Err(err) };
            }
        };
        let features = out
            .features()
            .iter()
            .filter_map(|f| {
                let name = f.name()?.as_str().to_string();
                Some((name, f.status() == Some(&FeatureStatus::Enabled)))
            })
            .collect();
        Ok(Some(DetectorInfo {
            id: id.to_string(),
            settings: DetectorSettings {
                enabled: out.status().is_some_and(|s| s.as_str() == "ENABLED"),
                finding_publishing_frequency: out
                    .finding_publishing_frequency()
                    .map(|f| f.as_str().to_string())
                    .unwrap_or_default(),
                features,
            },
            tags: out.tags.unwrap_or_default().into_iter().collect(),
        }))
    }

    async fn create_detector(&self, settings: &DetectorSettings, tags: &BTreeMap<String, String>) -> AwsResult<String> {
        let out = self
            .client
            .create_detector()
            .enable(settings.enabled)
            .finding_publishing_frequency(FindingPublishingFrequency::from(
                settings.finding_publishing_frequency.as_str(),
            ))
            .set_features(Some(features(settings)))
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| sdk_error("CreateDetector", "detector", &e))?;
        Ok(out.detector_id.unwrap_or_default())
    }

    async fn update_detector(&self, id: &str, settings: &DetectorSettings) -> AwsResult<()> {
        self.client
            .update_detector()
            .detector_id(id)
            .enable(settings.enabled)
            .finding_publishing_frequency(FindingPublishingFrequency::from(
                settings.finding_publishing_frequency.as_str(),
            ))
            .set_features(Some(features(settings)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("UpdateDetector", id, &e))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_guardduty::operation::create_detector::CreateDetectorOutput;
    use aws_sdk_guardduty::operation::get_detector::{GetDetectorError, GetDetectorOutput};
    use aws_sdk_guardduty::operation::list_detectors::ListDetectorsOutput;
    use aws_sdk_guardduty::types::{DetectorFeatureConfigurationResult, DetectorFeatureResult, DetectorStatus};
    use aws_smithy_mocks::mock;

    use super::*;

    fn client(rules: &[aws_smithy_mocks::Rule]) -> SdkGuardDuty {
        SdkGuardDuty::new(aws_sdk_guardduty::Client::from_conf(
            crate::aws::mocked_config!(aws_sdk_guardduty, rules).build(),
        ))
    }

    fn all_features(lambda: bool) -> DetectorSettings {
        DetectorSettings {
            enabled: true,
            finding_publishing_frequency: "SIX_HOURS".into(),
            features: FEATURES.iter().map(|f| (f.to_string(), lambda && *f == LAMBDA_NETWORK_LOGS)).collect(),
        }
    }

    #[tokio::test]
    async fn create_sends_every_feature_and_the_tags() {
        let create = mock!(aws_sdk_guardduty::Client::create_detector)
            .match_requests(|r| {
                let features = r.features();
                features.len() == FEATURES.len()
                    && features.iter().all(|f| {
                        let on = f.status() == Some(&FeatureStatus::Enabled);
                        on == (f.name().map(|n| n.as_str()) == Some(LAMBDA_NETWORK_LOGS))
                    })
                    && r.tags().is_some_and(|t| t.get("lakeops.dev/owner").map(String::as_str) == Some("/eu"))
                    && r.enable() == Some(true)
            })
            .then_output(|| CreateDetectorOutput::builder().detector_id("d-1").build());
        let tags = BTreeMap::from([("lakeops.dev/owner".to_string(), "/eu".to_string())]);
        assert_eq!(client(&[create]).create_detector(&all_features(true), &tags).await.expect("mocked answer"), "d-1");
    }

    #[tokio::test]
    async fn a_detector_reads_back_with_its_features_and_a_missing_one_is_none() {
        let list = mock!(aws_sdk_guardduty::Client::list_detectors)
            .then_output(|| ListDetectorsOutput::builder().detector_ids("d-1").build());
        let get = mock!(aws_sdk_guardduty::Client::get_detector).then_output(|| {
            GetDetectorOutput::builder()
                .status(DetectorStatus::Enabled)
                .finding_publishing_frequency(FindingPublishingFrequency::SixHours)
                .features(
                    DetectorFeatureConfigurationResult::builder()
                        .name(DetectorFeatureResult::LambdaNetworkLogs)
                        .status(FeatureStatus::Enabled)
                        .build(),
                )
                .build()
        });
        let missing = mock!(aws_sdk_guardduty::Client::get_detector).then_error(|| {
            GetDetectorError::BadRequestException(
                aws_sdk_guardduty::types::error::BadRequestException::builder()
                    .message(
                        "The request is rejected because the input detectorId is not owned by the current account.",
                    )
                    .build(),
            )
        });
        let gd = client(&[list, get, missing]);
        assert_eq!(gd.list_detectors().await.expect("mocked answer"), ["d-1"]);
        let d = gd.get_detector("d-1").await.expect("mocked answer").expect("found");
        assert!(d.settings.enabled);
        assert_eq!(d.settings.features.get(LAMBDA_NETWORK_LOGS), Some(&true));
        assert!(gd.get_detector("d-2").await.is_err(), "a bad request is not taken for absence");
    }
}
