//! The straight-line baseline of `make bench`: what a hand-written script that knows the
//! end state in advance sends to create N DataLakes. No reads, no retries of its own, no
//! status: every request is a write that the end state needs, in the controller's own
//! dependency order (key, log bucket, then zone buckets and tables together, then the
//! trail) and with the same number of lakes in flight as the controller's `--concurrency`.
//!
//! The end state comes from the controller's pure desired-state functions (what a lake
//! *means* is shared; how to get there is not), so `lakeops plan` on the same manifests
//! must then report no changes: `bench.sh` checks that, which proves the baseline reached
//! the identical end state with its minimal writes.
//!
//! Prints one JSON line: lakes, seconds, requests, reads, writes, and requests by operation.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use lakeops::aws::clients::{AwsClients, Regional};
use lakeops::aws::dynamodb::TableDef;
use lakeops::aws::iam::{IamApi, NewRole};
use lakeops::aws::recorder::{RequestRecorder, is_read};
use lakeops::aws::s3::PublicAccessBlock;
use lakeops::engine::trail_logs::Delivery;
use lakeops::manifests::Object;
use lakeops::reconcile::datalake::desired::{self, DesiredBucket, DesiredKey};
use lakeops_crds::DataLake;

#[derive(Parser)]
struct Args {
    /// The DataLake manifests (one YAML stream).
    #[arg(long)]
    manifests: PathBuf,
    /// Namespace the lakes are named in (bucket prefixes and ownership tags derive from it).
    #[arg(long)]
    namespace: String,
    /// Lakes converged at once (the controller's `--concurrency`).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    lakeops::install_crypto_provider();
    let args = Args::parse();
    let loaded = lakeops::manifests::load_in(std::slice::from_ref(&args.manifests), &args.namespace)?;
    if let Some(p) = loaded.problems.first() {
        bail!("{p}");
    }
    let lakes: Vec<DataLake> = loaded
        .documents
        .into_iter()
        .filter_map(|d| match d.object {
            Object::DataLake(mut lake) => {
                lake.metadata.namespace = Some(args.namespace.clone());
                // Ownership tags carry a UID; a manifest has none, and `lakeops plan` compares
                // only the owner name, so any stable value will do.
                lake.metadata.uid = Some(format!("baseline-{}", lake.metadata.name.clone().unwrap_or_default()));
                Some(lake)
            }
            _ => None,
        })
        .collect();
    let recorder = RequestRecorder::new();
    let aws = AwsClients::new(lakeops::aws::load(None).await, recorder.clone());
    let account = aws.account_id().await?;
    let before = recorder.snapshot();
    let start = Instant::now();
    let aws = Arc::new(aws);
    stream::iter(lakes.iter().map(|lake| {
        let aws = aws.clone();
        let account = account.clone();
        async move { create_lake(&aws.region(&lake.spec.region), aws.iam().as_ref(), lake, &account).await }
    }))
    .buffer_unordered(args.concurrency.max(1))
    .try_collect::<Vec<()>>()
    .await?;
    let seconds = start.elapsed().as_secs_f64();
    let counts = recorder.since(&before);
    let reads: u64 = counts.iter().filter(|((_, op), _)| is_read(op)).map(|(_, n)| n).sum();
    let requests: u64 = counts.values().sum();
    let mut by_operation = std::collections::BTreeMap::<String, u64>::new();
    for ((_, op), n) in &counts {
        *by_operation.entry(op.clone()).or_default() += n;
    }
    println!(
        "{}",
        serde_json::json!({
            "lakes": lakes.len(),
            "seconds": (seconds * 100.0).round() / 100.0,
            "requests": requests,
            "reads": reads,
            "writes": requests - reads,
            "operations": by_operation,
        })
    );
    Ok(())
}

