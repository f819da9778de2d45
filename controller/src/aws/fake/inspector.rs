//! Inspector in the fake account: per account and region, the state of each resource type.
//! An enable goes through ENABLING for [`FakeAws::set_settle_calls`] further calls, as in
//! AWS; a delegated administrator ([`FakeAws::with_inspector_managed_by_organization`])
//! answers ACCESS_DENIED.
use std::sync::Arc;

use async_trait::async_trait;

use super::{FakeAws, fail};
use crate::aws::error::AwsResult;
use crate::aws::inspector::{ACCESS_DENIED, AccountScanning, ENABLED, InspectorApi};

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
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// An organization's delegated administrator manages Inspector in `region`.
    pub fn with_inspector_managed_by_organization(&self, region: &str) {
        self.edit(|r| r.inspector.entry(region.to_string()).or_default().managed_by_organization = true);
    }

    /// Inspector's state in `region`.
    pub fn inspector(&self, region: &str) -> InspectorAccount {
        self.world().now.inspector.get(region).cloned().unwrap_or_default()
    }
}
