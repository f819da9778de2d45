//! The owned IAM role step, shared by the EtlFunction execution role and BackupPolicy's
//! replication role: one role with one inline policy, created with its trust policy, tags
//! and optional permissions boundary, converged, and deleted (inline policies first) only
//! when its tags say it is ours.
use std::collections::BTreeMap;
use std::fmt;

use crate::aws::error::{AwsError, AwsResult};
use crate::aws::iam::{IamApi, NewRole, RoleInfo};
use crate::policy::PolicyDocument;

use super::{Action, Describe, Exec, Stop};

/// A role lakeops generates and owns.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedRole {
    pub name: String,
    pub path: &'static str,
    pub description: &'static str,
    pub trust: PolicyDocument,
    /// The one inline policy: its name and document.
    pub policy_name: &'static str,
    pub policy: PolicyDocument,
    /// The permissions boundary every generated role carries (a controller flag).
    pub boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// What was read of a role (2 reads).
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedRole {
    pub info: RoleInfo,
    /// The inline policy, decoded JSON.
    pub policy: Option<String>,
}

/// One IAM write.
#[derive(Clone, Debug, PartialEq)]
pub enum RoleChange {
    CreateRole(Box<OwnedRole>),
    UpdateTrust { role: String, policy: String },
    SetBoundary { role: String, boundary: Option<String> },
    TagRole { role: String, tags: BTreeMap<String, String> },
    PutRolePolicy { role: String, name: String, document: String },
    DeleteRolePolicy { role: String, name: String },
    DeleteRole { role: String },
}

impl Describe for RoleChange {
    fn setting(&self) -> &'static str {
        match self {
            RoleChange::CreateRole(_) | RoleChange::DeleteRole { .. } => "role",
            RoleChange::UpdateTrust { .. } => "role trust policy",
            RoleChange::SetBoundary { .. } => "role permissions boundary",
            RoleChange::TagRole { .. } => "ownership tags",
            RoleChange::PutRolePolicy { .. } | RoleChange::DeleteRolePolicy { .. } => "role permissions",
        }
    }

    fn resource(&self) -> &str {
        match self {
            RoleChange::CreateRole(r) => &r.name,
            RoleChange::UpdateTrust { role, .. }
            | RoleChange::SetBoundary { role, .. }
            | RoleChange::TagRole { role, .. }
            | RoleChange::PutRolePolicy { role, .. }
            | RoleChange::DeleteRolePolicy { role, .. }
            | RoleChange::DeleteRole { role } => role,
        }
    }

    fn weakens(&self) -> bool {
        false
    }

    fn action(&self) -> Option<Action> {
        match self {
            RoleChange::CreateRole(_) => Some(Action::Create),
            RoleChange::DeleteRolePolicy { .. } | RoleChange::DeleteRole { .. } => Some(Action::Delete),
            RoleChange::UpdateTrust { .. }
            | RoleChange::SetBoundary { .. }
            | RoleChange::TagRole { .. }
            | RoleChange::PutRolePolicy { .. } => None,
        }
    }
}

impl fmt::Display for RoleChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleChange::CreateRole(r) => write!(f, "create role {} with inline policy {}", r.name, r.policy_name),
            RoleChange::UpdateTrust { role, .. } => write!(f, "role {role}: restore the trust policy"),
            RoleChange::SetBoundary { role, boundary: Some(b) } => {
                write!(f, "role {role}: set permissions boundary {b}")
            }
            RoleChange::SetBoundary { role, boundary: None } => {
                write!(f, "role {role}: remove the permissions boundary")
            }
            RoleChange::TagRole { role, .. } => write!(f, "role {role}: tag"),
            RoleChange::PutRolePolicy { role, name, .. } => write!(f, "role {role}: set inline policy {name}"),
            RoleChange::DeleteRolePolicy { role, name } => write!(f, "role {role}: delete inline policy {name}"),
            RoleChange::DeleteRole { role } => write!(f, "delete role {role}"),
        }
    }
}

/// Sends one role change. Returns the new role's ARN for CreateRole.
pub async fn apply(iam: &dyn IamApi, change: &RoleChange) -> AwsResult<Option<String>> {
    let done = match change {
        RoleChange::CreateRole(r) => {
            let trust = r.trust.to_json();
            let role = NewRole {
                name: &r.name,
                path: r.path,
                description: r.description,
                assume_role_policy: &trust,
                permissions_boundary: r.boundary.as_deref(),
                tags: &r.tags,
            };
            return iam.create_role(&role).await.map(Some);
        }
        RoleChange::UpdateTrust { role, policy } => iam.update_assume_role_policy(role, policy).await,
        RoleChange::SetBoundary { role, boundary } => iam.set_permissions_boundary(role, boundary.as_deref()).await,
        RoleChange::TagRole { role, tags } => iam.tag_role(role, tags).await,
        RoleChange::PutRolePolicy { role, name, document } => iam.put_role_policy(role, name, document).await,
        RoleChange::DeleteRolePolicy { role, name } => iam.delete_role_policy(role, name).await,
        RoleChange::DeleteRole { role } => iam.delete_role(role).await,
    };
    done.map(|()| None)
}

