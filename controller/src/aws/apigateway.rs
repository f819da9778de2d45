//! The API Gateway (REST, v1) operations an EtlPipeline's ingest API uses: one REGIONAL REST
//! API with one POST method on its root, integrated with Step Functions, its request
//! validator and model, deployments and one stage, a usage plan, and a custom domain with its
//! base path mapping.
//!
//! CreateRestApi and CreateUsagePlan are not idempotent (AWS makes ids, not names, unique):
//! each is sent with a creation-token tag recorded in status first, and found by that tag
//! after an answer was lost (`engine/intent.rs`). Changes to an API, a stage, a usage plan or
//! a domain are JSON-patch operations ([`Patch`]): all changes of one resource go in one call.
use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_apigateway::types::{
    ApiStage, EndpointConfiguration, EndpointType, Op, PatchOperation, SecurityPolicy, ThrottleSettings,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};

/// Service label of errors.
const SERVICE: &str = "apigateway";

/// One JSON-patch operation of an Update* call.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Patch {
    /// `replace`, `add` or `remove`.
    pub op: &'static str,
    pub path: String,
    pub value: Option<String>,
}

impl Patch {
    /// `replace` of `path` with `value`.
    pub fn replace(path: impl Into<String>, value: impl Into<String>) -> Self {
        Self { op: "replace", path: path.into(), value: Some(value.into()) }
    }

    /// `add` of `value` under `path`.
    pub fn add(path: impl Into<String>, value: impl Into<String>) -> Self {
        Self { op: "add", path: path.into(), value: Some(value.into()) }
    }
}

/// What lakeops sets on a REST API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestApiSettings {
    pub name: String,
    pub description: String,
    /// The resource policy (JSON).
    pub policy: String,
    /// True when a custom domain is the only way in.
    pub disable_execute_api_endpoint: bool,
}

/// A REST API as GetRestApi tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestApiInfo {
    pub id: String,
    pub root_resource_id: String,
    pub name: String,
    /// `REGIONAL`, `EDGE` or `PRIVATE`.
    pub endpoint_types: Vec<String>,
    pub policy: Option<String>,
    pub disable_execute_api_endpoint: bool,
    pub tags: BTreeMap<String, String>,
}

/// A method with its integration, as lakeops sets them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MethodSettings {
    /// `AWS_IAM` or `NONE`.
    pub authorization: String,
    pub request_validator_id: Option<String>,
    /// Content type to model name.
    pub request_models: BTreeMap<String, String>,
}

/// An AWS integration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntegrationSettings {
    /// `arn:aws:apigateway:<region>:states:action/StartExecution`.
    pub uri: String,
    /// The role API Gateway assumes.
    pub credentials: String,
    /// Content type to mapping template.
    pub request_templates: BTreeMap<String, String>,
    /// `NEVER`: other content types are refused (415).
    pub passthrough_behavior: String,
}

/// An integration response: what a backend status maps to.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct IntegrationResponse {
    pub status_code: String,
    /// Regex on the backend's status; `None`: the default response.
    pub selection_pattern: Option<String>,
}

/// A method as GetMethod tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MethodInfo {
    pub settings: MethodSettings,
    pub integration: Option<IntegrationSettings>,
    /// Method response status codes.
    pub method_responses: Vec<String>,
    pub integration_responses: Vec<IntegrationResponse>,
}

/// A model (JSON schema) of an API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    pub name: String,
    pub content_type: String,
    pub schema: String,
}

/// A request validator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validator {
    pub id: String,
    pub name: String,
    pub validate_body: bool,
    pub validate_parameters: bool,
}

/// Requests per second and burst.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Throttle {
    pub rate_limit: f64,
    pub burst_limit: i32,
}

/// A stage as GetStage tells it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StageInfo {
    pub deployment_id: String,
    pub tracing: bool,
    /// Throttling of every method (`*/*`), if set.
    pub throttle: Option<Throttle>,
    /// Access log destination (a log group ARN) and format.
    pub access_log: Option<(String, String)>,
    pub variables: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// A usage plan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsagePlanInfo {
    pub id: String,
    pub name: String,
    pub throttle: Option<Throttle>,
    /// `(api id, stage)` pairs.
    pub api_stages: Vec<(String, String)>,
    pub tags: BTreeMap<String, String>,
}

