//! Leader election against the real API server: one of several controllers reconciles;
//! when it crashes another takes over after the lease expires; when it stops it releases
//! the lease and the next takes over at once. Once in-process (tasks), once as real
//! `lakeops controller` processes killed with real signals.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
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

use crate::common::{api, eventually, http_get, metric};

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
        security_baselines: false,
    };
    let election = LeaderElection {
        namespace: ns.to_string(),
        lease_name: LEASE.into(),
        identity: name.into(),
        lease_seconds: LEASE_SECONDS,
        health_addr: metrics_addr,
        aws_requests: recorder.family(),
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

/// A `lakeops controller --leader-election` child process. Dropping it SIGKILLs and reaps it,
/// so a failed assertion (a panic) never leaves a controller running against the shared
/// environment; on a panic it also prints the tail of the process's log.
pub(crate) struct ControllerProcess {
    name: String,
    child: Child,
    metrics_addr: SocketAddr,
    log: PathBuf,
}

impl ControllerProcess {
    fn spawn(env: &TestEnv, ns: &str, lease: &str, name: &str, dir: &Path) -> Self {
        // One DataLake at a time, so that a kill lands with work still queued.
        Self::spawn_with(env, ns, lease, name, dir, &["--concurrency", "1"], &[])
    }

    /// Like `spawn`, with more arguments and environment variables (which win over the
    /// environment's own, e.g. `AWS_ENDPOINT_URL`).
    pub(crate) fn spawn_with(
        env: &TestEnv,
        ns: &str,
        lease: &str,
        name: &str,
        dir: &Path,
        args: &[&str],
        vars: &[(&str, &str)],
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let metrics_addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file handle");
        let child = Command::new(env!("CARGO_BIN_EXE_lakeops-under-test"))
            .args(["controller", "--leader-election", "--lease-name", lease])
            .args(["--lease-seconds", &LEASE_SECONDS.to_string(), "--watch-namespace", ns])
            .args(["--metrics-addr", &metrics_addr.to_string(), "--log-format", "json"])
            .args(args)
            // SecurityBaselines are cluster-wide: other tests' baselines are not this test's.
            .args(["--security-baselines", "false"])
            .envs(env.env_vars("eu-west-1"))
            .envs(vars.iter().copied())
            .env("POD_NAMESPACE", ns)
            .env("POD_NAME", name)
            .env("RUST_LOG", "info,kube=warn,aws=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting lakeops controller");
        Self { name: name.to_string(), child, metrics_addr, log }
    }

    /// The `/metrics` exposition; an error while the process is not serving it (starting, or
    /// between standing by and leading, when the listener changes hands).
    async fn metrics(&self) -> anyhow::Result<String> {
        let (status, body) = http_get(self.metrics_addr, "/metrics").await?;
        anyhow::ensure!(status == 200, "{}: /metrics answered {status}", self.name);
        Ok(body)
    }

    /// Sends SIGTERM (what the kubelet sends on pod deletion). std can only send SIGKILL.
    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }

    /// SIGKILL (no shutdown code runs, the lease is not released) and reap: once this returns
    /// the process is gone and can send nothing more.
    pub(crate) fn crash(&mut self) -> ExitStatus {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped")
    }

    /// Waits for the process to exit on its own, up to `timeout`.
    async fn exited(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- {} metrics: {:?}", self.name, blocking_metrics(self.metrics_addr));
            let text = self.log_text();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            eprintln!("--- last lines of {} ({}):", self.name, self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        // Err when it already exited and was reaped; nothing to clean up then.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The metrics lines that tell what a process did, read without a runtime (from `Drop`).
fn blocking_metrics(addr: SocketAddr) -> std::io::Result<Vec<String>> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text
        .lines()
        .filter(|l| ["lakeops_leader", "lakeops_reconcile", "lakeops_aws_requests"].iter().any(|p| l.starts_with(p)))
        .map(str::to_string)
        .collect())
}

/// What one process's `/metrics` says about leading and working.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Activity {
    leader: f64,
    reconciles: f64,
    aws_requests: f64,
}

impl Activity {
    fn of(text: &str) -> Self {
        let sum = |prefix: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Self {
            leader: metric(text, "lakeops_leader "),
            reconciles: sum("lakeops_reconciles_total{"),
            aws_requests: sum("lakeops_aws_requests_total{"),
        }
    }

    fn idle_standby(&self) -> bool {
        *self == Self { leader: 0.0, reconciles: 0.0, aws_requests: 0.0 }
    }
}

async fn activity(p: &ControllerProcess) -> anyhow::Result<Activity> {
    Ok(Activity::of(&p.metrics().await?))
}