/// The role and its inline policy (2 reads). `None` when the role does not exist.
pub async fn observe(iam: &dyn IamApi, name: &str, policy_name: &str) -> AwsResult<Option<ObservedRole>> {
    let Some(info) = iam.get_role(name).await? else { return Ok(None) };
    let policy = iam.get_role_policy(name, policy_name).await?;
    Ok(Some(ObservedRole { info, policy }))
}

/// Changes that create or converge the role. Tags others put on it are kept (TagRole adds).
pub fn changes(d: &OwnedRole, observed: Option<&ObservedRole>) -> Vec<RoleChange> {
    let put_policy = || RoleChange::PutRolePolicy {
        role: d.name.clone(),
        name: d.policy_name.to_string(),
        document: d.policy.to_json(),
    };
    let Some(o) = observed else { return vec![RoleChange::CreateRole(Box::new(d.clone())), put_policy()] };
    let mut out = Vec::new();
    if !d.trust.matches_json(&o.info.assume_role_policy) {
        out.push(RoleChange::UpdateTrust { role: d.name.clone(), policy: d.trust.to_json() });
    }
    if o.info.permissions_boundary != d.boundary {
        out.push(RoleChange::SetBoundary { role: d.name.clone(), boundary: d.boundary.clone() });
    }
    let missing: BTreeMap<String, String> =
        d.tags.iter().filter(|(k, v)| o.info.tags.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
    if !missing.is_empty() {
        out.push(RoleChange::TagRole { role: d.name.clone(), tags: missing });
    }
    if !o.policy.as_deref().is_some_and(|p| d.policy.matches_json(p)) {
        out.push(put_policy());
    }
    out
}

/// Converges the already observed role (ownership checked at first sight, that is when
/// status has not recorded `recorded_arn` for it). Returns its ARN (the one IAM would give
/// it when planning a create: role ARNs are predictable).
pub async fn converge<S: Sync>(
    exec: &Exec<'_, S>,
    iam: &dyn IamApi,
    d: &OwnedRole,
    observed: Option<&ObservedRole>,
    recorded_arn: Option<&str>,
    predicted_arn: String,
) -> Result<String, Stop> {
    if let Some(o) = observed
        && recorded_arn != Some(o.info.arn.as_str())
    {
        exec.owned(&format!("IAM role {}", d.name), &o.info.tags)?;
    }
    let label = format!("role {}", d.name);
    let mut arn = observed.map(|o| o.info.arn.clone());
    for change in changes(d, observed) {
        if let Some(created) = exec.change(&change, observed.is_some(), &label, apply(iam, &change)).await? {
            arn = Some(created);
        }
    }
    Ok(arn.unwrap_or(predicted_arn))
}

/// Deletes the role `name` and its inline policies (IAM refuses to delete a role that has
/// any) when its tags say it is ours; a role that is not ours, or gone, is left alone.
pub async fn delete<S: Sync>(
    exec: &Exec<'_, S>,
    iam: &dyn IamApi,
    name: &str,
    owned: impl Fn(&BTreeMap<String, String>) -> bool,
) -> Result<(), Stop> {
    let Some(role) = iam.get_role(name).await? else { return Ok(()) };
    if !owned(&role.tags) {
        return Ok(());
    }
    let label = format!("role {name}");
    for policy in iam.list_role_policies(name).await? {
        let change = RoleChange::DeleteRolePolicy { role: name.to_string(), name: policy };
        exec.change(&change, true, &label, apply(iam, &change)).await?;
    }
    let change = RoleChange::DeleteRole { role: name.to_string() };
    exec.change(&change, true, &label, apply(iam, &change)).await?;
    Ok(())
}

/// IAM is eventually consistent: a service may refuse a role created a moment ago. Calls
/// that name one are retried at this pace...
const PROPAGATION_STEP: std::time::Duration = std::time::Duration::from_secs(2);
/// ...for at most this long.
const PROPAGATION_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs `call`, retrying while `not_yet` says the service refused a freshly created role
/// (each service words it its own way).
pub async fn retry_while_propagating<T, F, Fut>(not_yet: fn(&AwsError) -> bool, mut call: F) -> AwsResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = AwsResult<T>>,
{
    let deadline = tokio::time::Instant::now() + PROPAGATION_LIMIT;
    loop {
        match call().await {
            Err(e) if not_yet(&e) && tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "the role is not usable yet; retrying");
                tokio::time::sleep(PROPAGATION_STEP).await;
            }
            result => return result,
        }
    }
}
