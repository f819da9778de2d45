//! The markdown plan comment, pinned byte for byte in `tests/fixtures/golden/*.md`.
//! Plans are built without AWS from the controller's own desired state and diff functions,
//! so a golden changes when either the wording of a change or the rendering does; both are
//! what reviewers read. `UPDATE_GOLDEN=1 cargo test -p lakeops --test review` rewrites them.
use std::collections::BTreeMap;

use lakeops::aws::lambda::{CodeLocation, FunctionConfig};
use lakeops::aws::s3::PublicAccessBlock;
use lakeops::plan::{ObjectPlan, render_markdown};
use lakeops::reconcile::datalake::desired::{self, DesiredBucket, DesiredKey};
use lakeops::reconcile::datalake::diff::{self, Change, ObservedBucket};
use lakeops::reconcile::datalake::plan::{Action, Blocker, LakePlan, Planned};
use lakeops::reconcile::etlfunction;
use lakeops_crds::DataLake;

use crate::{assert_golden, repo_root};

const ACCOUNT: &str = "123456789012";
const KEY_ARN: &str = "arn:aws:kms:eu-west-1:123456789012:key/0b6c3f3e-1111-4a2b-9c3d-5e6f7a8b9c0d";

fn lake(extra: &str) -> DataLake {
    serde_yaml::from_str(&format!(
        "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {{name: sales, namespace: team-a}}\nspec:\n  region: eu-west-1\n  zones: [{{name: raw}}, {{name: curated}}]\n  catalog: {{tables: [{{name: runs, partitionKey: {{name: id, type: S}}}}]}}\n{extra}"
    ))
    .expect("lake fixture")
}

fn object(kind: &'static str, name: &str, plan: LakePlan) -> ObjectPlan {
    ObjectPlan {
        kind,
        namespace: "team-a".into(),
        name: name.into(),
        region: Some("eu-west-1".into()),
        plan,
        note: None,
    }
}

/// What an existing, converged bucket reads as.
fn converged(b: &DesiredBucket) -> ObservedBucket {
    ObservedBucket {
        tags: b.tags.clone(),
        encryption: Some(b.encryption.clone()),
        public_access_block: Some(PublicAccessBlock::ALL),
        ownership: Some(desired::BUCKET_OWNER_ENFORCED.into()),
        versioning: Some("Enabled".into()),
        policy: Some(b.policy.to_json()),
        logging: b.logging.clone(),
        lifecycle: Some(b.lifecycle.clone()),
    }
}

fn lines(changes: &[Change], existed: bool) -> Vec<Planned> {
    changes.iter().map(|c| Planned::of(c, existed)).collect()
}

fn golden(name: &str) -> std::path::PathBuf {
    repo_root().join("tests/fixtures/golden").join(name)
}

#[test]
fn a_new_lake_is_all_creates_led_by_its_key() {
    let lake = lake("  audit: {trail: true}\n");
    let key_arn = etlfunction::plan::NEW_KEY;
    let mut plan = LakePlan::default();
    let DesiredKey::Managed { alias, rotation_days, .. } = desired::key(&lake, ACCOUNT) else {
        panic!("a lake without keyArn gets a managed key")
    };
    // The one line plan() writes itself rather than from a diff: there is no key to diff.
    plan.changes.push(Planned {
        action: Action::Create,
        resource: alias.clone(),
        setting: "key".into(),
        description: format!(
            "create KMS key {alias} with rotation every {rotation_days} days and a key policy naming only the account root"
        ),
        weakens: false,
    });
    for b in desired::buckets(&lake, ACCOUNT, key_arn) {
        plan.changes.extend(lines(&diff::bucket_changes(&b, None), false));
    }
    for t in desired::tables(&lake) {
        plan.changes.extend(lines(&diff::table_changes(&t, key_arn, None), false));
    }
    let trail = desired::trail(&lake, key_arn).expect("the spec asks for an audit trail");
    plan.changes.extend(lines(&diff::trail_changes(&trail, None), false));
    assert_golden(&golden("new-lake.md"), &render_markdown(&[object("DataLake", "sales", plan)]));
}

