//! The Lambda operations lakeops uses. Every call but GetFunction (which has its own,
//! larger quota) first waits on the shared control-plane [`RateLimiter`].
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_lambda::types::{
    self as sdk, DeadLetterConfig, Environment, FunctionCode, TracingConfig, TracingMode, VpcConfig,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};
use super::ratelimit::RateLimiter;

/// The settings `UpdateFunctionConfiguration` changes; compared as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionConfig {
    pub runtime: String,
    pub handler: String,
    pub role_arn: String,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub environment: BTreeMap<String, String>,
    /// The key that encrypts the environment at rest.
    pub kms_key_arn: Option<String>,
    /// X-Ray tracing mode `Active`.
    pub tracing_active: bool,
    pub dead_letter_target: Option<String>,
    /// Sorted.
    pub subnet_ids: Vec<String>,
    /// Sorted.
    pub security_group_ids: Vec<String>,
}

/// Where the deployment package is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeLocation {
    pub bucket: String,
    pub key: String,
    pub version: Option<String>,
}

/// What GetFunction tells (one request).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionInfo {
    pub arn: String,
    pub config: FunctionConfig,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// `Pending`, `Active`, `Inactive`, `Failed`.
    pub state: Option<String>,
    /// `Successful`, `Failed`, `InProgress`.
    pub last_update_status: Option<String>,
    pub reserved_concurrency: Option<i32>,
    pub tags: BTreeMap<String, String>,
}

/// A function to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewFunction {
    pub name: String,
    pub config: FunctionConfig,
    pub architecture: String,
    pub code: CodeLocation,
    pub code_signing_config_arn: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// An invoke permission in the function's resource policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvokePermission {
    pub statement_id: String,
    /// A service principal, e.g. `s3.amazonaws.com`.
    pub principal: String,
    pub source_arn: String,
    pub source_account: String,
}

/// The Lambda calls lakeops makes; one AWS request each.
#[async_trait]
pub trait LambdaApi: Send + Sync {
    /// GetFunction. `Ok(None)` when there is no such function.
    async fn get_function(&self, name: &str) -> AwsResult<Option<FunctionInfo>>;
    /// CreateFunction (not published); returns the ARN.
    async fn create_function(&self, function: &NewFunction) -> AwsResult<String>;
    /// UpdateFunctionConfiguration.
    async fn update_configuration(&self, name: &str, config: &FunctionConfig) -> AwsResult<()>;
    /// UpdateFunctionCode (not published), also setting the architecture.
    async fn update_code(&self, name: &str, code: &CodeLocation, architecture: &str) -> AwsResult<()>;
    /// PutFunctionConcurrency, or DeleteFunctionConcurrency for `None`.
    async fn set_reserved_concurrency(&self, name: &str, reserved: Option<i32>) -> AwsResult<()>;
    /// GetFunctionCodeSigningConfig: the config ARN, `None` when none is attached.
    async fn get_code_signing_config(&self, name: &str) -> AwsResult<Option<String>>;
    /// PutFunctionCodeSigningConfig, or DeleteFunctionCodeSigningConfig for `None`.
    async fn set_code_signing_config(&self, name: &str, arn: Option<&str>) -> AwsResult<()>;
    /// GetPolicy: the resource policy JSON, `None` when the function has none.
    async fn get_policy(&self, name: &str) -> AwsResult<Option<String>>;
    /// AddPermission for `lambda:InvokeFunction`.
    async fn add_permission(&self, name: &str, permission: &InvokePermission) -> AwsResult<()>;
    /// RemovePermission. A missing statement is success.
    async fn remove_permission(&self, name: &str, statement_id: &str) -> AwsResult<()>;
    /// TagResource.
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
    /// DeleteFunction. A missing function is success.
    async fn delete_function(&self, name: &str) -> AwsResult<()>;
}

/// [`LambdaApi`] on the AWS SDK.
pub struct SdkLambda {
    client: aws_sdk_lambda::Client,
    limiter: Arc<RateLimiter>,
}

