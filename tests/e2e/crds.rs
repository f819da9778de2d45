//! The CRDs: generated, committed, and served by a real API server.
use crate::common::repo_root;

#[test]
fn committed_chart_crds_match_lakeops_crds() {
    let path = repo_root().join("charts/lakeops/crds/lakeops.dev.yaml");
    let committed = std::fs::read_to_string(&path).expect("chart CRDs are committed");
    // Compared as data: the key order of generated schemas depends on which serde_json
    // features the build unifies, and is no difference to the API server.
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.split("\n---\n")
            .map(|doc| doc.trim_start_matches("---\n"))
            .filter(|doc| !doc.trim().is_empty())
            .map(|doc| serde_saphyr::from_str(doc).expect("valid YAML"))
            .collect()
    };
    assert!(
        parse(&committed) == parse(&lakeops_crds::crds_yaml()),
        "{} is stale: regenerate it with `make crds` (cargo run -p lakeops -- crds)",
        path.display()
    );
}

#[tokio::test]
async fn crds_are_served_with_short_names_category_and_explain() {
    let env = lakeops_testenv::shared().await;
    let out = env.kubectl().args(["api-resources", "--api-group=lakeops.dev", "-o", "wide"]).output().expect("kubectl");
    let text = String::from_utf8_lossy(&out.stdout);
    for (name, short) in
        [("datalakes", "dl"), ("etlfunctions", "etl"), ("backuppolicies", "bkp"), ("etlpipelines", "etlp")]
    {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} not served:\n{text}"));
        assert!(line.split_whitespace().any(|w| w == short), "{name} lacks short name {short}: {line}");
        assert!(line.contains("lakeops"), "{name} lacks the lakeops category: {line}");
    }
    // The API server publishes a new CRD's OpenAPI a few seconds after it is established.
    let explained = crate::common::eventually(std::time::Duration::from_secs(30), "kubectl explain", || async {
        let out = env.kubectl().args(["explain", "datalake.spec.zones"]).output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        Ok(text.contains("Storage zones").then_some(text))
    })
    .await;
    assert!(explained.is_ok(), "kubectl explain shows the field description: {explained:?}");
}

#[tokio::test]
async fn lakeops_crds_without_cel_applies_server_side_to_a_1_20_api_server() {
    let env = lakeops_testenv::shared().await;
    let file = env.dir.join("crds-without-cel.yaml");
    std::fs::write(&file, lakeops_crds::crds_yaml_without_cel()).expect("written");
    let out = env
        .kubectl()
        .args(["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f"])
        .arg(&file)
        .output()
        .expect("kubectl");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("serverside-applied").count(), 5, "{text}");
}

/// Every `enum` list in a schema, by its path.
fn enums(path: &str, schema: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
    match schema {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                if key == "enum" {
                    out.push((path.to_string(), value.clone()));
                } else {
                    enums(&format!("{path}.{key}"), value, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                enums(&format!("{path}[{i}]"), item, out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn crds_installed_from_the_chart_file_by_kubectl_serve_every_enum_value_as_generated() {
    // The shared environment installed charts/lakeops/crds/ with kubectl (YAML 1.1): a bare
    // `N` would be served as `false` and examples/datalake.yaml refused.
    let env = lakeops_testenv::shared().await;
    let api: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        kube::Api::all(env.kube_client().await.expect("client"));
    let mut checked = 0;
    for generated in lakeops_crds::crds() {
        let name = generated.metadata.name.clone().expect("named");
        let served = api.get(&name).await.expect("CRD served");
        let (mut want, mut got) = (Vec::new(), Vec::new());
        enums("", &serde_json::to_value(&generated.spec.versions[0].schema).expect("json"), &mut want);
        enums("", &serde_json::to_value(&served.spec.versions[0].schema).expect("json"), &mut got);
        assert_eq!(got, want, "{name}: enums served differ from the generated ones");
        checked += want.len();
    }
    assert!(checked >= 10, "only {checked} enums found");
}
