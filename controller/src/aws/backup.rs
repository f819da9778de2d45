//! The AWS Backup operations a BackupPolicy uses for its catalog tables: vaults (with their
//! lock), one backup plan and its selection. Never DeleteRecoveryPoint; a vault is deleted
//! only when it holds no recovery point (AWS refuses otherwise too).
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_backup::types::{BackupPlanInput, BackupRuleInput, BackupSelection, CopyAction, Lifecycle};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};

/// A vault as DescribeBackupVault tells it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VaultInfo {
    pub name: String,
    pub arn: String,
    pub encryption_key_arn: Option<String>,
    /// Recovery points held: data, so a vault holding any is never deleted.
    pub recovery_points: i64,
    pub lock: Option<VaultLock>,
}

/// A vault lock (compliance mode once `lock_date` has passed: nobody can change or remove it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VaultLock {
    pub min_retention_days: Option<i64>,
    pub max_retention_days: Option<i64>,
    /// Seconds since the epoch from which the lock is immutable; `None`: governance mode.
    pub lock_date: Option<i64>,
}

/// A backup plan's document, as lakeops writes and compares it (AWS fills in defaults for
/// what is not set here: start and completion windows, time zone, rule ids).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanDocument {
    pub name: String,
    pub rules: Vec<PlanRule>,
}

/// One rule of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanRule {
    pub name: String,
    pub target_vault: String,
    pub schedule: String,
    /// Days a recovery point is kept.
    pub delete_after_days: Option<i64>,
    pub copies: Vec<PlanCopy>,
}

/// A copy action of a rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanCopy {
    pub destination_vault_arn: String,
    pub delete_after_days: Option<i64>,
}

/// What GetBackupPlan tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanInfo {
    pub id: String,
    pub arn: String,
    pub version_id: String,
    pub document: PlanDocument,
    /// Set once the plan is deleted (AWS keeps answering for a deleted plan).
    pub deleted: bool,
}

/// One entry of ListBackupPlans.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanSummary {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub creator_request_id: Option<String>,
}

/// One entry of ListBackupSelections. A selection cannot be changed: its creator request
/// id, which lakeops derives from what it selects, tells what it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectionSummary {
    pub id: String,
    pub name: String,
    pub iam_role_arn: String,
    pub creator_request_id: Option<String>,
}

/// A selection as CreateBackupSelection takes it: resources by ARN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SelectionSpec {
    pub name: String,
    pub iam_role_arn: String,
    pub resources: Vec<String>,
}

/// Where a create's answer went: the new resource's id and ARN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    pub arn: String,
}

/// The AWS Backup calls lakeops makes; one AWS request each (lists: one per page).
#[async_trait]
pub trait BackupApi: Send + Sync {
    /// DescribeBackupVault; `Ok(None)` when there is no such vault.
    async fn describe_vault(&self, name: &str) -> AwsResult<Option<VaultInfo>>;
    /// CreateBackupVault encrypted with `key_arn`, with tags; returns the vault's ARN.
    async fn create_vault(
        &self,
        name: &str,
        key_arn: &str,
        tags: &BTreeMap<String, String>,
        request_id: &str,
    ) -> AwsResult<String>;
    /// DeleteBackupVault (AWS refuses a vault holding recovery points).
    async fn delete_vault(&self, name: &str) -> AwsResult<()>;
    /// PutBackupVaultLockConfiguration: minimum retention, immutable after `changeable_for_days`.
    async fn put_vault_lock(&self, name: &str, min_retention_days: i64, changeable_for_days: i64) -> AwsResult<()>;
    /// ListTags of a vault or plan.
    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>>;
    /// TagResource.
    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
    /// ListBackupPlans (deleted plans left out).
    async fn list_plans(&self) -> AwsResult<Vec<PlanSummary>>;
    /// GetBackupPlan; `Ok(None)` when there is no such plan.
    async fn get_plan(&self, id: &str) -> AwsResult<Option<PlanInfo>>;
    /// CreateBackupPlan with tags, under `request_id` (AWS answers a repeat with the same plan).
    async fn create_plan(
        &self,
        document: &PlanDocument,
        tags: &BTreeMap<String, String>,
        request_id: &str,
    ) -> AwsResult<Created>;
    /// UpdateBackupPlan: the document replaced in place (a new version, same id).
    async fn update_plan(&self, id: &str, document: &PlanDocument) -> AwsResult<()>;
    /// DeleteBackupPlan (its selections must be gone).
    async fn delete_plan(&self, id: &str) -> AwsResult<()>;
    /// ListBackupSelections of a plan.
    async fn list_selections(&self, plan_id: &str) -> AwsResult<Vec<SelectionSummary>>;
    /// CreateBackupSelection under `request_id`; returns the selection id.
    async fn create_selection(&self, plan_id: &str, selection: &SelectionSpec, request_id: &str) -> AwsResult<String>;
    /// DeleteBackupSelection.
    async fn delete_selection(&self, plan_id: &str, selection_id: &str) -> AwsResult<()>;
}