impl SdkLambda {
    pub fn new(client: aws_sdk_lambda::Client, limiter: Arc<RateLimiter>) -> Self {
        Self { client, limiter }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut e = super::error::from_sdk("lambda", operation, resource, err);
    e.message = redact_environment(&e.message);
    e
}

/// Lambda's answer to an oversized environment quotes it ("... String measured: {...}");
/// that must not reach conditions, events or logs, so the quote is cut.
fn redact_environment(message: &str) -> String {
    match message.find("String measured") {
        Some(at) => format!("{}(the environment it quotes is not shown)", &message[..at]),
        None => message.to_string(),
    }
}

fn not_found_is_none<T>(result: AwsResult<T>) -> AwsResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn config_from(c: &sdk::FunctionConfiguration) -> FunctionConfig {
    let vpc = c.vpc_config();
    FunctionConfig {
        runtime: c.runtime().map(|r| r.as_str().to_string()).unwrap_or_default(),
        handler: c.handler().unwrap_or_default().to_string(),
        role_arn: c.role().unwrap_or_default().to_string(),
        memory_mb: c.memory_size().unwrap_or_default(),
        timeout_seconds: c.timeout().unwrap_or_default(),
        environment: c
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        kms_key_arn: c.kms_key_arn().filter(|k| !k.is_empty()).map(str::to_string),
        tracing_active: c.tracing_config().and_then(|t| t.mode()) == Some(&TracingMode::Active),
        dead_letter_target: c.dead_letter_config().and_then(|d| d.target_arn()).map(str::to_string),
        subnet_ids: sorted(vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default()),
        security_group_ids: sorted(vpc.map(|v| v.security_group_ids().to_vec()).unwrap_or_default()),
    }
}

fn environment(config: &FunctionConfig) -> Environment {
    let vars: HashMap<String, String> = config.environment.clone().into_iter().collect();
    Environment::builder().set_variables(Some(vars)).build()
}

fn tracing(config: &FunctionConfig) -> TracingConfig {
    let mode = if config.tracing_active { TracingMode::Active } else { TracingMode::PassThrough };
    TracingConfig::builder().mode(mode).build()
}

fn dead_letter(config: &FunctionConfig) -> DeadLetterConfig {
    // An empty target removes the dead-letter configuration.
    DeadLetterConfig::builder().target_arn(config.dead_letter_target.clone().unwrap_or_default()).build()
}

fn vpc(config: &FunctionConfig) -> VpcConfig {
    // Empty lists detach the function from a VPC.
    VpcConfig::builder()
        .set_subnet_ids(Some(config.subnet_ids.clone()))
        .set_security_group_ids(Some(config.security_group_ids.clone()))
        .build()
}

#[async_trait]
impl LambdaApi for SdkLambda {
    async fn get_function(&self, name: &str) -> AwsResult<Option<FunctionInfo>> {
        const OP: &str = "GetFunction";
        let out = self.client.get_function().function_name(name).send().await;
        let Some(out) = not_found_is_none(out.map_err(|e| sdk_error(OP, name, &e)))? else { return Ok(None) };
        let Some(c) = out.configuration() else {
            return Err(AwsError::classify("lambda", OP, name, None, Some("the response has no Configuration"), None));
        };
        Ok(Some(FunctionInfo {
            arn: c.function_arn().unwrap_or_default().to_string(),
            config: config_from(c),
            architecture: c.architectures().first().map_or("x86_64", |a| a.as_str()).to_string(),
            state: c.state().map(|s| s.as_str().to_string()),
            last_update_status: c.last_update_status().map(|s| s.as_str().to_string()),
            reserved_concurrency: out.concurrency().and_then(|c| c.reserved_concurrent_executions()),
            tags: out.tags().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default(),
        }))
    }

