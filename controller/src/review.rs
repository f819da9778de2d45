//! `lakeops plan --base DIR`: what a pull request changes in the manifests, and which of
//! those changes weaken protection, without AWS access (for reviewers who have none).
use std::collections::BTreeMap;

use kube::ResourceExt;
use lakeops_crds::backuppolicy::RetentionMode::Compliance;
use lakeops_crds::{BackupPolicy, DataLake, DeletionPolicy};
use serde::Serialize;

use crate::manifests::{Document, Object};

/// One change between the base and the head manifests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ManifestChange {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// Changed spec fields as `path: old -> new`.
    pub fields: Vec<String>,
    /// Why this weakens protection, when it does.
    pub weakens: Vec<String>,
}

type Key = (&'static str, String, String);

fn index(docs: &[Document]) -> BTreeMap<Key, &Object> {
    docs.iter()
        .map(|d| {
            let (kind, ns, name) = match &d.object {
                Object::DataLake(o) => ("DataLake", o.namespace(), o.name_any()),
                Object::EtlFunction(o) => ("EtlFunction", o.namespace(), o.name_any()),
                Object::BackupPolicy(o) => ("BackupPolicy", o.namespace(), o.name_any()),
                Object::SecurityBaseline(o) => ("SecurityBaseline", None, o.name_any()),
                Object::EtlPipeline(o) => ("EtlPipeline", o.namespace(), o.name_any()),
            };
            ((kind, ns.unwrap_or_default(), name), &d.object)
        })
        .collect()
}

fn spec_json(o: &Object) -> serde_json::Value {
    match o {
        Object::DataLake(x) => serde_json::to_value(&x.spec),
        Object::EtlFunction(x) => serde_json::to_value(&x.spec),
        Object::BackupPolicy(x) => serde_json::to_value(&x.spec),
        Object::SecurityBaseline(x) => serde_json::to_value(&x.spec),
        Object::EtlPipeline(x) => serde_json::to_value(&x.spec),
    }
    .unwrap_or_default()
}

/// Leaf differences between two JSON values, as `path: old -> new`.
fn json_diff(path: &str, old: &serde_json::Value, new: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let null = Value::Null;
                json_diff(&format!("{path}.{k}"), a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null), out);
            }
        }
        (a, b) if a != b => out.push(format!("{path}: {a} -> {b}")),
        _ => {}
    }
}

fn lake_weakening(old: &DataLake, new: &DataLake) -> Vec<String> {
    let (o, n) = (&old.spec, &new.spec);
    let mut w = Vec::new();
    if o.access_logs && !n.access_logs {
        w.push("spec.accessLogs: server access logging turned off".to_string());
    }
    if o.audit.trail && !n.audit.trail {
        w.push("spec.audit.trail: the audit trail is removed".to_string());
    }
    if o.audit.trail && n.audit.trail {
        let (oa, na) = (&o.audit, &n.audit);
        if n.audit.retention_days < o.audit.retention_days || (oa.mode == Compliance && na.mode != Compliance) {
            w.push(format!(
                "spec.audit: audit bucket retention {} {} days -> {} {} days{}",
                oa.mode.as_str(),
                oa.retention_days,
                na.mode.as_str(),
                na.retention_days,
                if oa.mode == Compliance { " (refused: COMPLIANCE is never shortened or relaxed)" } else { "" }
            ));
        }
        if na.log_retention_days < oa.log_retention_days {
            w.push(format!(
                "spec.audit.logRetentionDays: trail logs kept {} -> {} days",
                oa.log_retention_days, na.log_retention_days
            ));
        }
        if oa.management_events != Some(false) && na.management_events == Some(false) {
            w.push(
                "spec.audit.managementEvents: false: the lake trail stops recording management events even without an account trail"
                    .to_string(),
            );
        }
    }
    if o.deletion_policy == DeletionPolicy::Retain && n.deletion_policy == DeletionPolicy::Delete {
        w.push(
            "spec.deletionPolicy: Retain -> Delete (deleting the DataLake would delete its empty resources)"
                .to_string(),
        );
    }
    if n.lifecycle.noncurrent_version_expiration_days < o.lifecycle.noncurrent_version_expiration_days {
        w.push(format!(
            "spec.lifecycle.noncurrentVersionExpirationDays: noncurrent versions kept {} -> {} days",
            o.lifecycle.noncurrent_version_expiration_days, n.lifecycle.noncurrent_version_expiration_days
        ));
    }
    if o.encryption.key_arn != n.encryption.key_arn {
        w.push("spec.encryption.keyArn: the lake key changes".to_string());
    }
    for z in &o.zones {
        if !n.zones.iter().any(|x| x.name == z.name) {
            w.push(format!("spec.zones: zone {:?} removed (its bucket is no longer managed)", z.name));
        }
    }
    w
}

fn policy_weakening(old: &BackupPolicy, new: &BackupPolicy) -> Vec<String> {
    let mut w: Vec<String> = new.forbidden_changes(&old.spec).into_iter().map(|(p, m)| format!("{p}: {m}")).collect();
    w.extend(new.downgrades_from(&old.spec).into_iter().map(|(p, m)| format!("{p}: {m}")));
    w
}

