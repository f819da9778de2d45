//! The controller's own IAM policy: exactly the AWS actions its adapters call, scoped to
//! what lakeops names and tags.
use crate::policy::{Effect, PolicyDocument, Principal, Statement};

/// The IAM action a recorded `(service, operation)` needs, or `None` for calls IAM does
/// not control (STS GetCallerIdentity).
pub fn action_for(service: &str, operation: &str) -> Option<String> {
    let action = match (service, operation) {
        ("sts", "GetCallerIdentity") => return None,
        // API Gateway's IAM actions are the HTTP verbs of its REST paths.
        ("api gateway", op) => {
            let verb = [("Get", "GET"), ("Create", "POST"), ("Put", "PUT"), ("Update", "PATCH"), ("Delete", "DELETE")]
                .iter()
                .find(|(prefix, _)| op.starts_with(prefix))
                .map_or("POST", |(_, verb)| verb);
            return Some(format!("apigateway:{verb}"));
        }
        ("s3", "GetBucketEncryption") => "GetEncryptionConfiguration",
        ("s3", "PutBucketEncryption") => "PutEncryptionConfiguration",
        ("s3", "GetPublicAccessBlock") => "GetBucketPublicAccessBlock",
        ("s3", "PutPublicAccessBlock") => "PutBucketPublicAccessBlock",
        ("s3", "GetBucketLifecycleConfiguration") => "GetLifecycleConfiguration",
        ("s3", "PutBucketLifecycleConfiguration") => "PutLifecycleConfiguration",
        ("s3", "GetObjectLockConfiguration") => "GetBucketObjectLockConfiguration",
        ("s3", "PutObjectLockConfiguration") => "PutBucketObjectLockConfiguration",
        ("s3", "ListObjectVersions") => "ListBucketVersions",
        ("s3", "HeadBucket") => "ListBucket",
        ("s3", "HeadObject") => "GetObject",
        ("s3", "GetBucketNotificationConfiguration") => "GetBucketNotification",
        ("s3", "PutBucketNotificationConfiguration") => "PutBucketNotification",
        ("lambda", "GetFunctionCodeSigningConfig") => "GetFunctionCodeSigningConfig",
        ("s3", "GetBucketReplication") => "GetReplicationConfiguration",
        ("s3", "PutBucketReplication" | "DeleteBucketReplication") => "PutReplicationConfiguration",
        (_, op) => op,
    };
    // The SDK names CloudWatch Logs `cloudwatchlogs`; IAM's prefix is `logs`.
    let prefix = match service {
        "cloudwatchlogs" | "cloudwatch logs" => "logs",
        // The SDK's metadata names AWS Config `config service`.
        "config service" => "config",
        "eventbridge" => "events",
        "sfn" => "states",
        other => other,
    };
    Some(format!("{prefix}:{action}"))
}

const S3_ACTIONS: &[&str] = &[
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:GetBucketTagging",
    "s3:PutBucketTagging",
    "s3:GetEncryptionConfiguration",
    "s3:PutEncryptionConfiguration",
    "s3:GetBucketPublicAccessBlock",
    "s3:PutBucketPublicAccessBlock",
    "s3:GetBucketOwnershipControls",
    "s3:PutBucketOwnershipControls",
    "s3:GetBucketVersioning",
    "s3:PutBucketVersioning",
    "s3:GetBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:GetBucketLogging",
    "s3:PutBucketLogging",
    "s3:GetLifecycleConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:GetBucketObjectLockConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:ListBucketVersions",
    "s3:GetBucketNotification",
    "s3:PutBucketNotification",
    "s3:GetReplicationConfiguration",
    "s3:PutReplicationConfiguration",
];

const LAMBDA_ACTIONS: &[&str] = &[
    "lambda:GetFunction",
    "lambda:CreateFunction",
    "lambda:UpdateFunctionConfiguration",
    "lambda:UpdateFunctionCode",
    "lambda:PutFunctionConcurrency",
    "lambda:DeleteFunctionConcurrency",
    "lambda:GetFunctionCodeSigningConfig",
    "lambda:PutFunctionCodeSigningConfig",
    "lambda:DeleteFunctionCodeSigningConfig",
    "lambda:GetPolicy",
    "lambda:AddPermission",
    "lambda:RemovePermission",
    "lambda:TagResource",
    "lambda:DeleteFunction",
];

