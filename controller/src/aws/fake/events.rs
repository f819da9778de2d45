//! EventBridge in the fake account: rules on the default bus with their targets and tags.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Fail, FakeAws, fail};
use crate::aws::error::AwsResult;
use crate::aws::events::{EventsApi, Rule, RuleInfo, RuleTarget};

const SERVICE: &str = "events";

/// A rule with what hangs on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventRule {
    pub info: RuleInfo,
    /// By target id.
    pub targets: BTreeMap<String, RuleTarget>,
    pub tags: BTreeMap<String, String>,
}

/// [`EventsApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeEvents {
    aws: Arc<FakeAws>,
    region: String,
}

fn not_found(name: &str) -> Fail {
    fail("ResourceNotFoundException", 400, format!("Rule {name} does not exist on EventBus default."))
}

impl FakeEvents {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }

    fn id(&self, name: &str) -> (String, String) {
        (self.region.clone(), name.to_string())
    }
}

#[async_trait]
impl EventsApi for FakeEvents {
    async fn describe_rule(&self, name: &str) -> AwsResult<Option<RuleInfo>> {
        self.aws.read(&self.region, SERVICE, "DescribeRule", name, |ctx| {
            Ok(ctx.res.event_rules.get(&self.id(name)).map(|r| r.info.clone()))
        })
    }

    async fn put_rule(&self, rule: &Rule, tags: &BTreeMap<String, String>) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "PutRule", &rule.name, |ctx| {
            if rule.event_pattern.is_some() == rule.schedule_expression.is_some() {
                return Err(fail("ValidationException", 400, "give an event pattern or a schedule expression"));
            }
            let arn = format!("arn:aws:events:{}:{}:rule/{}", ctx.region, ctx.account, rule.name);
            let id = (ctx.region.to_string(), rule.name.clone());
            let entry = ctx
                .res
                .event_rules
                .entry(id)
                .or_insert_with(|| EventRule { tags: tags.clone(), ..EventRule::default() });
            entry.info = RuleInfo { rule: rule.clone(), arn: arn.clone() };
            Ok(arn)
        })
    }

    async fn list_targets(&self, rule: &str) -> AwsResult<Vec<RuleTarget>> {
        self.aws.read(&self.region, SERVICE, "ListTargetsByRule", rule, |ctx| {
            let r = ctx.res.event_rules.get(&self.id(rule)).ok_or_else(|| not_found(rule))?;
            Ok(r.targets.values().cloned().collect())
        })
    }

    async fn put_targets(&self, rule: &str, targets: &[RuleTarget]) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "PutTargets", rule, |ctx| {
            let r = ctx.res.event_rules.get_mut(&self.id(rule)).ok_or_else(|| not_found(rule))?;
            r.targets.extend(targets.iter().map(|t| (t.id.clone(), t.clone())));
            Ok(())
        })
    }

    async fn remove_targets(&self, rule: &str, ids: &[String]) -> AwsResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.aws.write(&self.region, SERVICE, "RemoveTargets", rule, |ctx| {
            if let Some(r) = ctx.res.event_rules.get_mut(&self.id(rule)) {
                r.targets.retain(|id, _| !ids.contains(id));
            }
            Ok(())
        })
    }

    async fn delete_rule(&self, name: &str) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "DeleteRule", name, |ctx| match ctx.res.event_rules.get(&self.id(name)) {
            Some(r) if !r.targets.is_empty() => {
                Err(fail("ValidationException", 400, "Rule can't be deleted since it has targets."))
            }
            _ => {
                ctx.res.event_rules.remove(&self.id(name));
                Ok(())
            }
        })
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        self.aws.read(&self.region, SERVICE, "ListTagsForResource", arn, |ctx| {
            ctx.res
                .event_rules
                .values()
                .find(|r| r.info.arn == arn)
                .map(|r| r.tags.clone())
                .ok_or_else(|| not_found(arn))
        })
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// The rules of `region`.
    pub fn event_rules(&self, region: &str) -> Vec<EventRule> {
        self.world().now.event_rules.iter().filter(|((r, _), _)| r == region).map(|(_, v)| v.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rule_is_rewritten_in_place_keeps_its_first_tags_and_cannot_go_while_it_has_targets() {
        let aws = FakeAws::new("123456789012");
        let ev = aws.events("eu-west-1");
        let mut rule = Rule {
            name: "r".into(),
            schedule_expression: Some("rate(1 hour)".into()),
            enabled: true,
            ..Rule::default()
        };
        let tags = BTreeMap::from([("o".to_string(), "me".to_string())]);
        let arn = ev.put_rule(&rule, &tags).await.expect("created");
        rule.schedule_expression = Some("rate(2 hours)".into());
        assert_eq!(ev.put_rule(&rule, &BTreeMap::new()).await.expect("rewritten"), arn);
        assert_eq!(ev.list_tags(&arn).await.expect("tags"), tags);
        let t = RuleTarget { id: "t".into(), arn: "arn:sm".into(), role_arn: None };
        ev.put_targets("r", &[t]).await.expect("target");
        assert!(ev.delete_rule("r").await.is_err());
        ev.remove_targets("r", &["t".into()]).await.expect("removed");
        ev.delete_rule("r").await.expect("deleted");
        ev.delete_rule("r").await.expect("a missing rule is gone already");
        assert_eq!(ev.describe_rule("r").await.expect("read"), None);
    }
}
