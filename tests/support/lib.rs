//! The real local control plane for lakeops' end-to-end tests: etcd, a kube-apiserver 1.20 with
//! RBAC, and the moto AWS server (over HTTPS, with the extension layer in `moto_ext/`), all as
//! child processes on free 127.0.0.1 ports.
//!
//! The binaries come from `tests/env/install.sh`, which provisions them into
//! `$HOME/.cache/lakeops/bin` (override with `LAKEOPS_BIN_DIR`). There is no kubelet and no
//! kube-controller-manager: objects are stored and validated, authorization is real, but pods
//! never run, namespaces never finish deleting and garbage collection never happens. Tests
//! isolate themselves with fresh namespaces ([`TestEnv::create_namespace`]) and unique AWS
//! names ([`unique_name`]).
#![forbid(unsafe_code)]

mod certs;
mod crds;
pub mod faultproxy;
mod kubeconfig;
pub mod kubefaults;
mod process;

pub use crds::chart_crds_file;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, GetParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::process::{Supervised, Watchdog, free_ports, log_tail};

/// Field manager used for everything this crate applies server-side.
pub const FIELD_MANAGER: &str = "lakeops-testenv";

/// The access key and secret moto accepts (it accepts anything; these are its documented defaults).
pub const AWS_DUMMY_CREDENTIAL: &str = "testing";

/// The launcher that starts moto with the project's extension layer (`support/moto_ext/`),
/// relative to this crate.
const MOTO_LAUNCHER: &str = "support/moto_server_ext.py";

/// Every binary `tests/env/install.sh` provides, checked up front for a clear error.
const BINARIES: [&str; 5] = ["etcd", "kube-apiserver", "moto_server", "kubectl", "helm"];

const APISERVER_READY_TIMEOUT: Duration = Duration::from_secs(60);
const MOTO_READY_TIMEOUT: Duration = Duration::from_secs(60);
const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Port races with other processes are the only start-up failure worth retrying.
const START_ATTEMPTS: usize = 3;

/// A running etcd + kube-apiserver + moto. Dropping it (or [`TestEnv::stop`]) stops them; they
/// are also stopped if the process dies without dropping it (see `process.rs`).
pub struct TestEnv {
    /// Admin kubeconfig (token auth, CA embedded); also what `kubectl()` and `helm()` use.
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT` of the kube-apiserver.
    pub apiserver_url: String,
    /// Bearer token of the `admin` user (group `system:masters`).
    pub admin_token: String,
    /// `https://127.0.0.1:PORT` of the moto server, for every AWS service and region. Its
    /// certificate is signed by [`TestEnv::ca_cert`], which [`TestEnv::aws_config`] and
    /// [`TestEnv::env_vars`] make trusted.
    pub moto_endpoint: String,
    /// `http://127.0.0.1:PORT`: the same moto server without TLS, only for showing that a
    /// TLS-only bucket policy refuses plain HTTP.
    pub moto_plain_endpoint: String,
    /// The environment's CA certificate (PEM): it signs the API server's and moto's
    /// serving certificates.
    pub ca_cert: PathBuf,
    ca_pem: Vec<u8>,
    /// State directory: logs (`etcd.log`, `kube-apiserver.log`, `moto.log`), certificates, etcd data.
    pub dir: PathBuf,
    startup_time: Duration,
    children: Vec<Supervised>,
    watchdog: Option<Watchdog>,
    /// Declared last so it is removed after `Drop::drop` has stopped the children.
    _tempdir: Option<tempfile::TempDir>,
}

impl TestEnv {
    /// Starts etcd + kube-apiserver (RBAC on) + moto on free 127.0.0.1 ports with temp dirs.
    pub async fn start() -> Result<TestEnv> {
        Self::start_with(|| {
            let tmp = tempfile::Builder::new()
                .prefix("lakeops-testenv-")
                .tempdir()
                .context("creating the environment's temp dir")?;
            Ok((tmp.path().to_path_buf(), Some(tmp)))
        })
        .await
    }

