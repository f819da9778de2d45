//! The engine's properties, on the in-memory fake AWS, for the four kinds, over generated
//! specs and starting states (empty, converged, one setting drifted, a foreign owner,
//! half-created by a crash):
//! (a) the plan's changes are the changes the apply executor sends from the same state;
//! (b) after apply the plan is empty and a second apply sends no write;
//! (c) a crash after any AWS call of a first convergence, or a lost answer to any create,
//!     followed by a restart creates no second key, bucket, table, role, function or trail;
//! (d) every blocker the controller stalls on appears in the plan.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;
use kube::ResourceExt;
use lakeops_crds::{BackupPolicy, BackupPolicyStatus, DataLake, DataLakeStatus, EtlFunction, EtlFunctionStatus};
use proptest::prelude::*;

use super::{Action, Exec, Plan, Progress, Stop, is_placeholder};
use crate::aws::fake::{Bucket, FakeAws, Kind, Role};
use crate::aws::s3::ObjectVersion;
use crate::reconcile::{KeyedLocks, backuppolicy, datalake, etlfunction};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";
const BACKUP_REGION: &str = "eu-central-1";
const ARTIFACTS: &str = "team-a-artifacts";

/// The API server, as far as progress goes: the last status recorded.
struct Saved<S>(Mutex<Option<S>>);

impl<S> Default for Saved<S> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

#[async_trait]
impl<S: Clone + Send + Sync> Progress<S> for Saved<S> {
    async fn record(&self, status: &S) -> crate::error::Result<()> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(status.clone());
        Ok(())
    }
}

impl<S: Clone> Saved<S> {
    fn last(&self) -> Option<S> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// How a round ended for the API server: `Died` keeps only the progress recorded.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Lived,
    Died,
}

/// The spec of a generated lake.
#[derive(Clone, Debug)]
struct LakeSpec {
    zones: Vec<&'static str>,
    object_lock: bool,
    trail: bool,
    tables: Vec<&'static str>,
}

fn lake_specs() -> impl Strategy<Value = LakeSpec> {
    (
        proptest::sample::subsequence(vec!["raw", "curated", "trusted"], 1..=3),
        any::<bool>(),
        any::<bool>(),
        proptest::sample::subsequence(vec!["runs", "events"], 0..=2),
    )
        .prop_map(|(zones, object_lock, trail, tables)| LakeSpec { zones, object_lock, trail, tables })
}

fn lake(spec: &LakeSpec) -> DataLake {
    let zones: Vec<_> = spec.zones.iter().map(|z| serde_json::json!({ "name": z })).collect();
    let tables: Vec<_> = spec
        .tables
        .iter()
        .map(|t| serde_json::json!({ "name": t, "partitionKey": { "name": "id", "type": "S" } }))
        .collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1",
        "kind": "DataLake",
        "metadata": { "name": "sales", "namespace": "team-a", "uid": "lake-uid", "generation": 1 },
        "spec": {
            "region": REGION,
            "objectLock": spec.object_lock,
            "zones": zones,
            "catalog": { "tables": tables },
            "audit": { "trail": spec.trail },
        }
    }))
    .expect("generated lake")
}

/// One controller round of a lake: the status it leaves, and the changes sent.
async fn lake_round(fake: &FakeAws, lake: &mut DataLake, end: End) -> Result<Plan, Stop> {
    let current = lake.status.clone().unwrap_or_default();
    let (mut next, _) = datalake::plan_status(lake, &current);
    let saved = Saved::<DataLakeStatus>::default();
    let exec = Exec::apply(&*lake, &saved);
    let (aws, iam) = (fake.region(REGION), fake.iam());
    let input = datalake::steps::Inputs {
        lake,
        aws: &aws,
        iam: iam.as_ref(),
        account: ACCOUNT,
        boundary: None,
        baseline_covers: false,
    };
    let result = datalake::steps::converge(input, &exec, &mut next).await;
    lake.status = match end {
        // The controller writes status at the end of every round, failed or not.
        End::Lived => Some(next),
        End::Died => saved.last().or(lake.status.take()),
    };
    let (_, sent) = exec.finish();
    result.map(|()| sent)
}

async fn lake_plan(fake: &FakeAws, lake: &DataLake) -> Plan {
    datalake::plan::plan(lake, &fake.region(REGION), fake.iam().as_ref(), ACCOUNT, false)
        .await
        .expect("a plan reads only")
}

/// Converges `lake` from scratch (a few rounds at most: one should do).
async fn converged_lake(fake: &FakeAws, lake: &mut DataLake) {
    for _ in 0..3 {
        if lake_round(fake, lake, End::Lived).await.is_ok() {
            let ready = serde_json::json!({
                "type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                "lastTransitionTime": "2026-01-01T00:00:00Z"
            });
            if let Some(s) = lake.status.as_mut() {
                s.conditions = vec![serde_json::from_value(ready).expect("condition")];
                s.observed_generation = Some(1);
            }
            return;
        }
    }
    panic!("the lake does not converge: {:?}", fake.writes());
}

/// Writes sent since the call log had `mark` entries. (The log is not reset: the fake
/// settles a create's transition by call index.)
fn writes_since(fake: &FakeAws, mark: usize) -> Vec<crate::aws::fake::Call> {
    fake.calls().into_iter().skip(mark).filter(|c| c.write).collect()
}

/// A role of the generated name, owned by someone else.
fn foreign_role(name: &str) -> Role {
    Role {
        name: name.to_string(),
        path: crate::iam::ROLE_PATH.to_string(),
        arn: format!("arn:aws:iam::{ACCOUNT}:role{}{name}", crate::iam::ROLE_PATH),
        assume_role_policy: "{}".into(),
        tags: BTreeMap::from([(lakeops_crds::names::tag::OWNER.to_string(), "team-b/other".to_string())]),
        ..Role::default()
    }
}

/// A change as compared between plan and apply: a placeholder and the id of something
/// the apply created stand for the same thing.
fn normalised(plan: &Plan, created: &BTreeSet<String>) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = plan
        .changes
        .iter()
        .map(|c| {
            let resource = if is_placeholder(&c.resource) || created.contains(&c.resource) {
                "(new)".to_string()
            } else {
                c.resource.clone()
            };
            (format!("{:?}", c.action), c.setting.clone(), resource)
        })
        .collect();
    out.sort();
    out
}

