//! The IAM operations lakeops uses: roles it generates (Lambda execution roles, the S3
//! replication role) and their inline policies. IAM is global; one client serves every lake.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_iam::types::Tag;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::{AwsError, AwsResult};

/// What GetRole tells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleInfo {
    pub name: String,
    pub arn: String,
    /// The trust policy, decoded JSON.
    pub assume_role_policy: String,
    /// ARN of the permissions boundary, when one is attached.
    pub permissions_boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// A role to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRole<'a> {
    pub name: &'a str,
    pub path: &'a str,
    pub description: &'a str,
    pub assume_role_policy: &'a str,
    pub permissions_boundary: Option<&'a str>,
    pub tags: &'a BTreeMap<String, String>,
}

/// The IAM calls lakeops makes; one AWS request each unless it says otherwise.
#[async_trait]
pub trait IamApi: Send + Sync {
    /// GetRole. `Ok(None)` when there is no such role.
    async fn get_role(&self, name: &str) -> AwsResult<Option<RoleInfo>>;
    /// CreateRole with its trust policy, boundary and tags; returns the ARN. A role of that
    /// name that already carries every one of the tags is ours (a retried create whose first
    /// answer was lost): its ARN is returned.
    async fn create_role(&self, role: &NewRole<'_>) -> AwsResult<String>;
    /// UpdateAssumeRolePolicy.
    async fn update_assume_role_policy(&self, name: &str, policy: &str) -> AwsResult<()>;
    /// PutRolePermissionsBoundary, or DeleteRolePermissionsBoundary for `None`.
    async fn set_permissions_boundary(&self, name: &str, boundary: Option<&str>) -> AwsResult<()>;
    /// TagRole.
    async fn tag_role(&self, name: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
    /// ListRolePolicies (all pages): the names of the role's inline policies.
    async fn list_role_policies(&self, name: &str) -> AwsResult<Vec<String>>;
    /// GetRolePolicy: the decoded JSON. `Ok(None)` when the role has no such policy.
    async fn get_role_policy(&self, role: &str, policy: &str) -> AwsResult<Option<String>>;
    /// PutRolePolicy (creates or replaces).
    async fn put_role_policy(&self, role: &str, policy: &str, document: &str) -> AwsResult<()>;
    /// DeleteRolePolicy. A missing policy is success.
    async fn delete_role_policy(&self, role: &str, policy: &str) -> AwsResult<()>;
    /// DeleteRole. A missing role is success.
    async fn delete_role(&self, name: &str) -> AwsResult<()>;
}

/// [`IamApi`] on the AWS SDK.
pub struct SdkIam {
    client: aws_sdk_iam::Client,
}

impl SdkIam {
    pub fn new(client: aws_sdk_iam::Client) -> Self {
        Self { client }
    }
}

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("iam", operation, resource, err)
}

fn not_found_is_none<T>(result: AwsResult<T>) -> AwsResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

fn sdk_tags(operation: &'static str, resource: &str, tags: &BTreeMap<String, String>) -> AwsResult<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| {
                AwsError::classify("iam", operation, resource, Some("InvalidTag"), Some(&e.to_string()), None)
            })
        })
        .collect()
}

/// IAM returns policy documents URL-encoded (RFC 3986); emulators sometimes do not.
/// Anything that is not a valid escape is kept as it is.
pub fn decode_policy(raw: &str) -> String {
    if raw.trim_start().starts_with('{') {
        return raw.to_string();
    }
    super::requests::percent_decode(raw, false)
}

#[async_trait]
impl IamApi for SdkIam {
    async fn get_role(&self, name: &str) -> AwsResult<Option<RoleInfo>> {
        const OP: &str = "GetRole";
        let out = not_found_is_none(
            self.client.get_role().role_name(name).send().await.map_err(|e| sdk_error(OP, name, &e)),
        )?;
        let Some(role) = out.and_then(|o| o.role) else { return Ok(None) };
        Ok(Some(RoleInfo {
            name: role.role_name.clone(),
            arn: role.arn.clone(),
            assume_role_policy: role.assume_role_policy_document.as_deref().map(decode_policy).unwrap_or_default(),
            permissions_boundary: role.permissions_boundary.and_then(|b| b.permissions_boundary_arn),
            tags: role.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect(),
        }))
    }

