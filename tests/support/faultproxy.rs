//! A fault-injecting HTTP proxy between the controller and moto: the failures AWS and the
//! network really produce, at chosen rates, decided by a seed.
//!
//! Per request, in this order (each with its own rate):
//! - **error**: answered by the proxy without forwarding, as AWS would answer in the request's
//!   protocol: 500 `InternalError`, 503 `SlowDown` / `ServiceUnavailable`, a throttling code
//!   (400 for the JSON and query protocols, 429 for Lambda), or a 502 without a code (a load
//!   balancer's answer).
//! - **stall**: the proxy waits `stall` (longer than the SDK's attempt timeout) before going on.
//! - **drop**: for writes only, the request is forwarded, moto carries it out, and the
//!   connection is then closed without an answer: the client cannot know the write happened.
//! - **latency**: up to `max_latency` before forwarding.
//!
//! Each decision is a pure function of the seed, the request's operation and how many requests
//! of that operation came before, so one seed gives the same faults to the same sequence of
//! calls; concurrent reconciles still interleave differently from run to run.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Fault rates, each in `[0, 1]`, and their sizes.
#[derive(Clone, Debug)]
pub struct Faults {
    pub seed: u64,
    /// Requests answered with an error instead of being forwarded.
    pub error_rate: f64,
    /// Requests held for `stall` before being handled.
    pub stall_rate: f64,
    pub stall: Duration,
    /// Writes forwarded and then left without an answer (connection closed).
    pub drop_rate: f64,
    /// Requests delayed by up to `max_latency`.
    pub latency_rate: f64,
    pub max_latency: Duration,
    /// Writes of these operations (`service:Operation`, e.g. `states:CreateStateMachine`)
    /// forwarded and then left without an answer, the first n of each: a targeted lost answer.
    pub drop_first: BTreeMap<String, u64>,
}

impl Faults {
    /// No faults: every request is forwarded as it is.
    pub fn none(seed: u64) -> Self {
        Self {
            seed,
            error_rate: 0.0,
            stall_rate: 0.0,
            stall: Duration::from_secs(25),
            drop_rate: 0.0,
            latency_rate: 0.0,
            max_latency: Duration::ZERO,
            drop_first: BTreeMap::new(),
        }
    }
}

/// What the proxy did, per operation (`service:Operation`).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub forwarded: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub stalls: BTreeMap<String, u64>,
    /// Writes that reached moto but whose answer the client never got.
    pub dropped: BTreeMap<String, u64>,
}

impl Tally {
    /// The sum over operations of one counter.
    pub fn total(counts: &BTreeMap<String, u64>) -> u64 {
        counts.values().sum()
    }
}

struct Shared {
    faults: Mutex<Faults>,
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    tally: Mutex<Tally>,
    /// Requests seen so far per operation, for the per-operation decision sequence.
    seen: Mutex<BTreeMap<String, u64>>,
}

