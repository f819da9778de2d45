//! The Helm chart: it lints and renders with default and custom values, its schema rejects bad
//! values, its RBAC has no wildcards and no secrets, its pod is hardened, and, installed into
//! the real API server, its ServiceAccount can run the controller to convergence but cannot
//! read secrets.
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use kube::api::{ListParams, PostParams};
use lakeops_crds::DataLake;
use lakeops_crds::common::find_condition;
use lakeops_crds::names::condition;
use serde_json::Value;

use crate::common::{RunningController, eventually, repo_root};

const TIMEOUT: Duration = Duration::from_secs(60);

fn chart_dir() -> PathBuf {
    repo_root().join("charts/lakeops")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `helm template <release> charts/lakeops <args>`; returns the output.
fn helm_template(env: &lakeops_testenv::TestEnv, release: &str, args: &[&str]) -> Output {
    env.helm().args(["template", release]).arg(chart_dir()).args(args).output().expect("running helm template")
}

/// Every non-empty document of a multi-document YAML stream.
fn documents(yaml: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("rendered YAML parses");
    docs.into_iter().filter(|v| !v.is_null()).collect()
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
}

/// The checks every rendering must pass; returns the documents for more specific checks.
fn is_leader_election(doc: &Value) -> bool {
    doc["metadata"]["name"].as_str().is_some_and(|n| n.ends_with("-leader-election"))
}

fn check_rendering(yaml: &str) -> Vec<Value> {
    let docs = documents(yaml);
    let mut rules_seen = 0;
    for doc in docs.iter().filter(|d| kind(d) == "Role" && is_leader_election(d)) {
        // Leader election: create any Lease, then read and renew only the one named.
        let rules = doc["rules"].as_array().expect("rules");
        assert_eq!(rules.len(), 2, "{doc:?}");
        assert_eq!(strings(&rules[0]["verbs"]), ["create"]);
        assert_eq!(strings(&rules[1]["verbs"]), ["get", "patch"]);
        assert_eq!(strings(&rules[1]["resourceNames"]), ["lakeops-controller"]);
        for rule in rules {
            assert_eq!(strings(&rule["resources"]), ["leases"]);
        }
    }
    for doc in docs.iter().filter(|d| matches!(kind(d), "ClusterRole" | "Role") && !is_leader_election(d)) {
        for rule in doc["rules"].as_array().expect("rules") {
            rules_seen += 1;
            for field in ["verbs", "resources", "apiGroups"] {
                let values = strings(&rule[field]);
                assert!(!values.iter().any(|v| v.contains('*')), "wildcard in {field} of {rule:?}");
            }
            assert!(rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none(), "{rule:?}");
            let resources = strings(&rule["resources"]);
            assert!(!resources.iter().any(|r| r.starts_with("secrets")), "a rule mentions secrets: {rule:?}");
            assert!(
                !resources.iter().any(|r| r.starts_with("leases")),
                "leases belong to the leader-election Role only: {rule:?}"
            );
        }
    }
    assert_eq!(rules_seen, 8, "expected the eight controller rules exactly once:\n{yaml}");

    let deployments: Vec<&Value> = docs.iter().filter(|d| kind(d) == "Deployment").collect();
    assert_eq!(deployments.len(), 1, "{yaml}");
    let pod = &deployments[0]["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], Value::Bool(true));
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], Value::Bool(true), "{sc:?}");
    assert_eq!(sc["runAsUser"].as_u64(), Some(65532), "{sc:?}");
    assert_eq!(sc["readOnlyRootFilesystem"], Value::Bool(true), "{sc:?}");
    assert_eq!(sc["allowPrivilegeEscalation"], Value::Bool(false), "{sc:?}");
    assert_eq!(strings(&sc["capabilities"]["drop"]), vec!["ALL".to_string()], "{sc:?}");
    assert_eq!(sc["seccompProfile"]["type"].as_str(), Some("RuntimeDefault"), "{sc:?}");
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(!c["resources"][kind][resource].is_null(), "resources.{kind}.{resource} missing: {c:?}");
        }
    }
    let port = c["ports"][0]["containerPort"].as_u64().expect("metrics port");
    let port_name = c["ports"][0]["name"].as_str().expect("port name");
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}: {get:?}");
        assert!(get["port"].as_str() == Some(port_name) || get["port"].as_u64() == Some(port), "{probe}: {get:?}");
    }
    let env = c["env"].as_array().expect("env");
    let pod_name = env.iter().find(|e| e["name"].as_str() == Some("POD_NAME")).expect("POD_NAME");
    assert_eq!(pod_name["valueFrom"]["fieldRef"]["fieldPath"].as_str(), Some("metadata.name"));
    let args = strings(&c["args"]);
    assert_eq!(args.first().map(String::as_str), Some("controller"), "{args:?}");
    assert!(args.contains(&format!("--metrics-addr=0.0.0.0:{port}")), "{args:?}");
    docs
}

