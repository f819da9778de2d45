//! AWS Backup in the fake account: vaults (key, tags, lock, recovery point count), plans
//! (documents, versions, tags, creator request ids) and their selections. As in AWS (and
//! unlike moto), plan names need not be unique, so only a recorded creator request id tells
//! a retried create from a new one; a plan with selections cannot be deleted; a vault
//! holding recovery points cannot be deleted; a repeated creator request id is refused.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Fail, FakeAws, fail, merge_tags, ok_if_missing};
use crate::aws::backup::{
    BackupApi, Created, PlanDocument, PlanInfo, PlanSummary, SelectionSpec, SelectionSummary, VaultInfo, VaultLock,
};
use crate::aws::error::AwsResult;

const SERVICE: &str = "backup";

/// A vault and its tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupVault {
    pub info: VaultInfo,
    pub tags: BTreeMap<String, String>,
    pub creator_request_id: Option<String>,
}

/// A plan, its tags and selections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupPlan {
    pub info: PlanInfo,
    pub region: String,
    pub tags: BTreeMap<String, String>,
    pub creator_request_id: Option<String>,
    pub selections: Vec<Selection>,
}

/// A selection as created (AWS cannot change one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub summary: SelectionSummary,
    pub resources: Vec<String>,
}

/// [`BackupApi`] on the fake account, for one region.
#[derive(Clone, Debug)]
pub struct FakeBackup {
    aws: Arc<FakeAws>,
    region: String,
}

fn plan_not_found(id: &str) -> Fail {
    fail("ResourceNotFoundException", 400, format!("Failed reading Backup plan {id}"))
}

fn already(what: &str) -> Fail {
    fail("AlreadyExistsException", 400, format!("{what} already exists"))
}

impl FakeBackup {
    pub(super) fn new(aws: Arc<FakeAws>, region: &str) -> Self {
        Self { aws, region: region.to_string() }
    }

    fn vault_id(&self, name: &str) -> (String, String) {
        (self.region.clone(), name.to_string())
    }
}

#[async_trait]
impl BackupApi for FakeBackup {
    async fn describe_vault(&self, name: &str) -> AwsResult<Option<VaultInfo>> {
        self.aws.read(&self.region, SERVICE, "DescribeBackupVault", name, |ctx| {
            Ok(ctx.res.backup_vaults.get(&self.vault_id(name)).map(|v| v.info.clone()))
        })
    }

