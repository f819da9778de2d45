//! The lakeops CRDs installed the way a user installs them: the chart's committed YAML
//! (`charts/lakeops/crds/`), read by kubectl's own YAML parser (go-yaml, YAML 1.1). A value
//! that YAML 1.1 reads as a bool, number or null therefore reaches the API server exactly as
//! it would from a user's `kubectl apply`, instead of being hidden by a JSON install.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use kube::runtime::wait::{await_condition, conditions};

use crate::TestEnv;

/// API servers from this minor version on serve CEL rules (`x-kubernetes-validations`) as GA.
const FIRST_MINOR_WITH_CEL: u32 = 25;

const CRD_ESTABLISHED_TIMEOUT: Duration = Duration::from_secs(30);

/// The chart's CRD file, as committed.
pub fn chart_crds_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/lakeops/crds/lakeops.dev.yaml")
}

impl TestEnv {
    /// Applies the chart's CRD file with kubectl and waits until every CRD is Established.
    ///
    /// A server that knows CEL gets `kubectl apply --server-side`, as the chart's README
    /// documents. An older one (this environment's 1.20) refuses undeclared fields in a
    /// server-side apply, and kubectl's client-side validation refuses the CEL rules; what a
    /// user of such a cluster can do with the same file is a client-side apply without
    /// kubectl's schema check, after which the server drops the rules it does not know. The
    /// controller enforces every one of them itself.
    pub async fn install_chart_crds(&self) -> Result<()> {
        let client = self.kube_client().await?;
        let version = client.apiserver_version().await.context("reading the API server version")?;
        let minor = crate::leading_number(&version.minor).unwrap_or(u32::MAX);
        let file = chart_crds_file();
        let mut kubectl = self.kubectl();
        if minor >= FIRST_MINOR_WITH_CEL {
            kubectl.args(["apply", "--server-side", "--force-conflicts", "-f"]);
        } else {
            kubectl.args(["apply", "--validate=false", "-f"]);
        }
        let out = kubectl.arg(&file).output().context("running kubectl apply")?;
        if !out.status.success() {
            bail!(
                "kubectl apply -f {} failed: {}{}",
                file.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let names: Vec<String> = lakeops_crds::crds().iter().filter_map(|c| c.metadata.name.clone()).collect();
        self.wait_crds_established(&names).await
    }

    /// Waits until each named CRD is Established, so custom resources can be created.
    pub async fn wait_crds_established(&self, names: &[String]) -> Result<()> {
        let api: Api<CustomResourceDefinition> = Api::all(self.kube_client().await?);
        for name in names {
            tokio::time::timeout(
                CRD_ESTABLISHED_TIMEOUT,
                await_condition(api.clone(), name, conditions::is_crd_established()),
            )
            .await
            .with_context(|| format!("CRD {name} not Established after {CRD_ESTABLISHED_TIMEOUT:?}"))?
            .with_context(|| format!("waiting for CRD {name}"))?;
        }
        Ok(())
    }
}
