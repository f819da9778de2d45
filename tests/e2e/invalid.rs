//! The invalid-manifest corpus in `tests/fixtures/invalid/`. Each file says in its header
//! which object is wrong, which field must be named and what the message says, and whether
//! the API server's schema can refuse it (`schema`), only lakeops' own rules (`validate`),
//! or only server-side apply (`pruned`: an unknown field, which a plain create or update
//! drops without a word; `lakeops validate` reports it whatever the delivery).
use std::path::{Path, PathBuf};
use std::time::Duration;

use lakeops_crds::names::condition;

use crate::common::{RunningController, eventually, kubectl_apply, repo_root};

#[derive(Debug)]
struct Case {
    file: PathBuf,
    rejected_by: String,
    kind: String,
    name: String,
    field: String,
    message: String,
}

fn corpus() -> Vec<Case> {
    let dir = repo_root().join("tests/fixtures/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files.into_iter().map(|f| parse_header(&f)).collect()
}

fn parse_header(file: &Path) -> Case {
    let text = std::fs::read_to_string(file).expect("readable");
    let header = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
            .unwrap_or_else(|| panic!("{} lacks a `# {key}:` header", file.display()))
            .to_string()
    };
    let object = header("object");
    let (kind, name) = object.split_once('/').expect("object is Kind/name");
    Case {
        file: file.to_path_buf(),
        rejected_by: header("rejected-by"),
        kind: kind.into(),
        name: name.into(),
        field: header("field"),
        message: header("message"),
    }
}

#[test]
fn the_corpus_has_at_least_twenty_cases_of_each_guard() {
    let cases = corpus();
    let schema = cases.iter().filter(|c| c.rejected_by == "schema").count();
    let validate = cases.iter().filter(|c| c.rejected_by == "validate").count();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    assert!(schema >= 15 && validate >= 10, "schema {schema}, validate {validate}");
}

#[test]
fn lakeops_validate_refuses_every_invalid_manifest_naming_the_field() {
    for case in corpus() {
        let loaded = lakeops::manifests::load(std::slice::from_ref(&case.file)).expect("readable");
        let mut problems = loaded.problems;
        problems.extend(lakeops::manifests::check(&loaded.documents));
        let hit = problems.iter().find(|p| {
            p.severity == "error"
                && p.kind == case.kind
                && p.name == case.name
                && p.path.starts_with(&case.field)
                && p.message.contains(&case.message)
        });
        assert!(
            hit.is_some(),
            "{}: expected an error on {}/{} {}: …{}…, got:\n{}",
            case.file.display(),
            case.kind,
            case.name,
            case.field,
            case.message,
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        );
    }
}

