//! The EtlPipeline's convergence, written once: the controller runs it with the apply
//! executor, `lakeops plan` with the plan executor.
//!
//! Order: the definition checked locally; read the machine's role, the log group and the
//! machine; check ownership; record the names before the first write; the role; the log
//! group; the machine (created, or one UpdateStateMachine for every difference); then the
//! trigger: its role, EventBridge delivery on the source bucket (merged into the
//! notification document under the bucket's lock, other entries kept), the rule and its
//! one target. A trigger removed from the spec takes its rule and role with it.
//!
//! Reads on a converged pipeline with an objectCreated trigger: GetRole and GetRolePolicy
//! for each of the two roles, DescribeLogGroups, DescribeStateMachine, DescribeRule and
//! ListTargetsByRule: 8 reads, 0 writes (a unit test counts them). The bucket's
//! EventBridge delivery is turned on once and recorded in status.

use lakeops_crds::names::reason;
use lakeops_crds::{DataLake, EtlPipeline, EtlPipelineStatus};

use crate::aws::clients::Regional;
use crate::aws::error::AwsResult;
use crate::aws::iam::IamApi;
use crate::engine::{Exec, Stop, log_group, role};
use crate::reconcile::KeyedLocks;

use super::desired::{self, Facts};
use super::diff::{self, Change};

type Exe<'a> = Exec<'a, EtlPipelineStatus>;

/// What the sequence works from.
pub struct Inputs<'a> {
    pub pipeline: &'a EtlPipeline,
    pub lake: &'a DataLake,
    pub account: &'a str,
    /// The lake key's ARN (a placeholder when planning a lake not created yet).
    pub key_arn: &'a str,
    pub boundary: Option<&'a str>,
    /// Serialises writes of a bucket's notification document.
    pub locks: &'a KeyedLocks,
}

