//! CloudTrail delivery to CloudWatch Logs (CloudTrail.5), a shared step for every kind that
//! owns a trail (the DataLake's lake trail, the SecurityBaseline's account trail): a log
//! group encrypted with the owner's key and kept `retention_days`, and the role CloudTrail
//! assumes to write into it, allowed `logs:CreateLogStream` and `logs:PutLogEvents` on that
//! one group and trusting `cloudtrail.amazonaws.com` for that one trail (`aws:SourceArn`).
//!
//! The caller builds [`TrailLogs`] with [`desired`], lets its key policy name the group
//! with [`key_statement`], runs [`converge`] before the trail, and puts the [`Delivery`]
//! it returns into the trail's `TrailSettings`. Reads on a converged owner: DescribeLogGroups
//! and the role's 2 reads (the group's tags only at first sight).
use std::collections::BTreeMap;
use std::fmt;

use crate::aws::error::AwsResult;
use crate::aws::iam::IamApi;
use crate::aws::logs::{LogGroup, LogsApi};
use crate::policy::{Effect, PolicyDocument, Principal, Statement};

use super::role::{self, OwnedRole};
use super::{Action, Describe, Exec, Stop, is_placeholder};

/// The name of the delivery role's inline policy.
pub const POLICY_NAME: &str = "cloudtrail-to-cloudwatch-logs";

/// What the caller names and owns; everything else follows from it.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub region: &'a str,
    pub account: &'a str,
    /// The trail's ARN (known before it exists): the only source the role trusts.
    pub trail_arn: &'a str,
    pub group_name: String,
    pub role_name: String,
    /// The key encrypting the group (its policy must carry [`key_statement`]).
    pub key_arn: &'a str,
    /// A CloudWatch Logs retention value.
    pub retention_days: i32,
    pub tags: BTreeMap<String, String>,
    /// The permissions boundary every generated role carries (a controller flag).
    pub boundary: Option<String>,
}

/// The log group lakeops owns.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedLogGroup {
    pub name: String,
    pub kms_key_arn: String,
    pub retention_days: i32,
    pub tags: BTreeMap<String, String>,
}

/// The delivery: the group and the role.
#[derive(Clone, Debug, PartialEq)]
pub struct TrailLogs {
    pub group: OwnedLogGroup,
    pub role: OwnedRole,
    /// The group's ARN as CloudTrail takes it (`...:log-group:NAME:*`).
    pub group_arn: String,
    pub predicted_role_arn: String,
}

/// What goes into the trail's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// `...:log-group:NAME:*`.
    pub log_group_arn: String,
    pub role_arn: String,
}

/// What the owner recorded in status of an earlier round (ARNs it created or adopted), so
/// ownership is checked only at first sight.
#[derive(Clone, Copy, Debug, Default)]
pub struct Recorded<'a> {
    pub log_group_arn: Option<&'a str>,
    pub role_arn: Option<&'a str>,
}

fn partition(region: &str) -> &'static str {
    crate::reconcile::datalake::desired::partition(region)
}

/// The ARN of a log group, without the `:*` suffix (as the KMS encryption context names it).
pub fn group_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:{}:logs:{region}:{account}:log-group:{name}", partition(region))
}

/// The delivery `input` asks for (pure).
pub fn desired(input: &Input<'_>) -> TrailLogs {
    let Input { region, account, trail_arn, .. } = *input;
    let group = group_arn(region, account, &input.group_name);
    let trust = PolicyDocument::new(vec![
        Statement::new(
            "CloudTrailDeliversThisTrail",
            Effect::Allow,
            Principal::service("cloudtrail.amazonaws.com"),
            &["sts:AssumeRole"],
            &[],
        )
        .when("StringEquals", "aws:SourceArn", &[trail_arn])
        .when("StringEquals", "aws:SourceAccount", &[account]),
    ]);
    let policy = PolicyDocument::new(vec![Statement::new(
        "WriteTheTrailLogGroupOnly",
        Effect::Allow,
        Principal::none(),
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        &[format!("{group}:log-stream:*")],
    )]);
    TrailLogs {
        group: OwnedLogGroup {
            name: input.group_name.clone(),
            kms_key_arn: input.key_arn.to_string(),
            retention_days: input.retention_days,
            tags: input.tags.clone(),
        },
        role: OwnedRole {
            name: input.role_name.clone(),
            path: crate::iam::ROLE_PATH,
            description: "lakeops: CloudTrail delivery of one trail to its CloudWatch Logs group",
            trust,
            policy_name: POLICY_NAME,
            policy,
            boundary: input.boundary.clone(),
            tags: input.tags.clone(),
        },
        group_arn: format!("{group}:*"),
        predicted_role_arn: format!(
            "arn:{}:iam::{account}:role{}{}",
            partition(region),
            crate::iam::ROLE_PATH,
            input.role_name
        ),
    }
}

