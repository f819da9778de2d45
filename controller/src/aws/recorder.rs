//! Counts every AWS request lakeops makes: the `lakeops_aws_requests_total` metric, call
//! budgets in tests ("a converged reconcile makes 0 writes") and a fault hook for crash tests.
//!
//! An SDK interceptor counts one per operation invocation, however many attempts the SDK's
//! retries needed, once the operation has finished (so the outcome is known). Tests can also
//! have it keep what each request named ([`RequestRecorder::recording_requests`]).
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextMut, BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, Metadata};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use super::requests::RecordedRequest;
use crate::metrics::AwsLabels;

/// Requests by `(service, operation)`, e.g. `("kms", "DescribeKey")`.
pub type Counts = BTreeMap<(String, String), u64>;

/// Counts AWS requests; cheap to clone, every clone shares the same counts.
#[derive(Clone, Default)]
pub struct RequestRecorder {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    family: Family<AwsLabels, Counter>,
    counts: Mutex<Counts>,
    /// Requests still allowed before the fault hook refuses them; `None` when disarmed.
    budget: Mutex<Option<u64>>,
    /// Distinct requests with what they named; `None` (the default, and in production):
    /// reading them parses request bodies, which only tests need.
    requests: Option<Mutex<BTreeSet<RecordedRequest>>>,
}

impl fmt::Debug for RequestRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRecorder").field("counts", &*lock(&self.inner.counts)).finish_non_exhaustive()
    }
}

/// The counts stay usable even if a thread panicked while holding the lock.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RequestRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A recorder that counts into an existing family, e.g. the one `Metrics` registered.
    pub fn with_family(family: Family<AwsLabels, Counter>) -> Self {
        Self { inner: Arc::new(Inner { family, ..Inner::default() }) }
    }

    /// A recorder that also keeps every distinct request with the resources it named
    /// ([`requests`](Self::requests)), to check them against an IAM policy.
    pub fn recording_requests() -> Self {
        Self { inner: Arc::new(Inner { requests: Some(Mutex::default()), ..Inner::default() }) }
    }

    /// Distinct requests so far (service, operation, region, what they named); `None` unless
    /// built with [`recording_requests`](Self::recording_requests).
    pub fn requests(&self) -> Option<Vec<RecordedRequest>> {
        self.inner.requests.as_ref().map(|r| lock(r).iter().cloned().collect())
    }

    /// The family exported as `lakeops_aws_requests_total{service,operation,outcome}`;
    /// `outcome` is `ok`, AWS's error code, or `error` when there is none (no response).
    pub fn family(&self) -> Family<AwsLabels, Counter> {
        self.inner.family.clone()
    }

    /// Counts so far by `(service, operation)`, all outcomes together. Services are
    /// lowercase (`s3`, `kms`, `dynamodb`, `sts`), operations as AWS names them.
    pub fn snapshot(&self) -> Counts {
        lock(&self.inner.counts).clone()
    }

    /// Requests made since `before` (a [`snapshot`](Self::snapshot)), operations with none left out.
    pub fn since(&self, before: &Counts) -> Counts {
        self.snapshot()
            .into_iter()
            .filter_map(|(key, now)| {
                let delta = now.saturating_sub(before.get(&key).copied().unwrap_or(0));
                (delta > 0).then_some((key, delta))
            })
            .collect()
    }

    /// Fault hook for crash tests: after `n` more requests, every further request fails
    /// before it is sent (and is not counted). `None` disarms it.
    pub fn fail_after(&self, n: Option<u64>) {
        *lock(&self.inner.budget) = n;
    }

    /// The interceptor to pass to `.interceptor(...)` of a service config builder.
    pub fn interceptor(&self) -> RecorderInterceptor {
        RecorderInterceptor { recorder: self.clone() }
    }

    /// Takes one request from the fault hook's budget; false when the request must fail.
    fn admit(&self) -> bool {
        let mut budget = lock(&self.inner.budget);
        match *budget {
            None => true,
            Some(0) => false,
            Some(n) => {
                *budget = Some(n - 1);
                true
            }
        }
    }

    fn record(&self, service: String, operation: String, outcome: String) {
        let labels = AwsLabels { service: service.clone(), operation: operation.clone(), outcome };
        self.inner.family.get_or_create(&labels).inc();
        *lock(&self.inner.counts).entry((service, operation)).or_default() += 1;
    }
}

