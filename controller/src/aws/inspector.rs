//! The Inspector (inspector2) operations a SecurityBaseline uses: Lambda standard and code
//! scanning enabled for the account, and its state read back. Never Disable.
use async_trait::async_trait;
use aws_sdk_inspector2::types::{
    FailedAccount, FilterAction, FilterCriteria, ResourceScanType, SortCriteria, SortField, SortOrder,
    StringComparison, StringFilter,
};
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

/// One active finding, as an EtlFunction's status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL or UNTRIAGED.
    pub severity: String,
    /// The CVE (or Inspector's id) of a package finding, else the finding's title.
    pub vulnerability: String,
    /// `name@version` of each vulnerable package.
    pub packages: Vec<String>,
}

/// The answer of the findings read: the first page, worst first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub findings: Vec<Finding>,
    /// True when Inspector had more than one page (counts are then at least these).
    pub truncated: bool,
}

/// A suppression filter (action SUPPRESS) as lakeops writes and reads it: one
/// vulnerability, optionally limited to some functions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuppressionFilter {
    pub name: String,
    pub vulnerability_id: String,
    /// Lambda function names; empty: every function.
    pub functions: Vec<String>,
    pub reason: String,
    pub description: String,
}

/// A filter that exists, with its ARN and tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedFilter {
    pub arn: String,
    pub filter: SuppressionFilter,
    pub tags: std::collections::BTreeMap<String, String>,
}

/// How many findings one read asks for (one page, worst first: the budget is one request).
pub const FINDINGS_PAGE: i32 = 100;