async fn create_lake(aws: &Regional, iam: &dyn IamApi, lake: &DataLake, account: &str) -> Result<()> {
    let name = lake.metadata.name.clone().unwrap_or_default();
    let key_arn = match desired::key(lake, account) {
        DesiredKey::External { arn } => arn,
        DesiredKey::Managed { alias, description, rotation_days, policy } => {
            // The policy and the tags go with CreateKey; alias and rotation need a call each.
            let key = aws.kms.create_key(&description, &policy.to_json(), &desired::resource_tags(lake)).await?;
            aws.kms.create_alias(&alias, &key.key_id).await?;
            aws.kms.enable_rotation(&key.key_id, rotation_days).await?;
            key.arn
        }
    };
    let buckets = desired::buckets(lake, account, &key_arn);
    let (log, zones) = buckets.split_first().with_context(|| format!("lake {name} has no log bucket"))?;
    create_bucket(aws, &lake.spec.region, log).await?;
    let zones = futures::future::try_join_all(zones.iter().map(|b| create_bucket(aws, &lake.spec.region, b)));
    let tables = futures::future::try_join_all(desired::tables(lake).into_iter().map(|t| {
        let key_arn = key_arn.clone();
        async move {
            // On-demand billing, SSE with the key, deletion protection, streams and tags
            // all go with CreateTable; PITR and TTL cannot.
            let def = TableDef {
                name: t.table_name.clone(),
                partition_key: t.partition_key.clone(),
                sort_key: t.sort_key.clone(),
                kms_key_arn: key_arn,
                tags: t.tags.clone(),
            };
            aws.dynamodb.create_table(&def).await?;
            aws.dynamodb.set_pitr(&t.table_name, true).await?;
            if let Some(attribute) = &t.ttl_attribute {
                aws.dynamodb.set_ttl(&t.table_name, attribute, true).await?;
            }
            anyhow::Ok(())
        }
    }));
    futures::try_join!(zones, tables)?;
    if lake.spec.audit.trail {
        aws.s3.put_object_lock_retention(&lake.audit_bucket(), &desired::audit_retention(lake)).await?;
    }
    let mut delivery = Delivery::default();
    if lake.spec.audit.trail {
        // The trail's CloudWatch Logs group (encrypted at create; retention is a call) and
        // its delivery role (trust at create; the inline policy is a call).
        let logs = desired::trail_logs(lake, account, &key_arn, None);
        aws.logs.create_log_group(&logs.group.name, &logs.group.kms_key_arn, &logs.group.tags).await?;
        aws.logs.put_retention(&logs.group.name, logs.group.retention_days).await?;
        let trust = logs.role.trust.to_json();
        let role = NewRole {
            name: &logs.role.name,
            path: logs.role.path,
            description: logs.role.description,
            assume_role_policy: &trust,
            permissions_boundary: None,
            tags: &logs.role.tags,
        };
        let role_arn = iam.create_role(&role).await?;
        iam.put_role_policy(&logs.role.name, logs.role.policy_name, &logs.role.policy.to_json()).await?;
        delivery = Delivery { log_group_arn: logs.group_arn, role_arn };
    }
    if let Some(trail) = desired::trail(lake, account, &key_arn, &delivery, false) {
        aws.cloudtrail.create_trail(&trail.settings, &trail.tags).await?;
        aws.cloudtrail.put_event_selection(&trail.settings.name, &trail.events).await?;
        aws.cloudtrail.start_logging(&trail.settings.name).await?;
    }
    Ok(())
}

/// One bucket: CreateBucket sets Object Lock (and with it versioning) and object ownership;
/// every other setting is a call of its own.
async fn create_bucket(aws: &Regional, region: &str, b: &DesiredBucket) -> Result<()> {
    aws.s3.create_bucket(&b.name, region, b.object_lock).await?;
    if !b.object_lock {
        aws.s3.enable_versioning(&b.name).await?;
    }
    aws.s3.put_bucket_tagging(&b.name, &b.tags).await?;
    aws.s3.put_bucket_encryption(&b.name, &b.encryption).await?;
    aws.s3.put_public_access_block(&b.name, PublicAccessBlock::ALL).await?;
    aws.s3.put_bucket_policy(&b.name, &b.policy.to_json()).await?;
    if let Some(logging) = &b.logging {
        aws.s3.put_bucket_logging(&b.name, Some(logging)).await?;
    }
    if !b.lifecycle.is_empty() {
        let mut rules = b.lifecycle.clone();
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        aws.s3.put_lifecycle(&b.name, &rules).await?;
    }
    Ok(())
}