/// Polls `p` until its `/metrics` says it leads; returns how long that took.
async fn wait_leading(p: &ControllerProcess, within: Duration) -> Duration {
    let started = Instant::now();
    while started.elapsed() < within {
        if activity(p).await.is_ok_and(|a| a.leader == 1.0) {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} did not become the leader within {within:?}", p.name);
}

/// Polls `p` until it serves `/metrics` as a standby.
async fn wait_standing_by(p: &ControllerProcess) {
    eventually(Duration::from_secs(30), &format!("{} standing by", p.name), || async {
        Ok(activity(p).await.ok().filter(Activity::idle_standby))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

async fn ready_count(lakes: &kube::Api<DataLake>) -> usize {
    let Ok(list) = lakes.list(&Default::default()).await else { return 0 };
    list.items
        .iter()
        .filter(|l| {
            l.status.as_ref().and_then(|s| find_condition(&s.conditions, condition::READY)).map(|c| c.status.as_str())
                == Some("True")
        })
        .count()
}

#[tokio::test]
async fn controller_processes_elect_one_leader_survive_its_crash_and_hand_over_at_once_on_sigterm() {
    const LAKES: usize = 4;
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("leader-procs").await.expect("namespace");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    let logs = tempfile::tempdir().expect("log dir");

    let mut a = ControllerProcess::spawn(env, &ns, LEASE, "controller-a", logs.path());
    let a_elected = wait_leading(&a, Duration::from_secs(60)).await;
    let mut b = ControllerProcess::spawn(env, &ns, LEASE, "controller-b", logs.path());
    wait_standing_by(&b).await;
    let held_by = holder(env, &ns).await.unwrap_or_default();
    assert!(held_by.starts_with("controller-a-"), "the Lease names the leader: {held_by}");
    eprintln!("controller-a elected in {a_elected:?}; controller-b stands by");

    for i in 0..LAKES {
        lakes.create(&PostParams::default(), &lake(&format!("lake-{i}"))).await.expect("created");
    }
    // A works through the lakes one at a time; B must stay idle all along. Stop A with
    // SIGKILL as soon as one lake is Ready, so the others are queued or half done.
    let started = Instant::now();
    let mut polls = 0u32;
    let a_last = loop {
        let (a_now, b_now) = (activity(&a).await.expect("a metrics"), activity(&b).await.expect("b metrics"));
        assert_eq!(a_now.leader, 1.0, "a leads");
        assert!(b_now.idle_standby(), "the standby stays idle while the leader works: {b_now:?}");
        polls += 1;
        if ready_count(&lakes).await >= 1 {
            break a_now;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no lake became Ready under controller-a");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // A round is counted when it returns, just after its status write made the lake Ready:
    // wait for that count (A keeps working on the other lakes meanwhile).
    let mut a_last = a_last;
    while a_last.reconciles < 1.0 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        a_last = activity(&a).await.expect("a metrics");
    }
    let status = a.crash();
    let crashed_at = Instant::now();
    // Evidence that no object was reconciled by both at once: `crash` returns only after
    // the kernel reaped A, so A sent nothing after this point. B's counters are monotonic
    // and, read now (after A's death), still zero: B had not started one reconcile or sent
    // one AWS request yet. So every reconcile of B began after every reconcile of A ended
    // (was cut off); the two never overlapped, for any object. (B cannot lead before A's
    // lease expires, 2-5 s away, so this read cannot race B's takeover; if it did, B would
    // not be serving standby metrics and the read would fail, not pass wrongly.)
    let b_at_crash = activity(&b).await.expect("b metrics right after the crash");
    assert!(b_at_crash.idle_standby(), "B did nothing while A lived: {b_at_crash:?}");
    let ready_at_crash = ready_count(&lakes).await;
    assert!(a_last.reconciles >= 1.0 && a_last.aws_requests > 0.0, "A worked before the crash: {a_last:?}");
    assert!(ready_at_crash < LAKES, "A was killed mid-work ({ready_at_crash}/{LAKES} Ready)");
    eprintln!(
        "controller-a killed ({status}) after {:?} ({polls} polls) with {ready_at_crash}/{LAKES} lakes Ready; \
         its last metrics: {a_last:?}",
        started.elapsed()
    );

    wait_leading(&b, Duration::from_secs(LEASE_SECONDS * 6)).await;
    let takeover = crashed_at.elapsed();
    eprintln!("takeover after SIGKILL: {takeover:?} (lease {LEASE_SECONDS} s)");
    // The lease expires LEASE_SECONDS after A's last renewal, which was at most that long
    // before the crash; then B needs a retry period to notice. Generous: three leases.
    assert!(takeover < Duration::from_secs(LEASE_SECONDS * 3), "takeover took {takeover:?}");
    for i in 0..LAKES {
        wait_ready(&lakes, &format!("lake-{i}")).await;
    }
    let b_done = activity(&b).await.expect("b metrics");
    assert!(b_done.reconciles >= (LAKES - ready_at_crash) as f64, "B finished A's work: {b_done:?}");
    assert!(b_done.aws_requests > 0.0, "{b_done:?}");

    // SIGTERM: B finishes in-flight work, releases the lease, and C takes over at once,
    // well before the lease would have expired.
    let mut c = ControllerProcess::spawn(env, &ns, LEASE, "controller-c", logs.path());
    wait_standing_by(&c).await;
    b.terminate();
    let terminated_at = Instant::now();
    wait_leading(&c, Duration::from_secs(LEASE_SECONDS * 6)).await;
    let handover = terminated_at.elapsed();
    let b_exit = b.exited(Duration::from_secs(30)).await.expect("B exits after SIGTERM");
    assert!(b_exit.success(), "graceful stop: {b_exit}");
    assert!(b.log_text().contains("released the lease"), "B says it released the lease");
    eprintln!("handover after SIGTERM: {handover:?} (lease {LEASE_SECONDS} s)");
    assert!(handover < Duration::from_secs(LEASE_SECONDS), "handover took {handover:?}: the lease was not released");
    let held_by = holder(env, &ns).await.unwrap_or_default();
    assert!(held_by.starts_with("controller-c-"), "the Lease names the new leader: {held_by}");

    lakes.create(&PostParams::default(), &lake("late")).await.expect("created");
    wait_ready(&lakes, "late").await;
    assert!(activity(&c).await.expect("c metrics").reconciles >= 1.0);
    c.terminate();
    let c_exit = c.exited(Duration::from_secs(30)).await.expect("C exits after SIGTERM");
    assert!(c_exit.success(), "graceful stop: {c_exit}");
}
