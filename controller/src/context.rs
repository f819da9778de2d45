//! Everything a reconcile needs, in one place.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use lakeops_crds::{BackupPolicy, DataLake, EtlFunction, SecurityBaseline};

use crate::metrics::Metrics;

/// Settings of a controller process (its command-line flags).
#[derive(Clone, Debug)]
pub struct Config {
    /// Watch only this namespace; `None` watches all.
    pub watch_namespace: Option<String>,
    /// Periodic resync of every object (drift detection).
    pub resync_interval: Duration,
    /// Objects of one kind reconciled at once.
    pub concurrency: u16,
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub metrics_addr: SocketAddr,
    /// Default AWS region for clients that are not tied to a lake.
    pub region: Option<String>,
    /// Permissions boundary attached to every role lakeops generates.
    pub permissions_boundary: Option<String>,
    /// Reconcile SecurityBaselines. They are cluster-scoped and act on account-wide
    /// services, so of several controllers of one account (one per namespace) one does it.
    pub security_baselines: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            watch_namespace: None,
            resync_interval: Duration::from_secs(600),
            concurrency: 8,
            metrics_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            region: None,
            permissions_boundary: None,
            security_baselines: true,
        }
    }
}

/// Caches of the three kinds, for rules that span objects.
#[derive(Clone)]
pub struct Stores {
    pub lakes: Store<DataLake>,
    pub functions: Store<EtlFunction>,
    pub policies: Store<BackupPolicy>,
    /// Empty when this controller does not reconcile baselines (`--security-baselines=false`).
    pub baselines: Store<SecurityBaseline>,
}

/// Shared state of every reconcile.
#[derive(Clone)]
pub struct Context {
    pub client: Client,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub aws: crate::aws::clients::AwsClients,
    pub stores: Stores,
    /// Skips reconciles triggered only by our own status writes.
    pub fingerprints: Arc<crate::reconcile::Fingerprints>,
    /// Serialises writes to documents several objects share (bucket notifications).
    pub locks: Arc<crate::reconcile::KeyedLocks>,
    /// Consecutive failed rounds per object, for retry back-off in seconds.
    pub backoff: Arc<crate::backoff::Backoff>,
}
