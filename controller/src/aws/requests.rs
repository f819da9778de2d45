//! What an AWS request named: the bucket, key, table, trail, role, function or log group it
//! acted on, read from the serialized request, so that tests can check each request against
//! the controller's IAM policy by action *and* resource.
//!
//! Reading the wire form instead of each operation's modeled input type keeps this to one
//! reader per protocol (S3's and Lambda's URIs, the JSON protocols' bodies, IAM's query form)
//! for every operation lakeops calls, now and later. It parses bodies, so the recorder only
//! does it when asked ([`RequestRecorder::recording_requests`](super::recorder::RequestRecorder)).
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};

/// One request, with the parameters that name what it acted on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordedRequest {
    /// Lowercase SDK service name: `s3`, `kms`, `cloudwatchlogs`, ...
    pub service: String,
    /// As AWS names it: `PutBucketPolicy`.
    pub operation: String,
    /// The client's region; `None` when the configuration had none.
    pub region: Option<String>,
    /// `(AWS parameter name, value)`, e.g. `("Bucket", "lake-raw")`, `("KeyId", "alias/x")`.
    /// `Arn` is the ARN the response reported (GetRole, CreateRole, DescribeKey, CreateKey),
    /// which tells the role's path and the key an alias points to.
    pub params: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Parameters that name resources, by their AWS names, in the protocols' bodies.
const NAMING: &[&str] = &[
    // KMS
    "KeyId",
    "AliasName",
    "TargetKeyId",
    // DynamoDB
    "TableName",
    "ResourceArn",
    // CloudTrail
    "Name",
    "TrailName",
    "ResourceId",
    "ResourceIdList",
    // IAM
    "RoleName",
    "Path",
    // Lambda (`Role` is passed to the function; `S3Bucket`/`S3Key` its package)
    "FunctionName",
    "Role",
    "S3Bucket",
    "S3Key",
    // EventBridge (`Rule` in target calls, `ResourceARN` in tag calls)
    "Rule",
    "ResourceARN",
    // Step Functions
    "stateMachineArn",
    "roleArn",
    "name",
    // CloudWatch Logs
    "logGroupName",
    "logGroupNamePrefix",
    "resourceArn",
    // SNS (`Name` of CreateTopic, `ResourceArn` of its tags, as above)
    "TopicArn",
    // CloudWatch alarms (`ResourceARN` of their tags, as above)
    "AlarmName",
    "AlarmNamePrefix",
    // AWS Backup (`BackupSelection.IamRoleArn`, the role a selection passes)
    "IamRoleArn",
];

