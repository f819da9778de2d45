//! An owned CloudWatch Logs group, one step for every kind that writes logs somewhere: a
//! function's logs, a state machine's executions, a trail's delivery, an API's access logs.
//! The group is encrypted with the owner's key and kept `retention_days`; the caller reads
//! it (DescribeLogGroups by name), checks a group found at first sight with
//! [`check_first_sight`], and sends [`changes`] through its own applier, which hands each
//! one to [`apply`].
//!
//! Reads on a converged owner: DescribeLogGroups (ListTagsForResource only at first sight,
//! when status does not record the group yet).
use std::collections::BTreeMap;
use std::fmt;

use lakeops_crds::DeletionPolicy;
use lakeops_crds::names::tag;

use crate::aws::error::AwsResult;
use crate::aws::logs::{LogGroup, LogsApi};
use crate::policy::{Effect, Principal, Statement};

use super::{Action, Describe, Exec, Stop, is_placeholder};

/// Where the log groups encrypted with a lake key live, by what writes into them, each
/// followed by `lakeops-<namespace>-`: functions (Lambda's fixed name), state machine
/// executions (the prefix Step Functions' documentation asks for, which keeps the account's
/// log resource policy small) and API access logs. The lake key's policy lets CloudWatch
/// Logs use the key for these names only (see [`key_statement`]).
pub const LAKE_LOG_GROUP_PREFIXES: [&str; 3] = ["/aws/lambda/", "/aws/vendedlogs/states/", "/aws/apigateway/"];

/// The key-policy statement letting CloudWatch Logs in `region` use a key for the groups
/// whose ARNs match `group_arns` (exact ARNs or `ArnLike` patterns) and no other.
pub fn key_statement(sid: &str, region: &str, group_arns: &[&str]) -> Statement {
    Statement::new(
        sid,
        Effect::Allow,
        Principal::service(&format!("logs.{region}.amazonaws.com")),
        &["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        &["*".into()],
    )
    .when("ArnLike", "kms:EncryptionContext:aws:logs:arn", group_arns)
}

/// The log group lakeops owns.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedLogGroup {
    pub name: String,
    /// The key encrypting the group; its policy must let `logs.<region>.amazonaws.com` use
    /// it for this group.
    pub kms_key_arn: String,
    /// A CloudWatch Logs retention value.
    pub retention_days: i32,
    pub tags: BTreeMap<String, String>,
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
        /// True when logs are kept for less time than before (a group found with a longer
        /// retention, or none: never expire).
        shortens: bool,
    },
    AssociateKey {
        name: String,
        kms_key_arn: String,
    },
    /// Our group found without our tags (adopted, or created before tagging): tagged now,
    /// so that clean-up recognises it.
    Tag {
        name: String,
        arn: String,
        tags: BTreeMap<String, String>,
    },
}

impl Describe for LogGroupChange {
    fn setting(&self) -> &'static str {
        match self {
            LogGroupChange::Create { .. } => "log group",
            LogGroupChange::PutRetention { .. } => "log retention",
            LogGroupChange::AssociateKey { .. } => "log encryption",
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
        matches!(self, LogGroupChange::PutRetention { shortens: true, .. })
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
                write!(f, "create log group {name}, encrypted with {kms_key_arn}")
            }
            LogGroupChange::PutRetention { name, days, shortens: false } => {
                write!(f, "log group {name}: retention {days} days")
            }
            LogGroupChange::PutRetention { name, days, shortens: true } => {
                write!(f, "log group {name}: retention {days} days, shorter than now")
            }
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
        LogGroupChange::PutRetention { name, days, .. } => logs.put_retention(name, *days).await,
        LogGroupChange::AssociateKey { name, kms_key_arn } => logs.associate_key(name, kms_key_arn).await,
        LogGroupChange::Tag { arn, tags, .. } => logs.tag(arn, tags).await,
    }
    .map(|()| None)
}

/// A group found where status did not record one (first sight): reads its tags and checks
/// it is ours (or adoption is asked for). True when it lacks our tags, so [`changes`] must
/// tag it.
pub async fn check_first_sight<S: Sync>(
    exec: &Exec<'_, S>,
    logs: &dyn LogsApi,
    group: &LogGroup,
) -> Result<bool, Stop> {
    let tags = logs.list_tags(&group.arn).await?;
    exec.owned(&format!("log group {}", group.name), &tags)?;
    Ok(!exec.is_ours(&tags))
}

