//! IAM's evaluation, conditions aside: wildcard matching, Allow/Deny of one request, and the
//! action and resource ARNs IAM authorises for each recorded request.
use std::collections::{BTreeMap, HashMap};

use super::policy::action_for;
use crate::aws::requests::RecordedRequest;
use crate::policy::{Effect, PolicyDocument, Principal, Statement};

/// One check IAM makes for a request: may the caller do `action` on `resource`?
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Authorization {
    pub action: String,
    pub resource: String,
}

/// The outcome of evaluating one [`Authorization`] against a policy, conditions aside.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Some Allow statement matches action and resource, and no unconditional Deny does.
    pub allowed: bool,
    /// Sids of the matching Allow statements.
    pub allowed_by: Vec<String>,
    /// Sids of matching Deny statements.
    pub denied_by: Vec<String>,
    /// Conditions of the matching statements, not evaluated here (`Null aws:ResourceTag/x`):
    /// they decide at request time, on tags and calling services this evaluator cannot see.
    pub conditions: Vec<String>,
}

/// IAM's wildcard match: `*` is any run of characters (`/` and `:` included), `?` exactly
/// one. Actions compare case-insensitively, ARNs case-sensitively.
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let eq = |a: char, b: char| if ignore_case { a.eq_ignore_ascii_case(&b) } else { a == b };
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || eq(c, t[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry.
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    pi = sp + 1;
                    ti = st + 1;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Evaluates `action` on `resource` against an identity policy: allowed when an Allow
/// statement's actions and resources match and no unconditional Deny's do. Conditions are
/// not evaluated but reported; a conditional Deny is reported and does not deny.
pub fn allows_request(policy: &PolicyDocument, action: &str, resource: &str) -> Decision {
    let mut decision = Decision::default();
    let mut denied = false;
    for st in &policy.statements {
        let acts = st.actions.iter().any(|a| wildcard_match(a, action, true));
        let on = st.resources.iter().any(|r| wildcard_match(r, resource, false));
        if !(acts && on) {
            continue;
        }
        for (op, keys) in &st.condition {
            for (key, values) in keys {
                decision.conditions.push(format!("{}: {op} {key} {values:?}", st.sid));
            }
        }
        match st.effect {
            Effect::Allow => decision.allowed_by.push(st.sid.clone()),
            Effect::Deny => {
                denied |= st.condition.is_empty();
                decision.denied_by.push(st.sid.clone());
            }
        }
    }
    decision.allowed = !decision.allowed_by.is_empty() && !denied;
    decision
}

/// Reads an identity policy as `lakeops iam-policy` prints it (and as AWS stores it):
/// `Action`, `Resource` and condition values as a string or a list.
pub fn parse_identity_policy(json: &str) -> Result<PolicyDocument, String> {
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let strings = |v: Option<&serde_json::Value>, what: &str| -> Result<Vec<String>, String> {
        match v {
            None => Ok(Vec::new()),
            Some(serde_json::Value::String(s)) => Ok(vec![s.clone()]),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string).ok_or_else(|| format!("{what}: {i} is not a string")))
                .collect(),
            Some(other) => Err(format!("{what}: {other} is neither a string nor a list")),
        }
    };
    let statements = match doc.get("Statement") {
        Some(serde_json::Value::Array(items)) => items.clone(),
        Some(one @ serde_json::Value::Object(_)) => vec![one.clone()],
        _ => return Err("no Statement".into()),
    };
    let mut parsed = Vec::new();
    for (i, st) in statements.iter().enumerate() {
        let sid = st.get("Sid").and_then(|s| s.as_str()).map_or_else(|| format!("#{i}"), str::to_string);
        for unsupported in ["NotAction", "NotResource", "Principal", "NotPrincipal"] {
            if st.get(unsupported).is_some() {
                return Err(format!("{sid}: {unsupported} is not supported in an identity policy here"));
            }
        }
        let effect = match st.get("Effect").and_then(|e| e.as_str()) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            other => return Err(format!("{sid}: Effect {other:?}")),
        };
        let mut condition = BTreeMap::new();
        if let Some(ops) = st.get("Condition").and_then(|c| c.as_object()) {
            for (op, keys) in ops {
                let keys = keys.as_object().ok_or_else(|| format!("{sid}: condition {op} is not an object"))?;
                let mut parsed_keys = BTreeMap::new();
                for (key, values) in keys {
                    parsed_keys.insert(key.clone(), strings(Some(values), &format!("{sid} {op} {key}"))?);
                }
                condition.insert(op.clone(), parsed_keys);
            }
        }
        parsed.push(Statement {
            sid,
            effect,
            principal: Principal::none(),
            actions: strings(st.get("Action"), "Action")?,
            resources: strings(st.get("Resource"), "Resource")?,
            condition,
        });
    }
    let mut policy = PolicyDocument::new(parsed);
    if let Some(v) = doc.get("Version").and_then(|v| v.as_str()) {
        policy.version = v.to_string();
    }
    Ok(policy)
}

