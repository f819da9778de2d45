//! The AWS state an EtlPipeline asks for: a pure function of the spec, its lake, the
//! functions of its steps and a few facts, unit-tested without AWS.
//!
//! The state machine definition is typed (serde) and checked locally before it is sent:
//! Step Functions' own ValidateStateMachineDefinition is not implemented by the emulator,
//! and a definition that cannot run should stall the pipeline, not reach AWS.
use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;
use lakeops_crds::{DataLake, EtlPipeline};
use serde::Serialize;

use crate::aws::events::{Rule, RuleTarget};
use crate::aws::stepfunctions::StateMachineSettings;
use crate::engine::log_group::OwnedLogGroup;
use crate::engine::role::OwnedRole;
use crate::iam::ROLE_PATH;
use crate::policy::{Effect, PolicyDocument, Principal, Statement};
use crate::reconcile::datalake::desired::partition;
use crate::reconcile::etlfunction::desired::bounded_name;

/// Name of the inline policy on each generated role.
pub const ROLE_POLICY_NAME: &str = "lakeops-pipeline";
/// Lambda's errors worth a retry (AWS's recommended list for Lambda tasks).
pub const LAMBDA_TRANSIENT_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];
/// The failure path's states. Step names cannot contain spaces, so these never clash.
pub const DEAD_LETTER_STATE: &str = "Send to dead-letter queue";
pub const ALERT_STATE: &str = "Alert the security topic";
/// The SecurityBaseline's alert topic and the alias of its key (the baseline kind's names).
pub use crate::reconcile::securitybaseline::desired::{ALERTS_KEY_ALIAS, topic_arn as alert_topic_arn};
pub const FAILED_STATE: &str = "Pipeline failed";
/// The target id of the rule's one target.
pub const RULE_TARGET_ID: &str = "lakeops-pipeline";
/// IAM role names are at most 64 characters; state machine names 80.
const MAX_ROLE_NAME: usize = 64;
const MAX_MACHINE_NAME: usize = 80;

/// What the desired state is computed from, besides the pipeline.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub lake: &'a DataLake,
    pub account_id: &'a str,
    /// The lake key (from the lake's status).
    pub key_arn: &'a str,
    pub permissions_boundary: Option<&'a str>,
}

/// The AWS names of one pipeline, from namespace and name only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    pub state_machine: String,
    pub role: String,
    pub events_role: String,
    pub rule: String,
    pub log_group: String,
    /// The ingest API, its usage plan (both named like the machine) and its role.
    pub api: String,
    pub api_role: String,
    /// The ingest API's access log group.
    pub access_log_group: String,
}

/// `lakeops-<namespace>-<name>` and its suffixed variants, each within its service's limit.
pub fn names(p: &EtlPipeline) -> Names {
    let base = format!("lakeops-{}-{}", p.namespace().unwrap_or_default(), p.name_any());
    let state_machine = bounded_name(&base, MAX_MACHINE_NAME);
    Names {
        role: bounded_name(&format!("{base}-sfn"), MAX_ROLE_NAME),
        events_role: bounded_name(&format!("{base}-events"), MAX_ROLE_NAME),
        rule: bounded_name(&base, MAX_ROLE_NAME),
        // Step Functions' documentation asks for this prefix: it keeps the account's log
        // resource policy from growing with every state machine.
        log_group: format!("/aws/vendedlogs/states/{state_machine}"),
        api_role: bounded_name(&format!("{base}-apigw"), MAX_ROLE_NAME),
        access_log_group: format!("/aws/apigateway/{state_machine}"),
        api: state_machine.clone(),
        state_machine,
    }
}

/// The ARN of the EtlFunction `name` in `namespace` (the function's own naming rule).
pub fn function_arn(region: &str, account: &str, namespace: &str, name: &str) -> String {
    let full = format!("lakeops-{namespace}-{name}");
    let function = bounded_name(&full, MAX_ROLE_NAME);
    format!("arn:{}:lambda:{region}:{account}:function:{function}", partition(region))
}

// ----- the definition, typed -----

/// An Amazon States Language document.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Definition {
    pub comment: String,
    pub start_at: String,
    pub states: BTreeMap<String, State>,
}

/// The states lakeops generates.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "Type")]
pub enum State {
    Task(Task),
    Fail(Fail),
}

/// A Task state.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retry: Vec<Retrier>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub catch: Vec<Catcher>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub end: bool,
}

/// A Retry entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: i32,
    pub max_attempts: i32,
    pub backoff_rate: f64,
}