fn args_of(docs: &[Value]) -> Vec<String> {
    let d = docs.iter().find(|d| kind(d) == "Deployment").expect("deployment");
    strings(&d["spec"]["template"]["spec"]["containers"][0]["args"])
}

#[tokio::test]
async fn helm_lint_and_template_render_default_and_custom_values() {
    let env = lakeops_testenv::shared().await;
    let lint = env.helm().arg("lint").arg(chart_dir()).output().expect("running helm lint");
    assert!(lint.status.success(), "helm lint failed:\n{}", text(&lint));

    // Defaults: cluster-wide RBAC, one replica, no ServiceMonitor, no PDB.
    let out = helm_template(env, "lakeops-default", &["--namespace", "lakeops-system"]);
    assert!(out.status.success(), "helm template (defaults) failed:\n{}", text(&out));
    let docs = check_rendering(&String::from_utf8_lossy(&out.stdout));
    let kinds: Vec<&str> = docs.iter().filter(|d| !is_leader_election(d)).map(kind).collect();
    for expected in ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "NetworkPolicy"] {
        assert!(kinds.contains(&expected), "{expected} missing from {kinds:?}");
    }
    for absent in ["Role", "RoleBinding", "ServiceMonitor", "PodDisruptionBudget"] {
        assert!(!kinds.contains(&absent), "{absent} rendered by default: {kinds:?}");
    }
    let args = args_of(&docs);
    assert!(!args.iter().any(|a| a.starts_with("--watch-namespace")), "{args:?}");
    assert!(args.contains(&"--leader-election".to_string()), "leader election is on by default: {args:?}");
    assert!(args.contains(&"--log-format=text".to_string()) && args.contains(&"--resync-interval=10m".to_string()));
    let sa = docs.iter().find(|d| kind(d) == "ServiceAccount").expect("sa");
    assert!(sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].is_null());

    // Custom values.
    let role = "arn:aws:iam::123456789012:role/lakeops-controller";
    let out = helm_template(
        env,
        "lakeops-custom",
        &[
            "--namespace",
            "lakeops-system",
            "--set",
            "watchNamespaces={team-a}",
            "--set",
            "replicaCount=2",
            "--set",
            "serviceMonitor.enabled=true",
            "--set",
            "controller.logFormat=json",
            "--set",
            "controller.resyncInterval=90s",
            "--set",
            "controller.concurrency=3",
            "--set",
            &format!("serviceAccount.roleArn={role}"),
        ],
    );
    assert!(out.status.success(), "helm template (custom) failed:\n{}", text(&out));
    let docs = check_rendering(&String::from_utf8_lossy(&out.stdout));
    let kinds: Vec<&str> = docs.iter().filter(|d| !is_leader_election(d)).map(kind).collect();
    for expected in ["Role", "RoleBinding", "ServiceMonitor", "PodDisruptionBudget"] {
        assert!(kinds.contains(&expected), "{expected} missing from {kinds:?}");
    }
    // The cluster-scoped SecurityBaseline keeps a ClusterRole, for itself only.
    for d in docs.iter().filter(|d| kind(d) == "ClusterRole") {
        for rule in d["rules"].as_array().expect("rules") {
            assert!(
                strings(&rule["resources"]).iter().all(|r| r.starts_with("securitybaselines")),
                "a ClusterRole with watchNamespaces grants more than SecurityBaseline: {rule:?}"
            );
        }
    }
    assert!(kinds.contains(&"ClusterRoleBinding"), "SecurityBaseline's ClusterRoleBinding missing: {kinds:?}");
    for d in docs.iter().filter(|d| matches!(kind(d), "Role" | "RoleBinding") && !is_leader_election(d)) {
        assert_eq!(d["metadata"]["namespace"].as_str(), Some("team-a"), "{d:?}");
    }
    let args = args_of(&docs);
    for arg in ["--watch-namespace=team-a", "--log-format=json", "--resync-interval=90s", "--concurrency=3"] {
        assert!(args.contains(&arg.to_string()), "{arg} missing from {args:?}");
    }
    let deployment = docs.iter().find(|d| kind(d) == "Deployment").expect("deployment");
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));
    let sa = docs.iter().find(|d| kind(d) == "ServiceAccount").expect("sa");
    assert_eq!(sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].as_str(), Some(role));

    // Bad values fail rendering with a message naming the value.
    let bad: [(&[&str], &[&str]); 5] = [
        (&["--set", "controller.logFormat=xml"], &["logFormat"]),
        (&["--set", "typoKey=1"], &["typoKey"]),
        (&["--set", "controller.resyncInterval=10 minutes"], &["resyncInterval"]),
        (&["--set", "controller.concurrency=0"], &["concurrency"]),
        (&["--set", "watchNamespaces={a,b}"], &["watchNamespaces", "only one namespace is supported"]),
    ];
    for (args, needles) in bad {
        let out = helm_template(env, "lakeops-bad", args);
        let message = text(&out);
        assert!(!out.status.success(), "helm template {args:?} should fail:\n{message}");
        for needle in needles {
            assert!(message.contains(needle), "helm template {args:?} failed without naming {needle}:\n{message}");
        }
    }
}