/// S3 operations on objects (authorised on `bucket/key`); the rest act on buckets.
const S3_OBJECT_OPERATIONS: &[&str] = &["HeadObject", "GetObject", "PutObject", "DeleteObject"];

/// ARNs that responses reported, to resolve requests that name a resource only partly: an
/// IAM role by name (its ARN holds its path) or a KMS key by alias (IAM authorises the key).
#[derive(Debug, Default)]
struct KnownArns {
    roles: HashMap<String, String>,
    /// (region, alias or key id) -> key ARN
    keys: HashMap<(String, String), String>,
}

impl KnownArns {
    /// Learns what the response to `r` reported. Only what was answered before (or by) a
    /// request can resolve it: IAM authorises a read of a role that does not exist yet
    /// against `role/NAME`, without the path it will have.
    fn learn(&mut self, r: &RecordedRequest) {
        let Some(arn) = r.param("Arn") else { return };
        match (r.service.as_str(), r.param("RoleName"), r.param("KeyId")) {
            ("iam", Some(name), _) => {
                self.roles.insert(name.to_string(), arn.to_string());
            }
            ("kms", _, Some(id)) => {
                let region = r.region.clone().unwrap_or_default();
                self.keys.insert((region.clone(), id.to_string()), arn.to_string());
                // The key id itself, for requests that name the key directly.
                if let Some(key_id) = arn.rsplit('/').next() {
                    self.keys.insert((region, key_id.to_string()), arn.to_string());
                }
            }
            _ => {}
        }
    }
}

/// The checks IAM makes for each recorded request, with the resource ARNs built as AWS
/// builds them (`account` and each request's region filled in). Beside the request's own
/// action, a request that passes a role needs `iam:PassRole` on it, and a function created
/// from an S3 package needs `s3:GetObject` on the package (Lambda reads it as the caller).
/// `Err` names a request whose resource cannot be told; STS identity calls need no check.
pub fn request_authorizations(
    requests: &[RecordedRequest],
    account: &str,
) -> Vec<(RecordedRequest, Result<Vec<Authorization>, String>)> {
    let mut known = KnownArns::default();
    requests
        .iter()
        .map(|r| {
            known.learn(r);
            (r.clone(), authorizations_of(r, &known, account))
        })
        .collect()
}

