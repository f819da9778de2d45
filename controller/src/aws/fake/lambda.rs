//! Lambda in the fake account: functions with configuration, code, state and update status,
//! reserved concurrency, code signing, invoke permissions and tags.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use super::{Fail, FakeAws, Resources, fail, merge_tags, none_if_missing, ok_if_missing};
use crate::aws::error::AwsResult;
use crate::aws::lambda::{CodeLocation, FunctionConfig, FunctionInfo, InvokePermission, LambdaApi, NewFunction};

const SERVICE: &str = "lambda";

/// A function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub region: String,
    pub arn: String,
    pub config: FunctionConfig,
    pub architecture: String,
    pub code: CodeLocation,
    /// How many times UpdateFunctionCode replaced the code.
    pub code_updates: usize,
    pub code_signing_config_arn: Option<String>,
    pub reserved_concurrency: Option<i32>,
    pub permissions: Vec<InvokePermission>,
    pub tags: BTreeMap<String, String>,
    /// State `Pending` until this call index, `Active` after.
    pub pending_until: usize,
    /// LastUpdateStatus `InProgress` until this call index, `Successful` after; `None`
    /// until the first update.
    pub updating_until: Option<usize>,
}

impl Function {
    /// `function` as CreateFunction makes it in `region`, already Active.
    fn new(region: &str, account: &str, function: &NewFunction) -> Self {
        Self {
            name: function.name.clone(),
            region: region.to_string(),
            arn: format!("arn:aws:lambda:{region}:{account}:function:{}", function.name),
            config: sorted(&function.config),
            architecture: function.architecture.clone(),
            code: function.code.clone(),
            code_signing_config_arn: function.code_signing_config_arn.clone(),
            tags: function.tags.clone(),
            ..Self::default()
        }
    }

    fn busy(&self, index: usize) -> Option<&'static str> {
        if index < self.pending_until {
            Some("Pending")
        } else if self.updating_until.is_some_and(|until| index < until) {
            Some("InProgress")
        } else {
            None
        }
    }

    fn info(&self, index: usize) -> FunctionInfo {
        FunctionInfo {
            arn: self.arn.clone(),
            config: self.config.clone(),
            architecture: self.architecture.clone(),
            state: Some(if index < self.pending_until { "Pending" } else { "Active" }.to_string()),
            last_update_status: self
                .updating_until
                .map(|until| if index < until { "InProgress" } else { "Successful" }.to_string()),
            reserved_concurrency: self.reserved_concurrency,
            tags: self.tags.clone(),
        }
    }

    /// The resource policy as GetPolicy returns it; `None` without statements.
    pub fn policy(&self) -> Option<String> {
        let statements: Vec<_> = self
            .permissions
            .iter()
            .map(|p| {
                json!({
                    "Sid": p.statement_id,
                    "Effect": "Allow",
                    "Principal": { "Service": p.principal },
                    "Action": "lambda:InvokeFunction",
                    "Resource": self.arn,
                    "Condition": {
                        "StringEquals": { "AWS:SourceAccount": p.source_account },
                        "ArnLike": { "AWS:SourceArn": p.source_arn },
                    },
                })
            })
            .collect();
        (!statements.is_empty())
            .then(|| json!({ "Version": "2012-10-17", "Id": "default", "Statement": statements }).to_string())
    }
}

/// [`LambdaApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeLambda {
    aws: Arc<FakeAws>,
    region: String,
}

fn not_found(name: &str) -> Fail {
    fail("ResourceNotFoundException", 404, format!("Function not found: {name}"))
}

fn conflict(name: &str, busy: &str) -> Fail {
    let message = match busy {
        "Pending" => format!(
            "The operation cannot be performed at this time. The function {name} is currently in the following state: Pending"
        ),
        _ => format!("The operation cannot be performed at this time. An update is in progress for resource: {name}"),
    };
    fail("ResourceConflictException", 409, message)
}

