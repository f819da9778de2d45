//! Helpers the end-to-end tests share: an in-process controller scoped to one namespace,
//! polling for a state, and a plain HTTP GET.
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use kube::Api;
use lakeops::aws::clients::AwsClients;
use lakeops::aws::recorder::RequestRecorder;
use lakeops::context::Config;
use lakeops_testenv::TestEnv;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A controller running in this process, watching one namespace.
pub struct RunningController {
    pub metrics_addr: SocketAddr,
    /// Counts every AWS request this controller sends; also its fault hook.
    pub recorder: RequestRecorder,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl RunningController {
    /// Starts the controller for `namespace` with the given resync interval.
    pub async fn start(env: &TestEnv, namespace: &str, resync: Duration) -> Result<Self> {
        Self::start_with(env, namespace, resync, RequestRecorder::recording_requests()).await
    }

    /// Starts a controller that also reconciles SecurityBaselines (cluster-scoped, so only
    /// the tests of that kind run one: every other test's controller leaves them alone).
    pub async fn start_with_baselines(env: &TestEnv, namespace: &str, resync: Duration) -> Result<Self> {
        lakeops::install_crypto_provider();
        let client = env.kube_client().await?;
        Self::start_inner(env, namespace, resync, RequestRecorder::recording_requests(), client, true)
    }

    /// Starts the controller sending its AWS requests to `endpoint` (a fault proxy in front
    /// of moto) instead of moto itself.
    pub async fn start_through(env: &TestEnv, namespace: &str, resync: Duration, endpoint: &str) -> Result<Self> {
        lakeops::install_crypto_provider();
        let client = env.kube_client().await?;
        let sdk = env.aws_config_for(endpoint, "eu-west-1");
        Self::start_with_sdk(namespace, resync, RequestRecorder::recording_requests(), client, false, sdk)
    }

    /// Starts the controller with a given request recorder (to arm its fault hook first).
    pub async fn start_with(
        env: &TestEnv,
        namespace: &str,
        resync: Duration,
        recorder: RequestRecorder,
    ) -> Result<Self> {
        lakeops::install_crypto_provider();
        let client = env.kube_client().await?;
        Self::start_inner(env, namespace, resync, recorder, client, false)
    }

    /// Starts the controller with a given kube client, e.g. one authenticated as the chart's
    /// ServiceAccount, so that the controller runs under that identity's RBAC.
    pub async fn start_with_client(
        env: &TestEnv,
        namespace: &str,
        resync: Duration,
        client: kube::Client,
    ) -> Result<Self> {
        lakeops::install_crypto_provider();
        Self::start_inner(env, namespace, resync, RequestRecorder::recording_requests(), client, false)
    }

    fn start_inner(
        env: &TestEnv,
        namespace: &str,
        resync: Duration,
        recorder: RequestRecorder,
        client: kube::Client,
        security_baselines: bool,
    ) -> Result<Self> {
        Self::start_with_sdk(namespace, resync, recorder, client, security_baselines, env.aws_config("eu-west-1"))
    }

    fn start_with_sdk(
        namespace: &str,
        resync: Duration,
        recorder: RequestRecorder,
        client: kube::Client,
        security_baselines: bool,
        sdk: aws_config::SdkConfig,
    ) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let metrics_addr = SocketAddr::from(([127, 0, 0, 1], port));
        let config = Config {
            watch_namespace: Some(namespace.to_string()),
            resync_interval: resync,
            concurrency: 4,
            metrics_addr,
            region: Some("eu-west-1".into()),
            permissions_boundary: None,
            security_baselines,
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let aws = AwsClients::new(sdk, recorder.clone());
        let task = tokio::spawn(lakeops::controller::run(client, aws, config, async move {
            let _ = rx.await;
        }));
        Ok(Self { metrics_addr, recorder, stop: Some(tx), task: Some(task) })
    }

    /// Signals shutdown and waits for the controller to return.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().context("controller already stopped")?;
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .context("controller did not stop within 20 s")???;
        Ok(())
    }

