//! The `lakeops` command line.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::context::Config;

/// lakeops: secure AWS data lakes from Kubernetes manifests.
#[derive(Debug, Parser)]
#[command(name = "lakeops", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller.
    Controller(ControllerArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crds {
        /// Leave out CEL rules, for API servers before 1.25 (the controller enforces them anyway).
        #[arg(long)]
        without_cel: bool,
    },
    /// Check manifests offline (no cluster, no AWS).
    Validate(ValidateArgs),
    /// Show what applying manifests would change in AWS (read-only AWS calls).
    Plan(PlanArgs),
    /// Print the IAM policy the controller needs (attach it to its IRSA / Pod Identity role).
    IamPolicy {
        /// Scope key, table and trail ARNs to this account.
        #[arg(long)]
        account: Option<String>,
        /// Bucket name pattern the controller may manage, e.g. `team-*`.
        #[arg(long, default_value = "*")]
        bucket_pattern: String,
        /// Bucket name pattern of the EtlFunction deployment-package buckets.
        #[arg(long, default_value = "*")]
        artifact_bucket_pattern: String,
        /// The boundary the controller runs with (`--permissions-boundary`): roles may then
        /// only be created or given permissions while they carry it.
        #[arg(long)]
        permissions_boundary: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum PlanFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, clap::Args)]
struct PlanArgs {
    /// Files or directories of YAML; `-` reads standard input.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Namespace of objects whose manifest names none.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// Output format; markdown is ready to post as a pull-request comment.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    format: PlanFormat,
    /// Exit 0 when nothing would change, 2 when something would, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    /// Compare with the manifests in this directory instead of AWS (no AWS access needed):
    /// what the change does to the manifests, and which edits weaken protection.
    #[arg(long)]
    base: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ControllerArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "LAKEOPS_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Periodic resync interval for drift detection, e.g. 10m.
    #[arg(long, env = "LAKEOPS_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_interval)]
    resync_interval: Duration,
    /// Objects of one kind reconciled concurrently.
    #[arg(long, env = "LAKEOPS_CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "LAKEOPS_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Default AWS region (each lake's resources go to its spec.region).
    #[arg(long, env = "AWS_REGION")]
    region: Option<String>,
    /// Log format.
    #[arg(long, env = "LAKEOPS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Reconcile only while holding a Lease, so several replicas are safe.
    #[arg(long, env = "LAKEOPS_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the Lease (the controller's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    leader_election_namespace: String,
    /// Name of the Lease.
    #[arg(long, env = "LAKEOPS_LEASE_NAME", default_value = "lakeops-controller")]
    lease_name: String,
    /// Seconds a leader holds the Lease without renewing it; a standby takes over after it.
    #[arg(long, env = "LAKEOPS_LEASE_SECONDS", default_value_t = 15)]
    lease_seconds: u64,
    /// ARN of an IAM policy attached as permissions boundary to every role lakeops generates.
    #[arg(long, env = "LAKEOPS_PERMISSIONS_BOUNDARY")]
    permissions_boundary: Option<String>,
    /// Lambda control-plane requests per second, per region (Lambda allows about 15 per
    /// account; leave room for other clients).
    #[arg(long, env = "LAKEOPS_LAMBDA_REQUESTS_PER_SECOND", default_value_t = crate::aws::clients::DEFAULT_LAMBDA_RATE)]
    lambda_requests_per_second: u32,
    /// Reconcile SecurityBaselines (cluster-scoped, account-wide services). Turn off in every
    /// controller of an account but one, e.g. when each watches its own namespace.
    #[arg(long, env = "LAKEOPS_SECURITY_BASELINES", default_value_t = true, action = clap::ArgAction::Set)]
    security_baselines: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
struct ValidateArgs {
    /// Files or directories of YAML; `-` reads standard input.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Namespace of objects whose manifest names none.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// Treat warnings (protections explicitly turned off) as errors.
    #[arg(long)]
    strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    crate::reconcile::parse_duration(s).ok_or_else(|| format!("{s:?} is not a duration like 30s, 10m or 1h"))
}

impl Cli {
    /// Runs the chosen subcommand and returns the process exit code.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Crds { without_cel } => {
                if without_cel {
                    print!("{}", lakeops_crds::crds_yaml_without_cel());
                } else {
                    print!("{}", lakeops_crds::crds_yaml());
                }
                ExitCode::SUCCESS
            }
            Command::Validate(args) => validate(args),
            Command::Plan(args) => plan(args),
            Command::IamPolicy { account, bucket_pattern, artifact_bucket_pattern, permissions_boundary } => {
                let policy = crate::iam::controller_policy_bounded(
                    account.as_deref(),
                    &bucket_pattern,
                    &artifact_bucket_pattern,
                    permissions_boundary.as_deref(),
                );
                println!("{}", crate::iam::to_identity_json(&policy));
                ExitCode::SUCCESS
            }
            Command::Controller(args) => controller(args),
        }
    }
}

