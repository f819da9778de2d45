//! AWS Backup of the catalog tables (`spec.tables.backup`), the pure part: names, the vaults,
//! the plan document, the selection, the role AWS Backup assumes, and the changes from what
//! was read to what is wanted. The step that reads and writes is in `steps.rs`.
//!
//! - A vault `lakeops-<namespace>-<lake>` in the lake's region, encrypted with the lake key;
//!   with `copy`, one of the same name in the copy region, encrypted with the policy's
//!   replica key there. A vault's key cannot change: another key is a blocker.
//! - Under COMPLIANCE retention both vaults are locked (compliance mode: immutable after a
//!   3-day grace time) with the retention's days as minimum. A lock is never shortened or
//!   removed by lakeops.
//! - One plan of the same name, one rule: the schedule, the retention, the copy action.
//!   Changed in place (UpdateBackupPlan keeps its id, so the selection stays).
//! - One selection of the tables by ARN through a generated role. AWS cannot change a
//!   selection: a different one (a table added, another role) is deleted and created again.
//!   Its creator request id is derived from its content, so what ListBackupSelections
//!   reports tells whether it is the wanted one, without a read per selection.
use std::collections::BTreeMap;
use std::fmt;

use kube::ResourceExt;
use lakeops_crds::BackupPolicy;
use lakeops_crds::backuppolicy::{BackupPolicySpec, CatalogBackup};

use crate::aws::backup::{PlanCopy, PlanDocument, PlanRule, SelectionSpec, SelectionSummary, VaultInfo};
use crate::policy::{Effect, PolicyDocument, Principal, Statement};
use crate::reconcile::datalake::desired::partition;

use super::desired::{LakeFacts, bounded_name, bounded_role_name, fnv1a};

/// AWS Backup vault and plan names are at most 50 characters.
const NAME_MAX: usize = 50;
/// The plan's one rule.
pub const RULE_NAME: &str = "lakeops-catalog-tables";
/// The plan's one selection.
pub const SELECTION_NAME: &str = "lakeops-catalog-tables";
/// Name of the backup role's inline policy.
pub const ROLE_POLICY_NAME: &str = "lakeops-catalog-backup";
/// Days a compliance-mode vault lock stays changeable (AWS's minimum): a mistake can be
/// undone by an administrator in that time, after which nobody can.
pub const LOCK_GRACE_DAYS: i64 = 3;
/// Status purposes of the recorded creation tokens.
pub const PLAN_PURPOSE: &str = "backup-plan";
pub const SELECTION_PURPOSE: &str = "backup-selection";

/// Name of the vaults and the plan: `lakeops-<namespace>-<lake>`, shortened stably to 50.
pub fn name(policy: &BackupPolicy) -> String {
    bounded_name(
        format!("lakeops-{}-{}", policy.namespace().unwrap_or_default(), policy.spec.data_lake_ref.name),
        NAME_MAX,
    )
}

/// ARN of a vault, known before it exists (copy actions name the destination by ARN).
pub fn vault_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:{}:backup:{region}:{account}:backup-vault:{name}", partition(region))
}

/// ARN of a catalog table.
pub fn table_arn(region: &str, account: &str, table: &str) -> String {
    format!("arn:{}:dynamodb:{region}:{account}:table/{table}", partition(region))
}

/// Name of the role AWS Backup assumes: `<prefix>-backup`.
pub fn role_name(prefix: &str) -> String {
    bounded_role_name(format!("{prefix}-backup"))
}

/// A creation token in the form AWS Backup's CreatorRequestId takes (1 to 50 letters,
/// digits, `-`, `_`, `.`): the owner's UID without dashes and a hash of the purpose.
pub fn request_id(owner_uid: &str, purpose: &str) -> String {
    format!("{}-{:012x}", owner_uid.replace('-', ""), fnv1a(purpose.as_bytes()) & 0xffff_ffff_ffff)
}