    async fn create_vault(
        &self,
        name: &str,
        key_arn: &str,
        tags: &BTreeMap<String, String>,
        request_id: &str,
    ) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "CreateBackupVault", name, |ctx| {
            let id = (ctx.region.to_string(), name.to_string());
            if ctx.res.backup_vaults.contains_key(&id) {
                return Err(already(&format!("Backup vault {name}")));
            }
            let arn = format!("arn:aws:backup:{}:{}:backup-vault:{name}", ctx.region, ctx.account);
            let info = VaultInfo {
                name: name.to_string(),
                arn: arn.clone(),
                encryption_key_arn: Some(key_arn.to_string()),
                recovery_points: 0,
                lock: None,
            };
            let vault = BackupVault { info, tags: tags.clone(), creator_request_id: Some(request_id.to_string()) };
            ctx.res.backup_vaults.insert(id, vault);
            Ok(arn)
        })
    }

    async fn delete_vault(&self, name: &str) -> AwsResult<()> {
        ok_if_missing(self.aws.write(&self.region, SERVICE, "DeleteBackupVault", name, |ctx| {
            let id = (ctx.region.to_string(), name.to_string());
            let v = ctx
                .res
                .backup_vaults
                .get(&id)
                .ok_or_else(|| fail("ResourceNotFoundException", 400, format!("Backup vault {name} not found")))?;
            if v.info.recovery_points > 0 {
                return Err(fail(
                    "InvalidRequestException",
                    400,
                    "Backup vault cannot be deleted because it contains recovery points",
                ));
            }
            ctx.res.backup_vaults.remove(&id);
            Ok(())
        }))
    }

    async fn put_vault_lock(&self, name: &str, min_retention_days: i64, changeable_for_days: i64) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "PutBackupVaultLockConfiguration", name, |ctx| {
            let v = ctx
                .res
                .backup_vaults
                .get_mut(&(ctx.region.to_string(), name.to_string()))
                .ok_or_else(|| fail("ResourceNotFoundException", 400, format!("Backup vault {name} not found")))?;
            if min_retention_days < 1 || changeable_for_days < 3 {
                return Err(fail(
                    "InvalidParameterValueException",
                    400,
                    "MinRetentionDays >= 1 and ChangeableForDays >= 3",
                ));
            }
            // The fake has no clock: a lock stays in its grace time (changeable).
            v.info.lock = Some(VaultLock {
                min_retention_days: Some(min_retention_days),
                max_retention_days: None,
                lock_date: Some(changeable_for_days * 86_400),
            });
            Ok(())
        })
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        self.aws.read(&self.region, SERVICE, "ListTags", arn, |ctx| {
            if let Some(v) = ctx.res.backup_vaults.values().find(|v| v.info.arn == arn) {
                return Ok(v.tags.clone());
            }
            ctx.res
                .backup_plans
                .values()
                .find(|p| p.info.arn == arn)
                .map(|p| p.tags.clone())
                .ok_or_else(|| fail("ResourceNotFoundException", 400, format!("{arn} not found")))
        })
    }

    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "TagResource", arn, |ctx| {
            if let Some(v) = ctx.res.backup_vaults.values_mut().find(|v| v.info.arn == arn) {
                merge_tags(&mut v.tags, tags);
                return Ok(());
            }
            let p = ctx
                .res
                .backup_plans
                .values_mut()
                .find(|p| p.info.arn == arn)
                .ok_or_else(|| fail("ResourceNotFoundException", 400, format!("{arn} not found")))?;
            merge_tags(&mut p.tags, tags);
            Ok(())
        })
    }

    async fn list_plans(&self) -> AwsResult<Vec<PlanSummary>> {
        self.aws.read(&self.region, SERVICE, "ListBackupPlans", "backup plans", |ctx| {
            Ok(ctx
                .res
                .backup_plans
                .values()
                .filter(|p| p.region == self.region && !p.info.deleted)
                .map(|p| PlanSummary {
                    id: p.info.id.clone(),
                    arn: p.info.arn.clone(),
                    name: p.info.document.name.clone(),
                    creator_request_id: p.creator_request_id.clone(),
                })
                .collect())
        })
    }

    async fn get_plan(&self, id: &str) -> AwsResult<Option<PlanInfo>> {
        self.aws.read(&self.region, SERVICE, "GetBackupPlan", id, |ctx| {
            Ok(ctx.res.backup_plans.get(id).filter(|p| p.region == self.region).map(|p| p.info.clone()))
        })
    }

    async fn create_plan(
        &self,
        document: &PlanDocument,
        tags: &BTreeMap<String, String>,
        request_id: &str,
    ) -> AwsResult<Created> {
        self.aws.write(&self.region, SERVICE, "CreateBackupPlan", &document.name, |ctx| {
            if ctx.res.backup_plans.values().any(|p| p.creator_request_id.as_deref() == Some(request_id)) {
                return Err(already("Backup plan with this creator request id"));
            }
            for rule in &document.rules {
                if !ctx.res.backup_vaults.contains_key(&(ctx.region.to_string(), rule.target_vault.clone())) {
                    return Err(fail(
                        "InvalidParameterValueException",
                        400,
                        format!("vault {} does not exist", rule.target_vault),
                    ));
                }
            }
            let id = format!("{:08x}-plan", ctx.next_id());
            let arn = format!("arn:aws:backup:{}:{}:backup-plan:{id}", ctx.region, ctx.account);
            let info = PlanInfo {
                id: id.clone(),
                arn: arn.clone(),
                version_id: format!("v{}", ctx.next_id()),
                document: document.clone(),
                deleted: false,
            };
            let plan = BackupPlan {
                info,
                region: ctx.region.to_string(),
                tags: tags.clone(),
                creator_request_id: Some(request_id.to_string()),
                selections: Vec::new(),
            };
            ctx.res.backup_plans.insert(id.clone(), plan);
            Ok(Created { id, arn })
        })
    }

    async fn update_plan(&self, id: &str, document: &PlanDocument) -> AwsResult<()> {
        self.aws.write(&self.region, SERVICE, "UpdateBackupPlan", id, |ctx| {
            let version = format!("v{}", ctx.next_id());
            let p = ctx.res.backup_plans.get_mut(id).filter(|p| !p.info.deleted).ok_or_else(|| plan_not_found(id))?;
            p.info.document = document.clone();
            p.info.version_id = version;
            Ok(())
        })
    }

    async fn delete_plan(&self, id: &str) -> AwsResult<()> {
        ok_if_missing(self.aws.write(&self.region, SERVICE, "DeleteBackupPlan", id, |ctx| {
            let p = ctx.res.backup_plans.get_mut(id).filter(|p| !p.info.deleted).ok_or_else(|| plan_not_found(id))?;
            if !p.selections.is_empty() {
                return Err(fail(
                    "InvalidRequestException",
                    400,
                    "Related backup plan selections must be deleted prior to backup plan deletion",
                ));
            }
            p.info.deleted = true;
            Ok(())
        }))
    }

    async fn list_selections(&self, plan_id: &str) -> AwsResult<Vec<SelectionSummary>> {
        self.aws.read(&self.region, SERVICE, "ListBackupSelections", plan_id, |ctx| {
            let p = ctx.res.backup_plans.get(plan_id).ok_or_else(|| plan_not_found(plan_id))?;
            Ok(p.selections.iter().map(|s| s.summary.clone()).collect())
        })
    }

    async fn create_selection(&self, plan_id: &str, selection: &SelectionSpec, request_id: &str) -> AwsResult<String> {
        self.aws.write(&self.region, SERVICE, "CreateBackupSelection", plan_id, |ctx| {
            let sid = format!("{:08x}-selection", ctx.next_id());
            let role_exists =
                selection.iam_role_arn.rsplit('/').next().is_some_and(|name| ctx.res.roles.contains_key(name));
            let p = ctx
                .res
                .backup_plans
                .get_mut(plan_id)
                .filter(|p| !p.info.deleted)
                .ok_or_else(|| plan_not_found(plan_id))?;
            if p.selections.iter().any(|s| s.summary.creator_request_id.as_deref() == Some(request_id)) {
                return Err(already("Backup selection with this creator request id"));
            }
            if !role_exists {
                return Err(fail(
                    "InvalidParameterValueException",
                    400,
                    format!("role {} does not exist", selection.iam_role_arn),
                ));
            }
            p.selections.push(Selection {
                summary: SelectionSummary {
                    id: sid.clone(),
                    name: selection.name.clone(),
                    iam_role_arn: selection.iam_role_arn.clone(),
                    creator_request_id: Some(request_id.to_string()),
                },
                resources: selection.resources.clone(),
            });
            Ok(sid)
        })
    }

    async fn delete_selection(&self, plan_id: &str, selection_id: &str) -> AwsResult<()> {
        ok_if_missing(self.aws.write(&self.region, SERVICE, "DeleteBackupSelection", selection_id, |ctx| {
            let p = ctx.res.backup_plans.get_mut(plan_id).ok_or_else(|| plan_not_found(plan_id))?;
            let before = p.selections.len();
            p.selections.retain(|s| s.summary.id != selection_id);
            if p.selections.len() == before {
                return Err(fail("ResourceNotFoundException", 400, format!("selection {selection_id} not found")));
            }
            Ok(())
        }))
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// The vaults of `region`.
    pub fn backup_vaults(&self, region: &str) -> Vec<BackupVault> {
        self.world().now.backup_vaults.iter().filter(|((r, _), _)| r == region).map(|(_, v)| v.clone()).collect()
    }

    /// The live plans of `region`.
    pub fn backup_plans(&self, region: &str) -> Vec<BackupPlan> {
        self.world().now.backup_plans.values().filter(|p| p.region == region && !p.info.deleted).cloned().collect()
    }
}