    /// Same, but with a caller-chosen state dir (for the demo binary), kept after exit.
    /// Previous etcd data in it is discarded: it would name the previous run's ports.
    pub async fn start_in(dir: &Path) -> Result<TestEnv> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
        Self::start_with(|| {
            let etcd = dir.join("etcd");
            if etcd.exists() {
                std::fs::remove_dir_all(&etcd).with_context(|| format!("removing stale {}", etcd.display()))?;
            }
            Ok((dir.clone(), None))
        })
        .await
    }

    async fn start_with(mut prepare: impl FnMut() -> Result<(PathBuf, Option<tempfile::TempDir>)>) -> Result<TestEnv> {
        check_binaries()?;
        let mut attempt = 1;
        loop {
            let (dir, tempdir) = prepare()?;
            match Self::launch(&dir, tempdir).await {
                Ok(env) => return Ok(env),
                Err(e) if attempt < START_ATTEMPTS && is_port_race(&e) => {
                    tracing::warn!("test environment start-up lost a port race, retrying: {e:#}");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn launch(dir: &Path, tempdir: Option<tempfile::TempDir>) -> Result<TestEnv> {
        let started = Instant::now();
        let bin = Self::bin_dir();
        let [etcd_client, etcd_peer, apiserver_port, moto_port, moto_plain_port] = free_ports::<5>()?;
        // The temp dir is removed by the watchdog if this process dies without dropping us.
        let watchdog = Watchdog::spawn(tempdir.as_ref().map(tempfile::TempDir::path))?;
        let mut env = TestEnv {
            kubeconfig: dir.join("kubeconfig"),
            apiserver_url: format!("https://127.0.0.1:{apiserver_port}"),
            admin_token: random_hex(16)?,
            moto_endpoint: format!("https://127.0.0.1:{moto_port}"),
            moto_plain_endpoint: format!("http://127.0.0.1:{moto_plain_port}"),
            ca_cert: dir.join("pki/ca.crt"),
            ca_pem: Vec::new(),
            dir: dir.to_path_buf(),
            startup_time: Duration::ZERO,
            children: Vec::new(),
            watchdog: Some(watchdog),
            _tempdir: tempdir,
        };
        // From here on an early return drops `env`, which stops whatever already runs.

        // Keys first: moto serves HTTPS with the same serving certificate as the API server.
        let pki = certs::generate(&dir.join("pki")).await?;
        env.ca_pem = std::fs::read(&pki.ca_cert).context("reading the CA certificate")?;
        // moto (a Python import-heavy start) and etcd next, so they boot while the rest starts.
        let path = |p: &Path| p.display().to_string();
        env.spawn(
            "moto",
            &moto_python(&bin)?,
            &[
                path(&Path::new(env!("CARGO_MANIFEST_DIR")).join(MOTO_LAUNCHER)),
                format!("--https-port={moto_port}"),
                format!("--http-port={moto_plain_port}"),
                format!("--cert={}", path(&pki.server_cert)),
                format!("--key={}", path(&pki.server_key)),
            ],
        )?;
        let etcd_client_url = format!("http://127.0.0.1:{etcd_client}");
        let etcd_peer_url = format!("http://127.0.0.1:{etcd_peer}");
        env.spawn(
            "etcd",
            &bin.join("etcd"),
            &[
                "--name=testenv".into(),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_client_url}"),
                format!("--advertise-client-urls={etcd_client_url}"),
                format!("--listen-peer-urls={etcd_peer_url}"),
                format!("--initial-advertise-peer-urls={etcd_peer_url}"),
                format!("--initial-cluster=testenv={etcd_peer_url}"),
                "--initial-cluster-state=new".into(),
                "--logger=zap".into(),
                "--log-level=warn".into(),
            ],
        )?;

        let token_file = dir.join("tokens.csv");
        std::fs::write(&token_file, format!("{},admin,admin-uid,system:masters\n", env.admin_token))
            .context("writing the token auth file")?;
        kubeconfig::write(&env.kubeconfig, &env.apiserver_url, &env.ca_pem, &env.admin_token)?;

        // The apiserver gives up on an unreachable etcd, so wait for etcd's port first.
        wait_for_tcp(&mut env.children[1], etcd_client, ETCD_READY_TIMEOUT).await?;
        env.spawn(
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            &[
                format!("--etcd-servers={etcd_client_url}"),
                "--bind-address=127.0.0.1".into(),
                format!("--secure-port={apiserver_port}"),
                "--insecure-port=0".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--cert-dir={}", path(&dir.join("pki"))),
                format!("--tls-cert-file={}", path(&pki.server_cert)),
                format!("--tls-private-key-file={}", path(&pki.server_key)),
                format!("--client-ca-file={}", path(&pki.ca_cert)),
                format!("--service-account-key-file={}", path(&pki.sa_pub)),
                format!("--service-account-signing-key-file={}", path(&pki.sa_key)),
                "--service-account-issuer=https://kubernetes.default.svc".into(),
                format!("--token-auth-file={}", path(&token_file)),
                "--authorization-mode=RBAC".into(),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--profiling=false".into(),
                // The default (lease) reconciler removes this server's endpoint on shutdown and
                // retries while etcd, stopped at the same moment, is gone: SIGTERM then takes
                // 5 s+ instead of well under one. No pods exist, so nobody reads that endpoint.
                "--endpoint-reconciler-type=none".into(),
            ],
        )?;

        let [moto, _etcd, apiserver] = env.children.as_mut_slice() else {
            bail!("internal error: expected three children");
        };
        tokio::try_join!(
            wait_for_apiserver(apiserver, &env.kubeconfig, APISERVER_READY_TIMEOUT),
            // The plain listener is bound after the HTTPS one: when it answers, both do.
            wait_for_moto(moto, moto_plain_port, MOTO_READY_TIMEOUT),
        )?;
        // One real SDK round trip over HTTPS, so a broken endpoint, certificate or credential
        // setup fails here, not in a test.
        env.s3("us-east-1")
            .list_buckets()
            .send()
            .await
            .context("moto answered HTTP but S3 ListBuckets through the SDK failed")?;

        env.startup_time = started.elapsed();
        tracing::info!(
            "test environment ready in {:?}: apiserver {}, moto {}, dir {}",
            env.startup_time,
            env.apiserver_url,
            env.moto_endpoint,
            env.dir.display()
        );
        Ok(env)
    }

    fn spawn(&mut self, name: &'static str, program: &Path, args: &[String]) -> Result<()> {
        let log = self.dir.join(format!("{name}.log"));
        let watchdog = self.watchdog.as_mut().context("the environment was already stopped")?;
        let child = watchdog.spawn_child(name, program, args, &log)?;
        self.children.push(child);
        Ok(())
    }

    /// How long [`TestEnv::start`] took until everything answered.
    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }

    /// An admin client (token auth, CA from the kubeconfig). A new one per call: a client is
    /// bound to the tokio runtime it first ran in, and each `#[tokio::test]` has its own.
    pub async fn kube_client(&self) -> Result<kube::Client> {
        let config = self.kube_config().await?;
        kube::Client::try_from(config).context("building the admin kube client")
    }

    /// The admin client configuration, to adjust before building a client.
    pub async fn kube_config(&self) -> Result<kube::Config> {
        kube_config_from(&self.kubeconfig).await
    }

    /// A client that authenticates with `token` instead of the admin token, e.g. a
    /// ServiceAccount token from [`TestEnv::service_account_token`], so RBAC applies to it.
    pub async fn client_with_token(&self, token: &str) -> Result<kube::Client> {
        let mut config = self.kube_config().await?;
        config.auth_info = kube::config::AuthInfo { token: Some(token.to_owned().into()), ..Default::default() };
        kube::Client::try_from(config).context("building a token kube client")
    }

    /// A one-hour token for ServiceAccount `namespace/name`, through the TokenRequest API
    /// (what `kubectl create token` does). The ServiceAccount must exist.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> Result<String> {
        let api: Api<ServiceAccount> = Api::namespaced(self.kube_client().await?, namespace);
        let request = TokenRequest {
            spec: TokenRequestSpec { expiration_seconds: Some(3600), ..Default::default() },
            ..Default::default()
        };
        let response = api
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("requesting a token for {namespace}/{name}"))?;
        response
            .status
            .map(|s| s.token)
            .filter(|t| !t.is_empty())
            .with_context(|| format!("the TokenRequest for {namespace}/{name} returned no token"))
    }

    /// SDK configuration for moto: its HTTPS endpoint, an HTTP client that trusts the
    /// environment's CA (and nothing else), static dummy credentials, `region`.
    pub fn aws_config(&self, region: &str) -> aws_config::SdkConfig {
        self.aws_config_for(&self.moto_endpoint, region)
    }

    /// The same for moto's plain-HTTP listener, to show what a TLS-only policy refuses.
    pub fn aws_config_without_tls(&self, region: &str) -> aws_config::SdkConfig {
        self.aws_config_for(&self.moto_plain_endpoint, region)
    }

    /// The same for any endpoint that forwards to moto (a fault proxy).
    pub fn aws_config_for(&self, endpoint: &str, region: &str) -> aws_config::SdkConfig {
        let credentials = aws_sdk_s3::config::Credentials::new(
            AWS_DUMMY_CREDENTIAL,
            AWS_DUMMY_CREDENTIAL,
            None,
            None,
            "lakeops-testenv",
        );
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(credentials))
            .http_client(self.https_client())
            .build()
    }

    /// The SDK's default HTTPS client (rustls), trusting only the environment's CA. The
    /// process-wide alternative, `SSL_CERT_FILE`, is read once per process and would also
    /// replace the system roots of everything else in a test binary.
    fn https_client(&self) -> aws_sdk_s3::config::SharedHttpClient {
        use aws_smithy_http_client::tls;
        let trust = tls::TrustStore::empty().with_native_roots(false).with_pem_certificate(self.ca_pem.clone());
        // `build` only stores the trust store (it cannot fail); the certificate itself is
        // parsed when the first connection is made, which start-up does.
        let context = tls::TlsContext::builder().with_trust_store(trust).build().unwrap_or_default();
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
            .tls_context(context)
            .build_https()
    }

    /// An S3 client for moto. Path-style, because virtual-hosted buckets would need DNS for
    /// `<bucket>.127.0.0.1`.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.aws_config(region)).force_path_style(true).build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// A KMS client for moto.
    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.aws_config(region))
    }

    /// A DynamoDB client for moto.
    pub fn dynamodb(&self, region: &str) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.aws_config(region))
    }

    /// An IAM client for moto.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.aws_config("us-east-1"))
    }

    /// A Lambda client for moto.
    pub fn lambda(&self, region: &str) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.aws_config(region))
    }

    /// A CloudWatch Logs client for moto.
    pub fn logs(&self, region: &str) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.aws_config(region))
    }

    /// Environment for a process (the controller, the CLI, boto3) that should use this
    /// environment: `KUBECONFIG`, the `AWS_*` variables the AWS SDKs read, and the CA that
    /// signs moto's certificate: `SSL_CERT_FILE` for the Rust SDK's default HTTPS client
    /// (rustls-native-certs reads it instead of the system store), `AWS_CA_BUNDLE` for
    /// botocore and the AWS CLI.
    pub fn env_vars(&self, region: &str) -> Vec<(&'static str, String)> {
        let ca = self.ca_cert.display().to_string();
        vec![
            ("KUBECONFIG", self.kubeconfig.display().to_string()),
            ("AWS_ENDPOINT_URL", self.moto_endpoint.clone()),
            ("SSL_CERT_FILE", ca.clone()),
            ("AWS_CA_BUNDLE", ca),
            ("AWS_ACCESS_KEY_ID", AWS_DUMMY_CREDENTIAL.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", AWS_DUMMY_CREDENTIAL.to_owned()),
            ("AWS_REGION", region.to_owned()),
        ]
    }

    /// Server-side applies `crds` (field manager [`FIELD_MANAGER`], forced) and waits until
    /// each is Established, so custom resources can be created right after.
    ///
    /// Fields the server's CRD schema does not have yet are removed first, because server-side
    /// apply rejects undeclared fields instead of pruning them: on 1.20 that is every CEL rule
    /// (`x-kubernetes-validations`, 1.23+) and `selectableFields` (1.30+). A server that old
    /// would drop them from a plain create anyway; the controller enforces those rules itself.
    pub async fn install_crds(&self, crds: &[CustomResourceDefinition]) -> Result<()> {
        let client = self.kube_client().await?;
        let version = client.apiserver_version().await.context("reading the API server version")?;
        let minor = leading_number(&version.minor).unwrap_or(u32::MAX);
        let api: Api<CustomResourceDefinition> = Api::all(client);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        for crd in crds {
            let name = crd.metadata.name.as_deref().context("a CRD without a name")?;
            let body = crd_for_server(crd, minor)?;
            api.patch(name, &params, &Patch::Apply(&body)).await.with_context(|| format!("applying CRD {name}"))?;
        }
        let names: Vec<String> = crds.iter().filter_map(|c| c.metadata.name.clone()).collect();
        self.wait_crds_established(&names).await
    }

    /// Creates a namespace named `<prefix>-<random>` (a valid DNS label) and returns the name.
    /// Always use fresh ones: without kube-controller-manager, deleted namespaces stay
    /// `Terminating` forever.
    pub async fn create_namespace(&self, prefix: &str) -> Result<String> {
        let name = unique_name(prefix);
        let api: Api<Namespace> = Api::all(self.kube_client().await?);
        let namespace =
            Namespace { metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() }, ..Default::default() };
        api.create(&PostParams::default(), &namespace).await.with_context(|| format!("creating namespace {name}"))?;
        Ok(name)
    }

    /// `kubectl` from the bin dir, with `KUBECONFIG` set to the admin kubeconfig.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(Self::bin_dir().join("kubectl"));
        command.env("KUBECONFIG", &self.kubeconfig);
        command
    }

    /// `helm` from the bin dir, with `KUBECONFIG` set and its cache/config/data dirs inside
    /// [`TestEnv::dir`], so runs never share or pollute `~/.cache/helm`.
    pub fn helm(&self) -> Command {
        let mut command = Command::new(Self::bin_dir().join("helm"));
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", self.dir.join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.dir.join("helm/config"))
            .env("HELM_DATA_HOME", self.dir.join("helm/data"));
        command
    }

    /// `$LAKEOPS_BIN_DIR`, or `$HOME/.cache/lakeops/bin` where `tests/env/install.sh` puts
    /// the binaries.
    pub fn bin_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("LAKEOPS_BIN_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
        home.join(".cache/lakeops/bin")
    }

    /// Stops every child (SIGTERM, SIGKILL after 10 s) and waits for them. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut watchdog) = self.watchdog.take() else {
            return;
        };
        // An orderly stop: the temp dir (if any) is removed by `TempDir`, not the watchdog,
        // so logs stay readable until the environment is dropped.
        watchdog.keep_dir();
        // Closing the pipe makes the watchdog SIGTERM every child at once.
        watchdog.release();
        let deadline = Instant::now() + Duration::from_secs(10);
        for child in &mut self.children {
            child.wait_or_kill(deadline);
        }
        self.children.clear();
        watchdog.wait(Duration::from_secs(15));
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One environment per test process, started lazily on first use and shared by every test in
/// the binary, with the lakeops CRDs installed from the chart's file by kubectl. Tests isolate
/// themselves with fresh namespaces and unique AWS names. Panics with the start-up error (once per test, the error is cached).
pub async fn shared() -> &'static TestEnv {
    static SHARED: tokio::sync::OnceCell<std::result::Result<TestEnv, String>> = tokio::sync::OnceCell::const_new();
    let env = SHARED
        .get_or_init(|| async {
            let env = TestEnv::start().await.map_err(|e| format!("{e:#}"))?;
            env.install_chart_crds().await.map_err(|e| format!("installing the lakeops CRDs: {e:#}"))?;
            Ok(env)
        })
        .await;
    match env {
        Ok(env) => env,
        Err(e) => panic!(
            "the lakeops test environment (etcd, kube-apiserver, moto) failed to start: {e}\n\
             binaries are taken from {}; run tests/env/install.sh to provision them",
            TestEnv::bin_dir().display()
        ),
    }
}