/// The key-policy statement that lets CloudWatch Logs use the key for this group only.
pub fn key_statement(region: &str, account: &str, group_name: &str) -> Statement {
    Statement::new(
        "CloudWatchLogsEncryptsTheTrailLogGroup",
        Effect::Allow,
        Principal::service(&format!("logs.{region}.amazonaws.com")),
        &["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        &["*".into()],
    )
    .when("ArnEquals", "kms:EncryptionContext:aws:logs:arn", &[&group_arn(region, account, group_name)])
}

/// One CloudWatch Logs write on the group.
#[derive(Clone, Debug, PartialEq)]
pub enum LogGroupChange {
    Create {
        name: String,
        kms_key_arn: String,
        tags: BTreeMap<String, String>,
    },
    PutRetention {
        name: String,
        days: i32,
    },
    AssociateKey {
        name: String,
        kms_key_arn: String,
    },
    /// Adoption: the ownership tags on a group that lacked them.
    Tag {
        name: String,
        arn: String,
        tags: BTreeMap<String, String>,
    },
}

impl Describe for LogGroupChange {
    fn setting(&self) -> &'static str {
        match self {
            LogGroupChange::Create { .. } => "trail log group",
            LogGroupChange::PutRetention { .. } => "trail log retention",
            LogGroupChange::AssociateKey { .. } => "trail log group encryption",
            LogGroupChange::Tag { .. } => "ownership tags",
        }
    }

    fn resource(&self) -> &str {
        match self {
            LogGroupChange::Create { name, .. }
            | LogGroupChange::PutRetention { name, .. }
            | LogGroupChange::AssociateKey { name, .. }
            | LogGroupChange::Tag { name, .. } => name,
        }
    }

    fn weakens(&self) -> bool {
        false
    }

    fn action(&self) -> Option<Action> {
        match self {
            LogGroupChange::Create { .. } => Some(Action::Create),
            LogGroupChange::PutRetention { .. } | LogGroupChange::AssociateKey { .. } | LogGroupChange::Tag { .. } => {
                None
            }
        }
    }
}

impl fmt::Display for LogGroupChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogGroupChange::Create { name, kms_key_arn, .. } => {
                write!(f, "create log group {name} for the trail, encrypted with {kms_key_arn}")
            }
            LogGroupChange::PutRetention { name, days } => write!(f, "log group {name}: retention {days} days"),
            LogGroupChange::AssociateKey { name, kms_key_arn } => {
                write!(f, "log group {name}: encrypt with {kms_key_arn}")
            }
            LogGroupChange::Tag { name, .. } => write!(f, "log group {name}: tag"),
        }
    }
}

/// Sends one log group change.
pub async fn apply(logs: &dyn LogsApi, change: &LogGroupChange) -> AwsResult<Option<String>> {
    match change {
        LogGroupChange::Create { name, kms_key_arn, tags } => logs.create_log_group(name, kms_key_arn, tags).await,
        LogGroupChange::PutRetention { name, days } => logs.put_retention(name, *days).await,
        LogGroupChange::AssociateKey { name, kms_key_arn } => logs.associate_key(name, kms_key_arn).await,
        LogGroupChange::Tag { arn, tags, .. } => logs.tag(arn, tags).await,
    }
    .map(|()| None)
}

/// Changes that create or converge the group. A key ARN the plan does not know yet (a
/// placeholder) is never drift.
pub fn group_changes(d: &OwnedLogGroup, observed: Option<&LogGroup>) -> Vec<LogGroupChange> {
    let retention = LogGroupChange::PutRetention { name: d.name.clone(), days: d.retention_days };
    let Some(o) = observed else {
        return vec![
            LogGroupChange::Create { name: d.name.clone(), kms_key_arn: d.kms_key_arn.clone(), tags: d.tags.clone() },
            retention,
        ];
    };
    let mut out = Vec::new();
    if o.retention_days != Some(d.retention_days) {
        out.push(retention);
    }
    if o.kms_key_id.as_deref() != Some(d.kms_key_arn.as_str()) && !is_placeholder(&d.kms_key_arn) {
        out.push(LogGroupChange::AssociateKey { name: d.name.clone(), kms_key_arn: d.kms_key_arn.clone() });
    }
    out
}