/// True for operations that only read (`Get*`, `List*`, `Describe*`, `Head*`, `Scan`,
/// `Query`): a converged reconcile makes none but these.
pub fn is_read(operation: &str) -> bool {
    ["Get", "List", "Describe", "Head", "BatchGet"].iter().any(|prefix| operation.starts_with(prefix))
        || matches!(operation, "Scan" | "Query")
}

/// The SDK interceptor behind a [`RequestRecorder`].
#[derive(Clone, Debug)]
pub struct RecorderInterceptor {
    recorder: RequestRecorder,
}

/// The error a request refused by [`RequestRecorder::fail_after`] fails with; also marks the
/// operation in its config bag so it is not counted.
#[derive(Clone, Copy, Debug)]
pub struct FaultInjected;

impl fmt::Display for FaultInjected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request refused by the fault hook (RequestRecorder::fail_after)")
    }
}

impl std::error::Error for FaultInjected {}

impl Storable for FaultInjected {
    type Storer = StoreReplace<Self>;
}

/// What the serialized request named, kept in the config bag until the outcome is known.
#[derive(Clone, Debug)]
struct NamedParams(Vec<(String, String)>);

impl Storable for NamedParams {
    type Storer = StoreReplace<Self>;
}

impl Intercept for RecorderInterceptor {
    fn name(&self) -> &'static str {
        "LakeopsRequestRecorder"
    }

    // Runs once per operation, before the retry loop: the budget counts invocations.
    fn modify_before_serialization(
        &self,
        _context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.recorder.admit() {
            Ok(())
        } else {
            cfg.interceptor_state().store_put(FaultInjected);
            Err(FaultInjected.into())
        }
    }

    // Runs before each attempt is sent, once the endpoint (which holds an S3 bucket, in the
    // host or the path) is applied; the last attempt's parameters are the ones kept.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.recorder.inner.requests.is_some() {
            let service = cfg.load::<Metadata>().map(|m| m.service().to_ascii_lowercase()).unwrap_or_default();
            let params = super::requests::request_params(&service, context.request());
            cfg.interceptor_state().store_put(NamedParams(params));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<FaultInjected>().is_some() {
            return Ok(());
        }
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_ascii_lowercase(), m.name().to_string()),
            None => ("unknown".to_string(), "unknown".to_string()),
        };
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "ok".to_string(),
            _ => context.response().and_then(error_code).unwrap_or_else(|| "error".to_string()),
        };
        if let Some(requests) = &self.recorder.inner.requests {
            let mut params = cfg.load::<NamedParams>().map(|p| p.0.clone()).unwrap_or_default();
            if outcome == "ok"
                && let Some(arn) =
                    context.response().and_then(|r| super::requests::response_arn(&service, &operation, r))
            {
                params.push(("Arn".into(), arn));
            }
            let region = cfg.load::<aws_config::Region>().map(|r| r.to_string());
            lock(requests).insert(RecordedRequest {
                service: service.clone(),
                operation: operation.clone(),
                region,
                params,
            });
        }
        self.recorder.record(service, operation, outcome);
        Ok(())
    }
}

