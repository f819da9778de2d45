//! The controller against a real API server: first sight, invalid specs, dependencies,
//! no needless writes, its HTTP endpoints and graceful shutdown.
use std::time::Duration;

use kube::api::{Patch, PatchParams, PostParams};
use lakeops_crds::common::find_condition;
use lakeops_crds::names::{annotation, condition, reason};
use lakeops_crds::{DataLake, EtlFunction};

use crate::common::{RunningController, api, eventually, metric};

const TIMEOUT: Duration = Duration::from_secs(30);

fn lake(name: &str, zones: &[&str]) -> DataLake {
    let zones: Vec<_> = zones.iter().map(|z| serde_json::json!({ "name": z })).collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1",
        "kind": "DataLake",
        "metadata": { "name": name },
        "spec": { "region": "eu-west-1", "zones": zones }
    }))
    .expect("valid fixture")
}

fn ready(lake: &DataLake) -> Option<(String, String, String)> {
    let s = lake.status.as_ref()?;
    find_condition(&s.conditions, condition::READY).map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn a_valid_lake_records_observed_generation_and_its_prefix_and_becomes_ready() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("first").await.expect("namespace");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    lakes.create(&PostParams::default(), &lake("sales", &["raw", "curated"])).await.expect("created");
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");

    let seen = eventually(TIMEOUT, "Ready=True", || async {
        let l = lakes.get("sales").await?;
        Ok(ready(&l).filter(|r| r.0 == "True").map(|_| l))
    })
    .await
    .expect("ready");
    let status = seen.status.as_ref().expect("status");
    assert_eq!(status.observed_generation, seen.metadata.generation);
    assert_eq!(status.bucket_prefix.as_deref(), Some(format!("{ns}-sales").as_str()));
    assert_eq!(status.object_lock, Some(true));
    assert_eq!(ready(&seen).map(|r| r.1), Some(reason::RECONCILED.to_string()));
    assert!(find_condition(&status.conditions, condition::RECONCILING).is_none());
    assert!(find_condition(&status.conditions, condition::STALLED).is_none());
    assert!(seen.metadata.finalizers.iter().flatten().any(|f| f == lakeops_crds::names::FINALIZER));
    ctrl.stop().await.expect("graceful stop");
}

#[tokio::test]
async fn invalid_spec_is_stalled_with_the_field_named_and_a_warning_event() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("invalid").await.expect("namespace");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    // `logs` passes the schema but collides with the log bucket: only lakeops' rules catch it.
    lakes.create(&PostParams::default(), &lake("sales", &["raw", "logs"])).await.expect("created");
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");

    let (status, why, message) = eventually(TIMEOUT, "Ready=False InvalidSpec", || async {
        Ok(ready(&lakes.get("sales").await?).filter(|r| r.1 == reason::INVALID_SPEC))
    })
    .await
    .expect("stalled");
    assert_eq!((status.as_str(), why.as_str()), ("False", reason::INVALID_SPEC));
    assert!(message.starts_with("spec.zones[1].name: \"logs\" is reserved"), "{message}");
    let l = lakes.get("sales").await.expect("lake");
    let stalled = find_condition(&l.status.as_ref().expect("status").conditions, condition::STALLED).expect("Stalled");
    assert_eq!(stalled.status, "True");

    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(env.kube_client().await.expect("client"), &ns);
    let event = eventually(TIMEOUT, "a Warning event", || async {
        let list = events.list(&Default::default()).await?;
        Ok(list.items.into_iter().find(|e| e.reason.as_deref() == Some(reason::INVALID_SPEC)))
    })
    .await
    .expect("event");
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(event.note.unwrap_or_default().contains("spec.zones[1].name"));
    ctrl.stop().await.expect("graceful stop");
}