/// A Catch entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Catcher {
    pub error_equals: Vec<String>,
    /// Keeps the input and adds the error under `$.error`.
    pub result_path: String,
    pub next: String,
}

/// A Fail state.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Fail {
    pub error: String,
    pub cause: String,
}

impl Definition {
    /// As sent to Step Functions.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("definitions always serialise")
    }

    /// The checks Step Functions makes that a generated document could fail: StartAt and
    /// every Next/Catch name an existing state, a Task either ends or goes on, every state
    /// is reachable, no state is visited twice on the main path, names fit in 80 characters.
    pub fn validate(&self) -> Result<(), String> {
        let exists = |name: &str| self.states.contains_key(name);
        if !exists(&self.start_at) {
            return Err(format!("StartAt {:?} is not a state", self.start_at));
        }
        for (name, state) in &self.states {
            if name.is_empty() || name.chars().count() > 80 {
                return Err(format!("state name {name:?} must be 1 to 80 characters"));
            }
            if let State::Task(t) = state {
                if t.end == t.next.is_some() {
                    return Err(format!("state {name:?} must either end or name its Next state"));
                }
                for target in t.next.iter().chain(t.catch.iter().map(|c| &c.next)) {
                    if !exists(target) {
                        return Err(format!("state {name:?} goes to {target:?}, which is not a state"));
                    }
                }
                if t.retry.iter().any(|r| r.max_attempts < 0 || r.interval_seconds < 1 || r.backoff_rate < 1.0) {
                    return Err(format!("state {name:?} has an invalid Retry"));
                }
            }
        }
        // Walk from StartAt: every state reachable, the main path without cycles.
        let mut reached = BTreeSet::new();
        let mut path = BTreeSet::new();
        let mut current = Some(self.start_at.clone());
        while let Some(name) = current {
            if !path.insert(name.clone()) {
                return Err(format!("state {name:?} is reached twice: the steps form a loop"));
            }
            reached.insert(name.clone());
            current = match &self.states[&name] {
                State::Task(t) => {
                    for c in &t.catch {
                        let mut fallback = Some(c.next.clone());
                        while let Some(f) = fallback {
                            reached.insert(f.clone());
                            fallback = match &self.states[&f] {
                                State::Task(t) => t.next.clone(),
                                State::Fail(_) => None,
                            };
                        }
                    }
                    t.next.clone()
                }
                State::Fail(_) => None,
            };
        }
        if let Some(orphan) = self.states.keys().find(|k| !reached.contains(*k)) {
            return Err(format!("state {orphan:?} is never reached"));
        }
        Ok(())
    }
}

