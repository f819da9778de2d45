//! The ingest API of an EtlPipeline, desired state and changes: pure, no I/O.
//!
//! A REGIONAL REST API whose POST on `/` starts an execution through an AWS integration with
//! Step Functions StartExecution, under a generated role allowed only that on this state
//! machine. Callers sign with SigV4 (`AWS_IAM`) unless the spec says `NONE`. The body must be
//! a JSON object (request validator + model) of at most `maxBodyBytes` characters: API
//! Gateway has no body-size setting below its own 10 MB, so the request mapping template
//! measures the body and, when it is larger, sends Step Functions a request without a state
//! machine, which it refuses; that refusal is answered 400 and no execution starts. The stage
//! throttles every method (rate and burst), traces with X-Ray and writes JSON access logs
//! (no body, no headers) to a log group encrypted with the lake key; a usage plan carries the
//! same throttle. A resource policy denies every request not sent over TLS. With a custom
//! domain (TLS_1_2) the default execute-api endpoint is disabled.
use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use crate::aws::apigateway::{
    ALL_METHODS, BasePathMapping, DomainInfo, IntegrationResponse, IntegrationSettings, MethodInfo, MethodSettings,
    Model, Patch, ROOT_BASE_PATH, RestApiSettings, StageInfo, Throttle, UsagePlanInfo, Validator,
};
use crate::engine::Action;
use crate::engine::log_group::OwnedLogGroup;
use crate::engine::role::OwnedRole;
use crate::policy::{Effect, PolicyDocument, Principal, Statement};

/// The one stage.
pub const STAGE: &str = "ingest";
/// The one method, on the API's root resource.
pub const HTTP_METHOD: &str = "POST";
/// The request validator (body only).
pub const VALIDATOR_NAME: &str = "lakeops-body";
/// The model the body is validated against.
pub const MODEL_NAME: &str = "IngestRecord";
/// The only content type accepted (others are answered 415).
pub const JSON: &str = "application/json";
/// TLS 1.2 minimum on the custom domain.
pub const SECURITY_POLICY: &str = "TLS_1_2";
/// Creation-token purposes of the two non-idempotent creates.
pub const API_TOKEN: &str = "rest-api";
pub const PLAN_TOKEN: &str = "usage-plan";
/// What a body that is too large, not JSON or refused by Step Functions is answered.
pub const REJECTED_STATUS: &str = "400";
/// The stage variable naming the method configuration the stage's deployment carries (a
/// digest): the stage is deployed again exactly when the method changes.
pub const DEPLOYED_VARIABLE: &str = "lakeopsDeployed";
/// Step Functions' 4xx answers (a refused request) map to [`REJECTED_STATUS`].
pub const REJECTED_PATTERN: &str = r"4\d{2}";

/// The access log line: who called, when, what came back; never the body or headers.
pub const ACCESS_LOG_FORMAT: &str = concat!(
    r#"{"requestId":"$context.requestId","sourceIp":"$context.identity.sourceIp","#,
    r#""caller":"$context.identity.caller","userArn":"$context.identity.userArn","#,
    r#""requestTime":"$context.requestTime","httpMethod":"$context.httpMethod","#,
    r#""resourcePath":"$context.resourcePath","protocol":"$context.protocol","#,
    r#""status":"$context.status","responseLength":"$context.responseLength","#,
    r#""integrationStatus":"$context.integration.status","errorMessage":"$context.error.message"}"#
);

/// The stage as lakeops wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredStage {
    pub tracing: bool,
    pub throttle: Throttle,
    /// Destination log group ARN (without `:*`) and format.
    pub access_log: (String, String),
    pub tags: BTreeMap<String, String>,
}

/// Everything the ingest API converges.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredApi {
    pub settings: RestApiSettings,
    pub policy: PolicyDocument,
    pub tags: BTreeMap<String, String>,
    pub role: OwnedRole,
    pub role_arn: String,
    /// `AWS_IAM` or `NONE`.
    pub authorization: &'static str,
    pub model: Model,
    pub integration: IntegrationSettings,
    pub method_responses: Vec<String>,
    pub integration_responses: Vec<IntegrationResponse>,
    pub stage: DesiredStage,
    pub log_group: OwnedLogGroup,
    /// Name, throttle and tags (the API stage is added once the API exists).
    pub usage_plan: UsagePlanInfo,
    pub domain: Option<DomainInfo>,
}