#[tokio::test]
async fn the_api_server_refuses_what_the_schema_can_express_naming_the_field() {
    let env = lakeops_testenv::shared().await;
    let mut failures = Vec::new();
    for case in corpus().into_iter().filter(|c| c.rejected_by == "schema") {
        let ns = env.create_namespace("schema").await.expect("namespace");
        let (ok, out) = kubectl_apply(env, &ns, &case.file).expect("kubectl");
        // Validation errors read `<Kind> "<name>" is invalid: spec.x: ...`; structural ones
        // found while building the apply patch read `... .spec.x: ...` without the name.
        let named = out.contains(&case.name) || out.contains("failed to create typed patch object");
        // API servers before 1.21 drop list indices from paths (`spec.zones.name`).
        let unindexed = strip_indices(&case.field);
        let named = named
            && out.lines().any(|l| {
                (l.contains(&case.field) || l.contains(&unindexed)) && (l.contains("rror") || l.contains("invalid"))
            });
        if ok || !named {
            failures.push(format!(
                "{}: applied={ok}, expected a refusal naming {}:\n{out}",
                case.file.display(),
                case.field
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn the_controller_stalls_what_only_lakeops_rules_catch_naming_the_field() {
    let env = lakeops_testenv::shared().await;
    let client = env.kube_client().await.expect("client");
    let mut errors = Vec::new();
    for case in corpus().into_iter().filter(|c| c.rejected_by == "validate") {
        // One namespace and one controller per case: cross-object rules must see only the
        // case's own objects.
        let ns = env.create_namespace("rule").await.expect("namespace");
        let (ok, out) = kubectl_apply(env, &ns, &case.file).expect("kubectl");
        assert!(ok, "{}: the API server must accept it (the rule is beyond OpenAPI):\n{out}", case.file.display());
        let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");
        let result = eventually(Duration::from_secs(30), "a Ready=False condition naming the field", || {
            let (client, ns, case) = (client.clone(), ns.clone(), &case);
            async move {
                let ready = ready_condition(&client, &ns, &case.kind, &case.name).await?;
                Ok(ready.filter(|(status, message)| {
                    status == "False" && message.contains(&case.field) && message.contains(&case.message)
                }))
            }
        })
        .await;
        if let Err(e) = result {
            let seen = ready_condition(&client, &ns, &case.kind, &case.name).await.ok().flatten();
            errors.push(format!("{}: {e}; Ready condition seen: {seen:?}", case.file.display()));
        }
        ctrl.stop().await.expect("controller stops");
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[tokio::test]
async fn an_unknown_field_is_dropped_by_a_plain_create_and_refused_only_by_server_side_apply() {
    let env = lakeops_testenv::shared().await;
    let cases: Vec<Case> = corpus().into_iter().filter(|c| c.rejected_by == "pruned").collect();
    assert!(cases.len() >= 2, "the corpus has cases of pruned fields");
    for case in cases {
        // Server-side apply (Argo CD's and Flux's choice) refuses the field, naming it.
        let ns = env.create_namespace("pruned").await.expect("namespace");
        let (ok, out) = kubectl_apply(env, &ns, &case.file).expect("kubectl");
        assert!(!ok && out.contains(&case.field), "{}: server-side apply must refuse it:\n{out}", case.file.display());
        // A plain create or update (client-side `kubectl apply`, most API clients) succeeds
        // and the field is gone: nothing in the cluster says so, only `lakeops validate`.
        let ns = env.create_namespace("pruned").await.expect("namespace");
        let out = env
            .kubectl()
            .args(["create", "--validate=false", "-n", &ns, "-f"])
            .arg(&case.file)
            .output()
            .expect("kubectl create");
        assert!(out.status.success(), "{}: {}", case.file.display(), String::from_utf8_lossy(&out.stderr));
        let resource = format!("{}/{}", case.kind.to_ascii_lowercase(), case.name);
        let stored = env.kubectl().args(["get", &resource, "-n", &ns, "-o", "json"]).output().expect("kubectl get");
        let stored: serde_json::Value = serde_json::from_slice(&stored.stdout).expect("JSON");
        let field = case.field.rsplit('.').next().unwrap_or_default();
        assert!(stored["spec"].is_object(), "{}: stored {stored}", case.file.display());
        assert!(stored["spec"].get(field).is_none(), "{}: {field} was kept: {}", case.file.display(), stored["spec"]);
    }
}

fn strip_indices(path: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for ch in path.chars() {
        match ch {
            '[' => in_index = true,
            ']' => in_index = false,
            c if !in_index => out.push(c),
            _ => {}
        }
    }
    out
}

async fn ready_condition(
    client: &kube::Client,
    ns: &str,
    kind: &str,
    name: &str,
) -> anyhow::Result<Option<(String, String)>> {
    use lakeops_crds::common::find_condition;
    let pick = |c: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition]| {
        find_condition(c, condition::READY).map(|c| (c.status.clone(), c.message.clone()))
    };
    Ok(match kind {
        "DataLake" => {
            let o = kube::Api::<lakeops_crds::DataLake>::namespaced(client.clone(), ns).get(name).await?;
            o.status.as_ref().and_then(|s| pick(&s.conditions))
        }
        "EtlFunction" => {
            let o = kube::Api::<lakeops_crds::EtlFunction>::namespaced(client.clone(), ns).get(name).await?;
            o.status.as_ref().and_then(|s| pick(&s.conditions))
        }
        "BackupPolicy" => {
            let o = kube::Api::<lakeops_crds::BackupPolicy>::namespaced(client.clone(), ns).get(name).await?;
            o.status.as_ref().and_then(|s| pick(&s.conditions))
        }
        other => anyhow::bail!("unknown kind {other}"),
    })
}
