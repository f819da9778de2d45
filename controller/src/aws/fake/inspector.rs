//! Inspector in the fake account: per account and region, the state of each resource type.
//! An enable goes through ENABLING for [`FakeAws::set_settle_calls`] further calls, as in
//! AWS; a delegated administrator ([`FakeAws::with_inspector_managed_by_organization`])
//! answers ACCESS_DENIED.
use std::sync::Arc;

use async_trait::async_trait;

use super::{FakeAws, fail};
use crate::aws::error::AwsResult;
use crate::aws::inspector::{
    ACCESS_DENIED, AccountScanning, ENABLED, FINDINGS_PAGE, Finding, Findings, InspectorApi, ObservedFilter,
    SuppressionFilter,
};

const SERVICE: &str = "inspector2";

/// One resource type's state: status, and from which call index an ENABLING has settled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanState {
    pub status: String,
    pub settles_at: usize,
}

/// Inspector in one region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InspectorAccount {
    /// Resource type (LAMBDA, LAMBDA_CODE, ...) -> state.
    pub scans: std::collections::BTreeMap<String, ScanState>,
    pub managed_by_organization: bool,
    /// Findings by the function ARN they are on.
    pub findings: Vec<(String, Finding)>,
    /// Suppression filters by ARN.
    pub filters: std::collections::BTreeMap<String, ObservedFilter>,
}

/// True when `filter` suppresses `finding` on the function named in `function_arn`.
fn suppresses(filter: &SuppressionFilter, function_arn: &str, finding: &Finding) -> bool {
    let name = function_arn.rsplit(':').next().unwrap_or_default();
    filter.vulnerability_id == finding.vulnerability
        && (filter.functions.is_empty() || filter.functions.iter().any(|f| f == name))
}

fn rank(severity: &str) -> usize {
    ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL"].iter().position(|s| *s == severity).unwrap_or(5)
}

/// [`InspectorApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeInspector {
    aws: Arc<FakeAws>,
    region: String,
}

impl FakeInspector {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }
}

#[async_trait]
impl InspectorApi for FakeInspector {
    async fn account_status(&self, account: &str) -> AwsResult<AccountScanning> {
        self.aws.read(&self.region, SERVICE, "BatchGetAccountStatus", account, |ctx| {
            let Some(a) = ctx.res.inspector.get(&self.region) else {
                return Ok(AccountScanning::States { lambda: None, lambda_code: None });
            };
            if a.managed_by_organization {
                return Ok(AccountScanning::ManagedByOrganization);
            }
            let status = |t: &str| {
                a.scans.get(t).map(|s| {
                    if s.status == "ENABLING" && ctx.index >= s.settles_at {
                        ENABLED.to_string()
                    } else {
                        s.status.clone()
                    }
                })
            };
            Ok(AccountScanning::States { lambda: status("LAMBDA"), lambda_code: status("LAMBDA_CODE") })
        })
    }

    async fn enable(&self, account: &str, resource_types: &[&str]) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "Enable", account, |ctx| {
            let settles_at = ctx.settles_at;
            let a = ctx.res.inspector.entry(ctx.region.to_string()).or_default();
            if a.managed_by_organization {
                return Err(fail(ACCESS_DENIED, 403, "the delegated administrator manages Inspector for this account"));
            }
            for t in resource_types {
                let s = a.scans.entry((*t).to_string()).or_default();
                if s.status != ENABLED {
                    *s = ScanState { status: "ENABLING".into(), settles_at };
                }
            }
            Ok(())
        })
    }

    async fn function_findings(&self, function_arn: &str) -> AwsResult<Findings> {
        self.aws.read(&self.region, SERVICE, "ListFindings", function_arn, |ctx| {
            let Some(a) = ctx.res.inspector.get(&self.region) else { return Ok(Findings::default()) };
            let mut found: Vec<Finding> = a
                .findings
                .iter()
                .filter(|(arn, f)| arn == function_arn && !a.filters.values().any(|o| suppresses(&o.filter, arn, f)))
                .map(|(_, f)| f.clone())
                .collect();
            found.sort_by_key(|f| rank(&f.severity));
            let page = usize::try_from(FINDINGS_PAGE).unwrap_or(usize::MAX);
            let truncated = found.len() > page;
            found.truncate(page);
            Ok(Findings { findings: found, truncated })
        })
    }

    async fn suppression_filters(&self) -> AwsResult<Vec<ObservedFilter>> {
        self.aws.read(&self.region, SERVICE, "ListFilters", "suppression filters", |ctx| {
            Ok(ctx.res.inspector.get(&self.region).map(|a| a.filters.values().cloned().collect()).unwrap_or_default())
        })
    }

    async fn create_suppression(
        &self,
        filter: &SuppressionFilter,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "CreateFilter", &filter.name, |ctx| {
            let id = ctx.next_id();
            let arn =
                format!("arn:aws:inspector2:{}:{}:owner/{}/filter/{id:016x}", ctx.region, ctx.account, ctx.account);
            let a = ctx.res.inspector.entry(ctx.region.to_string()).or_default();
            // Inspector allows two filters of one name; lakeops looks before it creates.
            a.filters
                .insert(arn.clone(), ObservedFilter { arn: arn.clone(), filter: filter.clone(), tags: tags.clone() });
            Ok(arn)
        })
    }

    async fn update_suppression(&self, arn: &str, filter: &SuppressionFilter) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "UpdateFilter", arn, |ctx| {
            let a = ctx.res.inspector.entry(ctx.region.to_string()).or_default();
            let o = a.filters.get_mut(arn).ok_or_else(|| fail("ResourceNotFoundException", 404, "no such filter"))?;
            o.filter = SuppressionFilter { name: o.filter.name.clone(), ..filter.clone() };
            Ok(())
        })
    }

    async fn delete_filter(&self, arn: &str) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "DeleteFilter", arn, |ctx| {
            if let Some(a) = ctx.res.inspector.get_mut(ctx.region) {
                a.filters.remove(arn);
            }
            Ok(())
        })
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// An organization's delegated administrator manages Inspector in `region`.
    pub fn with_inspector_managed_by_organization(&self, region: &str) {
        self.edit(|r| r.inspector.entry(region.to_string()).or_default().managed_by_organization = true);
    }

    /// A finding on the function `function_arn` in `region`.
    pub fn with_finding(&self, region: &str, function_arn: &str, finding: Finding) {
        self.edit(|r| {
            r.inspector.entry(region.to_string()).or_default().findings.push((function_arn.to_string(), finding))
        });
    }

    /// Inspector's state in `region`.
    pub fn inspector(&self, region: &str) -> InspectorAccount {
        self.world().now.inspector.get(region).cloned().unwrap_or_default()
    }
}