/// A vault lakeops wants: where, its key, its lock minimum.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredVault {
    pub region: String,
    pub name: String,
    pub key_arn: String,
    pub lock_days: Option<i64>,
    pub tags: BTreeMap<String, String>,
}

/// The vaults: the lake's region's, then the copy region's.
pub fn vaults(
    policy: &BackupPolicy,
    spec: &BackupPolicySpec,
    facts: &LakeFacts,
    keys: &BTreeMap<String, String>,
    tags: &BTreeMap<String, String>,
) -> Vec<DesiredVault> {
    let Some(b) = &spec.tables.backup else { return Vec::new() };
    let lock_days = BackupPolicy::vault_lock_days(spec).map(i64::from);
    let vault = |region: &str, key_arn: String| DesiredVault {
        region: region.to_string(),
        name: name(policy),
        key_arn,
        lock_days,
        tags: tags.clone(),
    };
    let mut out = vec![vault(&facts.region, facts.key_arn.clone())];
    if let Some(c) = &b.copy {
        let key = keys
            .get(&c.region)
            .cloned()
            .unwrap_or_else(|| crate::engine::placeholder(&format!("replica key in {}", c.region)));
        out.push(vault(&c.region, key));
    }
    out
}

/// The plan document: one rule into the lake region's vault, with its copy action.
pub fn plan_document(policy: &BackupPolicy, b: &CatalogBackup, account: &str) -> PlanDocument {
    let name = name(policy);
    PlanDocument {
        name: name.clone(),
        rules: vec![PlanRule {
            name: RULE_NAME.into(),
            target_vault: name.clone(),
            schedule: b.schedule.clone(),
            delete_after_days: Some(i64::from(b.retention_days)),
            copies: b
                .copy
                .iter()
                .map(|c| PlanCopy {
                    destination_vault_arn: vault_arn(&c.region, account, &name),
                    delete_after_days: Some(i64::from(c.retention_days)),
                })
                .collect(),
        }],
    }
}

/// The selection: every catalog table by ARN, through the backup role.
pub fn selection(facts: &LakeFacts, account: &str, role_arn: &str) -> SelectionSpec {
    let mut resources: Vec<String> = facts.tables.iter().map(|t| table_arn(&facts.region, account, t)).collect();
    resources.sort();
    SelectionSpec { name: SELECTION_NAME.into(), iam_role_arn: role_arn.to_string(), resources }
}

/// The purpose a selection's token is recorded under, naming its content: a selection of
/// other tables, another role or another plan is another selection.
pub fn selection_purpose(plan_id: &str, s: &SelectionSpec) -> String {
    format!("{SELECTION_PURPOSE}/{plan_id}/{}/{}", s.iam_role_arn, s.resources.join(","))
}

/// A selection's creation token: a hash of its content alone (the plan id makes it unique),
/// so `lakeops plan` of a manifest, which has no UID, recognises the selection too.
pub fn selection_request_id(plan_id: &str, s: &SelectionSpec) -> String {
    format!("lakeops-{:016x}", fnv1a(selection_purpose(plan_id, s).as_bytes()))
}

/// Only AWS Backup may assume the role. AWS Backup's documented service-role trust names
/// the service alone; a `aws:SourceAccount` condition is not documented for it, and a role
/// AWS Backup cannot assume fails every backup silently.
pub fn trust_policy() -> PolicyDocument {
    PolicyDocument::new(vec![Statement::new(
        "AwsBackupAssumesThisRole",
        Effect::Allow,
        Principal::service("backup.amazonaws.com"),
        &["sts:AssumeRole"],
        &[],
    )])
}

