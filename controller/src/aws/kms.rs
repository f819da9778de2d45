//! The KMS operations lakeops uses.
use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_kms::operation::describe_key::DescribeKeyError;
use aws_sdk_kms::types::{KeyMetadata, KeySpec, KeyUsageType, Tag};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::RetryConfig;

use super::error::{AwsError, AwsResult};

/// What DescribeKey tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub key_id: String,
    pub arn: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, ...
    pub state: String,
    /// `CUSTOMER` or `AWS`.
    pub manager: String,
}

/// Rotation settings of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub enabled: bool,
    /// `RotationPeriodInDays`, when AWS reports it.
    pub period_days: Option<i32>,
}

/// The KMS calls lakeops makes; one AWS request each.
#[async_trait]
pub trait KmsApi: Send + Sync {
    /// DescribeKey by id, ARN or `alias/...`. `Ok(None)` when there is no such key or alias.
    async fn describe_key(&self, key: &str) -> AwsResult<Option<KeyInfo>>;
    /// CreateKey: symmetric, ENCRYPT_DECRYPT, with this policy and tags. Sent exactly once:
    /// CreateKey is not idempotent, so the SDK's own retries are off for it (a retry after a
    /// lost answer would make a second key that nothing records). A failure whose outcome is
    /// unknown comes back as [`ErrorKind::OutcomeUnknown`](super::error::ErrorKind).
    async fn create_key(&self, description: &str, policy: &str, tags: &BTreeMap<String, String>) -> AwsResult<KeyInfo>;
    /// CreateAlias. An alias that already points to `key_id` is success: that is our own
    /// earlier create whose answer was lost.
    async fn create_alias(&self, alias: &str, key_id: &str) -> AwsResult<()>;
    /// GetKeyRotationStatus.
    async fn get_rotation(&self, key_id: &str) -> AwsResult<Rotation>;
    /// EnableKeyRotation with RotationPeriodInDays.
    async fn enable_rotation(&self, key_id: &str, period_days: i32) -> AwsResult<()>;
    /// GetKeyPolicy (policy name `default`).
    async fn get_key_policy(&self, key_id: &str) -> AwsResult<String>;
    /// PutKeyPolicy (policy name `default`).
    async fn put_key_policy(&self, key_id: &str, policy: &str) -> AwsResult<()>;
    /// ListResourceTags (all pages).
    async fn list_tags(&self, key_id: &str) -> AwsResult<BTreeMap<String, String>>;
    /// TagResource.
    async fn tag(&self, key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()>;
    /// ScheduleKeyDeletion with a pending window.
    async fn schedule_deletion(&self, key_id: &str, pending_days: i32) -> AwsResult<()>;
    /// The id of the key tagged `tag_key = tag_value`, if any: ListKeys, then
    /// ListResourceTags per key. Costly (one read per key in the region), so called only to
    /// recover a create whose answer was lost (a recorded creation token, no ARN).
    async fn find_key_by_tag(&self, tag_key: &str, tag_value: &str) -> AwsResult<Option<String>>;
    /// ListAliases of the region (every page), keeping those whose name starts with
    /// `prefix`: `(alias name, target key id)`, sorted by alias.
    async fn aliases(&self, prefix: &str) -> AwsResult<Vec<(String, String)>>;
}

/// [`KmsApi`] on the AWS SDK.
pub struct SdkKms {
    client: aws_sdk_kms::Client,
}

impl SdkKms {
    pub fn new(client: aws_sdk_kms::Client) -> Self {
        Self { client }
    }
}

/// The policy every key has; KMS keys have exactly one.
const POLICY_NAME: &str = "default";

fn sdk_error<E>(operation: &'static str, resource: &str, err: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    super::error::from_sdk("kms", operation, resource, err)
}

/// A success response that lacks something lakeops needs.
fn incomplete(operation: &'static str, resource: &str, what: &str) -> AwsError {
    AwsError::classify("kms", operation, resource, None, Some(&format!("the response has no {what}")), None)
}

fn key_info(operation: &'static str, resource: &str, meta: Option<&KeyMetadata>) -> AwsResult<KeyInfo> {
    let meta = meta.ok_or_else(|| incomplete(operation, resource, "KeyMetadata"))?;
    Ok(KeyInfo {
        key_id: meta.key_id().to_string(),
        arn: meta.arn().ok_or_else(|| incomplete(operation, resource, "key ARN"))?.to_string(),
        state: meta.key_state().map(|s| s.as_str().to_string()).unwrap_or_default(),
        manager: meta.key_manager().map(|m| m.as_str().to_string()).unwrap_or_default(),
    })
}

fn sdk_tags(operation: &'static str, resource: &str, tags: &BTreeMap<String, String>) -> AwsResult<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder().tag_key(k).tag_value(v).build().map_err(|e| {
                AwsError::classify("kms", operation, resource, Some("InvalidTag"), Some(&e.to_string()), None)
            })
        })
        .collect()
}

