//! `lakeops plan` for a DataLake: the controller's own observe and diff, with reads only.
use futures::future::try_join_all;
use kube::ResourceExt;
use lakeops_crds::DataLake;
use lakeops_crds::names::tag;
use serde::Serialize;

use crate::aws::clients::Regional;
use crate::aws::error::AwsResult;

use super::desired::{self, DesiredKey};
use super::diff::{self, Change};
use super::observe;

/// What a planned change does to its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// One line of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Planned {
    pub action: Action,
    pub resource: String,
    pub setting: String,
    pub description: String,
    /// True when the change removes a protection.
    pub weakens: bool,
}

/// A resource that exists but is not this lake's: the controller would stall on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blocker {
    pub resource: String,
    pub message: String,
}

/// The plan of one DataLake.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LakePlan {
    pub changes: Vec<Planned>,
    pub blockers: Vec<Blocker>,
}

/// Placeholder for the ARN of a key that does not exist yet.
const NEW_KEY: &str = "(the new lake key)";

/// One plan line for `change`; `existed` tells whether its resource exists already (a
/// setting on a resource still to be created is part of the create).
pub fn planned(change: &Change, existed: bool) -> Planned {
    let action = match change {
        Change::CreateBucket { .. } | Change::CreateTable { .. } | Change::CreateTrail { .. } => Action::Create,
        Change::DeleteTrail { .. } => Action::Delete,
        _ if !existed => Action::Create,
        _ => Action::Update,
    };
    Planned {
        action,
        resource: change.resource().to_string(),
        setting: change.setting().to_string(),
        description: change.to_string(),
        weakens: change.weakens(),
    }
}

/// Ownership as the plan can see it: a manifest has no UID yet, so the owner name decides.
pub fn blocker<K>(owner: &K, what: &str, tags: &std::collections::BTreeMap<String, String>) -> Option<Blocker>
where
    K: kube::Resource<DynamicType = ()>,
{
    let name = format!("{}/{}", owner.namespace().unwrap_or_default(), owner.name_any());
    (tags.get(tag::OWNER) != Some(&name)).then(|| Blocker {
        resource: what.to_string(),
        message: format!(
            "{what} exists and is not this {}'s; the controller will leave it alone unless adoption is asked for",
            K::kind(&())
        ),
    })
}

/// A manifest has no UID until the API server stores it: the desired ownership tags take
/// the UID AWS shows on the resource (or none), so only the owner name is compared.
pub fn with_observed_uid(
    tags: &mut std::collections::BTreeMap<String, String>,
    observed: Option<&std::collections::BTreeMap<String, String>>,
) {
    match observed.and_then(|t| t.get(tag::OWNER_UID)) {
        Some(uid) => tags.insert(tag::OWNER_UID.into(), uid.clone()),
        None => tags.remove(tag::OWNER_UID),
    };
}

/// Computes what reconciling `lake` would change, with read-only calls.
pub async fn plan(lake: &DataLake, aws: &Regional, account: &str) -> AwsResult<LakePlan> {
    let mut out = LakePlan::default();
    let key_arn = match desired::key(lake, account) {
        DesiredKey::External { arn } => arn,
        DesiredKey::Managed { alias, rotation_days, policy, .. } => match observe::key(aws.kms.as_ref(), &alias).await?
        {
            Some(k) => {
                let tags = aws.kms.list_tags(&k.info.key_id).await?;
                out.blockers.extend(blocker(lake, &format!("KMS key {alias}"), &tags));
                out.changes.extend(diff::key_changes(&k, rotation_days, &policy).iter().map(|c| planned(c, true)));
                k.info.arn
            }
            None => {
                out.changes.push(Planned {
                    action: Action::Create,
                    resource: alias.clone(),
                    setting: "key".into(),
                    description: format!("create KMS key {alias} with rotation every {rotation_days} days and a key policy naming only the account root"),
                    weakens: false,
                });
                NEW_KEY.to_string()
            }
        },
    };
    let mut buckets = desired::buckets(lake, account, &key_arn);
    let observed = try_join_all(buckets.iter().map(|b| observe::bucket(aws.s3.as_ref(), &b.name))).await?;
    if lake.uid().is_none() {
        for (b, o) in buckets.iter_mut().zip(&observed) {
            with_observed_uid(&mut b.tags, o.as_ref().map(|o| &o.tags));
        }
    }
    for (b, o) in buckets.iter().zip(&observed) {
        if let Some(o) = o {
            out.blockers.extend(blocker(lake, &format!("bucket {}", b.name), &o.tags));
        }
        out.changes.extend(diff::bucket_changes(b, o.as_ref()).iter().map(|c| planned(c, o.is_some())));
    }
    for t in desired::tables(lake) {
        let o = observe::table(aws.dynamodb.as_ref(), &t.table_name).await?;
        if let Some(o) = &o {
            let tags = aws.dynamodb.list_tags(&o.info.arn).await?;
            out.blockers.extend(blocker(lake, &format!("table {}", t.table_name), &tags));
        }
        out.changes.extend(diff::table_changes(&t, &key_arn, o.as_ref()).iter().map(|c| planned(c, o.is_some())));
    }
    if let Some(trail) = desired::trail(lake, &key_arn) {
        let o = observe::trail(aws.cloudtrail.as_ref(), &trail.settings.name).await?;
        out.changes.extend(diff::trail_changes(&trail, o.as_ref()).iter().map(|c| planned(c, o.is_some())));
    }
    Ok(out)
}