/// The Inspector calls lakeops makes; one AWS request each.
#[async_trait]
pub trait InspectorApi: Send + Sync {
    /// BatchGetAccountStatus for `account`.
    async fn account_status(&self, account: &str) -> AwsResult<AccountScanning>;
    /// Enable `resource_types` (e.g. LAMBDA, LAMBDA_CODE) for `account`. A failed account
    /// answer is an error carrying Inspector's code (ACCESS_DENIED as [`ErrorKind::AccessDenied`]).
    async fn enable(&self, account: &str, resource_types: &[&str]) -> AwsResult<()>;
    /// ListFindings: the ACTIVE findings of the Lambda function `function_arn` (its ARN,
    /// qualified or not), worst first, one page of [`FINDINGS_PAGE`].
    async fn function_findings(&self, function_arn: &str) -> AwsResult<Findings>;
    /// ListFilters with action SUPPRESS (every page).
    async fn suppression_filters(&self) -> AwsResult<Vec<ObservedFilter>>;
    /// CreateFilter with action SUPPRESS; returns its ARN.
    async fn create_suppression(
        &self,
        filter: &SuppressionFilter,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> AwsResult<String>;
    /// UpdateFilter: criteria, reason and description.
    async fn update_suppression(&self, arn: &str, filter: &SuppressionFilter) -> AwsResult<()>;
    /// DeleteFilter (a suppression lakeops made that expired or left the spec).
    async fn delete_filter(&self, arn: &str) -> AwsResult<()>;
}

fn string_filter(comparison: StringComparison, value: &str) -> StringFilter {
    // Both fields are set: the builder cannot fail.
    StringFilter::builder().comparison(comparison).value(value).build().unwrap_or_else(|_| unreachable!())
}

/// The criteria of a suppression: the vulnerability, and the functions when scoped.
fn suppression_criteria(f: &SuppressionFilter) -> FilterCriteria {
    let mut c =
        FilterCriteria::builder().vulnerability_id(string_filter(StringComparison::Equals, &f.vulnerability_id));
    for name in &f.functions {
        c = c.lambda_function_name(string_filter(StringComparison::Equals, name));
    }
    c.build()
}

fn equals(filters: &[StringFilter]) -> Vec<String> {
    filters.iter().filter(|f| *f.comparison() == StringComparison::Equals).map(|f| f.value().to_string()).collect()
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

    async fn function_findings(&self, function_arn: &str) -> AwsResult<Findings> {
        const OP: &str = "ListFindings";
        // Lambda findings name the function's ARN with its version qualifier.
        let criteria = FilterCriteria::builder()
            .finding_status(string_filter(StringComparison::Equals, "ACTIVE"))
            .resource_id(string_filter(StringComparison::Equals, function_arn))
            .resource_id(string_filter(StringComparison::Prefix, &format!("{function_arn}:")))
            .build();
        let sort = SortCriteria::builder()
            .field(SortField::Severity)
            .sort_order(SortOrder::Desc)
            .build()
            .map_err(|e| AwsError::classify("inspector2", OP, function_arn, None, Some(&e.to_string()), None))?;
        let out = self
            .client
            .list_findings()
            .filter_criteria(criteria)
            .sort_criteria(sort)
            .max_results(FINDINGS_PAGE)
            .send()
            .await
            .map_err(|e| sdk_error(OP, function_arn, &e))?;
        let findings = out
            .findings()
            .iter()
            .map(|f| {
                let package = f.package_vulnerability_details();
                Finding {
                    severity: f.severity().as_str().to_string(),
                    vulnerability: package
                        .map(|p| p.vulnerability_id().to_string())
                        .or_else(|| f.title().map(str::to_string))
                        .unwrap_or_else(|| f.finding_arn().to_string()),
                    packages: package
                        .map(|p| {
                            p.vulnerable_packages().iter().map(|v| format!("{}@{}", v.name(), v.version())).collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect();
        Ok(Findings { findings, truncated: out.next_token.is_some() })
    }

    async fn suppression_filters(&self) -> AwsResult<Vec<ObservedFilter>> {
        const OP: &str = "ListFilters";
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_filters()
                .action(FilterAction::Suppress)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(OP, "suppression filters", &e))?;
            out.extend(page.filters().iter().map(|f| {
                let c = f.criteria();
                ObservedFilter {
                    arn: f.arn().to_string(),
                    filter: SuppressionFilter {
                        name: f.name().to_string(),
                        vulnerability_id: c.map(|c| equals(c.vulnerability_id()).join(",")).unwrap_or_default(),
                        functions: c.map(|c| equals(c.lambda_function_name())).unwrap_or_default(),
                        reason: f.reason().unwrap_or_default().to_string(),
                        description: f.description().unwrap_or_default().to_string(),
                    },
                    tags: f.tags().map(|t| t.clone().into_iter().collect()).unwrap_or_default(),
                }
            }));
            token = page.next_token;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn create_suppression(
        &self,
        filter: &SuppressionFilter,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> AwsResult<String> {
        const OP: &str = "CreateFilter";
        let out = self
            .client
            .create_filter()
            .action(FilterAction::Suppress)
            .name(&filter.name)
            .filter_criteria(suppression_criteria(filter))
            .reason(&filter.reason)
            .description(&filter.description)
            .set_tags(Some(tags.clone().into_iter().collect()))
            // Inspector accepts a second filter of one name: one call sends one request, and
            // an unknown outcome is resolved by the next round's ListFilters (IDEMPOTENCY.md).
            .customize()
            .config_override(
                aws_sdk_inspector2::config::Config::builder()
                    .retry_config(aws_smithy_types::retry::RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| sdk_error(OP, &filter.name, &e))?;
        Ok(out.arn)
    }

    async fn update_suppression(&self, arn: &str, filter: &SuppressionFilter) -> AwsResult<()> {
        const OP: &str = "UpdateFilter";
        self.client
            .update_filter()
            .filter_arn(arn)
            .action(FilterAction::Suppress)
            .filter_criteria(suppression_criteria(filter))
            .reason(&filter.reason)
            .description(&filter.description)
            .send()
            .await
            .map_err(|e| sdk_error(OP, arn, &e))?;
        Ok(())
    }

    async fn delete_filter(&self, arn: &str) -> AwsResult<()> {
        const OP: &str = "DeleteFilter";
        match self.client.delete_filter().arn(arn).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = sdk_error(OP, arn, &e);
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
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
    async fn findings_are_read_for_the_function_arn_worst_first_in_one_request() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:lakeops-team-etl";
        let list = mock!(aws_sdk_inspector2::Client::list_findings)
            .match_requests(move |r| {
                let c = r.filter_criteria().expect("criteria");
                let ids: Vec<(&str, &str)> =
                    c.resource_id().iter().map(|f| (f.comparison().as_str(), f.value())).collect();
                ids == [("EQUALS", arn), ("PREFIX", &format!("{arn}:") as &str)]
                    && c.finding_status().iter().any(|f| f.value() == "ACTIVE")
                    && r.sort_criteria().is_some_and(|s| *s.sort_order() == SortOrder::Desc)
            })
            .then_output(|| {
                aws_sdk_inspector2::operation::list_findings::ListFindingsOutput::builder()
                    .findings(
                        aws_sdk_inspector2::types::Finding::builder()
                            .finding_arn("f")
                            .aws_account_id("123456789012")
                            .r#type(aws_sdk_inspector2::types::FindingType::PackageVulnerability)
                            .description("d")
                            .severity(aws_sdk_inspector2::types::Severity::Critical)
                            .first_observed_at(aws_smithy_types::DateTime::from_secs(0))
                            .last_observed_at(aws_smithy_types::DateTime::from_secs(0))
                            .status(aws_sdk_inspector2::types::FindingStatus::Active)
                            .set_resources(Some(vec![]))
                            .package_vulnerability_details(
                                aws_sdk_inspector2::types::PackageVulnerabilityDetails::builder()
                                    .vulnerability_id("CVE-1")
                                    .source("NVD")
                                    .vulnerable_packages(
                                        aws_sdk_inspector2::types::VulnerablePackage::builder()
                                            .name("requests")
                                            .version("2.0")
                                            .build()
                                            .expect("mocked answer"),
                                    )
                                    .build()
                                    .expect("mocked answer"),
                            )
                            .build()
                            .expect("mocked answer"),
                    )
                    .build()
            });
        let found = client(&[list]).function_findings(arn).await.expect("mocked answer");
        assert_eq!(found.findings.len(), 1);
        assert_eq!(
            (found.findings[0].severity.as_str(), found.findings[0].packages.as_slice()),
            ("CRITICAL", ["requests@2.0".to_string()].as_slice())
        );
        assert!(!found.truncated);
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
