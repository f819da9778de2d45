//! The EtlPipeline's convergence, written once: the controller runs it with the apply
//! executor, `lakeops plan` with the plan executor.
//!
//! Order: the definition checked locally; read the machine's role, the log group and the
//! machine; check ownership; record the names before the first write; the role; the log
//! group; the machine (created, or one UpdateStateMachine for every difference); then the
//! trigger: its role, EventBridge delivery on the source bucket (merged into the
//! notification document under the bucket's lock, other entries kept), the rule and its
//! one target. A trigger removed from the spec takes its rule and role with it. Last, the
//! ingest API ([`ingest_api`]; its pure parts are in `ingest.rs`).
//!
//! Reads on a converged pipeline with an objectCreated trigger: GetRole and GetRolePolicy
//! for each of the two roles, DescribeLogGroups, DescribeStateMachine, DescribeRule and
//! ListTargetsByRule: 8 reads, 0 writes (a unit test counts them); an ingest API adds 9,
//! and 2 more with a custom domain. The bucket's EventBridge delivery is turned on once and
//! recorded in status.

use std::collections::BTreeMap;

use kube::ResourceExt;
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

    trigger(aws, iam, input, exec, next, &d).await?;
    ingest_api(aws, iam, input, exec, next, &d).await
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
        Change::Api(c) => return apply_api(aws, c).await,
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

// ----- the ingest API -----

/// `id` and root resource id of a created API, as its create returns them through the
/// executor (one string).
fn created_api(created: &str) -> (String, String) {
    let (id, root) = created.split_once('/').unwrap_or((created, ""));
    (id.to_string(), root.to_string())
}

