//! CloudWatch in the fake account: metric alarms with their tags. PutMetricAlarm creates or
//! replaces an alarm and, as in AWS, applies tags only when it creates one.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{FakeAws, fail};
use crate::aws::cloudwatch::{CloudWatchApi, MetricAlarm, ObservedAlarm};
use crate::aws::error::AwsResult;

const SERVICE: &str = "cloudwatch";

/// One alarm.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Alarm {
    pub arn: String,
    pub alarm: MetricAlarm,
    pub tags: BTreeMap<String, String>,
}

/// [`CloudWatchApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeCloudWatch {
    aws: Arc<FakeAws>,
    region: String,
}

impl FakeCloudWatch {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }
}

#[async_trait]
impl CloudWatchApi for FakeCloudWatch {
    async fn alarms(&self, prefix: &str) -> AwsResult<Vec<ObservedAlarm>> {
        self.aws.read(&self.region, SERVICE, "DescribeAlarms", prefix, |ctx| {
            Ok(ctx
                .res
                .alarms
                .iter()
                .filter(|((region, name), _)| *region == self.region && name.starts_with(prefix))
                .map(|(_, a)| ObservedAlarm { arn: a.arn.clone(), alarm: a.alarm.clone() })
                .collect())
        })
    }

    async fn put_alarm(&self, alarm: &MetricAlarm, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "PutMetricAlarm", &alarm.name, |ctx| {
            if alarm.period_seconds < 10 || alarm.evaluation_periods < 1 {
                return Err(fail("ValidationError", 400, "Period and EvaluationPeriods must be positive"));
            }
            let arn = format!("arn:aws:cloudwatch:{}:{}:alarm:{}", ctx.region, ctx.account, alarm.name);
            let entry = ctx.res.alarms.entry((ctx.region.to_string(), alarm.name.clone())).or_insert_with(|| Alarm {
                arn,
                tags: tags.clone(),
                ..Alarm::default()
            });
            entry.alarm = alarm.clone();
            Ok(())
        })
    }

    async fn alarm_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        self.aws.read(&self.region, SERVICE, "ListTagsForResource", arn, |ctx| {
            let alarm = ctx.res.alarms.values().find(|a| a.arn == arn);
            alarm.map(|a| a.tags.clone()).ok_or_else(|| fail("ResourceNotFound", 404, format!("no alarm {arn}")))
        })
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// The alarms of `region`, by name.
    pub fn alarms(&self, region: &str) -> BTreeMap<String, Alarm> {
        self.snapshot().alarms.into_iter().filter(|((r, _), _)| r == region).map(|((_, name), a)| (name, a)).collect()
    }
}