/// The role's permissions, least privilege: back up, describe and expire backups of exactly
/// the lake's tables, restore them under the same names, copy recovery points into the copy
/// vault, and use the lake key (through DynamoDB and AWS Backup in the lake's region) and
/// the copy region's replica key (through AWS Backup there). What AWS's managed
/// `AWSBackupServiceRolePolicyForBackup`/`...ForRestores` grant for DynamoDB, narrowed from
/// every table and key in the account to these.
pub fn role_policy(
    facts: &LakeFacts,
    account: &str,
    vaults: &[DesiredVault],
    copy_region: Option<&str>,
) -> PolicyDocument {
    let region = &facts.region;
    let tables: Vec<String> = facts.tables.iter().map(|t| table_arn(region, account, t)).collect();
    let backups: Vec<String> = tables.iter().map(|t| format!("{t}/backup/*")).collect();
    let vault_arns: Vec<String> = vaults.iter().map(|v| vault_arn(&v.region, account, &v.name)).collect();
    let mut statements = vec![
        Statement::new(
            "BackUpTheCatalogTables",
            Effect::Allow,
            Principal::none(),
            &[
                "dynamodb:DescribeTable",
                "dynamodb:CreateBackup",
                "dynamodb:ListTagsOfResource",
                "dynamodb:StartAwsBackupJob",
            ],
            &tables,
        ),
        Statement::new(
            "ManageTheirBackups",
            Effect::Allow,
            Principal::none(),
            &["dynamodb:DescribeBackup", "dynamodb:DeleteBackup", "dynamodb:RestoreTableFromBackup"],
            &backups,
        ),
        // A restore recreates a table under its name (after it was deleted) and writes its items.
        Statement::new(
            "RestoreTheCatalogTables",
            Effect::Allow,
            Principal::none(),
            &[
                "dynamodb:RestoreTableFromAwsBackup",
                "dynamodb:RestoreTableFromBackup",
                "dynamodb:BatchWriteItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:Query",
                "dynamodb:Scan",
            ],
            &tables,
        ),
        Statement::new(
            "UseTheVaults",
            Effect::Allow,
            Principal::none(),
            &["backup:DescribeBackupVault", "backup:CopyIntoBackupVault"],
            &vault_arns,
        ),
        Statement::new(
            "UseTheLakeKey",
            Effect::Allow,
            Principal::none(),
            &["kms:DescribeKey", "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"],
            std::slice::from_ref(&facts.key_arn),
        )
        .when(
            "StringEquals",
            "kms:ViaService",
            &[&format!("dynamodb.{region}.amazonaws.com"), &format!("backup.{region}.amazonaws.com")],
        ),
    ];
    if let Some(copy) = copy_region
        && let Some(v) = vaults.iter().find(|v| v.region == copy)
    {
        statements.push(
            Statement::new(
                "UseTheReplicaKeyForCopies",
                Effect::Allow,
                Principal::none(),
                &["kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey", "kms:CreateGrant"],
                std::slice::from_ref(&v.key_arn),
            )
            .when("StringEquals", "kms:ViaService", &[&format!("backup.{copy}.amazonaws.com")]),
        );
    }
    PolicyDocument::new(statements)
}

/// One AWS Backup write.
#[derive(Clone, Debug, PartialEq)]
pub enum BackupChange {
    CreateVault {
        region: String,
        name: String,
        key_arn: String,
        tags: BTreeMap<String, String>,
        request_id: String,
    },
    TagVault {
        region: String,
        name: String,
        arn: String,
        tags: BTreeMap<String, String>,
    },
    LockVault {
        region: String,
        name: String,
        min_days: i64,
        previous: Option<i64>,
    },
    CreatePlan {
        document: PlanDocument,
        tags: BTreeMap<String, String>,
        request_id: String,
    },
    UpdatePlan {
        id: String,
        document: PlanDocument,
        previous: PlanDocument,
    },
    DeletePlan {
        id: String,
        name: String,
    },
    CreateSelection {
        plan_id: String,
        plan_name: String,
        selection: SelectionSpec,
        request_id: String,
    },
    /// `replaced`: a new selection takes its place in the same round (not a weakening).
    DeleteSelection {
        plan_id: String,
        plan_name: String,
        selection_id: String,
        replaced: bool,
    },
    DeleteVault {
        region: String,
        name: String,
    },
}