/// A custom domain name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainInfo {
    pub name: String,
    pub certificate_arn: String,
    /// `TLS_1_0`, `TLS_1_2`, ...
    pub security_policy: String,
    pub endpoint_types: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// A base path mapping of a domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BasePathMapping {
    /// `(none)` for the root.
    pub base_path: String,
    pub rest_api_id: String,
    pub stage: String,
}

/// The API Gateway calls lakeops makes; one AWS request each (list calls page).
#[async_trait]
pub trait ApiGatewayApi: Send + Sync {
    /// GetRestApi. `Ok(None)` when there is no such API.
    async fn get_rest_api(&self, id: &str) -> AwsResult<Option<RestApiInfo>>;
    /// GetRestApis, every page: the API carrying tag `key` = `value`, if any.
    async fn find_rest_api(&self, key: &str, value: &str) -> AwsResult<Option<RestApiInfo>>;
    /// CreateRestApi, REGIONAL, with its tags.
    async fn create_rest_api(&self, api: &RestApiSettings, tags: &BTreeMap<String, String>) -> AwsResult<RestApiInfo>;
    /// UpdateRestApi.
    async fn update_rest_api(&self, id: &str, patches: &[Patch]) -> AwsResult<()>;
    /// DeleteRestApi; a missing API is success.
    async fn delete_rest_api(&self, id: &str) -> AwsResult<()>;
    /// GetMethod (with its integration and responses). `Ok(None)` when there is none.
    async fn get_method(&self, api: &str, resource: &str, http: &str) -> AwsResult<Option<MethodInfo>>;
    /// DeleteMethod (with its integration and responses); a missing method is success.
    async fn delete_method(&self, api: &str, resource: &str, http: &str) -> AwsResult<()>;
    /// PutMethod (a method that exists already is refused: delete it first).
    async fn put_method(&self, api: &str, resource: &str, http: &str, m: &MethodSettings) -> AwsResult<()>;
    /// PutIntegration (an AWS integration, POST).
    async fn put_integration(&self, api: &str, resource: &str, http: &str, i: &IntegrationSettings) -> AwsResult<()>;
    /// PutMethodResponse.
    async fn put_method_response(&self, api: &str, resource: &str, http: &str, status: &str) -> AwsResult<()>;
    /// PutIntegrationResponse.
    async fn put_integration_response(
        &self,
        api: &str,
        resource: &str,
        http: &str,
        r: &IntegrationResponse,
    ) -> AwsResult<()>;
    /// GetModels.
    async fn get_models(&self, api: &str) -> AwsResult<Vec<Model>>;
    /// CreateModel; a model of that name already there is success.
    async fn create_model(&self, api: &str, model: &Model) -> AwsResult<()>;
    /// GetRequestValidators.
    async fn get_request_validators(&self, api: &str) -> AwsResult<Vec<Validator>>;
    /// CreateRequestValidator; returns its id.
    async fn create_request_validator(&self, api: &str, v: &Validator) -> AwsResult<String>;
    /// CreateDeployment (no stage: the stage is created or pointed at it apart); its id.
    async fn create_deployment(&self, api: &str, description: &str) -> AwsResult<String>;
    /// GetStage. `Ok(None)` when there is no such stage.
    async fn get_stage(&self, api: &str, stage: &str) -> AwsResult<Option<StageInfo>>;
    /// CreateStage with tracing, stage variables and tags (method settings and access logs
    /// are patches).
    async fn create_stage(
        &self,
        api: &str,
        stage: &str,
        deployment: &str,
        tracing: bool,
        variables: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<()>;
    /// UpdateStage.
    async fn update_stage(&self, api: &str, stage: &str, patches: &[Patch]) -> AwsResult<()>;
    /// GetUsagePlans, every page.
    async fn get_usage_plans(&self) -> AwsResult<Vec<UsagePlanInfo>>;
    /// CreateUsagePlan with its throttle, API stages and tags; returns its id.
    async fn create_usage_plan(&self, plan: &UsagePlanInfo) -> AwsResult<String>;
    /// UpdateUsagePlan.
    async fn update_usage_plan(&self, id: &str, patches: &[Patch]) -> AwsResult<()>;
    /// DeleteUsagePlan; a missing plan is success.
    async fn delete_usage_plan(&self, id: &str) -> AwsResult<()>;
    /// GetDomainName. `Ok(None)` when there is none.
    async fn get_domain_name(&self, name: &str) -> AwsResult<Option<DomainInfo>>;
    /// GetDomainNames, every page.
    async fn get_domain_names(&self) -> AwsResult<Vec<DomainInfo>>;
    /// CreateDomainName, REGIONAL, with the certificate, security policy and tags.
    async fn create_domain_name(&self, domain: &DomainInfo) -> AwsResult<()>;
    /// UpdateDomainName.
    async fn update_domain_name(&self, name: &str, patches: &[Patch]) -> AwsResult<()>;
    /// DeleteDomainName (its mappings go with it); a missing domain is success.
    async fn delete_domain_name(&self, name: &str) -> AwsResult<()>;
    /// GetBasePathMappings.
    async fn get_base_path_mappings(&self, domain: &str) -> AwsResult<Vec<BasePathMapping>>;
    /// CreateBasePathMapping.
    async fn create_base_path_mapping(&self, domain: &str, m: &BasePathMapping) -> AwsResult<()>;
}

/// [`ApiGatewayApi`] over the AWS SDK.
pub struct SdkApiGateway {
    client: aws_sdk_apigateway::Client,
}

impl SdkApiGateway {
    /// Wraps a client.
    pub fn new(client: aws_sdk_apigateway::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk(SERVICE, operation, resource, err)
}

fn none_if_missing<T>(result: AwsResult<T>) -> AwsResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn ok_if_missing(result: AwsResult<()>) -> AwsResult<()> {
    none_if_missing(result).map(drop)
}

/// CreateRestApi and CreateUsagePlan are not idempotent: the SDK's own retry after a lost
/// answer would make a second one. They are sent once; the controller's next round finds
/// what the first made by its creation token before it creates again.
fn no_retries() -> aws_sdk_apigateway::config::Builder {
    aws_sdk_apigateway::config::Config::builder().retry_config(aws_smithy_types::retry::RetryConfig::disabled())
}

/// API Gateway's "already exists": `ConflictException`.
fn is_conflict(e: &AwsError) -> bool {
    e.code.as_deref() == Some("ConflictException") || e.is_already_exists()
}

fn tags_of(tags: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    tags.unwrap_or_default().into_iter().collect()
}

fn endpoint_types(c: Option<&EndpointConfiguration>) -> Vec<String> {
    c.map(|c| c.types().iter().map(|t| t.as_str().to_string()).collect()).unwrap_or_default()
}

/// A domain as GetDomainName and GetDomainNames both report it (two SDK types, one shape).
fn domain_info(
    name: String,
    certificate_arn: Option<String>,
    security_policy: Option<SecurityPolicy>,
    endpoint: Option<&EndpointConfiguration>,
    tags: Option<HashMap<String, String>>,
) -> DomainInfo {
    DomainInfo {
        name,
        certificate_arn: certificate_arn.unwrap_or_default(),
        security_policy: security_policy.map(|p| p.as_str().to_string()).unwrap_or_default(),
        endpoint_types: endpoint_types(endpoint),
        tags: tags_of(tags),
    }
}

fn regional() -> EndpointConfiguration {
    EndpointConfiguration::builder().types(EndpointType::Regional).build()
}

fn patches(p: &[Patch]) -> Vec<PatchOperation> {
    p.iter()
        .map(|p| PatchOperation::builder().op(Op::from(p.op)).path(&p.path).set_value(p.value.clone()).build())
        .collect()
}

fn throttle_of(t: Option<&ThrottleSettings>) -> Option<Throttle> {
    t.map(|t| Throttle { rate_limit: t.rate_limit, burst_limit: t.burst_limit })
}

fn plan_of(p: aws_sdk_apigateway::types::UsagePlan) -> UsagePlanInfo {
    UsagePlanInfo {
        id: p.id.unwrap_or_default(),
        name: p.name.unwrap_or_default(),
        throttle: throttle_of(p.throttle.as_ref()),
        api_stages: p
            .api_stages
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.api_id.unwrap_or_default(), s.stage.unwrap_or_default()))
            .collect(),
        tags: tags_of(p.tags),
    }
}