/// The ingest API: its role and access log group, the API (found by the id status records,
/// or by its creation token after a create whose answer was lost; created under a token
/// recorded first), its model, validator, method and integration, a deployment when the
/// method changed, the stage (one UpdateStage for every difference), the usage plan (also
/// created under a recorded token), and the custom domain with its mapping. Without
/// `spec.ingest`, what an earlier spec created is removed.
///
/// Reads on a converged API: GetRestApi, GetRole and GetRolePolicy, DescribeLogGroups,
/// GetUsagePlans, GetModels, GetRequestValidators, GetMethod, GetStage (9), and with a
/// domain GetDomainName and GetBasePathMappings (11).
async fn ingest_api(
    aws: &Regional,
    iam: &dyn IamApi,
    input: &Inputs<'_>,
    exec: &Exe<'_>,
    next: &mut EtlPipelineStatus,
    d: &desired::Desired,
) -> Result<(), Stop> {
    use super::ingest::{self as ing, ApiChange};
    use crate::aws::apigateway::UsagePlanInfo;
    use crate::engine::{intent, placeholder};

    let send = |change: Change| apply(aws, iam, input.locks, change);
    let Some(a) = &d.api else {
        return remove_api(aws, iam, exec, next, &d.names, input.pipeline.spec.deletion_policy).await;
    };
    let uid = input.pipeline.metadata.uid.clone().unwrap_or_default();
    let region = input.lake.spec.region.as_str();
    let part = crate::reconcile::datalake::desired::partition(region);
    let api_token = intent::token(&uid, ing::API_TOKEN);
    let plan_token = intent::token(&uid, ing::PLAN_TOKEN);

    // Reads, at once: the API, its role, the access log group, the usage plans, the domain.
    // The API: by the id status records, by the creation token (a create whose answer was
    // lost), or by owner and name (`lakeops plan` of a manifest, which has no status).
    let owner = format!("{}/{}", input.pipeline.namespace().unwrap_or_default(), input.pipeline.name_any());
    let find_api = async {
        if let Some(id) = &next.rest_api_id
            && let Some(found) = aws.apigateway.get_rest_api(id).await?
        {
            return Ok(Some(found));
        }
        let (key, value) = match next.creation_tokens.get(ing::API_TOKEN) {
            Some(token) => (intent::CREATION_TOKEN_TAG, token.as_str()),
            None => (lakeops_crds::names::tag::OWNER, owner.as_str()),
        };
        let found = aws.apigateway.find_rest_api(key, value).await?;
        AwsResult::Ok(found.filter(|f| f.name == a.settings.name))
    };
    let find_domain = async {
        match &a.domain {
            Some(dom) => aws.apigateway.get_domain_name(&dom.name).await,
            None => Ok(None),
        }
    };
    let (api, observed_role, group, plans, domain) = futures::try_join!(
        find_api,
        role::observe(iam, &a.role.name, desired::ROLE_POLICY_NAME),
        aws.logs.describe_log_group(&a.log_group.name),
        aws.apigateway.get_usage_plans(),
        find_domain,
    )?;

    // Ownership at first sight.
    if let Some(found) = &api
        && next.rest_api_id.as_deref() != Some(found.id.as_str())
    {
        exec.owned(&format!("REST API {}", found.id), &found.tags)?;
    }
    let untagged_group = match &group {
        Some(g) if next.rest_api_id.is_none() => log_group::check_first_sight(exec, aws.logs.as_ref(), g).await?,
        _ => false,
    };
    if let Some(dom) = &domain
        && next.ingest_domain.as_deref() != Some(dom.name.as_str())
    {
        exec.owned(&format!("custom domain {}", dom.name), &dom.tags)?;
    }
    let plan = plans
        .iter()
        .find(|p| next.usage_plan_id.as_deref() == Some(p.id.as_str()))
        .or_else(|| plans.iter().find(|p| p.tags.get(intent::CREATION_TOKEN_TAG) == Some(&plan_token)))
        .or_else(|| {
            plans
                .iter()
                .find(|p| p.name == a.usage_plan.name && p.tags.get(lakeops_crds::names::tag::OWNER) == Some(&owner))
        })
        .cloned();

    // Intents before the first create: the tokens the two non-idempotent creates carry.
    let mut recorded = false;
    if api.is_none() {
        recorded |= intent::record(&mut next.creation_tokens, ing::API_TOKEN, &api_token);
    }
    if plan.is_none() {
        recorded |= intent::record(&mut next.creation_tokens, ing::PLAN_TOKEN, &plan_token);
    }
    if let Some(dom) = &a.domain
        && next.ingest_domain.as_deref() != Some(dom.name.as_str())
    {
        next.ingest_domain = Some(dom.name.clone());
        recorded = true;
    }
    if recorded {
        exec.record(next).await?;
    }

    let mut api_role = a.role.clone();
    if exec.plans() {
        api_role.boundary = observed_role.as_ref().and_then(|r| r.info.permissions_boundary.clone());
    }
    exec.desired_tags(&mut api_role.tags, api.as_ref().map(|x| &x.tags));
    role::converge(exec, iam, &api_role, observed_role.as_ref(), None, String::new()).await?;

    let group_label = format!("log group {}", a.log_group.name);
    for c in log_group::changes(&a.log_group, group.as_ref(), untagged_group) {
        let change = Change::LogGroup(c);
        exec.change(&change, group.is_some(), &group_label, send(change.clone())).await?;
    }

    // The API itself.
    let label = format!("REST API {}", a.settings.name);
    let (id, root) = match &api {
        Some(found) => {
            let arn = format!("arn:{part}:execute-api:{region}:{}:{}", input.account, found.id);
            for c in ing::api_changes(a, &found.id, &arn, found) {
                let change = Change::Api(c);
                exec.change(&change, true, &label, send(change.clone())).await?;
            }
            (found.id.clone(), found.root_resource_id.clone())
        }
        None => {
            let mut tags = a.tags.clone();
            tags.insert(intent::CREATION_TOKEN_TAG.to_string(), api_token.clone());
            let change = Change::Api(ApiChange::CreateRestApi { settings: a.settings.clone(), tags });
            match exec.change(&change, false, &label, send(change.clone())).await? {
                Some(created) => {
                    let (id, root) = created_api(&created);
                    next.rest_api_id = Some(id.clone());
                    exec.record(next).await?;
                    (id, root)
                }
                None => (placeholder("REST API"), placeholder("root resource")),
            }
        }
    };
    if !exec.plans() {
        next.rest_api_id = Some(id.clone());
    }

    // What hangs off it (nothing yet for an API just created, or planned).
    let existed = api.is_some();
    let (models, validators, method, stage) = if existed {
        futures::try_join!(
            aws.apigateway.get_models(&id),
            aws.apigateway.get_request_validators(&id),
            aws.apigateway.get_method(&id, &root, ing::HTTP_METHOD),
            aws.apigateway.get_stage(&id, ing::STAGE),
        )?
    } else {
        (Vec::new(), Vec::new(), None, None)
    };
    if !models.iter().any(|m| m.name == a.model.name) {
        let change = Change::Api(ApiChange::CreateModel { api: id.clone(), model: a.model.clone() });
        exec.change(&change, existed, &label, send(change.clone())).await?;
    }
    let validator_id = match validators.iter().find(|v| v.name == ing::VALIDATOR_NAME && v.validate_body) {
        Some(v) => v.id.clone(),
        None => {
            let validator = crate::aws::apigateway::Validator {
                name: ing::VALIDATOR_NAME.into(),
                validate_body: true,
                ..Default::default()
            };
            let change = Change::Api(ApiChange::CreateValidator { api: id.clone(), validator });
            exec.change(&change, existed, &label, send(change.clone()))
                .await?
                .unwrap_or_else(|| placeholder("request validator"))
        }
    };
    let method_changes = ing::method_changes(a, &id, &root, &validator_id, method.as_ref());
    let method_changed = !method_changes.is_empty();
    for c in method_changes {
        let change = Change::Api(c);
        exec.change(&change, existed, &label, send(change.clone())).await?;
    }

    // A deployment when the method changed (this round, or since the stage's deployment),
    // then the stage.
    let digest = a.deployment_digest(&validator_id);
    let deployed = stage.as_ref().and_then(|s| s.variables.get(ing::DEPLOYED_VARIABLE));
    let deployment = if method_changed || deployed != Some(&digest) {
        let change = Change::Api(ApiChange::CreateDeployment { api: id.clone() });
        Some(
            exec.change(&change, existed, &label, send(change.clone()))
                .await?
                .unwrap_or_else(|| placeholder("deployment")),
        )
    } else {
        None
    };
    let stage_label = format!("stage {} of REST API {}", ing::STAGE, a.settings.name);
    let fresh = crate::aws::apigateway::StageInfo { tracing: a.stage.tracing, ..Default::default() };
    let (observed_stage, new_deployment) = match &stage {
        Some(s) => (s.clone(), deployment.as_deref()),
        None => {
            let dep = deployment.clone().unwrap_or_default();
            let change = Change::Api(ApiChange::CreateStage {
                api: id.clone(),
                deployment: dep,
                tracing: a.stage.tracing,
                variables: BTreeMap::from([(ing::DEPLOYED_VARIABLE.to_string(), digest.clone())]),
                tags: a.stage.tags.clone(),
            });
            exec.change(&change, false, &stage_label, send(change.clone())).await?;
            (fresh, None)
        }
    };
    let (patches, what, weakens) =
        ing::stage_patches(&a.stage, &observed_stage, new_deployment.map(|d| (d, digest.as_str())));
    if !patches.is_empty() {
        let change = Change::Api(ApiChange::UpdateStage { api: id.clone(), patches, what, weakens });
        exec.change(&change, stage.is_some(), &stage_label, send(change.clone())).await?;
    }

    // The usage plan: same throttle, bound to the stage.
    let plan_label = format!("usage plan {}", a.usage_plan.name);
    match &plan {
        Some(p) => {
            exec.owned(&plan_label, &p.tags)?;
            for c in ing::plan_changes(&a.usage_plan, p, &id) {
                let change = Change::Api(c);
                exec.change(&change, true, &plan_label, send(change.clone())).await?;
            }
            if !exec.plans() {
                next.usage_plan_id = Some(p.id.clone());
            }
        }
        None => {
            let mut tags = a.usage_plan.tags.clone();
            tags.insert(intent::CREATION_TOKEN_TAG.to_string(), plan_token.clone());
            let new =
                UsagePlanInfo { api_stages: vec![(id.clone(), ing::STAGE.to_string())], tags, ..a.usage_plan.clone() };
            let change = Change::Api(ApiChange::CreateUsagePlan { plan: new });
            if let Some(created) = exec.change(&change, false, &plan_label, send(change.clone())).await? {
                next.usage_plan_id = Some(created);
            }
        }
    }

    // The custom domain.
    let endpoint = match &a.domain {
        Some(dom) => {
            let mappings = match &domain {
                Some(_) => aws.apigateway.get_base_path_mappings(&dom.name).await?,
                None => Vec::new(),
            };
            let dom_label = format!("custom domain {}", dom.name);
            for c in ing::domain_changes(dom, domain.as_ref(), &mappings, &id) {
                let change = Change::Api(c);
                exec.change(&change, domain.is_some(), &dom_label, send(change.clone())).await?;
            }
            format!("https://{}/", dom.name)
        }
        None => {
            remove_domain(aws, exec, next).await?;
            format!("https://{id}.execute-api.{region}.amazonaws.com/{}/", ing::STAGE)
        }
    };
    if !exec.plans() {
        next.ingest_url = Some(endpoint);
    }
    Ok(())
}