impl BackupChange {
    pub fn setting(&self) -> &'static str {
        match self {
            BackupChange::CreateVault { .. } | BackupChange::DeleteVault { .. } => "backup vault",
            BackupChange::TagVault { .. } => "tags",
            BackupChange::LockVault { .. } => "vault lock",
            BackupChange::CreatePlan { .. } | BackupChange::UpdatePlan { .. } | BackupChange::DeletePlan { .. } => {
                "backup plan"
            }
            BackupChange::CreateSelection { .. } | BackupChange::DeleteSelection { .. } => "backup selection",
        }
    }

    pub fn resource(&self) -> &str {
        match self {
            BackupChange::CreateVault { name, .. }
            | BackupChange::TagVault { name, .. }
            | BackupChange::LockVault { name, .. }
            | BackupChange::DeleteVault { name, .. }
            | BackupChange::DeletePlan { name, .. }
            | BackupChange::CreateSelection { plan_name: name, .. }
            | BackupChange::DeleteSelection { plan_name: name, .. } => name,
            BackupChange::CreatePlan { document, .. } | BackupChange::UpdatePlan { document, .. } => &document.name,
        }
    }

    /// The region whose client sends the change (vaults live in two).
    pub fn region<'a>(&'a self, lake_region: &'a str) -> &'a str {
        match self {
            BackupChange::CreateVault { region, .. }
            | BackupChange::TagVault { region, .. }
            | BackupChange::LockVault { region, .. }
            | BackupChange::DeleteVault { region, .. } => region,
            _ => lake_region,
        }
    }

    pub fn weakens(&self) -> bool {
        match self {
            BackupChange::UpdatePlan { document, previous, .. } => plan_weakens(previous, document),
            BackupChange::DeletePlan { .. } | BackupChange::DeleteVault { .. } => true,
            BackupChange::DeleteSelection { replaced, .. } => !replaced,
            _ => false,
        }
    }

    pub fn action(&self) -> Option<crate::engine::Action> {
        use crate::engine::Action;
        match self {
            BackupChange::CreateVault { .. }
            | BackupChange::CreatePlan { .. }
            | BackupChange::CreateSelection { .. } => Some(Action::Create),
            BackupChange::DeletePlan { .. }
            | BackupChange::DeleteSelection { .. }
            | BackupChange::DeleteVault { .. } => Some(Action::Delete),
            BackupChange::TagVault { .. } | BackupChange::LockVault { .. } | BackupChange::UpdatePlan { .. } => None,
        }
    }
}

fn days(d: Option<i64>) -> String {
    d.map_or_else(|| "forever".to_string(), |d| format!("{d} days"))
}

fn rule_text(doc: &PlanDocument) -> String {
    doc.rules
        .iter()
        .map(|r| {
            let copies: Vec<String> = r
                .copies
                .iter()
                .map(|c| format!(", copy to {} kept {}", c.destination_vault_arn, days(c.delete_after_days)))
                .collect();
            format!("{} into {} kept {}{}", r.schedule, r.target_vault, days(r.delete_after_days), copies.join(""))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for BackupChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupChange::CreateVault { region, name, key_arn, .. } => {
                write!(f, "create backup vault {name} in {region} encrypted with {key_arn}")
            }
            BackupChange::TagVault { name, region, .. } => write!(f, "backup vault {name} in {region}: tags"),
            BackupChange::LockVault { name, region, min_days, previous } => write!(
                f,
                "backup vault {name} in {region}: vault lock, minimum retention {min_days} days (was {}), immutable after {LOCK_GRACE_DAYS} days",
                previous.map_or_else(|| "none".to_string(), |p| format!("{p} days"))
            ),
            BackupChange::CreatePlan { document, .. } => {
                write!(f, "create backup plan {}: {}", document.name, rule_text(document))
            }
            BackupChange::UpdatePlan { document, previous, .. } => {
                write!(f, "backup plan {}: {} -> {}", document.name, rule_text(previous), rule_text(document))
            }
            BackupChange::DeletePlan { name, .. } => {
                write!(f, "delete backup plan {name} (no new backups; recovery points stay)")
            }
            BackupChange::CreateSelection { plan_name, selection, .. } => write!(
                f,
                "backup plan {plan_name}: select {} through {}",
                selection.resources.join(", "),
                selection.iam_role_arn
            ),
            BackupChange::DeleteSelection { plan_name, selection_id, replaced, .. } => write!(
                f,
                "backup plan {plan_name}: delete selection {selection_id}{}",
                if *replaced { " (replaced)" } else { "" }
            ),
            BackupChange::DeleteVault { region, name } => write!(f, "delete empty backup vault {name} in {region}"),
        }
    }
}