/// AWS's error code from a failed response: the `x-amzn-ErrorType` header or `__type` of the
/// JSON protocols (KMS, DynamoDB), `<Code>` of the XML ones (S3, STS, IAM). None when the
/// response has neither (e.g. S3 HEAD errors, which have no body).
fn error_code(response: &HttpResponse) -> Option<String> {
    let raw = response.headers().get("x-amzn-errortype").map(str::to_string).or_else(|| {
        let body = std::str::from_utf8(response.body().bytes()?).ok()?.trim_start();
        if body.starts_with('{') {
            let json: serde_json::Value = serde_json::from_str(body).ok()?;
            ["__type", "code", "Code"].iter().find_map(|k| json.get(*k)?.as_str().map(str::to_string))
        } else {
            let start = body.find("<Code>")? + "<Code>".len();
            let len = body[start..].find("</Code>")?;
            Some(body[start..start + len].to_string())
        }
    })?;
    // `com.amazonaws.kms#NotFoundException` and `NotFoundException:http://...` both mean
    // `NotFoundException`.
    let code = raw.rsplit('#').next()?.split(':').next()?.trim();
    // A label value must stay small and bounded.
    let sane = !code.is_empty() && code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    sane.then(|| code.to_string())
}

#[cfg(test)]
mod tests {

    use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
    use aws_sdk_kms::types::KeyMetadata;
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::retry::RetryConfig;

    use super::*;
    use crate::aws::error::ErrorKind;
    use crate::aws::kms::{KmsApi, SdkKms};

    fn kms_with(recorder: &RequestRecorder, retry: RetryConfig, rules: &[&Rule]) -> SdkKms {
        let config = crate::aws::mocked_config!(aws_sdk_kms, rules)
            .retry_config(retry)
            .interceptor(recorder.interceptor())
            .build();
        SdkKms::new(aws_sdk_kms::Client::from_conf(config))
    }

    fn described(id: &str) -> DescribeKeyOutput {
        let meta = KeyMetadata::builder().key_id(id).arn(format!("arn:aws:kms:eu-west-1:123456789012:key/{id}"));
        DescribeKeyOutput::builder().key_metadata(meta.build().expect("key metadata")).build()
    }

    fn key(id: &str) -> (String, String) {
        ("kms".to_string(), id.to_string())
    }

