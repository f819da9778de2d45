//! `lakeops plan --base BASE HEAD` on the manifest tree pairs in `tests/fixtures/base/<case>/`,
//! run as the workflow runs it (the binary, markdown, `--detailed-exitcode`); each output is
//! pinned in `<case>/expected.md`.
use std::path::PathBuf;
use std::process::Command;

use crate::{assert_golden, repo_root};

fn case_dir(case: &str) -> PathBuf {
    repo_root().join("tests/fixtures/base").join(case)
}

/// Runs the comparison of one case; returns (exit code, markdown), after checking it
/// against the case's golden file.
fn plan_base(case: &str) -> (i32, String) {
    let dir = case_dir(case);
    let out = Command::new(env!("CARGO_BIN_EXE_lakeops"))
        .args(["plan", "--format", "markdown", "--detailed-exitcode", "-n", "team-a", "--base"])
        .arg(dir.join("base"))
        .arg(dir.join("head"))
        .output()
        .expect("lakeops runs");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(out.stderr.is_empty(), "{case}: {}", String::from_utf8_lossy(&out.stderr));
    assert_golden(&dir.join("expected.md"), &stdout);
    (out.status.code().expect("exit code"), stdout)
}

const CASES: [&str; 5] =
    ["added-zone", "removed-replica-region", "unchanged", "weakening-account-trail", "weakening-retention"];

#[test]
fn every_fixture_case_has_a_test() {
    let mut found: Vec<String> = std::fs::read_dir(repo_root().join("tests/fixtures/base"))
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, CASES);
}

#[test]
fn an_unchanged_tree_in_other_files_order_and_style_has_no_changes_and_exits_0() {
    let (code, md) = plan_base("unchanged");
    assert_eq!(code, 0, "{md}");
    assert_eq!(md, "**lakeops plan --base**: 0 object(s) added, 0 removed, 0 changed; 0 change(s) weaken protection\n");
}

#[test]
fn a_shortened_retention_is_a_weakening_with_old_and_new_days() {
    let (code, md) = plan_base("weakening-retention");
    assert_eq!(code, 2, "{md}");
    assert!(md.contains("0 removed, 1 changed; 1 change(s) weaken protection"), "{md}");
    assert!(
        md.contains(
            "> - BackupPolicy team-a/sales-backup: spec.retention.days: retention shortened from 30 to 7 days\n"
        ),
        "{md}"
    );
    assert!(md.contains("- `spec.retention.days: 30 -> 7`"), "{md}");
}

#[test]
fn dropping_the_cis_alarms_and_shortening_the_account_trail_logs_are_weakenings() {
    let (code, md) = plan_base("weakening-account-trail");
    assert_eq!(code, 2, "{md}");
    assert!(md.contains("2 change(s) weaken protection"), "{md}");
    assert!(md.contains("spec.auditTrail.cisAlarms: the CIS metric filters and alarms are no longer kept"), "{md}");
    assert!(md.contains("spec.auditTrail.logRetentionDays: trail logs kept shorter: 365 -> 90 days"), "{md}");
}

#[test]
fn a_removed_table_replica_region_is_a_weakening() {
    let (code, md) = plan_base("removed-replica-region");
    assert_eq!(code, 2, "{md}");
    assert!(
        md.contains(
            "> - BackupPolicy team-a/sales-backup: spec.tables.replicaRegions: table replica region eu-central-1 removed\n"
        ),
        "{md}"
    );
}

#[test]
fn an_added_zone_is_a_change_that_weakens_nothing() {
    let (code, md) = plan_base("added-zone");
    assert_eq!(code, 2, "{md}");
    assert!(md.contains("0 removed, 1 changed; 0 change(s) weaken protection"), "{md}");
    assert!(!md.contains("[!WARNING]"), "{md}");
    assert!(md.contains("<summary>DataLake team-a/sales: changed</summary>"), "{md}");
    assert!(md.contains("\"name\":\"sandbox\""), "{md}");
}