/// Key ids that exist in `after` and not in `before`.
fn new_keys(before: &FakeAws, after: &FakeAws) -> BTreeSet<String> {
    let old: BTreeSet<String> = before.snapshot().keys.into_keys().collect();
    after.snapshot().keys.into_keys().filter(|k| !old.contains(k)).collect()
}

/// Starting states for a generated lake.
#[derive(Clone, Copy, Debug)]
enum Start {
    Empty,
    Converged,
    Drifted(usize),
    Foreign,
    HalfCreated(usize),
}

fn starts() -> impl Strategy<Value = Start> {
    prop_oneof![
        Just(Start::Empty),
        Just(Start::Converged),
        (0usize..6).prop_map(Start::Drifted),
        Just(Start::Foreign),
        (1usize..40).prop_map(Start::HalfCreated),
    ]
}

/// One setting changed behind the controller's back.
fn drift(fake: &FakeAws, lake: &DataLake, which: usize) {
    let zone = lake.zone_bucket(&lake.spec.zones[0].name);
    fake.edit(|r| match which {
        0 => {
            if let Some(b) = r.buckets.get_mut(&zone) {
                b.policy = None;
            }
        }
        1 => {
            if let Some(b) = r.buckets.get_mut(&zone) {
                b.public_access_block = None;
            }
        }
        2 => {
            if let Some(b) = r.buckets.get_mut(&zone) {
                b.lifecycle = None;
            }
        }
        3 => {
            for k in r.keys.values_mut() {
                k.rotation_enabled = false;
            }
        }
        4 => {
            for t in r.tables.values_mut() {
                t.pitr = false;
            }
        }
        _ => {
            for t in r.trails.values_mut() {
                t.logging = false;
            }
        }
    });
}

/// A zone bucket of the lake's name already exists, owned by someone else.
fn foreign_bucket(fake: &FakeAws, lake: &DataLake) {
    let name = lake.zone_bucket(&lake.spec.zones[0].name);
    fake.edit(|r| {
        let mut b = Bucket::new(&name, REGION, ACCOUNT, true);
        b.tags = BTreeMap::from([(lakeops_crds::names::tag::OWNER.to_string(), "team-b/other".to_string())]);
        r.buckets.insert(name.clone(), b);
    });
}

async fn lake_start(fake: &FakeAws, lake: &mut DataLake, start: Start) {
    match start {
        Start::Empty => {}
        Start::Converged => converged_lake(fake, lake).await,
        Start::Drifted(which) => {
            converged_lake(fake, lake).await;
            drift(fake, lake, which);
        }
        Start::Foreign => foreign_bucket(fake, lake),
        Start::HalfCreated(n) => {
            fake.crash_after(n);
            let _ = lake_round(fake, lake, End::Died).await;
            fake.clear_faults();
        }
    }
    fake.reset_calls();
}

/// The census of what a converged lake consists of.
fn lake_census(fake: &FakeAws, spec: &LakeSpec) {
    assert_eq!(fake.count(Kind::Key), 1, "one lake key");
    let audit = usize::from(spec.trail);
    assert_eq!(
        fake.count(Kind::Bucket),
        spec.zones.len() + 1 + audit,
        "zone buckets, the log bucket, the audit bucket"
    );
    assert_eq!(fake.count(Kind::Table), spec.tables.len(), "catalog tables");
    assert_eq!(fake.count(Kind::Trail), audit, "the trail");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// (a), (b) and (d) for DataLake.
    #[test]
    fn a_lake_plan_is_what_apply_sends_and_apply_converges(spec in lake_specs(), start in starts()) {
        block_on(async {
            let fake = FakeAws::new(ACCOUNT);
            let mut lake = lake(&spec);
            lake_start(&fake, &mut lake, start).await;

            let planned = lake_plan(&fake.fork(), &lake).await;
            let before = fake.fork();
            let applied = lake_round(&fake, &mut lake, End::Lived).await;
            match applied {
                Ok(sent) => {
                    prop_assert!(planned.blockers.is_empty(), "{:?}", planned.blockers);
                    let created = new_keys(&before, &fake);
                    prop_assert_eq!(normalised(&planned, &created), normalised(&sent, &created));
                    prop_assert_eq!(fake.writes().len(), sent.changes.len(), "one write per change");
                    // (b)
                    let again = lake_plan(&fake, &lake).await;
                    prop_assert!(again.changes.is_empty() && again.blockers.is_empty(), "{:?}", again);
                    fake.reset_calls();
                    prop_assert!(lake_round(&fake, &mut lake, End::Lived).await.is_ok());
                    prop_assert_eq!(fake.writes(), vec![]);
                    lake_census(&fake, &spec);
                }
                Err(Stop::Stalled(_, message)) => {
                    // (d)
                    prop_assert!(planned.blockers.iter().any(|b| b.message == message), "{message} not in {:?}", planned.blockers);
                }
                Err(other) => prop_assert!(false, "unexpected stop {other:?}"),
            }
            Ok(())
        })?;
    }
}

/// (c) for DataLake: a crash after every call index of a first convergence, then restarts.
#[test]
fn a_lake_crashed_after_any_call_converges_without_a_second_resource() {
    block_on(async {
        let spec =
            LakeSpec { zones: vec!["raw", "curated", "trusted"], object_lock: true, trail: true, tables: vec!["runs"] };
        let fake = FakeAws::new(ACCOUNT);
        let mut first = lake(&spec);
        converged_lake(&fake, &mut first).await;
        let total = fake.calls().len();
        assert!(total > 40, "a first convergence makes {total} calls");
        for n in 0..total {
            let fake = FakeAws::new(ACCOUNT);
            let mut lake = lake(&spec);
            fake.crash_after(n);
            let _ = lake_round(&fake, &mut lake, End::Died).await;
            fake.clear_faults();
            converged_lake(&fake, &mut lake).await;
            lake_census(&fake, &spec);
        }
    });
}