/// Runs the pipeline's sequence; `next` is the status being built.
pub async fn converge(
    aws: &Regional,
    iam: &dyn IamApi,
    input: &Inputs<'_>,
    exec: &Exe<'_>,
    next: &mut EtlPipelineStatus,
) -> Result<(), Stop> {
    let Inputs { pipeline, lake, account, key_arn, .. } = *input;
    let facts = Facts { lake, account_id: account, key_arn, permissions_boundary: input.boundary };
    let mut d = desired::desired(pipeline, facts);
    if let Err(problem) = d.definition.validate() {
        exec.blocked(
            &d.names.state_machine,
            Stop::Stalled(reason::INVALID_SPEC, format!("spec.steps: the generated definition is invalid: {problem}")),
        )?;
    }
    let (observed_role, group, machine) = futures::try_join!(
        role::observe(iam, &d.role.name, desired::ROLE_POLICY_NAME),
        aws.logs.describe_log_group(&d.log_group.name),
        aws.stepfunctions.describe_state_machine(&d.machine_arn),
    )?;
    if exec.plans() {
        d.role.boundary = observed_role.as_ref().and_then(|r| r.info.permissions_boundary.clone());
    }

    // Ownership, at first sight (status records what was checked).
    let mut machine_tags = None;
    if let Some(m) = &machine
        && next.state_machine_arn.as_deref() != Some(m.arn.as_str())
    {
        let tags = aws.stepfunctions.list_tags(&m.arn).await?;
        exec.owned(&format!("state machine {}", m.name), &tags)?;
        machine_tags = Some(tags);
    }
    let untagged_group = match &group {
        Some(g) if next.state_machine_arn.is_none() => log_group::check_first_sight(exec, aws.logs.as_ref(), g).await?,
        _ => false,
    };
    for tags in [&mut d.role.tags, &mut d.tags] {
        exec.desired_tags(tags, machine_tags.as_ref());
    }

    // What will exist is recorded before the first write, so clean-up finds it.
    if next.state_machine_arn.as_deref() != Some(d.machine_arn.as_str()) {
        next.state_machine_arn = Some(d.machine_arn.clone());
        exec.record(next).await?;
    }

    let send = |change: Change| apply(aws, iam, input.locks, change);
    let role_arn =
        role::converge(exec, iam, &d.role, observed_role.as_ref(), next.role_arn.as_deref(), d.role_arn.clone())
            .await?;
    next.role_arn = Some(role_arn);

    let group_label = format!("log group {}", d.log_group.name);
    for c in log_group::changes(&d.log_group, group.as_ref(), untagged_group) {
        let change = Change::LogGroup(c);
        exec.change(&change, group.is_some(), &group_label, send(change.clone())).await?;
    }

    let machine_label = format!("state machine {}", d.names.state_machine);
    for change in diff::machine_changes(&d.names.state_machine, &d.machine_arn, &d.settings, &d.tags, machine.as_ref())
    {
        exec.change(&change, machine.is_some(), &machine_label, send(change.clone())).await?;
    }
    if let Some(tags) = &machine_tags {
        let missing: std::collections::BTreeMap<String, String> =
            d.tags.iter().filter(|(k, v)| tags.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
        if !missing.is_empty() {
            let change = Change::TagStateMachine { arn: d.machine_arn.clone(), tags: missing };
            exec.change(&change, true, &machine_label, send(change.clone())).await?;
        }
    }

    trigger(aws, iam, input, exec, next, &d).await
}

/// The trigger's role, EventBridge delivery on the bucket, the rule and its target; or, when
/// the spec has no trigger any more, the removal of what an earlier one created.
async fn trigger(
    aws: &Regional,
    iam: &dyn IamApi,
    input: &Inputs<'_>,
    exec: &Exe<'_>,
    next: &mut EtlPipelineStatus,
    d: &desired::Desired,
) -> Result<(), Stop> {
    let send = |change: Change| apply(aws, iam, input.locks, change);
    let Some(t) = &d.trigger else {
        if let Some(rule) = next.rule.clone() {
            remove_rule(aws, iam, input.locks, exec, &rule, &d.names.events_role).await?;
            next.rule = None;
            next.trigger_bucket = None;
        }
        return Ok(());
    };
    let (observed_role, rule) = futures::try_join!(
        role::observe(iam, &t.role.name, desired::ROLE_POLICY_NAME),
        aws.events.describe_rule(&t.rule.name),
    )?;
    if let Some(r) = &rule
        && next.rule.as_deref() != Some(r.rule.name.as_str())
    {
        let tags = aws.events.list_tags(&r.arn).await?;
        exec.owned(&format!("EventBridge rule {}", r.rule.name), &tags)?;
    }
    if (next.rule.as_deref(), next.trigger_bucket.as_deref()) != (Some(t.rule.name.as_str()), t.bucket.as_deref()) {
        next.rule = Some(t.rule.name.clone());
        next.trigger_bucket = t.bucket.clone();
        exec.record(next).await?;
    }
    let mut events_role = t.role.clone();
    if exec.plans() {
        events_role.boundary = observed_role.as_ref().and_then(|r| r.info.permissions_boundary.clone());
    }
    exec.desired_tags(&mut events_role.tags, None);
    role::converge(exec, iam, &events_role, observed_role.as_ref(), None, String::new()).await?;
    // EventBridge delivery is turned on once per bucket and recorded, not read back each
    // round: moto 5.2.5 leaves it out of GetBucketNotificationConfiguration (our moto
    // extension now reports it). Reading it back would notice an out-of-band switch-off, at
    // one read per round.
    if let Some(bucket) = &t.bucket
        && next.event_bridge_bucket.as_deref() != Some(bucket.as_str())
    {
        // A plan before its lake: the bucket does not exist yet and has no notifications.
        let current = crate::reconcile::etlfunction::observe::notifications(aws, bucket).await?;
        if let Some(change) = diff::event_bridge_change(bucket, &current) {
            exec.change(&change, true, &format!("bucket {bucket}"), send(change.clone())).await?;
        }
        if !exec.plans() {
            next.event_bridge_bucket = Some(bucket.clone());
        }
    }
    let targets = match &rule {
        Some(_) => aws.events.list_targets(&t.rule.name).await?,
        None => Vec::new(),
    };
    let label = format!("rule {}", t.rule.name);
    for change in diff::rule_changes(&t.rule, &t.target, &d.tags, rule.as_ref(), &targets) {
        exec.change(&change, rule.is_some(), &label, send(change.clone())).await?;
    }
    Ok(())
}

/// Removes the rule (targets first: EventBridge refuses to delete a rule that has any) and
/// its role, when they are ours.
pub async fn remove_rule(
    aws: &Regional,
    iam: &dyn IamApi,
    locks: &KeyedLocks,
    exec: &Exe<'_>,
    rule: &str,
    events_role: &str,
) -> Result<(), Stop> {
    let send = |change: Change| apply(aws, iam, locks, change);
    if let Some(r) = aws.events.describe_rule(rule).await?
        && exec.is_ours(&aws.events.list_tags(&r.arn).await?)
    {
        let ids: Vec<String> = aws.events.list_targets(rule).await?.into_iter().map(|t| t.id).collect();
        let label = format!("rule {rule}");
        if !ids.is_empty() {
            let change = Change::RemoveTargets { rule: rule.to_string(), ids };
            exec.change(&change, true, &label, send(change.clone())).await?;
        }
        let change = Change::DeleteRule { rule: rule.to_string() };
        exec.change(&change, true, &label, send(change.clone())).await?;
    }
    role::delete(exec, iam, events_role, |t| exec.is_ours(t)).await
}

/// Sends one change. Returns the ARN of a created role or state machine.
pub async fn apply(aws: &Regional, iam: &dyn IamApi, locks: &KeyedLocks, change: Change) -> AwsResult<Option<String>> {
    let done = match change {
        Change::Role(c) => return role::apply(iam, &c).await,
        Change::LogGroup(c) => return log_group::apply(aws.logs.as_ref(), &c).await,
        Change::CreateStateMachine { name, settings, tags } => {
            let sfn = aws.stepfunctions.clone();
            return retry_role_propagation(|| sfn.create_state_machine(&name, &settings, &tags)).await.map(Some);
        }
        Change::UpdateStateMachine { arn, settings, .. } => {
            let sfn = aws.stepfunctions.clone();
            retry_role_propagation(|| sfn.update_state_machine(&arn, &settings)).await
        }
        Change::TagStateMachine { arn, tags } => aws.stepfunctions.tag(&arn, &tags).await,
        Change::DeleteStateMachine { arn } => aws.stepfunctions.delete_state_machine(&arn).await,
        Change::EnableEventBridge { bucket, .. } => {
            // Re-read under the lock: entries siblings wrote since the step read are kept.
            let _guard = locks.lock(&bucket).await;
            let mut current = aws.s3.get_notifications(&bucket).await?;
            if current.event_bridge {
                return Ok(None);
            }
            current.event_bridge = true;
            aws.s3.put_notifications(&bucket, &current).await
        }
        Change::PutRule { rule, tags } => aws.events.put_rule(&rule, &tags).await.map(drop),
        Change::PutTarget { rule, target } => {
            let events = aws.events.clone();
            retry_role_propagation(|| events.put_targets(&rule, std::slice::from_ref(&target))).await
        }
        Change::RemoveTargets { rule, ids } => aws.events.remove_targets(&rule, &ids).await,
        Change::DeleteRule { rule } => aws.events.delete_rule(&rule).await,
    };
    done.map(|()| None)
}

/// True for a service's refusal of a role IAM has not propagated yet.
fn role_not_yet_usable(e: &crate::aws::error::AwsError) -> bool {
    // "Neither the global service principal states.amazonaws.com, nor the regional one is
    // authorized to assume the provided role."
    e.code.as_deref() == Some("AccessDeniedException") && e.message.contains("assume the provided role")
}

/// Runs `call`, retrying while Step Functions or EventBridge cannot use a fresh role yet.
async fn retry_role_propagation<T, F, Fut>(call: F) -> AwsResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = AwsResult<T>>,
{
    crate::engine::role::retry_while_propagating(role_not_yet_usable, call).await
}
