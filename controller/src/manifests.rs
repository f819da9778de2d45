//! Reading lakeops manifests from files and checking them offline, with the same rules the
//! controller applies: what `lakeops validate` runs.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use kube::ResourceExt;
use lakeops_crds::names::{GROUP, VERSION};
use lakeops_crds::references::{
    check_function_against_lake, check_pipeline_against_lake, check_pipeline_trigger_overlaps,
    check_policy_against_lake, check_trigger_overlaps, owning_policy,
};
use lakeops_crds::{
    BackupPolicy, DataLake, EtlFunction, EtlPipeline, FieldError, Findings, SecurityBaseline, Severity,
};
use serde::Serialize;

/// One lakeops object read from a file.
// Objects are read once per file and moved, never copied in bulk: boxing every variant
// would buy nothing but indirection in every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Object {
    DataLake(DataLake),
    EtlFunction(EtlFunction),
    BackupPolicy(BackupPolicy),
    /// Cluster-scoped: never given a namespace.
    SecurityBaseline(SecurityBaseline),
    EtlPipeline(EtlPipeline),
}

/// An object and where it was read.
#[derive(Clone, Debug)]
pub struct Document {
    pub file: String,
    /// First line of the YAML document (1-based).
    pub line: usize,
    pub object: Object,
}

/// A finding tied to a place in a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
    pub message: String,
    pub severity: &'static str,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = if self.severity == "warning" { "warning: " } else { "" };
        write!(
            f,
            "{}:{}: {sev}{}/{}/{}: {}: {}",
            self.file, self.line, self.kind, self.namespace, self.name, self.path, self.message
        )
    }
}

/// Everything read from a set of paths.
#[derive(Debug)]
pub struct Loaded {
    /// Namespace of objects whose manifest names none (as `kubectl apply -n` would use).
    pub default_namespace: String,
    pub documents: Vec<Document>,
    /// Documents that are not valid lakeops objects at all (bad YAML, wrong types).
    pub problems: Vec<Problem>,
}

impl Loaded {
    /// Nothing read yet.
    pub fn new(default_namespace: &str) -> Self {
        Self { default_namespace: default_namespace.to_string(), documents: Vec::new(), problems: Vec::new() }
    }
}

/// Reads every `.yaml`/`.yml` file under `paths` (`-` is standard input). Non-lakeops
/// kinds are skipped. Errors only for unreadable paths.
pub fn load(paths: &[PathBuf]) -> std::io::Result<Loaded> {
    load_in(paths, "default")
}

/// [`load`], with objects that name no namespace placed in `namespace`.
pub fn load_in(paths: &[PathBuf], namespace: &str) -> std::io::Result<Loaded> {
    let mut loaded = Loaded::new(namespace);
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            parse_stream("<stdin>", &text, &mut loaded);
            continue;
        }
        for file in yaml_files(path)? {
            let text = std::fs::read_to_string(&file)?;
            parse_stream(&file.display().to_string(), &text, &mut loaded);
        }
    }
    Ok(loaded)
}

fn yaml_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let p = entry.path();
        if p.is_dir() {
            out.extend(yaml_files(&p)?);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
    Ok(out)
}

/// Splits a multi-document YAML stream, remembering where each document starts.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    let mut content = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("---") && line[3..].trim().is_empty() {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
            content = false;
            continue;
        }
        // A document "starts" at its first line of content, not at leading comments.
        if !content && (line.trim().is_empty() || line.trim_start().starts_with('#')) {
            start = i + 2;
        } else {
            content = true;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push((start, current));
    docs.into_iter().filter(|(_, d)| !d.trim().is_empty()).collect()
}

