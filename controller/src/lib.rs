//! lakeops: a Kubernetes controller that turns Git-committed manifests into secure AWS
//! data lakes. The binary's subcommands live in [`cli`]; the controller in [`controller`].
#![forbid(unsafe_code)]

pub mod aws;
pub mod backoff;
pub mod cli;
pub mod conditions;
pub mod context;
pub mod controller;
pub mod engine;
pub mod error;
pub mod iam;
pub mod leader;
pub mod manifests;
pub mod metrics;
pub mod plan;
pub mod policy;
pub mod reconcile;
pub mod review;
pub mod schema;
pub mod status;

/// Makes aws-lc-rs the process-wide rustls provider. kube and the AWS SDK both compile a
/// provider in, and with two available rustls refuses to pick one, so the first TLS
/// connection would panic. Call once before building any client; later calls are no-ops.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is just as good.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