/// The definition: one Task per step invoking its function by ARN, in order, with the
/// step's Retry on Lambda's transient errors; any error goes to the failure path: the
/// dead-letter queue when set, then the SecurityBaseline's alert topic when `alert` (the
/// topic ARN given), then a Fail state. The alert names the pipeline, the execution and the
/// error's name, never the input or the error's cause (which may quote data); a failure to
/// publish still ends in the Fail state.
pub fn definition(p: &EtlPipeline, function_arns: &[String], alert_topic: Option<&str>) -> Definition {
    let s = &p.spec;
    let dlq = s.on_failure.as_ref().and_then(|f| f.dead_letter_queue_arn.as_deref());
    let alert_entry = if alert_topic.is_some() { ALERT_STATE } else { FAILED_STATE };
    let failure_entry = if dlq.is_some() { DEAD_LETTER_STATE } else { alert_entry };
    let mut states = BTreeMap::new();
    for (i, (step, arn)) in s.steps.iter().zip(function_arns).enumerate() {
        let next = s.steps.get(i + 1).map(|n| n.name.clone());
        let retry = if step.retry.max_attempts > 0 {
            vec![Retrier {
                error_equals: LAMBDA_TRANSIENT_ERRORS.iter().map(|e| e.to_string()).collect(),
                interval_seconds: step.retry.interval_seconds,
                max_attempts: step.retry.max_attempts,
                backoff_rate: step.retry.backoff_rate,
            }]
        } else {
            Vec::new()
        };
        let task = Task {
            resource: arn.clone(),
            parameters: None,
            timeout_seconds: step.timeout_seconds,
            retry,
            catch: vec![Catcher {
                error_equals: vec!["States.ALL".into()],
                result_path: "$.error".into(),
                next: failure_entry.into(),
            }],
            end: next.is_none(),
            next,
        };
        states.insert(step.name.clone(), State::Task(task));
    }
    if let Some(dlq) = dlq {
        let (resource, parameters) = if dlq.contains(":sns:") {
            ("arn:aws:states:::sns:publish", serde_json::json!({"TopicArn": dlq, "Message.$": "$"}))
        } else {
            ("arn:aws:states:::sqs:sendMessage", serde_json::json!({"QueueUrl": queue_url(dlq), "MessageBody.$": "$"}))
        };
        let task = Task {
            resource: resource.into(),
            parameters: Some(parameters),
            timeout_seconds: None,
            retry: Vec::new(),
            catch: Vec::new(),
            next: Some(alert_entry.into()),
            end: false,
        };
        states.insert(DEAD_LETTER_STATE.into(), State::Task(task));
    }
    if let Some(topic) = alert_topic {
        let pipeline = format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any());
        let task = Task {
            resource: "arn:aws:states:::sns:publish".into(),
            parameters: Some(serde_json::json!({
                "TopicArn": topic,
                "Subject": "lakeops: an EtlPipeline execution failed",
                "Message.$": format!(
                    "States.Format('EtlPipeline {pipeline}: execution {{}} failed with {{}}', $$.Execution.Id, $.error.Error)"
                ),
            })),
            timeout_seconds: None,
            retry: Vec::new(),
            // The execution fails either way; a topic that is missing must not hide that.
            catch: vec![Catcher {
                error_equals: vec!["States.ALL".into()],
                result_path: "$.alertError".into(),
                next: FAILED_STATE.into(),
            }],
            next: Some(FAILED_STATE.into()),
            end: false,
        };
        states.insert(ALERT_STATE.into(), State::Task(task));
    }
    states.insert(
        FAILED_STATE.into(),
        State::Fail(Fail {
            error: "PipelineFailed".into(),
            cause: "a step failed; the execution history names the step and its error".into(),
        }),
    );
    Definition {
        comment: format!("EtlPipeline {}/{}, generated by lakeops", p.namespace().unwrap_or_default(), p.name_any()),
        start_at: s.steps.first().map(|f| f.name.clone()).unwrap_or_default(),
        states,
    }
}

/// An SQS queue's URL from its ARN (`arn:aws:sqs:<region>:<account>:<name>`).
pub fn queue_url(arn: &str) -> String {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        [_, _, _, region, account, name] => format!("https://sqs.{region}.amazonaws.com/{account}/{name}"),
        _ => arn.to_string(),
    }
}

// ----- roles -----

fn trust(service: &str, account: &str) -> PolicyDocument {
    PolicyDocument::new(vec![
        Statement::new("ServiceAssumesTheRole", Effect::Allow, Principal::service(service), &["sts:AssumeRole"], &[])
            .when("StringEquals", "aws:SourceAccount", &[account]),
    ])
}

fn allow(sid: &str, actions: &[&str], resources: &[String]) -> Statement {
    Statement::new(sid, Effect::Allow, Principal::none(), actions, resources)
}

/// The state machine's role: invoke exactly the listed functions, send to the dead-letter
/// target, the lake key only through Step Functions, log delivery and traces.
pub fn machine_policy(p: &EtlPipeline, function_arns: &[String], facts: Facts<'_>) -> PolicyDocument {
    let region = facts.lake.spec.region.as_str();
    let mut functions: Vec<String> = function_arns.to_vec();
    functions.sort();
    functions.dedup();
    let mut statements = vec![allow("InvokeListedFunctions", &["lambda:InvokeFunction"], &functions)];
    if let Some(dlq) = p.spec.on_failure.as_ref().and_then(|f| f.dead_letter_queue_arn.as_ref()) {
        let action = if dlq.contains(":sns:") { "sns:Publish" } else { "sqs:SendMessage" };
        statements.push(allow("SendFailedExecutions", &[action], std::slice::from_ref(dlq)));
    }
    if p.spec.on_failure.as_ref().is_some_and(|f| f.alert) {
        // The SecurityBaseline's topic, and its key only through SNS. The key is named by
        // its alias (its id is the baseline's), so only that key matches.
        let part = partition(region);
        statements.push(allow("PublishAlerts", &["sns:Publish"], &[alert_topic_arn(region, facts.account_id)]));
        statements.push(
            allow(
                "UseAlertKeyThroughSns",
                &["kms:GenerateDataKey", "kms:Decrypt"],
                &[format!("arn:{part}:kms:{region}:{}:key/*", facts.account_id)],
            )
            .when("StringEquals", "kms:ViaService", &[&format!("sns.{region}.amazonaws.com")])
            .when("ForAnyValue:StringEquals", "kms:ResourceAliases", &[ALERTS_KEY_ALIAS]),
        );
    }
    statements.push(
        allow("UseLakeKeyThroughStepFunctions", &["kms:Decrypt", "kms:GenerateDataKey"], &[facts.key_arn.to_string()])
            .when("StringEquals", "kms:ViaService", &[&format!("states.{region}.amazonaws.com")]),
    );
    // The log delivery APIs Step Functions calls with this role accept no narrower resource.
    statements.push(allow(
        "DeliverExecutionLogs",
        &[
            "logs:CreateLogDelivery",
            "logs:GetLogDelivery",
            "logs:UpdateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:DescribeResourcePolicies",
            "logs:DescribeLogGroups",
        ],
        &["*".to_string()],
    ));
    if p.spec.tracing {
        statements.push(allow(
            "WriteTraces",
            &["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"],
            &["*".to_string()],
        ));
    }
    PolicyDocument::new(statements)
}