/// A unique lowercase name `<prefix>-<10 hex chars>`, at most 63 characters, valid as a
/// Kubernetes namespace/object name and as an S3 bucket, KMS alias or DynamoDB table name.
pub fn unique_name(prefix: &str) -> String {
    let suffix = random_hex(5).unwrap_or_else(|_| fallback_random_hex());
    let mut base: String =
        prefix.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    base.truncate(63 - 1 - suffix.len());
    let base = base.trim_matches('-');
    if base.is_empty() { format!("t-{suffix}") } else { format!("{base}-{suffix}") }
}

/// `bytes` random bytes from the kernel, hex-encoded.
fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).context("reading /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Without /dev/urandom: std's per-process random hash keys plus a counter, still unique.
fn fallback_random_hex() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    format!("{:010x}", hasher.finish() & 0xff_ffff_ffff)
}

/// The Python of the venv that holds moto (what runs the extension layer): `moto_server` in
/// the bin dir `bin` ([`TestEnv::bin_dir`]) links to the venv's script, whose directory holds
/// that venv's `python`.
pub fn moto_python(bin: &Path) -> Result<PathBuf> {
    let script = bin.join("moto_server");
    let resolved = script.canonicalize().with_context(|| format!("resolving {} to moto's venv", script.display()))?;
    let python = resolved.with_file_name("python");
    if !python.exists() {
        bail!("{} is not in a Python venv (no {}); run tests/env/install.sh", resolved.display(), python.display());
    }
    Ok(python)
}