    #[tokio::test]
    async fn each_call_counts_once_under_its_service_and_operation() {
        let recorder = RequestRecorder::new();
        let rule = mock!(aws_sdk_kms::Client::describe_key).then_output(|| described("k1"));
        let rule2 = mock!(aws_sdk_kms::Client::describe_key).then_output(|| described("k2"));
        let kms = kms_with(&recorder, RetryConfig::disabled(), &[&rule, &rule2]);
        let before = recorder.snapshot();

        assert!(kms.describe_key("k1").await.is_ok_and(|k| k.is_some()));
        assert!(kms.describe_key("k2").await.is_ok_and(|k| k.is_some()));

        assert_eq!(recorder.since(&before), BTreeMap::from([(key("DescribeKey"), 2)]));
        let ok = AwsLabels { service: "kms".into(), operation: "DescribeKey".into(), outcome: "ok".into() };
        assert_eq!(recorder.family().get_or_create(&ok).get(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn retried_call_counts_once_with_its_final_outcome() {
        let recorder = RequestRecorder::new();
        let throttled = || {
            let mut response = HttpResponse::new(
                StatusCode::try_from(400).expect("status"),
                SdkBody::from(r#"{"__type":"com.amazonaws.kms#ThrottlingException","message":"Rate exceeded"}"#),
            );
            response.headers_mut().insert("content-type", "application/x-amz-json-1.1");
            response
        };
        let rule = mock!(aws_sdk_kms::Client::describe_key).sequence().http_response(throttled).times(3).build();
        let kms = kms_with(&recorder, RetryConfig::standard().with_max_attempts(3), &[&rule]);

        let err = kms.describe_key("k1").await.expect_err("throttling must fail");

        assert_eq!(err.kind, ErrorKind::Retryable, "{err}");
        assert_eq!(rule.num_calls(), 3, "the SDK retried");
        assert_eq!(recorder.snapshot(), BTreeMap::from([(key("DescribeKey"), 1)]));
        let throttled =
            AwsLabels { service: "kms".into(), operation: "DescribeKey".into(), outcome: "ThrottlingException".into() };
        assert_eq!(recorder.family().get_or_create(&throttled).get(), 1);
    }

    #[tokio::test]
    async fn fail_after_one_lets_one_call_through_and_refuses_the_next_unsent() {
        let recorder = RequestRecorder::new();
        let rule = mock!(aws_sdk_kms::Client::describe_key).then_output(|| described("k1"));
        let rule2 = mock!(aws_sdk_kms::Client::describe_key).then_output(|| described("k2"));
        let kms = kms_with(&recorder, RetryConfig::disabled(), &[&rule, &rule2]);
        recorder.fail_after(Some(1));

        assert!(kms.describe_key("k1").await.is_ok_and(|k| k.is_some()));
        let err = kms.describe_key("k2").await.expect_err("the fault hook must refuse");
        assert!(err.message.contains("fault hook"), "{err}");
        assert_eq!(rule2.num_calls(), 0, "the refused request never reached the transport");
        assert_eq!(recorder.snapshot(), BTreeMap::from([(key("DescribeKey"), 1)]));

        recorder.fail_after(None);
        assert!(kms.describe_key("k2").await.is_ok_and(|k| k.is_some()));
        assert_eq!(recorder.snapshot(), BTreeMap::from([(key("DescribeKey"), 2)]));
    }

    #[tokio::test]
    async fn a_recording_recorder_keeps_what_each_request_named_and_a_plain_one_keeps_nothing() {
        let recording = RequestRecorder::recording_requests();
        let rule = mock!(aws_sdk_kms::Client::describe_key).then_output(|| described("k1"));
        let kms = kms_with(&recording, RetryConfig::disabled(), &[&rule]);
        assert!(kms.describe_key("alias/lakeops/sales").await.is_ok_and(|k| k.is_some()));
        let requests = recording.requests().expect("recording");
        assert_eq!(requests.len(), 1, "{requests:?}");
        let r = &requests[0];
        assert_eq!((r.service.as_str(), r.operation.as_str()), ("kms", "DescribeKey"));
        assert_eq!(r.region.as_deref(), Some("eu-west-1"));
        assert_eq!(r.param("KeyId"), Some("alias/lakeops/sales"));

        let plain = RequestRecorder::new();
        let rule = mock!(aws_sdk_kms::Client::describe_key).then_output(|| described("k1"));
        let kms = kms_with(&plain, RetryConfig::disabled(), &[&rule]);
        assert!(kms.describe_key("k1").await.is_ok());
        assert_eq!(plain.requests(), None, "off by default: nothing parsed or kept");
    }

    #[test]
    fn reads_are_gets_lists_describes_heads_scans_and_queries() {
        for op in ["GetBucketPolicy", "ListResourceTags", "DescribeTable", "HeadBucket", "Scan", "Query"] {
            assert!(is_read(op), "{op}");
        }
        for op in ["PutBucketPolicy", "CreateKey", "TagResource", "UpdateTable", "DeleteTable", "EnableKeyRotation"] {
            assert!(!is_read(op), "{op}");
        }
    }

    #[test]
    fn error_codes_are_read_from_json_and_xml_responses() {
        let response =
            |body: &'static str| HttpResponse::new(StatusCode::try_from(400).expect("status"), SdkBody::from(body));
        assert_eq!(
            error_code(&response(r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"}"#))
                .as_deref(),
            Some("ResourceNotFoundException")
        );
        assert_eq!(error_code(&response("<Error><Code>NoSuchBucket</Code></Error>")).as_deref(), Some("NoSuchBucket"));
        assert_eq!(error_code(&response("")), None);
        let mut with_header = response("");
        with_header.headers_mut().insert("x-amzn-ErrorType", "NotFoundException:http://internal.amazon.com/");
        assert_eq!(error_code(&with_header).as_deref(), Some("NotFoundException"));
    }
}
