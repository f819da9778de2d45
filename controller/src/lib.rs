//! lakeops: a Kubernetes controller that turns Git-committed manifests into secure AWS
//! data lakes. The binary's subcommands live in [`cli`]; the controller in [`controller`].
#![forbid(unsafe_code)]

pub mod aws;
pub mod cli;
pub mod conditions;
pub mod context;
pub mod controller;
pub mod error;
pub mod manifests;
pub mod metrics;
pub mod reconcile;
pub mod status;
