//! Typed IAM policy documents (bucket policies, key policies, role policies), built from
//! structs and compared semantically, so formatting or ordering never shows as drift.
use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::Value;

/// Writes a one-element list as a plain string, the form AWS itself returns (and the
/// only form some emulators recognise for service principals and resources).
fn one_or_many<S: Serializer>(values: &[String], s: S) -> Result<S::Ok, S::Error> {
    match values {
        [one] => s.serialize_str(one),
        many => many.serialize(s),
    }
}

fn map_one_or_many<S: Serializer>(map: &BTreeMap<String, Vec<String>>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(map.len()))?;
    for (k, v) in map {
        match v.as_slice() {
            [one] => m.serialize_entry(k, one)?,
            many => m.serialize_entry(k, many)?,
        }
    }
    m.end()
}

fn conditions<S: Serializer>(c: &BTreeMap<String, BTreeMap<String, Vec<String>>>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    struct Inner<'a>(&'a BTreeMap<String, Vec<String>>);
    impl Serialize for Inner<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            map_one_or_many(self.0, s)
        }
    }
    let mut m = s.serialize_map(Some(c.len()))?;
    for (op, keys) in c {
        m.serialize_entry(op, &Inner(keys))?;
    }
    m.end()
}

/// A policy document.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyDocument {
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

/// Allow or Deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// One statement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: String,
    #[serde(rename = "Effect")]
    pub effect: Effect,
    /// Identity policies (attached to a role) name no principal: see [`Principal::none`].
    #[serde(rename = "Principal", skip_serializing_if = "Principal::is_none")]
    pub principal: Principal,
    #[serde(rename = "Action", serialize_with = "one_or_many")]
    pub actions: Vec<String>,
    /// Empty in trust policies, which apply to the role they are attached to.
    #[serde(rename = "Resource", serialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// operator -> condition key -> values.
    #[serde(rename = "Condition", skip_serializing_if = "BTreeMap::is_empty", serialize_with = "conditions")]
    pub condition: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// Who a statement applies to.
#[derive(Clone, Debug, PartialEq)]
pub enum Principal {
    /// `"*"`: only ever used in Deny statements.
    Anyone(String),
    /// `{"AWS": [...]}` or `{"Service": [...]}`.
    Named(BTreeMap<String, Vec<String>>),
}

impl Serialize for Principal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // `{"AWS": "*"}` means exactly what `"*"` means to AWS; the object form is also
            // what moto's policy checks can read (they crash on a bare string).
            Principal::Anyone(star) => map_one_or_many(&BTreeMap::from([("AWS".to_string(), vec![star.clone()])]), s),
            Principal::Named(map) => map_one_or_many(map, s),
        }
    }
}

impl Principal {
    /// No principal: the statement belongs to an identity policy.
    pub fn none() -> Self {
        Principal::Named(BTreeMap::new())
    }

    /// True for [`Principal::none`].
    pub fn is_none(&self) -> bool {
        matches!(self, Principal::Named(m) if m.is_empty())
    }

    /// Everyone; lakeops uses it only to deny.
    pub fn anyone() -> Self {
        Principal::Anyone("*".into())
    }

    /// An AWS service principal such as `logging.s3.amazonaws.com`.
    pub fn service(name: &str) -> Self {
        Principal::Named(BTreeMap::from([("Service".into(), vec![name.into()])]))
    }

    /// AWS account or role ARNs.
    pub fn aws(arns: &[String]) -> Self {
        Principal::Named(BTreeMap::from([("AWS".into(), arns.to_vec())]))
    }
}

impl Statement {
    /// A statement without conditions.
    pub fn new(sid: &str, effect: Effect, principal: Principal, actions: &[&str], resources: &[String]) -> Self {
        Self {
            sid: sid.into(),
            effect,
            principal,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            resources: resources.to_vec(),
            condition: BTreeMap::new(),
        }
    }

    /// Adds a condition `operator: { key: values }`.
    pub fn when(mut self, operator: &str, key: &str, values: &[&str]) -> Self {
        self.condition
            .entry(operator.into())
            .or_default()
            .insert(key.into(), values.iter().map(|v| v.to_string()).collect());
        self
    }
}

impl PolicyDocument {
    /// A 2012-10-17 document.
    pub fn new(statements: Vec<Statement>) -> Self {
        Self { version: "2012-10-17".into(), statements }
    }

    /// Compact JSON, as sent to AWS.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("policy documents always serialise")
    }

    /// True when `observed` (JSON from AWS) means the same as this document.
    pub fn matches_json(&self, observed: &str) -> bool {
        match serde_json::from_str::<Value>(observed) {
            Ok(v) => normalise(&v) == normalise(&serde_json::to_value(self).unwrap_or(Value::Null)),
            Err(_) => false,
        }
    }
}