fn authorizations_of(r: &RecordedRequest, known: &KnownArns, account: &str) -> Result<Vec<Authorization>, String> {
    let Some(action) = action_for(&r.service, &r.operation) else { return Ok(Vec::new()) };
    let region = r.region.as_deref().unwrap_or("us-east-1");
    let missing = |name: &str| format!("{}:{} names no {name}: {:?}", r.service, r.operation, r.params);
    let need = |name: &str| r.param(name).ok_or_else(|| missing(name));
    let auth = |action: &str, resource: String| Authorization { action: action.to_string(), resource };
    let role_arn = |role: &str| {
        if role.starts_with("arn:") {
            return role.to_string();
        }
        known.roles.get(role).cloned().unwrap_or_else(|| {
            // Unknown path: IAM's default `/`, which a policy scoped to a path does not cover.
            format!("arn:aws:iam::{account}:role{}{role}", r.param("Path").unwrap_or("/"))
        })
    };
    let key_arn = |id: &str| {
        if let Some(arn) = known.keys.get(&(region.to_string(), id.to_string())) {
            return arn.clone();
        }
        if id.starts_with("arn:") {
            id.to_string()
        } else if id.starts_with("alias/") {
            // An alias that resolves to no key (yet): only the alias can be named.
            format!("arn:aws:kms:{region}:{account}:{id}")
        } else {
            format!("arn:aws:kms:{region}:{account}:key/{id}")
        }
    };
    let qualified = |prefix: &str, name: &str| {
        if name.starts_with("arn:") { name.to_string() } else { format!("{prefix}{name}") }
    };
    let mut out = Vec::new();
    match r.service.as_str() {
        "s3" => {
            let bucket = need("Bucket")?;
            let resource = if S3_OBJECT_OPERATIONS.contains(&r.operation.as_str()) {
                format!("arn:aws:s3:::{bucket}/{}", need("Key")?)
            } else {
                format!("arn:aws:s3:::{bucket}")
            };
            out.push(auth(&action, resource));
            if let Some(role) = r.param("Role") {
                out.push(auth("iam:PassRole", role_arn(role)));
            }
        }
        "kms" => match r.operation.as_str() {
            // CreateKey, ListKeys and ListAliases name no resource.
            "CreateKey" | "ListKeys" | "ListAliases" => out.push(auth(&action, "*".into())),
            // CreateAlias is authorised on the alias and on the key it points to.
            "CreateAlias" | "UpdateAlias" => {
                out.push(auth(&action, format!("arn:aws:kms:{region}:{account}:{}", need("AliasName")?)));
                out.push(auth(&action, key_arn(need("TargetKeyId")?)));
            }
            _ => out.push(auth(&action, key_arn(need("KeyId")?))),
        },
        "dynamodb" => {
            let table = r.param("TableName").or(r.param("ResourceArn")).ok_or_else(|| missing("TableName"))?;
            out.push(auth(&action, qualified(&format!("arn:aws:dynamodb:{region}:{account}:table/"), table)));
        }
        "cloudtrail" => {
            let trail = ["Name", "TrailName", "ResourceId", "ResourceIdList"]
                .iter()
                .find_map(|n| r.param(n))
                .ok_or_else(|| missing("Name"))?;
            out.push(auth(&action, qualified(&format!("arn:aws:cloudtrail:{region}:{account}:trail/"), trail)));
        }
        "iam" => out.push(auth(&action, role_arn(need("RoleName")?))),
        "lambda" => {
            let function = need("FunctionName")?;
            out.push(auth(&action, qualified(&format!("arn:aws:lambda:{region}:{account}:function:"), function)));
            if let Some(role) = r.param("Role") {
                out.push(auth("iam:PassRole", role_arn(role)));
            }
            if let (Some(bucket), Some(key)) = (r.param("S3Bucket"), r.param("S3Key")) {
                out.push(auth("s3:GetObject", format!("arn:aws:s3:::{bucket}/{key}")));
            }
        }
        // The SDK's metadata says `cloudwatch logs`; its crate says `cloudwatchlogs`.
        "cloudwatchlogs" | "cloudwatch logs" => {
            let group = match (r.operation.as_str(), r.param("resourceArn")) {
                (_, Some(arn)) => arn.to_string(),
                // Authorised on the account's log groups as a whole.
                ("DescribeLogGroups", None) => format!("arn:aws:logs:{region}:{account}:log-group:*"),
                (_, None) => format!("arn:aws:logs:{region}:{account}:log-group:{}", need("logGroupName")?),
            };
            out.push(auth(&action, group));
        }
        "guardduty" => match r.param("DetectorId") {
            Some(id) => out.push(auth(&action, format!("arn:aws:guardduty:{region}:{account}:detector/{id}"))),
            // ListDetectors and CreateDetector name no detector.
            None => out.push(auth(&action, "*".into())),
        },
        "eventbridge" => {
            let rule =
                ["Name", "Rule", "ResourceARN"].iter().find_map(|n| r.param(n)).ok_or_else(|| missing("Name"))?;
            out.push(auth(&action, qualified(&format!("arn:aws:events:{region}:{account}:rule/"), rule)));
            for (_, role) in r.params.iter().filter(|(n, _)| n == "RoleArn") {
                out.push(auth("iam:PassRole", role_arn(role)));
            }
        }
        "sfn" => {
            let machine = match (r.param("stateMachineArn"), r.param("resourceArn"), r.param("name")) {
                (Some(arn), _, _) | (None, Some(arn), _) => arn.to_string(),
                (None, None, Some(name)) => format!("arn:aws:states:{region}:{account}:stateMachine:{name}"),
                _ => return Err(missing("stateMachineArn")),
            };
            out.push(auth(&action, machine));
            if let Some(role) = r.param("roleArn") {
                out.push(auth("iam:PassRole", role_arn(role)));
            }
        }
        "cloudwatch" => {
            let alarm = ["AlarmName", "AlarmNamePrefix", "ResourceARN"]
                .iter()
                .find_map(|n| r.param(n))
                .ok_or_else(|| missing("AlarmName"))?;
            let arn = qualified(&format!("arn:aws:cloudwatch:{region}:{account}:alarm:"), alarm);
            // DescribeAlarms by prefix: every alarm the prefix names.
            let arn = if r.param("AlarmNamePrefix").is_some() { format!("{arn}*") } else { arn };
            if r.operation == "PutMetricAlarm" {
                out.push(auth("cloudwatch:TagResource", arn.clone()));
            }
            out.push(auth(&action, arn));
        }
        "backup" => {
            let resource = match (r.param("ResourceArn"), r.param("BackupVaultName"), r.param("BackupPlanId")) {
                (Some(arn), _, _) => arn.to_string(),
                (None, Some(vault), _) => format!("arn:aws:backup:{region}:{account}:backup-vault:{vault}"),
                (None, None, Some(id)) => format!("arn:aws:backup:{region}:{account}:backup-plan:{id}"),
                // ListBackupPlans and CreateBackupPlan name no plan.
                _ => "*".into(),
            };
            out.push(auth(&action, resource));
            if let Some(role) = r.param("IamRoleArn") {
                out.push(auth("iam:PassRole", role_arn(role)));
            }
        }
        // Authorised on the account, not on a resource.
        "inspector2" | "config service" | "config" => {
            out.push(auth(&action, "*".into()));
            if r.operation == "CreateFilter" {
                out.push(auth("inspector2:TagResource", "*".into()));
            }
        }
        "api gateway" => {
            out.push(auth(&action, format!("arn:aws:apigateway:{region}::{}", need("Path")?)));
            if let Some(role) = r.param("Role") {
                out.push(auth("iam:PassRole", role_arn(role)));
            }
        }
        "sns" => {
            let topic = match r.param("TopicArn").or(r.param("ResourceArn")) {
                Some(arn) => arn.to_string(),
                None => format!("arn:aws:sns:{region}:{account}:{}", need("Name")?),
            };
            if r.operation == "CreateTopic" {
                out.push(auth("sns:TagResource", topic.clone()));
            }
            out.push(auth(&action, topic));
        }
        other => return Err(format!("no resource mapping for service {other} ({})", r.operation)),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::policy::{controller_policy, controller_policy_with, to_identity_json};

    #[test]
    fn wildcards_follow_iam_star_and_question_mark_semantics() {
        for (pattern, text) in [
            ("*", ""),
            ("*", "arn:aws:s3:::anything/at/all"),
            ("arn:aws:s3:::team-*", "arn:aws:s3:::team-raw"),
            ("arn:aws:s3:::team-*", "arn:aws:s3:::team-"),
            // `*` crosses `/` and `:`.
            ("arn:aws:s3:::art/*", "arn:aws:s3:::art/fns/v1/etl.zip"),
            ("arn:aws:kms:*:1:key/*", "arn:aws:kms:eu-west-1:1:key/k1"),
            (
                "arn:aws:logs:*:1:log-group:/aws/lambda/lakeops-*",
                "arn:aws:logs:eu-west-1:1:log-group:/aws/lambda/lakeops-f",
            ),
            ("a?c", "abc"),
            ("a*b*c", "axxbyyc"),
            ("a*bc", "abcbc"),
            ("**x", "x"),
        ] {
            assert!(wildcard_match(pattern, text, false), "{pattern} should match {text}");
        }
        for (pattern, text) in [
            ("arn:aws:s3:::team-*", "arn:aws:s3:::other-raw"),
            ("arn:aws:s3:::team-*", "arn:aws:s3:::team"),
            ("a?c", "ac"),
            ("a?c", "abbc"),
            ("abc", "abcd"),
            ("a*bc", "abcb"),
            ("arn:aws:iam::1:role/lakeops/*", "arn:aws:iam::1:role/other"),
            // ARNs are case-sensitive.
            ("arn:aws:s3:::Team-*", "arn:aws:s3:::team-raw"),
        ] {
            assert!(!wildcard_match(pattern, text, false), "{pattern} should not match {text}");
        }
        assert!(wildcard_match("s3:getbucket*", "s3:GetBucketPolicy", true), "actions ignore case");
        assert!(!wildcard_match("s3:getbucket*", "s3:GetBucketPolicy", false));
    }

    #[test]
    fn a_request_is_allowed_only_for_a_matching_action_on_a_matching_resource() {
        let p = controller_policy(Some("123456789012"), "team-*");

        let ok = allows_request(&p, "s3:PutBucketPolicy", "arn:aws:s3:::team-raw");
        assert!(ok.allowed && ok.allowed_by == ["LakeBuckets"] && ok.conditions.is_empty(), "{ok:?}");
        // Right action, bucket outside the pattern; right resource, action not granted.
        assert!(!allows_request(&p, "s3:PutBucketPolicy", "arn:aws:s3:::other-raw").allowed);
        assert!(!allows_request(&p, "s3:DeleteObject", "arn:aws:s3:::team-raw/x").allowed);
        // Keys of another account, roles outside the lakeops path, functions without the prefix.
        assert!(!allows_request(&p, "kms:PutKeyPolicy", "arn:aws:kms:eu-west-1:999999999999:key/k").allowed);
        assert!(!allows_request(&p, "iam:PutRolePolicy", "arn:aws:iam::123456789012:role/admin").allowed);
        assert!(allows_request(&p, "iam:PutRolePolicy", "arn:aws:iam::123456789012:role/lakeops/etl").allowed);
        assert!(
            !allows_request(&p, "lambda:GetFunction", "arn:aws:lambda:eu-west-1:123456789012:function:etl").allowed
        );

        // Conditions are reported, not evaluated.
        let tagged = allows_request(&p, "kms:PutKeyPolicy", "arn:aws:kms:eu-west-1:123456789012:key/k");
        assert!(tagged.allowed, "{tagged:?}");
        assert_eq!(tagged.conditions, [r#"ManageOwnedKeys: Null aws:ResourceTag/lakeops.dev/owner ["false"]"#]);
    }

    #[test]
    fn an_unconditional_deny_wins_and_a_conditional_one_is_reported() {
        let mut p = controller_policy(Some("1"), "*");
        p.statements.push(Statement::new(
            "NoPolicyOnAudit",
            Effect::Deny,
            Principal::none(),
            &["s3:PutBucketPolicy"],
            &["arn:aws:s3:::audit-*".to_string()],
        ));
        p.statements.push(
            Statement::new("TlsOnly", Effect::Deny, Principal::none(), &["s3:*"], &["*".to_string()]).when(
                "Bool",
                "aws:SecureTransport",
                &["false"],
            ),
        );
        let denied = allows_request(&p, "s3:PutBucketPolicy", "arn:aws:s3:::audit-x");
        assert!(!denied.allowed && denied.denied_by.contains(&"NoPolicyOnAudit".to_string()), "{denied:?}");
        let conditional = allows_request(&p, "s3:PutBucketPolicy", "arn:aws:s3:::raw");
        assert!(conditional.allowed && conditional.denied_by == ["TlsOnly"], "{conditional:?}");
        assert!(conditional.conditions.iter().any(|c| c.contains("aws:SecureTransport")));
    }

    #[test]
    fn the_printed_policy_parses_back_to_the_same_document() {
        let p = controller_policy_with(Some("123456789012"), "team-*", "artifacts-*");
        let parsed = parse_identity_policy(&to_identity_json(&p)).expect("parses");
        assert_eq!(parsed, p);
        let one = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#;
        assert_eq!(parse_identity_policy(one).expect("single statement").statements[0].actions, ["s3:GetObject"]);
        let not_action = r#"{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#;
        assert!(parse_identity_policy(not_action).is_err(), "NotAction is refused, not misread");
    }

    fn req(service: &str, operation: &str, params: &[(&str, &str)]) -> RecordedRequest {
        RecordedRequest {
            service: service.into(),
            operation: operation.into(),
            region: Some("eu-west-1".into()),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn auths(requests: &[RecordedRequest]) -> Vec<Vec<(String, String)>> {
        request_authorizations(requests, "123456789012")
            .into_iter()
            .map(|(_, a)| a.expect("mapped").into_iter().map(|a| (a.action, a.resource)).collect())
            .collect()
    }

    fn a(action: &str, resource: &str) -> (String, String) {
        (action.to_string(), resource.to_string())
    }

    #[test]
    fn requests_map_to_the_resource_arns_iam_authorises() {
        let got = auths(&[
            req("s3", "PutBucketPolicy", &[("Bucket", "raw")]),
            req("s3", "HeadObject", &[("Bucket", "art"), ("Key", "f.zip")]),
            req("dynamodb", "DescribeTable", &[("TableName", "catalog")]),
            req("cloudtrail", "ListTags", &[("ResourceIdList", "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t")]),
            req("cloudwatchlogs", "DescribeLogGroups", &[("logGroupNamePrefix", "/aws/lambda/lakeops-f")]),
            req("cloudwatchlogs", "PutRetentionPolicy", &[("logGroupName", "/aws/lambda/lakeops-f")]),
            req("kms", "CreateKey", &[]),
            req("sts", "GetCallerIdentity", &[]),
        ]);
        assert_eq!(
            got,
            [
                vec![a("s3:PutBucketPolicy", "arn:aws:s3:::raw")],
                vec![a("s3:GetObject", "arn:aws:s3:::art/f.zip")],
                vec![a("dynamodb:DescribeTable", "arn:aws:dynamodb:eu-west-1:123456789012:table/catalog")],
                vec![a("cloudtrail:ListTags", "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t")],
                vec![a("logs:DescribeLogGroups", "arn:aws:logs:eu-west-1:123456789012:log-group:*")],
                vec![a(
                    "logs:PutRetentionPolicy",
                    "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/lakeops-f"
                )],
                vec![a("kms:CreateKey", "*")],
                vec![],
            ]
        );
    }

    #[test]
    fn roles_and_aliases_resolve_through_the_arns_responses_reported() {
        let role = "arn:aws:iam::123456789012:role/lakeops/etl";
        let key = "arn:aws:kms:eu-west-1:123456789012:key/k1";
        let got = auths(&[
            req("iam", "GetRole", &[("RoleName", "etl"), ("Arn", role)]),
            req("iam", "PutRolePolicy", &[("RoleName", "etl")]),
            req("iam", "DeleteRole", &[("RoleName", "stranger")]),
            req("kms", "DescribeKey", &[("KeyId", "alias/lakeops/a"), ("Arn", key)]),
            req("kms", "DescribeKey", &[("KeyId", "alias/lakeops/missing")]),
            req("kms", "PutKeyPolicy", &[("KeyId", "k1")]),
            req("kms", "CreateAlias", &[("AliasName", "alias/lakeops/a"), ("TargetKeyId", "k1")]),
            req(
                "lambda",
                "CreateFunction",
                &[("FunctionName", "lakeops-f"), ("Role", role), ("S3Bucket", "art"), ("S3Key", "f.zip")],
            ),
        ]);
        assert_eq!(got[1], [a("iam:PutRolePolicy", role)], "the path comes from GetRole");
        assert_eq!(got[2], [a("iam:DeleteRole", "arn:aws:iam::123456789012:role/stranger")], "unknown: default path");
        assert_eq!(got[3], [a("kms:DescribeKey", key)], "an alias is authorised on its key");
        assert_eq!(got[4], [a("kms:DescribeKey", "arn:aws:kms:eu-west-1:123456789012:alias/lakeops/missing")]);
        assert_eq!(got[5], [a("kms:PutKeyPolicy", key)]);
        assert_eq!(
            got[6],
            [a("kms:CreateAlias", "arn:aws:kms:eu-west-1:123456789012:alias/lakeops/a"), a("kms:CreateAlias", key)]
        );
        assert_eq!(
            got[7],
            [
                a("lambda:CreateFunction", "arn:aws:lambda:eu-west-1:123456789012:function:lakeops-f"),
                a("iam:PassRole", role),
                a("s3:GetObject", "arn:aws:s3:::art/f.zip"),
            ]
        );
        let unmapped = request_authorizations(&[req("s3", "GetBucketPolicy", &[])], "1");
        assert!(unmapped[0].1.as_ref().is_err_and(|e| e.contains("names no Bucket")), "{unmapped:?}");
    }

    #[test]
    fn a_role_read_before_it_exists_is_authorised_without_its_path() {
        let role = "arn:aws:iam::123456789012:role/lakeops/etl";
        let got = auths(&[
            req("iam", "GetRole", &[("RoleName", "etl")]),
            req("iam", "CreateRole", &[("RoleName", "etl"), ("Path", "/lakeops/"), ("Arn", role)]),
            req("iam", "PutRolePolicy", &[("RoleName", "etl")]),
        ]);
        assert_eq!(got[0], [a("iam:GetRole", "arn:aws:iam::123456789012:role/etl")], "no path known yet");
        assert_eq!(got[1], [a("iam:CreateRole", role)]);
        assert_eq!(got[2], [a("iam:PutRolePolicy", role)]);
        // The controller's policy allows that read, and no write outside its path.
        let p = controller_policy(Some("123456789012"), "*");
        assert!(allows_request(&p, "iam:GetRole", "arn:aws:iam::123456789012:role/etl").allowed);
        assert!(!allows_request(&p, "iam:PutRolePolicy", "arn:aws:iam::123456789012:role/etl").allowed);
        assert!(!allows_request(&p, "iam:DeleteRole", "arn:aws:iam::123456789012:role/etl").allowed);
    }
}
