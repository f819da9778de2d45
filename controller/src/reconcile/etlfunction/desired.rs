//! The AWS state an EtlFunction asks for: a pure function of the spec, the lake it
//! references and a few facts (account, lake key, permissions boundary), unit-tested
//! without AWS.
use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;
use lakeops_crds::etlfunction::{Access, TableAccess};
use lakeops_crds::{DataLake, EtlFunction};

use crate::aws::lambda::{CodeLocation, FunctionConfig, InvokePermission};
use crate::aws::s3::{NotificationEntry, NotificationTarget};
use crate::engine::log_group::OwnedLogGroup;
use crate::iam::ROLE_PATH;
use crate::policy::{Effect, PolicyDocument, Principal, Statement};
use crate::reconcile::datalake::desired::{bucket_arn, partition};

/// Name of the one inline policy lakeops writes on an execution role.
pub const ROLE_POLICY_NAME: &str = "lakeops-etl";
/// Statement id of the S3 invoke permission in the function's resource policy.
pub const INVOKE_STATEMENT_ID: &str = "lakeops-s3-invoke";
/// Events that trigger a function.
pub const TRIGGER_EVENT: &str = "s3:ObjectCreated:*";
/// Lambda function and IAM role names are at most 64 characters.
const MAX_NAME: usize = 64;

/// What the desired state is computed from, besides the function itself.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub lake: &'a DataLake,
    pub account_id: &'a str,
    /// The lake key (from the lake's status).
    pub key_arn: &'a str,
    /// Permissions boundary for generated roles (a controller flag).
    pub permissions_boundary: Option<&'a str>,
}

/// The AWS names of one function, derived from namespace and name only, so they are
/// known before anything exists and never change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub function: String,
    pub role: String,
    pub log_group: String,
    /// Id of the function's entry in the source bucket's notification configuration.
    pub notification_id: String,
}

/// `lakeops-<namespace>-<name>`, shortened with a stable hash when longer than 64.
pub fn names(etl: &EtlFunction) -> Names {
    let full = format!("lakeops-{}-{}", etl.namespace().unwrap_or_default(), etl.name_any());
    let function = function_name(&etl.namespace().unwrap_or_default(), &etl.name_any());
    Names { role: function.clone(), log_group: format!("/aws/lambda/{function}"), notification_id: full, function }
}

/// The Lambda function name of EtlFunction `namespace/name`.
pub fn function_name(namespace: &str, name: &str) -> String {
    bounded_name(&format!("lakeops-{namespace}-{name}"), MAX_NAME)
}

/// `full` when it fits in `max` characters, else its first `max - 9`, a dash and 8 hex
/// digits of its hash: unique in practice, still readable, the same on every round.
pub fn bounded_name(full: &str, max: usize) -> String {
    if full.len() <= max {
        return full.to_string();
    }
    let cut: String = full.chars().take(max - 9).collect();
    format!("{cut}-{:08x}", fnv1a(full) as u32)
}

/// FNV-1a: a fixed, dependency-free hash, stable across builds and platforms.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The generated execution role.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredRole {
    pub name: String,
    pub path: &'static str,
    pub arn: String,
    pub trust: PolicyDocument,
    pub permissions: PolicyDocument,
    pub boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The function.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredFunction {
    pub name: String,
    pub arn: String,
    pub config: FunctionConfig,
    pub architecture: String,
    /// The package; `version` is the pinned one, if any.
    pub code: CodeLocation,
    pub code_signing_config_arn: Option<String>,
    pub reserved_concurrency: Option<i32>,
    pub tags: BTreeMap<String, String>,
}

/// The S3 trigger: a permission on the function and an entry on the source bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredTrigger {
    /// False for an EtlPipeline step: no entry on the bucket (and none left behind).
    pub enabled: bool,
    pub bucket: String,
    pub permission: InvokePermission,
    pub entry: NotificationEntry,
}