/// A running proxy; dropped, it stops accepting connections.
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: give it to the controller as `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str, faults: Faults) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the fault proxy")?;
        let addr: SocketAddr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            faults: Mutex::new(faults),
            upstream: upstream.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            tally: Mutex::default(),
            seen: Mutex::default(),
        });
        let accept = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = accept.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(shared.clone(), req));
                    // An error here is how a dropped answer looks: the connection just ends.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { endpoint: format!("http://{addr}"), shared, task })
    }

    /// Changes the fault rates from now on (e.g. none, to let everything settle).
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = faults;
    }

    /// What the proxy did so far.
    pub fn tally(&self) -> Tally {
        self.shared.tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// The request's service (from the SigV4 credential scope) and operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub service: String,
    pub name: String,
    pub write: bool,
    protocol: Protocol,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// `X-Amz-Target` and a JSON body: KMS, DynamoDB, CloudTrail, CloudWatch Logs.
    Json,
    /// `Action=...` form bodies: IAM, STS.
    Query,
    /// REST with XML errors: S3.
    RestXml,
    /// REST with JSON errors: Lambda.
    RestJson,
}

/// Reads what a request is, from its headers, path and body.
pub fn operation(method: &hyper::Method, path: &str, headers: &hyper::HeaderMap, body: &[u8]) -> Operation {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    // `Credential=AKID/20260101/eu-west-1/kms/aws4_request`
    let service = header("authorization")
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("unknown")
        .to_string();
    let read_verb = |name: &str| ["Get", "Describe", "List", "Head"].iter().any(|p| name.starts_with(p));
    if let Some((_, name)) = header("x-amz-target").split_once('.') {
        let write = !read_verb(name);
        return Operation { service, name: name.to_string(), write, protocol: Protocol::Json };
    }
    let form = String::from_utf8_lossy(body);
    if let Some(action) = form.split('&').find_map(|p| p.strip_prefix("Action=")) {
        let write = !read_verb(action);
        return Operation { service, name: action.to_string(), write, protocol: Protocol::Query };
    }
    let write = !matches!(*method, hyper::Method::GET | hyper::Method::HEAD);
    let (protocol, name) = if service == "lambda" {
        let name = match (method.as_str(), path.trim_end_matches('/').ends_with("/functions")) {
            ("POST", true) => "CreateFunction".to_string(),
            ("POST", false) if path.contains("/policy") => "AddPermission".to_string(),
            _ => format!("{method} {}", path.split('?').next().unwrap_or_default()),
        };
        (Protocol::RestJson, name)
    } else if service == "apigateway" {
        // The two creates AWS does not make idempotent are named; the rest by verb and path.
        let p = path.split('?').next().unwrap_or_default().trim_end_matches('/');
        let name = match (method.as_str(), p) {
            ("POST", "/restapis") => "CreateRestApi".to_string(),
            ("POST", "/usageplans") => "CreateUsagePlan".to_string(),
            _ => format!("{method} {p}"),
        };
        (Protocol::RestJson, name)
    } else {
        // Path-style S3: `/bucket` alone with PUT and no subresource is CreateBucket.
        let (p, query) = path.split_once('?').unwrap_or((path, ""));
        let bucket_only = p.trim_matches('/').split('/').count() == 1;
        let name = if *method == hyper::Method::PUT && bucket_only && query.is_empty() {
            "CreateBucket".to_string()
        } else {
            let sub = query.split('&').next().and_then(|q| q.split('=').next()).unwrap_or_default();
            format!("{method} {}{sub}", if bucket_only { "bucket?" } else { "object?" })
        };
        (Protocol::RestXml, name)
    };
    Operation { service, name, write, protocol }
}

/// A number in `[0, 1)` fixed by the seed, the operation, its ordinal and the fault kind.
pub(crate) fn roll(seed: u64, op: &str, ordinal: u64, kind: u64) -> f64 {
    let mut h = seed ^ kind.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ ordinal.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    for b in op.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
    }
    fastrand::Rng::with_seed(h).f64()
}

/// The error AWS would send for `op`, picked by `pick` in `[0, 1)`.
fn aws_error(op: &Operation, pick: f64) -> Response<Full<Bytes>> {
    let (status, code) = match (pick * 4.0) as u32 {
        0 => (StatusCode::INTERNAL_SERVER_ERROR, Some("InternalError")),
        1 => (
            StatusCode::SERVICE_UNAVAILABLE,
            Some(if op.protocol == Protocol::RestXml { "SlowDown" } else { "ServiceUnavailable" }),
        ),
        2 => match op.protocol {
            Protocol::RestXml => (StatusCode::SERVICE_UNAVAILABLE, Some("SlowDown")),
            Protocol::RestJson => (StatusCode::TOO_MANY_REQUESTS, Some("TooManyRequestsException")),
            Protocol::Query => (StatusCode::BAD_REQUEST, Some("Throttling")),
            Protocol::Json => (StatusCode::BAD_REQUEST, Some("ThrottlingException")),
        },
        _ => (StatusCode::BAD_GATEWAY, None),
    };
    let builder = Response::builder().status(status);
    let Some(code) = code else {
        return builder.body(Full::new(Bytes::from_static(b"Bad Gateway"))).unwrap_or_default();
    };
    let message = "injected by the fault proxy";
    let (content_type, body) = match op.protocol {
        Protocol::Json => ("application/x-amz-json-1.1", format!(r#"{{"__type":"{code}","message":"{message}"}}"#)),
        Protocol::RestJson => ("application/json", format!(r#"{{"Type":"User","message":"{message}"}}"#)),
        Protocol::Query => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>"
            ),
        ),
        Protocol::RestXml => {
            ("application/xml", format!("<Error><Code>{code}</Code><Message>{message}</Message></Error>"))
        }
    };
    builder
        .header("content-type", content_type)
        .header("x-amzn-errortype", code)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

/// Why a connection is closed without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("answer dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let op = operation(&parts.method, &path, &parts.headers, &body);
    let key = format!("{}:{}", op.service, op.name);
    let faults = shared.faults.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let ordinal = {
        let mut seen = shared.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = seen.entry(key.clone()).or_default();
        *n += 1;
        *n
    };
    let count = |pick: fn(&mut Tally) -> &mut BTreeMap<String, u64>| {
        let mut tally = shared.tally.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *pick(&mut tally).entry(key.clone()).or_default() += 1;
    };

    if roll(faults.seed, &key, ordinal, 1) < faults.error_rate {
        count(|t| &mut t.errors);
        return Ok(aws_error(&op, roll(faults.seed, &key, ordinal, 2)));
    }
    if roll(faults.seed, &key, ordinal, 3) < faults.stall_rate {
        count(|t| &mut t.stalls);
        tokio::time::sleep(faults.stall).await;
    }
    if roll(faults.seed, &key, ordinal, 4) < faults.latency_rate {
        tokio::time::sleep(faults.max_latency.mul_f64(roll(faults.seed, &key, ordinal, 5))).await;
    }

    let uri = format!("{}{path}", shared.upstream);
    let mut forward = Request::builder().method(parts.method.clone()).uri(&uri);
    for (name, value) in &parts.headers {
        forward = forward.header(name, value);
    }
    let forward = forward.body(Full::new(body)).map_err(|_| Dropped)?;
    let response = shared.client.request(forward).await.map_err(|_| Dropped)?;
    let (rparts, rbody) = response.into_parts();
    let rbody = rbody.collect().await.map_err(|_| Dropped)?.to_bytes();
    count(|t| &mut t.forwarded);

    let targeted = faults.drop_first.get(&key).is_some_and(|n| ordinal <= *n);
    if op.write && (targeted || roll(faults.seed, &key, ordinal, 6) < faults.drop_rate) {
        count(|t| &mut t.dropped);
        return Err(Dropped);
    }
    Ok(Response::from_parts(rparts, Full::new(rbody)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> hyper::HeaderMap {
        let mut map = hyper::HeaderMap::new();
        for (k, v) in pairs {
            map.insert(hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        map
    }

    const AUTH_KMS: &str =
        "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/kms/aws4_request, SignedHeaders=host";
    const AUTH_S3: &str = "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/s3/aws4_request, SignedHeaders=host";
    const AUTH_IAM: &str =
        "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host";

    #[test]
    fn operations_are_read_from_every_protocol() {
        let kms = operation(
            &hyper::Method::POST,
            "/",
            &headers(&[("authorization", AUTH_KMS), ("x-amz-target", "TrentService.CreateKey")]),
            b"{}",
        );
        assert_eq!((kms.service.as_str(), kms.name.as_str(), kms.write), ("kms", "CreateKey", true));
        let describe = operation(
            &hyper::Method::POST,
            "/",
            &headers(&[("authorization", AUTH_KMS), ("x-amz-target", "TrentService.DescribeKey")]),
            b"{}",
        );
        assert!(!describe.write);
        let iam = operation(
            &hyper::Method::POST,
            "/",
            &headers(&[("authorization", AUTH_IAM)]),
            b"Action=CreateRole&Version=2010-05-08",
        );
        assert_eq!((iam.service.as_str(), iam.name.as_str(), iam.write), ("iam", "CreateRole", true));
        let bucket = operation(&hyper::Method::PUT, "/lake-raw", &headers(&[("authorization", AUTH_S3)]), b"");
        assert_eq!((bucket.name.as_str(), bucket.write), ("CreateBucket", true));
        let policy = operation(&hyper::Method::PUT, "/lake-raw?policy", &headers(&[("authorization", AUTH_S3)]), b"");
        assert_eq!((policy.name.as_str(), policy.write), ("PUT bucket?policy", true));
        let get = operation(&hyper::Method::GET, "/lake-raw?tagging", &headers(&[("authorization", AUTH_S3)]), b"");
        assert!(!get.write);
        let gw = "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/apigateway/aws4_request, SignedHeaders=host";
        let create = operation(&hyper::Method::POST, "/restapis", &headers(&[("authorization", gw)]), b"{}");
        assert_eq!(
            (create.service.as_str(), create.name.as_str(), create.write),
            ("apigateway", "CreateRestApi", true)
        );
        let stage =
            operation(&hyper::Method::PATCH, "/restapis/abc/stages/ingest", &headers(&[("authorization", gw)]), b"{}");
        assert_eq!((stage.name.as_str(), stage.write), ("PATCH /restapis/abc/stages/ingest", true));
    }

    #[test]
    fn one_seed_gives_the_same_decisions_and_rates_are_honoured() {
        let rolls: Vec<f64> = (0..1000).map(|i| roll(7, "kms:CreateKey", i, 6)).collect();
        assert_eq!(rolls, (0..1000).map(|i| roll(7, "kms:CreateKey", i, 6)).collect::<Vec<_>>());
        let hits = rolls.iter().filter(|r| **r < 0.3).count();
        assert!((250..350).contains(&hits), "{hits} of 1000 under 0.3");
        assert_ne!(roll(7, "kms:CreateKey", 1, 6), roll(8, "kms:CreateKey", 1, 6));
    }
}