crate::engine::describe_with_inherent!(BackupChange, BackupChange::action);

/// True when `new` keeps recovery points or copies shorter than `old`, or copies less.
pub fn plan_weakens(old: &PlanDocument, new: &PlanDocument) -> bool {
    let shorter = |o: Option<i64>, n: Option<i64>| match (o, n) {
        (None, Some(_)) => true,
        (Some(o), Some(n)) => n < o,
        _ => false,
    };
    old.rules.iter().any(|o| match new.rules.iter().find(|n| n.name == o.name) {
        None => true,
        Some(n) => {
            shorter(o.delete_after_days, n.delete_after_days)
                || o.copies.iter().any(|oc| {
                    match n.copies.iter().find(|nc| nc.destination_vault_arn == oc.destination_vault_arn) {
                        None => true,
                        Some(nc) => shorter(oc.delete_after_days, nc.delete_after_days),
                    }
                })
        }
    })
}

/// What a vault needs. `Err`: it exists with another key, which AWS cannot change.
pub fn vault_changes(
    d: &DesiredVault,
    observed: Option<&(VaultInfo, BTreeMap<String, String>)>,
    request_id: &str,
) -> Result<Vec<BackupChange>, String> {
    let mut out = Vec::new();
    let lock = |previous: Option<i64>| BackupChange::LockVault {
        region: d.region.clone(),
        name: d.name.clone(),
        min_days: d.lock_days.unwrap_or_default(),
        previous,
    };
    let Some((info, tags)) = observed else {
        out.push(BackupChange::CreateVault {
            region: d.region.clone(),
            name: d.name.clone(),
            key_arn: d.key_arn.clone(),
            tags: d.tags.clone(),
            request_id: request_id.to_string(),
        });
        if d.lock_days.is_some() {
            out.push(lock(None));
        }
        return Ok(out);
    };
    if let Some(key) = &info.encryption_key_arn
        && !crate::engine::is_placeholder(&d.key_arn)
        && key != &d.key_arn
    {
        return Err(format!(
            "backup vault {} in {} is encrypted with {key}, not {}; AWS Backup cannot change a vault's key: once it holds no recovery point, delete it and lakeops creates it again with the right key",
            d.name, d.region, d.key_arn
        ));
    }
    if d.tags.iter().any(|(k, v)| tags.get(k) != Some(v)) {
        out.push(BackupChange::TagVault {
            region: d.region.clone(),
            name: d.name.clone(),
            arn: info.arn.clone(),
            tags: d.tags.clone(),
        });
    }
    // Never shortened or removed: only a missing or shorter minimum is raised.
    let current = info.lock.as_ref().and_then(|l| l.min_retention_days);
    if let Some(want) = d.lock_days
        && current.is_none_or(|c| c < want)
    {
        out.push(lock(current));
    }
    Ok(out)
}

