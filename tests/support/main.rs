//! `lakeops-testenv`: runs the local control plane (etcd, kube-apiserver, moto) with the
//! lakeops CRDs installed until SIGTERM/SIGINT, for demos and manual testing.
//!
//! ```text
//! lakeops-testenv [--dir DIR] [--env-file PATH] [--region REGION]
//! ```
//! `--dir` keeps state, logs and the kubeconfig in DIR (default: a temp dir removed on exit);
//! `--env-file` writes `export` lines (default: `<dir>/env`) to `source` in a shell.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use lakeops_testenv::TestEnv;

const USAGE: &str = "usage: lakeops-testenv [--dir DIR] [--env-file PATH] [--region REGION]";

struct Args {
    dir: Option<PathBuf>,
    env_file: Option<PathBuf>,
    region: String,
}

fn parse_args() -> Result<Option<Args>> {
    let mut args = Args { dir: None, env_file: None, region: "us-east-1".into() };
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        let arg = arg.to_string_lossy().into_owned();
        // Both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.into())),
            None => (arg.clone(), None),
        };
        let mut value = || -> Result<std::ffi::OsString> {
            inline.clone().or_else(|| it.next()).with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--dir" => args.dir = Some(value()?.into()),
            "--env-file" => args.env_file = Some(value()?.into()),
            "--region" => args.region = value()?.to_string_lossy().into_owned(),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(Some(args))
}

/// Single-quotes `value` for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

async fn run(args: Args) -> Result<()> {
    let mut env = match &args.dir {
        Some(dir) => TestEnv::start_in(dir).await?,
        None => TestEnv::start().await?,
    };
    env.install_chart_crds().await.context("installing the lakeops CRDs")?;

    let env_file = args.env_file.unwrap_or_else(|| env.dir.join("env"));
    let mut text = String::new();
    for (name, value) in env.env_vars(&args.region) {
        let _ = writeln!(text, "export {name}={}", shell_quote(&value));
    }
    std::fs::write(&env_file, text).with_context(|| format!("writing {}", env_file.display()))?;

    println!(
        "lakeops-testenv ready in {:.1}s: apiserver {}, moto {}; `source {}` (kubeconfig {}, logs in {}); Ctrl-C to stop",
        env.startup_time().as_secs_f64(),
        env.apiserver_url,
        env.moto_endpoint,
        env_file.display(),
        env.kubeconfig.display(),
        env.dir.display()
    );

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = sigterm.recv() => {}
    }
    eprintln!("lakeops-testenv: stopping");
    env.stop();
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // kube logs every failed /readyz poll during start-up at ERROR: expected noise.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client::client::builder=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lakeops-testenv: {e:#}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lakeops-testenv: {e:#}");
            ExitCode::FAILURE
        }
    }
}