fn validate(args: ValidateArgs) -> ExitCode {
    let loaded = match crate::manifests::load_in(&args.paths, &args.namespace) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lakeops validate: {e}");
            return ExitCode::from(2);
        }
    };
    let mut problems = loaded.problems;
    problems.extend(crate::manifests::check(&loaded.documents));
    let failed = problems.iter().any(|p| p.severity == "error" || args.strict);
    match args.output {
        OutputFormat::Json => match serde_json::to_string_pretty(&problems) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("lakeops validate: {e}");
                return ExitCode::from(2);
            }
        },
        OutputFormat::Text => {
            for p in &problems {
                println!("{p}");
            }
            let errors = problems.iter().filter(|p| p.severity == "error").count();
            eprintln!(
                "{} object(s) checked: {errors} error(s), {} warning(s)",
                loaded.documents.len(),
                problems.len() - errors
            );
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn plan(args: PlanArgs) -> ExitCode {
    let loaded = match crate::manifests::load_in(&args.paths, &args.namespace) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lakeops plan: {e}");
            return ExitCode::from(1);
        }
    };
    let mut problems = loaded.problems;
    problems.extend(crate::manifests::check(&loaded.documents));
    let errors: Vec<_> = problems.iter().filter(|p| p.severity == "error").collect();
    if !errors.is_empty() {
        for p in errors {
            eprintln!("{p}");
        }
        eprintln!("lakeops plan: fix the errors above first (lakeops validate shows them too)");
        return ExitCode::from(1);
    }
    if let Some(base) = &args.base {
        let base_docs = match crate::manifests::load_in(std::slice::from_ref(base), &args.namespace) {
            Ok(l) => l.documents,
            Err(e) => {
                eprintln!("lakeops plan --base: {e}");
                return ExitCode::from(1);
            }
        };
        let changes = crate::review::compare(&base_docs, &loaded.documents);
        match args.format {
            PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&changes).unwrap_or_default()),
            PlanFormat::Markdown => print!("{}", crate::review::render(&changes, true)),
            PlanFormat::Text => print!("{}", crate::review::render(&changes, false)),
        }
        return if args.detailed_exitcode && !changes.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS };
    }
    crate::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lakeops plan: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let sdk = crate::aws::load(None).await;
        let aws = crate::aws::clients::AwsClients::new(sdk, crate::aws::recorder::RequestRecorder::new());
        crate::plan::plan(&loaded.documents, &aws).await
    });
    let plans = match result {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lakeops plan: {e}");
            return ExitCode::from(1);
        }
    };
    let rendered = match args.format {
        PlanFormat::Text => crate::plan::render_text(&plans),
        PlanFormat::Markdown => crate::plan::render_markdown(&plans),
        PlanFormat::Json => crate::plan::render_json(&plans),
    };
    print!("{rendered}");
    if args.detailed_exitcode && crate::plan::Summary::of(&plans).has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn controller(args: ControllerArgs) -> ExitCode {
    init_tracing(args.log_format);
    crate::install_crypto_provider();
    let recorder = crate::aws::recorder::RequestRecorder::new();
    let election = args.leader_election.then(|| crate::leader::LeaderElection {
        namespace: args.leader_election_namespace.clone(),
        lease_name: args.lease_name.clone(),
        identity: identity(),
        lease_seconds: args.lease_seconds.max(5),
        health_addr: args.metrics_addr,
        aws_requests: recorder.family(),
    });
    let config = Config {
        watch_namespace: args.watch_namespace,
        resync_interval: args.resync_interval,
        concurrency: args.concurrency,
        metrics_addr: args.metrics_addr,
        region: args.region,
        permissions_boundary: args.permissions_boundary,
        security_baselines: args.security_baselines,
    };
    let lambda_rate = args.lambda_requests_per_second;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lakeops: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let client = kube::Client::try_default().await?;
        let sdk = crate::aws::load(config.region.clone()).await;
        let aws = crate::aws::clients::AwsClients::with_lambda_rate(sdk, recorder, lambda_rate);
        match election {
            Some(election) => {
                crate::leader::run_when_leader(client.clone(), election, shutdown_signal(), |stop| {
                    crate::controller::run(client, aws, config, stop)
                })
                .await
            }
            None => crate::controller::run(client, aws, config, shutdown_signal()).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "controller failed");
            ExitCode::FAILURE
        }
    }
}

/// This process's identity in leader election: the pod name when set, made unique with
/// the process id and start time so a restarted pod never impersonates its predecessor.
fn identity() -> String {
    let base = std::env::var("POD_NAME").unwrap_or_else(|_| "lakeops".into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{base}-{}-{:x}", std::process::id(), nanos & 0xffff_ffff)
}

/// Resolves on SIGTERM (what Kubernetes sends) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested");
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn,aws=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
