//! `lakeops plan`: what applying a set of manifests would change in AWS, computed with the
//! controller's own observe and diff engine and read-only calls, rendered for a terminal,
//! a pull-request comment (markdown) or tools (JSON).
use std::fmt::Write as _;

use kube::ResourceExt;
use serde::Serialize;

use crate::aws::error::AwsError;
use crate::engine::Clients;
use crate::manifests::{Document, Object};
use crate::reconcile::datalake::plan::{Action, LakePlan};
use lakeops_crds::DataLake;

/// The plan of one object.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectPlan {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub region: Option<String>,
    #[serde(flatten)]
    pub plan: LakePlan,
    /// What the plan cannot show: a dependent whose lake is not among the manifests, or a
    /// lake that waits for a baseline (`BaselineNotReady`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Counts for the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub weakening: usize,
    pub blocked: usize,
}

impl Summary {
    /// Totals over every object.
    pub fn of(plans: &[ObjectPlan]) -> Self {
        let mut s = Summary::default();
        for p in plans {
            for c in &p.plan.changes {
                match c.action {
                    Action::Create => s.create += 1,
                    Action::Update => s.update += 1,
                    Action::Delete => s.delete += 1,
                }
                s.weakening += usize::from(c.weakens);
            }
            s.blocked += p.plan.blockers.len();
        }
        s
    }

    /// True when anything would change.
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.delete > 0
    }

    fn line(&self) -> String {
        let mut line = format!("{} to create, {} to update, {} to delete", self.create, self.update, self.delete);
        if self.weakening > 0 {
            let _ = write!(line, ", {} weaken protection", self.weakening);
        }
        if self.blocked > 0 {
            let _ = write!(line, ", {} blocked by resources lakeops does not own", self.blocked);
        }
        line
    }
}

/// Plans every document, with reads only.
pub async fn plan(documents: &[Document], aws: &dyn Clients) -> Result<Vec<ObjectPlan>, AwsError> {
    let mut out = Vec::new();
    let mut account = None;
    for doc in documents {
        match &doc.object {
            Object::DataLake(lake) => {
                let account = match &account {
                    Some(a) => a,
                    None => account.insert(aws.account_id().await?),
                };
                let regional = aws.region(&lake.spec.region);
                let iam = aws.iam();
                // A baseline among the planned manifests is taken as Ready once applied; its
                // account trail is multi-region, so it covers lakes of every region.
                let baselines = || {
                    documents.iter().filter_map(|d| match &d.object {
                        Object::SecurityBaseline(b) => Some(b),
                        _ => None,
                    })
                };
                let covered = baselines().any(|b| b.declares_account_trail());
                let plan =
                    crate::reconcile::datalake::plan::plan(lake, &regional, iam.as_ref(), account, covered).await?;
                let note = (lake.spec.security.require_baseline
                    && !baselines().any(|b| b.spec.region == lake.spec.region))
                .then(|| baseline_not_ready(&lake.spec.region));
                out.push(ObjectPlan {
                    kind: "DataLake",
                    namespace: lake.namespace().unwrap_or_default(),
                    name: lake.name_any(),
                    region: Some(lake.spec.region.clone()),
                    plan,
                    note,
                });
            }
            Object::EtlFunction(etl) => {
                let Some(lake) = lake_in(documents, etl.namespace(), &etl.spec.data_lake_ref.name) else {
                    out.push(without_lake(
                        "EtlFunction",
                        etl.namespace(),
                        etl.name_any(),
                        &etl.spec.data_lake_ref.name,
                    ));
                    continue;
                };
                let account = match &account {
                    Some(a) => a,
                    None => account.insert(aws.account_id().await?),
                };
                let regional = aws.region(&lake.spec.region);
                let key_arn = lake_key(lake, &regional).await?;
                let iam = aws.iam();
                let plan =
                    crate::reconcile::etlfunction::plan::plan(etl, lake, &regional, iam.as_ref(), account, &key_arn)
                        .await?;
                out.push(planned("EtlFunction", etl.namespace(), etl.name_any(), &lake.spec.region, plan));
            }
            Object::BackupPolicy(policy) => {
                let Some(lake) = lake_in(documents, policy.namespace(), &policy.spec.data_lake_ref.name) else {
                    out.push(without_lake(
                        "BackupPolicy",
                        policy.namespace(),
                        policy.name_any(),
                        &policy.spec.data_lake_ref.name,
                    ));
                    continue;
                };
                let account = match &account {
                    Some(a) => a,
                    None => account.insert(aws.account_id().await?),
                };
                let key_arn = lake_key(lake, &aws.region(&lake.spec.region)).await?;
                let plan = crate::reconcile::backuppolicy::plan::plan(policy, lake, aws, account, &key_arn).await?;
                out.push(planned("BackupPolicy", policy.namespace(), policy.name_any(), &lake.spec.region, plan));
            }
            Object::EtlPipeline(p) => {
                let Some(lake) = lake_in(documents, p.namespace(), &p.spec.data_lake_ref.name) else {
                    out.push(without_lake("EtlPipeline", p.namespace(), p.name_any(), &p.spec.data_lake_ref.name));
                    continue;
                };
                let account = match &account {
                    Some(a) => a,
                    None => account.insert(aws.account_id().await?),
                };
                let regional = aws.region(&lake.spec.region);
                let key_arn = lake_key(lake, &regional).await?;
                let iam = aws.iam();
                let plan =
                    crate::reconcile::etlpipeline::plan::plan(p, lake, &regional, iam.as_ref(), account, &key_arn)
                        .await?;
                out.push(planned("EtlPipeline", p.namespace(), p.name_any(), &lake.spec.region, plan));
            }
            Object::SecurityBaseline(baseline) => {
                let plan = crate::reconcile::securitybaseline::plan::plan(baseline, aws).await?;
                out.push(planned("SecurityBaseline", None, baseline.name_any(), &baseline.spec.region, plan));
            }
        }
    }
    Ok(out)
}