/// What Lambda checks in a configuration: limits, and a role it can assume.
fn check_config(res: &Resources, config: &FunctionConfig) -> Result<(), Fail> {
    if !(128..=10_240).contains(&config.memory_mb) {
        return Err(fail("InvalidParameterValueException", 400, "MemorySize must be between 128 and 10240"));
    }
    if !(1..=900).contains(&config.timeout_seconds) {
        return Err(fail("InvalidParameterValueException", 400, "Timeout must be between 1 and 900"));
    }
    let assumable =
        res.roles.values().any(|r| r.arn == config.role_arn && r.assume_role_policy.contains("lambda.amazonaws.com"));
    if !assumable {
        return Err(fail(
            "InvalidParameterValueException",
            400,
            "The role defined for the function cannot be assumed by Lambda.",
        ));
    }
    Ok(())
}

fn sorted(config: &FunctionConfig) -> FunctionConfig {
    let mut config = config.clone();
    config.subnet_ids.sort();
    config.security_group_ids.sort();
    config
}

impl FakeLambda {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }

    fn id(&self, name: &str) -> (String, String) {
        (self.region.clone(), name.to_string())
    }

    fn get<T>(&self, op: &'static str, name: &str, read: impl FnOnce(&Function, usize) -> T) -> AwsResult<T> {
        self.aws.read(&self.region, SERVICE, op, name, |ctx| {
            ctx.res.functions.get(&self.id(name)).map(|f| read(f, ctx.index)).ok_or_else(|| not_found(name))
        })
    }

    /// A write to function `name`; `update` ones are refused while the function is busy and
    /// then mark it `InProgress`.
    fn put<T>(
        &self,
        op: &'static str,
        name: &str,
        update: bool,
        change: impl FnOnce(&mut Function, &Resources) -> Result<T, Fail>,
    ) -> AwsResult<T> {
        self.aws.write(&self.region, SERVICE, op, name, |ctx| {
            let id = self.id(name);
            let mut f = ctx.res.functions.remove(&id).ok_or_else(|| not_found(name))?;
            let busy = if update { f.busy(ctx.index) } else { None };
            let out = match busy {
                Some(busy) => Err(conflict(name, busy)),
                None => change(&mut f, ctx.res),
            };
            if update && out.is_ok() {
                f.updating_until = Some(ctx.settles_at);
            }
            ctx.res.functions.insert(id, f);
            out
        })
    }
}

#[async_trait]
impl LambdaApi for FakeLambda {
    async fn get_function(&self, name: &str) -> AwsResult<Option<FunctionInfo>> {
        none_if_missing(self.get("GetFunction", name, |f, index| f.info(index)))
    }