const LOG_GROUP_ACTIONS: &[&str] = &[
    "logs:CreateLogGroup",
    "logs:PutRetentionPolicy",
    "logs:AssociateKmsKey",
    "logs:ListTagsForResource",
    "logs:TagResource",
    "logs:DeleteLogGroup",
];

const KMS_READ: &[&str] = &["kms:DescribeKey", "kms:ListResourceTags"];
const KMS_OWNED: &[&str] = &[
    "kms:GetKeyRotationStatus",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:TagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CreateAlias",
];

const DYNAMODB_ACTIONS: &[&str] = &[
    "dynamodb:CreateTable",
    "dynamodb:DescribeTable",
    "dynamodb:UpdateTable",
    "dynamodb:DeleteTable",
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:UpdateContinuousBackups",
    "dynamodb:DescribeTimeToLive",
    "dynamodb:UpdateTimeToLive",
    "dynamodb:ListTagsOfResource",
    "dynamodb:TagResource",
    "dynamodb:Scan",
    // UpdateTable with ReplicaUpdates (global tables 2019.11.21) also needs these.
    "dynamodb:CreateTableReplica",
    "dynamodb:DeleteTableReplica",
];

/// BackupPolicy: the catalog tables' AWS Backup vaults, named `lakeops-*`. Never
/// DeleteRecoveryPoint or DeleteBackupVaultLockConfiguration.
const BACKUP_VAULT_ACTIONS: &[&str] = &[
    "backup:DescribeBackupVault",
    "backup:CreateBackupVault",
    "backup:DeleteBackupVault",
    "backup:PutBackupVaultLockConfiguration",
    "backup:ListTags",
    "backup:TagResource",
];
/// Backup plans are named by id: scoped by the ownership tag instead.
const BACKUP_PLAN_ACTIONS: &[&str] = &[
    "backup:GetBackupPlan",
    "backup:UpdateBackupPlan",
    "backup:DeleteBackupPlan",
    "backup:ListBackupSelections",
    "backup:CreateBackupSelection",
    "backup:DeleteBackupSelection",
    "backup:ListTags",
    "backup:TagResource",
];

/// SecurityBaseline: the region's GuardDuty detector (never DeleteDetector).
const GUARDDUTY_DETECTOR_ACTIONS: &[&str] = &["guardduty:GetDetector", "guardduty:UpdateDetector"];
/// ListDetectors and CreateDetector name no detector; tags go with the create.
const GUARDDUTY_ACCOUNT_ACTIONS: &[&str] =
    &["guardduty:ListDetectors", "guardduty:CreateDetector", "guardduty:TagResource"];
/// SecurityBaseline: Inspector for the account (never Disable); neither names a resource.
const INSPECTOR_ACTIONS: &[&str] = &[
    "inspector2:Enable",
    "inspector2:BatchGetAccountStatus",
    // The findings on each EtlFunction's status.
    "inspector2:ListFindings",
    // The baseline's suppressions (tags go with the create).
    "inspector2:ListFilters",
    "inspector2:CreateFilter",
    "inspector2:UpdateFilter",
    "inspector2:DeleteFilter",
    "inspector2:TagResource",
];
/// SecurityBaseline: the account trail's CIS metric filters, on its log group only.
const METRIC_FILTER_ACTIONS: &[&str] = &["logs:DescribeMetricFilters", "logs:PutMetricFilter"];
/// SecurityBaseline: the CIS alarms (never DeleteAlarms); tags go with the create.
const ALARM_ACTIONS: &[&str] = &[
    "cloudwatch:DescribeAlarms",
    "cloudwatch:PutMetricAlarm",
    "cloudwatch:ListTagsForResource",
    "cloudwatch:TagResource",
];
/// SecurityBaseline: the alert topic (never DeleteTopic or Unsubscribe); tags go with the
/// create. Publish: the controller's own deployment and deletion messages.
const SNS_TOPIC_ACTIONS: &[&str] = &[
    "sns:CreateTopic",
    "sns:TagResource",
    "sns:GetTopicAttributes",
    "sns:SetTopicAttributes",
    "sns:ListTagsForResource",
    "sns:ListSubscriptionsByTopic",
    "sns:Subscribe",
    "sns:Publish",
];
/// SecurityBaseline: the Config recorder and channel (never Stop or Delete); Config
/// authorises these on the account, not on a recorder ARN.
const CONFIG_ACTIONS: &[&str] = &[
    "config:DescribeConfigurationRecorders",
    "config:PutConfigurationRecorder",
    "config:DescribeDeliveryChannels",
    "config:PutDeliveryChannel",
    "config:StartConfigurationRecorder",
    "config:DescribeConfigurationRecorderStatus",
];

