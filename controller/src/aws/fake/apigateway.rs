//! API Gateway (REST) in the fake account: APIs with one method on their root, models,
//! validators, deployments and stages; usage plans; custom domains and their mappings. Patch
//! operations are applied for the paths lakeops sends; any other path is refused, as AWS
//! refuses a path it does not know.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Fail, FakeAws, check_json, fail, ok_if_missing};
use crate::aws::apigateway::{
    ALL_METHODS, ApiGatewayApi, BasePathMapping, DomainInfo, IntegrationResponse, IntegrationSettings, MethodInfo,
    MethodSettings, Model, Patch, RestApiInfo, RestApiSettings, StageInfo, Throttle, UsagePlanInfo, Validator,
};
use crate::aws::error::AwsResult;

const SERVICE: &str = "apigateway";

/// A REST API and what hangs off it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RestApi {
    pub region: String,
    pub info: RestApiInfo,
    pub description: String,
    /// The POST method of the root resource, with its integration.
    pub method: Option<MethodInfo>,
    pub models: Vec<Model>,
    pub validators: Vec<Validator>,
    pub deployments: Vec<String>,
    pub stages: BTreeMap<String, StageInfo>,
}

/// A custom domain and its mappings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Domain {
    pub info: DomainInfo,
    pub mappings: Vec<BasePathMapping>,
}

/// [`ApiGatewayApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeApiGateway {
    aws: Arc<FakeAws>,
    region: String,
}

impl FakeApiGateway {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }
}

fn not_found(what: &str) -> Fail {
    fail("NotFoundException", 404, format!("Invalid {what} identifier specified"))
}

fn bad(message: impl Into<String>) -> Fail {
    fail("BadRequestException", 400, message)
}

fn value(p: &Patch) -> Result<&str, Fail> {
    p.value.as_deref().ok_or_else(|| bad(format!("patch of {} has no value", p.path)))
}

fn number<T: std::str::FromStr>(p: &Patch) -> Result<T, Fail> {
    value(p)?.parse().map_err(|_| bad(format!("{} is not a number", p.path)))
}

fn api<'a>(res: &'a mut super::Resources, region: &str, id: &str) -> Result<&'a mut RestApi, Fail> {
    res.rest_apis.get_mut(id).filter(|a| a.region == region).ok_or_else(|| not_found("Rest API"))
}

fn read_api<'a>(res: &'a super::Resources, region: &str, id: &str) -> Result<&'a RestApi, Fail> {
    res.rest_apis.get(id).filter(|a| a.region == region).ok_or_else(|| not_found("Rest API"))
}

fn check_resource(api: &RestApi, resource: &str, http: &str) -> Result<(), Fail> {
    if resource != api.info.root_resource_id || http != "POST" {
        return Err(not_found("resource"));
    }
    Ok(())
}

#[async_trait]
impl ApiGatewayApi for FakeApiGateway {
    async fn get_rest_api(&self, id: &str) -> AwsResult<Option<RestApiInfo>> {
        self.aws.read(&self.region, SERVICE, "GetRestApi", id, |ctx| {
            Ok(ctx.res.rest_apis.get(id).filter(|a| a.region == self.region).map(|a| a.info.clone()))
        })
    }

    async fn find_rest_api(&self, key: &str, value: &str) -> AwsResult<Option<RestApiInfo>> {
        self.aws.read(&self.region, SERVICE, "GetRestApis", "rest APIs", |ctx| {
            Ok(ctx
                .res
                .rest_apis
                .values()
                .filter(|a| a.region == self.region)
                .find(|a| a.info.tags.get(key).is_some_and(|v| v == value))
                .map(|a| a.info.clone()))
        })
    }