/// The naming parameters of a serialized request of `service`.
pub fn request_params(service: &str, request: &HttpRequest) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let (host, path) = split_uri(request.uri());
    let body = request.body().bytes().unwrap_or_default();
    match service {
        "s3" => {
            // Virtual-hosted (`bucket.s3.region.amazonaws.com/key`) or path-style
            // (`host/bucket/key`, what emulators and lakeops with an endpoint override use).
            let virtual_bucket = host.split_once(".s3").map(|(b, _)| b).filter(|b| !b.is_empty() && *b != "s3");
            let (bucket, key) = match virtual_bucket {
                Some(b) => (Some(b.to_string()), path.trim_start_matches('/').to_string()),
                None => {
                    let mut parts = path.trim_start_matches('/').splitn(2, '/');
                    (parts.next().filter(|b| !b.is_empty()).map(str::to_string), parts.next().unwrap_or("").into())
                }
            };
            if let Some(bucket) = bucket {
                params.push(("Bucket".into(), percent_decode(&bucket, false)));
            }
            if !key.is_empty() {
                params.push(("Key".into(), percent_decode(&key, false)));
            }
            // PutBucketReplication passes its role to S3.
            if let Some(role) = xml_text(body, "Role") {
                params.push(("Role".into(), role));
            }
        }
        "lambda" => {
            // `/2015-03-31/functions/{name}/...`; `/2017-03-31/tags/{arn}`.
            let segments: Vec<&str> = path.split('/').collect();
            for (i, s) in segments.iter().enumerate() {
                if matches!(*s, "functions" | "tags")
                    && let Some(name) = segments.get(i + 1).filter(|n| !n.is_empty())
                {
                    params.push(("FunctionName".into(), percent_decode(name, false)));
                }
            }
            json_params(body, &mut params);
        }
        "guardduty" => {
            // `/detector/{id}` names the detector; `/detector` alone lists or creates.
            let segments: Vec<&str> = path.split('/').collect();
            if let Some(i) = segments.iter().position(|s| *s == "detector")
                && let Some(id) = segments.get(i + 1).filter(|n| !n.is_empty())
            {
                params.push(("DetectorId".into(), percent_decode(id, false)));
            }
        }
        "backup" => {
            // `/backup-vaults/{name}[/vault-lock]`, `/backup/plans/{id}[/selections/{id}]`,
            // `/tags/{arn}`, `/untag/{arn}`.
            let segments: Vec<&str> = path.split('/').collect();
            let after = |name: &str| {
                let i = segments.iter().position(|s| *s == name)?;
                segments.get(i + 1).filter(|n| !n.is_empty()).map(|n| percent_decode(n, false))
            };
            if let Some(vault) = after("backup-vaults") {
                params.push(("BackupVaultName".into(), vault));
            }
            if let Some(plan) = after("plans") {
                params.push(("BackupPlanId".into(), plan));
            }
            if let Some(arn) = after("tags").or_else(|| after("untag")) {
                params.push(("ResourceArn".into(), arn));
            }
            json_params(body, &mut params);
        }
        // The Query protocol: a form-encoded body.
        "iam" | "sts" | "sns" | "cloudwatch" => {
            for pair in std::str::from_utf8(body).unwrap_or_default().split('&') {
                if let Some((k, v)) = pair.split_once('=')
                    && NAMING.contains(&k)
                {
                    params.push((k.to_string(), percent_decode(v, true)));
                }
            }
        }
        // API Gateway (REST): IAM authorises the request path (`/restapis/{id}/stages/...`);
        // PutIntegration passes its `credentials` role to API Gateway.
        "api gateway" => {
            params.push(("Path".into(), percent_decode(path.split('?').next().unwrap_or(path), false)));
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body)
                && let Some(role) = json.get("credentials").and_then(|c| c.as_str())
            {
                params.push(("Role".into(), role.to_string()));
            }
        }
        "eventbridge" => {
            json_params(body, &mut params);
            // PutTargets passes each target's role to EventBridge.
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
                let targets = json.get("Targets").and_then(|t| t.as_array()).cloned().unwrap_or_default();
                params.extend(
                    targets
                        .iter()
                        .filter_map(|t| t.get("RoleArn")?.as_str())
                        .map(|r| ("RoleArn".to_string(), r.to_string())),
                );
            }
        }
        _ => json_params(body, &mut params),
    }
    params
}

/// The ARN a successful response reports for the resource it describes or created: an IAM
/// role's (with its path) or a KMS key's (what an alias points to).
pub fn response_arn(service: &str, operation: &str, response: &HttpResponse) -> Option<String> {
    let body = response.body().bytes()?;
    match (service, operation) {
        ("iam", "GetRole" | "CreateRole") => xml_text(body, "Arn"),
        ("kms", "DescribeKey" | "CreateKey") => {
            let json: serde_json::Value = serde_json::from_slice(body).ok()?;
            json.get("KeyMetadata")?.get("Arn")?.as_str().map(str::to_string)
        }
        _ => None,
    }
}

/// Naming parameters of a JSON body: top-level strings, string lists, and one level of
/// nesting (Lambda's `Code.S3Bucket`).
fn json_params(body: &[u8], params: &mut Vec<(String, String)>) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) else { return };
    let mut visit = |k: &str, v: &serde_json::Value| match v {
        serde_json::Value::String(s) if NAMING.contains(&k) => params.push((k.to_string(), s.clone())),
        serde_json::Value::Array(items) if NAMING.contains(&k) => {
            params.extend(items.iter().filter_map(|i| i.as_str()).map(|s| (k.to_string(), s.to_string())));
        }
        _ => {}
    };
    for (k, v) in &map {
        visit(k, v);
    }
    for v in map.values() {
        if let serde_json::Value::Object(inner) = v {
            for (k, v) in inner {
                visit(k, v);
            }
        }
    }
}

/// `(host, path)` of an absolute URI, the path without its query.
fn split_uri(uri: &str) -> (&str, &str) {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    (host, path.split('?').next().unwrap_or(""))
}

/// The text of the first `<tag>...</tag>` element.
fn xml_text(body: &[u8], tag: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&format!("</{tag}>"))?;
    Some(body[start..start + len].trim().to_string())
}