const CLOUDTRAIL_ACTIONS: &[&str] = &[
    "cloudtrail:CreateTrail",
    "cloudtrail:AddTags",
    "cloudtrail:GetTrail",
    "cloudtrail:GetEventSelectors",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:UpdateTrail",
    "cloudtrail:PutEventSelectors",
    "cloudtrail:StartLogging",
    "cloudtrail:ListTags",
    "cloudtrail:DeleteTrail",
];

/// EventBridge rules and their targets.
const EVENTS_ACTIONS: &[&str] = &[
    "events:DescribeRule",
    "events:PutRule",
    "events:ListTargetsByRule",
    "events:PutTargets",
    "events:RemoveTargets",
    "events:DeleteRule",
    "events:ListTagsForResource",
    "events:TagResource",
];

/// What the creator of a state machine that logs needs of CloudWatch Logs' delivery APIs.
const PIPELINE_LOG_DELIVERY_ACTIONS: &[&str] = &[
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
];

/// Step Functions state machines.
const STATES_ACTIONS: &[&str] = &[
    "states:DescribeStateMachine",
    "states:CreateStateMachine",
    "states:UpdateStateMachine",
    "states:DeleteStateMachine",
    "states:ListTagsForResource",
    "states:TagResource",
];

/// Roles lakeops generates live under this path, so the policy can scope them.
pub const ROLE_PATH: &str = "/lakeops/";

const IAM_ROLE_ACTIONS: &[&str] = &[
    "iam:UpdateAssumeRolePolicy",
    "iam:TagRole",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:DeleteRole",
];

/// The role actions that decide what a role may do: with a permissions boundary, each is
/// allowed only when the role carries that boundary (`iam:PermissionsBoundary`), so even a
/// compromised controller cannot mint a role beyond it.
const IAM_ROLE_POWER_ACTIONS: &[&str] = &["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy"];

/// The controller's policy. `account` scopes key, table and trail ARNs (`*` when not
/// given); buckets cannot be scoped by account in an ARN, so `bucket_pattern` (e.g.
/// `team-*`) narrows them where bucket prefixes follow a convention.
pub fn controller_policy(account: Option<&str>, bucket_pattern: &str) -> PolicyDocument {
    controller_policy_with(account, bucket_pattern, "*")
}

/// [`controller_policy`], with the buckets holding EtlFunction deployment packages
/// narrowed to `artifact_pattern`.
pub fn controller_policy_with(account: Option<&str>, bucket_pattern: &str, artifact_pattern: &str) -> PolicyDocument {
    controller_policy_bounded(account, bucket_pattern, artifact_pattern, None)
}