#[test]
fn a_converged_set_plans_nothing_and_says_what_it_did_not_plan() {
    let lake = lake("");
    let converged_changes: Vec<Change> = desired::buckets(&lake, ACCOUNT, KEY_ARN)
        .iter()
        .flat_map(|b| diff::bucket_changes(b, Some(&converged(b))))
        .collect();
    assert!(converged_changes.is_empty(), "{converged_changes:?}");
    let plans = [
        object("DataLake", "sales", LakePlan { changes: lines(&converged_changes, true), blockers: Vec::new() }),
        object("EtlFunction", "orders-to-curated", LakePlan::default()),
        ObjectPlan {
            kind: "BackupPolicy",
            namespace: "team-a".into(),
            name: "sales-backup".into(),
            region: None,
            plan: LakePlan::default(),
            // A dependent planned without its lake: the note says why nothing is listed.
            note: Some("its DataLake \"sales\" is not among these manifests; pass them together to plan it".into()),
        },
    ];
    assert_golden(&golden("converged.md"), &render_markdown(&plans));
}

#[test]
fn drift_is_an_update_per_setting_and_a_foreign_bucket_is_a_blocker() {
    let lake = lake("");
    let buckets = desired::buckets(&lake, ACCOUNT, KEY_ARN);
    let mut plan = LakePlan::default();
    for b in &buckets {
        let mut observed = converged(b);
        match b.zone.as_deref() {
            // Someone opened the raw bucket and suspended versioning on the curated one.
            Some("raw") => observed.public_access_block = None,
            Some("curated") => observed.versioning = Some("Suspended".into()),
            _ => {}
        }
        plan.changes.extend(lines(&diff::bucket_changes(b, Some(&observed)), true));
    }
    plan.blockers.push(Blocker {
        resource: "table team-a-sales-runs".into(),
        message: "table team-a-sales-runs exists and is not this DataLake's; the controller will leave it alone unless adoption is asked for".into(),
    });
    assert_eq!(plan.changes.len(), 2, "{:?}", plan.changes);
    assert_golden(&golden("drifted.md"), &render_markdown(&[object("DataLake", "sales", plan)]));
}

#[test]
fn weakening_changes_are_listed_first_and_flagged_in_place() {
    // The spec turns access logs, the audit trail and a table's TTL off.
    let lake = lake("  accessLogs: false\n");
    let before = self::lake("  audit: {trail: true}\n");
    let mut plan = LakePlan::default();
    for (b, was) in desired::buckets(&lake, ACCOUNT, KEY_ARN).iter().zip(desired::buckets(&before, ACCOUNT, KEY_ARN)) {
        let mut observed = converged(b);
        observed.logging = was.logging.clone();
        plan.changes.extend(lines(&diff::bucket_changes(b, Some(&observed)), true));
    }
    let removed = [
        Change::SetTtl { table: "team-a-sales-runs".into(), attribute: "expiresAt".into(), enabled: false },
        Change::DeleteTrail { trail: desired::trail_name(&lake) },
    ];
    plan.changes.extend(lines(&removed, true));
    assert!(plan.changes.iter().all(|c| c.weakens), "{:?}", plan.changes);
    assert_golden(&golden("weakening.md"), &render_markdown(&[object("DataLake", "sales", plan)]));
}

#[test]
fn an_etl_function_update_names_each_setting_old_and_new_but_never_environment_values() {
    let name = "lakeops-team-a-orders";
    let old = FunctionConfig {
        runtime: "python3.11".into(),
        handler: "app.handler".into(),
        role_arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
        memory_mb: 512,
        timeout_seconds: 60,
        environment: BTreeMap::from([("OUTPUT_FORMAT".into(), "csv".into()), ("API_TOKEN".into(), "s3cr3t".into())]),
        kms_key_arn: Some(KEY_ARN.into()),
        ..FunctionConfig::default()
    };
    let mut new = old.clone();
    new.runtime = "python3.12".into();
    new.memory_mb = 1024;
    new.timeout_seconds = 120;
    new.environment.insert("OUTPUT_FORMAT".into(), "parquet".into());
    new.environment.insert("API_TOKEN".into(), "rotated".into());
    use etlfunction::diff::Change as Fn;
    let changes = [
        Fn::UpdateConfiguration {
            name: name.into(),
            differences: etlfunction::diff::config_differences(&old, &new),
            config: Box::new(new),
        },
        Fn::UpdateCode {
            name: name.into(),
            code: CodeLocation {
                bucket: "team-a-artifacts".into(),
                key: "orders.zip".into(),
                version: Some("3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY".into()),
            },
            architecture: "arm64".into(),
        },
        Fn::SetCodeSigning { name: name.into(), arn: None },
    ];
    let plan = LakePlan { changes: changes.iter().map(|c| Planned::of(c, true)).collect(), blockers: Vec::new() };
    let md = render_markdown(&[object("EtlFunction", "orders", plan)]);
    assert!(!md.contains("s3cr3t") && !md.contains("rotated") && !md.contains("csv"), "{md}");
    assert_golden(&golden("etlfunction-update.md"), &md);
}
