//! The CIS AWS Foundations / Security Hub CloudWatch.1-14 metric filters, with their exact
//! patterns (Security Hub checks for these patterns exactly: "additional fields or terms
//! cannot be added"), and the lakeops filter for disabling or deleting a lake key. Pure data
//! and the builders of the filters and alarms the baseline puts on its account trail's group.
use crate::aws::cloudwatch::MetricAlarm;
use crate::aws::logs::MetricFilter;

/// One CIS control's metric filter.
#[derive(Clone, Copy, Debug)]
pub struct CisFilter {
    /// The Security Hub control, e.g. `CloudWatch.1`.
    pub control: &'static str,
    /// The filter's and alarm's name after [`NAME_PREFIX`].
    pub slug: &'static str,
    /// The metric the filter counts into.
    pub metric: &'static str,
    /// What it watches, for the alarm's description.
    pub what: &'static str,
    /// The filter pattern, exactly as Security Hub expects it.
    pub pattern: &'static str,
}

/// Names of the filters and alarms lakeops owns (one DescribeAlarms by this prefix reads them all).
pub const NAME_PREFIX: &str = "lakeops-cis-";
/// The namespace of their metrics.
pub const METRIC_NAMESPACE: &str = "lakeops/CIS";
/// The filter and alarm watching lake keys.
pub const LAKE_KEY_SLUG: &str = "lake-key-disable-or-deletion";
pub const LAKE_KEY_METRIC: &str = "DisableOrScheduleDeletionOfLakeKey";
/// Aliases of the keys lakeops makes for lakes (`alias/lakeops/<namespace>/<name>`) and
/// their replicas; the baseline's own keys sit under `alias/lakeops/_baseline/`.
pub const LAKE_KEY_ALIAS_PREFIX: &str = "alias/lakeops/";
/// CloudWatch Logs refuses longer filter patterns.
const MAX_PATTERN: usize = 1024;