    async fn create_rest_api(&self, s: &RestApiSettings, tags: &BTreeMap<String, String>) -> AwsResult<RestApiInfo> {
        self.aws.write(&self.region, SERVICE, "CreateRestApi", &s.name, |ctx| {
            check_json(&s.policy, "BadRequestException")?;
            // Ids, not names, are unique: every call makes a new API, as in AWS.
            let id = format!("api{:07}", ctx.next_id());
            let root = format!("root{:06}", ctx.next_id());
            let info = RestApiInfo {
                id: id.clone(),
                root_resource_id: root,
                name: s.name.clone(),
                endpoint_types: vec!["REGIONAL".into()],
                policy: Some(s.policy.clone()),
                disable_execute_api_endpoint: s.disable_execute_api_endpoint,
                tags: tags.clone(),
            };
            let api = RestApi {
                region: ctx.region.to_string(),
                info: info.clone(),
                description: s.description.clone(),
                ..RestApi::default()
            };
            ctx.res.rest_apis.insert(id, api);
            Ok(info)
        })
    }

    async fn update_rest_api(&self, id: &str, patches: &[Patch]) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "UpdateRestApi", id, |ctx| {
            let api = api(ctx.res, ctx.region, id)?;
            for p in patches {
                match p.path.as_str() {
                    "/policy" => {
                        check_json(value(p)?, "BadRequestException")?;
                        api.info.policy = Some(value(p)?.to_string());
                    }
                    "/disableExecuteApiEndpoint" => api.info.disable_execute_api_endpoint = value(p)? == "true",
                    other => return Err(bad(format!("Invalid patch path {other}"))),
                }
            }
            Ok(())
        })
    }

    async fn delete_rest_api(&self, id: &str) -> AwsResult<()> {
        ok_if_missing(self.aws.write(&self.region, SERVICE, "DeleteRestApi", id, |ctx| {
            api(ctx.res, ctx.region, id)?;
            if ctx.res.usage_plans.values().any(|p| p.api_stages.iter().any(|(a, _)| a == id)) {
                return Err(bad("Cannot delete a REST API whose stages are in a usage plan"));
            }
            ctx.res.rest_apis.remove(id);
            Ok(())
        }))
    }

    async fn get_method(&self, id: &str, resource: &str, http: &str) -> AwsResult<Option<MethodInfo>> {
        self.aws.read(&self.region, SERVICE, "GetMethod", id, |ctx| {
            let api = read_api(ctx.res, &self.region, id)?;
            check_resource(api, resource, http)?;
            Ok(api.method.clone())
        })
    }

    async fn delete_method(&self, id: &str, resource: &str, http: &str) -> AwsResult<()> {
        ok_if_missing(self.aws.write(&self.region, SERVICE, "DeleteMethod", id, |ctx| {
            let api = api(ctx.res, ctx.region, id)?;
            check_resource(api, resource, http)?;
            api.method.take().map(drop).ok_or_else(|| not_found("Method"))
        }))
    }

    async fn put_method(&self, id: &str, resource: &str, http: &str, m: &MethodSettings) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "PutMethod", id, |ctx| {
            let api = api(ctx.res, ctx.region, id)?;
            check_resource(api, resource, http)?;
            if api.method.is_some() {
                return Err(fail("ConflictException", 409, "Method already exists for this resource"));
            }
            if let Some(v) = &m.request_validator_id
                && !api.validators.iter().any(|x| &x.id == v)
            {
                return Err(bad("Invalid Request Validator identifier specified"));
            }
            if let Some(model) = m.request_models.values().find(|n| !api.models.iter().any(|x| &x.name == *n)) {
                return Err(bad(format!("Invalid model identifier specified: {model}")));
            }
            api.method = Some(MethodInfo { settings: m.clone(), ..MethodInfo::default() });
            Ok(())
        })
    }

    async fn put_integration(&self, id: &str, resource: &str, http: &str, i: &IntegrationSettings) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "PutIntegration", id, |ctx| {
            let api = api(ctx.res, ctx.region, id)?;
            check_resource(api, resource, http)?;
            let method = api.method.as_mut().ok_or_else(|| not_found("Method"))?;
            if !i.uri.starts_with("arn:aws:apigateway:") || !i.credentials.starts_with("arn:aws:iam::") {
                return Err(bad("Invalid ARN specified in the request"));
            }
            method.integration = Some(i.clone());
            method.integration_responses.clear();
            Ok(())
        })
    }

    async fn put_method_response(&self, id: &str, resource: &str, http: &str, status: &str) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "PutMethodResponse", id, |ctx| {
            let api = api(ctx.res, ctx.region, id)?;
            check_resource(api, resource, http)?;
            let method = api.method.as_mut().ok_or_else(|| not_found("Method"))?;
            if !method.method_responses.iter().any(|s| s == status) {
                method.method_responses.push(status.to_string());
                method.method_responses.sort();
            }
            Ok(())
        })
    }

    async fn put_integration_response(
        &self,
        id: &str,
        resource: &str,
        http: &str,
        r: &IntegrationResponse,
    ) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "PutIntegrationResponse", id, |ctx| {
            let api = api(ctx.res, ctx.region, id)?;
            check_resource(api, resource, http)?;
            let method = api.method.as_mut().ok_or_else(|| not_found("Method"))?;
            if method.integration.is_none() {
                return Err(not_found("Integration"));
            }
            if !method.method_responses.contains(&r.status_code) {
                return Err(bad("Invalid Response status code specified"));
            }
            method.integration_responses.retain(|x| x.status_code != r.status_code);
            method.integration_responses.push(r.clone());
            method.integration_responses.sort();
            Ok(())
        })
    }

    async fn get_models(&self, id: &str) -> AwsResult<Vec<Model>> {
        self.aws
            .read(&self.region, SERVICE, "GetModels", id, |ctx| Ok(read_api(ctx.res, &self.region, id)?.models.clone()))
    }

    async fn create_model(&self, id: &str, model: &Model) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "CreateModel", id, |ctx| {
            let api = api(ctx.res, ctx.region, id)?;
            check_json(&model.schema, "BadRequestException")?;
            if api.models.iter().any(|m| m.name == model.name) {
                // The adapter takes AWS's ConflictException as success.
                return Ok(());
            }
            api.models.push(model.clone());
            Ok(())
        })
    }

    async fn get_request_validators(&self, id: &str) -> AwsResult<Vec<Validator>> {
        self.aws.read(&self.region, SERVICE, "GetRequestValidators", id, |ctx| {
            Ok(read_api(ctx.res, &self.region, id)?.validators.clone())
        })
    }

    async fn create_request_validator(&self, id: &str, v: &Validator) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "CreateRequestValidator", id, |ctx| {
            let vid = format!("val{:06}", ctx.next_id());
            let api = api(ctx.res, ctx.region, id)?;
            api.validators.push(Validator { id: vid.clone(), ..v.clone() });
            Ok(vid)
        })
    }

    async fn create_deployment(&self, id: &str, _description: &str) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "CreateDeployment", id, |ctx| {
            let did = format!("dep{:06}", ctx.next_id());
            let api = api(ctx.res, ctx.region, id)?;
            if api.method.as_ref().is_none_or(|m| m.integration.is_none()) {
                return Err(bad("No integration defined for method"));
            }
            api.deployments.push(did.clone());
            Ok(did)
        })
    }

    async fn get_stage(&self, id: &str, stage: &str) -> AwsResult<Option<StageInfo>> {
        self.aws.read(&self.region, SERVICE, "GetStage", id, |ctx| {
            Ok(read_api(ctx.res, &self.region, id)?.stages.get(stage).cloned())
        })
    }

    async fn create_stage(
        &self,
        id: &str,
        stage: &str,
        deployment: &str,
        tracing: bool,
        variables: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "CreateStage", id, |ctx| {
            let api = api(ctx.res, ctx.region, id)?;
            if !api.deployments.iter().any(|d| d == deployment) {
                return Err(bad("Invalid deployment identifier specified"));
            }
            if api.stages.contains_key(stage) {
                // The adapter takes AWS's ConflictException as success.
                return Ok(());
            }
            let info = StageInfo {
                deployment_id: deployment.to_string(),
                tracing,
                variables: variables.clone(),
                tags: tags.clone(),
                ..StageInfo::default()
            };
            api.stages.insert(stage.to_string(), info);
            Ok(())
        })
    }

    async fn update_stage(&self, id: &str, stage: &str, patches: &[Patch]) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "UpdateStage", id, |ctx| {
            let api = api(ctx.res, ctx.region, id)?;
            let deployments = api.deployments.clone();
            let s = api.stages.get_mut(stage).ok_or_else(|| not_found("stage"))?;
            let all = format!("/{ALL_METHODS}");
            for p in patches {
                let throttle = s.throttle.get_or_insert(Throttle { rate_limit: 10000.0, burst_limit: 5000 });
                match p.path.as_str() {
                    path if path == format!("{all}/throttling/rateLimit") => throttle.rate_limit = number(p)?,
                    path if path == format!("{all}/throttling/burstLimit") => throttle.burst_limit = number(p)?,
                    "/tracingEnabled" => s.tracing = value(p)? == "true",
                    "/accessLogSettings/destinationArn" => {
                        s.access_log.get_or_insert_default().0 = value(p)?.to_string();
                    }
                    "/accessLogSettings/format" => s.access_log.get_or_insert_default().1 = value(p)?.to_string(),
                    path if path.starts_with("/variables/") => {
                        s.variables.insert(path["/variables/".len()..].to_string(), value(p)?.to_string());
                    }
                    "/deploymentId" => {
                        if !deployments.iter().any(|d| d == value(p).unwrap_or_default()) {
                            return Err(bad("Invalid deployment identifier specified"));
                        }
                        s.deployment_id = value(p)?.to_string();
                    }
                    other => return Err(bad(format!("Invalid patch path {other}"))),
                }
            }
            Ok(())
        })
    }

    async fn get_usage_plans(&self) -> AwsResult<Vec<UsagePlanInfo>> {
        self.aws.read(&self.region, SERVICE, "GetUsagePlans", "usage plans", |ctx| {
            Ok(ctx.res.usage_plans.iter().filter(|((r, _), _)| *r == self.region).map(|(_, p)| p.clone()).collect())
        })
    }

    async fn create_usage_plan(&self, plan: &UsagePlanInfo) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "CreateUsagePlan", &plan.name, |ctx| {
            for (api, stage) in &plan.api_stages {
                let a = api_of(ctx.res, ctx.region, api)?;
                if !a.stages.contains_key(stage) {
                    return Err(bad(format!("Invalid stage identifier specified: {stage}")));
                }
            }
            let id = format!("plan{:06}", ctx.next_id());
            ctx.res
                .usage_plans
                .insert((ctx.region.to_string(), id.clone()), UsagePlanInfo { id: id.clone(), ..plan.clone() });
            Ok(id)
        })
    }

    async fn update_usage_plan(&self, id: &str, patches: &[Patch]) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "UpdateUsagePlan", id, |ctx| {
            let key = (ctx.region.to_string(), id.to_string());
            let mut plan = ctx.res.usage_plans.get(&key).cloned().ok_or_else(|| not_found("Usage Plan"))?;
            for p in patches {
                let throttle = plan.throttle.get_or_insert(Throttle::default());
                match (p.op, p.path.as_str()) {
                    (_, "/throttle/rateLimit") => throttle.rate_limit = number(p)?,
                    (_, "/throttle/burstLimit") => throttle.burst_limit = number(p)?,
                    ("add", "/apiStages") => {
                        let (api, stage) = value(p)?.split_once(':').ok_or_else(|| bad("apiStages takes api:stage"))?;
                        api_of(ctx.res, ctx.region, api)?;
                        plan.api_stages.push((api.to_string(), stage.to_string()));
                    }
                    (_, other) => return Err(bad(format!("Invalid patch path {other}"))),
                }
            }
            ctx.res.usage_plans.insert(key, plan);
            Ok(())
        })
    }

    async fn delete_usage_plan(&self, id: &str) -> AwsResult<()> {
        ok_if_missing(self.aws.write(&self.region, SERVICE, "DeleteUsagePlan", id, |ctx| {
            ctx.res
                .usage_plans
                .remove(&(ctx.region.to_string(), id.to_string()))
                .map(drop)
                .ok_or_else(|| not_found("Usage Plan"))
        }))
    }

    async fn get_domain_name(&self, name: &str) -> AwsResult<Option<DomainInfo>> {
        self.aws.read(&self.region, SERVICE, "GetDomainName", name, |ctx| {
            Ok(ctx.res.domains.get(&(self.region.clone(), name.to_string())).map(|d| d.info.clone()))
        })
    }

    async fn get_domain_names(&self) -> AwsResult<Vec<DomainInfo>> {
        self.aws.read(&self.region, SERVICE, "GetDomainNames", "domain names", |ctx| {
            Ok(ctx.res.domains.iter().filter(|((r, _), _)| *r == self.region).map(|(_, d)| d.info.clone()).collect())
        })
    }

    async fn create_domain_name(&self, d: &DomainInfo) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "CreateDomainName", &d.name, |ctx| {
            let key = (ctx.region.to_string(), d.name.clone());
            if ctx.res.domains.contains_key(&key) {
                return Err(fail("ConflictException", 409, "The domain name you provided already exists."));
            }
            ctx.res.domains.insert(key, Domain { info: d.clone(), mappings: Vec::new() });
            Ok(())
        })
    }

    async fn update_domain_name(&self, name: &str, patches: &[Patch]) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "UpdateDomainName", name, |ctx| {
            let d = ctx
                .res
                .domains
                .get_mut(&(ctx.region.to_string(), name.to_string()))
                .ok_or_else(|| not_found("domain name"))?;
            for p in patches {
                match p.path.as_str() {
                    "/securityPolicy" => d.info.security_policy = value(p)?.to_string(),
                    other => return Err(bad(format!("Invalid patch path {other}"))),
                }
            }
            Ok(())
        })
    }

    async fn delete_domain_name(&self, name: &str) -> AwsResult<()> {
        ok_if_missing(self.aws.write(&self.region, SERVICE, "DeleteDomainName", name, |ctx| {
            ctx.res
                .domains
                .remove(&(ctx.region.to_string(), name.to_string()))
                .map(drop)
                .ok_or_else(|| not_found("domain name"))
        }))
    }

    async fn get_base_path_mappings(&self, domain: &str) -> AwsResult<Vec<BasePathMapping>> {
        self.aws.read(&self.region, SERVICE, "GetBasePathMappings", domain, |ctx| {
            Ok(ctx
                .res
                .domains
                .get(&(self.region.clone(), domain.to_string()))
                .map(|d| d.mappings.clone())
                .unwrap_or_default())
        })
    }

    async fn create_base_path_mapping(&self, domain: &str, m: &BasePathMapping) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "CreateBasePathMapping", domain, |ctx| {
            let a = api_of(ctx.res, ctx.region, &m.rest_api_id)?;
            if !a.stages.contains_key(&m.stage) {
                return Err(bad("Invalid stage identifier specified"));
            }
            let d = ctx
                .res
                .domains
                .get_mut(&(ctx.region.to_string(), domain.to_string()))
                .ok_or_else(|| not_found("domain name"))?;
            if d.mappings.iter().any(|x| x.base_path == m.base_path) {
                // The adapter takes AWS's ConflictException as success.
                return Ok(());
            }
            d.mappings.push(m.clone());
            Ok(())
        })
    }
}

fn api_of<'a>(res: &'a super::Resources, region: &str, id: &str) -> Result<&'a RestApi, Fail> {
    read_api(res, region, id)
}

// ----- helpers for tests -----

impl FakeAws {
    /// The REST APIs of the account, by id.
    pub fn rest_apis(&self) -> BTreeMap<String, RestApi> {
        self.world().now.rest_apis.clone()
    }

    /// The usage plans of the account.
    pub fn usage_plans(&self) -> Vec<UsagePlanInfo> {
        self.world().now.usage_plans.values().cloned().collect()
    }
}