/// Compares the base and head manifest sets.
pub fn compare(base: &[Document], head: &[Document]) -> Vec<ManifestChange> {
    let (b, h) = (index(base), index(head));
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&Key> = b.keys().chain(h.keys()).collect();
    for key in keys {
        let (kind, namespace, name) = key.clone();
        let entry = |change, fields, weakens| ManifestChange {
            kind,
            namespace: namespace.clone(),
            name: name.clone(),
            change,
            fields,
            weakens,
        };
        match (b.get(key), h.get(key)) {
            (None, Some(new)) => {
                // A new baseline's suppressions accept risks from the start.
                let weakens = match new {
                    Object::SecurityBaseline(n) => n.weakening_from(None),
                    _ => Vec::new(),
                };
                out.push(entry("added", Vec::new(), weakens));
            }
            (Some(old), None) => {
                let weakens = match old {
                    Object::BackupPolicy(_) => vec![
                        "the BackupPolicy is deleted (retention, replication and table protection stop being enforced)"
                            .into(),
                    ],
                    // Deleting a baseline leaves every service running, so nothing weakens.
                    Object::DataLake(l) if l.spec.deletion_policy == DeletionPolicy::Delete => {
                        vec!["the DataLake is deleted with deletionPolicy: Delete (empty resources are deleted)".into()]
                    }
                    _ => Vec::new(),
                };
                out.push(entry("removed", Vec::new(), weakens));
            }
            (Some(old), Some(new)) => {
                let mut fields = Vec::new();
                json_diff("spec", &spec_json(old), &spec_json(new), &mut fields);
                if fields.is_empty() {
                    continue;
                }
                let weakens = match (old, new) {
                    (Object::DataLake(o), Object::DataLake(n)) => lake_weakening(o, n),
                    (Object::BackupPolicy(o), Object::BackupPolicy(n)) => policy_weakening(o, n),
                    (Object::SecurityBaseline(o), Object::SecurityBaseline(n)) => n.weakening_from(Some(o)),
                    (Object::EtlPipeline(o), Object::EtlPipeline(n)) => n.weakening_from(o),
                    _ => Vec::new(),
                };
                out.push(entry("changed", fields, weakens));
            }
            (None, None) => {}
        }
    }
    out
}