/// (c) for DataLake: the answer to each create is lost once.
#[test]
fn a_lake_whose_create_answers_are_lost_converges_without_a_second_resource() {
    for op in ["CreateKey", "CreateAlias", "CreateBucket", "CreateTable", "CreateTrail"] {
        block_on(async {
            let spec = LakeSpec { zones: vec!["raw", "curated"], object_lock: true, trail: true, tables: vec!["runs"] };
            let fake = FakeAws::new(ACCOUNT);
            let mut lake = lake(&spec);
            fake.drop_response_on(move |_, o| o == op);
            let first = lake_round(&fake, &mut lake, End::Lived).await;
            assert!(first.is_err(), "{op}: the lost answer fails the round");
            fake.clear_faults();
            converged_lake(&fake, &mut lake).await;
            lake_census(&fake, &spec);
        });
    }
}

/// Turning the trail off deletes it, and the plan shows the deletion (it did not).
#[test]
fn turning_the_trail_off_is_planned_as_its_deletion() {
    block_on(async {
        let spec = LakeSpec { zones: vec!["raw"], object_lock: true, trail: true, tables: vec![] };
        let fake = FakeAws::new(ACCOUNT);
        let mut lake = lake(&spec);
        converged_lake(&fake, &mut lake).await;
        lake.spec.audit.trail = false;
        // A manifest under review carries no status.
        let mut manifest = lake.clone();
        manifest.status = None;
        let plan = lake_plan(&fake, &manifest).await;
        let deletes: Vec<_> = plan.changes.iter().filter(|c| c.action == Action::Delete).collect();
        assert_eq!(deletes.len(), 1, "{plan:?}");
        assert!(deletes[0].weakens && deletes[0].description.starts_with("delete trail"), "{plan:?}");
        let sent = lake_round(&fake, &mut lake, End::Lived).await.expect("applies");
        assert_eq!(normalised(&plan, &BTreeSet::new()), normalised(&sent, &BTreeSet::new()));
        assert_eq!(fake.count(Kind::Trail), 0);
    });
}

// ---------------------------------------------------------------- BackupPolicy

#[derive(Clone, Debug)]
struct PolicySpec {
    retention_days: Option<i64>,
    replication: bool,
    pitr: bool,
    /// AWS Backup of the tables: (retention days, copy to the backup region, COMPLIANCE lock).
    backup: Option<(i64, bool, bool)>,
}

fn policy_specs() -> impl Strategy<Value = PolicySpec> {
    (
        proptest::option::of(1i64..30),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of((30i64..60, any::<bool>(), any::<bool>())),
    )
        .prop_map(|(retention_days, replication, pitr, backup)| PolicySpec {
            retention_days,
            replication,
            pitr,
            backup,
        })
}

fn policy(spec: &PolicySpec) -> BackupPolicy {
    let mut s = serde_json::json!({
        "dataLakeRef": { "name": "sales" },
        "tables": { "pointInTimeRecovery": spec.pitr },
        "allowProtectionDowngrade": true,
    });
    if let Some(days) = spec.retention_days {
        s["retention"] = serde_json::json!({ "mode": "GOVERNANCE", "days": days });
    }
    if spec.replication {
        s["replication"] = serde_json::json!({ "region": BACKUP_REGION });
    }
    if let Some((days, copy, lock)) = spec.backup {
        let mut b = serde_json::json!({ "retentionDays": days });
        if copy {
            b["copy"] = serde_json::json!({ "region": BACKUP_REGION, "retentionDays": days + 30 });
        }
        s["tables"]["backup"] = b;
        if lock {
            s["retention"] = serde_json::json!({ "mode": "COMPLIANCE", "days": 7 });
        }
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1",
        "kind": "BackupPolicy",
        "metadata": { "name": "sales-backup", "namespace": "team-a", "uid": "policy-uid", "generation": 1 },
        "spec": s,
    }))
    .expect("generated policy")
}

async fn policy_round(fake: &FakeAws, policy: &mut BackupPolicy, lake: &DataLake, end: End) -> Result<Plan, Stop> {
    let facts = backuppolicy::desired::lake_facts(lake).expect("the lake recorded its facts");
    let mut next = policy.status.clone().unwrap_or_default();
    let spec = policy.spec.clone();
    let input =
        backuppolicy::steps::Inputs { policy, spec: &spec, lake, facts: &facts, account: ACCOUNT, boundary: None };
    let saved = Saved::<BackupPolicyStatus>::default();
    let exec = Exec::apply(&*policy, &saved).weakening_apart();
    let result = backuppolicy::steps::converge(fake, &input, &exec, &mut next).await;
    if result.is_ok() {
        next.applied = Some(policy.spec.clone());
    }
    policy.status = match end {
        End::Lived => Some(next),
        End::Died => saved.last().or(policy.status.take()),
    };
    let (_, sent) = exec.finish();
    result.map(|()| sent)
}

async fn policy_plan(fake: &FakeAws, policy: &BackupPolicy, lake: &DataLake) -> Plan {
    let key = lake.status.as_ref().and_then(|s| s.kms_key_arn.clone()).unwrap_or_default();
    backuppolicy::plan::plan(policy, lake, fake, ACCOUNT, &key).await.expect("a plan reads only")
}