/// The DataLake `name` in `namespace` among the documents.
fn lake_in<'a>(documents: &'a [Document], namespace: Option<String>, name: &str) -> Option<&'a DataLake> {
    documents.iter().find_map(|d| match &d.object {
        Object::DataLake(l) if l.name_any() == name && l.namespace() == namespace => Some(l),
        _ => None,
    })
}

/// The lake key's ARN: the one the spec brings, the managed key found by its alias, or a
/// placeholder when the lake has not created it yet.
async fn lake_key(lake: &DataLake, regional: &crate::aws::clients::Regional) -> Result<String, AwsError> {
    if let Some(arn) = &lake.spec.encryption.key_arn {
        return Ok(arn.clone());
    }
    Ok(regional
        .kms
        .describe_key(&lake.key_alias())
        .await?
        .map(|k| k.arn)
        .unwrap_or_else(|| crate::reconcile::etlfunction::plan::NEW_KEY.to_string()))
}

fn planned(kind: &'static str, namespace: Option<String>, name: String, region: &str, plan: LakePlan) -> ObjectPlan {
    ObjectPlan {
        kind,
        namespace: namespace.unwrap_or_default(),
        name,
        region: Some(region.to_string()),
        plan,
        note: None,
    }
}

/// The note of a lake that requires a baseline when none for its region is among the
/// manifests: the controller creates nothing until one is Ready in the cluster.
fn baseline_not_ready(region: &str) -> String {
    format!(
        "{}: spec.security.requireBaseline is set and no SecurityBaseline for region {region} is among these manifests; the controller creates nothing until a Ready one covers the region",
        lakeops_crds::names::reason::BASELINE_NOT_READY
    )
}

/// A dependent object whose lake is not among the manifests: nothing to plan against.
fn without_lake(kind: &'static str, namespace: Option<String>, name: String, lake: &str) -> ObjectPlan {
    ObjectPlan {
        kind,
        namespace: namespace.unwrap_or_default(),
        name,
        region: None,
        plan: LakePlan::default(),
        note: Some(format!("its DataLake {lake:?} is not among these manifests; pass them together to plan it")),
    }
}

fn sign(a: Action) -> &'static str {
    match a {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
    }
}