/// [`controller_policy_with`] for a controller run with `--permissions-boundary`: roles
/// can only be created or given permissions while they carry `boundary`, and the boundary
/// can never be removed.
pub fn controller_policy_bounded(
    account: Option<&str>,
    bucket_pattern: &str,
    artifact_pattern: &str,
    boundary: Option<&str>,
) -> PolicyDocument {
    let acct = account.unwrap_or("*");
    let owner = format!("aws:ResourceTag/{}", lakeops_crds::names::tag::OWNER);
    let s = |sid: &str, actions: &[&str], resources: &[String]| {
        Statement::new(sid, Effect::Allow, Principal::none(), actions, resources)
    };
    let statements = vec![
        s("LakeBuckets", S3_ACTIONS, &[format!("arn:aws:s3:::{bucket_pattern}")]),
        // CreateKey names no resource; the request must carry the ownership tag.
        s("CreateTaggedKeys", &["kms:CreateKey"], &["*".into()]).when(
            "Null",
            &format!("aws:RequestTag/{}", lakeops_crds::names::tag::OWNER),
            &["false"],
        ),
        // Finding a key by its creation token after a CreateKey whose answer was lost;
        // ListKeys has no resource-level permission.
        s("FindKeysByCreationToken", &["kms:ListKeys"], &["*".into()]),
        s(
            "ReadKeysToCheckOwnership",
            KMS_READ,
            &[format!("arn:aws:kms:*:{acct}:key/*"), format!("arn:aws:kms:*:{acct}:alias/lakeops/*")],
        ),
        s("ManageOwnedKeys", KMS_OWNED, &[format!("arn:aws:kms:*:{acct}:key/*")]).when("Null", &owner, &["false"]),
        s("ManageLakeAliases", &["kms:CreateAlias"], &[format!("arn:aws:kms:*:{acct}:alias/lakeops/*")]),
        s("CatalogTables", DYNAMODB_ACTIONS, &[format!("arn:aws:dynamodb:*:{acct}:table/*")]),
        s(
            "AuditTrails",
            CLOUDTRAIL_ACTIONS,
            &[
                format!("arn:aws:cloudtrail:*:{acct}:trail/lakeops-*"),
                // The SecurityBaseline's account trail (`_` keeps it apart from lake trails).
                format!("arn:aws:cloudtrail:*:{acct}:trail/lakeops_account-*"),
            ],
        ),
        s("LakeFunctions", LAMBDA_ACTIONS, &[format!("arn:aws:lambda:*:{acct}:function:lakeops-*")]),
        // Lambda reads the package with the caller's rights at create and update; the
        // controller reads its version to notice a new upload.
        s(
            "ReadDeploymentPackages",
            &["s3:GetObject", "s3:GetObjectVersion"],
            &[format!("arn:aws:s3:::{artifact_pattern}/*")],
        ),
        // DescribeLogGroups is authorised on the account's log groups as a whole.
        s("FindLogGroups", &["logs:DescribeLogGroups"], &[format!("arn:aws:logs:*:{acct}:log-group:*")]),
        s("FunctionLogGroups", LOG_GROUP_ACTIONS, &[format!("arn:aws:logs:*:{acct}:log-group:/aws/lambda/lakeops-*")]),
        // The log groups trails deliver to (CloudTrail.5).
        s(
            "TrailLogGroups",
            LOG_GROUP_ACTIONS,
            &[
                format!("arn:aws:logs:*:{acct}:log-group:/aws/cloudtrail/lakeops-*"),
                format!("arn:aws:logs:*:{acct}:log-group:/aws/cloudtrail/lakeops_account-*"),
            ],
        ),
        // The CIS metric filters live on the account trail's group only.
        s(
            "AccountTrailMetricFilters",
            METRIC_FILTER_ACTIONS,
            &[format!("arn:aws:logs:*:{acct}:log-group:/aws/cloudtrail/lakeops_account-*")],
        ),
        s("CisAlarms", ALARM_ACTIONS, &[format!("arn:aws:cloudwatch:*:{acct}:alarm:lakeops-cis-*")]),
        // The lake keys the lake-key alarm watches are found by their aliases; ListAliases
        // has no resource-level permission.
        s("FindLakeKeys", &["kms:ListAliases"], &["*".into()]),
        s(
            "PipelineLogGroups",
            LOG_GROUP_ACTIONS,
            &[format!("arn:aws:logs:*:{acct}:log-group:/aws/vendedlogs/states/lakeops-*")],
        ),
        // A state machine encrypted with the lake key: Step Functions checks the caller's
        // rights on the key when the machine is created or updated.
        s(
            "EncryptStateMachines",
            &["kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt"],
            &[format!("arn:aws:kms:*:{acct}:key/*")],
        )
        .when("Null", &owner, &["false"])
        .when("StringLike", "kms:ViaService", &["states.*.amazonaws.com"]),
        // Logging to CloudWatch Logs: the delivery APIs accept no narrower resource.
        s("PipelineLogDelivery", PIPELINE_LOG_DELIVERY_ACTIONS, &["*".into()]),
        // Lambda encrypts function environments with the lake key, through a grant.
        s(
            "EncryptFunctionEnvironments",
            &["kms:Encrypt", "kms:Decrypt", "kms:CreateGrant"],
            &[format!("arn:aws:kms:*:{acct}:key/*")],
        )
        .when("Null", &owner, &["false"])
        .when("StringLike", "kms:ViaService", &["lambda.*.amazonaws.com"]),
        // IAM authorises a read of a role that does not exist yet against `role/NAME`: it
        // cannot know the path the role will have. A policy scoped to the path would refuse
        // the controller's first look at every role it is about to create, so the read of a
        // role's metadata (trust policy, tags, boundary; not its permissions) is account-wide.
        s("FindRoles", &["iam:GetRole"], &[format!("arn:aws:iam::{acct}:role/*")]),
        s("GeneratedRoles", IAM_ROLE_ACTIONS, &[format!("arn:aws:iam::{acct}:role{ROLE_PATH}*")]),
        match boundary {
            Some(b) => s(
                "ShapeBoundedRoles",
                IAM_ROLE_POWER_ACTIONS,
                &[format!("arn:aws:iam::{acct}:role{ROLE_PATH}*")],
            )
            .when("StringEquals", "iam:PermissionsBoundary", &[b]),
            None => s(
                "ShapeGeneratedRoles",
                &[IAM_ROLE_POWER_ACTIONS, &["iam:DeleteRolePermissionsBoundary"]].concat(),
                &[format!("arn:aws:iam::{acct}:role{ROLE_PATH}*")],
            ),
        },
        // EtlPipeline triggers; rule names start with `lakeops-`.
        s("PipelineRules", EVENTS_ACTIONS, &[format!("arn:aws:events:*:{acct}:rule/lakeops-*")]),
        s("PipelineStateMachines", STATES_ACTIONS, &[format!("arn:aws:states:*:{acct}:stateMachine:lakeops-*")]),
        // EtlPipeline ingest APIs. API ids are random: lists and reads are account-wide (an
        // API is found by its tags); creates must carry the ownership tag, and every change
        // under an API or usage plan needs it on the resource (child resources inherit it).
        s(
            "FindIngestApis",
            &["apigateway:GET"],
            &[
                "arn:aws:apigateway:*::/restapis".into(),
                "arn:aws:apigateway:*::/restapis/*".into(),
                "arn:aws:apigateway:*::/usageplans".into(),
                "arn:aws:apigateway:*::/domainnames".into(),
                "arn:aws:apigateway:*::/domainnames/*".into(),
            ],
        ),
        s(
            "CreateTaggedIngestApis",
            &["apigateway:POST"],
            &[
                "arn:aws:apigateway:*::/restapis".into(),
                "arn:aws:apigateway:*::/usageplans".into(),
                "arn:aws:apigateway:*::/domainnames".into(),
            ],
        )
        .when("Null", &format!("aws:RequestTag/{}", lakeops_crds::names::tag::OWNER), &["false"]),
        s(
            "ManageOwnedIngestApis",
            &["apigateway:POST", "apigateway:PUT", "apigateway:PATCH", "apigateway:DELETE"],
            &[
                "arn:aws:apigateway:*::/restapis/*".into(),
                "arn:aws:apigateway:*::/usageplans/*".into(),
                "arn:aws:apigateway:*::/domainnames/*".into(),
            ],
        )
        .when("Null", &owner, &["false"]),
        s(
            "IngestAccessLogGroups",
            LOG_GROUP_ACTIONS,
            &[format!("arn:aws:logs:*:{acct}:log-group:/aws/apigateway/lakeops-*")],
        ),
        // BackupPolicy: AWS Backup of the catalog tables.
        s("CatalogBackupVaults", BACKUP_VAULT_ACTIONS, &[format!("arn:aws:backup:*:{acct}:backup-vault:lakeops-*")]),
        // CreateBackupVault mounts the vault's storage, which names no resource.
        s("CatalogBackupVaultStorage", &["backup-storage:MountCapsule"], &["*".into()]),
        // A vault encrypted with a lakeops key: AWS Backup checks the caller's rights on it.
        s("EncryptBackupVaults", &["kms:DescribeKey", "kms:CreateGrant"], &[format!("arn:aws:kms:*:{acct}:key/*")])
            .when("Null", &owner, &["false"])
            .when("StringLike", "kms:ViaService", &["backup.*.amazonaws.com"]),
        // ListBackupPlans and CreateBackupPlan name no plan; a new plan must carry the tag.
        s("FindCatalogBackupPlans", &["backup:ListBackupPlans"], &["*".into()]),
        s("CreateTaggedBackupPlans", &["backup:CreateBackupPlan"], &["*".into()]).when(
            "Null",
            &format!("aws:RequestTag/{}", lakeops_crds::names::tag::OWNER),
            &["false"],
        ),
        s("ManageOwnedBackupPlans", BACKUP_PLAN_ACTIONS, &[format!("arn:aws:backup:*:{acct}:backup-plan:*")]).when(
            "Null",
            &owner,
            &["false"],
        ),
        // The generated backup roles go to AWS Backup only.
        s("PassBackupRoles", &["iam:PassRole"], &[format!("arn:aws:iam::{acct}:role{ROLE_PATH}*-backup")]).when(
            "StringEquals",
            "iam:PassedToService",
            &["backup.amazonaws.com"],
        ),
        // SecurityBaseline: the account-level detective controls of a region.
        s("GuardDutyDetectors", GUARDDUTY_ACCOUNT_ACTIONS, &["*".into()]),
        s("GuardDutyDetectorSettings", GUARDDUTY_DETECTOR_ACTIONS, &[format!("arn:aws:guardduty:*:{acct}:detector/*")]),
        s("InspectorLambdaScanning", INSPECTOR_ACTIONS, &["*".into()]),
        s("ConfigRecorder", CONFIG_ACTIONS, &["*".into()]),
        s("AlertTopic", SNS_TOPIC_ACTIONS, &[format!("arn:aws:sns:*:{acct}:lakeops-alerts")]),
        // Publishing to the encrypted topic uses its key, through SNS only.
        s("AlertKeyThroughSns", &["kms:GenerateDataKey", "kms:Decrypt"], &[format!("arn:aws:kms:*:{acct}:key/*")])
            .when("Null", &owner, &["false"])
            .when("StringLike", "kms:ViaService", &["sns.*.amazonaws.com"]),
        s(
            "BaselineBuckets",
            S3_ACTIONS,
            &[
                format!("arn:aws:s3:::lakeops-config-{acct}-*"),
                format!("arn:aws:s3:::lakeops-trail-{acct}-*"),
                format!("arn:aws:s3:::lakeops-logs-{acct}-*"),
            ],
        ),
        // A new recorder names Config's service-linked role; GuardDuty's features need theirs.
        s(
            "PassConfigRole",
            &["iam:PassRole"],
            &[format!("arn:aws:iam::{acct}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig")],
        ),
        s(
            "ServiceLinkedRoles",
            &["iam:CreateServiceLinkedRole"],
            &[format!("arn:aws:iam::{acct}:role/aws-service-role/*")],
        )
        .when(
            "StringEquals",
            "iam:AWSServiceName",
            &[
                "guardduty.amazonaws.com",
                "malware-protection.guardduty.amazonaws.com",
                "config.amazonaws.com",
                "inspector2.amazonaws.com",
            ],
        ),
        // Generated roles are handed only to the services they were generated for.
        s("PassGeneratedRoles", &["iam:PassRole"], &[format!("arn:aws:iam::{acct}:role{ROLE_PATH}*")]).when(
            "StringEquals",
            "iam:PassedToService",
            &[
                "lambda.amazonaws.com",
                "s3.amazonaws.com",
                "cloudtrail.amazonaws.com",
                "events.amazonaws.com",
                "states.amazonaws.com",
                "apigateway.amazonaws.com",
            ],
        ),
    ];
    PolicyDocument::new(statements)
}