impl DesiredApi {
    /// The method as PutMethod sends it, with the validator's id.
    pub fn method(&self, validator_id: &str) -> MethodSettings {
        MethodSettings {
            authorization: self.authorization.to_string(),
            request_validator_id: Some(validator_id.to_string()),
            request_models: BTreeMap::from([(JSON.to_string(), MODEL_NAME.to_string())]),
        }
    }

    /// What a deployment of the method carries, as a digest: the stage is deployed again
    /// exactly when it changes.
    pub fn deployment_digest(&self, validator_id: &str) -> String {
        let mut h = Sha256::new();
        for part in [self.authorization, validator_id, &self.model.schema, &self.integration.uri] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        h.update(self.integration.credentials.as_bytes());
        for (k, v) in &self.integration.request_templates {
            h.update(k.as_bytes());
            h.update(v.as_bytes());
        }
        for r in &self.integration_responses {
            h.update(r.status_code.as_bytes());
            h.update(r.selection_pattern.as_deref().unwrap_or_default().as_bytes());
        }
        hex::encode(&h.finalize()[..12])
    }
}

/// The request mapping template: StartExecution of `machine_arn` with the body as input,
/// or, for a body over `max` characters, a request Step Functions refuses (no execution).
pub fn request_template(machine_arn: &str, max: i64) -> String {
    // `escapeJavaScript` escapes `'` as `\'`, which JSON does not allow: undone after.
    format!(
        concat!(
            "#set($body = $input.body)\n",
            "#if($body.length() > {max})\n",
            "{{\"rejected\": \"the body is larger than {max} characters\"}}\n",
            "#else\n",
            "{{\"stateMachineArn\": \"{arn}\", \"input\": \"$util.escapeJavaScript($body).replaceAll(\"\\\\'\", \"'\")\"}}\n",
            "#end\n"
        ),
        max = max,
        arn = machine_arn
    )
}

/// The resource policy: only this account's signed callers (anyone with `NONE`) may invoke
/// the one method, and nobody without TLS. `execute-api:/` is AWS's shorthand for this API's
/// ARN; AWS answers with the full ARN ([`policy_matches`] compares both forms).
pub fn resource_policy(account_root: &str, anonymous: bool) -> PolicyDocument {
    let caller = if anonymous { Principal::anyone() } else { Principal::aws(&[account_root.to_string()]) };
    PolicyDocument::new(vec![
        Statement::new(
            "InvokeIngest",
            Effect::Allow,
            caller,
            &["execute-api:Invoke"],
            &[format!("execute-api:/{STAGE}/{HTTP_METHOD}/")],
        ),
        Statement::new(
            "DenyInsecureTransport",
            Effect::Deny,
            Principal::anyone(),
            &["execute-api:Invoke"],
            &["execute-api:/*".to_string()],
        )
        .when("Bool", "aws:SecureTransport", &["false"]),
    ])
}

/// True when the policy AWS reports for API `api_arn` means `desired`.
pub fn policy_matches(desired: &PolicyDocument, observed: Option<&str>, api_arn: &str) -> bool {
    // AWS escapes the document once more and expands the shorthand.
    let Some(text) = observed else { return false };
    let short = text.replace(&format!("{api_arn}/"), "execute-api:/");
    desired.matches_json(&short) || desired.matches_json(&short.replace("\\\"", "\""))
}

