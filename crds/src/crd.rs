//! CRD generation, with the CEL rules newer clusters enforce on top of the schema.
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, ValidationRule,
};
use kube::CustomResourceExt;

use crate::{BackupPolicy, DataLake, EtlFunction, EtlPipeline, SecurityBaseline};

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
    vec![datalake, etl, backup, baseline, EtlPipeline::crd()]
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

/// kubectl and Helm read YAML through go-yaml v2, a YAML 1.1 parser: a bare `N`, `y`, `on`,
/// `~` or `0x1` is a bool, null or number there. The serializer quotes every such string,
/// so an enum value such as the key type `N` reaches the API server as the string it is.
fn to_yaml(crds: &[CustomResourceDefinition]) -> String {
    crds.iter()
        .map(|c| serde_saphyr::to_string(c).expect("a CRD always serialises to YAML"))
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

    /// Every string of the generated YAML is still a string when read the way kubectl and
    /// Helm read it. serde-saphyr's untyped reading takes YAML 1.1 booleans (`y`, `N`, `on`,
    /// ...) as bools and `legacy_octal_numbers` adds 1.1's octal; nulls and numbers it reads
    /// as both versions do: the whole document then equals the CRDs' JSON.
    fn read_as_yaml_1_1(yaml: &str) -> Vec<serde_json::Value> {
        let options = serde_saphyr::options! { legacy_octal_numbers: true };
        serde_saphyr::from_multiple_with_options(yaml, options).expect("the generated YAML parses")
    }

    #[test]
    fn generated_crds_read_back_identically_under_yaml_1_1() {
        for (all, yaml) in [(crds(), crds_yaml()), (crds_without_cel(), crds_yaml_without_cel())] {
            let expected: Vec<_> = all.iter().map(|c| serde_json::to_value(c).expect("json")).collect();
            assert_eq!(read_as_yaml_1_1(&yaml), expected);
        }
        let yaml = crds_yaml();
        assert!(yaml.contains("- 'N'") || yaml.contains("- \"N\""), "the key type N is quoted");
    }

    #[test]
    fn strings_yaml_1_1_reads_as_bool_number_or_null_are_quoted() {
        let tricky = [
            "N",
            "n",
            "Y",
            "y",
            "yes",
            "No",
            "ON",
            "off",
            "true",
            "False",
            "~",
            "null",
            "Null",
            "",
            "1",
            "-1",
            "010",
            "0x1",
            "0o7",
            "0b1",
            "1e3",
            "1.5",
            ".5",
            ".inf",
            "-.Inf",
            ".NaN",
            "1_000",
            "1:20",
            "190:20:30.15",
        ];
        let mut crd = crds().remove(0);
        let schema = crd.spec.versions[0].schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()).expect("schema");
        schema.enum_ = Some(
            tricky
                .iter()
                .map(|t| k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSON(serde_json::json!(t)))
                .collect(),
        );
        let yaml = to_yaml(std::slice::from_ref(&crd));
        let read = read_as_yaml_1_1(&yaml);
        let values = &read[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["enum"];
        assert_eq!(values, &serde_json::json!(tricky), "{yaml}");
        // Base-60 numbers (`1:20`) are YAML 1.1 only and not read as numbers above: check the
        // quotes themselves.
        for t in tricky {
            assert!(yaml.contains(&format!("- '{t}'\n")) || yaml.contains(&format!("- \"{t}\"\n")), "{t} unquoted");
        }
    }

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
                "securitybaselines.lakeops.dev",
                "etlpipelines.lakeops.dev"
            ]
        );
        let scopes: Vec<_> = all.iter().map(|c| c.spec.scope.as_str()).collect();
        assert_eq!(scopes, ["Namespaced", "Namespaced", "Namespaced", "Cluster", "Namespaced"]);
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
            [
                vec!["dl".to_string()],
                vec!["etl".to_string()],
                vec!["bkp".to_string()],
                vec!["sbl".to_string()],
                vec!["etlp".to_string()]
            ]
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