/// The rule's role: start executions of this one state machine, nothing else.
pub fn events_policy(machine_arn: &str) -> PolicyDocument {
    PolicyDocument::new(vec![allow("StartThisStateMachine", &["states:StartExecution"], &[machine_arn.to_string()])])
}

fn role_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:{}:iam::{account}:role{ROLE_PATH}{name}", partition(region))
}

// ----- everything -----

/// The trigger: the rule, its target and role, and the bucket whose EventBridge
/// notifications must be on (objectCreated only).
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredTrigger {
    pub rule: Rule,
    pub target: RuleTarget,
    pub role: OwnedRole,
    pub bucket: Option<String>,
}

/// Everything one EtlPipeline converges.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    pub names: Names,
    pub role: OwnedRole,
    pub role_arn: String,
    /// The log group of the executions, encrypted with the lake key.
    pub log_group: OwnedLogGroup,
    pub machine_arn: String,
    pub definition: Definition,
    pub settings: StateMachineSettings,
    pub tags: BTreeMap<String, String>,
    pub trigger: Option<DesiredTrigger>,
    pub api: Option<super::ingest::DesiredApi>,
}

/// The desired state of `p` given `facts`.
pub fn desired(p: &EtlPipeline, facts: Facts<'_>) -> Desired {
    let lake = facts.lake;
    let region = lake.spec.region.as_str();
    let account = facts.account_id;
    let part = partition(region);
    let names = names(p);
    let ns = p.namespace().unwrap_or_default();
    let mut tags = lake.spec.tags.clone();
    tags.extend(crate::reconcile::owner_tags(p));
    let function_arns: Vec<String> =
        p.spec.steps.iter().map(|s| function_arn(region, account, &ns, &s.etl_function_ref.name)).collect();
    let role = OwnedRole {
        name: names.role.clone(),
        path: ROLE_PATH,
        description: "Runs one EtlPipeline's state machine (generated by lakeops)",
        trust: trust("states.amazonaws.com", account),
        policy_name: ROLE_POLICY_NAME,
        policy: machine_policy(p, &function_arns, facts),
        boundary: facts.permissions_boundary.map(str::to_string),
        tags: tags.clone(),
    };
    let role_arn = role_arn(region, account, &names.role);
    let machine_arn = format!("arn:{part}:states:{region}:{account}:stateMachine:{}", names.state_machine);
    // Step Functions names the group as `...:log-group:NAME:*`.
    let log_group_arn = format!("arn:{part}:logs:{region}:{account}:log-group:{}:*", names.log_group);
    let log_group = OwnedLogGroup {
        name: names.log_group.clone(),
        retention_days: p.spec.logging.retention_days,
        kms_key_arn: facts.key_arn.to_string(),
        tags: tags.clone(),
    };
    let alert = p.spec.on_failure.as_ref().is_some_and(|f| f.alert).then(|| alert_topic_arn(region, account));
    let definition = definition(p, &function_arns, alert.as_deref());
    let level = p.spec.logging.level;
    let settings = StateMachineSettings {
        definition: definition.to_json(),
        role_arn: role_arn.clone(),
        log_level: level.as_str().to_string(),
        log_group_arn: (level != lakeops_crds::etlpipeline::LogLevel::Off).then_some(log_group_arn),
        tracing: p.spec.tracing,
        kms_key_id: Some(facts.key_arn.to_string()),
    };
    let trigger = trigger(p, facts, &names, &machine_arn, &tags);
    let api = ingest_api(p, facts, &names, &machine_arn, &tags);
    Desired { names, role, role_arn, log_group, machine_arn, definition, settings, tags, trigger, api }
}

