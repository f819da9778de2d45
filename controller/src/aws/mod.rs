//! AWS access: configuration loaded once, one adapter per service behind a narrow trait,
//! and a recorder that counts every request (metrics, call budgets in tests, fault hook).
//!
//! `IDEMPOTENCY.md` beside this file lists every create the controller sends, whether AWS makes
//! a repeat harmless, and what happens when an answer is lost.
pub mod apigateway;
pub mod backup;
pub mod clients;
pub mod cloudtrail;
pub mod cloudwatch;
pub mod config;
pub mod dynamodb;
pub mod error;
pub mod events;
#[cfg(any(test, feature = "fake-aws"))]
pub mod fake;
pub mod guardduty;
pub mod iam;
pub mod inspector;
pub mod kms;
pub mod lambda;
pub mod logs;
pub mod ratelimit;
pub mod recorder;
pub mod requests;
pub mod s3;
pub mod sns;
pub mod stepfunctions;

use std::time::Duration;

/// Test support: the config builder of SDK `$sdk` (e.g. `aws_sdk_kms`) answering from
/// aws-smithy-mocks `$rules` in order, in eu-west-1, with dummy credentials and no retries
/// (callers may set another retry policy or add interceptors before `build()`). What
/// `aws_smithy_mocks::mock_client!` does, by hand: that macro needs each SDK's `test-util`
/// feature, which this crate does not enable.
#[cfg(test)]
macro_rules! mocked_config {
    ($sdk:ident, $rules:expr, $mode:expr) => {{
        let mocks = $rules
            .iter()
            .fold(aws_smithy_mocks::MockResponseInterceptor::new().rule_mode($mode), |m, r| m.with_rule(r));
        $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("eu-west-1"))
            .credentials_provider($sdk::config::Credentials::new("test", "test", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .interceptor(mocks)
    }};
    ($sdk:ident, $rules:expr) => {
        $crate::aws::mocked_config!($sdk, $rules, aws_smithy_mocks::RuleMode::Sequential)
    };
}
#[cfg(test)]
pub(crate) use mocked_config;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Loads the shared AWS configuration: the standard credential chain (IRSA, Pod Identity,
/// environment), `AWS_ENDPOINT_URL` for emulators, standard retries and bounded timeouts.
/// `region` is the default for clients that are not given one; every lake's clients are
/// built for `spec.region`.
pub async fn load(region: Option<String>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(4))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    loader.load().await
}