/// True when some Allow statement names `action` exactly (the policy has no wildcards).
pub fn allows(policy: &PolicyDocument, action: &str) -> bool {
    policy.statements.iter().any(|s| s.effect == Effect::Allow && s.actions.iter().any(|a| a == action))
}

/// The policy as pretty JSON (its statements name no principal, as identity policies must not).
pub fn to_identity_json(policy: &PolicyDocument) -> String {
    serde_json::to_string_pretty(policy).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_has_no_wildcard_actions_and_scopes_keys_tables_and_trails_to_the_account() {
        let p = controller_policy(Some("123456789012"), "*");
        for st in &p.statements {
            assert!(st.actions.iter().all(|a| !a.contains('*')), "{} has a wildcard action", st.sid);
            // Bucket ARNs carry no account; CreateKey and ListKeys name no resource; API
            // Gateway ARNs carry no account (its paths are per account and region).
            if ![
                "FindIngestApis",
                "CreateTaggedIngestApis",
                "ManageOwnedIngestApis",
                "CreateTaggedKeys",
                "FindKeysByCreationToken",
                "FindLakeKeys",
                "LakeBuckets",
                "ReadDeploymentPackages",
                "GuardDutyDetectors",
                "InspectorLambdaScanning",
                "ConfigRecorder",
                "PipelineLogDelivery",
                "CatalogBackupVaultStorage",
                "FindCatalogBackupPlans",
                "CreateTaggedBackupPlans",
            ]
            .contains(&st.sid.as_str())
            {
                assert!(st.resources.iter().all(|r| r.contains("123456789012")), "{}: {:?}", st.sid, st.resources);
            }
        }
        let json = to_identity_json(&p);
        assert!(!json.contains("Principal"), "{json}");
    }

    #[test]
    fn with_a_boundary_roles_are_shaped_only_under_it_and_it_cannot_be_removed() {
        let b = "arn:aws:iam::123456789012:policy/lakeops-boundary";
        let p = controller_policy_bounded(Some("123456789012"), "*", "*", Some(b));
        let shaping: Vec<&Statement> =
            p.statements.iter().filter(|s| s.actions.iter().any(|a| a == "iam:CreateRole")).collect();
        assert_eq!(shaping.len(), 1);
        assert_eq!(shaping[0].condition["StringEquals"]["iam:PermissionsBoundary"], [b]);
        assert!(shaping[0].actions.iter().any(|a| a == "iam:PutRolePolicy"));
        assert!(!allows(&p, "iam:DeleteRolePermissionsBoundary"));
        assert!(allows(&controller_policy(None, "*"), "iam:DeleteRolePermissionsBoundary"));
    }

    #[test]
    fn recorded_operations_map_to_the_policy_actions() {
        let p = controller_policy(None, "*");
        for (svc, op) in [
            ("s3", "GetBucketEncryption"),
            ("s3", "ListObjectVersions"),
            ("kms", "CreateKey"),
            ("kms", "ListKeys"),
            ("dynamodb", "DescribeContinuousBackups"),
            ("cloudtrail", "PutEventSelectors"),
            ("s3", "GetBucketReplication"),
            ("s3", "PutBucketReplication"),
            ("s3", "DeleteBucketReplication"),
            ("eventbridge", "PutRule"),
            ("eventbridge", "PutTargets"),
            ("sfn", "CreateStateMachine"),
            ("sfn", "UpdateStateMachine"),
            ("cloudwatchlogs", "PutMetricFilter"),
            ("cloudwatch", "PutMetricAlarm"),
            ("cloudwatch", "DescribeAlarms"),
            ("kms", "ListAliases"),
            ("api gateway", "CreateRestApi"),
            ("api gateway", "UpdateStage"),
            ("api gateway", "GetUsagePlans"),
            ("api gateway", "PutIntegration"),
            ("api gateway", "DeleteRestApi"),
        ] {
            let action = action_for(svc, op).expect("controlled by IAM");
            assert!(allows(&p, &action), "{action} missing");
        }
        assert_eq!(action_for("sts", "GetCallerIdentity"), None);
        assert_eq!(action_for("s3", "DeleteBucketReplication").as_deref(), Some("s3:PutReplicationConfiguration"));
        assert!(allows(&p, "dynamodb:CreateTableReplica") && allows(&p, "dynamodb:DeleteTableReplica"));
    }

    #[test]
    fn backup_roles_are_passed_only_to_aws_backup_and_no_recovery_point_is_ever_deleted() {
        let p = controller_policy(Some("123456789012"), "*");
        let pass = p.statements.iter().find(|s| s.sid == "PassBackupRoles").expect("pass");
        assert_eq!(pass.condition["StringEquals"]["iam:PassedToService"], ["backup.amazonaws.com"]);
        assert_eq!(pass.resources, ["arn:aws:iam::123456789012:role/lakeops/*-backup"]);
        for op in ["CreateBackupVault", "PutBackupVaultLockConfiguration", "UpdateBackupPlan", "CreateBackupSelection"]
        {
            assert!(allows(&p, &action_for("backup", op).expect("controlled")), "{op}");
        }
        assert!(!allows(&p, "backup:DeleteRecoveryPoint") && !allows(&p, "backup:DeleteBackupVaultLockConfiguration"));
    }
}