/// One API Gateway write.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiChange {
    CreateRestApi {
        settings: RestApiSettings,
        tags: BTreeMap<String, String>,
    },
    UpdateRestApi {
        id: String,
        patches: Vec<Patch>,
        what: Vec<&'static str>,
        weakens: bool,
    },
    CreateModel {
        api: String,
        model: Model,
    },
    CreateValidator {
        api: String,
        validator: Validator,
    },
    /// The method differs in a way PutMethod cannot change in place: removed, then put again.
    DeleteMethod {
        api: String,
        resource: String,
    },
    PutMethod {
        api: String,
        resource: String,
        method: MethodSettings,
        weakens: bool,
    },
    PutIntegration {
        api: String,
        resource: String,
        integration: IntegrationSettings,
    },
    PutMethodResponse {
        api: String,
        resource: String,
        status: String,
    },
    PutIntegrationResponse {
        api: String,
        resource: String,
        response: IntegrationResponse,
    },
    CreateDeployment {
        api: String,
    },
    CreateStage {
        api: String,
        deployment: String,
        tracing: bool,
        variables: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    },
    /// Every stage difference in one UpdateStage.
    UpdateStage {
        api: String,
        patches: Vec<Patch>,
        what: Vec<&'static str>,
        weakens: bool,
    },
    CreateUsagePlan {
        plan: UsagePlanInfo,
    },
    UpdateUsagePlan {
        id: String,
        patches: Vec<Patch>,
        weakens: bool,
    },
    CreateDomain {
        domain: DomainInfo,
    },
    UpdateDomain {
        name: String,
        patches: Vec<Patch>,
    },
    CreateMapping {
        domain: String,
        mapping: BasePathMapping,
    },
    DeleteDomain {
        name: String,
    },
    DeleteUsagePlan {
        id: String,
    },
    DeleteRestApi {
        id: String,
    },
}

impl ApiChange {
    pub fn setting(&self) -> &'static str {
        match self {
            ApiChange::CreateRestApi { .. } | ApiChange::DeleteRestApi { .. } => "REST API",
            ApiChange::UpdateRestApi { what, .. } => what.first().copied().unwrap_or("REST API"),
            ApiChange::CreateModel { .. } => "request model",
            ApiChange::CreateValidator { .. } => "request validator",
            ApiChange::DeleteMethod { .. } | ApiChange::PutMethod { .. } => "ingest method",
            ApiChange::PutIntegration { .. } => "Step Functions integration",
            ApiChange::PutMethodResponse { .. } | ApiChange::PutIntegrationResponse { .. } => "responses",
            ApiChange::CreateDeployment { .. } => "deployment",
            ApiChange::CreateStage { .. } => "stage",
            ApiChange::UpdateStage { what, .. } => what.first().copied().unwrap_or("stage"),
            ApiChange::CreateUsagePlan { .. } | ApiChange::DeleteUsagePlan { .. } => "usage plan",
            ApiChange::UpdateUsagePlan { .. } => "usage plan throttling",
            ApiChange::CreateDomain { .. } | ApiChange::DeleteDomain { .. } => "custom domain",
            ApiChange::UpdateDomain { .. } => "TLS security policy",
            ApiChange::CreateMapping { .. } => "base path mapping",
        }
    }

    pub fn resource(&self) -> &str {
        match self {
            ApiChange::CreateRestApi { settings, .. } => &settings.name,
            ApiChange::UpdateRestApi { id, .. }
            | ApiChange::UpdateUsagePlan { id, .. }
            | ApiChange::DeleteUsagePlan { id }
            | ApiChange::DeleteRestApi { id } => id,
            ApiChange::CreateModel { api, .. }
            | ApiChange::CreateValidator { api, .. }
            | ApiChange::DeleteMethod { api, .. }
            | ApiChange::PutMethod { api, .. }
            | ApiChange::PutIntegration { api, .. }
            | ApiChange::PutMethodResponse { api, .. }
            | ApiChange::PutIntegrationResponse { api, .. }
            | ApiChange::CreateDeployment { api }
            | ApiChange::CreateStage { api, .. }
            | ApiChange::UpdateStage { api, .. } => api,
            ApiChange::CreateUsagePlan { plan } => &plan.name,
            ApiChange::CreateDomain { domain } => &domain.name,
            ApiChange::UpdateDomain { name, .. } | ApiChange::DeleteDomain { name } => name,
            ApiChange::CreateMapping { domain, .. } => domain,
        }
    }

    pub fn weakens(&self) -> bool {
        match self {
            ApiChange::UpdateRestApi { weakens, .. }
            | ApiChange::PutMethod { weakens, .. }
            | ApiChange::UpdateStage { weakens, .. }
            | ApiChange::UpdateUsagePlan { weakens, .. } => *weakens,
            _ => false,
        }
    }

    pub fn action(&self) -> Option<Action> {
        match self {
            ApiChange::CreateRestApi { .. }
            | ApiChange::CreateModel { .. }
            | ApiChange::CreateValidator { .. }
            | ApiChange::CreateDeployment { .. }
            | ApiChange::CreateStage { .. }
            | ApiChange::CreateUsagePlan { .. }
            | ApiChange::CreateDomain { .. }
            | ApiChange::CreateMapping { .. } => Some(Action::Create),
            ApiChange::DeleteMethod { .. }
            | ApiChange::DeleteDomain { .. }
            | ApiChange::DeleteUsagePlan { .. }
            | ApiChange::DeleteRestApi { .. } => Some(Action::Delete),
            ApiChange::UpdateRestApi { .. }
            | ApiChange::PutMethod { .. }
            | ApiChange::PutIntegration { .. }
            | ApiChange::PutMethodResponse { .. }
            | ApiChange::PutIntegrationResponse { .. }
            | ApiChange::UpdateStage { .. }
            | ApiChange::UpdateUsagePlan { .. }
            | ApiChange::UpdateDomain { .. } => None,
        }
    }
}