/// Text or markdown rendering of a manifest comparison.
pub fn render(changes: &[ManifestChange], markdown: bool) -> String {
    use std::fmt::Write as _;
    let weakening: usize = changes.iter().map(|c| c.weakens.len()).sum();
    let mut out = String::new();
    let summary = format!(
        "{} object(s) added, {} removed, {} changed; {weakening} change(s) weaken protection",
        changes.iter().filter(|c| c.change == "added").count(),
        changes.iter().filter(|c| c.change == "removed").count(),
        changes.iter().filter(|c| c.change == "changed").count(),
    );
    if markdown {
        let _ = writeln!(out, "**lakeops plan --base**: {summary}");
        if weakening > 0 {
            out.push_str("\n> [!WARNING]\n> **These changes weaken protection.** Review them before approving.\n");
            for c in changes {
                for w in &c.weakens {
                    let _ = writeln!(out, "> - {} {}/{}: {w}", c.kind, c.namespace, c.name);
                }
            }
        }
        for c in changes {
            let _ =
                write!(out, "\n<details><summary>{} {}/{}: {}</summary>\n\n", c.kind, c.namespace, c.name, c.change);
            for f in &c.fields {
                let _ = writeln!(out, "- `{}`", f.replace('`', "'"));
            }
            out.push_str("\n</details>\n");
        }
    } else {
        for c in changes {
            let _ = writeln!(out, "{} {}/{}: {}", c.kind, c.namespace, c.name, c.change);
            for f in &c.fields {
                let _ = writeln!(out, "  ~ {f}");
            }
            for w in &c.weakens {
                let _ = writeln!(out, "  ! weakens protection: {w}");
            }
        }
        let _ = writeln!(out, "\nManifests: {summary}.");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(yaml: &str) -> Vec<Document> {
        let mut loaded = crate::manifests::Loaded::new("team-a");
        crate::manifests::parse_stream("m.yaml", yaml, &mut loaded);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        loaded.documents
    }

    const BASE: &str = "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {name: sales}\nspec: {region: eu-west-1, zones: [{name: raw}, {name: curated}], audit: {trail: true}}\n---\napiVersion: lakeops.dev/v1alpha1\nkind: BackupPolicy\nmetadata: {name: backup}\nspec: {dataLakeRef: {name: sales}, retention: {mode: COMPLIANCE, days: 30}, replication: {region: eu-central-1}}\n";

    #[test]
    fn an_unchanged_tree_has_no_changes() {
        assert_eq!(compare(&docs(BASE), &docs(BASE)), vec![]);
    }

    #[test]
    fn weakening_edits_are_named_with_old_and_new_values() {
        let head = BASE
            .replace("audit: {trail: true}", "audit: {trail: false}, accessLogs: false")
            .replace("days: 30", "days: 7")
            .replace(", replication: {region: eu-central-1}", "");
        let changes = compare(&docs(BASE), &docs(&head));
        let lake = changes.iter().find(|c| c.kind == "DataLake").expect("lake changed");
        assert!(lake.fields.contains(&"spec.audit.trail: true -> false".to_string()), "{:?}", lake.fields);
        assert!(lake.weakens.iter().any(|w| w.starts_with("spec.accessLogs")));
        assert!(lake.weakens.iter().any(|w| w.starts_with("spec.audit.trail")));
        let policy = changes.iter().find(|c| c.kind == "BackupPolicy").expect("policy changed");
        assert!(
            policy.weakens.iter().any(|w| w.contains("COMPLIANCE retention can never be shortened")),
            "{:?}",
            policy.weakens
        );
        assert!(
            policy.weakens.iter().any(|w| w.contains("replication to eu-central-1 removed")),
            "{:?}",
            policy.weakens
        );
        let text = render(&changes, false);
        assert!(
            text.ends_with("Manifests: 0 object(s) added, 0 removed, 2 changed; 5 change(s) weaken protection.\n"),
            "{text}"
        );
    }

    #[test]
    fn shorter_audit_retention_and_management_events_off_are_weakenings() {
        let base = BASE.replace("audit: {trail: true}", "audit: {trail: true, mode: COMPLIANCE, retentionDays: 400}");
        let head = BASE.replace(
            "audit: {trail: true}",
            "audit: {trail: true, mode: COMPLIANCE, retentionDays: 30, logRetentionDays: 90, managementEvents: false}",
        );
        let changes = compare(&docs(&base), &docs(&head));
        let lake = changes.iter().find(|c| c.kind == "DataLake").expect("lake changed");
        assert_eq!(lake.weakens.len(), 3, "{:?}", lake.weakens);
        assert!(lake.weakens[0].contains("COMPLIANCE 400 days -> COMPLIANCE 30 days (refused"), "{:?}", lake.weakens);
        assert!(lake.weakens[1].contains("trail logs kept 365 -> 90 days"), "{:?}", lake.weakens);
        assert!(lake.weakens[2].starts_with("spec.audit.managementEvents: false"), "{:?}", lake.weakens);
    }

    #[test]
    fn a_shorter_or_uncopied_or_removed_catalog_backup_is_named_as_weakening() {
        let with = |backup: &str| {
            BASE.replace(
                "replication: {region: eu-central-1}}",
                &format!("replication: {{region: eu-central-1}}, tables: {{backup: {backup}}}}}"),
            )
        };
        let base = with("{retentionDays: 35, copy: {region: eu-central-1, retentionDays: 90}}");
        let weakens = |head: &str| {
            let changes = compare(&docs(&base), &docs(head));
            changes.iter().find(|c| c.kind == "BackupPolicy").map(|c| c.weakens.clone()).unwrap_or_default()
        };
        let shorter = weakens(&with("{retentionDays: 30, copy: {region: eu-central-1, retentionDays: 90}}"));
        assert!(shorter.iter().any(|w| w.contains("backup retention shortened from 35 to 30 days")), "{shorter:?}");
        let uncopied = weakens(&with("{retentionDays: 35}"));
        assert!(
            uncopied.iter().any(|w| w.contains("copy of the catalog backups to eu-central-1 removed")),
            "{uncopied:?}"
        );
        let off = weakens(BASE);
        assert!(off.iter().any(|w| w.contains("AWS Backup of the catalog tables turned off")), "{off:?}");
        assert!(off.iter().any(|w| w.contains("vault lock (30 days minimum)")), "{off:?}");
    }

    #[test]
    fn a_pipeline_with_less_logging_and_no_tracing_is_named_as_weakening() {
        let pipeline = |level: &str, tracing: bool| {
            format!(
                "{BASE}---\napiVersion: lakeops.dev/v1alpha1\nkind: EtlPipeline\nmetadata: {{name: orders}}\nspec: {{dataLakeRef: {{name: sales}}, trigger: {{schedule: rate(1 hour)}}, steps: [{{name: a, etlFunctionRef: {{name: f}}}}], logging: {{level: {level}}}, tracing: {tracing}}}\n"
            )
        };
        let changes = compare(&docs(&pipeline("ALL", true)), &docs(&pipeline("ERROR", false)));
        let p = changes.iter().find(|c| c.kind == "EtlPipeline").expect("pipeline changed");
        assert_eq!(p.weakens.len(), 2, "{:?}", p.weakens);
        assert!(p.weakens[0].starts_with("spec.logging.level: ALL -> ERROR"), "{:?}", p.weakens);
        assert!(p.weakens[1].starts_with("spec.tracing: true -> false"), "{:?}", p.weakens);
    }

    #[test]
    fn removing_a_backup_policy_weakens_protection() {
        let head = BASE.split("---").next().unwrap_or_default().to_string();
        let changes = compare(&docs(BASE), &docs(&head));
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].kind, changes[0].change), ("BackupPolicy", "removed"));
        assert!(!changes[0].weakens.is_empty());
        assert!(render(&changes, true).contains("> [!WARNING]"));
    }
}