async fn converged_policy(fake: &FakeAws, policy: &mut BackupPolicy, lake: &DataLake) {
    for _ in 0..4 {
        if policy_round(fake, policy, lake, End::Lived).await.is_ok() {
            return;
        }
    }
    panic!("the policy does not converge: {:?}", fake.writes());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// (a), (b) and (d) for BackupPolicy, from empty, converged, drifted and foreign starts.
    #[test]
    fn a_policy_plan_is_what_apply_sends_and_apply_converges(spec in policy_specs(), start in 0usize..4) {
        block_on(async {
            let fake = FakeAws::new(ACCOUNT);
            let mut lake = lake(&LakeSpec { zones: vec!["raw", "curated"], object_lock: true, trail: false, tables: vec!["runs"] });
            converged_lake(&fake, &mut lake).await;
            let mut policy = policy(&spec);
            match start {
                1 => converged_policy(&fake, &mut policy, &lake).await,
                2 => {
                    converged_policy(&fake, &mut policy, &lake).await;
                    let zone = lake.zone_bucket("raw");
                    fake.edit(|r| if let Some(b) = r.buckets.get_mut(&zone) { b.lifecycle = None; b.retention = None; });
                    // Someone shortened the backups.
                    fake.edit(|r| for p in r.backup_plans.values_mut() { p.info.document.rules[0].delete_after_days = Some(1); });
                }
                3 if spec.replication => {
                    let role = backuppolicy::desired::role_name(&lake.bucket_prefix());
                    fake.edit(|r| r.roles.insert(role.clone(), foreign_role(&role)));
                }
                _ => {}
            }
            fake.reset_calls();
            let planned = policy_plan(&fake.fork(), &policy, &lake).await;
            let before = fake.fork();
            match policy_round(&fake, &mut policy, &lake, End::Lived).await {
                Ok(sent) => {
                    prop_assert!(planned.blockers.is_empty(), "{:?}", planned.blockers);
                    let created = new_keys(&before, &fake);
                    prop_assert_eq!(normalised(&planned, &created), normalised(&sent, &created));
                    let again = policy_plan(&fake, &policy, &lake).await;
                    prop_assert!(again.changes.is_empty(), "{:?}", again);
                    fake.reset_calls();
                    prop_assert!(policy_round(&fake, &mut policy, &lake, End::Lived).await.is_ok());
                    prop_assert_eq!(fake.writes(), vec![]);
                }
                Err(Stop::Stalled(_, message)) => {
                    prop_assert!(planned.blockers.iter().any(|b| b.message == message), "{message} not in {:?}", planned.blockers);
                }
                Err(other) => prop_assert!(false, "unexpected stop {other:?}"),
            }
            Ok(())
        })?;
    }
}

/// Removing replication is planned as its removal and the role's deletion (it was not).
#[test]
fn removing_replication_is_planned_as_removal_and_role_deletion() {
    block_on(async {
        let fake = FakeAws::new(ACCOUNT);
        let mut lake = lake(&LakeSpec { zones: vec!["raw"], object_lock: true, trail: false, tables: vec![] });
        converged_lake(&fake, &mut lake).await;
        let mut policy = policy(&PolicySpec { retention_days: None, replication: true, pitr: true, backup: None });
        converged_policy(&fake, &mut policy, &lake).await;
        let mut manifest = policy.clone();
        manifest.spec.replication = None;
        manifest.status = None;
        let plan = policy_plan(&fake, &manifest, &lake).await;
        let settings: Vec<_> =
            plan.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.description.clone()).collect();
        assert!(settings.iter().any(|d| d.contains("stop replication")), "{settings:?}");
        assert!(settings.iter().any(|d| d.starts_with("delete role")), "{settings:?}");
    });
}

/// A lake with one table and a policy backing it up with a copy, converged on the fake.
async fn converged_catalog_backup() -> (std::sync::Arc<FakeAws>, DataLake, BackupPolicy) {
    let fake = FakeAws::new(ACCOUNT);
    let mut lake = lake(&LakeSpec { zones: vec!["raw"], object_lock: true, trail: false, tables: vec!["runs"] });
    converged_lake(&fake, &mut lake).await;
    let mut policy =
        policy(&PolicySpec { retention_days: None, replication: false, pitr: true, backup: Some((40, true, false)) });
    converged_policy(&fake, &mut policy, &lake).await;
    (fake, lake, policy)
}

/// Turning the catalog's AWS Backup off is planned as the selection's, the plan's and the
/// role's deletion; the vaults (recovery points are data) stay. A shorter retention is one
/// UpdateBackupPlan marked as weakening.
#[test]
fn removing_the_catalog_backup_deletes_plan_and_selection_and_keeps_the_vaults() {
    block_on(async {
        let (fake, lake, mut policy) = converged_catalog_backup().await;
        // `lakeops plan` of the manifest (no UID, no status) finds everything as it is.
        let mut manifest = policy.clone();
        manifest.status = None;
        manifest.metadata.uid = None;
        let plan = policy_plan(&fake, &manifest, &lake).await;
        assert!(plan.changes.is_empty() && plan.blockers.is_empty(), "{plan:?}");
        let mut shorter = policy.clone();
        shorter.spec.tables.backup.as_mut().expect("backup").retention_days = 20;
        let plan = policy_plan(&fake, &shorter, &lake).await;
        assert!(
            matches!(&plan.changes[..], [c] if c.weakens && c.setting == "backup plan" && c.description.contains("kept 40 days") && c.description.contains("kept 20 days")),
            "{:?}",
            plan.changes
        );
        let backed_up = policy.clone();
        let mut manifest = policy.clone();
        manifest.spec.tables.backup = None;
        manifest.status = None;
        let plan = policy_plan(&fake, &manifest, &lake).await;
        let deleted: Vec<_> =
            plan.changes.iter().filter(|c| c.action == Action::Delete).map(|c| c.description.clone()).collect();
        assert!(deleted.iter().any(|d| d.contains("delete selection")), "{deleted:?}");
        assert!(deleted.iter().any(|d| d.starts_with("delete backup plan")), "{deleted:?}");
        assert!(deleted.iter().any(|d| d.starts_with("delete role")), "{deleted:?}");
        policy.spec.tables.backup = None;
        converged_policy(&fake, &mut policy, &lake).await;
        assert_eq!(fake.count(Kind::BackupPlan), 0);
        assert_eq!(fake.count(Kind::BackupSelection), 0);
        assert_eq!(fake.count(Kind::BackupVault), 2, "recovery points are data: the vaults stay");
        assert!(policy.status.as_ref().is_some_and(|s| s.backup.is_none()));
        // Turned on again (a new generation): a new plan under a new token, the vaults reused.
        policy.spec.tables.backup = backed_up.spec.tables.backup.clone();
        policy.metadata.generation = Some(3);
        converged_policy(&fake, &mut policy, &lake).await;
        assert_eq!((fake.count(Kind::BackupPlan), fake.count(Kind::BackupSelection)), (1, 1));
        assert_eq!(fake.count(Kind::BackupVault), 2);
    });
}