/// Everything one EtlFunction converges.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub names: Names,
    pub role: DesiredRole,
    /// The function's log group, encrypted with the lake key.
    pub log_group: OwnedLogGroup,
    pub function: DesiredFunction,
    pub trigger: DesiredTrigger,
}

/// Tags on everything the function owns: its spec'd lake's tags plus ownership.
pub fn resource_tags(etl: &EtlFunction, lake: &DataLake) -> BTreeMap<String, String> {
    let mut tags = lake.spec.tags.clone();
    tags.extend(crate::reconcile::owner_tags(etl));
    tags
}

/// The desired state of `etl` given `facts`.
pub fn desired(etl: &EtlFunction, facts: Facts<'_>) -> Desired {
    let lake = facts.lake;
    let region = lake.spec.region.as_str();
    let p = partition(region);
    let names = names(etl);
    let tags = resource_tags(etl, lake);
    let source_bucket = lake.zone_bucket(&etl.spec.source.zone);
    let function_arn = format!("arn:{p}:lambda:{region}:{}:function:{}", facts.account_id, names.function);
    let role = DesiredRole {
        name: names.role.clone(),
        path: ROLE_PATH,
        arn: format!("arn:{p}:iam::{}:role{ROLE_PATH}{}", facts.account_id, names.role),
        trust: trust_policy(facts.account_id),
        permissions: role_policy(etl, facts, &names),
        boundary: facts.permissions_boundary.map(str::to_string),
        tags: tags.clone(),
    };
    let s = &etl.spec;
    let mut subnet_ids = s.vpc.as_ref().map(|v| v.subnet_ids.clone()).unwrap_or_default();
    let mut security_group_ids = s.vpc.as_ref().map(|v| v.security_group_ids.clone()).unwrap_or_default();
    subnet_ids.sort();
    security_group_ids.sort();
    let function = DesiredFunction {
        name: names.function.clone(),
        arn: function_arn.clone(),
        config: FunctionConfig {
            runtime: s.runtime.as_str().to_string(),
            handler: s.handler.clone(),
            role_arn: role.arn.clone(),
            memory_mb: s.memory_mb,
            timeout_seconds: s.timeout_seconds,
            environment: s.environment.clone(),
            kms_key_arn: Some(facts.key_arn.to_string()),
            tracing_active: true,
            dead_letter_target: s.dead_letter_queue_arn.clone(),
            subnet_ids,
            security_group_ids,
        },
        architecture: match s.architecture {
            lakeops_crds::etlfunction::Architecture::X86_64 => "x86_64",
            lakeops_crds::etlfunction::Architecture::Arm64 => "arm64",
        }
        .to_string(),
        code: CodeLocation {
            bucket: s.code.s3_bucket.clone(),
            key: s.code.s3_key.clone(),
            version: s.code.s3_object_version.clone(),
        },
        code_signing_config_arn: s.code_signing_config_arn.clone(),
        reserved_concurrency: s.reserved_concurrency,
        tags: tags.clone(),
    };
    let log_group = OwnedLogGroup {
        name: names.log_group.clone(),
        retention_days: s.log_retention_days,
        kms_key_arn: facts.key_arn.to_string(),
        tags,
    };
    let (prefix, suffix) = etl.notification_filter();
    let trigger = DesiredTrigger {
        enabled: s.source.trigger,
        permission: InvokePermission {
            statement_id: INVOKE_STATEMENT_ID.to_string(),
            principal: "s3.amazonaws.com".to_string(),
            source_arn: bucket_arn(region, &source_bucket),
            source_account: facts.account_id.to_string(),
        },
        entry: NotificationEntry {
            target: NotificationTarget::Lambda,
            id: names.notification_id.clone(),
            arn: function_arn,
            events: vec![TRIGGER_EVENT.to_string()],
            prefix: Some(prefix.to_string()).filter(|p| !p.is_empty()),
            suffix: Some(suffix.to_string()).filter(|s| !s.is_empty()),
        },
        bucket: source_bucket,
    };
    Desired { names, role, log_group, function, trigger }
}

