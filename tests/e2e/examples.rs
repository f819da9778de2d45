//! The manifests users copy must work as they are.
use crate::common::{kubectl_apply, repo_root};

#[test]
fn examples_pass_lakeops_validate_without_errors_or_warnings() {
    let loaded = lakeops::manifests::load(&[repo_root().join("examples")]).expect("examples are readable");
    assert_eq!(
        loaded.documents.len(),
        7,
        "one DataLake, one EtlFunction, one BackupPolicy, one SecurityBaseline, and the pipeline's two functions and EtlPipeline"
    );
    let mut problems = loaded.problems;
    problems.extend(lakeops::manifests::check(&loaded.documents));
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn every_example_applies_server_side_and_is_listed_as_lakeops() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("examples").await.expect("namespace");
    let dir = repo_root().join("examples");
    // The SecurityBaseline is cluster-scoped and acts on the whole account: the API server
    // checks it (server-side dry run) without storing it, so no baseline test's controller
    // takes it up.
    let baseline = dir.join("securitybaseline.yaml");
    let out = env
        .kubectl()
        .args(["apply", "--server-side", "--dry-run=server", "--validate=false", "--field-manager=e2e", "-f"])
        .arg(&baseline)
        .output()
        .expect("kubectl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for example in ["datalake.yaml", "etlfunction.yaml", "backuppolicy.yaml", "pipeline/pipeline.yaml"] {
        let (ok, out) = kubectl_apply(env, &ns, &dir.join(example)).expect("kubectl");
        assert!(ok, "kubectl apply of {example} failed:\n{out}");
    }

    let out = env.kubectl().args(["get", "lakeops", "-n", &ns, "-o", "name"]).output().expect("kubectl");
    // Cluster-scoped baselines of tests running meanwhile are listed whatever the namespace.
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| !n.starts_with("securitybaseline."))
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "backuppolicy.lakeops.dev/sales-backup",
            "datalake.lakeops.dev/sales",
            "etlfunction.lakeops.dev/customers-tokenise",
            "etlfunction.lakeops.dev/customers-validate",
            "etlfunction.lakeops.dev/orders-to-curated",
            "etlpipeline.lakeops.dev/customers"
        ]
    );

    // Defaults from the schema are applied by the API server itself.
    let lakes = crate::common::api::<lakeops_crds::DataLake>(env, &ns).await.expect("api");
    let lake = lakes.get("sales").await.expect("lake stored");
    assert!(lake.spec.object_lock && lake.spec.access_logs);
    assert_eq!(lake.spec.encryption.key_rotation_days, 365);
    assert_eq!(lake.spec.lifecycle.abort_incomplete_multipart_upload_days, 7);
    assert_eq!(
        lake.spec.lifecycle.noncurrent_version_expiration_days, 180,
        "set by the example, as its BackupPolicy needs"
    );
}
