//! Wires the three kinds into kube-runtime controllers sharing one context.
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use kube::api::Api;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use lakeops_crds::{BackupPolicy, DataLake, EtlFunction, EtlPipeline, SecurityBaseline};
use serde::de::DeserializeOwned;

use crate::context::{Config, Context, Stores};
use crate::error::Error;
use crate::metrics::{ErrorLabels, Metrics};
use crate::reconcile;
use crate::status::static_kind;

type Shutdown = Shared<BoxFuture<'static, ()>>;

fn api<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until `shutdown` resolves, then finishes in-flight reconciles.
pub async fn run(
    client: Client,
    aws: crate::aws::clients::AwsClients,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let shutdown: Shutdown = shutdown.boxed().shared();
    let metrics = Arc::new(Metrics::new(aws.recorder().family()));
    let listener = tokio::net::TcpListener::bind(config.metrics_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    let server = tokio::spawn(crate::metrics::serve(listener, metrics.clone(), shutdown.clone()));

    let ns_owned = config.watch_namespace.clone();
    let ns = ns_owned.as_deref();
    let ctrl_config = controller::Config::default().concurrency(config.concurrency);
    let wc = watcher::Config::default().any_semantic();

    let mut lakes = Controller::new(api::<DataLake>(&client, ns), wc.clone()).with_config(ctrl_config.clone());
    let functions = Controller::new(api::<EtlFunction>(&client, ns), wc.clone()).with_config(ctrl_config.clone());
    let policies = Controller::new(api::<BackupPolicy>(&client, ns), wc.clone()).with_config(ctrl_config.clone());
    let pipelines = Controller::new(api::<EtlPipeline>(&client, ns), wc.clone()).with_config(ctrl_config.clone());
    // Cluster-scoped: watched across the cluster even when one namespace is.
    let mut baselines =
        Controller::new(Api::<SecurityBaseline>::all(client.clone()), wc.clone()).with_config(ctrl_config);
    let stores = Stores {
        lakes: lakes.store(),
        functions: functions.store(),
        policies: policies.store(),
        baselines: baselines.store(),
    };

    // A baseline's changes (Ready or not, its account trail converged or not) re-queue every
    // lake: whether a Ready baseline records management events decides the lake trails'
    // selectors. A lake whose coverage did not change skips the round (its fingerprint).
    if config.security_baselines {
        // And a lake's changes re-queue the baseline of its region (its lake-key alarm).
        let bstore = stores.baselines.clone();
        baselines = baselines.watches(api::<DataLake>(&client, ns), wc.clone(), move |lake| {
            let region = lake.spec.region.clone();
            bstore
                .state()
                .iter()
                .filter(|b| b.spec.region == region)
                .map(|b| ObjectRef::from_obj(b.as_ref()))
                .collect::<Vec<_>>()
        });
        let lstore = stores.lakes.clone();
        lakes = lakes.watches(Api::<SecurityBaseline>::all(client.clone()), wc.clone(), move |_| {
            lstore.state().iter().map(|l| ObjectRef::from_obj(l.as_ref())).collect::<Vec<_>>()
        });
    }
    // A lake's changes re-queue what depends on it, so nothing polls for readiness.
    let fstore = stores.functions.clone();
    let functions = functions.watches(api::<DataLake>(&client, ns), wc.clone(), move |lake| {
        dependents(&fstore.state(), &lake, |f: &EtlFunction| &f.spec.data_lake_ref.name)
    });
    let plstore = pipelines.store();
    let pipelines = pipelines.watches(api::<DataLake>(&client, ns), wc.clone(), move |lake| {
        dependents(&plstore.state(), &lake, |p: &EtlPipeline| &p.spec.data_lake_ref.name)
    });
    let pstore = stores.policies.clone();
    let policies = policies.watches(api::<DataLake>(&client, ns), wc, move |lake| {
        dependents(&pstore.state(), &lake, |p: &BackupPolicy| &p.spec.data_lake_ref.name)
    });

    let reporter = Reporter { controller: "lakeops".into(), instance: std::env::var("POD_NAME").ok() };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        aws,
        config,
        metrics: metrics.clone(),
        stores: stores.clone(),
        fingerprints: Default::default(),
        locks: Default::default(),
        backoff: Default::default(),
    });

    // Ready once every kind can be listed: the CRDs are served and RBAC lets us watch.
    // (The stores' own wait_until_ready never resolved under kube-runtime 5 here, though
    // the controllers reconciled; a list probe says the same thing without depending on it.)
    let readiness = {
        let metrics = metrics.clone();
        let probes = (
            api::<DataLake>(&ctx.client, ns),
            api::<EtlFunction>(&ctx.client, ns),
            api::<BackupPolicy>(&ctx.client, ns),
        );
        tokio::spawn(async move {
            let lp = kube::api::ListParams::default().limit(1);
            loop {
                let (a, b, c) =
                    tokio::join!(probes.0.list_metadata(&lp), probes.1.list_metadata(&lp), probes.2.list_metadata(&lp));
                if a.is_ok() && b.is_ok() && c.is_ok() {
                    metrics.set_ready(true);
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        })
    };

    // Objects by readiness, from the caches every few seconds (cheap: no API calls).
    let gauges = {
        let metrics = metrics.clone();
        let stores = stores.clone();
        tokio::spawn(async move {
            fn ready(c: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]) -> Option<&str> {
                lakeops_crds::common::find_condition(c, lakeops_crds::names::condition::READY)
                    .map(|c| c.status.as_str())
            }
            loop {
                let lakes = stores.lakes.state();
                metrics.set_objects(
                    "DataLake",
                    lakes.iter().map(|o| o.status.as_ref().and_then(|s| ready(&s.conditions))),
                );
                let fns = stores.functions.state();
                metrics.set_objects(
                    "EtlFunction",
                    fns.iter().map(|o| o.status.as_ref().and_then(|s| ready(&s.conditions))),
                );
                let pols = stores.policies.state();
                metrics.set_objects(
                    "BackupPolicy",
                    pols.iter().map(|o| o.status.as_ref().and_then(|s| ready(&s.conditions))),
                );
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        })
    };
    metrics.leader.set(1);

    let lakes = lakes
        .graceful_shutdown_on(shutdown.clone())
        .run(instrumented(reconcile::datalake::reconcile), error_policy, ctx.clone())
        .for_each(log_result);
    let functions = functions
        .graceful_shutdown_on(shutdown.clone())
        .run(instrumented(reconcile::etlfunction::reconcile), error_policy, ctx.clone())
        .for_each(log_result);
    let policies = policies
        .graceful_shutdown_on(shutdown.clone())
        .run(instrumented(reconcile::backuppolicy::reconcile), error_policy, ctx.clone())
        .for_each(log_result);
    let pipelines = pipelines
        .graceful_shutdown_on(shutdown.clone())
        .run(instrumented(reconcile::etlpipeline::reconcile), error_policy, ctx.clone())
        .for_each(log_result);
    let baselines = async {
        if ctx.config.security_baselines {
            baselines
                .graceful_shutdown_on(shutdown.clone())
                .run(instrumented(reconcile::securitybaseline::reconcile), error_policy, ctx.clone())
                .for_each(log_result)
                .await;
        }
    };
    tokio::join!(lakes, functions, policies, pipelines, baselines);
    metrics.set_ready(false);
    metrics.leader.set(0);
    readiness.abort();
    gauges.abort();
    server.await??;
    tracing::info!("controller stopped");
    Ok(())
}

fn dependents<K>(all: &[Arc<K>], lake: &DataLake, lake_ref: impl Fn(&K) -> &String) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + ResourceExt,
{
    all.iter()
        .filter(|o| o.namespace() == lake.namespace() && lake_ref(o) == &lake.name_any())
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// Wraps a reconciler with timing, a span and metrics; the reconcilers stay plain.
fn instrumented<K, F, Fut>(f: F) -> impl Fn(Arc<K>, Arc<Context>) -> BoxFuture<'static, Result<Action, Error>>
where
    K: Resource<DynamicType = ()> + Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    move |obj, ctx| {
        let f = f.clone();
        async move {
            let kind = static_kind(&K::kind(&()));
            let span = tracing::info_span!(
                "reconcile",
                kind,
                namespace = obj.namespace().unwrap_or_default(),
                name = obj.name_any()
            );
            let started = Instant::now();
            let metrics = ctx.metrics.clone();
            let result = tracing::Instrument::instrument(f(obj, ctx), span).await;
            metrics.observe_reconcile(kind, started.elapsed());
            if let Err(e) = &result {
                metrics.reconcile_errors.get_or_create(&ErrorLabels { kind, reason: e.metric_label() }).inc();
            }
            result
        }
        .boxed()
    }
}

fn error_policy<K: ResourceExt>(obj: Arc<K>, error: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(name = obj.name_any(), namespace = obj.namespace().unwrap_or_default(), %error, "reconcile failed");
    Action::requeue(error.retry_after())
}

async fn log_result<K: Resource, E: std::fmt::Display>(res: Result<(ObjectRef<K>, Action), E>) {
    if let Err(e) = res {
        tracing::debug!(error = %e, "controller event");
    }
}
