//! Rules that span objects: references to a DataLake, its zones, overlapping triggers and
//! one BackupPolicy per lake. The controller applies them to what its caches hold and
//! `lakeops validate` to a set of files, so both give the same answer.
use kube::ResourceExt;

use crate::backuppolicy::BackupPolicy;
use crate::datalake::DataLake;
use crate::etlfunction::EtlFunction;
use crate::validation::{Findings, notification_filters_overlap};

/// Checks an EtlFunction against the DataLake it references.
pub fn check_function_against_lake(etl: &EtlFunction, lake: &DataLake) -> Findings {
    let mut f = Findings::default();
    let zones: Vec<&str> = lake.spec.zones.iter().map(|z| z.name.as_str()).collect();
    for (path, zone) in
        [("spec.source.zone", &etl.spec.source.zone), ("spec.destination.zone", &etl.spec.destination.zone)]
    {
        if !zones.contains(&zone.as_str()) {
            f.error(
                path,
                format!("zone {zone:?} does not exist in DataLake {:?} (zones: {})", lake.name_any(), zones.join(", ")),
            );
        }
    }
    f
}

/// Checks an EtlFunction's trigger against the other functions of the same lake: S3
/// refuses overlapping notification filters on one bucket. `others` may include `etl`.
pub fn check_trigger_overlaps<'a>(etl: &EtlFunction, others: impl IntoIterator<Item = &'a EtlFunction>) -> Findings {
    let mut f = Findings::default();
    let (prefix, suffix) = etl.notification_filter();
    for other in others {
        if other.namespace() != etl.namespace()
            || other.name_any() == etl.name_any()
            || other.spec.data_lake_ref != etl.spec.data_lake_ref
            || other.spec.source.zone != etl.spec.source.zone
        {
            continue;
        }
        let (op, os) = other.notification_filter();
        if notification_filters_overlap(prefix, suffix, op, os) {
            f.error(
                "spec.source.prefix",
                format!(
                    "trigger filter (prefix {prefix:?}, suffix {suffix:?}) overlaps EtlFunction {:?} (prefix {op:?}, suffix {os:?}) on zone {:?}; S3 refuses overlapping notifications on one bucket",
                    other.name_any(),
                    etl.spec.source.zone
                ),
            );
        }
    }
    f
}

/// Checks a BackupPolicy against the DataLake it references.
pub fn check_policy_against_lake(policy: &BackupPolicy, lake: &DataLake) -> Findings {
    let mut f = Findings::default();
    if policy.spec.retention.is_some() && !lake.spec.object_lock {
        f.error(
            "spec.retention",
            format!(
                "DataLake {:?} has objectLock: false; S3 enables Object Lock only when a bucket is created, so retention needs a lake created with objectLock: true",
                lake.name_any()
            ),
        );
    }
    if let Some(r) = &policy.spec.replication
        && r.region == lake.spec.region
    {
        f.error(
            "spec.replication.region",
            format!("must differ from the lake's region {}: replication must cross regions", lake.spec.region),
        );
    }
    for (i, region) in policy.spec.tables.replica_regions.iter().enumerate() {
        if region == &lake.spec.region {
            f.error(format!("spec.tables.replicaRegions[{i}]"), format!("{region} is the lake's own region"));
        }
    }
    f
}

/// The BackupPolicy that owns a lake when several reference it: the oldest, then by
/// name, so every reader picks the same one.
pub fn owning_policy<'a>(candidates: impl IntoIterator<Item = &'a BackupPolicy>) -> Option<&'a BackupPolicy> {
    candidates
        .into_iter()
        .min_by(|a, b| (a.creation_timestamp(), a.name_any()).cmp(&(b.creation_timestamp(), b.name_any())))
}
