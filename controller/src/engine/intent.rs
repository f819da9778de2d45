//! Recorded intents for creates AWS does not make idempotent (KMS CreateKey; AWS Backup
//! CreateBackupPlan and CreateBackupSelection, whose token is sent as `CreatorRequestId`;
//! API Gateway CreateRestApi and GuardDuty CreateDetector use the same mechanism).
//!
//! Before the first create of a convergence, one status write records what will be
//! created: names for resources AWS names uniquely (buckets), and for each non-idempotent
//! create a creation token, deterministic from the owner's UID and the purpose, which the
//! create also sends as the tag [`CREATION_TOKEN_TAG`]. When status shows a token but no
//! identity (the process died, or the answer to the create was lost), the resource is
//! looked up by that tag before another is created, so a retry never makes a second one.
//!
//! | Create | Idempotent in AWS? | Unknown outcome |
//! |---|---|---|
//! | KMS CreateKey | no | creation token tag; found by tag before a new create |
//! | KMS CreateAlias | name unique | found by alias; "already exists" from our retry is ours |
//! | S3 CreateBucket | name unique | name recorded before; untagged + recorded = ours |
//! | AWS Backup CreateBackupPlan, CreateBackupSelection | no | token as CreatorRequestId; found in ListBackupPlans / ListBackupSelections |
//! | DynamoDB CreateTable, CloudTrail CreateTrail | name unique | found by name, owner tags |
//! | IAM CreateRole, Lambda CreateFunction, Logs CreateLogGroup | name unique | found by name, owner tags |
use std::collections::BTreeMap;

use crate::aws::error::AwsResult;
use crate::aws::kms::KmsApi;

/// The tag a non-idempotent create carries: its creation token.
pub const CREATION_TOKEN_TAG: &str = "lakeops.dev/creation-token";

/// The creation token of `purpose` (e.g. `kms-key`, `replica-key/eu-central-1`) for the
/// object with `owner_uid`: the same on every round and every controller process, and
/// different for a re-created object of the same name (new UID).
pub fn token(owner_uid: &str, purpose: &str) -> String {
    format!("{owner_uid}/{purpose}")
}

/// Records the intent of `purpose` in `tokens` (the status field); returns true when it
/// was not recorded yet (the caller then writes status before creating).
pub fn record(tokens: &mut BTreeMap<String, String>, purpose: &str, token: &str) -> bool {
    tokens.insert(purpose.to_string(), token.to_string()).as_deref() != Some(token)
}

/// The id of the key created with `token`, if any.
pub async fn find_key(kms: &dyn KmsApi, token: &str) -> AwsResult<Option<String>> {
    kms.find_key_by_tag(CREATION_TOKEN_TAG, token).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stable_per_owner_and_purpose() {
        assert_eq!(token("u-1", "kms-key"), token("u-1", "kms-key"));
        assert_ne!(token("u-1", "kms-key"), token("u-2", "kms-key"));
        assert_ne!(token("u-1", "kms-key"), token("u-1", "replica-key/eu-central-1"));
    }

    #[test]
    fn an_intent_is_new_once() {
        let mut tokens = BTreeMap::new();
        assert!(record(&mut tokens, "kms-key", "u-1/kms-key"));
        assert!(!record(&mut tokens, "kms-key", "u-1/kms-key"), "recorded already: no second status write");
    }
}
