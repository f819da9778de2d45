//! The controller's own alerts: one JSON message on the region's alert topic when it deploys
//! new function code, deletes AWS resources, or a lakeops object goes away. The topic is the
//! one the region's SecurityBaseline manages (its status names it and whether deployments
//! and deletions are wanted). Messages carry names, ARNs and versions only: never a spec's
//! environment values or anything secret.
//!
//! Best effort: the change already happened when the message is sent, so a failed publish
//! (no baseline, no permission to read baselines, SNS refusing) is logged and never fails
//! or repeats the round.
use kube::{Api, ResourceExt};
use lakeops_crds::SecurityBaseline;
use serde::Serialize;

use crate::context::Context;

/// Which switch of `spec.alerts` a message falls under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    Deployments,
    Deletions,
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Always `lakeops`.
    pub source: &'static str,
    /// `FunctionCodeDeployed`, `AwsResourcesDeleted` or `ObjectDeleted`.
    pub event: &'static str,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub region: String,
    /// ARNs or names of the AWS resources concerned.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// The code version deployed (an S3 object version or ETag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_version: Option<String>,
    /// The deleted object's `deletionPolicy` (what happened to what holds data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<String>,
}

impl Message {
    /// A message about `obj` in `region`.
    pub fn about<K: kube::Resource<DynamicType = ()>>(obj: &K, event: &'static str, region: &str) -> Self {
        Message {
            source: "lakeops",
            event,
            kind: K::kind(&()).to_string(),
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            region: region.to_string(),
            resources: Vec::new(),
            code_version: None,
            deletion_policy: None,
        }
    }

    fn subject(&self) -> String {
        // SNS subjects: at most 100 printable ASCII characters.
        let s = format!("lakeops {} {}/{}/{}", self.event, self.kind, self.namespace, self.name);
        s.chars().filter(|c| c.is_ascii() && !c.is_ascii_control()).take(100).collect()
    }
}

/// The topic of `region` when its baseline wants messages of `topic`: the oldest baseline
/// naming the region (as the SecurityBaseline reconciler decides ownership).
pub fn topic_for<'a>(all: impl Iterator<Item = &'a SecurityBaseline>, region: &str, topic: Topic) -> Option<String> {
    let owner = super::owner_of_region(all, region)?;
    let alerts = owner.status.as_ref()?.alerts.as_ref()?;
    let wanted = match topic {
        Topic::Deployments => alerts.deployments,
        Topic::Deletions => alerts.deletions,
    };
    wanted.then(|| alerts.topic_arn.clone()).flatten()
}

/// Publishes `message` on the region's alert topic when its baseline wants it.
pub async fn publish(ctx: &Context, topic: Topic, message: &Message) {
    let api: Api<SecurityBaseline> = Api::all(ctx.client.clone());
    let all = match api.list(&Default::default()).await {
        Ok(all) => all,
        Err(e) => {
            tracing::debug!(error = %e, "no alert topic: SecurityBaselines cannot be listed");
            return;
        }
    };
    let Some(arn) = topic_for(all.items.iter(), &message.region, topic) else { return };
    let body = match serde_json::to_string(message) {
        Ok(body) => body,
        Err(e) => return tracing::warn!(error = %e, "alert not serialised"),
    };
    if let Err(e) = ctx.aws.region(&message.region).sns.publish(&arn, &message.subject(), &body).await {
        tracing::warn!(error = %e, topic = %arn, event = message.event, "alert not published");
    }
}

/// Runs a kind's `cleanup` and, once it has finished (the finalizer is then removed),
/// publishes `message` on the deletions topic.
pub async fn after_cleanup<K, C, CF>(
    obj: std::sync::Arc<K>,
    ctx: std::sync::Arc<Context>,
    message: Option<Message>,
    cleanup: C,
) -> crate::error::Result<kube::runtime::controller::Action>
where
    C: FnOnce(std::sync::Arc<K>, std::sync::Arc<Context>) -> CF,
    CF: std::future::Future<Output = crate::error::Result<kube::runtime::controller::Action>>,
{
    let done = cleanup(obj, ctx.clone()).await?;
    if let Some(message) = message {
        publish(&ctx, Topic::Deletions, &message).await;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_owner_decides_and_its_switches_apply() {
        let mut b: SecurityBaseline = serde_saphyr::from_str(
            "apiVersion: lakeops.dev/v1alpha1\nkind: SecurityBaseline\nmetadata: {name: eu}\nspec: {region: eu-west-1}\n",
        )
        .expect("fixture");
        assert_eq!(topic_for([&b].into_iter(), "eu-west-1", Topic::Deployments), None, "no topic yet");
        let status = b.status.get_or_insert_default();
        status.alerts = Some(lakeops_crds::securitybaseline::AlertsStatus {
            topic_arn: Some("arn:aws:sns:eu-west-1:1:lakeops-alerts".into()),
            deployments: true,
            deletions: false,
            subscriptions: vec![],
        });
        assert!(topic_for([&b].into_iter(), "eu-west-1", Topic::Deployments).is_some());
        assert_eq!(topic_for([&b].into_iter(), "eu-west-1", Topic::Deletions), None);
        assert_eq!(topic_for([&b].into_iter(), "us-east-1", Topic::Deployments), None);
    }
}