/// Decodes `%XX` escapes (and `+` as a space in form bodies); invalid escapes stay as they are.
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    // A literal `+` in a form body is sent as `%2B`, so replacing first is exact.
    let s = if plus_is_space { std::borrow::Cow::Owned(s.replace('+', " ")) } else { std::borrow::Cow::Borrowed(s) };
    percent_encoding::percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use aws_smithy_types::body::SdkBody;

    use super::*;

    fn request(uri: &str, body: &str) -> HttpRequest {
        let mut r = HttpRequest::new(SdkBody::from(body.to_string()));
        r.set_uri(uri).expect("uri");
        r
    }

    fn params(service: &str, uri: &str, body: &str) -> Vec<(String, String)> {
        request_params(service, &request(uri, body))
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn s3_names_bucket_and_key_path_style_and_virtual_hosted() {
        assert_eq!(params("s3", "http://127.0.0.1:5000/lake-raw?policy", ""), p(&[("Bucket", "lake-raw")]));
        assert_eq!(
            params("s3", "http://127.0.0.1:5000/art/fns/etl%20v1.zip?versionId=3", ""),
            p(&[("Bucket", "art"), ("Key", "fns/etl v1.zip")])
        );
        assert_eq!(
            params("s3", "https://lake-raw.s3.eu-west-1.amazonaws.com/a/b", ""),
            p(&[("Bucket", "lake-raw"), ("Key", "a/b")])
        );
        assert_eq!(
            params("s3", "https://s3.eu-west-1.amazonaws.com/lake-raw?replication", "<R><Role>arn:r</Role></R>"),
            p(&[("Bucket", "lake-raw"), ("Role", "arn:r")])
        );
    }

    #[test]
    fn lambda_names_the_function_from_the_path_and_role_and_package_from_the_body() {
        assert_eq!(
            params("lambda", "http://h/2017-10-31/functions/lakeops-etl/concurrency", "{}"),
            p(&[("FunctionName", "lakeops-etl")])
        );
        assert_eq!(
            params(
                "lambda",
                "http://h/2017-03-31/tags/arn%3Aaws%3Alambda%3Aeu-west-1%3A1%3Afunction%3Alakeops-x",
                "{}"
            ),
            p(&[("FunctionName", "arn:aws:lambda:eu-west-1:1:function:lakeops-x")])
        );
        let create = r#"{"FunctionName":"lakeops-f","Role":"arn:aws:iam::1:role/lakeops/f","Code":{"S3Bucket":"art","S3Key":"f.zip"},"Timeout":3}"#;
        assert_eq!(
            params("lambda", "http://h/2015-03-31/functions", create),
            p(&[
                ("FunctionName", "lakeops-f"),
                ("Role", "arn:aws:iam::1:role/lakeops/f"),
                ("S3Bucket", "art"),
                ("S3Key", "f.zip")
            ])
        );
    }

    #[test]
    fn json_and_query_protocols_name_their_resources() {
        assert_eq!(
            params("kms", "http://h/", r#"{"AliasName":"alias/lakeops/a","TargetKeyId":"k1","Description":"x"}"#),
            p(&[("AliasName", "alias/lakeops/a"), ("TargetKeyId", "k1")])
        );
        assert_eq!(
            params("cloudtrail", "http://h/", r#"{"ResourceIdList":["arn:t1"]}"#),
            p(&[("ResourceIdList", "arn:t1")])
        );
        assert_eq!(
            params("iam", "http://h/", "Action=CreateRole&RoleName=lakeops-f&Path=%2Flakeops%2F&Version=2010-05-08"),
            p(&[("RoleName", "lakeops-f"), ("Path", "/lakeops/")])
        );
        assert!(params("kms", "http://h/", "not json").is_empty());
    }

    #[test]
    fn responses_tell_role_and_key_arns() {
        let ok = |body: &str| {
            HttpResponse::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(200).expect("status"),
                SdkBody::from(body.to_string()),
            )
        };
        let role = "<GetRoleResponse><GetRoleResult><Role><Path>/lakeops/</Path><Arn>arn:aws:iam::1:role/lakeops/f</Arn></Role></GetRoleResult></GetRoleResponse>";
        assert_eq!(response_arn("iam", "GetRole", &ok(role)).as_deref(), Some("arn:aws:iam::1:role/lakeops/f"));
        let key = r#"{"KeyMetadata":{"KeyId":"k1","Arn":"arn:aws:kms:eu-west-1:1:key/k1"}}"#;
        assert_eq!(response_arn("kms", "DescribeKey", &ok(key)).as_deref(), Some("arn:aws:kms:eu-west-1:1:key/k1"));
        assert_eq!(response_arn("kms", "GetKeyPolicy", &ok(key)), None);
    }
}