/// Parses one stream of documents into `loaded`.
pub fn parse_stream(file: &str, text: &str, loaded: &mut Loaded) {
    for (line, doc) in split_documents(text) {
        let problem = |kind: &str, namespace: &str, name: &str, path: &str, message: String| Problem {
            file: file.to_string(),
            line,
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
            path: path.to_string(),
            message,
            severity: "error",
        };
        let value: serde_json::Value = match serde_saphyr::from_str(&doc) {
            Ok(v) => v,
            Err(e) => {
                loaded.problems.push(problem("?", "?", "?", "(document)", format!("not valid YAML: {e}")));
                continue;
            }
        };
        if value.is_null() {
            continue;
        }
        let api_version = value.get("apiVersion").and_then(|v| v.as_str()).unwrap_or_default();
        let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let meta = value.get("metadata");
        let name = meta.and_then(|m| m.get("name")).and_then(|v| v.as_str()).unwrap_or("?").to_string();
        let namespace = meta
            .and_then(|m| m.get("namespace"))
            .and_then(|v| v.as_str())
            .unwrap_or(&loaded.default_namespace)
            .to_string();
        let Some(version) = api_version.strip_prefix(&format!("{GROUP}/")) else { continue };
        if version != VERSION {
            loaded.problems.push(problem(
                &kind,
                &namespace,
                &name,
                "apiVersion",
                format!("unknown version {api_version:?}; this lakeops serves {GROUP}/{VERSION}"),
            ));
            continue;
        }
        let object = match kind.as_str() {
            // From the value as kubectl would read it (YAML 1.1: a bare `N` or `on` is a
            // bool), with the failing field's path named.
            "DataLake" => typed(&value).map(Object::DataLake),
            "EtlFunction" => typed(&value).map(Object::EtlFunction),
            "BackupPolicy" => typed(&value).map(Object::BackupPolicy),
            "SecurityBaseline" => typed(&value).map(Object::SecurityBaseline),
            "EtlPipeline" => typed(&value).map(Object::EtlPipeline),
            other => {
                loaded.problems.push(problem(
                    other,
                    &namespace,
                    &name,
                    "kind",
                    format!("{GROUP} has no kind {other:?} (DataLake, EtlFunction, BackupPolicy, SecurityBaseline, EtlPipeline)"),
                ));
                continue;
            }
        };
        // Unknown fields parse (and the API server prunes them): report them by name.
        if let Some(spec) = value.get("spec").and_then(|s| serde_json::to_value(s).ok()) {
            for (path, message) in crate::schema::unknown_fields(&kind, &spec) {
                loaded.problems.push(problem(&kind, &namespace, &name, &path, message));
            }
        }
        match object {
            Ok(mut object) => {
                set_default_namespace(&mut object, &namespace);
                loaded.documents.push(Document { file: file.to_string(), line, object });
            }
            Err(e) => {
                let (path, message) = split_serde_error(&format!("{}: {}", e.path(), e.inner()));
                loaded.problems.push(problem(&kind, &namespace, &name, &path, message));
            }
        }
    }
}

/// `value` as a `T`; an error names the path of the field that failed.
fn typed<T: serde::de::DeserializeOwned>(
    value: &serde_json::Value,
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    serde_path_to_error::deserialize(value)
}

fn set_default_namespace(object: &mut Object, namespace: &str) {
    let meta = match object {
        Object::DataLake(o) => &mut o.metadata,
        Object::EtlFunction(o) => &mut o.metadata,
        Object::BackupPolicy(o) => &mut o.metadata,
        Object::EtlPipeline(o) => &mut o.metadata,
        Object::SecurityBaseline(_) => return,
    };
    meta.namespace.get_or_insert_with(|| namespace.to_string());
}

/// The parser says `spec.zones[0]: missing field `name``; keep the path apart.
fn split_serde_error(msg: &str) -> (String, String) {
    let (path, rest) = match msg.split_once(": ") {
        Some((path, rest)) if path.starts_with("spec") || path.starts_with("metadata") => (path.to_string(), rest),
        _ => return ("(document)".to_string(), msg.to_string()),
    };
    // Name the missing field itself, as the API server does.
    let missing = rest.strip_prefix("missing field `").and_then(|r| r.split_once('`')).map(|(field, _)| field);
    match missing {
        Some(field) => (format!("{path}.{field}"), rest.to_string()),
        None => (path, rest.to_string()),
    }
}

impl Object {
    fn identity(&self) -> (&'static str, String, String) {
        match self {
            Object::DataLake(o) => ("DataLake", o.namespace().unwrap_or_default(), o.name_any()),
            Object::EtlFunction(o) => ("EtlFunction", o.namespace().unwrap_or_default(), o.name_any()),
            Object::BackupPolicy(o) => ("BackupPolicy", o.namespace().unwrap_or_default(), o.name_any()),
            Object::SecurityBaseline(o) => ("SecurityBaseline", String::new(), o.name_any()),
            Object::EtlPipeline(o) => ("EtlPipeline", o.namespace().unwrap_or_default(), o.name_any()),
        }
    }
}

