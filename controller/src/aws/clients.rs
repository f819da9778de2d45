//! Builds the per-region adapters from one shared SDK configuration, every client counted by
//! the [`RequestRecorder`].
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_config::{Region, SdkConfig};
use tokio::sync::OnceCell;

use super::dynamodb::{DynamoApi, SdkDynamo};
use super::error::{AwsError, AwsResult};
use super::iam::{IamApi, SdkIam};
use super::kms::{KmsApi, SdkKms};
use super::lambda::{LambdaApi, SdkLambda};
use super::logs::{LogsApi, SdkLogs};
use super::ratelimit::RateLimiter;
use super::recorder::RequestRecorder;
use super::s3::{S3Api, SdkS3};

/// The adapters for one region.
#[derive(Clone)]
pub struct Regional {
    pub s3: Arc<dyn S3Api>,
    pub kms: Arc<dyn KmsApi>,
    pub dynamodb: Arc<dyn DynamoApi>,
    pub cloudtrail: Arc<dyn crate::aws::cloudtrail::CloudTrailApi>,
    pub lambda: Arc<dyn LambdaApi>,
    pub logs: Arc<dyn LogsApi>,
    pub guardduty: Arc<dyn crate::aws::guardduty::GuardDutyApi>,
    pub inspector: Arc<dyn crate::aws::inspector::InspectorApi>,
    pub config: Arc<dyn crate::aws::config::ConfigApi>,
    pub sns: Arc<dyn crate::aws::sns::SnsApi>,
    pub events: Arc<dyn crate::aws::events::EventsApi>,
    pub stepfunctions: Arc<dyn crate::aws::stepfunctions::StepFunctionsApi>,
    pub cloudwatch: Arc<dyn crate::aws::cloudwatch::CloudWatchApi>,
    pub apigateway: Arc<dyn crate::aws::apigateway::ApiGatewayApi>,
    pub backup: Arc<dyn crate::aws::backup::BackupApi>,
}

/// Every AWS client lakeops uses; cheap to clone, clones share the cache and the recorder.
#[derive(Clone)]
pub struct AwsClients {
    inner: Arc<Inner>,
}

struct Inner {
    sdk: SdkConfig,
    recorder: RequestRecorder,
    regions: Mutex<HashMap<String, Regional>>,
    iam: std::sync::OnceLock<Arc<dyn IamApi>>,
    account_id: OnceCell<String>,
    /// Lambda control-plane requests per second, per region (the quota is regional).
    lambda_rate: u32,
}

/// Lambda's control-plane quota is about 15 requests a second per account and region;
/// this leaves room for other clients of the same account.
pub const DEFAULT_LAMBDA_RATE: u32 = 10;

/// STS is global; this region is only used when the SDK configuration names none.
const FALLBACK_REGION: &str = "us-east-1";

impl AwsClients {
    pub fn new(sdk: SdkConfig, recorder: RequestRecorder) -> Self {
        Self::with_lambda_rate(sdk, recorder, DEFAULT_LAMBDA_RATE)
    }