/// Removes the custom domain status records (a domain dropped from the spec), when it is ours.
async fn remove_domain(aws: &Regional, exec: &Exe<'_>, next: &mut EtlPipelineStatus) -> Result<(), Stop> {
    use super::ingest::ApiChange;
    if exec.plans() && next.ingest_domain.is_none() {
        // A manifest has no status: the domain an earlier spec made is found by its tags.
        let domains = aws.apigateway.get_domain_names().await?;
        next.ingest_domain = domains.into_iter().find(|d| exec.is_ours(&d.tags)).map(|d| d.name);
    }
    let Some(name) = next.ingest_domain.clone() else { return Ok(()) };
    if let Some(dom) = aws.apigateway.get_domain_name(&name).await?
        && exec.is_ours(&dom.tags)
    {
        let change = ApiChange::DeleteDomain { name: name.clone() };
        exec.change(&Change::Api(change.clone()), true, &format!("custom domain {name}"), apply_api(aws, change))
            .await?;
    }
    if !exec.plans() {
        next.ingest_domain = None;
    }
    Ok(())
}

/// Removes what an ingest API left (spec.ingest removed, or the pipeline deleted): its
/// domain, usage plan, API and role, and its access log group as `deletionPolicy` says.
pub async fn remove_api(
    aws: &Regional,
    iam: &dyn IamApi,
    exec: &Exe<'_>,
    next: &mut EtlPipelineStatus,
    names: &desired::Names,
    deletion: lakeops_crds::DeletionPolicy,
) -> Result<(), Stop> {
    use super::ingest::ApiChange;
    if next.rest_api_id.is_none() && next.usage_plan_id.is_none() && next.ingest_domain.is_none() {
        return Ok(());
    }
    remove_domain(aws, exec, next).await?;
    if let Some(id) = next.usage_plan_id.clone() {
        let plans = aws.apigateway.get_usage_plans().await?;
        if let Some(p) = plans.iter().find(|p| p.id == id)
            && exec.is_ours(&p.tags)
        {
            let change = ApiChange::DeleteUsagePlan { id: id.clone() };
            exec.change(&Change::Api(change.clone()), true, &format!("usage plan {id}"), apply_api(aws, change))
                .await?;
        }
    }
    if let Some(id) = next.rest_api_id.clone()
        && let Some(found) = aws.apigateway.get_rest_api(&id).await?
        && exec.is_ours(&found.tags)
    {
        let change = ApiChange::DeleteRestApi { id: id.clone() };
        exec.change(&Change::Api(change.clone()), true, &format!("REST API {id}"), apply_api(aws, change)).await?;
    }
    role::delete(exec, iam, &names.api_role, |t| exec.is_ours(t)).await?;
    if !exec.plans() {
        log_group::retire(aws.logs.as_ref(), &names.access_log_group, deletion, |t| exec.is_ours(t)).await?;
    }
    if !exec.plans() {
        next.rest_api_id = None;
        next.usage_plan_id = None;
        next.ingest_url = None;
        next.creation_tokens.remove(super::ingest::API_TOKEN);
        next.creation_tokens.remove(super::ingest::PLAN_TOKEN);
    }
    Ok(())
}