/// [`BackupApi`] over the AWS SDK.
pub struct SdkBackup {
    client: aws_sdk_backup::Client,
}

impl SdkBackup {
    /// Wraps a client.
    pub fn new(client: aws_sdk_backup::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("backup", operation, resource, err)
}

fn invalid(operation: &'static str, resource: &str, e: impl std::fmt::Display) -> AwsError {
    AwsError::classify("backup", operation, resource, None, Some(&e.to_string()), None)
}

fn plan_input(doc: &PlanDocument, operation: &'static str) -> AwsResult<BackupPlanInput> {
    let mut plan = BackupPlanInput::builder().backup_plan_name(&doc.name);
    for r in &doc.rules {
        let mut rule = BackupRuleInput::builder()
            .rule_name(&r.name)
            .target_backup_vault_name(&r.target_vault)
            .schedule_expression(&r.schedule);
        if let Some(days) = r.delete_after_days {
            rule = rule.lifecycle(Lifecycle::builder().delete_after_days(days).build());
        }
        for c in &r.copies {
            let mut copy = CopyAction::builder().destination_backup_vault_arn(&c.destination_vault_arn);
            if let Some(days) = c.delete_after_days {
                copy = copy.lifecycle(Lifecycle::builder().delete_after_days(days).build());
            }
            rule = rule.copy_actions(copy.build().map_err(|e| invalid(operation, &doc.name, e))?);
        }
        plan = plan.rules(rule.build().map_err(|e| invalid(operation, &doc.name, e))?);
    }
    plan.build().map_err(|e| invalid(operation, &doc.name, e))
}

fn plan_document(plan: &aws_sdk_backup::types::BackupPlan) -> PlanDocument {
    PlanDocument {
        name: plan.backup_plan_name().to_string(),
        rules: plan
            .rules()
            .iter()
            .map(|r| PlanRule {
                name: r.rule_name().to_string(),
                target_vault: r.target_backup_vault_name().to_string(),
                schedule: r.schedule_expression().unwrap_or_default().to_string(),
                delete_after_days: r.lifecycle().and_then(Lifecycle::delete_after_days),
                copies: r
                    .copy_actions()
                    .iter()
                    .map(|c| PlanCopy {
                        destination_vault_arn: c.destination_backup_vault_arn().to_string(),
                        delete_after_days: c.lifecycle().and_then(Lifecycle::delete_after_days),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[async_trait]
impl BackupApi for SdkBackup {
    async fn describe_vault(&self, name: &str) -> AwsResult<Option<VaultInfo>> {
        let out = match self.client.describe_backup_vault().backup_vault_name(name).send().await {
            Ok(out) => out,
            Err(e) => {
                // AWS answers a vault that does not exist with AccessDeniedException (moto
                // with ResourceNotFoundException). A real lack of permission then shows in
                // CreateBackupVault, which names it.
                if e.as_service_error().and_then(ProvideErrorMetadata::code) == Some("AccessDeniedException") {
                    return Ok(None);
                }
                let err = sdk_error("DescribeBackupVault", name, &e);
                return if err.is_not_found() { Ok(None) } else { Err(err) };
            }
        };
        let lock = out.locked().unwrap_or(false).then(|| VaultLock {
            min_retention_days: out.min_retention_days(),
            max_retention_days: out.max_retention_days(),
            lock_date: out.lock_date().map(aws_smithy_types::DateTime::secs),
        });
        Ok(Some(VaultInfo {
            name: name.to_string(),
            arn: out.backup_vault_arn().unwrap_or_default().to_string(),
            encryption_key_arn: out.encryption_key_arn().map(str::to_string),
            recovery_points: out.number_of_recovery_points(),
            lock,
        }))
    }

    async fn create_vault(
        &self,
        name: &str,
        key_arn: &str,
        tags: &BTreeMap<String, String>,
        request_id: &str,
    ) -> AwsResult<String> {
        let out = self
            .client
            .create_backup_vault()
            .backup_vault_name(name)
            .encryption_key_arn(key_arn)
            .set_backup_vault_tags(Some(tags.clone().into_iter().collect()))
            .creator_request_id(request_id)
            .send()
            .await
            .map_err(|e| sdk_error("CreateBackupVault", name, &e))?;
        Ok(out.backup_vault_arn.unwrap_or_default())
    }

    async fn delete_vault(&self, name: &str) -> AwsResult<()> {
        self.client
            .delete_backup_vault()
            .backup_vault_name(name)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("DeleteBackupVault", name, &e))
    }

    async fn put_vault_lock(&self, name: &str, min_retention_days: i64, changeable_for_days: i64) -> AwsResult<()> {
        self.client
            .put_backup_vault_lock_configuration()
            .backup_vault_name(name)
            .min_retention_days(min_retention_days)
            .changeable_for_days(changeable_for_days)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("PutBackupVaultLockConfiguration", name, &e))
    }

    async fn list_tags(&self, arn: &str) -> AwsResult<BTreeMap<String, String>> {
        let mut tags = BTreeMap::new();
        let mut pages = self.client.list_tags().resource_arn(arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("ListTags", arn, &e))?;
            tags.extend(page.tags.unwrap_or_default());
        }
        Ok(tags)
    }

    async fn tag_resource(&self, arn: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.client
            .tag_resource()
            .resource_arn(arn)
            .set_tags(Some(tags.clone().into_iter().collect()))
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("TagResource", arn, &e))
    }

    async fn list_plans(&self) -> AwsResult<Vec<PlanSummary>> {
        let mut plans = Vec::new();
        let mut pages = self.client.list_backup_plans().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("ListBackupPlans", "backup plans", &e))?;
            plans.extend(page.backup_plans_list().iter().filter(|p| p.deletion_date().is_none()).map(|p| {
                PlanSummary {
                    id: p.backup_plan_id().unwrap_or_default().to_string(),
                    arn: p.backup_plan_arn().unwrap_or_default().to_string(),
                    name: p.backup_plan_name().unwrap_or_default().to_string(),
                    creator_request_id: p.creator_request_id().map(str::to_string),
                }
            }));
        }
        Ok(plans)
    }

    async fn get_plan(&self, id: &str) -> AwsResult<Option<PlanInfo>> {
        let out = match self.client.get_backup_plan().backup_plan_id(id).send().await {
            Ok(out) => out,
            Err(e) => {
                let err = sdk_error("GetBackupPlan", id, &e);
                return if err.is_not_found() { Ok(None) } else { Err(err) };
            }
        };
        Ok(Some(PlanInfo {
            id: out.backup_plan_id().unwrap_or(id).to_string(),
            arn: out.backup_plan_arn().unwrap_or_default().to_string(),
            version_id: out.version_id().unwrap_or_default().to_string(),
            document: out.backup_plan().map(plan_document).unwrap_or_default(),
            deleted: out.deletion_date().is_some(),
        }))
    }

    async fn create_plan(
        &self,
        document: &PlanDocument,
        tags: &BTreeMap<String, String>,
        request_id: &str,
    ) -> AwsResult<Created> {
        const OP: &str = "CreateBackupPlan";
        let out = self
            .client
            .create_backup_plan()
            .backup_plan(plan_input(document, OP)?)
            .set_backup_plan_tags(Some(tags.clone().into_iter().collect()))
            .creator_request_id(request_id)
            .send()
            .await
            .map_err(|e| sdk_error(OP, &document.name, &e))?;
        Ok(Created { id: out.backup_plan_id.unwrap_or_default(), arn: out.backup_plan_arn.unwrap_or_default() })
    }

    async fn update_plan(&self, id: &str, document: &PlanDocument) -> AwsResult<()> {
        const OP: &str = "UpdateBackupPlan";
        self.client
            .update_backup_plan()
            .backup_plan_id(id)
            .backup_plan(plan_input(document, OP)?)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error(OP, id, &e))
    }