    async fn create_role(&self, role: &NewRole<'_>) -> AwsResult<String> {
        const OP: &str = "CreateRole";
        let tags = sdk_tags(OP, role.name, role.tags)?;
        let out = self
            .client
            .create_role()
            .role_name(role.name)
            .path(role.path)
            .description(role.description)
            .assume_role_policy_document(role.assume_role_policy)
            .set_permissions_boundary(role.permissions_boundary.map(str::to_string))
            .set_tags((!tags.is_empty()).then_some(tags))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                let err = sdk_error(OP, role.name, &e);
                if err.is_already_exists()
                    && let Some(found) = self.get_role(role.name).await?
                    && role.tags.iter().all(|(k, v)| found.tags.get(k) == Some(v))
                {
                    return Ok(found.arn);
                }
                return Err(err);
            }
        };
        out.role
            .map(|r| r.arn)
            .ok_or_else(|| AwsError::classify("iam", OP, role.name, None, Some("the response has no Role"), None))
    }

    async fn update_assume_role_policy(&self, name: &str, policy: &str) -> AwsResult<()> {
        self.client
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(policy)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateAssumeRolePolicy", name, &e))?;
        Ok(())
    }

    async fn set_permissions_boundary(&self, name: &str, boundary: Option<&str>) -> AwsResult<()> {
        match boundary {
            Some(arn) => {
                self.client
                    .put_role_permissions_boundary()
                    .role_name(name)
                    .permissions_boundary(arn)
                    .send()
                    .await
                    .map_err(|e| sdk_error("PutRolePermissionsBoundary", name, &e))?;
            }
            None => {
                self.client
                    .delete_role_permissions_boundary()
                    .role_name(name)
                    .send()
                    .await
                    .map_err(|e| sdk_error("DeleteRolePermissionsBoundary", name, &e))?;
            }
        }
        Ok(())
    }

    async fn tag_role(&self, name: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        const OP: &str = "TagRole";
        let tags = sdk_tags(OP, name, tags)?;
        self.client
            .tag_role()
            .role_name(name)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_error(OP, name, &e))?;
        Ok(())
    }

    async fn list_role_policies(&self, name: &str) -> AwsResult<Vec<String>> {
        const OP: &str = "ListRolePolicies";
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_role_policies()
                .role_name(name)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_error(OP, name, &e))?;
            names.extend(out.policy_names);
            match out.marker {
                Some(next) if out.is_truncated && !next.is_empty() => marker = Some(next),
                _ => return Ok(names),
            }
        }
    }

    async fn get_role_policy(&self, role: &str, policy: &str) -> AwsResult<Option<String>> {
        const OP: &str = "GetRolePolicy";
        let out = self.client.get_role_policy().role_name(role).policy_name(policy).send().await;
        Ok(not_found_is_none(out.map_err(|e| sdk_error(OP, role, &e)))?.map(|o| decode_policy(&o.policy_document)))
    }

    async fn put_role_policy(&self, role: &str, policy: &str, document: &str) -> AwsResult<()> {
        self.client
            .put_role_policy()
            .role_name(role)
            .policy_name(policy)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| sdk_error("PutRolePolicy", role, &e))?;
        Ok(())
    }

    async fn delete_role_policy(&self, role: &str, policy: &str) -> AwsResult<()> {
        let out = self.client.delete_role_policy().role_name(role).policy_name(policy).send().await;
        not_found_is_none(out.map_err(|e| sdk_error("DeleteRolePolicy", role, &e))).map(|_| ())
    }

    async fn delete_role(&self, name: &str) -> AwsResult<()> {
        let out = self.client.delete_role().role_name(name).send().await;
        not_found_is_none(out.map_err(|e| sdk_error("DeleteRole", name, &e))).map(|_| ())
    }
}

#[cfg(test)]
mod tests {

    use aws_sdk_iam::operation::get_role::GetRoleOutput;
    use aws_sdk_iam::operation::get_role_policy::GetRolePolicyOutput;
    use aws_sdk_iam::types::{AttachedPermissionsBoundary, Role};
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::aws::error::ErrorKind;

    fn iam(rules: &[&Rule]) -> SdkIam {
        SdkIam::new(aws_sdk_iam::Client::from_conf(crate::aws::mocked_config!(aws_sdk_iam, rules).build()))
    }

    /// An error response as IAM sends it (awsQuery XML).
    fn xml_error(status: u16, code: &'static str) -> impl Fn() -> HttpResponse + Send + Sync + 'static {
        move || {
            let body = format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{code} happened</Message></Error></ErrorResponse>"
            );
            HttpResponse::new(StatusCode::try_from(status).expect("status"), SdkBody::from(body))
        }
    }