macro_rules! rest_api_info {
    ($out:expr) => {{
        let out = $out;
        RestApiInfo {
            id: out.id.unwrap_or_default(),
            root_resource_id: out.root_resource_id.unwrap_or_default(),
            name: out.name.unwrap_or_default(),
            endpoint_types: endpoint_types(out.endpoint_configuration.as_ref()),
            policy: out.policy,
            disable_execute_api_endpoint: out.disable_execute_api_endpoint,
            tags: tags_of(out.tags),
        }
    }};
}

#[async_trait]
impl ApiGatewayApi for SdkApiGateway {
    async fn get_rest_api(&self, id: &str) -> AwsResult<Option<RestApiInfo>> {
        let out = self.client.get_rest_api().rest_api_id(id).send().await.map_err(|e| sdk_error("GetRestApi", id, &e));
        Ok(none_if_missing(out)?.map(|out| rest_api_info!(out)))
    }

    async fn find_rest_api(&self, key: &str, value: &str) -> AwsResult<Option<RestApiInfo>> {
        let mut position = None;
        loop {
            let out = self
                .client
                .get_rest_apis()
                .set_position(position)
                .limit(500)
                .send()
                .await
                .map_err(|e| sdk_error("GetRestApis", "rest APIs", &e))?;
            for api in out.items.unwrap_or_default() {
                if api.tags.as_ref().and_then(|t| t.get(key)).is_some_and(|v| v == value) {
                    return Ok(Some(rest_api_info!(api)));
                }
            }
            match out.position {
                Some(p) if !p.is_empty() => position = Some(p),
                _ => return Ok(None),
            }
        }
    }

