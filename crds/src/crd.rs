//! CRD generation, with the CEL rules newer clusters enforce on top of the schema.
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, ValidationRule,
};
use kube::CustomResourceExt;

use crate::{BackupPolicy, DataLake, EtlFunction, SecurityBaseline};

/// Every CRD lakeops serves, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut datalake = DataLake::crd();
    with_spec(&mut datalake, |spec| {
        rule(
            spec,
            "bucketPrefix",
            "self == oldSelf",
            "bucketPrefix is immutable: the buckets already exist under the old prefix",
        );
        rule(
            spec,
            "objectLock",
            "self == oldSelf",
            "objectLock is immutable: S3 enables Object Lock only when a bucket is created",
        );
    });
    let etl = EtlFunction::crd();
    let mut backup = BackupPolicy::crd();
    with_spec(&mut backup, |spec| {
        rule(
            spec,
            "retention",
            "oldSelf.mode != 'COMPLIANCE' || (self.mode == 'COMPLIANCE' && self.days >= oldSelf.days)",
            "COMPLIANCE retention can never be shortened or relaxed",
        );
    });
    let mut baseline = SecurityBaseline::crd();
    with_spec(&mut baseline, |spec| {
        rule(
            spec,
            "region",
            "self == oldSelf",
            "region is immutable: create another SecurityBaseline for another region",
        );
    });
    vec![datalake, etl, backup, baseline]
}

/// The CRDs without CEL rules, for API servers before 1.25: they reject
/// `x-kubernetes-validations` in a server-side apply, and kubectl refuses it client-side.
/// Nothing is lost in enforcement: the controller checks every one of these rules itself.
pub fn crds_without_cel() -> Vec<CustomResourceDefinition> {
    fn strip(s: &mut JSONSchemaProps) {
        s.x_kubernetes_validations = None;
        for p in s.properties.iter_mut().flat_map(|m| m.values_mut()) {
            strip(p);
        }
    }
    let mut all = crds();
    for crd in &mut all {
        for v in &mut crd.spec.versions {
            if let Some(schema) = v.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
                strip(schema);
            }
        }
    }
    all
}

/// All CRDs as one multi-document YAML stream (what `lakeops crds` prints and the chart ships).
pub fn crds_yaml() -> String {
    to_yaml(&crds())
}

/// [`crds_without_cel`] as YAML (`lakeops crds --without-cel`).
pub fn crds_yaml_without_cel() -> String {
    to_yaml(&crds_without_cel())
}

fn to_yaml(crds: &[CustomResourceDefinition]) -> String {
    crds.iter()
        .map(|c| serde_yaml::to_string(c).expect("a CRD always serialises to YAML"))
        .map(|y| format!("---\n{y}"))
        .collect()
}

fn with_spec(crd: &mut CustomResourceDefinition, f: impl FnOnce(&mut JSONSchemaProps)) {
    let spec = crd
        .spec
        .versions
        .first_mut()
        .and_then(|v| v.schema.as_mut())
        .and_then(|s| s.open_api_v3_schema.as_mut())
        .and_then(|s| s.properties.as_mut())
        .and_then(|p| p.get_mut("spec"));
    if let Some(spec) = spec {
        f(spec);
    }
}

fn rule(spec: &mut JSONSchemaProps, field: &str, rule: &str, message: &str) {
    let Some(prop) = spec.properties.as_mut().and_then(|p| p.get_mut(field)) else {
        panic!("CRD has no spec field {field}: the CEL rule refers to a renamed field");
    };
    prop.x_kubernetes_validations.get_or_insert_with(Vec::new).push(ValidationRule {
        rule: rule.to_string(),
        message: Some(message.to_string()),
        ..ValidationRule::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cel_free_variant_differs_only_by_its_rules() {
        let with = crds_yaml();
        let without = crds_yaml_without_cel();
        assert!(with.contains("x-kubernetes-validations") && !without.contains("x-kubernetes-validations"));
        assert!(without.contains("bucketPrefix") && without.contains("additionalPrinterColumns"));
    }

    #[test]
    fn crds_carry_names_columns_and_status_subresource() {
        let all = crds();
        let names: Vec<_> = all.iter().map(|c| c.metadata.name.clone().unwrap_or_default()).collect();
        assert_eq!(
            names,
            [
                "datalakes.lakeops.dev",
                "etlfunctions.lakeops.dev",
                "backuppolicies.lakeops.dev",
                "securitybaselines.lakeops.dev"
            ]
        );
        let scopes: Vec<_> = all.iter().map(|c| c.spec.scope.as_str()).collect();
        assert_eq!(scopes, ["Namespaced", "Namespaced", "Namespaced", "Cluster"]);
        for crd in &all {
            assert_eq!(crd.spec.names.categories.as_deref(), Some(&["lakeops".to_string()][..]));
            let version = &crd.spec.versions[0];
            assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
            let columns: Vec<_> =
                version.additional_printer_columns.iter().flatten().map(|c| c.name.as_str()).collect();
            assert_eq!(&columns[..2], ["Ready", "Reason"]);
        }
        let short: Vec<_> = all.iter().map(|c| c.spec.names.short_names.clone().unwrap_or_default()).collect();
        assert_eq!(
            short,
            [vec!["dl".to_string()], vec!["etl".to_string()], vec!["bkp".to_string()], vec!["sbl".to_string()]]
        );
    }

    #[test]
    fn every_schema_field_has_a_description() {
        fn walk(path: &str, s: &JSONSchemaProps, missing: &mut Vec<String>) {
            for (name, prop) in s.properties.iter().flatten() {
                let p = format!("{path}.{name}");
                if prop.description.as_deref().unwrap_or("").is_empty()
                    && !p.contains(".conditions.")
                    && !p.contains(".metadata")
                {
                    missing.push(p.clone());
                }
                walk(&p, prop, missing);
            }
            if let Some(
                k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(
                    items,
                ),
            ) = &s.items
            {
                walk(&format!("{path}[]"), items, missing);
            }
        }
        let mut missing = Vec::new();
        for crd in crds() {
            let root = crd.spec.versions[0]
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .cloned()
                .unwrap_or_default();
            for part in ["spec", "status"] {
                if let Some(p) = root.properties.as_ref().and_then(|p| p.get(part)) {
                    walk(&format!("{}.{part}", crd.spec.names.kind), p, &mut missing);
                }
            }
        }
        assert!(missing.is_empty(), "fields without a description: {missing:#?}");
    }
}