    /// GETs a path of the metrics server.
    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        http_get(self.metrics_addr, path).await
    }
}

impl Drop for RunningController {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A minimal HTTP/1.0 GET, enough for the controller's own endpoints.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
    let mut buf = String::new();
    stream.read_to_string(&mut buf).await?;
    let status = buf.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no HTTP status line")?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if tokio::time::Instant::now() > deadline {
            match last_err {
                Some(e) => bail!("timed out waiting for {what}; last error: {e:#}"),
                None => bail!("timed out waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads a metric's value from a Prometheus exposition (0 when absent).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}

/// Applies YAML with `kubectl apply --server-side` into `namespace`; returns (success, stderr).
/// Client-side validation is off so that the API server, not kubectl, judges the objects.
pub fn kubectl_apply(env: &TestEnv, namespace: &str, path: &std::path::Path) -> Result<(bool, String)> {
    let out = env
        .kubectl()
        .args(["apply", "--server-side", "--validate=false", "--field-manager=e2e", "-n", namespace, "-f"])
        .arg(path)
        .output()
        .context("running kubectl")?;
    Ok((
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    ))
}

/// A typed namespaced API.
pub async fn api<K>(env: &TestEnv, namespace: &str) -> Result<Api<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Ok(Api::namespaced(env.kube_client().await?, namespace))
}

/// The workspace root (tests run with the package directory as working directory).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(|p| p.to_path_buf()).unwrap_or_default()
}

/// The account moto reports; resource ARNs of recorded requests are built for it.
pub const MOTO_ACCOUNT: &str = "123456789012";

/// Every request the controller sent is allowed by the IAM policy `lakeops iam-policy` prints,
/// by action AND resource: the printed JSON is parsed back and each request's checks (its own
/// action on the ARN it named, plus `iam:PassRole` / package reads it implies) are evaluated.
/// Conditions (ownership tags, calling service) are not evaluated; the ones that would apply
/// are printed.
pub fn assert_iam_policy_covers(recorder: &RequestRecorder) {
    let printed = lakeops::iam::to_identity_json(&lakeops::iam::controller_policy(Some(MOTO_ACCOUNT), "*"));
    let policy = lakeops::iam::parse_identity_policy(&printed).expect("the printed policy parses");
    for st in &policy.statements {
        assert!(st.actions.iter().all(|a| !a.contains('*')), "{} grants a wildcard action: {:?}", st.sid, st.actions);
    }
    let requests = recorder.requests().expect("a recorder built with RequestRecorder::recording_requests");
    assert!(!requests.is_empty(), "the controller sent no AWS request; nothing was checked");
    let mut problems = Vec::new();
    let mut checked = std::collections::BTreeSet::new();
    let mut conditions = std::collections::BTreeSet::new();
    for (request, checks) in lakeops::iam::request_authorizations(&requests, MOTO_ACCOUNT) {
        match checks {
            Err(e) => problems.push(e),
            Ok(checks) => {
                for check in checks {
                    let decision = lakeops::iam::allows_request(&policy, &check.action, &check.resource);
                    if !decision.allowed {
                        problems.push(format!(
                            "{} on {} (request {}:{} {:?}) is not allowed",
                            check.action, check.resource, request.service, request.operation, request.params
                        ));
                    }
                    conditions.extend(decision.conditions);
                    checked.insert(check);
                }
            }
        }
    }
    eprintln!(
        "IAM policy check: {} distinct requests, {} distinct (action, resource) checks; \
         conditions not evaluated: {conditions:?}",
        requests.len(),
        checked.len()
    );
    assert!(problems.is_empty(), "the controller's IAM policy does not cover:\n{}", problems.join("\n"));
}

/// Bucket versioning through lakeops' adapter: moto answers GetBucketVersioning with an
/// XML root the SDK rejects, and the adapter reads it leniently.
pub async fn versioning(env: &TestEnv, region: &str, bucket: &str) -> Option<String> {
    use lakeops::aws::s3::S3Api;
    lakeops::aws::s3::SdkS3::new(env.s3(region)).get_versioning(bucket).await.expect("versioning")
}

/// Asks for a reconcile of `name` now (a new `lakeops.dev/reconcile-requested-at` value) and
/// waits until `handled` (its status echo of that annotation) says it was handled.
pub async fn reconcile_now<K>(api: &Api<K>, name: &str, stamp: &str, handled: impl Fn(&K) -> Option<String>)
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let key = lakeops_crds::names::annotation::RECONCILE_REQUESTED_AT;
    let patch = serde_json::json!({ "metadata": { "annotations": { (key): stamp } } });
    api.patch(name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.expect("annotated");
    eventually(Duration::from_secs(60), "reconcile handled", || async {
        let obj = api.get(name).await?;
        Ok(handled(&obj).filter(|v| v == stamp))
    })
    .await
    .expect("handled");
}

/// `(status, reason, message)` of the Ready condition.
pub type ReadyCondition = (String, String, String);

/// The lakeops kinds, as the tests read their status.
pub trait Kind: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug {
    /// Ready for the current generation; `None` before status describes this generation.
    fn ready(&self) -> Option<ReadyCondition>;
}

fn ready_of<S: lakeops_crds::HasConditions>(status: Option<&S>, generation: Option<i64>) -> Option<ReadyCondition> {
    let s = status?;
    if s.observed_generation() != generation {
        return None;
    }
    lakeops_crds::common::find_condition(s.conditions(), lakeops_crds::names::condition::READY)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

impl Kind for lakeops_crds::DataLake {
    fn ready(&self) -> Option<ReadyCondition> {
        ready_of(self.status.as_ref(), self.metadata.generation)
    }
}

impl Kind for lakeops_crds::EtlFunction {
    fn ready(&self) -> Option<ReadyCondition> {
        ready_of(self.status.as_ref(), self.metadata.generation)
    }
}

impl Kind for lakeops_crds::SecurityBaseline {
    fn ready(&self) -> Option<ReadyCondition> {
        ready_of(self.status.as_ref(), self.metadata.generation)
    }
}

impl Kind for lakeops_crds::EtlPipeline {
    fn ready(&self) -> Option<ReadyCondition> {
        ready_of(self.status.as_ref(), self.metadata.generation)
    }
}

impl Kind for lakeops_crds::BackupPolicy {
    fn ready(&self) -> Option<ReadyCondition> {
        ready_of(self.status.as_ref(), self.metadata.generation)
    }
}

/// Waits (60 s at most) until the object's Ready condition for its current generation
/// satisfies `ok`, and returns the object; panics with the last condition seen.
pub async fn wait_until<K: Kind>(api: &Api<K>, name: &str, what: &str, ok: impl Fn(&ReadyCondition) -> bool) -> K {
    let result = eventually(Duration::from_secs(60), what, || async {
        let o = api.get(name).await?;
        Ok(o.ready().filter(|r| ok(r)).map(|_| o))
    })
    .await;
    match result {
        Ok(o) => o,
        Err(e) => {
            let last = api.get(name).await.ok().and_then(|o| o.ready());
            panic!("{name} never showed {what}: {e}; last Ready condition: {last:?}")
        }
    }
}

/// Puts `body` at `bucket/key` the way a lake's bucket policy demands: over the HTTPS client
/// `s3`, SSE-KMS with `kms_key_arn` named in the request.
pub async fn put_encrypted(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    kms_key_arn: &str,
    body: &'static [u8],
) -> Result<
    aws_sdk_s3::operation::put_object::PutObjectOutput,
    aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::put_object::PutObjectError>,
> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(body))
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id(kms_key_arn)
        .send()
        .await
}

/// A versioned bucket named `name` in `region`, as a test's own fixture (packages, replication
/// sources and targets).
pub(crate) async fn versioned_bucket(s3: &aws_sdk_s3::Client, region: &str, name: &str) {
    use aws_sdk_s3::types::{
        BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, VersioningConfiguration,
    };
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region)).build(),
        )
        .send()
        .await
        .expect("bucket");
    s3.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .expect("versioning");
}