    async fn create_function(&self, f: &NewFunction) -> AwsResult<String> {
        const OP: &str = "CreateFunction";
        self.limiter.acquire().await;
        let c = &f.config;
        let code = FunctionCode::builder()
            .s3_bucket(&f.code.bucket)
            .s3_key(&f.code.key)
            .set_s3_object_version(f.code.version.clone())
            .build();
        let out = self
            .client
            .create_function()
            .function_name(&f.name)
            .runtime(sdk::Runtime::from(c.runtime.as_str()))
            .role(&c.role_arn)
            .handler(&c.handler)
            .code(code)
            .memory_size(c.memory_mb)
            .timeout(c.timeout_seconds)
            .architectures(sdk::Architecture::from(f.architecture.as_str()))
            .environment(environment(c))
            .set_kms_key_arn(c.kms_key_arn.clone())
            .tracing_config(tracing(c))
            .set_dead_letter_config(c.dead_letter_target.is_some().then(|| dead_letter(c)))
            .set_vpc_config((!c.subnet_ids.is_empty()).then(|| vpc(c)))
            .set_code_signing_config_arn(f.code_signing_config_arn.clone())
            .set_tags(Some(f.tags.clone().into_iter().collect()))
            .publish(false)
            .send()
            .await
            .map_err(|e| sdk_error(OP, &f.name, &e))?;
        out.function_arn.ok_or_else(|| {
            AwsError::classify("lambda", OP, &f.name, None, Some("the response has no FunctionArn"), None)
        })
    }

    async fn update_configuration(&self, name: &str, c: &FunctionConfig) -> AwsResult<()> {
        self.limiter.acquire().await;
        self.client
            .update_function_configuration()
            .function_name(name)
            .runtime(sdk::Runtime::from(c.runtime.as_str()))
            .role(&c.role_arn)
            .handler(&c.handler)
            .memory_size(c.memory_mb)
            .timeout(c.timeout_seconds)
            .environment(environment(c))
            // An empty ARN returns the environment to Lambda's own key.
            .kms_key_arn(c.kms_key_arn.clone().unwrap_or_default())
            .tracing_config(tracing(c))
            .dead_letter_config(dead_letter(c))
            .vpc_config(vpc(c))
            .send()
            .await
            .map_err(|e| sdk_error("UpdateFunctionConfiguration", name, &e))?;
        Ok(())
    }

    async fn update_code(&self, name: &str, code: &CodeLocation, architecture: &str) -> AwsResult<()> {
        self.limiter.acquire().await;
        self.client
            .update_function_code()
            .function_name(name)
            .s3_bucket(&code.bucket)
            .s3_key(&code.key)
            .set_s3_object_version(code.version.clone())
            .architectures(sdk::Architecture::from(architecture))
            .publish(false)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateFunctionCode", name, &e))?;
        Ok(())
    }

    async fn set_reserved_concurrency(&self, name: &str, reserved: Option<i32>) -> AwsResult<()> {
        self.limiter.acquire().await;
        match reserved {
            Some(n) => {
                self.client
                    .put_function_concurrency()
                    .function_name(name)
                    .reserved_concurrent_executions(n)
                    .send()
                    .await
                    .map_err(|e| sdk_error("PutFunctionConcurrency", name, &e))?;
            }
            None => {
                self.client
                    .delete_function_concurrency()
                    .function_name(name)
                    .send()
                    .await
                    .map_err(|e| sdk_error("DeleteFunctionConcurrency", name, &e))?;
            }
        }
        Ok(())
    }

    async fn get_code_signing_config(&self, name: &str) -> AwsResult<Option<String>> {
        self.limiter.acquire().await;
        let out = self
            .client
            .get_function_code_signing_config()
            .function_name(name)
            .send()
            .await
            .map_err(|e| sdk_error("GetFunctionCodeSigningConfig", name, &e))?;
        Ok(Some(out.code_signing_config_arn).filter(|a| !a.is_empty()))
    }

    async fn set_code_signing_config(&self, name: &str, arn: Option<&str>) -> AwsResult<()> {
        self.limiter.acquire().await;
        match arn {
            Some(arn) => {
                self.client
                    .put_function_code_signing_config()
                    .function_name(name)
                    .code_signing_config_arn(arn)
                    .send()
                    .await
                    .map_err(|e| sdk_error("PutFunctionCodeSigningConfig", name, &e))?;
            }
            None => {
                self.client
                    .delete_function_code_signing_config()
                    .function_name(name)
                    .send()
                    .await
                    .map_err(|e| sdk_error("DeleteFunctionCodeSigningConfig", name, &e))?;
            }
        }
        Ok(())
    }