fn lake(name: &str) -> DataLake {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1",
        "kind": "DataLake",
        "metadata": { "name": name },
        "spec": { "region": "eu-west-1", "zones": [{ "name": "raw" }, { "name": "curated" }] }
    }))
    .expect("valid fixture")
}

#[tokio::test]
async fn the_chart_installs_and_its_service_account_can_run_the_controller_but_not_read_secrets() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("chart").await.expect("namespace");
    // Cluster-scoped objects are named after the release, so a unique release avoids collisions.
    let release = lakeops_testenv::unique_name("lakeops");
    let out = env
        .helm()
        .args(["install", &release])
        .arg(chart_dir())
        .args(["--namespace", &ns, "--skip-crds", "--set", "controller.awsRegion=eu-west-1", "--timeout", "60s"])
        .output()
        .expect("running helm install");
    assert!(out.status.success(), "helm install failed:\n{}", text(&out));

    // Every object was validated and stored by the real API server.
    let admin = env.kube_client().await.expect("admin client");
    let deployment = Api::<Deployment>::namespaced(admin.clone(), &ns).get(&release).await.expect("Deployment");
    let pod = deployment.spec.expect("spec").template.spec.expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some(release.as_str()));
    Api::<ServiceAccount>::namespaced(admin.clone(), &ns).get(&release).await.expect("ServiceAccount");
    let role = Api::<ClusterRole>::all(admin.clone()).get(&release).await.expect("ClusterRole");
    assert!(role.rules.iter().flatten().all(|r| !r.verbs.iter().any(|v| v == "*")));
    let binding = Api::<ClusterRoleBinding>::all(admin.clone()).get(&release).await.expect("ClusterRoleBinding");
    let subject = &binding.subjects.expect("subjects")[0];
    assert_eq!((subject.name.as_str(), subject.namespace.as_deref()), (release.as_str(), Some(ns.as_str())));

    // The chart's identity, under real RBAC.
    let token = env.service_account_token(&ns, &release).await.expect("token");
    let client = env.client_with_token(&token).await.expect("token client");
    let watched = env.create_namespace("chart-lakes").await.expect("namespace");
    Api::<DataLake>::namespaced(client.clone(), &watched)
        .list(&ListParams::default())
        .await
        .expect("the chart's ServiceAccount may list datalakes");
    Api::<lakeops_crds::SecurityBaseline>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("the chart's ServiceAccount may list the cluster-scoped securitybaselines");
    for secrets in [Api::<Secret>::namespaced(client.clone(), &watched), Api::<Secret>::all(client.clone())] {
        match secrets.list(&ListParams::default()).await {
            Err(kube::Error::Api(e)) if e.code == 403 => {}
            other => panic!("listing secrets should be forbidden (403), got {other:?}"),
        }
    }

    // The controller, running as the chart's ServiceAccount, converges a real DataLake:
    // finalizer, status patches and events all pass RBAC.
    let ctrl = RunningController::start_with_client(env, &watched, Duration::from_secs(600), client)
        .await
        .expect("controller");
    let lakes = Api::<DataLake>::namespaced(admin.clone(), &watched);
    lakes.create(&PostParams::default(), &lake("sales")).await.expect("created");
    let seen = eventually(TIMEOUT, "Ready=True under the chart's RBAC", || async {
        let l = lakes.get("sales").await?;
        let ready = l.status.as_ref().and_then(|s| find_condition(&s.conditions, condition::READY));
        Ok(ready.filter(|c| c.status == "True").map(|_| l.clone()))
    })
    .await
    .expect("ready");
    assert!(seen.metadata.finalizers.iter().flatten().any(|f| f == lakeops_crds::names::FINALIZER));
    let (status, _) = ctrl.get("/readyz").await.expect("readyz");
    assert_eq!(status, 200);
    ctrl.stop().await.expect("graceful stop");

    // Leader election under the same identity: the chart's Lease Role lets it create,
    // read and renew its Lease in the release namespace.
    let client = env.client_with_token(&token).await.expect("token client");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let election = lakeops::leader::LeaderElection {
        namespace: ns.clone(),
        lease_name: "lakeops-controller".into(),
        identity: "chart-service-account".into(),
        lease_seconds: 5,
        health_addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        aws_requests: Default::default(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
    let campaign = tokio::spawn(lakeops::leader::run_when_leader(
        client,
        election,
        async move {
            let _ = stop_rx.await;
        },
        move |stop| async move {
            let _ = held_tx.send(());
            stop.await;
            Ok(())
        },
    ));
    tokio::time::timeout(Duration::from_secs(30), held_rx)
        .await
        .expect("became the leader under the chart's RBAC")
        .expect("signalled");
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(admin.clone(), &ns)
        .get("lakeops-controller")
        .await
        .expect("lease created");
    assert_eq!(lease.spec.and_then(|s| s.holder_identity).as_deref(), Some("chart-service-account"));
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(30), campaign)
        .await
        .expect("released")
        .expect("joined")
        .expect("a clean release");
}

