//! Rules that span objects: references to a DataLake, its zones, overlapping triggers and
//! one BackupPolicy per lake. The controller applies them to what its caches hold and
//! `lakeops validate` to a set of files, so both give the same answer.
use kube::ResourceExt;

use crate::backuppolicy::BackupPolicy;
use crate::datalake::DataLake;
use crate::etlfunction::EtlFunction;
use crate::etlpipeline::EtlPipeline;
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
    let tables: Vec<&str> = lake.spec.catalog.tables.iter().map(|t| t.name.as_str()).collect();
    for (i, t) in etl.spec.access.tables.iter().enumerate() {
        if !tables.contains(&t.name.as_str()) {
            f.error(
                format!("spec.access.tables[{i}].name"),
                format!(
                    "table {:?} is not a catalog table of DataLake {:?} (tables: {})",
                    t.name,
                    lake.name_any(),
                    if tables.is_empty() { "none".to_string() } else { tables.join(", ") }
                ),
            );
        }
    }
    f
}

/// Checks an EtlFunction's trigger against the other functions of the same lake: S3
/// refuses overlapping notification filters on one bucket. `others` may include `etl`.
pub fn check_trigger_overlaps<'a>(etl: &EtlFunction, others: impl IntoIterator<Item = &'a EtlFunction>) -> Findings {
    let mut f = Findings::default();
    if !etl.spec.source.trigger {
        return f;
    }
    let (prefix, suffix) = etl.notification_filter();
    for other in others {
        if !other.spec.source.trigger
            || other.namespace() != etl.namespace()
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

/// Checks an EtlPipeline against its lake and the functions its steps name: the trigger's
/// zone exists, and every step's function exists in the namespace and uses the same lake.
pub fn check_pipeline_against_lake<'a>(
    p: &EtlPipeline,
    lake: &DataLake,
    functions: impl IntoIterator<Item = &'a EtlFunction>,
) -> Findings {
    let mut f = Findings::default();
    if let Some((zone, _, _)) = p.object_filter()
        && !lake.spec.zones.iter().any(|z| z.name == zone)
    {
        let zones: Vec<&str> = lake.spec.zones.iter().map(|z| z.name.as_str()).collect();
        f.error(
            "spec.trigger.objectCreated.zone",
            format!("zone {zone:?} does not exist in DataLake {:?} (zones: {})", lake.name_any(), zones.join(", ")),
        );
    }
    let functions: Vec<&EtlFunction> = functions.into_iter().filter(|x| x.namespace() == p.namespace()).collect();
    for (i, step) in p.spec.steps.iter().enumerate() {
        let name = &step.etl_function_ref.name;
        match functions.iter().find(|x| &x.name_any() == name) {
            None => f.error(
                format!("spec.steps[{i}].etlFunctionRef.name"),
                format!("EtlFunction {name:?} does not exist in this namespace"),
            ),
            Some(x) if x.spec.data_lake_ref != p.spec.data_lake_ref => f.error(
                format!("spec.steps[{i}].etlFunctionRef.name"),
                format!(
                    "EtlFunction {name:?} belongs to DataLake {:?}, not {:?}",
                    x.spec.data_lake_ref.name, p.spec.data_lake_ref.name
                ),
            ),
            Some(_) => {}
        }
    }
    f
}

/// Refuses an objectCreated trigger overlapping an EtlFunction's own S3 trigger on the same
/// zone: every matching object would be processed twice, once by each.
pub fn check_pipeline_trigger_overlaps<'a>(
    p: &EtlPipeline,
    functions: impl IntoIterator<Item = &'a EtlFunction>,
) -> Findings {
    let mut f = Findings::default();
    let Some((zone, prefix, suffix)) = p.object_filter() else { return f };
    for other in functions {
        if !other.spec.source.trigger
            || other.namespace() != p.namespace()
            || other.spec.data_lake_ref != p.spec.data_lake_ref
            || other.spec.source.zone != zone
        {
            continue;
        }
        let (op, os) = other.notification_filter();
        if notification_filters_overlap(prefix, suffix, op, os) {
            f.error(
                "spec.trigger.objectCreated.prefix",
                format!(
                    "filter (prefix {prefix:?}, suffix {suffix:?}) overlaps EtlFunction {:?}'s trigger (prefix {op:?}, suffix {os:?}) on zone {zone:?}: each object would be processed twice",
                    other.name_any()
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
    if let Some(c) = policy.spec.tables.backup.as_ref().and_then(|b| b.copy.as_ref())
        && c.region == lake.spec.region
    {
        f.error(
            "spec.tables.backup.copy.region",
            format!("must differ from the lake's region {}: the copy is what survives the region", lake.spec.region),
        );
    }
    if policy.spec.replication.is_some() {
        for zone in &lake.spec.zones {
            let replica = replica_bucket(lake, &zone.name);
            if replica.len() > 63 {
                f.error(
                    "spec.replication",
                    format!("replica bucket name {replica:?} is longer than 63 characters; shorten the lake's bucketPrefix or zone names"),
                );
            }
        }
    }
    if let Some(n) = &policy.spec.noncurrent_version_retention {
        // S3 applies the earliest expiration of all rules: the lake's own rule still wins.
        for zone in &lake.spec.zones {
            let lake_days = lake.spec.lifecycle.for_zone(zone).noncurrent_version_expiration_days;
            if lake_days < n.days {
                f.warning(
                    "spec.noncurrentVersionRetention.days",
                    format!(
                        "zone {:?}: the DataLake expires noncurrent versions after {lake_days} days; S3 applies the earliest expiration, so {} days only hold if the lake's lifecycle allows it",
                        zone.name, n.days
                    ),
                );
            }
        }
    }
    f
}

/// Name of the replica bucket of a zone: `<prefix>-<zone>-replica`.
pub fn replica_bucket(lake: &DataLake, zone: &str) -> String {
    format!("{}-replica", lake.zone_bucket(zone))
}

/// The BackupPolicy that owns a lake when several reference it: the oldest, then by
/// name, so every reader picks the same one.
pub fn owning_policy<'a>(candidates: impl IntoIterator<Item = &'a BackupPolicy>) -> Option<&'a BackupPolicy> {
    candidates
        .into_iter()
        .min_by(|a, b| (a.creation_timestamp(), a.name_any()).cmp(&(b.creation_timestamp(), b.name_any())))
}