/// Checks every document on its own and against the others in the set.
pub fn check(documents: &[Document]) -> Vec<Problem> {
    let lakes: BTreeMap<(String, String), &DataLake> = documents
        .iter()
        .filter_map(|d| match &d.object {
            Object::DataLake(l) => Some(((l.namespace().unwrap_or_default(), l.name_any()), l)),
            _ => None,
        })
        .collect();
    let functions: Vec<&EtlFunction> =
        documents.iter().filter_map(|d| if let Object::EtlFunction(f) = &d.object { Some(f) } else { None }).collect();
    let policies: Vec<&BackupPolicy> =
        documents.iter().filter_map(|d| if let Object::BackupPolicy(p) = &d.object { Some(p) } else { None }).collect();

    let baselines: Vec<&SecurityBaseline> = documents
        .iter()
        .filter_map(|d| if let Object::SecurityBaseline(b) = &d.object { Some(b) } else { None })
        .collect();

    let mut out = Vec::new();
    for doc in documents {
        let mut findings = Findings::default();
        let lake_of = |ns: Option<String>, name: &str| lakes.get(&(ns.unwrap_or_default(), name.to_string())).copied();
        match &doc.object {
            Object::DataLake(l) => findings.extend(l.validate()),
            Object::EtlFunction(f) => {
                findings.extend(f.validate());
                findings.extend(check_trigger_overlaps(f, functions.iter().copied()));
                match lake_of(f.namespace(), &f.spec.data_lake_ref.name) {
                    Some(lake) => findings.extend(check_function_against_lake(f, lake)),
                    None => findings.0.push(missing_lake(&f.spec.data_lake_ref.name)),
                }
            }
            Object::EtlPipeline(p) => {
                findings.extend(p.validate());
                findings.extend(check_pipeline_trigger_overlaps(p, functions.iter().copied()));
                match lake_of(p.namespace(), &p.spec.data_lake_ref.name) {
                    Some(lake) => findings.extend(check_pipeline_against_lake(p, lake, functions.iter().copied())),
                    None => findings.0.push(missing_lake(&p.spec.data_lake_ref.name)),
                }
            }
            Object::SecurityBaseline(b) => {
                findings.extend(b.validate());
                // Files carry no account; one set of manifests targets one account, so two
                // baselines for one region conflict (the first in reading order keeps it).
                if let Some(first) = baselines.iter().find(|o| o.spec.region == b.spec.region)
                    && first.name_any() != b.name_any()
                {
                    findings.0.push(FieldError::error(
                        "spec.region",
                        format!(
                            "SecurityBaseline {:?} already covers region {}; an account has one SecurityBaseline per region",
                            first.name_any(),
                            b.spec.region
                        ),
                    ));
                }
            }
            Object::BackupPolicy(p) => {
                findings.extend(p.validate());
                match lake_of(p.namespace(), &p.spec.data_lake_ref.name) {
                    Some(lake) => findings.extend(check_policy_against_lake(p, lake)),
                    None => findings.0.push(missing_lake(&p.spec.data_lake_ref.name)),
                }
                let same: Vec<&BackupPolicy> = policies
                    .iter()
                    .copied()
                    .filter(|o| o.namespace() == p.namespace() && o.spec.data_lake_ref == p.spec.data_lake_ref)
                    .collect();
                // Files carry no creation time; the first in reading order owns the lake.
                if same.len() > 1
                    && let Some(first) = owning_policy(same.iter().copied().take(1))
                    && first.name_any() != p.name_any()
                {
                    findings.0.push(FieldError::error(
                        "spec.dataLakeRef.name",
                        format!(
                            "DataLake {:?} is already protected by BackupPolicy {:?}; a lake has one BackupPolicy",
                            p.spec.data_lake_ref.name,
                            first.name_any()
                        ),
                    ));
                }
            }
        }
        let (kind, namespace, name) = doc.object.identity();
        out.extend(findings.0.into_iter().map(|e| Problem {
            file: doc.file.clone(),
            line: doc.line,
            kind: kind.to_string(),
            namespace: namespace.clone(),
            name: name.clone(),
            path: e.path,
            message: e.message,
            severity: if e.severity == Severity::Error { "error" } else { "warning" },
        }));
    }
    out
}