#[test]
fn checkov_passes_the_rendered_chart_with_only_documented_skips() {
    let bin = lakeops_testenv::TestEnv::bin_dir();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = std::process::Command::new(bin.join("checkov"))
        .env("PATH", path)
        .args(["-d", "charts/lakeops", "--config-file", "tests/fixtures/checkov.yaml", "--output", "json", "--quiet"])
        .current_dir(repo_root())
        .output()
        .expect("checkov runs (tests/env/install.sh installs it)");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("checkov JSON: {e}\n{}", String::from_utf8_lossy(&out.stderr)));
    // One report per framework, or a bare summary when nothing was found at all.
    let summary = if report.is_array() { report[0]["summary"].clone() } else { report["summary"].clone() };
    let passed = summary["passed"].as_u64().unwrap_or(0);
    let failed = summary["failed"].as_u64().unwrap_or(u64::MAX);
    // Without helm on PATH checkov's helm framework silently scans nothing.
    assert!(passed > 50, "checkov scanned too little (passed {passed}): {summary}");
    assert_eq!(failed, 0, "checkov failures: {}", String::from_utf8_lossy(&out.stdout));
}

/// One `FROM` stage of a Dockerfile: its base, its `AS` name, and its instructions as
/// `(INSTRUCTION, arguments)` with line continuations joined.
#[derive(Debug)]
struct Stage {
    base: String,
    name: Option<String>,
    instructions: Vec<(String, String)>,
}

impl Stage {
    fn last(&self, instruction: &str) -> Option<&str> {
        self.instructions.iter().rev().find(|(i, _)| i == instruction).map(|(_, a)| a.as_str())
    }
}

