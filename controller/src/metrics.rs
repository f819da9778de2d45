//! Prometheus metrics, served on `/metrics` next to the health endpoints.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of reconcile metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

/// Labels of reconcile error metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
    pub reason: &'static str,
}

/// Labels of the objects-by-readiness gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    pub kind: &'static str,
    /// `True`, `False` or `Unknown` (no Ready condition yet).
    pub ready: &'static str,
}

/// Labels of AWS request metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsLabels {
    pub service: String,
    pub operation: String,
    pub outcome: String,
}

/// Labels of status write metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub kind: &'static str,
    pub written: &'static str,
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<KindLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub aws_requests: Family<AwsLabels, Counter>,
    pub status_writes: Family<WriteLabels, Counter>,
    pub drift_corrections: Family<KindLabels, Counter>,
    pub objects: Family<ReadyLabels, Gauge>,
    pub leader: Gauge,
    ready: AtomicBool,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Family::default())
    }
}

impl Metrics {
    /// Metrics exporting `aws_requests` (the request recorder's family) with the rest.
    pub fn new(aws_requests: Family<AwsLabels, Counter>) -> Self {
        let mut registry = Registry::with_prefix("lakeops");
        let reconciles = Family::<KindLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 12))
        });
        let drift_corrections = Family::<KindLabels, Counter>::default();
        let objects = Family::<ReadyLabels, Gauge>::default();
        let leader = Gauge::default();
        let status_writes = Family::<WriteLabels, Counter>::default();
        registry.register("reconciles", "Reconciles started, by kind", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by kind and error class",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile, by kind",
            reconcile_duration.clone(),
        );
        registry.register("aws_requests", "AWS requests sent, by service, operation and outcome", aws_requests.clone());
        registry.register(
            "drift_corrections",
            "Settings found changed out of band and corrected, by kind",
            drift_corrections.clone(),
        );
        registry.register("objects", "Objects watched, by kind and Ready status", objects.clone());
        registry.register(
            "leader",
            "1 while this process reconciles (holds the lease when leader election is on)",
            leader.clone(),
        );
        registry.register(
            "status_writes",
            "Status patches sent (written=true) or skipped because nothing changed (written=false)",
            status_writes.clone(),
        );
        Self {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            aws_requests,
            status_writes,
            drift_corrections,
            objects,
            leader,
            ready: AtomicBool::new(false),
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Records one finished reconcile.
    pub fn observe_reconcile(&self, kind: &'static str, elapsed: Duration) {
        self.reconciles.get_or_create(&KindLabels { kind }).inc();
        self.reconcile_duration.get_or_create(&KindLabels { kind }).observe(elapsed.as_secs_f64());
    }

    /// Records a status write, or one skipped because nothing changed.
    pub fn observe_status_write(&self, kind: &'static str, written: bool) {
        self.status_writes.get_or_create(&WriteLabels { kind, written: if written { "true" } else { "false" } }).inc();
    }

    /// Sets the objects-by-readiness gauge of one kind from the Ready statuses seen.
    pub fn set_objects<'a>(&self, kind: &'static str, ready_statuses: impl IntoIterator<Item = Option<&'a str>>) {
        let (mut t, mut f, mut u) = (0i64, 0i64, 0i64);
        for s in ready_statuses {
            match s {
                Some("True") => t += 1,
                Some("False") => f += 1,
                _ => u += 1,
            }
        }
        for (ready, n) in [("True", t), ("False", f), ("Unknown", u)] {
            self.objects.get_or_create(&ReadyLabels { kind, ready }).set(n);
        }
    }

    /// Marks the controller ready (caches synced) for `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::{StatusCode, header};
    use axum::routing::get;

    let m = metrics.clone();
    let r = metrics.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m.clone();
                async move {
                    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.encode())
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let r = r.clone();
                async move {
                    if r.is_ready() {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
                    }
                }
            }),
        );
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_the_documented_metrics() {
        let m = Metrics::default();
        m.observe_reconcile("DataLake", Duration::from_millis(20));
        m.observe_status_write("DataLake", false);
        m.aws_requests
            .get_or_create(&AwsLabels {
                service: "s3".into(),
                operation: "GetBucketPolicy".into(),
                outcome: "ok".into(),
            })
            .inc();
        m.set_objects("DataLake", [Some("True"), Some("True"), None, Some("False")]);
        m.leader.set(1);
        let text = m.encode();
        for name in [
            "lakeops_reconciles_total{kind=\"DataLake\"} 1",
            "lakeops_reconcile_duration_seconds_count{kind=\"DataLake\"} 1",
            "lakeops_status_writes_total{kind=\"DataLake\",written=\"false\"} 1",
            "lakeops_aws_requests_total{service=\"s3\",operation=\"GetBucketPolicy\",outcome=\"ok\"} 1",
            "lakeops_objects{kind=\"DataLake\",ready=\"True\"} 2",
            "lakeops_objects{kind=\"DataLake\",ready=\"Unknown\"} 1",
            "lakeops_leader 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