fn patch_list(patches: &[Patch]) -> String {
    patches
        .iter()
        .map(|p| format!("{} = {}", p.path, p.value.as_deref().unwrap_or("(removed)")))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for ApiChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiChange::CreateRestApi { settings, .. } => write!(
                f,
                "create REGIONAL REST API {} (resource policy denying requests without TLS{})",
                settings.name,
                if settings.disable_execute_api_endpoint { ", default endpoint disabled" } else { "" }
            ),
            ApiChange::UpdateRestApi { id, what, .. } => write!(f, "REST API {id}: update {}", what.join(", ")),
            ApiChange::CreateModel { api, model } => write!(f, "REST API {api}: create model {}", model.name),
            ApiChange::CreateValidator { api, validator } => {
                write!(f, "REST API {api}: create request validator {} (body)", validator.name)
            }
            ApiChange::DeleteMethod { api, .. } => write!(f, "REST API {api}: remove {HTTP_METHOD} / to put it again"),
            ApiChange::PutMethod { api, method, .. } => {
                write!(f, "REST API {api}: {HTTP_METHOD} / with authorization {}", method.authorization)
            }
            ApiChange::PutIntegration { api, .. } => {
                write!(f, "REST API {api}: {HTTP_METHOD} / starts an execution (Step Functions StartExecution)")
            }
            ApiChange::PutMethodResponse { api, status, .. } => write!(f, "REST API {api}: method response {status}"),
            ApiChange::PutIntegrationResponse { api, response, .. } => write!(
                f,
                "REST API {api}: integration response {} for {}",
                response.status_code,
                response.selection_pattern.as_deref().unwrap_or("success")
            ),
            ApiChange::CreateDeployment { api } => write!(f, "REST API {api}: deploy"),
            ApiChange::CreateStage { api, tracing, .. } => write!(
                f,
                "REST API {api}: create stage {STAGE} (X-Ray tracing {})",
                if *tracing { "on" } else { "off" }
            ),
            ApiChange::UpdateStage { api, patches, .. } => {
                write!(f, "REST API {api}: stage {STAGE}: {}", patch_list(patches))
            }
            ApiChange::CreateUsagePlan { plan } => {
                let t = plan.throttle.unwrap_or_default();
                write!(f, "create usage plan {} (rate {} burst {})", plan.name, t.rate_limit, t.burst_limit)
            }
            ApiChange::UpdateUsagePlan { id, patches, .. } => write!(f, "usage plan {id}: {}", patch_list(patches)),
            ApiChange::CreateDomain { domain } => {
                write!(f, "create custom domain {} (REGIONAL, {})", domain.name, domain.security_policy)
            }
            ApiChange::UpdateDomain { name, patches } => write!(f, "custom domain {name}: {}", patch_list(patches)),
            ApiChange::CreateMapping { domain, mapping } => {
                write!(f, "custom domain {domain}: map / to REST API {} stage {}", mapping.rest_api_id, mapping.stage)
            }
            ApiChange::DeleteDomain { name } => write!(f, "delete custom domain {name}"),
            ApiChange::DeleteUsagePlan { id } => write!(f, "delete usage plan {id}"),
            ApiChange::DeleteRestApi { id } => write!(f, "delete REST API {id}"),
        }
    }
}