/// Deleting the policy removes the plan, its selection and the backup role, and deletes a
/// vault only when it holds no recovery point: recovery points are data.
#[test]
fn deletion_keeps_every_vault_that_holds_a_recovery_point() {
    block_on(async {
        let (fake, lake, policy) = converged_catalog_backup().await;
        let name = backuppolicy::catalog::name(&policy);
        fake.edit(|r| {
            if let Some(v) = r.backup_vaults.get_mut(&(REGION.to_string(), name.clone())) {
                v.info.recovery_points = 3;
            }
        });
        let facts = backuppolicy::desired::lake_facts(&lake).expect("facts");
        let spec = policy.spec.clone();
        let input = backuppolicy::steps::Inputs {
            policy: &policy,
            spec: &spec,
            lake: &lake,
            facts: &facts,
            account: ACCOUNT,
            boundary: None,
        };
        let exec: Exec<'_, BackupPolicyStatus> = Exec::apply(&policy, &crate::engine::NoProgress);
        let mut next = policy.status.clone().unwrap_or_default();
        backuppolicy::steps::remove_catalog_backup(fake.as_ref(), &exec, &input, true, &mut next)
            .await
            .expect("removed");
        assert_eq!(fake.count(Kind::BackupPlan), 0);
        assert_eq!(fake.count(Kind::BackupSelection), 0);
        let vaults: Vec<String> = fake.snapshot().backup_vaults.keys().map(|(r, _)| r.clone()).collect();
        assert_eq!(vaults, [REGION], "the vault with recovery points stays, the empty copy vault goes");
        let role = backuppolicy::catalog::role_name(&lake.bucket_prefix());
        assert!(!fake.snapshot().roles.contains_key(&role), "the backup role is deleted");
    });
}

/// A lake without Object Lock and a foreign replication role are blockers in the plan.
#[test]
fn the_blockers_the_controller_stalls_on_are_in_the_plan() {
    block_on(async {
        let fake = FakeAws::new(ACCOUNT);
        let mut lake = lake(&LakeSpec { zones: vec!["raw"], object_lock: false, trail: false, tables: vec![] });
        converged_lake(&fake, &mut lake).await;
        let policy = policy(&PolicySpec { retention_days: Some(7), replication: true, pitr: true, backup: None });
        let role = backuppolicy::desired::role_name(&lake.bucket_prefix());
        fake.edit(|r| r.roles.insert(role.clone(), foreign_role(&role)));
        let plan = policy_plan(&fake, &policy, &lake).await;
        assert!(plan.blockers.iter().any(|b| b.message.contains("Object Lock")), "{:?}", plan.blockers);
        assert!(plan.blockers.iter().any(|b| b.message.contains(&format!("IAM role {role}"))), "{:?}", plan.blockers);
    });
}

/// (c) for BackupPolicy: a crash after every call of a first convergence.
#[test]
fn a_policy_crashed_after_any_call_converges_without_a_second_resource() {
    block_on(async {
        let spec =
            PolicySpec { retention_days: Some(7), replication: true, pitr: true, backup: Some((35, true, true)) };
        let base = FakeAws::new(ACCOUNT);
        let mut lake =
            lake(&LakeSpec { zones: vec!["raw", "curated"], object_lock: true, trail: false, tables: vec!["runs"] });
        converged_lake(&base, &mut lake).await;
        base.reset_calls();
        let probe = base.fork();
        let mut p = policy(&spec);
        converged_policy(&probe, &mut p, &lake).await;
        let total = probe.calls().len();
        let expected = probe.counts();
        for n in 0..total {
            let fake = base.fork();
            let mut p = policy(&spec);
            fake.crash_after(n);
            let _ = policy_round(&fake, &mut p, &lake, End::Died).await;
            fake.clear_faults();
            converged_policy(&fake, &mut p, &lake).await;
            assert_eq!(fake.counts(), expected, "after a crash at call {n}");
        }
        assert_eq!(expected.get(&Kind::BackupPlan), Some(&1), "{expected:?}");
        assert_eq!(expected.get(&Kind::BackupSelection), Some(&1), "{expected:?}");
        assert_eq!(expected.get(&Kind::BackupVault), Some(&2), "{expected:?}");
        for op in [
            "CreateKey",
            "CreateAlias",
            "CreateBucket",
            "CreateRole",
            "CreateBackupVault",
            "CreateBackupPlan",
            "CreateBackupSelection",
        ] {
            let fake = base.fork();
            let mut p = policy(&spec);
            fake.drop_response_on(move |_, o| o == op);
            let _ = policy_round(&fake, &mut p, &lake, End::Lived).await;
            fake.clear_faults();
            converged_policy(&fake, &mut p, &lake).await;
            assert_eq!(fake.counts(), expected, "after a lost {op} answer");
        }
    });
}

// ---------------------------------------------------------------- EtlFunction

fn function(memory: i64, reserved: Option<i64>) -> EtlFunction {
    let mut spec = serde_json::json!({
        "dataLakeRef": { "name": "sales" },
        "runtime": "python3.12",
        "handler": "app.handler",
        "memoryMb": memory,
        "code": { "s3Bucket": ARTIFACTS, "s3Key": "orders.zip" },
        "source": { "zone": "raw", "prefix": "incoming/" },
        "destination": { "zone": "curated", "prefix": "orders/" },
    });
    if let Some(n) = reserved {
        spec["reservedConcurrency"] = serde_json::json!(n);
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1",
        "kind": "EtlFunction",
        "metadata": { "name": "orders", "namespace": "team-a", "uid": "etl-uid", "generation": 1 },
        "spec": spec,
    }))
    .expect("generated function")
}

fn with_package(fake: &FakeAws) {
    fake.edit(|r| {
        let mut b = Bucket::new(ARTIFACTS, REGION, ACCOUNT, false);
        b.versioning = Some("Enabled".into());
        b.objects.insert(
            "orders.zip".into(),
            vec![ObjectVersion { version_id: Some("v1".into()), etag: Some("\"e1\"".into()) }],
        );
        r.buckets.insert(ARTIFACTS.into(), b);
    });
}