/// Lambda may assume the role, only on behalf of this account (confused-deputy guard).
pub fn trust_policy(account_id: &str) -> PolicyDocument {
    PolicyDocument::new(vec![
        Statement::new(
            "LambdaAssumesTheRole",
            Effect::Allow,
            Principal::service("lambda.amazonaws.com"),
            &["sts:AssumeRole"],
            &[],
        )
        .when("StringEquals", "aws:SourceAccount", &[account_id]),
    ])
}

/// The execution role's permissions: exactly the declared prefixes, the lake key through
/// S3 only, the function's own log group, and the optional dead-letter target and VPC.
pub fn role_policy(etl: &EtlFunction, facts: Facts<'_>, names: &Names) -> PolicyDocument {
    let lake = facts.lake;
    let region = lake.spec.region.as_str();
    let p = partition(region);
    let s = &etl.spec;
    let object_arn = |zone: &str, prefix: &str| format!("{}/{prefix}*", bucket_arn(region, &lake.zone_bucket(zone)));
    let allow = |sid: &str, actions: &[&str], resources: &[String]| {
        Statement::new(sid, Effect::Allow, Principal::none(), actions, resources)
    };
    let mut statements = vec![
        allow(
            "ReadSourcePrefix",
            &["s3:GetObject", "s3:GetObjectVersion"],
            &[object_arn(&s.source.zone, &s.source.prefix)],
        ),
        allow("WriteDestinationPrefix", &["s3:PutObject"], &[object_arn(&s.destination.zone, &s.destination.prefix)]),
        // The zone buckets are SSE-KMS with the lake key: reads decrypt, writes generate data keys.
        allow("UseLakeKeyThroughS3", &["kms:Decrypt", "kms:GenerateDataKey"], &[facts.key_arn.to_string()]).when(
            "StringEquals",
            "kms:ViaService",
            &[&format!("s3.{region}.amazonaws.com")],
        ),
        allow(
            "WriteOwnLogs",
            &["logs:CreateLogStream", "logs:PutLogEvents"],
            &[format!("arn:{p}:logs:{region}:{}:log-group:{}:*", facts.account_id, names.log_group)],
        ),
        // X-Ray tracing is on; X-Ray's write APIs support no resource-level permissions.
        allow("WriteTraces", &["xray:PutTraceSegments", "xray:PutTelemetryRecords"], &["*".to_string()]),
    ];
    if let Some(dlq) = &s.dead_letter_queue_arn {
        let action = if dlq.contains(":sns:") { "sns:Publish" } else { "sqs:SendMessage" };
        statements.push(allow("SendFailedEvents", &[action], std::slice::from_ref(dlq)));
    }
    statements.extend(access_statements(&s.access, facts));
    if s.vpc.is_some() {
        // Lambda manages the function's network interfaces with the role; EC2's
        // Describe* and the interface calls Lambda makes accept no narrower resource.
        statements.push(allow(
            "ManageVpcInterfaces",
            &[
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            &["*".to_string()],
        ));
    }
    PolicyDocument::new(statements)
}

/// Item reads of a catalog table; `Query` and `Scan` also reach its indexes.
pub const TABLE_READ_ACTIONS: [&str; 6] = [
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
];
/// Item writes of a catalog table (no table-level change such as UpdateTable).
pub const TABLE_WRITE_ACTIONS: [&str; 4] =
    ["dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"];
/// What a caller of DynamoDB needs of a table's customer managed key: DynamoDB decrypts
/// the table key with the caller's rights; item encryption then happens inside DynamoDB.
pub const TABLE_KEY_ACTIONS: [&str; 2] = ["kms:Decrypt", "kms:DescribeKey"];

/// The statements of the `access` block: each table's actions on exactly that table (and
/// its indexes for reads), `sns:Publish` on exactly the listed topics, and the lake key
/// only through DynamoDB when a table is listed.
pub fn access_statements(access: &Access, facts: Facts<'_>) -> Vec<Statement> {
    let lake = facts.lake;
    let region = lake.spec.region.as_str();
    let p = partition(region);
    let table_arn =
        |name: &str| format!("arn:{p}:dynamodb:{region}:{}:table/{}", facts.account_id, lake.table_name(name));
    let allow = |sid: &str, actions: &[&str], resources: Vec<String>| {
        Statement::new(sid, Effect::Allow, Principal::none(), actions, &resources)
    };
    let mut statements = Vec::new();
    let mut tables: Vec<&TableAccess> = access.tables.iter().collect();
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let reads: Vec<String> = tables
        .iter()
        .filter(|t| t.mode.reads())
        .flat_map(|t| [table_arn(&t.name), format!("{}/index/*", table_arn(&t.name))])
        .collect();
    let writes: Vec<String> = tables.iter().filter(|t| t.mode.writes()).map(|t| table_arn(&t.name)).collect();
    if !reads.is_empty() {
        statements.push(allow("ReadDeclaredTables", &TABLE_READ_ACTIONS, reads));
    }
    if !writes.is_empty() {
        statements.push(allow("WriteDeclaredTables", &TABLE_WRITE_ACTIONS, writes));
    }
    if !tables.is_empty() {
        // Catalog tables are encrypted with the lake key; only DynamoDB may use it for us.
        statements.push(allow("UseLakeKeyThroughDynamoDb", &TABLE_KEY_ACTIONS, vec![facts.key_arn.to_string()]).when(
            "StringEquals",
            "kms:ViaService",
            &[&format!("dynamodb.{region}.amazonaws.com")],
        ));
    }
    let mut topics: Vec<String> = access.topics.iter().map(|t| t.arn.clone()).collect();
    topics.sort();
    topics.dedup();
    if !topics.is_empty() {
        statements.push(allow("PublishDeclaredTopics", &["sns:Publish"], topics.clone()));
        // An encrypted topic needs its key for each publish: only through SNS, only for
        // these topics (SNS names the topic in the encryption context).
        statements.push(through_service(
            "UseTopicKeysThroughSns",
            &["kms:GenerateDataKey*", "kms:Decrypt"],
            "sns",
            "kms:EncryptionContext:aws:sns:topicArn",
            &topics,
        ));
    }
    let mut secrets: Vec<String> = access.secrets.iter().map(|t| t.arn.clone()).collect();
    secrets.sort();
    secrets.dedup();
    if !secrets.is_empty() {
        statements.push(allow("ReadDeclaredSecrets", &["secretsmanager:GetSecretValue"], secrets.clone()));
        // A secret encrypted with a customer managed key is decrypted with the caller's
        // rights: only through Secrets Manager, only for these secrets (their ARN is the
        // encryption context). Secrets under the AWS managed key need nothing more.
        statements.push(through_service(
            "DecryptDeclaredSecretsThroughSecretsManager",
            &["kms:Decrypt"],
            "secretsmanager",
            "kms:EncryptionContext:SecretARN",
            &secrets,
        ));
    }
    statements
}

/// Key use by a service on behalf of the function for the resources `arns` (ARNs of that
/// service): the keys of those resources' accounts and regions, through that service in
/// those regions, with the encryption context naming one of them.
fn through_service(sid: &str, actions: &[&str], service: &str, context_key: &str, arns: &[String]) -> Statement {
    let mut keys = BTreeSet::new();
    let mut services = BTreeSet::new();
    for arn in arns {
        // arn:PARTITION:SERVICE:REGION:ACCOUNT:...
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        if let [_, p, _, region, account, _] = parts.as_slice() {
            keys.insert(format!("arn:{p}:kms:{region}:{account}:key/*"));
            services.insert(format!("{service}.{region}.amazonaws.com"));
        }
    }
    let services: Vec<&str> = services.iter().map(String::as_str).collect();
    let arns: Vec<&str> = arns.iter().map(String::as_str).collect();
    Statement::new(sid, Effect::Allow, Principal::none(), actions, &keys.into_iter().collect::<Vec<_>>())
        .when("StringEquals", "kms:ViaService", &services)
        .when("StringEquals", context_key, &arns)
}

/// The version of the package to deploy: the pinned one, else what S3 reports for the
/// object now (its version id, or its ETag in an unversioned bucket).
pub fn artifact_version(pinned: Option<&str>, head: Option<&crate::aws::s3::ObjectVersion>) -> Option<String> {
    if let Some(v) = pinned {
        return Some(v.to_string());
    }
    let head = head?;
    match (&head.version_id, &head.etag) {
        (Some(v), _) if v != "null" => Some(v.clone()),
        (_, Some(etag)) => Some(format!("etag:{}", etag.trim_matches('"'))),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const LAKE: &str = "
apiVersion: lakeops.dev/v1alpha1
kind: DataLake
metadata: {name: sales, namespace: team-a, generation: 1, uid: lake-uid}
spec:
  region: eu-west-1
  zones: [{name: raw}, {name: curated}]
  tags: {cost-center: analytics}
";

    pub(crate) const ETL: &str = "
apiVersion: lakeops.dev/v1alpha1
kind: EtlFunction
metadata: {name: orders, namespace: team-a, generation: 1, uid: etl-uid}
spec:
  dataLakeRef: {name: sales}
  source: {zone: raw, prefix: incoming/orders/, suffix: .csv}
  destination: {zone: curated, prefix: orders/}
  code: {s3Bucket: team-a-artifacts, s3Key: etl/orders.zip}
  runtime: python3.12
  handler: app.handler
  environment: {OUTPUT_FORMAT: parquet}
  deadLetterQueueArn: arn:aws:sqs:eu-west-1:123456789012:orders-dlq
";

    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/k1";

    fn fixtures() -> (EtlFunction, DataLake) {
        (serde_saphyr::from_str(ETL).expect("etl"), serde_saphyr::from_str(LAKE).expect("lake"))
    }

    fn facts(lake: &DataLake) -> Facts<'_> {
        Facts { lake, account_id: "123456789012", key_arn: KEY, permissions_boundary: None }
    }

    #[test]
    fn names_derive_from_namespace_and_name_and_long_ones_are_hashed_to_64() {
        let (etl, _) = fixtures();
        let n = names(&etl);
        assert_eq!(n.function, "lakeops-team-a-orders");
        assert_eq!(n.log_group, "/aws/lambda/lakeops-team-a-orders");

        let mut long = etl.clone();
        long.metadata.name = Some("x".repeat(80));
        let a = names(&long);
        long.metadata.name = Some(format!("{}y", "x".repeat(79)));
        let b = names(&long);
        assert_eq!(a.function.len(), 64);
        assert_ne!(a.function, b.function, "names differing only past the cut stay distinct");
        assert_eq!(a.role, a.function);
    }

    #[test]
    fn the_role_grants_exactly_the_declared_prefixes_and_no_wildcard_actions() {
        let (etl, lake) = fixtures();
        let d = desired(&etl, facts(&lake));
        let p = &d.role.permissions;

        for st in &p.statements {
            assert!(st.actions.iter().all(|a| !a.contains('*')), "{}: wildcard action", st.sid);
            assert!(st.principal.is_none(), "identity policies name no principal");
        }
        let find = |sid: &str| p.statements.iter().find(|s| s.sid == sid).expect(sid);
        assert_eq!(find("ReadSourcePrefix").resources, ["arn:aws:s3:::team-a-sales-raw/incoming/orders/*"]);
        assert_eq!(find("WriteDestinationPrefix").resources, ["arn:aws:s3:::team-a-sales-curated/orders/*"]);
        assert_eq!(find("UseLakeKeyThroughS3").resources, [KEY]);
        assert_eq!(
            find("UseLakeKeyThroughS3").condition["StringEquals"]["kms:ViaService"],
            ["s3.eu-west-1.amazonaws.com"]
        );
        assert_eq!(
            find("WriteOwnLogs").resources,
            ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/lakeops-team-a-orders:*"]
        );
        assert_eq!(find("SendFailedEvents").actions, ["sqs:SendMessage"]);
        assert!(p.statements.iter().all(|s| s.sid != "ManageVpcInterfaces"), "no VPC, no EC2 rights");
        // Only X-Ray's and EC2's APIs, which accept no narrower resource, get `*`.
        let starred: Vec<&str> =
            p.statements.iter().filter(|s| s.resources.iter().any(|r| r == "*")).map(|s| s.sid.as_str()).collect();
        assert_eq!(starred, ["WriteTraces"]);
    }

    #[test]
    fn declared_access_becomes_exact_actions_on_exact_arns_and_the_key_only_through_dynamodb() {
        let (mut etl, lake) = fixtures();
        etl.spec.access = serde_saphyr::from_str(
            "
tables: [{name: datasets, mode: read}, {name: tokens, mode: readWrite}, {name: audit, mode: write}]
topics: [{arn: 'arn:aws:sns:eu-west-1:123456789012:alerts'}]
",
        )
        .expect("access");
        let statements = access_statements(&etl.spec.access, facts(&lake));
        let json = PolicyDocument::new(statements).to_json();
        assert_eq!(
            json,
            concat!(
                r#"{"Version":"2012-10-17","Statement":["#,
                r#"{"Sid":"ReadDeclaredTables","Effect":"Allow","Action":["dynamodb:BatchGetItem","dynamodb:ConditionCheckItem","dynamodb:DescribeTable","dynamodb:GetItem","dynamodb:Query","dynamodb:Scan"],"#,
                r#""Resource":["arn:aws:dynamodb:eu-west-1:123456789012:table/team-a-sales-datasets","arn:aws:dynamodb:eu-west-1:123456789012:table/team-a-sales-datasets/index/*","#,
                r#""arn:aws:dynamodb:eu-west-1:123456789012:table/team-a-sales-tokens","arn:aws:dynamodb:eu-west-1:123456789012:table/team-a-sales-tokens/index/*"]},"#,
                r#"{"Sid":"WriteDeclaredTables","Effect":"Allow","Action":["dynamodb:BatchWriteItem","dynamodb:DeleteItem","dynamodb:PutItem","dynamodb:UpdateItem"],"#,
                r#""Resource":["arn:aws:dynamodb:eu-west-1:123456789012:table/team-a-sales-audit","arn:aws:dynamodb:eu-west-1:123456789012:table/team-a-sales-tokens"]},"#,
                r#"{"Sid":"UseLakeKeyThroughDynamoDb","Effect":"Allow","Action":["kms:Decrypt","kms:DescribeKey"],"Resource":"arn:aws:kms:eu-west-1:123456789012:key/k1","#,
                r#""Condition":{"StringEquals":{"kms:ViaService":"dynamodb.eu-west-1.amazonaws.com"}}},"#,
                r#"{"Sid":"PublishDeclaredTopics","Effect":"Allow","Action":"sns:Publish","Resource":"arn:aws:sns:eu-west-1:123456789012:alerts"},"#,
                r#"{"Sid":"UseTopicKeysThroughSns","Effect":"Allow","Action":["kms:GenerateDataKey*","kms:Decrypt"],"Resource":"arn:aws:kms:eu-west-1:123456789012:key/*","#,
                r#""Condition":{"StringEquals":{"kms:EncryptionContext:aws:sns:topicArn":"arn:aws:sns:eu-west-1:123456789012:alerts","kms:ViaService":"sns.eu-west-1.amazonaws.com"}}}"#,
                "]}"
            )
        );
        // The whole role carries them after the S3 statements; without access, none.
        let d = desired(&etl, facts(&lake));
        assert!(d.role.permissions.statements.iter().any(|s| s.sid == "PublishDeclaredTopics"));
        etl.spec.access = Access::default();
        let d = desired(&etl, facts(&lake));
        assert!(
            d.role.permissions.statements.iter().all(|s| !s.sid.contains("Declared") && !s.sid.contains("DynamoDb")),
            "no access block, no table, topic or DynamoDB key rights"
        );
    }

    #[test]
    fn a_write_only_table_grants_no_reads_and_a_topic_alone_no_key_use() {
        let (mut etl, lake) = fixtures();
        etl.spec.access = serde_saphyr::from_str("tables: [{name: audit, mode: write}]").expect("access");
        let sids: Vec<String> = access_statements(&etl.spec.access, facts(&lake)).into_iter().map(|s| s.sid).collect();
        assert_eq!(sids, ["WriteDeclaredTables", "UseLakeKeyThroughDynamoDb"]);
        etl.spec.access =
            serde_saphyr::from_str("topics: [{arn: 'arn:aws:sns:eu-west-1:123456789012:a'}]").expect("access");
        let sids: Vec<String> = access_statements(&etl.spec.access, facts(&lake)).into_iter().map(|s| s.sid).collect();
        assert_eq!(sids, ["PublishDeclaredTopics", "UseTopicKeysThroughSns"]);
        etl.spec.access = serde_saphyr::from_str(
            "secrets: [{arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-key-AbCdEf'}]",
        )
        .expect("access");
        let statements = access_statements(&etl.spec.access, facts(&lake));
        assert_eq!(
            PolicyDocument::new(statements).to_json(),
            concat!(
                r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadDeclaredSecrets","Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-key-AbCdEf"},"#,
                r#"{"Sid":"DecryptDeclaredSecretsThroughSecretsManager","Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:eu-west-1:123456789012:key/*","Condition":{"StringEquals":{"kms:EncryptionContext:SecretARN":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-key-AbCdEf","kms:ViaService":"secretsmanager.eu-west-1.amazonaws.com"}}}]}"#
            )
        );
    }

    #[test]
    fn the_trust_policy_names_lambda_for_this_account_only() {
        let json = trust_policy("123456789012").to_json();
        assert_eq!(
            json,
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"LambdaAssumesTheRole","Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}]}"#
        );
    }

    #[test]
    fn the_function_is_encrypted_traced_owned_and_triggered_by_its_source_filter() {
        let (etl, lake) = fixtures();
        let d =
            desired(&etl, Facts { permissions_boundary: Some("arn:aws:iam::123456789012:policy/b"), ..facts(&lake) });

        assert_eq!(d.function.config.kms_key_arn.as_deref(), Some(KEY));
        assert!(d.function.config.tracing_active);
        assert_eq!(d.function.config.role_arn, "arn:aws:iam::123456789012:role/lakeops/lakeops-team-a-orders");
        assert_eq!(d.role.boundary.as_deref(), Some("arn:aws:iam::123456789012:policy/b"));
        assert_eq!(d.function.tags.get("lakeops.dev/owner").map(String::as_str), Some("team-a/orders"));
        assert_eq!(d.function.tags.get("cost-center").map(String::as_str), Some("analytics"));
        assert_eq!(d.trigger.bucket, "team-a-sales-raw");
        assert_eq!(d.trigger.permission.source_arn, "arn:aws:s3:::team-a-sales-raw");
        assert_eq!(d.trigger.entry.arn, "arn:aws:lambda:eu-west-1:123456789012:function:lakeops-team-a-orders");
        assert_eq!(
            (d.trigger.entry.prefix.as_deref(), d.trigger.entry.suffix.as_deref()),
            (Some("incoming/orders/"), Some(".csv"))
        );
        assert_eq!(d.log_group.retention_days, 365);
    }

    #[test]
    fn the_deployed_version_is_the_pinned_one_else_the_objects_version_else_its_etag() {
        use crate::aws::s3::ObjectVersion;
        let versioned = ObjectVersion { version_id: Some("v2".into()), etag: Some("\"abc\"".into()) };
        let unversioned = ObjectVersion { version_id: Some("null".into()), etag: Some("\"abc\"".into()) };
        assert_eq!(artifact_version(Some("v1"), Some(&versioned)).as_deref(), Some("v1"));
        assert_eq!(artifact_version(None, Some(&versioned)).as_deref(), Some("v2"));
        assert_eq!(artifact_version(None, Some(&unversioned)).as_deref(), Some("etag:abc"));
        assert_eq!(artifact_version(None, None), None);
    }
}