fn check_binaries() -> Result<()> {
    let bin = TestEnv::bin_dir();
    let missing: Vec<&str> = BINARIES.into_iter().filter(|b| !bin.join(b).exists()).collect();
    if !missing.is_empty() {
        bail!(
            "missing from {}: {}; run tests/env/install.sh (it provisions them there), \
             or point LAKEOPS_BIN_DIR at a directory holding them",
            bin.display(),
            missing.join(", ")
        );
    }
    Ok(())
}

/// The number a version component starts with: "20" and "20+" (some distributions) give 20.
fn leading_number(text: &str) -> Option<u32> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `crd` as JSON without the fields an API server of minor version `minor` does not declare.
fn crd_for_server(crd: &CustomResourceDefinition, minor: u32) -> Result<serde_json::Value> {
    fn remove_key_recursively(value: &mut serde_json::Value, key: &str) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove(key);
                map.values_mut().for_each(|v| remove_key_recursively(v, key));
            }
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|v| remove_key_recursively(v, key));
            }
            _ => {}
        }
    }
    let mut body = serde_json::to_value(crd).context("serializing a CRD")?;
    let versions = body.pointer_mut("/spec/versions").and_then(serde_json::Value::as_array_mut);
    for version in versions.into_iter().flatten() {
        if minor < 30
            && let Some(map) = version.as_object_mut()
        {
            map.remove("selectableFields");
        }
        if minor < 23
            && let Some(schema) = version.get_mut("schema")
        {
            remove_key_recursively(schema, "x-kubernetes-validations");
        }
    }
    Ok(body)
}