/// Changes of the API's own settings: the resource policy and the default endpoint.
pub fn api_changes(
    d: &DesiredApi,
    id: &str,
    api_arn: &str,
    observed: &crate::aws::apigateway::RestApiInfo,
) -> Vec<ApiChange> {
    let mut patches = Vec::new();
    let mut what = Vec::new();
    if !policy_matches(&d.policy, observed.policy.as_deref(), api_arn) {
        patches.push(Patch::replace("/policy", d.policy.to_json()));
        what.push("resource policy");
    }
    let disable = d.settings.disable_execute_api_endpoint;
    if observed.disable_execute_api_endpoint != disable {
        patches.push(Patch::replace("/disableExecuteApiEndpoint", disable.to_string()));
        what.push("default endpoint");
    }
    if patches.is_empty() {
        return Vec::new();
    }
    // Turning the default endpoint back on opens a way in without TLS 1.2.
    let weakens = observed.disable_execute_api_endpoint && !disable;
    vec![ApiChange::UpdateRestApi { id: id.to_string(), patches, what, weakens }]
}

/// Changes of the POST method, its integration and responses. A method whose settings
/// differ is removed and put again (API Gateway's PutMethod does not replace one).
pub fn method_changes(
    d: &DesiredApi,
    api: &str,
    root: &str,
    validator_id: &str,
    observed: Option<&MethodInfo>,
) -> Vec<ApiChange> {
    let method = d.method(validator_id);
    let mut out = Vec::new();
    let fresh = match observed {
        None => true,
        Some(o) if o.settings != method => {
            out.push(ApiChange::DeleteMethod { api: api.into(), resource: root.into() });
            true
        }
        Some(_) => false,
    };
    let observed = observed.filter(|_| !fresh);
    if fresh {
        let weakens = method.authorization == "NONE" && observed.is_none_or(|o| o.settings.authorization != "NONE");
        out.push(ApiChange::PutMethod { api: api.into(), resource: root.into(), method, weakens });
    }
    let integration_same = observed.and_then(|o| o.integration.as_ref()) == Some(&d.integration);
    if !integration_same {
        out.push(ApiChange::PutIntegration {
            api: api.into(),
            resource: root.into(),
            integration: d.integration.clone(),
        });
    }
    for status in &d.method_responses {
        if !observed.is_some_and(|o| o.method_responses.contains(status)) {
            out.push(ApiChange::PutMethodResponse { api: api.into(), resource: root.into(), status: status.clone() });
        }
    }
    for r in &d.integration_responses {
        // A new integration starts without responses.
        if !integration_same || !observed.is_some_and(|o| o.integration_responses.contains(r)) {
            out.push(ApiChange::PutIntegrationResponse { api: api.into(), resource: root.into(), response: r.clone() });
        }
    }
    out
}

/// The stage's differences as patches, with what they are about and whether they weaken
/// it; `deployment` is a new deployment to point the stage at, with the digest it carries.
pub fn stage_patches(
    d: &DesiredStage,
    observed: &StageInfo,
    deployment: Option<(&str, &str)>,
) -> (Vec<Patch>, Vec<&'static str>, bool) {
    let mut patches = Vec::new();
    let mut what = Vec::new();
    let mut weakens = false;
    if observed.throttle != Some(d.throttle) {
        patches.push(Patch::replace(format!("/{ALL_METHODS}/throttling/rateLimit"), d.throttle.rate_limit.to_string()));
        patches
            .push(Patch::replace(format!("/{ALL_METHODS}/throttling/burstLimit"), d.throttle.burst_limit.to_string()));
        what.push("stage throttling");
        weakens |= observed
            .throttle
            .is_some_and(|t| t.rate_limit < d.throttle.rate_limit || t.burst_limit < d.throttle.burst_limit);
    }
    if observed.access_log.as_ref() != Some(&d.access_log) {
        patches.push(Patch::replace("/accessLogSettings/destinationArn", d.access_log.0.clone()));
        patches.push(Patch::replace("/accessLogSettings/format", d.access_log.1.clone()));
        what.push("access logging");
    }
    if observed.tracing != d.tracing {
        patches.push(Patch::replace("/tracingEnabled", d.tracing.to_string()));
        what.push("X-Ray tracing");
        weakens |= observed.tracing && !d.tracing;
    }
    if let Some((dep, digest)) = deployment {
        patches.push(Patch::replace("/deploymentId", dep));
        patches.push(Patch::replace(format!("/variables/{DEPLOYED_VARIABLE}"), digest));
        what.push("deployment");
    }
    (patches, what, weakens)
}