/// CIS AWS Foundations v1.2 section 3 / v1.4 section 4, as Security Hub's CloudWatch.1-14.
pub const CIS_FILTERS: [CisFilter; 14] = [
    CisFilter {
        control: "CloudWatch.1",
        slug: "root-account-use",
        metric: "RootAccountUsage",
        what: "use of the root user",
        pattern: r#"{$.userIdentity.type="Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType !="AwsServiceEvent"}"#,
    },
    CisFilter {
        control: "CloudWatch.2",
        slug: "unauthorized-api-calls",
        metric: "UnauthorizedAPICalls",
        what: "unauthorized API calls",
        pattern: r#"{($.errorCode="*UnauthorizedOperation") || ($.errorCode="AccessDenied*")}"#,
    },
    CisFilter {
        control: "CloudWatch.3",
        slug: "console-sign-in-without-mfa",
        metric: "ConsoleSignInWithoutMFA",
        what: "console sign-in without MFA",
        pattern: r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") && ($.userIdentity.type = "IAMUser") && ($.responseElements.ConsoleLogin = "Success") }"#,
    },
    CisFilter {
        control: "CloudWatch.4",
        slug: "iam-policy-changes",
        metric: "IAMPolicyChanges",
        what: "IAM policy changes",
        pattern: r#"{($.eventName=DeleteGroupPolicy) || ($.eventName=DeleteRolePolicy) || ($.eventName=DeleteUserPolicy) || ($.eventName=PutGroupPolicy) || ($.eventName=PutRolePolicy) || ($.eventName=PutUserPolicy) || ($.eventName=CreatePolicy) || ($.eventName=DeletePolicy) || ($.eventName=CreatePolicyVersion) || ($.eventName=DeletePolicyVersion) || ($.eventName=AttachRolePolicy) || ($.eventName=DetachRolePolicy) || ($.eventName=AttachUserPolicy) || ($.eventName=DetachUserPolicy) || ($.eventName=AttachGroupPolicy) || ($.eventName=DetachGroupPolicy)}"#,
    },
    CisFilter {
        control: "CloudWatch.5",
        slug: "cloudtrail-changes",
        metric: "CloudTrailConfigChanges",
        what: "CloudTrail configuration changes",
        pattern: r#"{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) || ($.eventName=StartLogging) || ($.eventName=StopLogging)}"#,
    },
    CisFilter {
        control: "CloudWatch.6",
        slug: "console-authentication-failures",
        metric: "ConsoleAuthenticationFailures",
        what: "console authentication failures",
        pattern: r#"{($.eventName=ConsoleLogin) && ($.errorMessage="Failed authentication")}"#,
    },
    CisFilter {
        control: "CloudWatch.7",
        slug: "cmk-disable-or-deletion",
        metric: "DisableOrScheduleDeletionOfCMK",
        what: "disabling or scheduled deletion of customer managed keys",
        pattern: r#"{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || ($.eventName=ScheduleKeyDeletion))}"#,
    },
    CisFilter {
        control: "CloudWatch.8",
        slug: "s3-bucket-policy-changes",
        metric: "S3BucketPolicyChanges",
        what: "S3 bucket policy changes",
        pattern: r#"{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketAcl) || ($.eventName=PutBucketPolicy) || ($.eventName=PutBucketCors) || ($.eventName=PutBucketLifecycle) || ($.eventName=PutBucketReplication) || ($.eventName=DeleteBucketPolicy) || ($.eventName=DeleteBucketCors) || ($.eventName=DeleteBucketLifecycle) || ($.eventName=DeleteBucketReplication))}"#,
    },
    CisFilter {
        control: "CloudWatch.9",
        slug: "config-changes",
        metric: "AWSConfigChanges",
        what: "AWS Config configuration changes",
        pattern: r#"{($.eventSource=config.amazonaws.com) && (($.eventName=StopConfigurationRecorder) || ($.eventName=DeleteDeliveryChannel) || ($.eventName=PutDeliveryChannel) || ($.eventName=PutConfigurationRecorder))}"#,
    },
    CisFilter {
        control: "CloudWatch.10",
        slug: "security-group-changes",
        metric: "SecurityGroupChanges",
        what: "security group changes",
        pattern: r#"{($.eventName=AuthorizeSecurityGroupIngress) || ($.eventName=AuthorizeSecurityGroupEgress) || ($.eventName=RevokeSecurityGroupIngress) || ($.eventName=RevokeSecurityGroupEgress) || ($.eventName=CreateSecurityGroup) || ($.eventName=DeleteSecurityGroup)}"#,
    },
    CisFilter {
        control: "CloudWatch.11",
        slug: "nacl-changes",
        metric: "NACLChanges",
        what: "network ACL changes",
        pattern: r#"{($.eventName=CreateNetworkAcl) || ($.eventName=CreateNetworkAclEntry) || ($.eventName=DeleteNetworkAcl) || ($.eventName=DeleteNetworkAclEntry) || ($.eventName=ReplaceNetworkAclEntry) || ($.eventName=ReplaceNetworkAclAssociation)}"#,
    },
    CisFilter {
        control: "CloudWatch.12",
        slug: "network-gateway-changes",
        metric: "NetworkGatewayChanges",
        what: "network gateway changes",
        pattern: r#"{($.eventName=CreateCustomerGateway) || ($.eventName=DeleteCustomerGateway) || ($.eventName=AttachInternetGateway) || ($.eventName=CreateInternetGateway) || ($.eventName=DeleteInternetGateway) || ($.eventName=DetachInternetGateway)}"#,
    },
    CisFilter {
        control: "CloudWatch.13",
        slug: "route-table-changes",
        metric: "RouteTableChanges",
        what: "route table changes",
        pattern: r#"{($.eventName=CreateRoute) || ($.eventName=CreateRouteTable) || ($.eventName=ReplaceRoute) || ($.eventName=ReplaceRouteTableAssociation) || ($.eventName=DeleteRouteTable) || ($.eventName=DeleteRoute) || ($.eventName=DisassociateRouteTable)}"#,
    },
    CisFilter {
        control: "CloudWatch.14",
        slug: "vpc-changes",
        metric: "VPCChanges",
        what: "VPC changes",
        pattern: r#"{($.eventName=CreateVpc) || ($.eventName=DeleteVpc) || ($.eventName=ModifyVpcAttribute) || ($.eventName=AcceptVpcPeeringConnection) || ($.eventName=CreateVpcPeeringConnection) || ($.eventName=DeleteVpcPeeringConnection) || ($.eventName=RejectVpcPeeringConnection) || ($.eventName=AttachClassicLinkVpc) || ($.eventName=DetachClassicLinkVpc) || ($.eventName=DisableVpcClassicLink) || ($.eventName=EnableVpcClassicLink)}"#,
    },
];

fn filter(slug: &str, metric: &str, pattern: String) -> MetricFilter {
    MetricFilter {
        name: format!("{NAME_PREFIX}{slug}"),
        pattern,
        metric_name: metric.to_string(),
        metric_namespace: METRIC_NAMESPACE.to_string(),
        metric_value: "1".to_string(),
    }
}