fn dockerfile_stages(text: &str) -> Vec<Stage> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    logical.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical {
        let (instruction, args) = line.trim().split_once(char::is_whitespace).unwrap_or((line.trim(), ""));
        let (instruction, args) = (instruction.to_ascii_uppercase(), args.trim().to_string());
        if instruction == "FROM" {
            let words: Vec<&str> = args.split_whitespace().filter(|w| !w.starts_with("--")).collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_string()),
                _ => None,
            };
            stages.push(Stage {
                base: words.first().map(|w| w.to_string()).unwrap_or_default(),
                name,
                instructions: vec![],
            });
        } else {
            stages.last_mut().expect("an instruction before the first FROM").instructions.push((instruction, args));
        }
    }
    stages
}

#[tokio::test]
async fn the_dockerfile_ships_only_the_binary_as_non_root_on_distroless_and_the_chart_runs_its_entrypoint() {
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("Dockerfile");
    let stages = dockerfile_stages(&dockerfile);
    assert!(stages.len() >= 2, "multi-stage: the toolchain stays out of the image: {stages:?}");
    let (build, last) = (&stages[0], &stages[stages.len() - 1]);

    // The final stage: distroless or scratch, nothing but the binary, a numeric non-root user.
    assert!(last.base.starts_with("gcr.io/distroless/") || last.base == "scratch", "final base {}", last.base);
    assert!(last.last("RUN").is_none(), "no shell steps in the final stage (distroless has no shell)");
    let user = last.last("USER").expect("the final stage sets USER");
    let uid: u64 = user.split(':').next().and_then(|u| u.parse().ok()).expect("a numeric UID (runAsNonRoot needs one)");
    assert_ne!(uid, 0, "USER {user} is root");
    let copies: Vec<&str> =
        last.instructions.iter().filter(|(i, _)| i == "COPY" || i == "ADD").map(|(_, a)| a.as_str()).collect();
    assert_eq!(copies.len(), 1, "only the binary is copied in: {copies:?}");
    let words: Vec<&str> = copies[0].split_whitespace().collect();
    let from = build.name.as_deref().expect("the build stage is named");
    assert_eq!(words.first().copied(), Some(format!("--from={from}").as_str()), "{copies:?}");
    let (source, target) = (words[words.len() - 2], words[words.len() - 1]);
    assert!(source.ends_with("/target/release/lakeops"), "{source}");
    let built = build.last("RUN").expect("the build stage builds");
    assert!(built.contains("--release") && built.contains("--locked") && built.contains("--bin lakeops"), "{built}");

    // Exec form, so the binary is PID 1 and gets the kubelet's SIGTERM (and releases the lease).
    let entrypoint: Vec<String> =
        serde_json::from_str(last.last("ENTRYPOINT").expect("ENTRYPOINT")).expect("ENTRYPOINT in exec (JSON) form");
    assert_eq!(entrypoint, [target.to_string()], "the entrypoint is the copied binary");

    // The chart sets no `command` (so this ENTRYPOINT runs), the Dockerfile's UID, and
    // arguments the binary accepts: clap rejects an unknown flag before acting on --help.
    let env = lakeops_testenv::shared().await;
    let out = helm_template(env, "lakeops-image", &["--namespace", "lakeops-system"]);
    assert!(out.status.success(), "helm template failed:\n{}", text(&out));
    let docs = documents(&String::from_utf8_lossy(&out.stdout));
    let deployment = docs.iter().find(|d| kind(d) == "Deployment").expect("deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert!(container.get("command").is_none(), "the chart overrides the ENTRYPOINT: {container:?}");
    let run_as = container["securityContext"]["runAsUser"].as_u64().or(pod["securityContext"]["runAsUser"].as_u64());
    assert_eq!(run_as, Some(uid), "the chart and the image agree on the UID");
    let args = args_of(&docs);
    let accepted = std::process::Command::new(env!("CARGO_BIN_EXE_lakeops-under-test"))
        .args(&args)
        .arg("--help")
        .output()
        .expect("running lakeops");
    assert!(accepted.status.success(), "lakeops rejects the chart's arguments {args:?}:\n{}", text(&accepted));
}
