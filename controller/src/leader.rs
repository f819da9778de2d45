//! Leader election over a `coordination.k8s.io/v1` Lease, so that several replicas are
//! safe: only the holder reconciles; a standby takes over within the lease duration when
//! the holder dies; on shutdown the holder releases the lease at once.
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::{AwsLabels, Metrics};

/// Where and as whom to campaign.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
    /// Unique per process (the pod name, plus randomness).
    pub identity: String,
    pub lease_seconds: u64,
    /// Where to answer `/healthz` and `/metrics` while standing by (the controller's metrics
    /// address).
    pub health_addr: SocketAddr,
    /// The process's AWS request counters, exported while standing by too: a standby's
    /// `/metrics` then shows what the process really sent (nothing), not an empty family.
    pub aws_requests: Family<AwsLabels, Counter>,
}

/// Runs `work` only while holding the lease. `work` gets a shutdown future that fires on
/// `shutdown` or when leadership is lost; losing it is an error (the process should exit
/// and campaign afresh, as Kubernetes restarts it).
pub async fn run_when_leader<F, Fut>(
    client: Client,
    election: LeaderElection,
    shutdown: impl Future<Output = ()> + Send + 'static,
    work: F,
) -> anyhow::Result<()>
where
    F: FnOnce(BoxFuture<'static, ()>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let shutdown = shutdown.boxed().shared();

    // Stand by: answer liveness (not readiness) until the lease is ours.
    let (standby_stop, standby_stopped) = tokio::sync::oneshot::channel::<()>();
    let listener = tokio::net::TcpListener::bind(election.health_addr).await?;
    let standby_metrics = Arc::new(Metrics::new(election.aws_requests.clone()));
    let standby = tokio::spawn(crate::metrics::serve(listener, standby_metrics, async move {
        let _ = standby_stopped.await;
    }));
    tracing::info!(identity = %election.identity, lease = %election.lease_name, "waiting to become the leader");
    let leases: Api<Lease> = Api::namespaced(client.clone(), &election.namespace);
    let (leader, mut lease_task) = loop {
        let manager = LeaseManagerBuilder::new(client.clone(), &election.lease_name)
            .with_namespace(&election.namespace)
            .with_identity(&election.identity)
            .with_duration(election.lease_seconds)
            .with_grace(election.lease_seconds.div_ceil(3).max(1))
            .build()
            .await?;
        let (mut leader, lease_task) = manager.watch().await;
        // If this future is dropped without finishing (the task is aborted), the renewal task
        // must die with it, as it would with the process: the lease then expires for others.
        let mut lease_task = AbortOnDrop(Some(lease_task));
        let outcome = tokio::select! {
            biased;
            _ = shutdown.clone() => Standby::Shutdown,
            held = leader.wait_for(|held| *held) => if held.is_ok() { Standby::Leader } else { Standby::Failed },
            _ = lease_released(&leases, &election.lease_name) => Standby::Released,
        };
        match outcome {
            Standby::Leader => break (leader, lease_task),
            Standby::Released => {
                // The manager only re-reads the Lease when it expects it to expire, up to a
                // lease duration from now; a fresh one reads it now and takes it. Abort the old
                // one before dropping its receiver: a closed channel makes it release the lease.
                lease_task.abort();
                drop(leader);
                tracing::info!(identity = %election.identity, "the leader released the lease; campaigning now");
            }
            Standby::Shutdown | Standby::Failed => {
                let _ = standby_stop.send(());
                let _ = standby.await;
                drop(leader);
                if let Some(task) = lease_task.0.take() {
                    let result = task.await;
                    if matches!(outcome, Standby::Failed) {
                        // Say why (e.g. RBAC refused the Lease), or a restart loop has no cause.
                        tracing::error!(result = ?result, "the lease task ended while standing by; exiting to be restarted");
                    }
                }
                return Ok(());
            }
        }
    };
    let _ = standby_stop.send(());
    let _ = standby.await;
    tracing::info!(identity = %election.identity, "became the leader");

    let mut watch = leader.clone();
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lost_flag = lost.clone();
    let stop = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = shutdown => {},
                _ = watch.wait_for(|held| !*held) => {
                    lost_flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    tracing::warn!("lost the lease; stopping");
                },
            }
        }
        .boxed()
    };
    let result = work(stop).await;
    // Dropping every receiver makes the lease task release the lease immediately.
    drop(leader);
    let Some(task) = lease_task.0.take() else { return result };
    match task.await {
        Ok(Ok(_)) => tracing::info!("released the lease"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not release the lease; it expires on its own"),
        Err(e) => tracing::warn!(error = %e, "lease task failed"),
    }
    result?;
    if lost.load(std::sync::atomic::Ordering::SeqCst) {
        anyhow::bail!("lost leadership of lease {}", election.lease_name);
    }
    Ok(())
}

/// How standing by ended.
enum Standby {
    Leader,
    /// Another candidate released the lease: campaign afresh at once.
    Released,
    Shutdown,
    /// The lease task ended (it could not reach the API server); stop, to be restarted.
    Failed,
}

/// How often a standby reads the Lease to notice a release (client-go's candidates retry
/// every 2 s): one GET a second per standby, allowed by the chart's `get` on the Lease.
const RELEASE_POLL: Duration = Duration::from_secs(1);

/// Resolves once the Lease has no holder: its leader released it on shutdown (or it was
/// never taken). The first read waits one poll, which gives a fresh manager the time to take
/// a free lease itself, so a free lease does not restart the campaign over and over. Read
/// errors are retried at the next poll.
async fn lease_released(leases: &Api<Lease>, name: &str) {
    loop {
        tokio::time::sleep(RELEASE_POLL).await;
        if let Ok(Some(lease)) = leases.get_opt(name).await
            && lease.spec.and_then(|s| s.holder_identity).is_none_or(|h| h.is_empty())
        {
            return;
        }
    }
}

struct AbortOnDrop<T>(Option<tokio::task::JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    fn abort(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}
