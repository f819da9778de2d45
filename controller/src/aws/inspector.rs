//! The Inspector (inspector2) operations a SecurityBaseline uses: Lambda standard and code
//! scanning enabled for the account, and its state read back. Never Disable.
use async_trait::async_trait;
use aws_sdk_inspector2::types::{FailedAccount, ResourceScanType};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult, ErrorKind};

/// Standard scanning of Lambda functions.
pub const LAMBDA: &str = "LAMBDA";
/// Code scanning of Lambda functions.
pub const LAMBDA_CODE: &str = "LAMBDA_CODE";
/// Inspector's state when scanning runs.
pub const ENABLED: &str = "ENABLED";
/// Inspector's error code when a delegated administrator manages the account.
pub const ACCESS_DENIED: &str = "ACCESS_DENIED";

/// The account's Lambda scanning as BatchGetAccountStatus reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AccountScanning {
    /// Each resource type's status (ENABLED, ENABLING, DISABLED, ...); `None` when absent.
    States { lambda: Option<String>, lambda_code: Option<String> },
    /// ACCESS_DENIED: an organization's delegated administrator manages Inspector here.
    ManagedByOrganization,
    /// Inspector reported nothing for the account.
    #[default]
    Unknown,
}

/// The Inspector calls lakeops makes; one AWS request each.
#[async_trait]
pub trait InspectorApi: Send + Sync {
    /// BatchGetAccountStatus for `account`.
    async fn account_status(&self, account: &str) -> AwsResult<AccountScanning>;
    /// Enable `resource_types` (e.g. LAMBDA, LAMBDA_CODE) for `account`. A failed account
    /// answer is an error carrying Inspector's code (ACCESS_DENIED as [`ErrorKind::AccessDenied`]).
    async fn enable(&self, account: &str, resource_types: &[&str]) -> AwsResult<()>;
}

/// [`InspectorApi`] over the AWS SDK.
pub struct SdkInspector {
    client: aws_sdk_inspector2::Client,
}

impl SdkInspector {
    /// Wraps a client.
    pub fn new(client: aws_sdk_inspector2::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("inspector2", operation, resource, err)
}

/// A failed account in an answer as an error: ACCESS_DENIED is a permission refusal (a
/// delegated administrator), anything else is reported with Inspector's code as invalid.
fn failed(operation: &'static str, f: &FailedAccount) -> AwsError {
    let code = f.error_code.as_str().to_string();
    AwsError {
        kind: if code == ACCESS_DENIED { ErrorKind::AccessDenied } else { ErrorKind::Invalid },
        service: "inspector2",
        operation,
        resource: f.account_id.clone(),
        message: format!("{code}: {}", f.error_message),
        code: Some(code),
    }
}

#[async_trait]
impl InspectorApi for SdkInspector {
    async fn account_status(&self, account: &str) -> AwsResult<AccountScanning> {
        const OP: &str = "BatchGetAccountStatus";
        let out = self
            .client
            .batch_get_account_status()
            .account_ids(account)
            .send()
            .await
            .map_err(|e| sdk_error(OP, account, &e))?;
        if let Some(f) = out.failed_accounts().iter().find(|f| f.account_id == account) {
            return if f.error_code.as_str() == ACCESS_DENIED {
                Ok(AccountScanning::ManagedByOrganization)
            } else {
                Err(failed(OP, f))
            };
        }
        let Some(state) = out.accounts.iter().find(|a| a.account_id == account) else {
            return Ok(AccountScanning::Unknown);
        };
        let resources = state.resource_state.as_ref();
        let status = |s: Option<&aws_sdk_inspector2::types::State>| s.map(|s| s.status.as_str().to_string());
        Ok(AccountScanning::States {
            lambda: status(resources.and_then(|r| r.lambda.as_ref())),
            lambda_code: status(resources.and_then(|r| r.lambda_code.as_ref())),
        })
    }