    async fn create_rest_api(&self, api: &RestApiSettings, tags: &BTreeMap<String, String>) -> AwsResult<RestApiInfo> {
        let out = self
            .client
            .create_rest_api()
            .name(&api.name)
            .description(&api.description)
            .endpoint_configuration(regional())
            .policy(&api.policy)
            .disable_execute_api_endpoint(api.disable_execute_api_endpoint)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| sdk_error("CreateRestApi", &api.name, &e))?;
        Ok(rest_api_info!(out))
    }

    async fn update_rest_api(&self, id: &str, p: &[Patch]) -> AwsResult<()> {
        self.client
            .update_rest_api()
            .rest_api_id(id)
            .set_patch_operations(Some(patches(p)))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("UpdateRestApi", id, &e))
    }

    async fn delete_rest_api(&self, id: &str) -> AwsResult<()> {
        let out = self.client.delete_rest_api().rest_api_id(id).send().await;
        ok_if_missing(out.map(drop).map_err(|e| sdk_error("DeleteRestApi", id, &e)))
    }

    async fn get_method(&self, api: &str, resource: &str, http: &str) -> AwsResult<Option<MethodInfo>> {
        let out = self
            .client
            .get_method()
            .rest_api_id(api)
            .resource_id(resource)
            .http_method(http)
            .send()
            .await
            .map_err(|e| sdk_error("GetMethod", api, &e));
        let Some(out) = none_if_missing(out)? else { return Ok(None) };
        let integration = out.method_integration;
        let mut integration_responses: Vec<IntegrationResponse> = integration
            .as_ref()
            .and_then(|i| i.integration_responses.clone())
            .unwrap_or_default()
            .into_values()
            .map(|r| IntegrationResponse {
                status_code: r.status_code.unwrap_or_default(),
                selection_pattern: r.selection_pattern.filter(|p| !p.is_empty()),
            })
            .collect();
        integration_responses.sort();
        let mut method_responses: Vec<String> = out.method_responses.unwrap_or_default().into_keys().collect();
        method_responses.sort();
        Ok(Some(MethodInfo {
            settings: MethodSettings {
                authorization: out.authorization_type.unwrap_or_default(),
                request_validator_id: out.request_validator_id,
                request_models: out.request_models.unwrap_or_default().into_iter().collect(),
            },
            integration: integration.map(|i| IntegrationSettings {
                uri: i.uri.unwrap_or_default(),
                credentials: i.credentials.unwrap_or_default(),
                request_templates: i.request_templates.unwrap_or_default().into_iter().collect(),
                passthrough_behavior: i.passthrough_behavior.unwrap_or_default(),
            }),
            method_responses,
            integration_responses,
        }))
    }

    async fn delete_method(&self, api: &str, resource: &str, http: &str) -> AwsResult<()> {
        let out = self.client.delete_method().rest_api_id(api).resource_id(resource).http_method(http).send().await;
        ok_if_missing(out.map(drop).map_err(|e| sdk_error("DeleteMethod", api, &e)))
    }

    async fn put_method(&self, api: &str, resource: &str, http: &str, m: &MethodSettings) -> AwsResult<()> {
        self.client
            .put_method()
            .rest_api_id(api)
            .resource_id(resource)
            .http_method(http)
            .authorization_type(&m.authorization)
            .set_request_validator_id(m.request_validator_id.clone())
            .set_request_models(Some(m.request_models.clone().into_iter().collect()))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("PutMethod", api, &e))
    }

    async fn put_integration(&self, api: &str, resource: &str, http: &str, i: &IntegrationSettings) -> AwsResult<()> {
        self.client
            .put_integration()
            .rest_api_id(api)
            .resource_id(resource)
            .http_method(http)
            .r#type(aws_sdk_apigateway::types::IntegrationType::Aws)
            .integration_http_method("POST")
            .uri(&i.uri)
            .credentials(&i.credentials)
            .passthrough_behavior(&i.passthrough_behavior)
            .set_request_templates(Some(i.request_templates.clone().into_iter().collect()))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("PutIntegration", api, &e))
    }

    async fn put_method_response(&self, api: &str, resource: &str, http: &str, status: &str) -> AwsResult<()> {
        self.client
            .put_method_response()
            .rest_api_id(api)
            .resource_id(resource)
            .http_method(http)
            .status_code(status)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("PutMethodResponse", api, &e))
    }

    async fn put_integration_response(
        &self,
        api: &str,
        resource: &str,
        http: &str,
        r: &IntegrationResponse,
    ) -> AwsResult<()> {
        self.client
            .put_integration_response()
            .rest_api_id(api)
            .resource_id(resource)
            .http_method(http)
            .status_code(&r.status_code)
            .set_selection_pattern(r.selection_pattern.clone())
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("PutIntegrationResponse", api, &e))
    }

    async fn get_models(&self, api: &str) -> AwsResult<Vec<Model>> {
        let out =
            self.client.get_models().rest_api_id(api).send().await.map_err(|e| sdk_error("GetModels", api, &e))?;
        Ok(out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|m| Model {
                name: m.name.unwrap_or_default(),
                content_type: m.content_type.unwrap_or_default(),
                schema: m.schema.unwrap_or_default(),
            })
            .collect())
    }

    async fn create_model(&self, api: &str, model: &Model) -> AwsResult<()> {
        let out = self
            .client
            .create_model()
            .rest_api_id(api)
            .name(&model.name)
            .content_type(&model.content_type)
            .schema(&model.schema)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("CreateModel", api, &e));
        match out {
            // Our own retry after a lost answer: the model is there.
            Err(e) if is_conflict(&e) => Ok(()),
            other => other,
        }
    }

    async fn get_request_validators(&self, api: &str) -> AwsResult<Vec<Validator>> {
        let out = self
            .client
            .get_request_validators()
            .rest_api_id(api)
            .send()
            .await
            .map_err(|e| sdk_error("GetRequestValidators", api, &e))?;
        Ok(out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|v| Validator {
                id: v.id.unwrap_or_default(),
                name: v.name.unwrap_or_default(),
                validate_body: v.validate_request_body,
                validate_parameters: v.validate_request_parameters,
            })
            .collect())
    }

    async fn create_request_validator(&self, api: &str, v: &Validator) -> AwsResult<String> {
        let out = self
            .client
            .create_request_validator()
            .rest_api_id(api)
            .name(&v.name)
            .validate_request_body(v.validate_body)
            .validate_request_parameters(v.validate_parameters)
            .send()
            .await
            .map_err(|e| sdk_error("CreateRequestValidator", api, &e))?;
        Ok(out.id.unwrap_or_default())
    }

    async fn create_deployment(&self, api: &str, description: &str) -> AwsResult<String> {
        let out = self
            .client
            .create_deployment()
            .rest_api_id(api)
            .description(description)
            .send()
            .await
            .map_err(|e| sdk_error("CreateDeployment", api, &e))?;
        Ok(out.id.unwrap_or_default())
    }

    async fn get_stage(&self, api: &str, stage: &str) -> AwsResult<Option<StageInfo>> {
        let out = self
            .client
            .get_stage()
            .rest_api_id(api)
            .stage_name(stage)
            .send()
            .await
            .map_err(|e| sdk_error("GetStage", api, &e));
        Ok(none_if_missing(out)?.map(|out| StageInfo {
            deployment_id: out.deployment_id.unwrap_or_default(),
            tracing: out.tracing_enabled,
            throttle: out
                .method_settings
                .as_ref()
                .and_then(|m| m.get(ALL_METHODS))
                .map(|m| Throttle { rate_limit: m.throttling_rate_limit, burst_limit: m.throttling_burst_limit }),
            access_log: out.access_log_settings.and_then(|a| Some((a.destination_arn?, a.format.unwrap_or_default()))),
            variables: tags_of(out.variables),
            tags: tags_of(out.tags),
        }))
    }

    async fn create_stage(
        &self,
        api: &str,
        stage: &str,
        deployment: &str,
        tracing: bool,
        variables: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<()> {
        let out = self
            .client
            .create_stage()
            .rest_api_id(api)
            .stage_name(stage)
            .deployment_id(deployment)
            .tracing_enabled(tracing)
            .set_variables(Some(variables.clone().into_iter().collect()))
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("CreateStage", api, &e));
        match out {
            // Our own retry: the stage is there; the next round converges its settings.
            Err(e) if is_conflict(&e) => Ok(()),
            other => other,
        }
    }

    async fn update_stage(&self, api: &str, stage: &str, p: &[Patch]) -> AwsResult<()> {
        self.client
            .update_stage()
            .rest_api_id(api)
            .stage_name(stage)
            .set_patch_operations(Some(patches(p)))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("UpdateStage", api, &e))
    }

    async fn get_usage_plans(&self) -> AwsResult<Vec<UsagePlanInfo>> {
        let mut plans = Vec::new();
        let mut position = None;
        loop {
            let out = self
                .client
                .get_usage_plans()
                .set_position(position)
                .limit(500)
                .send()
                .await
                .map_err(|e| sdk_error("GetUsagePlans", "usage plans", &e))?;
            plans.extend(out.items.unwrap_or_default().into_iter().map(plan_of));
            match out.position {
                Some(p) if !p.is_empty() => position = Some(p),
                _ => return Ok(plans),
            }
        }
    }

    async fn create_usage_plan(&self, plan: &UsagePlanInfo) -> AwsResult<String> {
        let stages =
            plan.api_stages.iter().map(|(api, stage)| ApiStage::builder().api_id(api).stage(stage).build()).collect();
        let throttle = plan
            .throttle
            .map(|t| ThrottleSettings::builder().rate_limit(t.rate_limit).burst_limit(t.burst_limit).build());
        let out = self
            .client
            .create_usage_plan()
            .name(&plan.name)
            .set_api_stages(Some(stages))
            .set_throttle(throttle)
            .set_tags(Some(plan.tags.clone().into_iter().collect()))
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| sdk_error("CreateUsagePlan", &plan.name, &e))?;
        Ok(out.id.unwrap_or_default())
    }

    async fn update_usage_plan(&self, id: &str, p: &[Patch]) -> AwsResult<()> {
        self.client
            .update_usage_plan()
            .usage_plan_id(id)
            .set_patch_operations(Some(patches(p)))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("UpdateUsagePlan", id, &e))
    }

    async fn delete_usage_plan(&self, id: &str) -> AwsResult<()> {
        let out = self.client.delete_usage_plan().usage_plan_id(id).send().await;
        ok_if_missing(out.map(drop).map_err(|e| sdk_error("DeleteUsagePlan", id, &e)))
    }

    async fn get_domain_name(&self, name: &str) -> AwsResult<Option<DomainInfo>> {
        let out = self
            .client
            .get_domain_name()
            .domain_name(name)
            .send()
            .await
            .map_err(|e| sdk_error("GetDomainName", name, &e));
        Ok(none_if_missing(out)?.map(|out| {
            domain_info(
                out.domain_name.unwrap_or_else(|| name.to_string()),
                out.regional_certificate_arn.or(out.certificate_arn),
                out.security_policy,
                out.endpoint_configuration.as_ref(),
                out.tags,
            )
        }))
    }

    async fn get_domain_names(&self) -> AwsResult<Vec<DomainInfo>> {
        let mut domains = Vec::new();
        let mut position = None;
        loop {
            let out = self
                .client
                .get_domain_names()
                .set_position(position)
                .limit(500)
                .send()
                .await
                .map_err(|e| sdk_error("GetDomainNames", "domain names", &e))?;
            domains.extend(out.items.unwrap_or_default().into_iter().map(|d| {
                domain_info(
                    d.domain_name.unwrap_or_default(),
                    d.regional_certificate_arn.or(d.certificate_arn),
                    d.security_policy,
                    d.endpoint_configuration.as_ref(),
                    d.tags,
                )
            }));
            match out.position {
                Some(p) if !p.is_empty() => position = Some(p),
                _ => return Ok(domains),
            }
        }
    }

    async fn create_domain_name(&self, d: &DomainInfo) -> AwsResult<()> {
        self.client
            .create_domain_name()
            .domain_name(&d.name)
            .regional_certificate_arn(&d.certificate_arn)
            .endpoint_configuration(regional())
            .security_policy(SecurityPolicy::from(d.security_policy.as_str()))
            .set_tags(Some(d.tags.clone().into_iter().collect()))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("CreateDomainName", &d.name, &e))
    }

    async fn update_domain_name(&self, name: &str, p: &[Patch]) -> AwsResult<()> {
        self.client
            .update_domain_name()
            .domain_name(name)
            .set_patch_operations(Some(patches(p)))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("UpdateDomainName", name, &e))
    }

    async fn delete_domain_name(&self, name: &str) -> AwsResult<()> {
        let out = self.client.delete_domain_name().domain_name(name).send().await;
        ok_if_missing(out.map(drop).map_err(|e| sdk_error("DeleteDomainName", name, &e)))
    }

    async fn get_base_path_mappings(&self, domain: &str) -> AwsResult<Vec<BasePathMapping>> {
        let out = self
            .client
            .get_base_path_mappings()
            .domain_name(domain)
            .send()
            .await
            .map_err(|e| sdk_error("GetBasePathMappings", domain, &e));
        Ok(none_if_missing(out)?
            .map(|out| {
                out.items
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| BasePathMapping {
                        base_path: m.base_path.unwrap_or_else(|| ROOT_BASE_PATH.to_string()),
                        rest_api_id: m.rest_api_id.unwrap_or_default(),
                        stage: m.stage.unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn create_base_path_mapping(&self, domain: &str, m: &BasePathMapping) -> AwsResult<()> {
        let base_path = (m.base_path != ROOT_BASE_PATH).then(|| m.base_path.clone());
        let out = self
            .client
            .create_base_path_mapping()
            .domain_name(domain)
            .rest_api_id(&m.rest_api_id)
            .stage(&m.stage)
            .set_base_path(base_path)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("CreateBasePathMapping", domain, &e));
        match out {
            Err(e) if is_conflict(&e) => Ok(()),
            other => other,
        }
    }
}

/// The method-settings key of every method of a stage.
pub const ALL_METHODS: &str = "*/*";
/// The base path API Gateway reports for a mapping of the domain's root.
pub const ROOT_BASE_PATH: &str = "(none)";

#[cfg(test)]
mod tests {
    use aws_sdk_apigateway::operation::create_rest_api::CreateRestApiOutput;
    use aws_sdk_apigateway::operation::create_usage_plan::CreateUsagePlanOutput;
    use aws_sdk_apigateway::operation::get_rest_api::GetRestApiOutput;
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_types::retry::RetryConfig;

    use super::*;
    use crate::aws::error::ErrorKind;

    /// A client that retries like the controller's (standard mode), without waiting.
    fn gateway(rules: &[&Rule]) -> SdkApiGateway {
        let retries = RetryConfig::standard().with_max_attempts(4).with_initial_backoff(std::time::Duration::ZERO);
        let mode = aws_smithy_mocks::RuleMode::MatchAny;
        let conf = crate::aws::mocked_config!(aws_sdk_apigateway, rules, mode).retry_config(retries).build();
        SdkApiGateway::new(aws_sdk_apigateway::Client::from_conf(conf))
    }

    #[tokio::test]
    async fn the_two_non_idempotent_creates_are_sent_once_where_the_sdk_retries_other_calls() {
        // Reads are retried by the SDK (the control: the rule is answered twice) ...
        let read = mock!(aws_sdk_apigateway::Client::get_rest_api)
            .sequence()
            .http_status(503, None)
            .output(|| GetRestApiOutput::builder().id("a1").build())
            .build();
        // ... CreateRestApi and CreateUsagePlan are not: a lost answer may hide one that exists.
        let create = mock!(aws_sdk_apigateway::Client::create_rest_api)
            .sequence()
            .http_status(503, None)
            .output(|| CreateRestApiOutput::builder().id("a2").build())
            .build();
        let plan = mock!(aws_sdk_apigateway::Client::create_usage_plan)
            .sequence()
            .http_status(503, None)
            .output(|| CreateUsagePlanOutput::builder().id("p1").build())
            .build();
        let gw = gateway(&[&read, &create, &plan]);

        assert!(gw.get_rest_api("a1").await.is_ok_and(|a| a.is_some()));
        assert_eq!(read.num_calls(), 2);
        let err = gw.create_rest_api(&RestApiSettings::default(), &BTreeMap::new()).await.expect_err("not retried");
        assert_eq!(create.num_calls(), 1, "one CreateRestApi request");
        assert_eq!(err.kind, ErrorKind::OutcomeUnknown, "{err}");
        assert!(gw.create_usage_plan(&UsagePlanInfo::default()).await.is_err());
        assert_eq!(plan.num_calls(), 1, "one CreateUsagePlan request");
    }

    #[test]
    fn patches_carry_their_operation_path_and_value() {
        let ops = patches(&[Patch::replace("/*/*/throttling/rateLimit", "50"), Patch::add("/apiStages", "a:ingest")]);
        assert_eq!(ops[0].op(), Some(&Op::Replace));
        assert_eq!((ops[0].path(), ops[0].value()), (Some("/*/*/throttling/rateLimit"), Some("50")));
        assert_eq!(ops[1].op(), Some(&Op::Add));
    }
}