/// The role API Gateway assumes: start executions of this one state machine, nothing else.
pub fn api_policy(machine_arn: &str) -> PolicyDocument {
    PolicyDocument::new(vec![allow("StartThisStateMachine", &["states:StartExecution"], &[machine_arn.to_string()])])
}

fn ingest_api(
    p: &EtlPipeline,
    facts: Facts<'_>,
    names: &Names,
    machine_arn: &str,
    tags: &BTreeMap<String, String>,
) -> Option<super::ingest::DesiredApi> {
    use super::ingest::*;
    use crate::aws::apigateway::{
        DomainInfo, IntegrationResponse, IntegrationSettings, Model, RestApiSettings, Throttle, UsagePlanInfo,
    };
    use lakeops_crds::etlpipeline::Authorization;
    let spec = &p.spec.ingest.as_ref()?.api;
    let region = facts.lake.spec.region.as_str();
    let account = facts.account_id;
    let part = partition(region);
    let anonymous = spec.authorization == Authorization::None;
    let role_arn = role_arn(region, account, &names.api_role);
    let throttle = Throttle { rate_limit: f64::from(spec.throttle.rate_limit), burst_limit: spec.throttle.burst_limit };
    let access_log_arn = format!("arn:{part}:logs:{region}:{account}:log-group:{}", names.access_log_group);
    let log_group = OwnedLogGroup {
        name: names.access_log_group.clone(),
        retention_days: p.spec.logging.retention_days,
        kms_key_arn: facts.key_arn.to_string(),
        tags: tags.clone(),
    };
    Some(DesiredApi {
        settings: RestApiSettings {
            name: names.api.clone(),
            description: format!(
                "Ingest API of EtlPipeline {}/{} (generated by lakeops)",
                p.namespace().unwrap_or_default(),
                p.name_any()
            ),
            policy: resource_policy(&format!("arn:{part}:iam::{account}:root"), anonymous).to_json(),
            disable_execute_api_endpoint: spec.domain.is_some(),
        },
        policy: resource_policy(&format!("arn:{part}:iam::{account}:root"), anonymous),
        tags: tags.clone(),
        role: OwnedRole {
            name: names.api_role.clone(),
            path: ROLE_PATH,
            description: "Lets API Gateway start one EtlPipeline (generated by lakeops)",
            trust: trust("apigateway.amazonaws.com", account),
            policy_name: ROLE_POLICY_NAME,
            policy: api_policy(machine_arn),
            boundary: facts.permissions_boundary.map(str::to_string),
            tags: tags.clone(),
        },
        authorization: if anonymous { "NONE" } else { "AWS_IAM" },
        model: Model {
            name: MODEL_NAME.into(),
            content_type: JSON.into(),
            schema: serde_json::json!({
                "$schema": "http://json-schema.org/draft-04/schema#",
                "title": MODEL_NAME,
                "type": "object",
                "minProperties": 1
            })
            .to_string(),
        },
        integration: IntegrationSettings {
            uri: format!("arn:{part}:apigateway:{region}:states:action/StartExecution"),
            credentials: role_arn.clone(),
            request_templates: BTreeMap::from([(JSON.to_string(), request_template(machine_arn, spec.max_body_bytes))]),
            passthrough_behavior: "NEVER".into(),
        },
        role_arn,
        method_responses: vec!["200".into(), REJECTED_STATUS.into()],
        integration_responses: vec![
            IntegrationResponse { status_code: "200".into(), selection_pattern: None },
            IntegrationResponse {
                status_code: REJECTED_STATUS.into(),
                selection_pattern: Some(REJECTED_PATTERN.into()),
            },
        ],
        stage: DesiredStage {
            tracing: p.spec.tracing,
            throttle,
            access_log: (access_log_arn, ACCESS_LOG_FORMAT.into()),
            tags: tags.clone(),
        },
        log_group,
        usage_plan: UsagePlanInfo {
            name: names.api.clone(),
            throttle: Some(throttle),
            tags: tags.clone(),
            ..UsagePlanInfo::default()
        },
        domain: spec.domain.as_ref().map(|d| DomainInfo {
            name: d.name.clone(),
            certificate_arn: d.certificate_arn.clone(),
            security_policy: SECURITY_POLICY.into(),
            endpoint_types: vec!["REGIONAL".into()],
            tags: tags.clone(),
        }),
    })
}