    /// Like [`new`](Self::new), with Lambda requests limited to `lambda_rate` a second.
    pub fn with_lambda_rate(sdk: SdkConfig, recorder: RequestRecorder, lambda_rate: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                sdk,
                recorder,
                regions: Mutex::default(),
                iam: std::sync::OnceLock::new(),
                account_id: OnceCell::new(),
                lambda_rate,
            }),
        }
    }

    pub fn recorder(&self) -> &RequestRecorder {
        &self.inner.recorder
    }

    /// The adapters for `region`, built once and cached. Path-style S3 addressing when the
    /// configuration overrides the endpoint (emulators have no `<bucket>.<host>` DNS).
    pub fn region(&self, region: &str) -> Regional {
        let mut regions = self.inner.regions.lock().unwrap_or_else(PoisonError::into_inner);
        regions.entry(region.to_string()).or_insert_with(|| self.build(region)).clone()
    }

    fn build(&self, region: &str) -> Regional {
        let sdk = &self.inner.sdk;
        let region = Region::new(region.to_string());
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .region(region.clone())
            .force_path_style(sdk.endpoint_url().is_some())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let kms = aws_sdk_kms::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let cloudtrail = aws_sdk_cloudtrail::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let lambda = aws_sdk_lambda::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let logs = aws_sdk_cloudwatchlogs::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let guardduty = aws_sdk_guardduty::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let inspector = aws_sdk_inspector2::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let config = aws_sdk_config::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let events = aws_sdk_eventbridge::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let sfn = aws_sdk_sfn::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let sns = aws_sdk_sns::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let cloudwatch = aws_sdk_cloudwatch::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let apigateway = aws_sdk_apigateway::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let backup = aws_sdk_backup::config::Builder::from(sdk)
            .region(region.clone())
            .interceptor(self.inner.recorder.interceptor())
            .build();
        let rate = self.inner.lambda_rate;
        Regional {
            cloudwatch: Arc::new(crate::aws::cloudwatch::SdkCloudWatch::new(aws_sdk_cloudwatch::Client::from_conf(
                cloudwatch,
            ))),
            backup: Arc::new(crate::aws::backup::SdkBackup::new(aws_sdk_backup::Client::from_conf(backup))),
            sns: Arc::new(crate::aws::sns::SdkSns::new(aws_sdk_sns::Client::from_conf(sns))),
            guardduty: Arc::new(crate::aws::guardduty::SdkGuardDuty::new(aws_sdk_guardduty::Client::from_conf(
                guardduty,
            ))),
            inspector: Arc::new(crate::aws::inspector::SdkInspector::new(aws_sdk_inspector2::Client::from_conf(
                inspector,
            ))),
            config: Arc::new(crate::aws::config::SdkConfigService::new(aws_sdk_config::Client::from_conf(config))),
            events: Arc::new(crate::aws::events::SdkEvents::new(aws_sdk_eventbridge::Client::from_conf(events))),
            stepfunctions: Arc::new(crate::aws::stepfunctions::SdkStepFunctions::new(aws_sdk_sfn::Client::from_conf(
                sfn,
            ))),
            apigateway: Arc::new(crate::aws::apigateway::SdkApiGateway::new(aws_sdk_apigateway::Client::from_conf(
                apigateway,
            ))),
            lambda: Arc::new(SdkLambda::new(
                aws_sdk_lambda::Client::from_conf(lambda),
                Arc::new(RateLimiter::new(rate, rate)),
            )),
            logs: Arc::new(SdkLogs::new(aws_sdk_cloudwatchlogs::Client::from_conf(logs))),
            cloudtrail: Arc::new(crate::aws::cloudtrail::SdkCloudTrail::new(aws_sdk_cloudtrail::Client::from_conf(
                cloudtrail,
            ))),
            s3: Arc::new(SdkS3::new(aws_sdk_s3::Client::from_conf(s3))),
            kms: Arc::new(SdkKms::new(aws_sdk_kms::Client::from_conf(kms))),
            dynamodb: Arc::new(SdkDynamo::new(aws_sdk_dynamodb::Client::from_conf(dynamodb))),
        }
    }

    /// The IAM adapter. IAM is a global service: one client, signed for the SDK
    /// configuration's region (or us-east-1 when it names none).
    pub fn iam(&self) -> Arc<dyn IamApi> {
        self.inner
            .iam
            .get_or_init(|| {
                let sdk = &self.inner.sdk;
                let mut config = aws_sdk_iam::config::Builder::from(sdk).interceptor(self.inner.recorder.interceptor());
                if sdk.region().is_none() {
                    config = config.region(Region::from_static(FALLBACK_REGION));
                }
                Arc::new(SdkIam::new(aws_sdk_iam::Client::from_conf(config.build())))
            })
            .clone()
    }

    /// The account id from STS GetCallerIdentity, fetched on first use and cached; a failed
    /// call is not cached, the next caller tries again.
    pub async fn account_id(&self) -> AwsResult<String> {
        self.inner.account_id.get_or_try_init(|| self.fetch_account_id()).await.cloned()
    }

    async fn fetch_account_id(&self) -> AwsResult<String> {
        const OP: &str = "GetCallerIdentity";
        let sdk = &self.inner.sdk;
        let mut config = aws_sdk_sts::config::Builder::from(sdk).interceptor(self.inner.recorder.interceptor());
        if sdk.region().is_none() {
            config = config.region(Region::from_static(FALLBACK_REGION));
        }
        let out = aws_sdk_sts::Client::from_conf(config.build())
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| super::error::from_sdk("sts", OP, "caller identity", &e))?;
        out.account.ok_or_else(|| {
            AwsError::classify("sts", OP, "caller identity", None, Some("the response has no Account"), None)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(endpoint: Option<&str>) -> AwsClients {
        let mut sdk = SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::from_static("eu-west-1"));
        if let Some(endpoint) = endpoint {
            sdk = sdk.endpoint_url(endpoint);
        }
        AwsClients::new(sdk.build(), RequestRecorder::new())
    }

    #[test]
    fn clients_are_built_once_per_region() {
        let aws = clients(Some("http://127.0.0.1:5000"));

        let first = aws.region("eu-west-1");
        let again = aws.clone().region("eu-west-1");
        let other = aws.region("us-east-1");

        assert!(Arc::ptr_eq(&first.kms, &again.kms) && Arc::ptr_eq(&first.s3, &again.s3));
        assert!(Arc::ptr_eq(&first.dynamodb, &again.dynamodb));
        assert!(!Arc::ptr_eq(&first.kms, &other.kms));
    }
}