async fn etl_round(fake: &FakeAws, etl: &mut EtlFunction, lake: &DataLake, end: End) -> Result<Plan, Stop> {
    let key = lake.status.as_ref().and_then(|s| s.kms_key_arn.clone()).unwrap_or_default();
    let locks = KeyedLocks::default();
    let mut next = etl.status.clone().unwrap_or_default();
    let input =
        etlfunction::steps::Inputs { etl, lake, account: ACCOUNT, key_arn: &key, boundary: None, locks: &locks };
    let saved = Saved::<EtlFunctionStatus>::default();
    let exec = Exec::apply(&*etl, &saved);
    let iam = fake.iam();
    let result = etlfunction::steps::converge(&fake.region(REGION), iam.as_ref(), &input, &exec, &mut next).await;
    etl.status = match end {
        End::Lived => Some(next),
        End::Died => saved.last().or(etl.status.take()),
    };
    let (_, sent) = exec.finish();
    result.map(|()| sent)
}

async fn etl_plan(fake: &FakeAws, etl: &EtlFunction, lake: &DataLake) -> Plan {
    let key = lake.status.as_ref().and_then(|s| s.kms_key_arn.clone()).unwrap_or_default();
    let iam = fake.iam();
    etlfunction::plan::plan(etl, lake, &fake.region(REGION), iam.as_ref(), ACCOUNT, &key).await.expect("reads only")
}

async fn converged_etl(fake: &FakeAws, etl: &mut EtlFunction, lake: &DataLake) {
    for _ in 0..4 {
        if etl_round(fake, etl, lake, End::Lived).await.is_ok() {
            return;
        }
    }
    panic!("the function does not converge: {:?}", fake.writes());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// (a), (b) and (d) for EtlFunction.
    #[test]
    fn a_function_plan_is_what_apply_sends_and_apply_converges(memory in 128i64..2048, reserved in proptest::option::of(1i64..10), start in 0usize..4) {
        block_on(async {
            let fake = FakeAws::new(ACCOUNT);
            with_package(&fake);
            let mut lake = lake(&LakeSpec { zones: vec!["raw", "curated"], object_lock: true, trail: false, tables: vec![] });
            converged_lake(&fake, &mut lake).await;
            let mut etl = function(memory, reserved);
            match start {
                1 => converged_etl(&fake, &mut etl, &lake).await,
                2 => {
                    converged_etl(&fake, &mut etl, &lake).await;
                    fake.edit(|r| for f in r.functions.values_mut() { f.config.timeout_seconds += 1; });
                }
                3 => {
                    let role = etlfunction::desired::names(&etl).role;
                    fake.edit(|r| r.roles.insert(role.clone(), foreign_role(&role)));
                }
                _ => {}
            }
            let planned = etl_plan(&fake.fork(), &etl, &lake).await;
            match etl_round(&fake, &mut etl, &lake, End::Lived).await {
                Ok(sent) => {
                    prop_assert!(planned.blockers.is_empty(), "{:?}", planned.blockers);
                    prop_assert_eq!(normalised(&planned, &BTreeSet::new()), normalised(&sent, &BTreeSet::new()));
                    let again = etl_plan(&fake, &etl, &lake).await;
                    prop_assert!(again.changes.is_empty(), "{:?}", again);
                    let mark = fake.calls().len();
                    prop_assert!(etl_round(&fake, &mut etl, &lake, End::Lived).await.is_ok());
                    prop_assert_eq!(writes_since(&fake, mark), vec![]);
                }
                Err(Stop::Stalled(_, message)) => {
                    prop_assert!(planned.blockers.iter().any(|b| b.message == message), "{message} not in {:?}", planned.blockers);
                }
                Err(other) => prop_assert!(false, "unexpected stop {other:?}"),
            }
            Ok(())
        })?;
    }
}

/// (c) for EtlFunction: a crash after every call of a first convergence.
#[test]
fn a_function_crashed_after_any_call_converges_without_a_second_resource() {
    block_on(async {
        let base = FakeAws::new(ACCOUNT);
        with_package(&base);
        let mut lake =
            lake(&LakeSpec { zones: vec!["raw", "curated"], object_lock: true, trail: false, tables: vec![] });
        converged_lake(&base, &mut lake).await;
        base.reset_calls();
        let probe = base.fork();
        let mut etl = function(256, None);
        converged_etl(&probe, &mut etl, &lake).await;
        let total = probe.calls().len();
        let expected = probe.counts();
        for n in 0..total {
            let fake = base.fork();
            let mut etl = function(256, None);
            fake.crash_after(n);
            let _ = etl_round(&fake, &mut etl, &lake, End::Died).await;
            fake.clear_faults();
            converged_etl(&fake, &mut etl, &lake).await;
            assert_eq!(fake.counts(), expected, "after a crash at call {n}");
        }
    });
}

/// `lakeops plan` names a BackupPolicy's lake from its manifest; the controller from the
/// lake's status. Both must give the same buckets (the audit bucket included), or the plan
/// shows changes the controller never makes.
#[test]
fn a_lake_manifest_names_the_buckets_its_status_records() {
    block_on(async {
        for trail in [false, true] {
            let fake = FakeAws::new(ACCOUNT);
            let mut lake =
                lake(&LakeSpec { zones: vec!["raw", "curated"], object_lock: true, trail, tables: vec!["runs"] });
            converged_lake(&fake, &mut lake).await;
            let recorded = backuppolicy::desired::lake_facts(&lake).expect("the lake recorded its facts");
            let manifest = backuppolicy::plan::manifest_facts(&lake, &recorded.key_arn);
            assert_eq!(manifest, recorded, "trail: {trail}");
        }
    });
}

#[test]
fn owners_are_named_in_the_census() {
    block_on(async {
        let fake = FakeAws::new(ACCOUNT);
        let mut lake = lake(&LakeSpec { zones: vec!["raw"], object_lock: true, trail: false, tables: vec![] });
        converged_lake(&fake, &mut lake).await;
        let owned = fake.resources_owned_by(&format!("team-a/{}", lake.name_any()));
        assert_eq!(owned.len(), 3, "key and two buckets: {owned:?}");
    });
}