fn trigger(
    p: &EtlPipeline,
    facts: Facts<'_>,
    names: &Names,
    machine_arn: &str,
    tags: &BTreeMap<String, String>,
) -> Option<DesiredTrigger> {
    let lake = facts.lake;
    let region = lake.spec.region.as_str();
    let description = format!("Starts EtlPipeline {}/{}", p.namespace().unwrap_or_default(), p.name_any());
    let (rule, bucket) = match (&p.spec.trigger.object_created, &p.spec.trigger.schedule) {
        (Some(_), _) => {
            let (zone, prefix, suffix) = p.object_filter()?;
            let bucket = lake.zone_bucket(zone);
            let pattern = object_created_pattern(&bucket, prefix, suffix);
            (
                Rule {
                    name: names.rule.clone(),
                    event_pattern: Some(pattern),
                    schedule_expression: None,
                    description,
                    enabled: true,
                },
                Some(bucket),
            )
        }
        (None, Some(expr)) => (
            Rule {
                name: names.rule.clone(),
                event_pattern: None,
                schedule_expression: Some(expr.clone()),
                description,
                enabled: true,
            },
            None,
        ),
        (None, None) => return None,
    };
    let events_role_arn = role_arn(region, facts.account_id, &names.events_role);
    Some(DesiredTrigger {
        rule,
        target: RuleTarget { id: RULE_TARGET_ID.into(), arn: machine_arn.to_string(), role_arn: Some(events_role_arn) },
        role: OwnedRole {
            name: names.events_role.clone(),
            path: ROLE_PATH,
            description: "Lets EventBridge start one EtlPipeline (generated by lakeops)",
            trust: trust("events.amazonaws.com", facts.account_id),
            policy_name: ROLE_POLICY_NAME,
            policy: events_policy(machine_arn),
            boundary: facts.permissions_boundary.map(str::to_string),
            tags: tags.clone(),
        },
        bucket,
    })
}

