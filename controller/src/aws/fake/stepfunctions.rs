//! Step Functions in the fake account: state machines with their settings and tags.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Fail, FakeAws, fail, merge_tags, ok_if_missing};
use crate::aws::error::AwsResult;
use crate::aws::stepfunctions::{StateMachineInfo, StateMachineSettings, StepFunctionsApi};

const SERVICE: &str = "sfn";

/// A state machine and its tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    pub info: StateMachineInfo,
    pub tags: BTreeMap<String, String>,
}

/// [`StepFunctionsApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeStepFunctions {
    aws: Arc<FakeAws>,
    region: String,
}

fn not_found(arn: &str) -> Fail {
    fail("StateMachineDoesNotExist", 400, format!("State Machine Does Not Exist: '{arn}'"))
}

/// What Step Functions checks of a definition and a role before it takes them.
fn check(settings: &StateMachineSettings) -> Result<(), Fail> {
    if serde_json::from_str::<serde_json::Value>(&settings.definition).is_err() {
        return Err(fail("InvalidDefinition", 400, "the definition is not JSON"));
    }
    if !settings.role_arn.starts_with("arn:") {
        return Err(fail("InvalidArn", 400, format!("Invalid Role Arn: '{}'", settings.role_arn)));
    }
    if settings.log_level != "OFF" && settings.log_group_arn.is_none() {
        return Err(fail("InvalidLoggingConfiguration", 400, "a log level needs a destination"));
    }
    Ok(())
}

impl FakeStepFunctions {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }
}

#[async_trait]
impl StepFunctionsApi for FakeStepFunctions {
    async fn describe_state_machine(&self, arn: &str) -> AwsResult<Option<StateMachineInfo>> {
        self.aws.read(&self.region, SERVICE, "DescribeStateMachine", arn, |ctx| {
            Ok(ctx.res.state_machines.get(arn).map(|m| m.info.clone()))
        })
    }

    async fn create_state_machine(
        &self,
        name: &str,
        settings: &StateMachineSettings,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "CreateStateMachine", name, |ctx| {
            check(settings)?;
            let arn = format!("arn:aws:states:{}:{}:stateMachine:{name}", ctx.region, ctx.account);
            if let Some(existing) = ctx.res.state_machines.get(&arn) {
                // Idempotent only when every parameter is the same, as in AWS.
                return if existing.info.settings == *settings && existing.tags == *tags {
                    Ok(arn)
                } else {
                    Err(fail("StateMachineAlreadyExists", 400, format!("State Machine Already Exists: '{arn}'")))
                };
            }
            let info = StateMachineInfo {
                arn: arn.clone(),
                name: name.to_string(),
                machine_type: "STANDARD".into(),
                settings: settings.clone(),
            };
            ctx.res.state_machines.insert(arn.clone(), StateMachine { info, tags: tags.clone() });
            Ok(arn)
        })
    }

    async fn update_state_machine(&self, arn: &str, settings: &StateMachineSettings) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "UpdateStateMachine", arn, |ctx| {
            check(settings)?;
            let m = ctx.res.state_machines.get_mut(arn).ok_or_else(|| not_found(arn))?;
            m.info.settings = settings.clone();
            Ok(())
        })
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        self.aws.read(&self.region, SERVICE, "ListTagsForResource", arn, |ctx| {
            ctx.res.state_machines.get(arn).map(|m| m.tags.clone()).ok_or_else(|| not_found(arn))
        })
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "TagResource", arn, |ctx| {
            let m = ctx.res.state_machines.get_mut(arn).ok_or_else(|| not_found(arn))?;
            merge_tags(&mut m.tags, tags);
            Ok(())
        })
    }

    async fn delete_state_machine(&self, arn: &str) -> AwsResult<()> {
        ok_if_missing(self.aws.write(&self.region, SERVICE, "DeleteStateMachine", arn, |ctx| {
            ctx.res.state_machines.remove(arn).map(drop).ok_or_else(|| not_found(arn))
        }))
    }
}

// ----- helpers for tests -----

impl FakeAws {
    /// The state machines of the account, by ARN.
    pub fn state_machines(&self) -> BTreeMap<String, StateMachine> {
        self.world().now.state_machines.clone()
    }
}