/// The lake-key filters: DisableKey and ScheduleKeyDeletion of one of `key_arns`, as few
/// filters as the pattern length allows (all counting into one metric, so one alarm covers
/// them); none without lake keys (the pattern would then match every key, as CloudWatch.7).
pub fn lake_key_filters(key_arns: &[String]) -> Vec<MetricFilter> {
    let head =
        "{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || ($.eventName=ScheduleKeyDeletion)) && (";
    let clause = |arn: &str| format!("($.resources[0].ARN=\"{arn}\")");
    let mut chunks: Vec<Vec<String>> = Vec::new();
    for arn in key_arns {
        let fits = chunks.last().is_some_and(|c| {
            let len: usize = c.iter().map(|a| clause(a).len() + 4).sum();
            head.len() + len + clause(arn).len() + 2 <= MAX_PATTERN
        });
        match chunks.last_mut() {
            Some(c) if fits => c.push(arn.clone()),
            _ => chunks.push(vec![arn.clone()]),
        }
    }
    let n = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, arns)| {
            let any: Vec<String> = arns.iter().map(|a| clause(a)).collect();
            let slug = if n == 1 { LAKE_KEY_SLUG.to_string() } else { format!("{LAKE_KEY_SLUG}-{}", i + 1) };
            filter(&slug, LAKE_KEY_METRIC, format!("{head}{})}}", any.join(" || ")))
        })
        .collect()
}

/// Every filter: the 14 CIS ones, then the lake-key ones.
pub fn filters(lake_key_arns: &[String]) -> Vec<MetricFilter> {
    let mut out: Vec<MetricFilter> = CIS_FILTERS.iter().map(|c| filter(c.slug, c.metric, c.pattern.into())).collect();
    out.extend(lake_key_filters(lake_key_arns));
    out
}

/// The alarm on one metric: any event in 5 minutes alarms (Sum >= 1 over 300 s, one
/// period, no data is not breaching), notifying `topic` when there is one.
fn alarm(slug: &str, metric: &str, description: String, topic: Option<&str>) -> MetricAlarm {
    MetricAlarm {
        name: format!("{NAME_PREFIX}{slug}"),
        description,
        metric_name: metric.to_string(),
        namespace: METRIC_NAMESPACE.to_string(),
        statistic: "Sum".into(),
        period_seconds: 300,
        evaluation_periods: 1,
        threshold: 1.0,
        comparison: "GreaterThanOrEqualToThreshold".into(),
        treat_missing_data: "notBreaching".into(),
        alarm_actions: topic.map(str::to_string).into_iter().collect(),
        actions_enabled: true,
    }
}

/// Every alarm: one per CIS metric, and one on the lake-key metric when there are lake keys.
pub fn alarms(topic: Option<&str>, lake_keys: bool) -> Vec<MetricAlarm> {
    let mut out: Vec<MetricAlarm> = CIS_FILTERS
        .iter()
        .map(|c| alarm(c.slug, c.metric, format!("lakeops {} (CIS): {}", c.control, c.what), topic))
        .collect();
    if lake_keys {
        out.push(alarm(
            LAKE_KEY_SLUG,
            LAKE_KEY_METRIC,
            "lakeops: a lake key was disabled or scheduled for deletion".into(),
            topic,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cis_patterns_are_the_security_hub_ones() {
        assert_eq!(CIS_FILTERS.len(), 14);
        for (i, c) in CIS_FILTERS.iter().enumerate() {
            assert_eq!(c.control, format!("CloudWatch.{}", i + 1));
            assert!(c.pattern.starts_with('{') && c.pattern.ends_with('}'), "{}", c.pattern);
            assert!(c.pattern.len() <= MAX_PATTERN);
        }
        assert_eq!(
            CIS_FILTERS[6].pattern,
            "{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || ($.eventName=ScheduleKeyDeletion))}"
        );
        let names: std::collections::BTreeSet<_> = filters(&[]).into_iter().map(|f| f.name).collect();
        assert_eq!(names.len(), 14, "unique names");
    }

    #[test]
    fn lake_keys_are_named_in_as_few_filters_as_fit_and_one_alarm_covers_them() {
        assert!(lake_key_filters(&[]).is_empty(), "no key: no filter (it would match every key)");
        let arn = |i: usize| format!("arn:aws:kms:eu-west-1:123456789012:key/{i:08}-0000-0000-0000-000000000000");
        let one = lake_key_filters(&[arn(1)]);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].name, "lakeops-cis-lake-key-disable-or-deletion");
        assert!(one[0].pattern.contains(&format!("($.resources[0].ARN=\"{}\")", arn(1))), "{}", one[0].pattern);
        let many: Vec<String> = (0..30).map(arn).collect();
        let split = lake_key_filters(&many);
        assert!(split.len() > 1);
        assert!(split.iter().all(|f| f.pattern.len() <= MAX_PATTERN && f.metric_name == LAKE_KEY_METRIC));
        for a in &many {
            assert_eq!(split.iter().filter(|f| f.pattern.contains(a.as_str())).count(), 1, "{a} once");
        }
        assert_eq!(alarms(Some("arn:t"), true).len(), 15);
        assert!(alarms(None, false).iter().all(|a| a.alarm_actions.is_empty()));
    }
}