    async fn get_policy(&self, name: &str) -> AwsResult<Option<String>> {
        self.limiter.acquire().await;
        let out = self.client.get_policy().function_name(name).send().await;
        Ok(not_found_is_none(out.map_err(|e| sdk_error("GetPolicy", name, &e)))?.and_then(|o| o.policy))
    }

    async fn add_permission(&self, name: &str, p: &InvokePermission) -> AwsResult<()> {
        self.limiter.acquire().await;
        self.client
            .add_permission()
            .function_name(name)
            .statement_id(&p.statement_id)
            .action("lambda:InvokeFunction")
            .principal(&p.principal)
            .source_arn(&p.source_arn)
            .source_account(&p.source_account)
            .send()
            .await
            .map_err(|e| sdk_error("AddPermission", name, &e))?;
        Ok(())
    }

    async fn remove_permission(&self, name: &str, statement_id: &str) -> AwsResult<()> {
        self.limiter.acquire().await;
        let out = self.client.remove_permission().function_name(name).statement_id(statement_id).send().await;
        not_found_is_none(out.map_err(|e| sdk_error("RemovePermission", name, &e))).map(|_| ())
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.limiter.acquire().await;
        self.client
            .tag_resource()
            .resource(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| sdk_error("TagResource", arn, &e))?;
        Ok(())
    }

    async fn delete_function(&self, name: &str) -> AwsResult<()> {
        self.limiter.acquire().await;
        let out = self.client.delete_function().function_name(name).send().await;
        not_found_is_none(out.map_err(|e| sdk_error("DeleteFunction", name, &e))).map(|_| ())
    }
}

#[cfg(test)]
mod tests {

    use aws_sdk_lambda::operation::create_function::CreateFunctionOutput;
    use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
    use aws_sdk_lambda::types::{Concurrency, EnvironmentResponse, TracingConfigResponse, VpcConfigResponse};
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::aws::error::ErrorKind;

    fn lambda(rules: &[&Rule]) -> SdkLambda {
        SdkLambda::new(
            aws_sdk_lambda::Client::from_conf(crate::aws::mocked_config!(aws_sdk_lambda, rules).build()),
            Arc::new(RateLimiter::new(1000, 1000)),
        )
    }