/// A new lake (3 zones, 1 table, trail) sends the straight-line baseline's 35 writes plus
/// one existence read per resource (the reads that make a re-run safe), all read before the
/// first write, and records its
/// intent in one status write before the first create (the final status write is the
/// controller's, after the round).
#[test]
fn a_new_lake_sends_the_baseline_writes_plus_one_read_per_resource() {
    block_on(async {
        let fake = FakeAws::new(ACCOUNT);
        let spec =
            LakeSpec { zones: vec!["raw", "curated", "trusted"], object_lock: true, trail: true, tables: vec!["runs"] };
        let mut lake = lake(&spec);
        let current = lake.status.clone().unwrap_or_default();
        let (mut next, _) = datalake::plan_status(&lake, &current);
        let saved = Counted::default();
        let exec = Exec::apply(&lake, &saved);
        let (aws, iam) = (fake.region(REGION), fake.iam());
        let input = datalake::steps::Inputs {
            lake: &lake,
            aws: &aws,
            iam: iam.as_ref(),
            account: ACCOUNT,
            boundary: None,
            baseline_covers: false,
        };
        datalake::steps::converge(input, &exec, &mut next).await.expect("converges");
        lake.status = Some(next);
        let calls = fake.calls();
        let writes = calls.iter().filter(|c| c.write).count();
        let reads: Vec<_> = calls.iter().filter(|c| !c.write).map(|c| c.operation).collect();
        // 35, the trail's log group (create, retention) and delivery role (role, policy),
        // and the audit bucket (7 as a zone bucket, and its Object Lock default retention).
        assert_eq!(writes, 47, "{calls:?}");
        assert_eq!(
            reads,
            [
                "DescribeKey",
                "GetBucketTagging",
                "GetBucketTagging",
                "GetBucketTagging",
                "GetBucketTagging",
                "GetBucketTagging",
                "DescribeTable",
                "GetTrail",
                "DescribeLogGroups",
                "GetRole"
            ]
        );
        // Every read is in the one phase before the first write (they are sent at once), so
        // the first create waits for one round trip of reads, not one per kind of resource.
        let first_write = calls.iter().position(|c| c.write).expect("writes");
        assert!(calls[first_write..].iter().all(|c| c.write), "a read after the first write: {calls:?}");
        assert_eq!(*saved.0.lock().expect("count"), 1, "one intent write before the first create");
    });
}

/// Counts progress writes.
#[derive(Default)]
struct Counted(Mutex<usize>);

#[async_trait]
impl Progress<DataLakeStatus> for Counted {
    async fn record(&self, _status: &DataLakeStatus) -> crate::error::Result<()> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        Ok(())
    }
}

// ---------------------------------------------------------------- SecurityBaseline

use lakeops_crds::{SecurityBaseline, SecurityBaselineStatus};

use crate::reconcile::securitybaseline;

/// The spec of a generated baseline (the account trail's parts and the alert topic vary).
#[derive(Clone, Debug)]
struct BaselineSpec {
    trail: bool,
    cis_alarms: bool,
    alerts: bool,
    log_retention_days: i32,
}

fn baseline_specs() -> impl Strategy<Value = BaselineSpec> {
    (any::<bool>(), any::<bool>(), any::<bool>(), prop::sample::select(vec![90, 365, 400])).prop_map(
        |(trail, cis_alarms, alerts, log_retention_days)| BaselineSpec {
            trail,
            cis_alarms,
            alerts,
            log_retention_days,
        },
    )
}

fn baseline(spec: &BaselineSpec) -> SecurityBaseline {
    let mut b: SecurityBaseline = serde_json::from_value(serde_json::json!({
        "apiVersion": "lakeops.dev/v1alpha1", "kind": "SecurityBaseline",
        "metadata": { "name": "eu", "uid": "uid-baseline", "generation": 1 },
        "spec": {
            "region": REGION,
            "auditTrail": {
                "enabled": spec.trail, "cisAlarms": spec.cis_alarms, "logRetentionDays": spec.log_retention_days
            }
        }
    }))
    .expect("fixture");
    if spec.alerts {
        b.spec.alerts =
            serde_json::from_value(serde_json::json!({ "emails": ["secops@example.com"] })).expect("alerts");
    }
    b
}

async fn baseline_round(fake: &FakeAws, b: &mut SecurityBaseline, end: End) -> Result<Plan, Stop> {
    let mut next = b.status.clone().unwrap_or_default();
    let saved = Saved::<SecurityBaselineStatus>::default();
    let exec = Exec::apply(&*b, &saved);
    let (aws, iam) = (fake.region(REGION), fake.iam());
    let input = securitybaseline::steps::Inputs { aws: &aws, iam: iam.as_ref(), account: ACCOUNT, boundary: None };
    let result = securitybaseline::steps::converge(b, input, &exec, &mut next).await;
    b.status = match end {
        End::Lived => Some(next),
        End::Died => saved.last().or(b.status.take()),
    };
    let (_, sent) = exec.finish();
    result.map(|()| sent)
}

async fn baseline_plan(fake: &FakeAws, b: &SecurityBaseline) -> Plan {
    let exec = Exec::plan(b);
    let mut next = b.status.clone().unwrap_or_default();
    let (aws, iam) = (fake.region(REGION), fake.iam());
    let input = securitybaseline::steps::Inputs { aws: &aws, iam: iam.as_ref(), account: ACCOUNT, boundary: None };
    let result = securitybaseline::steps::converge(b, input, &exec, &mut next).await;
    datalake::plan::finish(result, exec).expect("a plan reads only")
}

async fn converged_baseline(fake: &FakeAws, b: &mut SecurityBaseline) {
    for _ in 0..3 {
        if baseline_round(fake, b, End::Lived).await.is_ok() {
            return;
        }
    }
    panic!("the baseline does not converge: {:?}", fake.writes());
}

/// What a converged baseline leaves: the census, and the alarms and metric filters.
fn baseline_census(fake: &FakeAws) -> (BTreeMap<Kind, usize>, usize, usize) {
    let filters = fake.snapshot().log_groups.values().map(|g| g.metric_filters.len()).sum();
    (fake.counts(), fake.alarms(REGION).len(), filters)
}

