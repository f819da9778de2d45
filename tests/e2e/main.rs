//! End-to-end tests: the real kube-apiserver + etcd + moto from `lakeops_testenv`.
mod argocd_health;
mod aws_adapters;
mod aws_s3;
mod backuppolicy;
mod chart;
mod common;
mod controller;
mod crds;
mod datalake;
mod emulator;
mod etlfunction;
mod examples;
mod fake_agreement;
mod invalid;
mod leader;
mod securitybaseline;
mod testenv;
