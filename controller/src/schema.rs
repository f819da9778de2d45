//! Fields a manifest sets that the CRD schema does not know. Server-side apply refuses
//! them, but a plain create or update (client-side `kubectl apply`, most API clients)
//! prunes them without a word, so a misspelt setting (`retension:`) would merge, apply
//! "cleanly" and do nothing. `lakeops validate` reports each one, whatever the delivery,
//! walking the same OpenAPI schema the cluster enforces, with the closest known name.
use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

/// The `spec` schema of each kind, from the generated CRDs.
fn spec_schemas() -> &'static BTreeMap<String, JSONSchemaProps> {
    static SCHEMAS: OnceLock<BTreeMap<String, JSONSchemaProps>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        lakeops_crds::crds()
            .into_iter()
            .filter_map(|crd| {
                let kind = crd.spec.names.kind.clone();
                let root = crd.spec.versions.into_iter().next()?.schema?.open_api_v3_schema?;
                let spec = root.properties?.remove("spec")?;
                Some((kind, spec))
            })
            .collect()
    })
}

/// `(path, message)` for every field of `spec` that the schema of `kind` does not define.
pub fn unknown_fields(kind: &str, spec: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(schema) = spec_schemas().get(kind) {
        walk(schema, spec, "spec", &mut out);
    }
    out
}

fn walk(schema: &JSONSchemaProps, value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let Some(props) = &schema.properties {
                for (key, v) in map {
                    match props.get(key) {
                        Some(s) => walk(s, v, &format!("{path}.{key}"), out),
                        None => out.push((format!("{path}.{key}"), unknown_message(key, props.keys()))),
                    }
                }
            } else if let Some(JSONSchemaPropsOrBool::Schema(s)) = &schema.additional_properties {
                for (key, v) in map {
                    walk(s, v, &format!("{path}.{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(s)) = &schema.items {
                for (i, v) in items.iter().enumerate() {
                    walk(s, v, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn unknown_message<'a>(key: &str, known: impl Iterator<Item = &'a String>) -> String {
    let known: Vec<&String> = known.collect();
    let closest = known.iter().map(|k| (edit_distance(&key.to_ascii_lowercase(), &k.to_ascii_lowercase()), *k)).min();
    let hint = match closest {
        // Close enough to be a typo of it.
        Some((d, k)) if d <= 2.max(key.len() / 4) => format!("; did you mean {k:?}?"),
        _ => format!(" (known: {})", known.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")),
    };
    format!(
        "unknown field {key:?}: not in the schema, so the API server drops it (or refuses a server-side apply){hint}"
    )
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_field_is_named_with_its_likely_meaning() {
        let spec = serde_json::json!({
            "dataLakeRef": { "name": "sales" },
            "retension": { "mode": "COMPLIANCE", "days": 30 },
            "tables": { "pointInTimeRecovery": true, "replicaRegion": ["eu-west-2"] }
        });
        let found = unknown_fields("BackupPolicy", &spec);
        assert_eq!(
            found,
            [
                (
                    "spec.retension".to_string(),
                    "unknown field \"retension\": not in the schema, so the API server drops it (or refuses a server-side apply); did you mean \"retention\"?"
                        .to_string()
                ),
                (
                    "spec.tables.replicaRegion".to_string(),
                    "unknown field \"replicaRegion\": not in the schema, so the API server drops it (or refuses a server-side apply); did you mean \"replicaRegions\"?"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn list_items_and_free_form_maps_are_walked_and_known_fields_pass() {
        let spec = serde_json::json!({
            "region": "eu-west-1",
            "zones": [{ "name": "raw" }, { "name": "curated", "lifecycel": {} }],
            "tags": { "anything-goes": "here" }
        });
        let found = unknown_fields("DataLake", &spec);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "spec.zones[1].lifecycel");
        assert!(found[0].1.contains("did you mean \"lifecycle\""), "{}", found[0].1);
    }

    #[test]
    fn the_distance_counts_edits() {
        assert_eq!(edit_distance("retension", "retention"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