#[tokio::test]
async fn an_etl_function_waits_for_its_lake_and_is_requeued_when_the_lake_appears() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("etl-wait").await.expect("namespace");
    let functions = api::<EtlFunction>(env, &ns).await.expect("api");
    let etl: EtlFunction = serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "EtlFunction",
        "metadata": { "name": "orders" },
        "spec": {
            "dataLakeRef": { "name": "sales" },
            "source": { "zone": "raw", "prefix": "in/" },
            "destination": { "zone": "curated", "prefix": "out/" },
            "code": { "s3Bucket": "artifacts-bucket", "s3Key": "etl.zip" },
            "runtime": "python3.12", "handler": "app.handler"
        }
    }))
    .expect("fixture");
    functions.create(&PostParams::default(), &etl).await.expect("created");
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");
    let etl_ready = |f: EtlFunction| {
        f.status.and_then(|s| {
            find_condition(&s.conditions, condition::READY).map(|c| (c.reason.clone(), c.message.clone()))
        })
    };
    let (why, message) =
        eventually(TIMEOUT, "DataLakeNotReady", || async { Ok(etl_ready(functions.get("orders").await?)) })
            .await
            .expect("condition");
    assert_eq!(why, reason::DATA_LAKE_NOT_READY);
    assert!(message.contains("does not exist"), "{message}");

    // A lake with the wrong zones appears: the function is re-queued by the watch (the
    // resync is 10 minutes away) and now names the missing zone.
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    lakes.create(&PostParams::default(), &lake("sales", &["raw"])).await.expect("lake");
    let (why, message) = eventually(TIMEOUT, "InvalidSpec naming the zone", || async {
        Ok(etl_ready(functions.get("orders").await?).filter(|(r, _)| r == reason::INVALID_SPEC))
    })
    .await
    .expect("requeued by the lake watch");
    assert_eq!(why, reason::INVALID_SPEC);
    assert!(message.contains("spec.destination.zone: zone \"curated\" does not exist"), "{message}");
    ctrl.stop().await.expect("graceful stop");
}

#[tokio::test]
async fn nothing_changed_means_no_status_write_and_endpoints_report_it() {
    let env = lakeops_testenv::shared().await;
    let ns = env.create_namespace("steady").await.expect("namespace");
    let lakes = api::<DataLake>(env, &ns).await.expect("api");
    lakes.create(&PostParams::default(), &lake("sales", &["raw"])).await.expect("created");
    let ctrl = RunningController::start(env, &ns, Duration::from_secs(600)).await.expect("controller");

    // Settled means converged: Ready, and nothing left for AWS or for status.
    let settled = eventually(TIMEOUT, "Ready=True", || async {
        let l = lakes.get("sales").await?;
        Ok(ready(&l).filter(|r| r.0 == "True").map(|_| l))
    })
    .await
    .expect("ready");
    let (code, _) = ctrl.get("/healthz").await.expect("healthz");
    assert_eq!(code, 200);
    let (code, _) =
        eventually(TIMEOUT, "readyz", || async { Ok(Some(ctrl.get("/readyz").await?).filter(|r| r.0 == 200)) })
            .await
            .expect("ready once caches synced");
    assert_eq!(code, 200);

    // A label change triggers a reconcile without changing anything the status reflects.
    let skipped_series = "lakeops_status_writes_total{kind=\"DataLake\",written=\"false\"}";
    let before = metric(&ctrl.get("/metrics").await.expect("metrics").1, skipped_series);
    let patch = serde_json::json!({ "metadata": { "labels": { "touched": "yes" } } });
    let labelled = lakes.patch("sales", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("labelled");
    eventually(TIMEOUT, "a skipped status write", || async {
        let now = metric(&ctrl.get("/metrics").await?.1, skipped_series);
        Ok((now > before).then_some(()))
    })
    .await
    .expect("the reconcile ran and skipped its write");
    let after = lakes.get("sales").await.expect("lake");
    assert_eq!(after.metadata.resource_version, labelled.metadata.resource_version, "no write after the label patch");
    assert_eq!(after.status, settled.status);

    // The on-demand annotation is echoed once handled.
    let patch = serde_json::json!({ "metadata": { "annotations": { (annotation::RECONCILE_REQUESTED_AT): "2026-11-23T12:00:00Z" } } });
    lakes.patch("sales", &PatchParams::default(), &Patch::Merge(&patch)).await.expect("annotated");
    eventually(TIMEOUT, "the annotation echoed in status", || async {
        let l = lakes.get("sales").await?;
        Ok(l.status.and_then(|s| s.last_handled_reconcile_at).filter(|v| v == "2026-11-23T12:00:00Z"))
    })
    .await
    .expect("echoed");

    let (_, text) = ctrl.get("/metrics").await.expect("metrics");
    assert!(metric(&text, "lakeops_reconciles_total{kind=\"DataLake\"}") >= 3.0, "{text}");
    assert_eq!(metric(&text, "lakeops_leader"), 1.0, "{text}");
    eventually(TIMEOUT, "the objects gauge", || async {
        let (_, text) = ctrl.get("/metrics").await?;
        Ok((metric(&text, "lakeops_objects{kind=\"DataLake\",ready=\"True\"}") == 1.0).then_some(()))
    })
    .await
    .expect("one Ready DataLake counted");
    ctrl.stop().await.expect("graceful stop");
}