    /// An error response as Lambda sends it (restJson1).
    fn json_error(status: u16, code: &'static str) -> impl Fn() -> HttpResponse + Send + Sync + 'static {
        move || {
            let body = format!(r#"{{"Type":"User","message":"{code} happened"}}"#);
            let mut response = HttpResponse::new(StatusCode::try_from(status).expect("status"), SdkBody::from(body));
            response.headers_mut().insert("x-amzn-errortype", code);
            response.headers_mut().insert("content-type", "application/json");
            response
        }
    }

    fn config() -> FunctionConfig {
        FunctionConfig {
            runtime: "python3.12".into(),
            handler: "app.handler".into(),
            role_arn: "arn:aws:iam::123456789012:role/lakeops/etl".into(),
            memory_mb: 512,
            timeout_seconds: 60,
            environment: BTreeMap::from([("MODE".into(), "batch".into())]),
            kms_key_arn: Some("arn:aws:kms:eu-west-1:123456789012:key/k1".into()),
            tracing_active: true,
            dead_letter_target: Some("arn:aws:sqs:eu-west-1:123456789012:dlq".into()),
            subnet_ids: vec![],
            security_group_ids: vec![],
        }
    }

    #[test]
    fn an_oversized_environment_is_not_quoted_back() {
        let m = "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {\"DB_PASSWORD\":\"hunter2\"}";
        let r = redact_environment(m);
        assert!(!r.contains("hunter2") && r.ends_with("(the environment it quotes is not shown)"), "{r}");
        assert_eq!(redact_environment("other"), "other");
    }

    #[tokio::test]
    async fn a_missing_function_is_none_and_throttling_is_retryable() {
        let missing = mock!(aws_sdk_lambda::Client::get_function)
            .then_http_response(json_error(404, "ResourceNotFoundException"));
        let throttled =
            mock!(aws_sdk_lambda::Client::get_function).then_http_response(json_error(429, "TooManyRequestsException"));
        let l = lambda(&[&missing, &throttled]);

        assert_eq!(l.get_function("f").await, Ok(None));
        let err = l.get_function("f").await.expect_err("throttled");
        assert_eq!((err.kind, err.operation), (ErrorKind::Retryable, "GetFunction"));
    }

    #[tokio::test]
    async fn get_function_reads_configuration_concurrency_and_tags_in_one_call() {
        let rule = mock!(aws_sdk_lambda::Client::get_function).then_output(|| {
            let c = sdk::FunctionConfiguration::builder()
                .function_arn("arn:aws:lambda:eu-west-1:123456789012:function:f")
                .runtime(sdk::Runtime::Python312)
                .handler("app.handler")
                .role("arn:aws:iam::123456789012:role/lakeops/etl")
                .memory_size(512)
                .timeout(60)
                .environment(EnvironmentResponse::builder().variables("MODE", "batch").build())
                .kms_key_arn("arn:aws:kms:eu-west-1:123456789012:key/k1")
                .tracing_config(TracingConfigResponse::builder().mode(TracingMode::Active).build())
                .dead_letter_config(
                    DeadLetterConfig::builder().target_arn("arn:aws:sqs:eu-west-1:123456789012:dlq").build(),
                )
                .vpc_config(VpcConfigResponse::builder().build())
                .architectures(sdk::Architecture::Arm64)
                .last_update_status(sdk::LastUpdateStatus::Successful)
                .build();
            GetFunctionOutput::builder()
                .configuration(c)
                .concurrency(Concurrency::builder().reserved_concurrent_executions(5).build())
                .tags("lakeops.dev/owner", "ns/etl")
                .build()
        });

        let f = lambda(&[&rule]).get_function("f").await.expect("read").expect("exists");

        assert_eq!(f.config, config());
        assert_eq!((f.architecture.as_str(), f.reserved_concurrency), ("arm64", Some(5)));
        assert_eq!(f.last_update_status.as_deref(), Some("Successful"));
        assert_eq!(f.tags.get("lakeops.dev/owner").map(String::as_str), Some("ns/etl"));
    }

    #[tokio::test]
    async fn create_sends_code_from_s3_the_lake_key_tracing_and_code_signing() {
        let rule = mock!(aws_sdk_lambda::Client::create_function)
            .match_requests(|r| {
                let code = r.code().expect("code");
                code.s3_bucket() == Some("artifacts")
                    && code.s3_object_version() == Some("v1")
                    && r.kms_key_arn() == Some("arn:aws:kms:eu-west-1:123456789012:key/k1")
                    && r.tracing_config().and_then(|t| t.mode()) == Some(&TracingMode::Active)
                    && r.code_signing_config_arn()
                        == Some("arn:aws:lambda:eu-west-1:123456789012:code-signing-config:csc-1")
                    && r.vpc_config().is_none()
                    && r.dead_letter_config().and_then(|d| d.target_arn())
                        == Some("arn:aws:sqs:eu-west-1:123456789012:dlq")
                    && r.publish() == Some(false)
            })
            .then_output(|| CreateFunctionOutput::builder().function_arn("arn:f").build());
        let f = NewFunction {
            name: "f".into(),
            config: config(),
            architecture: "x86_64".into(),
            code: CodeLocation { bucket: "artifacts".into(), key: "etl.zip".into(), version: Some("v1".into()) },
            code_signing_config_arn: Some("arn:aws:lambda:eu-west-1:123456789012:code-signing-config:csc-1".into()),
            tags: BTreeMap::new(),
        };

        assert_eq!(lambda(&[&rule]).create_function(&f).await, Ok("arn:f".to_string()));
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn role_not_yet_assumable_is_an_invalid_request_the_engine_can_recognise() {
        let rule = mock!(aws_sdk_lambda::Client::create_function)
            .then_http_response(json_error(400, "InvalidParameterValueException"));
        let f = NewFunction {
            name: "f".into(),
            config: config(),
            architecture: "x86_64".into(),
            code: CodeLocation::default(),
            code_signing_config_arn: None,
            tags: BTreeMap::new(),
        };

        let err = lambda(&[&rule]).create_function(&f).await.expect_err("refused");

        assert_eq!(err.kind, ErrorKind::Invalid);
        assert_eq!(err.code.as_deref(), Some("InvalidParameterValueException"));
    }
}
