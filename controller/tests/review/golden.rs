//! The markdown plan comment, pinned byte for byte in `tests/fixtures/golden/*.md`.
//! Each golden is what `lakeops plan` returns for manifests against the in-memory fake AWS,
//! after the controller's own apply sequence converged a starting state there (and, for
//! drift, after a change made behind its back): nothing is assembled by hand, so a golden
//! changes when the engine, the wording of a change or the rendering does.
//! `UPDATE_GOLDEN=1 cargo test -p lakeops --test review` rewrites them.
use std::collections::BTreeMap;

use lakeops::aws::fake::{Bucket, FakeAws};
use lakeops::aws::s3::ObjectVersion;
use lakeops::engine::{Exec, NoProgress};
use lakeops::manifests::{Loaded, Object, parse_stream};
use lakeops::plan::{plan, render_markdown};
use lakeops::reconcile::{KeyedLocks, datalake, etlfunction};
use lakeops_crds::{DataLake, EtlFunction};

use crate::{assert_golden, repo_root};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";
const ARTIFACTS: &str = "team-a-artifacts";

fn lake_yaml(extra: &str) -> String {
    format!(
        "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {{name: sales, namespace: team-a}}\nspec:\n  region: {REGION}\n  zones: [{{name: raw}}, {{name: curated}}]\n{extra}"
    )
}

fn etl_yaml(extra: &str) -> String {
    format!(
        "apiVersion: lakeops.dev/v1alpha1\nkind: EtlFunction\nmetadata: {{name: orders-to-curated, namespace: team-a}}\nspec:\n  dataLakeRef: {{name: sales}}\n  handler: app.handler\n  source: {{zone: raw, prefix: incoming/}}\n  destination: {{zone: curated, prefix: orders/}}\n{extra}"
    )
}

fn documents(yaml: &[String]) -> Loaded {
    let mut loaded = Loaded { default_namespace: "team-a".into(), documents: Vec::new(), problems: Vec::new() };
    parse_stream("golden.yaml", &yaml.join("---\n"), &mut loaded);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    loaded
}

/// What the controller would have done: each object of `yaml` converged on `fake` by the
/// apply executor (a stored object has a UID; the manifests planned later do not).
async fn converge(fake: &FakeAws, yaml: &[String]) {
    let mut lakes: Vec<DataLake> = Vec::new();
    for doc in documents(yaml).documents {
        match doc.object {
            Object::DataLake(lake) => {
                let mut lake = lake.clone();
                lake.metadata.uid = Some("lake-uid".into());
                let (mut next, _) = datalake::plan_status(&lake, &Default::default());
                let exec = Exec::apply(&lake, &NoProgress);
                let (aws, iam) = (fake.region(REGION), fake.iam());
                let input = datalake::steps::Inputs {
                    lake: &lake,
                    aws: &aws,
                    iam: iam.as_ref(),
                    account: ACCOUNT,
                    boundary: None,
                    baseline_covers: false,
                };
                datalake::steps::converge(input, &exec, &mut next).await.expect("the lake converges");
                lake.status = Some(next);
                lakes.push(lake);
            }
            Object::EtlFunction(etl) => {
                let mut etl: EtlFunction = etl.clone();
                etl.metadata.uid = Some("etl-uid".into());
                let lake = lakes.first().expect("the lake comes first");
                let key = lake.status.as_ref().and_then(|s| s.kms_key_arn.clone()).unwrap_or_default();
                let locks = KeyedLocks::default();
                let input = etlfunction::steps::Inputs {
                    etl: &etl,
                    lake,
                    account: ACCOUNT,
                    key_arn: &key,
                    boundary: None,
                    locks: &locks,
                };
                let exec = Exec::apply(&etl, &NoProgress);
                let mut next = Default::default();
                let iam = fake.iam();
                etlfunction::steps::converge(&fake.region(REGION), iam.as_ref(), &input, &exec, &mut next)
                    .await
                    .expect("the function converges");
            }
            Object::BackupPolicy(_) | Object::SecurityBaseline(_) | Object::EtlPipeline(_) => {
                unreachable!("no golden converges a policy, a baseline or a pipeline")
            }
        }
    }
}

async fn markdown(fake: &FakeAws, yaml: &[String]) -> String {
    let plans = plan(&documents(yaml).documents, fake).await.expect("a plan reads only");
    render_markdown(&plans)
}

fn with_package(fake: &FakeAws, versions: &[&str]) {
    fake.edit(|r| {
        let mut b = Bucket::new(ARTIFACTS, REGION, ACCOUNT, false);
        b.versioning = Some("Enabled".into());
        let versions =
            versions.iter().map(|v| ObjectVersion { version_id: Some((*v).into()), etag: Some(format!("\"{v}\"")) });
        b.objects.insert("orders.zip".into(), versions.collect());
        r.buckets.insert(ARTIFACTS.into(), b);
    });
}