/// A lake key in the region, so the lake-key filter and alarm exist.
async fn with_lake_key(fake: &FakeAws) {
    let kms = fake.region(REGION).kms;
    let key = kms.create_key("lake", "{}", &BTreeMap::new()).await.expect("key");
    kms.create_alias("alias/lakeops/team-a/sales", &key.key_id).await.expect("alias");
}

/// Starting states for a generated baseline: empty, converged, one part of the account
/// trail changed behind the controller's back, a foreign trail of the account trail's name.
fn baseline_drift(fake: &FakeAws, which: usize) {
    let name = securitybaseline::desired::account_trail_name(REGION);
    let group = securitybaseline::desired::trail_log_group(REGION);
    match which {
        0 => {
            fake.edit(|r| {
                if let Some(t) = r.trails.get_mut(&(REGION.to_string(), name.clone())) {
                    t.settings.multi_region = false;
                    t.settings.log_file_validation = false;
                }
            });
        }
        1 => {
            fake.edit(|r| {
                if let Some(t) = r.trails.get_mut(&(REGION.to_string(), name.clone())) {
                    t.selection.management_events = false;
                    t.logging = false;
                }
            });
        }
        2 => {
            fake.edit_log_group(REGION, &group, |g| {
                g.retention_days = Some(1);
                g.metric_filters.values_mut().for_each(|f| f.pattern = "{$.eventName=*}".into());
            });
        }
        _ => fake.edit(|r| r.alarms.values_mut().for_each(|a| a.alarm.threshold = 100.0)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// (a), (b) and (d) for SecurityBaseline, the account trail's steps included.
    #[test]
    fn a_baseline_plan_is_what_apply_sends_and_apply_converges(spec in baseline_specs(), start in 0usize..7) {
        block_on(async {
            let fake = FakeAws::new(ACCOUNT);
            let mut b = baseline(&spec);
            if start % 2 == 1 {
                with_lake_key(&fake).await;
            }
            match start {
                0 | 1 => {}
                2..=5 => {
                    let mut all_on = baseline(&BaselineSpec { trail: true, cis_alarms: true, ..spec.clone() });
                    converged_baseline(&fake, &mut all_on).await;
                    b.status = all_on.status.clone();
                    baseline_drift(&fake, start - 2);
                }
                _ => {
                    // A trail of the account trail's name that is not ours.
                    let name = securitybaseline::desired::account_trail_name(REGION);
                    let trail = crate::aws::fake::Trail {
                        arn: format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{name}"),
                        settings: crate::aws::cloudtrail::TrailSettings { name: name.clone(), ..Default::default() },
                        tags: BTreeMap::from([(lakeops_crds::names::tag::OWNER.to_string(), "someone".to_string())]),
                        ..Default::default()
                    };
                    fake.edit(|r| r.trails.insert((REGION.to_string(), name), trail));
                }
            }
            fake.reset_calls();
            let planned = baseline_plan(&fake.fork(), &b).await;
            let before = fake.fork();
            match baseline_round(&fake, &mut b, End::Lived).await {
                Ok(sent) => {
                    prop_assert!(planned.blockers.is_empty(), "{:?}", planned.blockers);
                    let created = new_keys(&before, &fake);
                    prop_assert_eq!(normalised(&planned, &created), normalised(&sent, &created));
                    prop_assert_eq!(fake.writes().len(), sent.changes.len(), "one write per change");
                    let again = baseline_plan(&fake, &b).await;
                    prop_assert!(again.changes.is_empty() && again.blockers.is_empty(), "{:?}", again);
                    fake.reset_calls();
                    prop_assert!(baseline_round(&fake, &mut b, End::Lived).await.is_ok());
                    prop_assert_eq!(fake.writes(), vec![]);
                    prop_assert_eq!(fake.snapshot().trails.len(), usize::from(spec.trail || start >= 2));
                }
                Err(Stop::Stalled(_, message)) => {
                    prop_assert!(planned.blockers.iter().any(|b| b.message == message), "{message} not in {:?}", planned.blockers);
                    prop_assert_eq!(fake.snapshot().trails.len(), 1, "never a second trail");
                }
                Err(other) => prop_assert!(false, "unexpected stop {other:?}"),
            }
            Ok(())
        })?;
    }
}

/// (c) for SecurityBaseline: a crash after every call index of a first convergence (keys,
/// buckets, the detector, the topic, the account trail, its role, group, filters and alarms),
/// then restarts; and a lost answer to each create.
#[test]
fn a_baseline_crashed_after_any_call_converges_without_a_second_resource() {
    block_on(async {
        let spec = BaselineSpec { trail: true, cis_alarms: true, alerts: true, log_retention_days: 365 };
        let base = FakeAws::new(ACCOUNT);
        with_lake_key(&base).await;
        base.reset_calls();
        let probe = base.fork();
        let mut b = baseline(&spec);
        converged_baseline(&probe, &mut b).await;
        let total = probe.calls().len();
        let expected = baseline_census(&probe);
        assert_eq!((expected.1, expected.2), (15, 15), "15 alarms and filters");
        assert!(total > 60, "a first convergence makes {total} calls");
        for n in 0..total {
            let fake = base.fork();
            let mut b = baseline(&spec);
            fake.crash_after(n);
            let _ = baseline_round(&fake, &mut b, End::Died).await;
            fake.clear_faults();
            converged_baseline(&fake, &mut b).await;
            assert_eq!(baseline_census(&fake), expected, "after a crash at call {n}");
        }
        for op in [
            "CreateKey",
            "CreateAlias",
            "CreateBucket",
            "CreateDetector",
            "CreateTopic",
            "CreateTrail",
            "CreateRole",
            "CreateLogGroup",
            "PutMetricFilter",
            "PutMetricAlarm",
        ] {
            let fake = base.fork();
            let mut b = baseline(&spec);
            fake.drop_response_on(move |_, o| o == op);
            let _ = baseline_round(&fake, &mut b, End::Lived).await;
            fake.clear_faults();
            converged_baseline(&fake, &mut b).await;
            assert_eq!(baseline_census(&fake), expected, "after a lost {op} answer");
        }
    });
}