fn title(p: &ObjectPlan) -> String {
    let region = p.region.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
    format!("{} {}/{}{region}", p.kind, p.namespace, p.name)
}

/// Plain text for a terminal.
pub fn render_text(plans: &[ObjectPlan]) -> String {
    let mut out = String::new();
    for p in plans {
        let _ = writeln!(out, "{}", title(p));
        if let Some(note) = &p.note {
            let _ = writeln!(out, "  ({note})");
        } else if p.plan.changes.is_empty() && p.plan.blockers.is_empty() {
            let _ = writeln!(out, "  no changes");
        }
        for c in &p.plan.changes {
            let _ = writeln!(
                out,
                "  {} {}{}",
                sign(c.action),
                c.description,
                if c.weakens { "  [weakens protection]" } else { "" }
            );
        }
        for b in &p.plan.blockers {
            let _ = writeln!(out, "  ! blocked: {}", b.message);
        }
    }
    let weakening: Vec<String> = weakening(plans);
    if !weakening.is_empty() {
        let _ = writeln!(out, "\nChanges that weaken protection:");
        for w in &weakening {
            let _ = writeln!(out, "  ! {w}");
        }
    }
    let _ = writeln!(out, "\nPlan: {}.", Summary::of(plans).line());
    out
}

fn weakening(plans: &[ObjectPlan]) -> Vec<String> {
    plans
        .iter()
        .flat_map(|p| {
            p.plan.changes.iter().filter(|c| c.weakens).map(move |c| format!("{}: {}", title(p), c.description))
        })
        .collect()
}