fn golden(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/fixtures/golden").join(name)
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

#[test]
fn a_new_lake_is_all_creates_led_by_its_key() {
    block_on(async {
        let fake = FakeAws::new(ACCOUNT);
        let yaml = [lake_yaml(
            "  catalog: {tables: [{name: runs, partitionKey: {name: id, type: S}}]}\n  audit: {trail: true}\n",
        )];
        let md = markdown(&fake, &yaml).await;
        assert!(fake.writes().is_empty(), "a plan sends no write");
        assert_golden(&golden("new-lake.md"), &md);
    });
}

#[test]
fn a_converged_set_plans_nothing_and_says_what_it_did_not_plan() {
    block_on(async {
        let fake = FakeAws::new(ACCOUNT);
        with_package(&fake, &["v1"]);
        let function =
            etl_yaml(&format!("  runtime: python3.12\n  code: {{s3Bucket: {ARTIFACTS}, s3Key: orders.zip}}\n"));
        let yaml = [lake_yaml(""), function];
        converge(&fake, &yaml).await;
        // A dependent planned without its lake: the note says why nothing is listed.
        let orphan = "apiVersion: lakeops.dev/v1alpha1\nkind: BackupPolicy\nmetadata: {name: archive-backup, namespace: team-a}\nspec:\n  dataLakeRef: {name: archive}\n".to_string();
        let md = markdown(&fake, &[yaml[0].clone(), yaml[1].clone(), orphan]).await;
        assert_golden(&golden("converged.md"), &md);
    });
}

#[test]
fn drift_is_an_update_per_setting_and_a_foreign_table_is_a_blocker() {
    block_on(async {
        let fake = FakeAws::new(ACCOUNT);
        let yaml = [lake_yaml("  catalog: {tables: [{name: runs, partitionKey: {name: id, type: S}}]}\n")];
        converge(&fake, &yaml).await;
        // Someone opened the raw bucket, suspended versioning on the curated one, and the
        // table turns out to be tagged as another lake's.
        fake.edit(|r| {
            if let Some(b) = r.buckets.get_mut("team-a-sales-raw") {
                b.public_access_block = None;
            }
            if let Some(b) = r.buckets.get_mut("team-a-sales-curated") {
                b.versioning = Some("Suspended".into());
            }
            for t in r.tables.values_mut() {
                t.tags = BTreeMap::from([(lakeops_crds::names::tag::OWNER.to_string(), "team-b/other".to_string())]);
            }
        });
        assert_golden(&golden("drifted.md"), &markdown(&fake, &yaml).await);
    });
}

#[test]
fn weakening_changes_are_listed_first_and_flagged_in_place() {
    block_on(async {
        let fake = FakeAws::new(ACCOUNT);
        let table =
            |ttl: &str| format!("  catalog: {{tables: [{{name: runs, partitionKey: {{name: id, type: S}}{ttl}}}]}}\n");
        converge(&fake, &[lake_yaml(&format!("{}  audit: {{trail: true}}\n", table(", ttlAttribute: expiresAt")))])
            .await;
        // The spec turns access logs, the audit trail and the table's TTL off.
        let md = markdown(&fake, &[lake_yaml(&format!("{}  accessLogs: false\n", table("")))]).await;
        assert_golden(&golden("weakening.md"), &md);
    });
}

#[test]
fn an_etl_function_update_names_each_setting_old_and_new_but_never_environment_values() {
    block_on(async {
        let fake = FakeAws::new(ACCOUNT);
        let new_version = "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY";
        with_package(&fake, &["v1", new_version]);
        let before = etl_yaml(&format!(
            "  runtime: python3.11\n  memoryMb: 512\n  timeoutSeconds: 60\n  environment: {{OUTPUT_FORMAT: csv, API_MODE: s3cr3t}}\n  codeSigningConfigArn: arn:aws:lambda:{REGION}:{ACCOUNT}:code-signing-config:csc-1\n  code: {{s3Bucket: {ARTIFACTS}, s3Key: orders.zip, s3ObjectVersion: v1}}\n"
        ));
        converge(&fake, &[lake_yaml(""), before]).await;
        let after = etl_yaml(&format!(
            "  runtime: python3.12\n  memoryMb: 1024\n  timeoutSeconds: 120\n  environment: {{OUTPUT_FORMAT: parquet, API_MODE: rotated}}\n  code: {{s3Bucket: {ARTIFACTS}, s3Key: orders.zip, s3ObjectVersion: {new_version}}}\n"
        ));
        let md = markdown(&fake, &[lake_yaml(""), after]).await;
        assert!(!md.contains("s3cr3t") && !md.contains("rotated") && !md.contains("csv"), "{md}");
        assert_golden(&golden("etlfunction-update.md"), &md);
    });
}