/// Reads, checks ownership at first sight, and converges the group and the role. Returns
/// what the trail's settings must name (the role ARN IAM will give when planning a create).
pub async fn converge<S: Sync>(
    exec: &Exec<'_, S>,
    logs: &dyn LogsApi,
    iam: &dyn IamApi,
    want: &TrailLogs,
    recorded: Recorded<'_>,
) -> Result<Delivery, Stop> {
    let mut want = want.clone();
    let (group, role) = futures::try_join!(
        logs.describe_log_group(&want.group.name),
        role::observe(iam, &want.role.name, POLICY_NAME)
    )?;
    exec.desired_tags(&mut want.group.tags, None);
    exec.desired_tags(&mut want.role.tags, role.as_ref().map(|r| &r.info.tags));
    if exec.plans() {
        // A plan does not know the controller's flags: the boundary is taken as it is.
        want.role.boundary = role.as_ref().and_then(|o| o.info.permissions_boundary.clone());
    }

    let label = format!("log group {}", want.group.name);
    let mut changes = Vec::new();
    if let Some(g) = &group
        && recorded.log_group_arn != Some(want.group_arn.as_str())
    {
        let tags = logs.list_tags(&g.arn).await?;
        exec.owned(&label, &tags)?;
        if !exec.is_ours(&tags) {
            changes.push(LogGroupChange::Tag {
                name: g.name.clone(),
                arn: g.arn.clone(),
                tags: want.group.tags.clone(),
            });
        }
    }
    changes.extend(group_changes(&want.group, group.as_ref()));
    for change in &changes {
        exec.change(change, group.is_some(), &label, apply(logs, change)).await?;
    }
    let role_arn =
        role::converge(exec, iam, &want.role, role.as_ref(), recorded.role_arn, want.predicted_role_arn.clone())
            .await?;
    Ok(Delivery { log_group_arn: want.group_arn.clone(), role_arn })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Input<'static> {
        Input {
            region: "eu-west-1",
            account: "123456789012",
            trail_arn: "arn:aws:cloudtrail:eu-west-1:123456789012:trail/lakeops-team-a-sales",
            group_name: "/aws/cloudtrail/lakeops-team-a-sales".into(),
            role_name: "team-a-sales-trail-logs".into(),
            key_arn: "arn:aws:kms:eu-west-1:123456789012:key/k",
            retention_days: 365,
            tags: BTreeMap::from([("lakeops.dev/owner".into(), "team-a/sales".into())]),
            boundary: None,
        }
    }

    #[test]
    fn the_role_writes_only_streams_of_its_group_and_trusts_only_its_trail() {
        let d = desired(&input());
        let s = &d.role.policy.statements;
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].actions, ["logs:CreateLogStream", "logs:PutLogEvents"]);
        assert_eq!(
            s[0].resources,
            ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/cloudtrail/lakeops-team-a-sales:log-stream:*"]
        );
        let t = &d.role.trust.statements[0];
        assert_eq!(t.principal, Principal::service("cloudtrail.amazonaws.com"));
        assert_eq!(
            t.condition["StringEquals"]["aws:SourceArn"],
            ["arn:aws:cloudtrail:eu-west-1:123456789012:trail/lakeops-team-a-sales"]
        );
        assert_eq!(t.condition["StringEquals"]["aws:SourceAccount"], ["123456789012"]);
        assert_eq!(d.group_arn, "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/cloudtrail/lakeops-team-a-sales:*");
        assert_eq!(d.predicted_role_arn, "arn:aws:iam::123456789012:role/lakeops/team-a-sales-trail-logs");
    }

    #[test]
    fn a_new_group_is_created_encrypted_then_given_its_retention() {
        let d = desired(&input());
        let changes = group_changes(&d.group, None);
        assert!(matches!(&changes[0], LogGroupChange::Create { kms_key_arn, .. } if kms_key_arn.ends_with("key/k")));
        assert_eq!(changes[1], LogGroupChange::PutRetention { name: d.group.name.clone(), days: 365 });
    }

    #[test]
    fn a_converged_group_needs_nothing_and_a_changed_one_is_restored() {
        let d = desired(&input());
        let mut seen = LogGroup {
            name: d.group.name.clone(),
            arn: group_arn("eu-west-1", "123456789012", &d.group.name),
            retention_days: Some(365),
            kms_key_id: Some(d.group.kms_key_arn.clone()),
        };
        assert!(group_changes(&d.group, Some(&seen)).is_empty());
        seen.retention_days = Some(30);
        seen.kms_key_id = None;
        let settings: Vec<_> = group_changes(&d.group, Some(&seen)).iter().map(|c| c.setting()).collect();
        assert_eq!(settings, ["trail log retention", "trail log group encryption"]);
    }

    #[test]
    fn the_key_statement_names_only_the_group() {
        let s = key_statement("eu-west-1", "123456789012", "/aws/cloudtrail/x");
        assert_eq!(
            s.condition["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"],
            ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/cloudtrail/x"]
        );
    }
}
