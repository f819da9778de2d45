//! Leader election against the real API server: one of several controllers reconciles;
//! when it crashes another takes over after the lease expires; when it stops it releases
//! the lease and the next takes over at once.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::PostParams;
use lakeops::aws::clients::AwsClients;
use lakeops::aws::recorder::RequestRecorder;
use lakeops::context::Config;
use lakeops::leader::{LeaderElection, run_when_leader};
use lakeops_crds::DataLake;
use lakeops_crds::common::find_condition;
use lakeops_crds::names::condition;
use lakeops_testenv::TestEnv;

use crate::common::{api, eventually};

const LEASE: &str = "lakeops-controller";
const LEASE_SECONDS: u64 = 5;

struct Candidate {
    name: String,
    recorder: RequestRecorder,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn candidate(env: &TestEnv, ns: &str, name: &str) -> Candidate {
    lakeops::install_crypto_provider();
    let client = env.kube_client().await.expect("client");
    let recorder = RequestRecorder::new();
    let aws = AwsClients::new(env.aws_config("eu-west-1"), recorder.clone());
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let config = Config {
        watch_namespace: Some(ns.to_string()),
        resync_interval: Duration::from_secs(600),
        concurrency: 4,
        metrics_addr,
        region: Some("eu-west-1".into()),
        permissions_boundary: None,
    };
    let election = LeaderElection {
        namespace: ns.to_string(),
        lease_name: LEASE.into(),
        identity: name.into(),
        lease_seconds: LEASE_SECONDS,
        health_addr: metrics_addr,
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_when_leader(
        client.clone(),
        election,
        async move {
            let _ = rx.await;
        },
        move |stop| lakeops::controller::run(client, aws, config, stop),
    ));
    Candidate { name: name.into(), recorder, stop: Some(tx), task }
}

async fn holder(env: &TestEnv, ns: &str) -> Option<String> {
    let leases: kube::Api<Lease> = kube::Api::namespaced(env.kube_client().await.ok()?, ns);
    leases.get_opt(LEASE).await.ok().flatten()?.spec?.holder_identity
}

async fn wait_holder(env: &TestEnv, ns: &str, who: &str, within: Duration) -> Duration {
    let started = Instant::now();
    eventually(within, &format!("{who} to hold the lease"), || async {
        Ok((holder(env, ns).await.as_deref() == Some(who)).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    started.elapsed()
}

fn lake(name: &str) -> DataLake {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "DataLake", "metadata": { "name": name },
        "spec": { "region": "eu-west-1", "zones": [{ "name": "raw" }] }
    }))
    .expect("fixture")
}

async fn wait_ready(lakes: &kube::Api<DataLake>, name: &str) {
    eventually(Duration::from_secs(60), "Ready=True", || async {
        let l = lakes.get(name).await?;
        let ready =
            l.status.as_ref().and_then(|s| find_condition(&s.conditions, condition::READY)).map(|c| c.status.clone());
        Ok((ready.as_deref() == Some("True")).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{name}: {e}"));
}

fn calls(c: &Candidate) -> u64 {
    c.recorder.snapshot().values().sum()
}

#[tokio::test]
async fn only_the_leader_reconciles_and_a_standby_takes_over_after_a_crash_or_at_once_after_a_release() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("leader").await.expect("namespace");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");

    let a = candidate(env, &ns, "controller-a").await;
    wait_holder(env, &ns, &a.name, Duration::from_secs(30)).await;
    let b = candidate(env, &ns, "controller-b").await;
    lakes.create(&PostParams::default(), &lake("first")).await.expect("created");
    wait_ready(&lakes, "first").await;
    assert!(calls(&a) > 0, "the leader reconciled");
    assert_eq!(calls(&b), 0, "the standby sent no AWS request");

    // A crashes: no release, so B waits for the lease to expire.
    a.task.abort();
    let a_calls = calls(&a);
    let took = wait_holder(env, &ns, &b.name, Duration::from_secs(LEASE_SECONDS * 6)).await;
    lakes.create(&PostParams::default(), &lake("second")).await.expect("created");
    wait_ready(&lakes, "second").await;
    assert!(calls(&b) > 0, "the new leader reconciles");
    assert_eq!(calls(&a), a_calls, "the crashed one sent nothing more");
    eprintln!("takeover after a crash: {took:?}");

    // B stops gracefully: it releases the lease, and C takes over well within its duration.
    let mut c = candidate(env, &ns, "controller-c").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut b = b;
    let _ = b.stop.take().map(|tx| tx.send(()));
    let released_at = Instant::now();
    tokio::time::timeout(Duration::from_secs(60), &mut b.task)
        .await
        .expect("b stops")
        .expect("joined")
        .expect("clean stop");
    wait_holder(env, &ns, &c.name, Duration::from_secs(LEASE_SECONDS * 6)).await;
    let handover = released_at.elapsed();
    assert!(handover < Duration::from_secs(LEASE_SECONDS), "released lease taken over in {handover:?}");
    lakes.create(&PostParams::default(), &lake("third")).await.expect("created");
    wait_ready(&lakes, "third").await;
    assert!(calls(&c) > 0);
    let _ = c.stop.take().map(|tx| tx.send(()));
    let _ = tokio::time::timeout(Duration::from_secs(60), &mut c.task).await;
}