/// A canonical form: single values become one-element lists, lists are sorted and
/// de-duplicated, statements are ordered by Sid, keys of condition blocks compare
/// case-insensitively as AWS treats them.
pub fn normalise(v: &Value) -> Value {
    fn list(v: &Value) -> Value {
        let mut items: Vec<Value> = match v {
            Value::Array(a) => a.iter().map(scalar).collect(),
            other => vec![scalar(other)],
        };
        items.sort_by_key(|a| a.to_string());
        items.dedup();
        Value::Array(items)
    }
    fn scalar(v: &Value) -> Value {
        match v {
            // AWS may return numbers and booleans in conditions as strings, or the reverse.
            Value::Bool(b) => Value::String(b.to_string()),
            Value::Number(n) => Value::String(n.to_string()),
            other => other.clone(),
        }
    }
    fn statement(s: &Value) -> Value {
        let Value::Object(map) = s else { return s.clone() };
        let mut out = serde_json::Map::new();
        for (k, v) in map {
            let nv = match k.as_str() {
                "Action" | "NotAction" | "Resource" | "NotResource" => list(v),
                "Principal" | "NotPrincipal" => match v {
                    Value::Object(p) => Value::Object(p.iter().map(|(k, v)| (k.clone(), list(v))).collect()),
                    // `"*"` and `{"AWS": "*"}` are the same principal.
                    Value::String(star) if star == "*" => serde_json::json!({ "AWS": ["*"] }),
                    other => other.clone(),
                },
                "Condition" => match v {
                    Value::Object(ops) => Value::Object(
                        ops.iter()
                            .map(|(op, keys)| {
                                let keys = match keys {
                                    Value::Object(m) => Value::Object(
                                        m.iter().map(|(k, v)| (k.to_ascii_lowercase(), list(v))).collect(),
                                    ),
                                    other => other.clone(),
                                };
                                (op.clone(), keys)
                            })
                            .collect(),
                    ),
                    other => other.clone(),
                },
                _ => v.clone(),
            };
            out.insert(k.clone(), nv);
        }
        Value::Object(out)
    }
    let Value::Object(doc) = v else { return v.clone() };
    let mut out = serde_json::Map::new();
    for (k, v) in doc {
        if k == "Id" {
            continue;
        }
        if k == "Statement" {
            let mut stmts: Vec<Value> = match v {
                Value::Array(a) => a.iter().map(statement).collect(),
                other => vec![statement(other)],
            };
            stmts.sort_by_key(|s| s.get("Sid").map(|x| x.to_string()).unwrap_or_default());
            out.insert(k.clone(), Value::Array(stmts));
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> PolicyDocument {
        PolicyDocument::new(vec![
            Statement::new(
                "DenyInsecureTransport",
                Effect::Deny,
                Principal::anyone(),
                &["s3:*"],
                &["arn:aws:s3:::b".into(), "arn:aws:s3:::b/*".into()],
            )
            .when("Bool", "aws:SecureTransport", &["false"]),
            Statement::new(
                "Root",
                Effect::Allow,
                Principal::aws(&["arn:aws:iam::123456789012:root".into()]),
                &["kms:*"],
                &["*".into()],
            ),
        ])
    }

    #[test]
    fn reordered_and_reshaped_json_is_the_same_policy() {
        let aws_form = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"Root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"},
            {"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*",
             "Resource":["arn:aws:s3:::b/*","arn:aws:s3:::b"],"Condition":{"Bool":{"aws:securetransport":false}}}]}"#;
        assert!(doc().matches_json(aws_form));
    }

    #[test]
    fn single_values_are_written_as_strings_as_aws_returns_them() {
        let json: Value = serde_json::from_str(&doc().to_json()).expect("json");
        assert_eq!(json["Statement"][1]["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
        assert_eq!(json["Statement"][1]["Action"], "kms:*");
        assert_eq!(json["Statement"][0]["Condition"]["Bool"]["aws:SecureTransport"], "false");
        assert!(json["Statement"][0]["Resource"].is_array());
    }

    #[test]
    fn identity_and_trust_statements_leave_out_principal_and_resource() {
        let identity = PolicyDocument::new(vec![Statement::new(
            "Read",
            Effect::Allow,
            Principal::none(),
            &["s3:GetObject"],
            &["arn:aws:s3:::b/*".into()],
        )]);
        let json: Value = serde_json::from_str(&identity.to_json()).expect("json");
        assert!(json["Statement"][0].get("Principal").is_none(), "{json}");
        let trust = PolicyDocument::new(vec![Statement::new(
            "S3Assumes",
            Effect::Allow,
            Principal::service("s3.amazonaws.com"),
            &["sts:AssumeRole"],
            &[],
        )]);
        let json: Value = serde_json::from_str(&trust.to_json()).expect("json");
        assert!(json["Statement"][0].get("Resource").is_none(), "{json}");
        assert!(trust.matches_json(&trust.to_json()) && identity.matches_json(&identity.to_json()));
    }

    #[test]
    fn a_changed_condition_is_drift() {
        let mut changed = doc();
        changed.statements[0].condition.clear();
        assert!(!doc().matches_json(&changed.to_json()));
        assert!(!doc().matches_json("not json"));
    }
}
