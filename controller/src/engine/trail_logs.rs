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

use crate::aws::iam::IamApi;
use crate::aws::logs::{LogGroup, LogsApi};

use crate::policy::{Effect, PolicyDocument, Principal, Statement};

use super::log_group::{self, OwnedLogGroup};
use super::role::{self, OwnedRole};
use super::{Exec, Stop};

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
    log_group::key_statement(
        "CloudWatchLogsEncryptsTheTrailLogGroup",
        region,
        &[&group_arn(region, account, group_name)],
    )
}

/// What [`observe`] read: the group (its tags at first sight) and the role.
#[derive(Clone, Debug)]
pub struct Observed {
    group: Option<LogGroup>,
    /// A group read at first sight (status did not record it) without our tags.
    untagged: bool,
    role: Option<role::ObservedRole>,
}

/// Reads the group and the role (at once) and, at first sight, checks the group is ours.
/// Names and ARNs do not depend on the key, so the caller may pass a [`TrailLogs`] built with
/// a placeholder key and read before its key exists.
pub async fn observe<S: Sync>(
    exec: &Exec<'_, S>,
    logs: &dyn LogsApi,
    iam: &dyn IamApi,
    want: &TrailLogs,
    recorded: Recorded<'_>,
) -> Result<Observed, Stop> {
    let (group, role) = futures::try_join!(
        logs.describe_log_group(&want.group.name),
        role::observe(iam, &want.role.name, POLICY_NAME)
    )?;
    let untagged = match &group {
        Some(g) if recorded.log_group_arn != Some(want.group_arn.as_str()) => {
            log_group::check_first_sight(exec, logs, g).await?
        }
        _ => false,
    };
    Ok(Observed { group, untagged, role })
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
    let observed = observe(exec, logs, iam, want, recorded).await?;
    converge_observed(exec, logs, iam, want, observed, recorded).await
}

/// [`converge`] from what [`observe`] read.
pub async fn converge_observed<S: Sync>(
    exec: &Exec<'_, S>,
    logs: &dyn LogsApi,
    iam: &dyn IamApi,
    want: &TrailLogs,
    observed: Observed,
    recorded: Recorded<'_>,
) -> Result<Delivery, Stop> {
    let Observed { group, untagged, role } = observed;
    let mut want = want.clone();
    exec.desired_tags(&mut want.group.tags, None);
    exec.desired_tags(&mut want.role.tags, role.as_ref().map(|r| &r.info.tags));
    if exec.plans() {
        // A plan does not know the controller's flags: the boundary is taken as it is.
        want.role.boundary = role.as_ref().and_then(|o| o.info.permissions_boundary.clone());
    }

    let label = format!("log group {}", want.group.name);
    for change in &log_group::changes(&want.group, group.as_ref(), untagged) {
        exec.change(change, group.is_some(), &label, log_group::apply(logs, change)).await?;
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
    fn the_key_statement_names_only_the_group() {
        let s = key_statement("eu-west-1", "123456789012", "/aws/cloudtrail/x");
        assert_eq!(
            s.condition["ArnLike"]["kms:EncryptionContext:aws:logs:arn"],
            ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/cloudtrail/x"]
        );
    }
}
