//! End-to-end tests: the real kube-apiserver + etcd + moto from `lakeops_testenv`.
mod common;
mod controller;
mod crds;
mod examples;
mod invalid;
mod testenv;