/// Changes that create or converge the group (`untagged`: what [`check_first_sight`]
/// returned, false when the group was not read at first sight). A key ARN the plan does not
/// know yet (a placeholder) is never drift.
pub fn changes(want: &OwnedLogGroup, observed: Option<&LogGroup>, untagged: bool) -> Vec<LogGroupChange> {
    let retention =
        |shortens| LogGroupChange::PutRetention { name: want.name.clone(), days: want.retention_days, shortens };
    let Some(o) = observed else {
        return vec![
            LogGroupChange::Create {
                name: want.name.clone(),
                kms_key_arn: want.kms_key_arn.clone(),
                tags: want.tags.clone(),
            },
            retention(false),
        ];
    };
    let mut out = Vec::new();
    if untagged {
        out.push(LogGroupChange::Tag { name: o.name.clone(), arn: o.arn.clone(), tags: want.tags.clone() });
    }
    if o.retention_days != Some(want.retention_days) {
        out.push(retention(o.retention_days.is_none_or(|kept| kept > want.retention_days)));
    }
    if o.kms_key_id.as_deref() != Some(want.kms_key_arn.as_str()) && !is_placeholder(&want.kms_key_arn) {
        out.push(LogGroupChange::AssociateKey { name: want.name.clone(), kms_key_arn: want.kms_key_arn.clone() });
    }
    out
}

/// Deletion of the owner: the group named `name`, when `owned` accepts its tags, is deleted
/// (`Delete`) or tagged as retained and left (`Retain`). A group that is not ours is left
/// untouched.
pub async fn retire(
    logs: &dyn LogsApi,
    name: &str,
    policy: DeletionPolicy,
    owned: impl Fn(&BTreeMap<String, String>) -> bool,
) -> AwsResult<()> {
    let Some(group) = logs.describe_log_group(name).await? else {
        return Ok(());
    };
    if !owned(&logs.list_tags(&group.arn).await?) {
        return Ok(());
    }
    match policy {
        DeletionPolicy::Delete => logs.delete_log_group(name).await,
        DeletionPolicy::Retain => {
            logs.tag(&group.arn, &BTreeMap::from([(tag::RETAINED.to_string(), "true".to_string())])).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want() -> OwnedLogGroup {
        OwnedLogGroup {
            name: "/aws/lambda/lakeops-team-a-orders".into(),
            kms_key_arn: "arn:aws:kms:eu-west-1:123456789012:key/k".into(),
            retention_days: 365,
            tags: BTreeMap::from([("lakeops.dev/owner".into(), "team-a/orders".into())]),
        }
    }

    fn seen(w: &OwnedLogGroup) -> LogGroup {
        LogGroup {
            name: w.name.clone(),
            arn: format!("arn:aws:logs:eu-west-1:123456789012:log-group:{}", w.name),
            retention_days: Some(w.retention_days),
            kms_key_id: Some(w.kms_key_arn.clone()),
        }
    }

    #[test]
    fn a_new_group_is_created_encrypted_then_given_its_retention() {
        let w = want();
        let c = changes(&w, None, false);
        assert_eq!(
            c,
            [
                LogGroupChange::Create {
                    name: w.name.clone(),
                    kms_key_arn: w.kms_key_arn.clone(),
                    tags: w.tags.clone()
                },
                LogGroupChange::PutRetention { name: w.name.clone(), days: 365, shortens: false },
            ]
        );
        assert_eq!(c[0].action(), Some(Action::Create));
    }

    #[test]
    fn a_converged_group_needs_nothing_and_a_changed_one_is_restored() {
        let w = want();
        let mut o = seen(&w);
        assert!(changes(&w, Some(&o), false).is_empty());
        o.retention_days = Some(30);
        o.kms_key_id = None;
        let c = changes(&w, Some(&o), true);
        let settings: Vec<_> = c.iter().map(|c| c.setting()).collect();
        assert_eq!(settings, ["ownership tags", "log retention", "log encryption"]);
        assert!(!c[1].weakens(), "30 days -> 365 keeps logs longer");
    }

    #[test]
    fn keeping_logs_for_less_time_is_a_weakening() {
        let mut w = want();
        let mut o = seen(&w);
        w.retention_days = 90;
        assert!(changes(&w, Some(&o), false)[0].weakens(), "365 -> 90");
        o.retention_days = None;
        let c = changes(&w, Some(&o), false);
        assert!(c[0].weakens(), "never expire -> 90");
        assert_eq!(
            c[0].to_string(),
            "log group /aws/lambda/lakeops-team-a-orders: retention 90 days, shorter than now"
        );
    }

    #[test]
    fn a_key_the_plan_does_not_know_yet_is_not_drift() {
        let mut w = want();
        let o = seen(&w);
        w.kms_key_arn = "(the new lake key)".into();
        assert!(changes(&w, Some(&o), false).is_empty());
    }
}