    async fn create_function(&self, function: &NewFunction) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "CreateFunction", &function.name, |ctx| {
            let id = (ctx.region.to_string(), function.name.clone());
            if ctx.res.functions.contains_key(&id) {
                return Err(fail(
                    "ResourceConflictException",
                    409,
                    format!("Function already exist: {}", function.name),
                ));
            }
            check_config(ctx.res, &function.config)?;
            let created =
                Function { pending_until: ctx.settles_at, ..Function::new(ctx.region, ctx.account, function) };
            let arn = created.arn.clone();
            ctx.res.functions.insert(id, created);
            Ok(arn)
        })
    }

    async fn update_configuration(&self, name: &str, config: &FunctionConfig) -> AwsResult<()> {
        self.put("UpdateFunctionConfiguration", name, true, |f, res| {
            check_config(res, config)?;
            f.config = sorted(config);
            Ok(())
        })
    }

    async fn update_code(&self, name: &str, code: &CodeLocation, architecture: &str) -> AwsResult<()> {
        self.put("UpdateFunctionCode", name, true, |f, _| {
            f.code = code.clone();
            f.architecture = architecture.to_string();
            f.code_updates += 1;
            Ok(())
        })
    }

    async fn set_reserved_concurrency(&self, name: &str, reserved: Option<i32>) -> AwsResult<()> {
        let op = if reserved.is_some() { "PutFunctionConcurrency" } else { "DeleteFunctionConcurrency" };
        self.put(op, name, false, |f, _| {
            if reserved.is_some_and(|n| n < 0) {
                return Err(fail("InvalidParameterValueException", 400, "ReservedConcurrentExecutions must be >= 0"));
            }
            f.reserved_concurrency = reserved;
            Ok(())
        })
    }

    async fn get_code_signing_config(&self, name: &str) -> AwsResult<Option<String>> {
        self.get("GetFunctionCodeSigningConfig", name, |f, _| f.code_signing_config_arn.clone())
    }

    async fn set_code_signing_config(&self, name: &str, arn: Option<&str>) -> AwsResult<()> {
        let op = if arn.is_some() { "PutFunctionCodeSigningConfig" } else { "DeleteFunctionCodeSigningConfig" };
        self.put(op, name, false, |f, _| {
            f.code_signing_config_arn = arn.map(str::to_string);
            Ok(())
        })
    }

    async fn get_policy(&self, name: &str) -> AwsResult<Option<String>> {
        let policy = self.aws.read(&self.region, SERVICE, "GetPolicy", name, |ctx| {
            let f = ctx.res.functions.get(&self.id(name)).ok_or_else(|| not_found(name))?;
            f.policy()
                .ok_or_else(|| fail("ResourceNotFoundException", 404, "The resource you requested does not exist."))
        });
        none_if_missing(policy)
    }

    async fn add_permission(&self, name: &str, permission: &InvokePermission) -> AwsResult<()> {
        self.put("AddPermission", name, false, |f, _| {
            if f.permissions.iter().any(|p| p.statement_id == permission.statement_id) {
                return Err(fail(
                    "ResourceConflictException",
                    409,
                    format!("The statement id ({}) provided already exists. Please provide a new statement id, or remove the existing statement.", permission.statement_id),
                ));
            }
            f.permissions.push(permission.clone());
            Ok(())
        })
    }

    async fn remove_permission(&self, name: &str, statement_id: &str) -> AwsResult<()> {
        ok_if_missing(self.put("RemovePermission", name, false, |f, _| {
            let before = f.permissions.len();
            f.permissions.retain(|p| p.statement_id != statement_id);
            if f.permissions.len() == before {
                return Err(fail(
                    "ResourceNotFoundException",
                    404,
                    format!("Statement {statement_id} is not found in resource policy."),
                ));
            }
            Ok(())
        }))
    }

    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "TagResource", arn, |ctx| {
            let f = ctx.res.functions.values_mut().find(|f| f.region == self.region && f.arn == arn);
            f.map(|f| merge_tags(&mut f.tags, tags)).ok_or_else(|| not_found(arn))
        })
    }

    async fn delete_function(&self, name: &str) -> AwsResult<()> {
        ok_if_missing(self.aws.write(&self.region, SERVICE, "DeleteFunction", name, |ctx| {
            ctx.res.functions.remove(&self.id(name)).map(drop).ok_or_else(|| not_found(name))
        }))
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// An Active function in `region` as CreateFunction makes it (the role is not checked).
    pub fn with_function(&self, region: &str, function: &NewFunction) -> String {
        let created = Function { updating_until: Some(0), ..Function::new(region, &self.account, function) };
        let arn = created.arn.clone();
        self.edit(|r| r.functions.insert((region.to_string(), function.name.clone()), created));
        arn
    }

    /// Changes one function; `None` when there is no such function.
    pub fn edit_function<R>(&self, region: &str, name: &str, change: impl FnOnce(&mut Function) -> R) -> Option<R> {
        self.edit(|r| r.functions.get_mut(&(region.to_string(), name.to_string())).map(change))
    }

    /// A copy of one function as it is now.
    pub fn function(&self, region: &str, name: &str) -> Option<Function> {
        self.world().now.functions.get(&(region.to_string(), name.to_string())).cloned()
    }
}