#[async_trait]
impl KmsApi for SdkKms {
    async fn describe_key(&self, key: &str) -> AwsResult<Option<KeyInfo>> {
        const OP: &str = "DescribeKey";
        match self.client.describe_key().key_id(key).send().await {
            Ok(out) => key_info(OP, key, out.key_metadata()).map(Some),
            // By type as well as by code: a modeled error need not carry its code.
            Err(e) if e.as_service_error().is_some_and(DescribeKeyError::is_not_found_exception) => Ok(None),
            Err(e) => match sdk_error(OP, key, &e) {
                err if err.is_not_found() => Ok(None),
                err => Err(err),
            },
        }
    }

    async fn create_key(&self, description: &str, policy: &str, tags: &BTreeMap<String, String>) -> AwsResult<KeyInfo> {
        const OP: &str = "CreateKey";
        let tags = sdk_tags(OP, description, tags)?;
        let out = self
            .client
            .create_key()
            .description(description)
            .key_spec(KeySpec::SymmetricDefault)
            .key_usage(KeyUsageType::EncryptDecrypt)
            .policy(policy)
            .bypass_policy_lockout_safety_check(false)
            .set_tags((!tags.is_empty()).then_some(tags))
            .customize()
            .config_override(aws_sdk_kms::config::Config::builder().retry_config(RetryConfig::disabled()))
            .send()
            .await
            .map_err(|e| sdk_error(OP, description, &e))?;
        key_info(OP, description, out.key_metadata())
    }

    async fn create_alias(&self, alias: &str, key_id: &str) -> AwsResult<()> {
        const OP: &str = "CreateAlias";
        let err = match self.client.create_alias().alias_name(alias).target_key_id(key_id).send().await {
            Ok(_) => return Ok(()),
            Err(e) => sdk_error(OP, alias, &e),
        };
        if err.is_already_exists() {
            // `key_id` may be an id or an ARN; DescribeKey of the alias gives both.
            let target = self.describe_key(alias).await?;
            if target.is_some_and(|k| k.key_id == key_id || k.arn == key_id) {
                return Ok(());
            }
        }
        Err(err)
    }