/// Sends one API Gateway change. A created API is returned as `id/root-resource-id`, a
/// created validator, deployment or usage plan by its id.
async fn apply_api(aws: &Regional, change: super::ingest::ApiChange) -> AwsResult<Option<String>> {
    use super::ingest::{ApiChange, HTTP_METHOD, STAGE};
    let gw = &aws.apigateway;
    let done = match change {
        ApiChange::CreateRestApi { settings, tags } => {
            let created = gw.create_rest_api(&settings, &tags).await?;
            return Ok(Some(format!("{}/{}", created.id, created.root_resource_id)));
        }
        ApiChange::UpdateRestApi { id, patches, .. } => gw.update_rest_api(&id, &patches).await,
        ApiChange::CreateModel { api, model } => gw.create_model(&api, &model).await,
        ApiChange::CreateValidator { api, validator } => {
            return gw.create_request_validator(&api, &validator).await.map(Some);
        }
        ApiChange::DeleteMethod { api, resource } => gw.delete_method(&api, &resource, HTTP_METHOD).await,
        ApiChange::PutMethod { api, resource, method, .. } => {
            gw.put_method(&api, &resource, HTTP_METHOD, &method).await
        }
        ApiChange::PutIntegration { api, resource, integration } => {
            let gw = gw.clone();
            retry_role_propagation(|| gw.put_integration(&api, &resource, HTTP_METHOD, &integration)).await
        }
        ApiChange::PutMethodResponse { api, resource, status } => {
            gw.put_method_response(&api, &resource, HTTP_METHOD, &status).await
        }
        ApiChange::PutIntegrationResponse { api, resource, response } => {
            gw.put_integration_response(&api, &resource, HTTP_METHOD, &response).await
        }
        ApiChange::CreateDeployment { api } => {
            return gw.create_deployment(&api, "deployed by lakeops").await.map(Some);
        }
        ApiChange::CreateStage { api, deployment, tracing, variables, tags } => {
            gw.create_stage(&api, STAGE, &deployment, tracing, &variables, &tags).await
        }
        ApiChange::UpdateStage { api, patches, .. } => gw.update_stage(&api, STAGE, &patches).await,
        ApiChange::CreateUsagePlan { plan } => return gw.create_usage_plan(&plan).await.map(Some),
        ApiChange::UpdateUsagePlan { id, patches, .. } => gw.update_usage_plan(&id, &patches).await,
        ApiChange::CreateDomain { domain } => gw.create_domain_name(&domain).await,
        ApiChange::UpdateDomain { name, patches } => gw.update_domain_name(&name, &patches).await,
        ApiChange::CreateMapping { domain, mapping } => gw.create_base_path_mapping(&domain, &mapping).await,
        ApiChange::DeleteDomain { name } => gw.delete_domain_name(&name).await,
        ApiChange::DeleteUsagePlan { id } => gw.delete_usage_plan(&id).await,
        ApiChange::DeleteRestApi { id } => gw.delete_rest_api(&id).await,
    };
    done.map(|()| None)
}
