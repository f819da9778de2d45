//! `lakeops validate` on a repository-sized tree: 1,000 manifests in 1,000 files, checked
//! against each other (every function and policy against its lake, every trigger against
//! the others), by the binary as CI runs it. The time is printed (run with --nocapture);
//! the bound is generous so a busy machine does not fail it, and still catches a
//! quadratic slip by orders of magnitude.
use std::time::{Duration, Instant};

const LAKES: usize = 400;
const FUNCTIONS: usize = 300;
const POLICIES: usize = 300;

fn lake(i: usize) -> String {
    format!(
        "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata:\n  name: lake-{i}\nspec:\n  region: eu-west-1\n  zones:\n    - name: raw\n    - name: curated\n  catalog:\n    tables:\n      - name: runs\n        partitionKey: {{name: id, type: S}}\n        ttlAttribute: expiresAt\n  lifecycle:\n    noncurrentVersionExpirationDays: 180\n  tags:\n    team: team-{}\n",
        i % 17
    )
}

fn function(i: usize) -> String {
    format!(
        "apiVersion: lakeops.dev/v1alpha1\nkind: EtlFunction\nmetadata:\n  name: fn-{i}\nspec:\n  dataLakeRef:\n    name: lake-{i}\n  source:\n    zone: raw\n    prefix: incoming/\n    suffix: .json\n  destination:\n    zone: curated\n    prefix: out/\n  code:\n    s3Bucket: artifacts\n    s3Key: etl/fn-{i}.zip\n  runtime: python3.12\n  handler: app.handler\n  memoryMb: 512\n  deadLetterQueueArn: arn:aws:sqs:eu-west-1:123456789012:etl-dlq\n  environment:\n    OUTPUT_FORMAT: parquet\n"
    )
}

fn policy(i: usize) -> String {
    format!(
        "apiVersion: lakeops.dev/v1alpha1\nkind: BackupPolicy\nmetadata:\n  name: backup-{i}\nspec:\n  dataLakeRef:\n    name: lake-{i}\n  retention:\n    mode: GOVERNANCE\n    days: 30\n  replication:\n    region: eu-central-1\n  tables:\n    pointInTimeRecovery: true\n  noncurrentVersionRetention:\n    days: 180\n"
    )
}

#[test]
fn validate_checks_1000_manifests_well_under_the_bound() {
    let dir = std::env::temp_dir().join(format!("lakeops-validate-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for (sub, count, render) in [
        ("lakes", LAKES, lake as fn(usize) -> String),
        ("functions", FUNCTIONS, function),
        ("policies", POLICIES, policy),
    ] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).expect("directory");
        for i in 0..count {
            std::fs::write(d.join(format!("{i:04}.yaml")), render(i)).expect("manifest written");
        }
    }
    let start = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lakeops"))
        .args(["validate", "--strict", "-n", "team-a"])
        .arg(&dir)
        .output()
        .expect("lakeops runs");
    let elapsed = start.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = format!("lakeops validate: 1000 manifests in {:.0} ms", elapsed.as_secs_f64() * 1000.0);
    println!("{report} ({} build)", if cfg!(debug_assertions) { "debug" } else { "release" });
    assert!(out.status.success(), "{stderr}{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.trim_end(), "1000 object(s) checked: 0 error(s), 0 warning(s)");
    let bound = if cfg!(debug_assertions) { Duration::from_secs(5) } else { Duration::from_secs(1) };
    assert!(elapsed < bound, "{report}, over {bound:?}");
}