/// Changes of the usage plan: its throttle, and the stage bound to it.
pub fn plan_changes(d: &UsagePlanInfo, observed: &UsagePlanInfo, api: &str) -> Vec<ApiChange> {
    let mut patches = Vec::new();
    let want = d.throttle.unwrap_or_default();
    if observed.throttle != d.throttle {
        patches.push(Patch::replace("/throttle/rateLimit", want.rate_limit.to_string()));
        patches.push(Patch::replace("/throttle/burstLimit", want.burst_limit.to_string()));
    }
    if !observed.api_stages.iter().any(|(a, s)| a == api && s == STAGE) {
        patches.push(Patch::add("/apiStages", format!("{api}:{STAGE}")));
    }
    if patches.is_empty() {
        return Vec::new();
    }
    let weakens = observed.throttle.is_some_and(|t| t.rate_limit < want.rate_limit || t.burst_limit < want.burst_limit);
    vec![ApiChange::UpdateUsagePlan { id: observed.id.clone(), patches, weakens }]
}

/// Changes of the custom domain and its root mapping.
pub fn domain_changes(
    d: &DomainInfo,
    observed: Option<&DomainInfo>,
    mappings: &[BasePathMapping],
    api: &str,
) -> Vec<ApiChange> {
    let mut out = Vec::new();
    match observed {
        None => out.push(ApiChange::CreateDomain { domain: d.clone() }),
        Some(o) if o.security_policy != d.security_policy => out.push(ApiChange::UpdateDomain {
            name: d.name.clone(),
            patches: vec![Patch::replace("/securityPolicy", d.security_policy.clone())],
        }),
        Some(_) => {}
    }
    let mapping = BasePathMapping { base_path: ROOT_BASE_PATH.into(), rest_api_id: api.into(), stage: STAGE.into() };
    if !mappings.contains(&mapping) {
        out.push(ApiChange::CreateMapping { domain: d.name.clone(), mapping });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage() -> DesiredStage {
        DesiredStage {
            tracing: true,
            throttle: Throttle { rate_limit: 50.0, burst_limit: 100 },
            access_log: ("arn:aws:logs:eu-west-1:1:log-group:g".into(), ACCESS_LOG_FORMAT.into()),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn a_throttle_change_is_one_stage_patch_set_and_raising_it_weakens() {
        let d = stage();
        let converged = StageInfo {
            deployment_id: "d".into(),
            tracing: true,
            throttle: Some(d.throttle),
            access_log: Some(d.access_log.clone()),
            ..StageInfo::default()
        };
        assert!(stage_patches(&d, &converged, None).0.is_empty());
        let lower = StageInfo { throttle: Some(Throttle { rate_limit: 10.0, burst_limit: 100 }), ..converged.clone() };
        let (patches, what, weakens) = stage_patches(&d, &lower, None);
        assert_eq!(patches.len(), 2);
        assert_eq!(what, ["stage throttling"]);
        assert!(weakens, "10 -> 50 requests a second lets more through");
        let higher = StageInfo { throttle: Some(Throttle { rate_limit: 500.0, burst_limit: 1000 }), ..converged };
        assert!(!stage_patches(&d, &higher, None).2, "lowering the throttle strengthens");
    }

    #[test]
    fn the_policy_matches_the_expanded_form_aws_reports() {
        let p = resource_policy("arn:aws:iam::123456789012:root", false);
        let arn = "arn:aws:execute-api:eu-west-1:123456789012:abc123";
        let expanded = p.to_json().replace("execute-api:/", &format!("{arn}/"));
        assert!(policy_matches(&p, Some(&expanded), arn));
        assert!(policy_matches(&p, Some(&p.to_json()), arn));
        let escaped = expanded.replace('"', "\\\"");
        assert!(policy_matches(&p, Some(&escaped), arn));
        assert!(!policy_matches(&resource_policy("x", true), Some(&p.to_json()), arn));
    }

    #[test]
    fn the_template_refuses_large_bodies_and_carries_the_machine() {
        let t = request_template("arn:aws:states:eu-west-1:1:stateMachine:m", 1000);
        assert!(t.contains("$body.length() > 1000"));
        assert!(t.contains("\"stateMachineArn\": \"arn:aws:states:eu-west-1:1:stateMachine:m\""));
        let rejected = t.lines().nth(2).expect("the rejection line");
        assert!(!rejected.contains("stateMachineArn"), "the rejection starts no execution");
    }
}
