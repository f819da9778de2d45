//! Kubernetes API faults for a controller running in this process: a kube client whose
//! requests pass through a layer that refuses, at chosen rates, status writes of lakeops
//! objects (HTTP 500, nothing written: e.g. the write that should record a create) and the
//! finalizer patches (HTTP 409 Conflict, as when another writer changed the object).
//! Decisions depend on the seed and the request's ordinal only.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{Method, Request, Response, StatusCode};
use kube::client::{Body, ClientBuilder, DynBody};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Fault rates, each in `[0, 1]`.
#[derive(Clone, Copy, Debug)]
pub struct KubeFaults {
    pub seed: u64,
    /// Status writes (PATCH `.../status` of a lakeops object) refused with 500.
    pub status_write_failure_rate: f64,
    /// Finalizer patches (JSON patch of a lakeops object) refused with 409.
    pub finalizer_conflict_rate: f64,
}

/// What the layer refused so far.
#[derive(Debug, Default)]
pub struct KubeTally {
    pub failed_status_writes: AtomicU64,
    pub finalizer_conflicts: AtomicU64,
}

/// A kube client for `config` whose requests pass through the fault layer.
pub fn client_with_faults(config: kube::Config, faults: KubeFaults, tally: Arc<KubeTally>) -> Result<kube::Client> {
    let layer = FaultLayer { faults, tally, seq: Arc::new(AtomicU64::new(0)) };
    Ok(ClientBuilder::try_from(config)?.with_layer(&layer).build())
}

struct FaultLayer {
    faults: KubeFaults,
    tally: Arc<KubeTally>,
    seq: Arc<AtomicU64>,
}

impl<S> tower::Layer<S> for FaultLayer {
    type Service = FaultService<S>;

    fn layer(&self, inner: S) -> FaultService<S> {
        FaultService { inner, faults: self.faults, tally: self.tally.clone(), seq: self.seq.clone() }
    }
}

#[derive(Clone)]
struct FaultService<S> {
    inner: S,
    faults: KubeFaults,
    tally: Arc<KubeTally>,
    seq: Arc<AtomicU64>,
}

/// An API server `Status` answer.
fn status(code: StatusCode, reason: &str) -> Response<Box<DynBody>> {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "injected by the test's fault layer", "reason": reason, "code": code.as_u16()
    });
    let body =
        Full::new(Bytes::from(body.to_string())).map_err(|e: std::convert::Infallible| -> BoxError { match e {} });
    let mut response = Response::new(Box::new(body) as Box<DynBody>);
    *response.status_mut() = code;
    response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    response
}

impl<S> tower::Service<Request<Body>> for FaultService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Box<DynBody>>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<Box<DynBody>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let ordinal = self.seq.fetch_add(1, Ordering::Relaxed);
        let path = req.uri().path();
        let ours = req.method() == Method::PATCH && path.contains("/apis/lakeops.dev/");
        // The controller patches the object itself (not its status) only for its finalizer:
        // added with a merge patch, removed by kube's JSON patch.
        let finalizer_patch =
            !path.ends_with("/status")
                && req.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| {
                    v.starts_with("application/json-patch") || v.starts_with("application/merge-patch")
                });
        let roll = crate::faultproxy::roll(self.faults.seed, path, ordinal, 7);
        if ours && path.ends_with("/status") && roll < self.faults.status_write_failure_rate {
            self.tally.failed_status_writes.fetch_add(1, Ordering::Relaxed);
            return Box::pin(async { Ok(status(StatusCode::INTERNAL_SERVER_ERROR, "InternalError")) });
        }
        if ours && finalizer_patch && roll < self.faults.finalizer_conflict_rate {
            self.tally.finalizer_conflicts.fetch_add(1, Ordering::Relaxed);
            return Box::pin(async { Ok(status(StatusCode::CONFLICT, "Conflict")) });
        }
        Box::pin(self.inner.call(req))
    }
}
