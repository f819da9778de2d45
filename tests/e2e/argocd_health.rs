//! The Argo CD health check in `examples/gitops/argocd/` run as Argo CD runs it (Lua 5.1, the
//! live object as the global `obj`, a returned `hs`) against objects that the real controller
//! drove to each state on a real API server and moto, fetched as the JSON Argo CD sees.
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use lakeops_crds::names::{condition, reason};
use lakeops_crds::{BackupPolicy, DataLake, EtlFunction};
use serde_json::{Value, json};

use crate::common::{RunningController, api, eventually, repo_root};

const TIMEOUT: Duration = Duration::from_secs(90);

fn argocd_dir() -> PathBuf {
    repo_root().join("examples/gitops/argocd")
}

/// The interpreter: Debian's `lua5.1` (tests/env/install.sh installs it), or `LAKEOPS_LUA`.
fn lua() -> String {
    std::env::var("LAKEOPS_LUA").unwrap_or_else(|_| "lua5.1".into())
}

/// A Lua string literal: quotes, backslashes and control bytes as decimal escapes, which
/// Lua 5.1 reads; other bytes (UTF-8 included) stand for themselves.
fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\{:03}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON as a Lua table constructor, the way Argo CD hands objects to gopher-lua: objects and
/// arrays become tables (arrays 1-based), and null fields are absent (nil).
fn lua_value(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua_value).collect::<Vec<_>>().join(", ")),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs a health script on `object`; returns `(hs.status, hs.message)`.
fn run_health(script: &Path, object: &Value) -> (String, String) {
    let program = format!(
        "obj = {}\nlocal check = assert(loadfile({}))\nlocal hs = check()\nassert(type(hs) == \"table\", \"the script returned no table\")\nio.write(tostring(hs.status), \"\\0\", tostring(hs.message))\n",
        lua_value(object),
        lua_string(&script.display().to_string())
    );
    let mut child = Command::new(lua())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} (tests/env/install.sh installs lua5.1): {e}", lua()));
    child.stdin.take().expect("stdin").write_all(program.as_bytes()).expect("program written");
    let out = child.wait_with_output().expect("lua ran");
    assert!(out.status.success(), "lua failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    // A NUL apart: a message may hold newlines, never NUL (Kubernetes strings are UTF-8 text).
    let (status, message) = text.split_once('\0').expect("status and message");
    (status.to_string(), message.to_string())
}

fn health(object: &Value) -> (String, String) {
    run_health(&argocd_dir().join("health.lua"), object)
}

fn pair(status: &str, message: &str) -> (String, String) {
    (status.to_string(), message.to_string())
}

#[test]
fn the_argocd_config_map_embeds_health_lua_unchanged_for_every_kind() {
    let script = std::fs::read_to_string(argocd_dir().join("health.lua")).expect("health.lua");
    let text = std::fs::read_to_string(argocd_dir().join("argocd-cm-health.yaml")).expect("config map");
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_saphyr::from_str(&text).expect("a ConfigMap");
    let data = cm.data.expect("data");
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "resource.customizations.health.lakeops.dev_BackupPolicy",
            "resource.customizations.health.lakeops.dev_DataLake",
            "resource.customizations.health.lakeops.dev_EtlFunction",
            "resource.customizations.health.lakeops.dev_EtlPipeline",
            "resource.customizations.health.lakeops.dev_SecurityBaseline",
        ]
    );
    for (key, embedded) in &data {
        assert!(
            embedded == &script,
            "{key} differs from health.lua: regenerate argocd-cm-health.yaml from it (four-space indent)"
        );
    }
}

#[test]
fn the_lua_literal_keeps_strings_numbers_and_nesting_and_drops_nulls() {
    let object = json!({
        "metadata": { "generation": 3, "name": "a \"quoted\"\\name\n", "uid": null },
        "status": { "conditions": [{ "type": "Ready", "status": "True", "reason": "Reconciled", "message": "über ✓" }] }
    });
    let probe = std::env::temp_dir().join(format!("lakeops-lua-probe-{}.lua", std::process::id()));
    std::fs::write(
        &probe,
        "return { status = obj.metadata.name .. '|' .. tostring(obj.metadata.generation + 1) .. '|' .. tostring(obj.metadata.uid), \
         message = obj.status.conditions[1].message .. '|' .. #obj.status.conditions }\n",
    )
    .expect("probe written");
    let (status, message) = run_health(&probe, &object);
    let _ = std::fs::remove_file(&probe);
    assert_eq!((status.as_str(), message.as_str()), ("a \"quoted\"\\name\n|4|nil", "über ✓|1"));
}

/// The live object as Argo CD reads it: the whole stored JSON, not a typed round trip.
async fn live(objects: &Api<DynamicObject>, name: &str) -> Value {
    serde_json::to_value(objects.get(name).await.expect("object read")).expect("json")
}

fn dynamic<K: Resource<DynamicType = ()>>(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client, ns, &ApiResource::erase::<K>(&()))
}