    async fn get_rotation(&self, key_id: &str) -> AwsResult<Rotation> {
        let out = self
            .client
            .get_key_rotation_status()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| sdk_error("GetKeyRotationStatus", key_id, &e))?;
        Ok(Rotation { enabled: out.key_rotation_enabled(), period_days: out.rotation_period_in_days() })
    }

    async fn enable_rotation(&self, key_id: &str, period_days: i32) -> AwsResult<()> {
        self.client
            .enable_key_rotation()
            .key_id(key_id)
            .rotation_period_in_days(period_days)
            .send()
            .await
            .map_err(|e| sdk_error("EnableKeyRotation", key_id, &e))?;
        Ok(())
    }

    async fn get_key_policy(&self, key_id: &str) -> AwsResult<String> {
        const OP: &str = "GetKeyPolicy";
        let out = self
            .client
            .get_key_policy()
            .key_id(key_id)
            .policy_name(POLICY_NAME)
            .send()
            .await
            .map_err(|e| sdk_error(OP, key_id, &e))?;
        out.policy.ok_or_else(|| incomplete(OP, key_id, "policy"))
    }

    async fn put_key_policy(&self, key_id: &str, policy: &str) -> AwsResult<()> {
        self.client
            .put_key_policy()
            .key_id(key_id)
            .policy_name(POLICY_NAME)
            .policy(policy)
            .bypass_policy_lockout_safety_check(false)
            .send()
            .await
            .map_err(|e| sdk_error("PutKeyPolicy", key_id, &e))?;
        Ok(())
    }

    async fn list_tags(&self, key_id: &str) -> AwsResult<BTreeMap<String, String>> {
        let mut tags = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_resource_tags()
                .key_id(key_id)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("ListResourceTags", key_id, &e))?;
            tags.extend(out.tags().iter().map(|t| (t.tag_key().to_string(), t.tag_value().to_string())));
            match out.next_marker {
                Some(next) if out.truncated && !next.is_empty() => marker = Some(next),
                _ => return Ok(tags),
            }
        }
    }

    async fn find_key_by_tag(&self, tag_key: &str, tag_value: &str) -> AwsResult<Option<String>> {
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .client
                .list_keys()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("ListKeys", tag_key, &e))?;
            for key in out.keys() {
                let Some(id) = key.key_id() else { continue };
                // AWS-managed keys cannot carry our tags (and refuse ListResourceTags).
                match self.list_tags(id).await {
                    Ok(tags) if tags.get(tag_key).map(String::as_str) == Some(tag_value) => {
                        return Ok(Some(id.to_string()));
                    }
                    Ok(_) => {}
                    Err(e) if e.kind == super::error::ErrorKind::AccessDenied || e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
            match out.next_marker {
                Some(next) if out.truncated && !next.is_empty() => marker = Some(next),
                _ => return Ok(None),
            }
        }
    }

    async fn aliases(&self, prefix: &str) -> AwsResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_aliases()
                .limit(100)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("ListAliases", prefix, &e))?;
            out.extend(page.aliases().iter().filter_map(|a| {
                let name = a.alias_name().filter(|n| n.starts_with(prefix))?;
                Some((name.to_string(), a.target_key_id()?.to_string()))
            }));
            match page.next_marker {
                Some(next) if page.truncated && !next.is_empty() => marker = Some(next),
                _ => break,
            }
        }
        out.sort();
        Ok(out)
    }

    async fn tag(&self, key_id: &str, tags: &BTreeMap<String, String>) -> AwsResult<()> {
        const OP: &str = "TagResource";
        let tags = sdk_tags(OP, key_id, tags)?;
        self.client
            .tag_resource()
            .key_id(key_id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_error(OP, key_id, &e))?;
        Ok(())
    }

    async fn schedule_deletion(&self, key_id: &str, pending_days: i32) -> AwsResult<()> {
        self.client
            .schedule_key_deletion()
            .key_id(key_id)
            .pending_window_in_days(pending_days)
            .send()
            .await
            .map_err(|e| sdk_error("ScheduleKeyDeletion", key_id, &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use aws_sdk_kms::operation::create_key::CreateKeyOutput;
    use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
    use aws_sdk_kms::operation::list_resource_tags::ListResourceTagsOutput;
    use aws_sdk_kms::types::error::NotFoundException;
    use aws_sdk_kms::types::{KeyManagerType, KeyState};
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::aws::error::ErrorKind;

    fn kms(rules: &[&Rule]) -> SdkKms {
        SdkKms::new(aws_sdk_kms::Client::from_conf(crate::aws::mocked_config!(aws_sdk_kms, rules).build()))
    }

    /// An error response as KMS sends it (awsJson1.1).
    fn json_error(status: u16, code: &'static str) -> impl Fn() -> HttpResponse + Send + Sync + 'static {
        move || {
            let body = format!(r#"{{"__type":"{code}","message":"{code} happened"}}"#);
            let mut response = HttpResponse::new(StatusCode::try_from(status).expect("status"), SdkBody::from(body));
            response.headers_mut().insert("content-type", "application/x-amz-json-1.1");
            response
        }
    }

    fn metadata(id: &str) -> KeyMetadata {
        KeyMetadata::builder()
            .key_id(id)
            .arn(format!("arn:aws:kms:eu-west-1:123456789012:key/{id}"))
            .key_state(KeyState::Enabled)
            .key_manager(KeyManagerType::Customer)
            .build()
            .expect("key metadata")
    }

    #[tokio::test]
    async fn describing_a_missing_key_is_none() {
        let modeled = mock!(aws_sdk_kms::Client::describe_key)
            .then_error(|| DescribeKeyError::NotFoundException(NotFoundException::builder().build()));
        let on_the_wire =
            mock!(aws_sdk_kms::Client::describe_key).then_http_response(json_error(400, "NotFoundException"));
        let kms = kms(&[&modeled, &on_the_wire]);

        assert_eq!(kms.describe_key("alias/missing").await, Ok(None));
        assert_eq!(kms.describe_key("alias/missing").await, Ok(None));
    }

    #[tokio::test]
    async fn describing_a_key_reads_id_arn_state_and_manager() {
        let rule = mock!(aws_sdk_kms::Client::describe_key)
            .match_requests(|r| r.key_id() == Some("alias/lake"))
            .then_output(|| DescribeKeyOutput::builder().key_metadata(metadata("k1")).build());

        let info = kms(&[&rule]).describe_key("alias/lake").await;

        let expected = KeyInfo {
            key_id: "k1".into(),
            arn: "arn:aws:kms:eu-west-1:123456789012:key/k1".into(),
            state: "Enabled".into(),
            manager: "CUSTOMER".into(),
        };
        assert_eq!(info, Ok(Some(expected)));
    }

    #[tokio::test]
    async fn throttling_is_retryable_and_names_the_call() {
        let rule = mock!(aws_sdk_kms::Client::get_key_rotation_status)
            .then_http_response(json_error(400, "ThrottlingException"));

        let err = kms(&[&rule]).get_rotation("k1").await.expect_err("throttled");

        assert_eq!(err.kind, ErrorKind::Retryable);
        assert_eq!((err.service, err.operation, err.resource.as_str()), ("kms", "GetKeyRotationStatus", "k1"));
        assert_eq!(err.code.as_deref(), Some("ThrottlingException"));
    }

    #[tokio::test]
    async fn access_denied_is_an_error_not_a_missing_key() {
        let rule =
            mock!(aws_sdk_kms::Client::describe_key).then_http_response(json_error(400, "AccessDeniedException"));

        let err = kms(&[&rule]).describe_key("k1").await.expect_err("denied");

        assert_eq!(err.kind, ErrorKind::AccessDenied);
    }

    #[tokio::test]
    async fn created_keys_are_symmetric_with_the_policy_and_tags() {
        let rule = mock!(aws_sdk_kms::Client::create_key)
            .match_requests(|r| {
                r.key_spec() == Some(&KeySpec::SymmetricDefault)
                    && r.key_usage() == Some(&KeyUsageType::EncryptDecrypt)
                    && r.policy() == Some("{\"Version\":\"2012-10-17\"}")
                    && r.bypass_policy_lockout_safety_check() == Some(false)
                    && r.tags().len() == 1
                    && r.tags()[0].tag_key() == "lakeops.io/owner"
                    && r.tags()[0].tag_value() == "ns/lake"
            })
            .then_output(|| CreateKeyOutput::builder().key_metadata(metadata("k1")).build());
        let tags = BTreeMap::from([("lakeops.io/owner".to_string(), "ns/lake".to_string())]);

        let info = kms(&[&rule]).create_key("lake key", "{\"Version\":\"2012-10-17\"}", &tags).await;

        assert_eq!(info.map(|k| k.key_id), Ok("k1".to_string()));
        assert_eq!(rule.num_calls(), 1);
    }

    /// A client that retries like the controller's (standard mode), without waiting.
    fn kms_with_retries(rules: &[&Rule]) -> SdkKms {
        let retries = RetryConfig::standard().with_max_attempts(4).with_initial_backoff(std::time::Duration::ZERO);
        let conf = crate::aws::mocked_config!(aws_sdk_kms, rules).retry_config(retries).build();
        SdkKms::new(aws_sdk_kms::Client::from_conf(conf))
    }

    #[tokio::test]
    async fn create_key_is_sent_once_even_where_the_sdk_retries_other_calls() {
        // Other calls are retried by the SDK (the control: the rule is answered twice) ...
        let rotation = mock!(aws_sdk_kms::Client::get_key_rotation_status)
            .sequence()
            .http_status(503, None)
            .output(|| aws_sdk_kms::operation::get_key_rotation_status::GetKeyRotationStatusOutput::builder().build())
            .build();
        // ... CreateKey is not: a lost answer may hide a key that exists.
        let create = mock!(aws_sdk_kms::Client::create_key)
            .sequence()
            .http_status(503, None)
            .output(|| CreateKeyOutput::builder().key_metadata(metadata("k2")).build())
            .build();
        let kms = kms_with_retries(&[&rotation, &create]);

        assert!(kms.get_rotation("k1").await.is_ok());
        assert_eq!(rotation.num_calls(), 2);
        let err = kms.create_key("lake key", "{}", &BTreeMap::new()).await.expect_err("not retried");

        assert_eq!(create.num_calls(), 1, "one CreateKey request");
        assert_eq!(err.kind, ErrorKind::OutcomeUnknown, "{err}");
    }

    #[tokio::test]
    async fn an_alias_already_pointing_to_our_key_is_created() {
        let rules = || {
            let create =
                mock!(aws_sdk_kms::Client::create_alias).then_http_response(json_error(400, "AlreadyExistsException"));
            let describe = mock!(aws_sdk_kms::Client::describe_key)
                .match_requests(|r| r.key_id() == Some("alias/lake"))
                .then_output(|| DescribeKeyOutput::builder().key_metadata(metadata("k1")).build());
            (create, describe)
        };
        let (create, describe) = rules();
        let by_id = kms(&[&create, &describe]).create_alias("alias/lake", "k1").await;
        let (create, describe) = rules();
        let by_arn =
            kms(&[&create, &describe]).create_alias("alias/lake", "arn:aws:kms:eu-west-1:123456789012:key/k1").await;

        assert_eq!((by_id, by_arn), (Ok(()), Ok(())));
    }

    #[tokio::test]
    async fn an_alias_pointing_to_another_key_is_an_error_but_not_a_stall() {
        let create =
            mock!(aws_sdk_kms::Client::create_alias).then_http_response(json_error(400, "AlreadyExistsException"));
        let describe = mock!(aws_sdk_kms::Client::describe_key)
            .then_output(|| DescribeKeyOutput::builder().key_metadata(metadata("other")).build());

        let err = kms(&[&create, &describe]).create_alias("alias/lake", "k1").await.expect_err("not ours");

        assert_eq!((err.kind, err.operation), (ErrorKind::AlreadyExists, "CreateAlias"));
    }

    #[tokio::test]
    async fn listing_tags_follows_markers() {
        let tag = |k: &str| Tag::builder().tag_key(k).tag_value("v").build().expect("tag");
        let first =
            mock!(aws_sdk_kms::Client::list_resource_tags).match_requests(|r| r.marker().is_none()).then_output(
                move || ListResourceTagsOutput::builder().tags(tag("a")).truncated(true).next_marker("m1").build(),
            );
        let second = mock!(aws_sdk_kms::Client::list_resource_tags)
            .match_requests(|r| r.marker() == Some("m1"))
            .then_output(move || ListResourceTagsOutput::builder().tags(tag("b")).truncated(false).build());

        let tags = kms(&[&first, &second]).list_tags("k1").await;

        let expected = BTreeMap::from([("a".to_string(), "v".to_string()), ("b".to_string(), "v".to_string())]);
        assert_eq!(tags, Ok(expected));
    }
}