/// The EventBridge pattern of S3's "Object Created" events for `bucket` under `prefix`
/// ending in `suffix`. Both together need EventBridge's wildcard filter, in which `*`
/// and `\` of the suffix are escaped (the prefix cannot hold them: validation refuses).
pub fn object_created_pattern(bucket: &str, prefix: &str, suffix: &str) -> String {
    let key = match (prefix.is_empty(), suffix.is_empty()) {
        (true, true) => None,
        (false, true) => Some(serde_json::json!([{"prefix": prefix}])),
        (true, false) => Some(serde_json::json!([{"suffix": suffix}])),
        (false, false) => {
            let escaped = suffix.replace('\\', "\\\\").replace('*', "\\*");
            Some(serde_json::json!([{"wildcard": format!("{prefix}*{escaped}")}]))
        }
    };
    let mut detail = serde_json::json!({"bucket": {"name": [bucket]}});
    if let Some(key) = key {
        detail["object"] = serde_json::json!({"key": key});
    }
    serde_json::json!({"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail}).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const LAKE: &str = "
apiVersion: lakeops.dev/v1alpha1
kind: DataLake
metadata: {name: sales, namespace: team-a, uid: lake-uid}
spec: {region: eu-west-1, zones: [{name: raw}, {name: curated}]}
";
    pub(crate) const PIPELINE: &str = "
apiVersion: lakeops.dev/v1alpha1
kind: EtlPipeline
metadata: {name: orders, namespace: team-a, uid: p-uid}
spec:
  dataLakeRef: {name: sales}
  trigger: {objectCreated: {zone: raw, prefix: incoming/orders/, suffix: .json}}
  steps:
    - {name: validate, etlFunctionRef: {name: orders-validate}, retry: {maxAttempts: 3, intervalSeconds: 2, backoffRate: 2.0}, timeoutSeconds: 300}
    - {name: tokenise, etlFunctionRef: {name: orders-tokenise}}
  onFailure: {deadLetterQueueArn: 'arn:aws:sqs:eu-west-1:123456789012:orders-dlq'}
";
    const KEY: &str = "arn:aws:kms:eu-west-1:123456789012:key/k1";

    fn fixtures() -> (EtlPipeline, DataLake) {
        (serde_saphyr::from_str(PIPELINE).expect("pipeline"), serde_saphyr::from_str(LAKE).expect("lake"))
    }

    fn facts(lake: &DataLake) -> Facts<'_> {
        Facts { lake, account_id: "123456789012", key_arn: KEY, permissions_boundary: None }
    }

    #[test]
    fn the_definition_runs_the_steps_in_order_with_retries_and_a_failure_path() {
        let (p, lake) = fixtures();
        let d = desired(&p, facts(&lake));
        d.definition.validate().expect("valid");
        let json: serde_json::Value = serde_json::from_str(&d.settings.definition).expect("json");
        assert_eq!(json["StartAt"], "validate");
        let validate = &json["States"]["validate"];
        assert_eq!(validate["Type"], "Task");
        assert_eq!(
            validate["Resource"],
            "arn:aws:lambda:eu-west-1:123456789012:function:lakeops-team-a-orders-validate"
        );
        assert_eq!(validate["Next"], "tokenise");
        assert_eq!(validate["TimeoutSeconds"], 300);
        assert_eq!(
            validate["Retry"],
            serde_json::json!([{"ErrorEquals": LAMBDA_TRANSIENT_ERRORS, "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2.0}])
        );
        assert_eq!(
            validate["Catch"],
            serde_json::json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": DEAD_LETTER_STATE}])
        );
        assert_eq!(json["States"]["tokenise"]["End"], true);
        let dlq = &json["States"][DEAD_LETTER_STATE];
        assert_eq!(dlq["Resource"], "arn:aws:states:::sqs:sendMessage");
        assert_eq!(dlq["Parameters"]["QueueUrl"], "https://sqs.eu-west-1.amazonaws.com/123456789012/orders-dlq");
        assert_eq!(dlq["Next"], FAILED_STATE);
        assert_eq!(json["States"][FAILED_STATE]["Type"], "Fail");
        assert_eq!(json["States"].as_object().map(|m| m.len()), Some(4));
    }

    #[test]
    fn the_machine_is_encrypted_logged_without_data_and_traced() {
        let (p, lake) = fixtures();
        let d = desired(&p, facts(&lake));
        assert_eq!(d.settings.kms_key_id.as_deref(), Some(KEY));
        assert_eq!(d.settings.log_level, "ERROR");
        assert_eq!(
            d.settings.log_group_arn.as_deref(),
            Some("arn:aws:logs:eu-west-1:123456789012:log-group:/aws/vendedlogs/states/lakeops-team-a-orders:*")
        );
        assert!(d.settings.tracing);
        assert_eq!(d.log_group.kms_key_arn, KEY);
        assert_eq!(d.log_group.retention_days, 365);
        assert_eq!(d.machine_arn, "arn:aws:states:eu-west-1:123456789012:stateMachine:lakeops-team-a-orders");
    }

    #[test]
    fn the_machine_role_invokes_only_the_listed_functions_and_uses_the_key_only_through_step_functions() {
        let (p, lake) = fixtures();
        let d = desired(&p, facts(&lake));
        assert_eq!(
            d.role.trust.to_json(),
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"ServiceAssumesTheRole","Effect":"Allow","Principal":{"Service":"states.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"123456789012"}}}]}"#
        );
        let json = d.role.policy.to_json();
        assert_eq!(
            json,
            concat!(
                r#"{"Version":"2012-10-17","Statement":["#,
                r#"{"Sid":"InvokeListedFunctions","Effect":"Allow","Action":"lambda:InvokeFunction","Resource":["arn:aws:lambda:eu-west-1:123456789012:function:lakeops-team-a-orders-tokenise","arn:aws:lambda:eu-west-1:123456789012:function:lakeops-team-a-orders-validate"]},"#,
                r#"{"Sid":"SendFailedExecutions","Effect":"Allow","Action":"sqs:SendMessage","Resource":"arn:aws:sqs:eu-west-1:123456789012:orders-dlq"},"#,
                r#"{"Sid":"UseLakeKeyThroughStepFunctions","Effect":"Allow","Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"arn:aws:kms:eu-west-1:123456789012:key/k1","Condition":{"StringEquals":{"kms:ViaService":"states.eu-west-1.amazonaws.com"}}},"#,
                r#"{"Sid":"DeliverExecutionLogs","Effect":"Allow","Action":["logs:CreateLogDelivery","logs:GetLogDelivery","logs:UpdateLogDelivery","logs:DeleteLogDelivery","logs:ListLogDeliveries","logs:PutResourcePolicy","logs:DescribeResourcePolicies","logs:DescribeLogGroups"],"Resource":"*"},"#,
                r#"{"Sid":"WriteTraces","Effect":"Allow","Action":["xray:PutTraceSegments","xray:PutTelemetryRecords","xray:GetSamplingRules","xray:GetSamplingTargets"],"Resource":"*"}"#,
                "]}"
            )
        );
    }

    #[test]
    fn the_object_created_rule_matches_bucket_prefix_and_suffix_and_its_role_may_only_start_this_machine() {
        let (p, lake) = fixtures();
        let d = desired(&p, facts(&lake));
        let t = d.trigger.expect("a trigger");
        assert_eq!(t.bucket.as_deref(), Some("team-a-sales-raw"));
        let pattern: serde_json::Value =
            serde_json::from_str(t.rule.event_pattern.as_deref().expect("pattern")).expect("json");
        assert_eq!(
            pattern,
            serde_json::json!({"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {"bucket": {"name": ["team-a-sales-raw"]}, "object": {"key": [{"wildcard": "incoming/orders/*.json"}]}}})
        );
        assert_eq!(t.target.arn, d.machine_arn);
        assert_eq!(
            t.target.role_arn.as_deref(),
            Some("arn:aws:iam::123456789012:role/lakeops/lakeops-team-a-orders-events")
        );
        assert_eq!(
            t.role.policy.to_json(),
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"StartThisStateMachine","Effect":"Allow","Action":"states:StartExecution","Resource":"arn:aws:states:eu-west-1:123456789012:stateMachine:lakeops-team-a-orders"}]}"#
        );
        assert!(t.role.trust.to_json().contains("events.amazonaws.com"));
    }

    #[test]
    fn a_schedule_is_a_rule_without_a_bucket_and_no_trigger_means_no_rule() {
        let (mut p, lake) = fixtures();
        p.spec.trigger.object_created = None;
        p.spec.trigger.schedule = Some("rate(1 hour)".into());
        let t = desired(&p, facts(&lake)).trigger.expect("a trigger");
        assert_eq!((t.rule.schedule_expression.as_deref(), t.bucket), (Some("rate(1 hour)"), None));
        p.spec.trigger.schedule = None;
        assert_eq!(desired(&p, facts(&lake)).trigger, None);
    }

    #[test]
    fn local_validation_catches_dangling_and_unreachable_states() {
        let (p, lake) = fixtures();
        let mut d = desired(&p, facts(&lake)).definition;
        if let Some(State::Task(t)) = d.states.get_mut("validate") {
            t.next = Some("missing".into());
        }
        assert!(d.validate().expect_err("dangling").contains("missing"));
        let mut d = desired(&p, facts(&lake)).definition;
        d.start_at = "tokenise".into();
        assert!(d.validate().expect_err("unreachable").contains("validate"));
    }

    #[test]
    fn an_alert_publishes_to_the_baseline_topic_after_the_dead_letter_queue_without_data() {
        let (mut p, lake) = fixtures();
        p.spec.on_failure.as_mut().expect("on failure").alert = true;
        let d = desired(&p, facts(&lake));
        d.definition.validate().expect("valid");
        let json: serde_json::Value = serde_json::from_str(&d.settings.definition).expect("json");
        let states = &json["States"];
        assert_eq!(states[DEAD_LETTER_STATE]["Next"], ALERT_STATE);
        let alert = &states[ALERT_STATE];
        assert_eq!(alert["Resource"], "arn:aws:states:::sns:publish");
        assert_eq!(alert["Parameters"]["TopicArn"], "arn:aws:sns:eu-west-1:123456789012:lakeops-alerts");
        let message = alert["Parameters"]["Message.$"].as_str().expect("message");
        assert!(
            message.contains("$.error.Error") && !message.contains("Cause") && !message.contains("$.input"),
            "{message}"
        );
        assert_eq!(
            (alert["Next"].as_str(), alert["Catch"][0]["Next"].as_str()),
            (Some(FAILED_STATE), Some(FAILED_STATE))
        );

        let policy = serde_json::to_value(&d.role.policy).expect("policy");
        let statement = |sid: &str| {
            policy["Statement"].as_array().and_then(|a| a.iter().find(|s| s["Sid"] == sid).cloned()).expect(sid)
        };
        assert_eq!(statement("PublishAlerts")["Action"], "sns:Publish");
        assert_eq!(statement("PublishAlerts")["Resource"], "arn:aws:sns:eu-west-1:123456789012:lakeops-alerts");
        let key = statement("UseAlertKeyThroughSns");
        assert_eq!(key["Condition"]["StringEquals"]["kms:ViaService"], "sns.eu-west-1.amazonaws.com");
        assert_eq!(key["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"], ALERTS_KEY_ALIAS);

        // Without alert: no such state, no such permission.
        let (p, _) = fixtures();
        let d = desired(&p, facts(&lake));
        assert!(!d.settings.definition.contains(ALERT_STATE));
        assert!(!d.role.policy.to_json().contains("sns:Publish"));
    }
}