    async fn delete_plan(&self, id: &str) -> AwsResult<()> {
        self.client
            .delete_backup_plan()
            .backup_plan_id(id)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("DeleteBackupPlan", id, &e))
    }

    async fn list_selections(&self, plan_id: &str) -> AwsResult<Vec<SelectionSummary>> {
        let mut selections = Vec::new();
        let mut pages = self.client.list_backup_selections().backup_plan_id(plan_id).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("ListBackupSelections", plan_id, &e))?;
            selections.extend(page.backup_selections_list().iter().map(|s| SelectionSummary {
                id: s.selection_id().unwrap_or_default().to_string(),
                name: s.selection_name().unwrap_or_default().to_string(),
                iam_role_arn: s.iam_role_arn().unwrap_or_default().to_string(),
                creator_request_id: s.creator_request_id().map(str::to_string),
            }));
        }
        Ok(selections)
    }

    async fn create_selection(&self, plan_id: &str, selection: &SelectionSpec, request_id: &str) -> AwsResult<String> {
        const OP: &str = "CreateBackupSelection";
        let body = BackupSelection::builder()
            .selection_name(&selection.name)
            .iam_role_arn(&selection.iam_role_arn)
            .set_resources(Some(selection.resources.clone()))
            .build()
            .map_err(|e| invalid(OP, plan_id, e))?;
        let out = self
            .client
            .create_backup_selection()
            .backup_plan_id(plan_id)
            .backup_selection(body)
            .creator_request_id(request_id)
            .send()
            .await
            .map_err(|e| sdk_error(OP, plan_id, &e))?;
        Ok(out.selection_id.unwrap_or_default())
    }

    async fn delete_selection(&self, plan_id: &str, selection_id: &str) -> AwsResult<()> {
        self.client
            .delete_backup_selection()
            .backup_plan_id(plan_id)
            .selection_id(selection_id)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("DeleteBackupSelection", selection_id, &e))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_backup::operation::create_backup_plan::CreateBackupPlanOutput;
    use aws_sdk_backup::operation::describe_backup_vault::{DescribeBackupVaultError, DescribeBackupVaultOutput};
    use aws_smithy_mocks::mock;

    use super::*;

    fn client(rules: &[aws_smithy_mocks::Rule]) -> SdkBackup {
        SdkBackup::new(aws_sdk_backup::Client::from_conf(crate::aws::mocked_config!(aws_sdk_backup, rules).build()))
    }

    fn document() -> PlanDocument {
        PlanDocument {
            name: "lakeops-team-a-sales".into(),
            rules: vec![PlanRule {
                name: "catalog".into(),
                target_vault: "lakeops-team-a-sales".into(),
                schedule: "cron(0 5 ? * * *)".into(),
                delete_after_days: Some(35),
                copies: vec![PlanCopy {
                    destination_vault_arn: "arn:aws:backup:eu-central-1:1:backup-vault:lakeops-team-a-sales".into(),
                    delete_after_days: Some(90),
                }],
            }],
        }
    }

    #[tokio::test]
    async fn a_plan_is_created_with_its_rule_copy_tags_and_creator_request_id() {
        let create = mock!(aws_sdk_backup::Client::create_backup_plan)
            .match_requests(|r| {
                let Some(plan) = r.backup_plan() else { return false };
                let rule = &plan.rules()[0];
                let copy = &rule.copy_actions()[0];
                r.creator_request_id() == Some("token")
                    && rule.lifecycle().and_then(Lifecycle::delete_after_days) == Some(35)
                    && copy.lifecycle().and_then(Lifecycle::delete_after_days) == Some(90)
                    && copy.destination_backup_vault_arn().contains("eu-central-1")
                    && r.backup_plan_tags().is_some_and(|t| t.contains_key("lakeops.dev/owner"))
            })
            .then_output(|| CreateBackupPlanOutput::builder().backup_plan_id("p-1").backup_plan_arn("arn:p-1").build());
        let tags = BTreeMap::from([("lakeops.dev/owner".to_string(), "team-a/backup".to_string())]);
        let created = client(&[create]).create_plan(&document(), &tags, "token").await.expect("mocked answer");
        assert_eq!(created, Created { id: "p-1".into(), arn: "arn:p-1".into() });
    }

    #[tokio::test]
    async fn a_vault_reads_back_its_key_and_lock_and_a_missing_one_is_none_as_aws_answers_it() {
        let found = mock!(aws_sdk_backup::Client::describe_backup_vault).then_output(|| {
            DescribeBackupVaultOutput::builder()
                .backup_vault_arn("arn:v")
                .encryption_key_arn("arn:k")
                .number_of_recovery_points(2)
                .locked(true)
                .min_retention_days(30)
                .build()
        });
        // AWS's answer for a vault that does not exist.
        let missing = mock!(aws_sdk_backup::Client::describe_backup_vault).then_error(|| {
            DescribeBackupVaultError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("AccessDeniedException")
                    .message("Insufficient privileges to perform this action.")
                    .build(),
            )
        });
        let backup = client(&[found, missing]);
        let v = backup.describe_vault("v").await.expect("mocked answer").expect("found");
        assert_eq!(v.encryption_key_arn.as_deref(), Some("arn:k"));
        assert_eq!(v.recovery_points, 2);
        assert_eq!(v.lock.and_then(|l| l.min_retention_days), Some(30));
        assert_eq!(backup.describe_vault("gone").await.expect("absent, not an error"), None);
    }
}