    async fn enable(&self, account: &str, resource_types: &[&str]) -> AwsResult<()> {
        const OP: &str = "Enable";
        let out = self
            .client
            .enable()
            .account_ids(account)
            .set_resource_types(Some(resource_types.iter().map(|t| ResourceScanType::from(*t)).collect()))
            .send()
            .await
            .map_err(|e| sdk_error(OP, account, &e))?;
        match out.failed_accounts().iter().find(|f| f.account_id == account) {
            Some(f) => Err(failed(OP, f)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_inspector2::operation::batch_get_account_status::BatchGetAccountStatusOutput;
    use aws_sdk_inspector2::operation::enable::EnableOutput;
    use aws_sdk_inspector2::types::{AccountState, ErrorCode, ResourceState, State, Status};
    use aws_smithy_mocks::mock;

    use super::*;

    fn client(rules: &[aws_smithy_mocks::Rule]) -> SdkInspector {
        SdkInspector::new(aws_sdk_inspector2::Client::from_conf(
            crate::aws::mocked_config!(aws_sdk_inspector2, rules).build(),
        ))
    }

    fn state(s: Status) -> State {
        State::builder()
            .status(s)
            .error_code(ErrorCode::AlreadyEnabled)
            .error_message("")
            .build()
            .expect("mocked answer")
    }

    fn denied() -> FailedAccount {
        FailedAccount::builder()
            .account_id("123456789012")
            .error_code(ErrorCode::AccessDenied)
            .error_message("managed by the delegated administrator")
            .build()
            .expect("mocked answer")
    }

    #[tokio::test]
    async fn enable_names_the_account_and_both_lambda_types() {
        let enable = mock!(aws_sdk_inspector2::Client::enable)
            .match_requests(|r| {
                r.account_ids() == ["123456789012"]
                    && r.resource_types() == [ResourceScanType::Lambda, ResourceScanType::LambdaCode]
            })
            .then_output(|| EnableOutput::builder().set_accounts(Some(vec![])).build().expect("mocked answer"));
        client(&[enable]).enable("123456789012", &[LAMBDA, LAMBDA_CODE]).await.expect("mocked answer");
    }

    #[tokio::test]
    async fn a_delegated_administrator_is_reported_not_failed() {
        let status = mock!(aws_sdk_inspector2::Client::batch_get_account_status).then_output(|| {
            BatchGetAccountStatusOutput::builder()
                .set_accounts(Some(vec![]))
                .failed_accounts(denied())
                .build()
                .expect("mocked answer")
        });
        let enable = mock!(aws_sdk_inspector2::Client::enable).then_output(|| {
            EnableOutput::builder().set_accounts(Some(vec![])).failed_accounts(denied()).build().expect("mocked answer")
        });
        let inspector = client(&[status, enable]);
        assert_eq!(
            inspector.account_status("123456789012").await.expect("mocked answer"),
            AccountScanning::ManagedByOrganization
        );
        let err = inspector.enable("123456789012", &[LAMBDA]).await.expect_err("an error");
        assert_eq!(err.kind, ErrorKind::AccessDenied, "{err}");
    }

    #[tokio::test]
    async fn states_are_read_per_resource_type() {
        let status = mock!(aws_sdk_inspector2::Client::batch_get_account_status).then_output(|| {
            BatchGetAccountStatusOutput::builder()
                .accounts(
                    AccountState::builder()
                        .account_id("123456789012")
                        .resource_state(
                            ResourceState::builder()
                                .lambda(state(Status::Enabled))
                                .lambda_code(state(Status::Enabling))
                                .build(),
                        )
                        .build()
                        .expect("mocked answer"),
                )
                .build()
                .expect("mocked answer")
        });
        assert_eq!(
            client(&[status]).account_status("123456789012").await.expect("mocked answer"),
            AccountScanning::States { lambda: Some("ENABLED".into()), lambda_code: Some("ENABLING".into()) }
        );
    }
}
