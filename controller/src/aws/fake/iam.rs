//! IAM in the fake account: roles with trust policy, permissions boundary, tags and inline
//! policies. Global: one set of roles for every region.
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Fail, FakeAws, check_json, fail, merge_tags, none_if_missing, ok_if_missing};
use crate::aws::error::AwsResult;
use crate::aws::iam::{IamApi, NewRole, RoleInfo};

const SERVICE: &str = "iam";
/// Calls to IAM are logged with this region.
const GLOBAL: &str = "";

/// A role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub description: String,
    pub assume_role_policy: String,
    pub permissions_boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Inline policies by name.
    pub policies: BTreeMap<String, String>,
}

impl Role {
    /// A role as CreateRole makes it from `role` in `account`.
    pub fn new(account: &str, role: &NewRole<'_>) -> Self {
        Self {
            name: role.name.to_string(),
            path: role.path.to_string(),
            arn: format!("arn:aws:iam::{account}:role{}{}", role.path, role.name),
            description: role.description.to_string(),
            assume_role_policy: role.assume_role_policy.to_string(),
            permissions_boundary: role.permissions_boundary.map(str::to_string),
            tags: role.tags.clone(),
            policies: BTreeMap::new(),
        }
    }

    /// A role that `owner` (`namespace/name`, the `lakeops.dev/owner` tag) owns, as another
    /// object's or another installation's role would be, to test that it is left alone.
    pub fn foreign(name: &str, account: &str, owner: &str) -> Self {
        Self {
            name: name.to_string(),
            path: "/lakeops/".to_string(),
            arn: format!("arn:aws:iam::{account}:role/lakeops/{name}"),
            description: "test".to_string(),
            assume_role_policy: "{}".to_string(),
            tags: BTreeMap::from([(lakeops_crds::names::tag::OWNER.to_string(), owner.to_string())]),
            ..Self::default()
        }
    }

    fn info(&self) -> RoleInfo {
        RoleInfo {
            name: self.name.clone(),
            arn: self.arn.clone(),
            assume_role_policy: self.assume_role_policy.clone(),
            permissions_boundary: self.permissions_boundary.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// [`IamApi`] on the fake account.
#[derive(Clone, Debug)]
pub struct FakeIam {
    aws: Arc<FakeAws>,
}

fn no_such_entity(what: &str) -> Fail {
    fail("NoSuchEntity", 404, format!("The role with name {what} cannot be found."))
}

impl FakeIam {
    pub(super) fn new(aws: Arc<FakeAws>) -> Self {
        Self { aws }
    }

    fn get<T>(&self, op: &'static str, name: &str, read: impl FnOnce(&Role) -> Result<T, Fail>) -> AwsResult<T> {
        self.aws.read(GLOBAL, SERVICE, op, name, |ctx| {
            ctx.res.roles.get(name).map_or_else(|| Err(no_such_entity(name)), read)
        })
    }

    fn put(&self, op: &'static str, name: &str, change: impl FnOnce(&mut Role) -> Result<(), Fail>) -> AwsResult<()> {
        self.aws.write(GLOBAL, SERVICE, op, name, |ctx| {
            ctx.res.roles.get_mut(name).map_or_else(|| Err(no_such_entity(name)), change)
        })
    }
}

#[async_trait]
impl IamApi for FakeIam {
    async fn get_role(&self, name: &str) -> AwsResult<Option<RoleInfo>> {
        none_if_missing(self.get("GetRole", name, |r| Ok(r.info())))
    }

    async fn create_role(&self, role: &NewRole<'_>) -> AwsResult<String> {
        self.aws.write(GLOBAL, SERVICE, "CreateRole", role.name, |ctx| {
            if ctx.res.roles.contains_key(role.name) {
                return Err(fail("EntityAlreadyExists", 409, format!("Role with name {} already exists.", role.name)));
            }
            if !role.path.starts_with('/') || !role.path.ends_with('/') {
                return Err(fail("ValidationError", 400, format!("The path {} must begin and end with /", role.path)));
            }
            check_json(role.assume_role_policy, "MalformedPolicyDocument")?;
            let created = Role::new(ctx.account, role);
            let arn = created.arn.clone();
            ctx.res.roles.insert(role.name.to_string(), created);
            Ok(arn)
        })
    }

    async fn update_assume_role_policy(&self, name: &str, policy: &str) -> AwsResult<()> {
        self.put("UpdateAssumeRolePolicy", name, |r| {
            check_json(policy, "MalformedPolicyDocument")?;
            r.assume_role_policy = policy.to_string();
            Ok(())
        })
    }

    async fn set_permissions_boundary(&self, name: &str, boundary: Option<&str>) -> AwsResult<()> {
        let op = if boundary.is_some() { "PutRolePermissionsBoundary" } else { "DeleteRolePermissionsBoundary" };
        self.put(op, name, |r| {
            r.permissions_boundary = boundary.map(str::to_string);
            Ok(())
        })
    }

    async fn tag_role(&self, name: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        self.put("TagRole", name, |r| {
            merge_tags(&mut r.tags, tags);
            Ok(())
        })
    }

    async fn list_role_policies(&self, name: &str) -> AwsResult<Vec<String>> {
        self.get("ListRolePolicies", name, |r| Ok(r.policies.keys().cloned().collect()))
    }

    async fn get_role_policy(&self, role: &str, policy: &str) -> AwsResult<Option<String>> {
        none_if_missing(self.get("GetRolePolicy", role, |r| {
            r.policies.get(policy).cloned().ok_or_else(|| {
                fail("NoSuchEntity", 404, format!("The role policy with name {policy} cannot be found."))
            })
        }))
    }

    async fn put_role_policy(&self, role: &str, policy: &str, document: &str) -> AwsResult<()> {
        self.put("PutRolePolicy", role, |r| {
            check_json(document, "MalformedPolicyDocument")?;
            r.policies.insert(policy.to_string(), document.to_string());
            Ok(())
        })
    }

    async fn delete_role_policy(&self, role: &str, policy: &str) -> AwsResult<()> {
        let result = self.put("DeleteRolePolicy", role, |r| {
            r.policies.remove(policy).map(drop).ok_or_else(|| {
                fail("NoSuchEntity", 404, format!("The role policy with name {policy} cannot be found."))
            })
        });
        ok_if_missing(result)
    }

    async fn delete_role(&self, name: &str) -> AwsResult<()> {
        let result = self.aws.write(GLOBAL, SERVICE, "DeleteRole", name, |ctx| {
            let role = ctx.res.roles.get(name).ok_or_else(|| no_such_entity(name))?;
            if !role.policies.is_empty() {
                return Err(fail("DeleteConflict", 409, "Cannot delete entity, must delete policies first."));
            }
            ctx.res.roles.remove(name);
            Ok(())
        });
        ok_if_missing(result)
    }
}

// ----- helpers for tests' starting states -----

impl FakeAws {
    /// A role as CreateRole makes it. Returns its ARN.
    pub fn with_role(&self, role: &NewRole<'_>) -> String {
        let created = Role::new(&self.account, role);
        let arn = created.arn.clone();
        self.edit(|r| r.roles.insert(role.name.to_string(), created));
        arn
    }

    /// Changes one role; `None` when there is no such role.
    pub fn edit_role<R>(&self, name: &str, change: impl FnOnce(&mut Role) -> R) -> Option<R> {
        self.edit(|r| r.roles.get_mut(name).map(change))
    }

    /// A copy of one role as it is now.
    pub fn role(&self, name: &str) -> Option<Role> {
        self.world().now.roles.get(name).cloned()
    }
}