    #[test]
    fn url_encoded_policies_are_decoded_and_plain_json_is_kept() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(decode_policy(encoded), r#"{"Version":"2012-10-17","Statement":[]}"#);
        assert_eq!(decode_policy(r#"{"a":"100%"}"#), r#"{"a":"100%"}"#);
        assert_eq!(decode_policy("%7B%2"), "{%2", "a broken escape is kept as it is");
    }

    #[tokio::test]
    async fn a_missing_role_is_none_and_a_denied_read_is_an_error() {
        let missing = mock!(aws_sdk_iam::Client::get_role).then_http_response(xml_error(404, "NoSuchEntity"));
        let denied = mock!(aws_sdk_iam::Client::get_role).then_http_response(xml_error(403, "AccessDenied"));
        let iam = iam(&[&missing, &denied]);

        assert_eq!(iam.get_role("r").await, Ok(None));
        let err = iam.get_role("r").await.expect_err("denied");
        assert_eq!((err.kind, err.operation, err.resource.as_str()), (ErrorKind::AccessDenied, "GetRole", "r"));
    }

    #[tokio::test]
    async fn a_role_is_read_with_its_decoded_trust_policy_boundary_and_tags() {
        let rule =
            mock!(aws_sdk_iam::Client::get_role).match_requests(|r| r.role_name() == Some("etl")).then_output(|| {
                let role = Role::builder()
                    .path("/lakeops/")
                    .role_name("etl")
                    .role_id("AROA1")
                    .arn("arn:aws:iam::123456789012:role/lakeops/etl")
                    .create_date(aws_smithy_types::DateTime::from_secs(0))
                    .assume_role_policy_document("%7B%22Version%22%3A%222012-10-17%22%7D")
                    .permissions_boundary(
                        AttachedPermissionsBoundary::builder().permissions_boundary_arn("arn:b").build(),
                    )
                    .tags(Tag::builder().key("k").value("v").build().expect("tag"))
                    .build()
                    .expect("role");
                GetRoleOutput::builder().role(role).build()
            });

        let role = iam(&[&rule]).get_role("etl").await.expect("read").expect("exists");

        assert_eq!(role.assume_role_policy, r#"{"Version":"2012-10-17"}"#);
        assert_eq!(role.permissions_boundary.as_deref(), Some("arn:b"));
        assert_eq!(role.tags.get("k").map(String::as_str), Some("v"));
    }

    #[tokio::test]
    async fn inline_policies_are_decoded_and_deleting_a_missing_one_is_success() {
        let get = mock!(aws_sdk_iam::Client::get_role_policy).then_output(|| {
            GetRolePolicyOutput::builder()
                .role_name("etl")
                .policy_name("p")
                .policy_document("%7B%7D")
                .build()
                .expect("output")
        });
        let delete = mock!(aws_sdk_iam::Client::delete_role_policy).then_http_response(xml_error(404, "NoSuchEntity"));
        let iam = iam(&[&get, &delete]);

        assert_eq!(iam.get_role_policy("etl", "p").await, Ok(Some("{}".to_string())));
        assert_eq!(iam.delete_role_policy("etl", "p").await, Ok(()));
    }

    fn role_with_tag(owner: &'static str) -> impl Fn() -> GetRoleOutput + Send + Sync + 'static {
        move || {
            let role = Role::builder()
                .path("/lakeops/")
                .role_name("etl")
                .role_id("AROA1")
                .arn("arn:aws:iam::123456789012:role/lakeops/etl")
                .create_date(aws_smithy_types::DateTime::from_secs(0))
                .tags(Tag::builder().key("lakeops.dev/owner").value(owner).build().expect("tag"))
                .build()
                .expect("role");
            GetRoleOutput::builder().role(role).build()
        }
    }

    fn new_role(tags: &BTreeMap<String, String>) -> NewRole<'_> {
        NewRole {
            name: "etl",
            path: "/lakeops/",
            description: "d",
            assume_role_policy: "{}",
            permissions_boundary: None,
            tags,
        }
    }

    #[tokio::test]
    async fn a_retried_create_role_that_finds_our_role_returns_its_arn() {
        let create = mock!(aws_sdk_iam::Client::create_role).then_http_response(xml_error(409, "EntityAlreadyExists"));
        let get = mock!(aws_sdk_iam::Client::get_role).then_output(role_with_tag("ns/f"));
        let tags = BTreeMap::from([("lakeops.dev/owner".to_string(), "ns/f".to_string())]);

        let arn = iam(&[&create, &get]).create_role(&new_role(&tags)).await;

        assert_eq!(arn.as_deref(), Ok("arn:aws:iam::123456789012:role/lakeops/etl"));
    }

    #[tokio::test]
    async fn a_role_of_that_name_owned_by_another_is_not_taken_for_ours() {
        let create = mock!(aws_sdk_iam::Client::create_role).then_http_response(xml_error(409, "EntityAlreadyExists"));
        let get = mock!(aws_sdk_iam::Client::get_role).then_output(role_with_tag("other/f"));
        let tags = BTreeMap::from([("lakeops.dev/owner".to_string(), "ns/f".to_string())]);

        let err = iam(&[&create, &get]).create_role(&new_role(&tags)).await.expect_err("not ours");

        assert_eq!(err.kind, ErrorKind::AlreadyExists);
    }
}