/// Waits until the controller has written `why` as the Ready reason for the current
/// generation, and returns the object.
async fn wait_reason(objects: &Api<DynamicObject>, name: &str, why: &str) -> Value {
    let result = eventually(TIMEOUT, why, || async {
        let o = serde_json::to_value(objects.get(name).await?)?;
        let current = o["status"]["observedGeneration"] == o["metadata"]["generation"];
        let ready = o["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == condition::READY))
            .cloned();
        Ok(ready.filter(|c| current && c["reason"] == why).map(|_| o))
    })
    .await;
    match result {
        Ok(o) => o,
        Err(e) => panic!("{name} never showed {why}: {e}; last: {}", live(objects, name).await["status"]),
    }
}

#[tokio::test]
async fn argocd_health_follows_the_conditions_the_controller_writes() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("argocd-health").await.expect("namespace");
    let client = env.kube_client().await.expect("client");
    let (lakes, fns, policies) = (
        dynamic::<DataLake>(client.clone(), &ns),
        dynamic::<EtlFunction>(client.clone(), &ns),
        dynamic::<BackupPolicy>(client.clone(), &ns),
    );
    let lake = |name: &str, spec: Value| -> DataLake {
        serde_json::from_value(json!({
            "apiVersion": "lakeops.dev/v1alpha1", "kind": "DataLake", "metadata": { "name": name },
            "spec": spec
        }))
        .expect("lake fixture")
    };
    let typed_lakes = api::<DataLake>(env, &ns).await.expect("api");
    let pp = PostParams::default();
    typed_lakes
        .create(
            &pp,
            &lake("sales", json!({ "region": "eu-west-1", "zones": [{ "name": "raw" }], "audit": { "trail": false } })),
        )
        .await
        .expect("sales");
    // `logs` passes the schema but collides with the log bucket: the controller stalls on it.
    typed_lakes
        .create(
            &pp,
            &lake("broken", json!({ "region": "eu-west-1", "zones": [{ "name": "raw" }, { "name": "logs" }], "audit": { "trail": false } })),
        )
        .await
        .expect("broken");
    typed_lakes
        .create(
            &pp,
            &lake("unlocked", json!({ "region": "eu-west-1", "zones": [{ "name": "raw" }], "objectLock": false, "audit": { "trail": false } })),
        )
        .await
        .expect("unlocked");
    let etl: EtlFunction = serde_json::from_value(json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "EtlFunction", "metadata": { "name": "orders" },
        "spec": {
            "dataLakeRef": { "name": "absent" },
            "source": { "zone": "raw", "prefix": "in/" },
            "destination": { "zone": "curated", "prefix": "out/" },
            "code": { "s3Bucket": "artifacts-bucket", "s3Key": "etl.zip" },
            "runtime": "python3.12", "handler": "app.handler"
        }
    }))
    .expect("function fixture");
    api::<EtlFunction>(env, &ns).await.expect("api").create(&pp, &etl).await.expect("orders");
    let policy: BackupPolicy = serde_json::from_value(json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "BackupPolicy", "metadata": { "name": "unlocked-backup" },
        "spec": { "dataLakeRef": { "name": "unlocked" }, "retention": { "mode": "GOVERNANCE", "days": 7 } }
    }))
    .expect("policy fixture");
    api::<BackupPolicy>(env, &ns).await.expect("api").create(&pp, &policy).await.expect("policy");

    // Stored, no controller yet: no status at all.
    assert_eq!(
        health(&live(&lakes, "sales").await),
        pair("Progressing", "Waiting for the lakeops controller to report status")
    );

    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");
    let sales = wait_reason(&lakes, "sales", reason::RECONCILED).await;
    assert_eq!(health(&sales), pair("Healthy", "Reconciled: every AWS resource matches the spec"));

    let broken = wait_reason(&lakes, "broken", reason::INVALID_SPEC).await;
    assert_eq!(
        health(&broken),
        pair(
            "Degraded",
            "InvalidSpec: spec.zones[1].name: \"logs\" is reserved: it would collide with the log or replica buckets"
        )
    );

    let orders = wait_reason(&fns, "orders", reason::DATA_LAKE_NOT_READY).await;
    assert_eq!(
        health(&orders),
        pair("Progressing", "DataLakeNotReady: DataLake \"absent\" does not exist in this namespace")
    );

    let backup = wait_reason(&policies, "unlocked-backup", reason::OBJECT_LOCK_DISABLED).await;
    assert_eq!(
        health(&backup),
        pair(
            "Degraded",
            "ObjectLockDisabled: spec.retention: DataLake \"unlocked\" has objectLock: false; S3 enables Object Lock \
             only when a bucket is created, so retention needs a lake created with objectLock: true"
        )
    );

    // New specs the controller has not seen yet: the old Ready and the old Stalled say
    // nothing about them, so both are Progressing until observed.
    ctrl.stop().await.expect("stopped");
    let patch = |spec: Value| Patch::Merge(json!({ "spec": spec }));
    let params = PatchParams::default();
    lakes.patch("sales", &params, &patch(json!({ "tags": { "team": "gitops" } }))).await.expect("sales patched");
    lakes
        .patch("broken", &params, &patch(json!({ "zones": [{ "name": "raw" }, { "name": "curated" }] })))
        .await
        .expect("broken fixed");
    for name in ["sales", "broken"] {
        let o = live(&lakes, name).await;
        assert_eq!(o["metadata"]["generation"], 2, "{name}");
        assert_eq!(o["status"]["observedGeneration"], 1, "{name}: still the old status");
        assert_eq!(
            health(&o),
            pair("Progressing", "Waiting for the lakeops controller to observe generation 2"),
            "{name}"
        );
    }

    // Observed again: healthy at the new generation, the fixed lake included.
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");
    for name in ["sales", "broken"] {
        let o = wait_reason(&lakes, name, reason::RECONCILED).await;
        assert_eq!(health(&o), pair("Healthy", "Reconciled: every AWS resource matches the spec"), "{name}");
    }
    ctrl.stop().await.expect("stopped");
}