fn is_port_race(e: &anyhow::Error) -> bool {
    // etcd and kube-apiserver (Go) say "bind: address already in use", moto (Python)
    // "[Errno 98] Address already in use".
    format!("{e:#}").to_ascii_lowercase().contains("address already in use")
}

/// Makes rustls' ring provider the process default. kube (ring) and the AWS SDK (aws-lc-rs)
/// both compile a provider in, so rustls cannot choose one itself and the first kube client
/// would panic. Called before every kube client this crate builds; call it yourself before
/// building one by other means. A no-op when a default is already installed.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn kube_config_from(path: &Path) -> Result<kube::Config> {
    install_crypto_provider();
    let kubeconfig = Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading {}", path.display()))
}

/// Waits until `port` accepts TCP connections, failing early if the child exits.
async fn wait_for_tcp(child: &mut Supervised, port: u16, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        child.ensure_running()?;
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not accept connections on port {port} within {timeout:?}; last lines of {}:\n{}",
                child.name,
                child.log.display(),
                log_tail(&child.log, 40)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `/readyz` with the admin token until it answers 200: only then are the RBAC bootstrap
/// roles, the built-in priority levels and CRD handling in place.
async fn wait_for_apiserver(child: &mut Supervised, kubeconfig: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let client =
        kube::Client::try_from(kube_config_from(kubeconfig).await?).context("building the readiness client")?;
    loop {
        child.ensure_running()?;
        let request = kube::core::Request::new("")
            .get("readyz", &GetParams::default())
            .context("building the /readyz request")?;
        let last = match tokio::time::timeout(Duration::from_secs(5), client.request_text(request)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "the request timed out".to_owned(),
        };
        if Instant::now() > deadline {
            bail!(
                "kube-apiserver not ready within {timeout:?} (last /readyz: {last}); last lines of {}:\n{}",
                child.log.display(),
                log_tail(&child.log, 40)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until moto answers an HTTP request (any status: it only has to be serving).
async fn wait_for_moto(child: &mut Supervised, port: u16, timeout: Duration) -> Result<()> {
    async fn probe(port: u16) -> std::io::Result<bool> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").await?;
        let mut head = [0u8; 8];
        stream.read_exact(&mut head).await?;
        Ok(head.starts_with(b"HTTP/1."))
    }
    let deadline = Instant::now() + timeout;
    loop {
        child.ensure_running()?;
        if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_secs(5), probe(port)).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "moto did not answer HTTP on port {port} within {timeout:?}; last lines of {}:\n{}",
                child.log.display(),
                log_tail(&child.log, 40)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