/// The selection changes: nothing when the wanted one exists (known by its request id);
/// else our old ones go (replaced) and the wanted one is created.
pub fn selection_changes(
    plan_id: &str,
    plan_name: &str,
    wanted: &SelectionSpec,
    request_id: &str,
    observed: &[SelectionSummary],
) -> Vec<BackupChange> {
    let present = observed.iter().any(|s| s.creator_request_id.as_deref() == Some(request_id));
    // Every other selection of ours goes: replaced now, or the leftover of an interrupted
    // replacement beside the wanted one.
    let mut out: Vec<BackupChange> = observed
        .iter()
        .filter(|s| s.name == SELECTION_NAME && s.creator_request_id.as_deref() != Some(request_id))
        .map(|s| BackupChange::DeleteSelection {
            plan_id: plan_id.into(),
            plan_name: plan_name.into(),
            selection_id: s.id.clone(),
            replaced: true,
        })
        .collect();
    if present {
        return out;
    }
    out.push(BackupChange::CreateSelection {
        plan_id: plan_id.into(),
        plan_name: plan_name.into(),
        selection: wanted.clone(),
        request_id: request_id.to_string(),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::backup::VaultLock;

    fn policy(spec: &str) -> BackupPolicy {
        serde_saphyr::from_str(&format!(
            "apiVersion: lakeops.dev/v1alpha1\nkind: BackupPolicy\nmetadata: {{name: backup, namespace: team-a, uid: p-1}}\nspec: {spec}\n"
        ))
        .expect("fixture")
    }

    const SPEC: &str = "{dataLakeRef: {name: sales}, retention: {mode: COMPLIANCE, days: 30}, tables: {backup: {retentionDays: 35, copy: {region: eu-central-1, retentionDays: 90}}}}";

    fn facts() -> LakeFacts {
        LakeFacts {
            region: "eu-west-1".into(),
            prefix: "team-a-sales".into(),
            key_arn: "arn:aws:kms:eu-west-1:1:key/lake".into(),
            object_lock: true,
            zones: Vec::new(),
            tables: vec!["team-a-sales-runs".into(), "team-a-sales-jobs".into()],
        }
    }

    fn keys() -> BTreeMap<String, String> {
        BTreeMap::from([("eu-central-1".to_string(), "arn:aws:kms:eu-central-1:1:key/replica".to_string())])
    }

    #[test]
    fn two_vaults_with_their_keys_and_the_compliance_lock() {
        let p = policy(SPEC);
        let v = vaults(&p, &p.spec, &facts(), &keys(), &BTreeMap::new());
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].region.as_str(), v[0].key_arn.as_str()), ("eu-west-1", "arn:aws:kms:eu-west-1:1:key/lake"));
        assert_eq!(
            (v[1].region.as_str(), v[1].key_arn.as_str()),
            ("eu-central-1", "arn:aws:kms:eu-central-1:1:key/replica")
        );
        assert_eq!(v[0].name, "lakeops-team-a-sales");
        assert!(v.iter().all(|v| v.lock_days == Some(30)));
        let g = policy(&SPEC.replace("COMPLIANCE", "GOVERNANCE"));
        assert!(vaults(&g, &g.spec, &facts(), &keys(), &BTreeMap::new()).iter().all(|v| v.lock_days.is_none()));
        let long = policy(&SPEC.replace("sales", &"s".repeat(60)));
        assert!(name(&long).len() <= 50);
    }

    #[test]
    fn the_plan_keeps_and_copies_as_the_spec_says() {
        let p = policy(SPEC);
        let doc = plan_document(&p, p.spec.tables.backup.as_ref().expect("backup"), "1");
        let rule = &doc.rules[0];
        assert_eq!((rule.schedule.as_str(), rule.delete_after_days), ("cron(0 5 ? * * *)", Some(35)));
        assert_eq!(
            rule.copies[0].destination_vault_arn,
            "arn:aws:backup:eu-central-1:1:backup-vault:lakeops-team-a-sales"
        );
        assert_eq!(rule.copies[0].delete_after_days, Some(90));
        let mut shorter = doc.clone();
        shorter.rules[0].delete_after_days = Some(10);
        assert!(plan_weakens(&doc, &shorter) && !plan_weakens(&shorter, &doc));
        let mut no_copy = doc.clone();
        no_copy.rules[0].copies.clear();
        assert!(plan_weakens(&doc, &no_copy) && !plan_weakens(&no_copy, &doc));
    }

    #[test]
    fn the_role_is_trusted_by_aws_backup_only_and_scoped_to_the_tables_and_keys() {
        let p = policy(SPEC);
        let v = vaults(&p, &p.spec, &facts(), &keys(), &BTreeMap::new());
        let trust: serde_json::Value = serde_json::from_str(&trust_policy().to_json()).expect("json");
        assert_eq!(trust["Statement"][0]["Principal"]["Service"], "backup.amazonaws.com");
        let doc = role_policy(&facts(), "1", &v, Some("eu-central-1"));
        for s in &doc.statements {
            assert!(s.resources.iter().all(|r| r != "*" && !r.contains("table/*")), "{}: {:?}", s.sid, s.resources);
            assert!(s.actions.iter().all(|a| !a.contains('*')), "{}", s.sid);
            if s.actions.iter().any(|a| a.starts_with("kms:")) {
                assert!(s.condition["StringEquals"].contains_key("kms:ViaService"), "{}", s.sid);
            }
        }
        let backup = doc.statements.iter().find(|s| s.sid == "BackUpTheCatalogTables").expect("backup");
        assert_eq!(backup.resources.len(), 2);
        let copy = doc.statements.iter().find(|s| s.sid == "UseTheReplicaKeyForCopies").expect("copy key");
        assert_eq!(copy.resources, ["arn:aws:kms:eu-central-1:1:key/replica"]);
    }

    #[test]
    fn a_vault_lock_is_added_or_raised_never_lowered_and_another_key_blocks() {
        let p = policy(SPEC);
        let d = &vaults(&p, &p.spec, &facts(), &keys(), &BTreeMap::new())[0];
        let created = vault_changes(d, None, "r").expect("ok");
        assert!(matches!(created[0], BackupChange::CreateVault { .. }));
        assert!(matches!(created[1], BackupChange::LockVault { min_days: 30, previous: None, .. }));
        let info = |min: Option<i64>, key: &str| VaultInfo {
            name: d.name.clone(),
            arn: "arn:v".into(),
            encryption_key_arn: Some(key.into()),
            recovery_points: 0,
            lock: min.map(|m| VaultLock { min_retention_days: Some(m), ..VaultLock::default() }),
        };
        let lower = (info(Some(10), &d.key_arn), BTreeMap::new());
        assert!(matches!(
            vault_changes(d, Some(&lower), "r").expect("ok")[..],
            [BackupChange::LockVault { min_days: 30, previous: Some(10), .. }]
        ));
        let higher = (info(Some(60), &d.key_arn), BTreeMap::new());
        assert_eq!(vault_changes(d, Some(&higher), "r").expect("ok"), vec![], "a longer lock is left as it is");
        let other = (info(None, "arn:aws:kms:eu-west-1:1:key/other"), BTreeMap::new());
        assert!(vault_changes(d, Some(&other), "r").expect_err("blocked").contains("cannot change a vault's key"));
    }

    #[test]
    fn a_selection_is_found_by_its_request_id_and_replaced_when_its_content_changes() {
        let s = selection(&facts(), "1", "arn:role");
        assert_eq!(s.resources[0], "arn:aws:dynamodb:eu-west-1:1:table/team-a-sales-jobs");
        let rid = selection_request_id("p", &s);
        assert_ne!(rid, selection_request_id("p2", &s), "another plan, another selection");
        assert!(rid.len() <= 50 && rid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{rid}");
        let ours = |id: &str, r: &str| SelectionSummary {
            id: id.into(),
            name: SELECTION_NAME.into(),
            iam_role_arn: "arn:role".into(),
            creator_request_id: Some(r.into()),
        };
        assert_eq!(selection_changes("p", "n", &s, &rid, &[ours("s1", &rid)]), vec![]);
        let changes = selection_changes("p", "n", &s, &rid, &[ours("s0", "older")]);
        assert!(matches!(
            &changes[..],
            [BackupChange::DeleteSelection { replaced: true, .. }, BackupChange::CreateSelection { .. }]
        ));
        assert!(changes.iter().all(|c| !c.weakens()), "a replacement is no weakening");
    }
}