/// Markdown for a pull-request comment: the summary first, weakening changes prominent,
/// each object's details collapsible.
pub fn render_markdown(plans: &[ObjectPlan]) -> String {
    let summary = Summary::of(plans);
    let mut out = format!("**lakeops plan**: {}\n", summary.line());
    let weakening = weakening(plans);
    if !weakening.is_empty() {
        out.push_str("\n> [!WARNING]\n> **These changes weaken protection.** Review them before approving.\n");
        for w in &weakening {
            let _ = writeln!(out, "> - {}", escape(w));
        }
    }
    for p in plans {
        let n = p.plan.changes.len();
        let what = match (&p.note, n) {
            (Some(_), 0) => "not planned".to_string(),
            (None, 0) => "no changes".to_string(),
            (_, n) => format!("{n} change(s)"),
        };
        if p.note.is_none() && n == 0 && p.plan.blockers.is_empty() {
            // Nothing to unfold: one line, not an empty collapsible block.
            let _ = writeln!(out, "\n{}: {what}", escape(&title(p)));
            continue;
        }
        let _ = write!(out, "\n<details><summary>{}: {what}</summary>\n\n", escape(&title(p)));
        if let Some(note) = &p.note {
            let _ = writeln!(out, "{}", escape(note));
        }
        if n > 0 {
            out.push_str("| | Change |\n|---|---|\n");
            for c in &p.plan.changes {
                let flag = if c.weakens { " **(weakens protection)**" } else { "" };
                let _ = writeln!(out, "| `{}` | {}{flag} |", sign(c.action), escape(&c.description));
            }
        }
        for b in &p.plan.blockers {
            let _ = writeln!(out, "\n:no_entry: {}", escape(&b.message));
        }
        out.push_str("\n</details>\n");
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('|', "\\|").replace('<', "&lt;").replace('>', "&gt;")
}

/// JSON for tools.
pub fn render_json(plans: &[ObjectPlan]) -> String {
    let doc = serde_json::json!({ "summary": Summary::of(plans), "objects": plans });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::datalake::plan::{Blocker, Planned};

    fn sample() -> Vec<ObjectPlan> {
        vec![ObjectPlan {
            kind: "DataLake",
            namespace: "team-a".into(),
            name: "sales".into(),
            region: Some("eu-west-1".into()),
            plan: LakePlan {
                changes: vec![
                    Planned {
                        action: Action::Create,
                        resource: "team-a-sales-raw".into(),
                        setting: "bucket".into(),
                        description: "create bucket team-a-sales-raw with Object Lock".into(),
                        weakens: false,
                    },
                    Planned {
                        action: Action::Update,
                        resource: "team-a-sales-curated".into(),
                        setting: "access logging".into(),
                        description: "bucket team-a-sales-curated: turn access logging off".into(),
                        weakens: true,
                    },
                ],
                blockers: vec![Blocker {
                    resource: "bucket x".into(),
                    message: "bucket x exists and is not this DataLake's".into(),
                }],
            },
            note: None,
        }]
    }

    #[tokio::test]
    async fn a_lake_requiring_a_baseline_shows_baseline_not_ready_and_a_baseline_s_trail_takes_its_management_events() {
        let lake = "apiVersion: lakeops.dev/v1alpha1\nkind: DataLake\nmetadata: {name: sales, namespace: team-a}\nspec:\n  region: eu-west-1\n  zones: [{name: raw}]\n  audit: {trail: true}\n  security: {requireBaseline: true}\n";
        let baseline = "---\napiVersion: lakeops.dev/v1alpha1\nkind: SecurityBaseline\nmetadata: {name: eu}\nspec: {region: eu-west-1}\n";
        let aws = crate::aws::fake::FakeAws::new("123456789012");
        let planned = |text: String| {
            let aws = aws.clone();
            async move {
                let mut loaded = crate::manifests::Loaded::new("default");
                crate::manifests::parse_stream("t.yaml", &text, &mut loaded);
                plan(&loaded.documents, aws.as_ref()).await.expect("plans")
            }
        };
        let alone = planned(lake.to_string()).await;
        let note = alone[0].note.clone().expect("a note");
        assert!(note.starts_with("BaselineNotReady"), "{note}");
        let management = |p: &ObjectPlan| {
            p.plan.changes.iter().find(|c| c.setting == "audit trail events").map(|c| c.description.clone())
        };
        assert!(management(&alone[0]).is_some_and(|d| d.contains("management events on")), "{alone:?}");
        assert!(render_markdown(&alone).contains("BaselineNotReady"));

        let together = planned(format!("{lake}{baseline}")).await;
        let lake_plan = together.iter().find(|p| p.kind == "DataLake").expect("the lake");
        assert_eq!(lake_plan.note, None);
        assert!(management(lake_plan).is_some_and(|d| d.contains("management events off")), "{lake_plan:?}");
    }

    #[test]
    fn markdown_leads_with_the_summary_and_flags_weakening_changes() {
        let expected = "**lakeops plan**: 1 to create, 1 to update, 0 to delete, 1 weaken protection, 1 blocked by resources lakeops does not own

> [!WARNING]
> **These changes weaken protection.** Review them before approving.
> - DataLake team-a/sales (eu-west-1): bucket team-a-sales-curated: turn access logging off

<details><summary>DataLake team-a/sales (eu-west-1): 2 change(s)</summary>

| | Change |
|---|---|
| `+` | create bucket team-a-sales-raw with Object Lock |
| `~` | bucket team-a-sales-curated: turn access logging off **(weakens protection)** |

:no_entry: bucket x exists and is not this DataLake's

</details>
";
        assert_eq!(render_markdown(&sample()), expected);
    }

    #[test]
    fn text_marks_each_change_and_ends_with_the_summary() {
        let text = render_text(&sample());
        assert!(
            text.starts_with(
                "DataLake team-a/sales (eu-west-1)\n  + create bucket team-a-sales-raw with Object Lock\n"
            ),
            "{text}"
        );
        assert!(text.contains("Changes that weaken protection:\n  ! DataLake team-a/sales (eu-west-1): bucket team-a-sales-curated: turn access logging off"));
        assert!(text.ends_with("Plan: 1 to create, 1 to update, 0 to delete, 1 weaken protection, 1 blocked by resources lakeops does not own.\n"));
    }

    #[test]
    fn json_carries_the_summary_and_every_change() {
        let v: serde_json::Value = serde_json::from_str(&render_json(&sample())).expect("json");
        assert_eq!(v["summary"]["create"], 1);
        assert_eq!(v["objects"][0]["changes"][1]["weakens"], true);
        assert_eq!(v["objects"][0]["changes"][1]["action"], "update");
    }
}