fn missing_lake(name: &str) -> FieldError {
    // Offline, a lake outside the files may well exist in the cluster: a warning, not an error.
    FieldError::warning("spec.dataLakeRef.name", format!("DataLake {name:?} is not among the files checked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_starting_lines_and_other_kinds_are_skipped() {
        let text = "# a comment\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\napiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {name: l, namespace: team}\nspec:\n  region: eu-west-1\n  zones: [{name: raw}]\n";
        let mut loaded = Loaded::new("default");
        parse_stream("f.yaml", text, &mut loaded);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert_eq!(loaded.documents.len(), 1);
        assert_eq!(loaded.documents[0].line, 6);
    }

    #[test]
    fn a_second_baseline_for_a_region_is_refused_and_a_baseline_gets_no_namespace() {
        let doc = |name: &str, region: &str| {
            format!(
                "apiVersion: lakeops.dev/v1alpha1\nkind: SecurityBaseline\nmetadata: {{name: {name}}}\nspec: {{region: {region}, alerts: {{}}}}\n---\n"
            )
        };
        let text = [doc("first", "eu-west-1"), doc("second", "eu-west-1"), doc("other", "us-east-1")].concat();
        let mut loaded = Loaded::new("default");
        parse_stream("f.yaml", &text, &mut loaded);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert!(loaded.documents.iter().all(|d| d.object.identity().1.is_empty()), "cluster-scoped");
        let problems = check(&loaded.documents);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!((problems[0].name.as_str(), problems[0].path.as_str()), ("second", "spec.region"));
        assert!(problems[0].message.contains("\"first\" already covers region eu-west-1"), "{}", problems[0].message);
    }

    #[test]
    fn unknown_fields_are_problems_naming_the_field() {
        let text = "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {name: l, namespace: team}\nspec:\n  region: eu-west-1\n  zones: [{name: raw}]\n  objectLok: false\n";
        let mut loaded = Loaded::new("default");
        parse_stream("f.yaml", text, &mut loaded);
        assert_eq!(loaded.documents.len(), 1, "the object still parses");
        let p = &loaded.problems[0];
        assert_eq!((p.path.as_str(), p.severity), ("spec.objectLok", "error"));
        assert!(p.message.contains("did you mean \"objectLock\""), "{}", p.message);
    }

    #[test]
    fn a_bare_n_is_read_as_kubectl_reads_it_and_named() {
        // kubectl's YAML 1.1 parser sends a bare N as the boolean false, which the API server
        // refuses; `lakeops validate` says so before it gets that far.
        let doc = |key_type: &str| {
            format!(
                "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {{name: l}}\nspec:\n  region: eu-west-1\n  zones: [{{name: raw}}]\n  catalog:\n    tables: [{{name: t, partitionKey: {{name: id, type: {key_type}}}}}]\n"
            )
        };
        let mut loaded = Loaded::new("default");
        parse_stream("f.yaml", &doc("N"), &mut loaded);
        let p = &loaded.problems[0];
        assert_eq!(p.path, "spec.catalog.tables[0].partitionKey.type");
        assert!(p.message.contains("boolean `false`"), "{}", p.message);
        let mut loaded = Loaded::new("default");
        parse_stream("f.yaml", &doc("\"N\""), &mut loaded);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    }

    #[test]
    fn type_errors_name_the_field() {
        let text = "apiVersion: lakeops.dev/v1alpha1\nkind: EtlFunction\nmetadata: {name: f}\nspec:\n  dataLakeRef: {name: l}\n  source: {zone: raw, prefix: in/}\n  destination: {zone: cur, prefix: out/}\n  code: {s3Bucket: code-bucket, s3Key: f.zip}\n  runtime: python2.7\n  handler: app.handler\n";
        let mut loaded = Loaded::new("default");
        parse_stream("f.yaml", text, &mut loaded);
        let p = &loaded.problems[0];
        assert_eq!(p.path, "spec.runtime");
        assert!(p.message.contains("unknown variant `python2.7`"), "{}", p.message);
    }
}
