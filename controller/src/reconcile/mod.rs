//! One module per kind, each with the same shape: validate, (converge), write status.
pub mod backuppolicy;
pub mod datalake;
pub mod etlfunction;
pub mod etlpipeline;
pub mod securitybaseline;

use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::events::{Event, EventType};
use lakeops_crds::names::{annotation, reason};

use crate::aws::error::{AwsError, ErrorKind};
use crate::conditions::Outcome;
use crate::context::Context;

/// Runs `apply` or `cleanup` behind the lakeops finalizer, which guards the AWS clean-up
/// of every kind that creates AWS resources.
pub async fn with_finalizer<K, A, AF, C, CF>(
    obj: std::sync::Arc<K>,
    ctx: std::sync::Arc<crate::context::Context>,
    apply: A,
    cleanup: C,
) -> crate::error::Result<kube::runtime::controller::Action>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize,
    A: FnOnce(std::sync::Arc<K>, std::sync::Arc<crate::context::Context>) -> AF,
    AF: std::future::Future<Output = crate::error::Result<kube::runtime::controller::Action>>,
    C: FnOnce(std::sync::Arc<K>, std::sync::Arc<crate::context::Context>) -> CF,
    CF: std::future::Future<Output = crate::error::Result<kube::runtime::controller::Action>>,
{
    use kube::runtime::finalizer::{Event, finalizer};
    let ns = obj.namespace().ok_or_else(|| crate::error::Error::MissingField(obj.name_any(), "metadata.namespace"))?;
    let api: kube::Api<K> = kube::Api::namespaced(ctx.client.clone(), &ns);
    finalizer(&api, lakeops_crds::names::FINALIZER, obj, |event| async move {
        match event {
            Event::Apply(obj) => apply(obj, ctx).await,
            Event::Cleanup(obj) => cleanup(obj, ctx).await,
        }
    })
    .await
    .map_err(|e| crate::error::Error::Finalizer(Box::new(e)))
}

/// The DataLake `name` in `namespace`, as current as needed: the cached copy when it is
/// Ready for its generation, else a fresh read. A dependent is woken by its lake's watch
/// event, which can arrive before the shared lake cache has the same update; deciding
/// "not Ready yet" from a stale cache would leave the dependent waiting until its resync.
pub async fn current_lake(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> crate::error::Result<Option<std::sync::Arc<lakeops_crds::DataLake>>> {
    use kube::runtime::reflector::ObjectRef;
    let cached = ctx.stores.lakes.get(&ObjectRef::new(name).within(namespace));
    if let Some(lake) = &cached
        && lake_is_ready(lake)
    {
        return Ok(cached);
    }
    let api: kube::Api<lakeops_crds::DataLake> = kube::Api::namespaced(ctx.client.clone(), namespace);
    Ok(api.get_opt(name).await?.map(std::sync::Arc::new))
}

/// The outcome of a kind that works on a lake (EtlFunction, EtlPipeline) once its spec
/// passed its checks: waiting while the lake is missing or not Ready with its key, else
/// progressing (`what` says what is being converged).
pub fn lake_readiness(
    lake: Option<&lakeops_crds::DataLake>,
    lake_name: &str,
    what: &str,
) -> crate::conditions::Outcome {
    use crate::conditions::Outcome;
    use lakeops_crds::names::reason;
    let ready = lake.is_some_and(|l| lake_is_ready(l) && l.status.as_ref().is_some_and(|s| s.kms_key_arn.is_some()));
    match (lake, ready) {
        (None, _) => Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} does not exist in this namespace"),
        },
        (Some(_), false) => Outcome::Waiting {
            reason: reason::DATA_LAKE_NOT_READY,
            message: format!("DataLake {lake_name:?} is not Ready yet"),
        },
        (Some(_), true) => Outcome::Progressing { reason: reason::PROGRESSING, message: format!("converging {what}") },
    }
}

/// True when the lake's Ready condition is True for its current generation.
pub fn lake_is_ready(lake: &lakeops_crds::DataLake) -> bool {
    let status = lake.status.as_ref();
    lakeops_crds::common::is_ready(
        status.map(|s| s.conditions.as_slice()).unwrap_or_default(),
        status.and_then(|s| s.observed_generation),
        lake.metadata.generation,
    )
}

/// The resync interval of one object: its annotation if valid, else the controller's.
pub fn resync_interval<K: ResourceExt>(obj: &K, default: Duration) -> Duration {
    obj.annotations().get(annotation::RESYNC_INTERVAL).and_then(|v| parse_duration(v)).unwrap_or(default)
}

/// Parses `90s`, `5m`, `1h`, `1h30m` (and humantime's other spellings, e.g. `1h 30m`).
/// Intervals under 30 s are raised to 30 s so a typo cannot turn a resync into an AWS
/// request storm.
pub fn parse_duration(s: &str) -> Option<Duration> {
    humantime::parse_duration(s.trim()).ok().map(|d| d.max(Duration::from_secs(30)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_retry_after_the_back_off_and_only_bad_input_stalls_naming_the_field() {
        let resync = Duration::from_secs(600);
        let retry = || Duration::from_secs(5);
        let err = |code: &str, status: u16, service: &'static str, operation: &'static str| {
            AwsError::classify(service, operation, "r", Some(code), Some("m"), Some(status))
        };
        for e in [
            err("AlreadyExistsException", 400, "kms", "CreateAlias"),
            err("ResourceAlreadyExistsException", 400, "logs", "CreateLogGroup"),
            err("ConcurrentModificationException", 400, "dynamodb", "UpdateTable"),
            err("ThrottlingException", 400, "kms", "DescribeKey"),
            AwsError::classify("kms", "CreateKey", "r", None, None, Some(502)),
        ] {
            let (outcome, after) = aws_outcome(&e, resync, retry);
            assert!(matches!(outcome, Outcome::Failed { .. }), "{e}");
            assert_eq!(after, Duration::from_secs(5), "{e}");
        }
        let (outcome, after) =
            aws_outcome(&err("InvalidParameterValueException", 400, "logs", "PutRetentionPolicy"), resync, retry);
        let Outcome::Stalled { message, .. } = outcome else { panic!("bad input stalls") };
        assert!(message.contains("spec.logRetentionDays"), "{message}");
        assert_eq!(after, resync);
    }

    #[test]
    fn durations_parse_in_the_usual_units() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(30)), "floored to 30 s");
        for bad in ["", "5", "m", "5x", "-1m", "99999999999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}

/// Tags that mark an AWS resource as this object's: `namespace/name` and the UID, so a
/// re-created object with the same name is told apart.
pub fn owner_tags<K: ResourceExt>(obj: &K) -> std::collections::BTreeMap<String, String> {
    use lakeops_crds::names::tag;
    std::collections::BTreeMap::from([
        (tag::OWNER.to_string(), format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())),
        (tag::OWNER_UID.to_string(), obj.uid().unwrap_or_default()),
    ])
}

/// True when `tags` carry every ownership tag of `obj`.
pub fn is_owned_by<K: ResourceExt>(obj: &K, tags: &std::collections::BTreeMap<String, String>) -> bool {
    owner_tags(obj).iter().all(|(k, v)| tags.get(k) == Some(v))
}

pub use crate::engine::Stop;

/// Maps an AWS failure to conditions: the user must act on permissions, invalid requests
/// and taken names (the object then waits for `resync` or a spec change); everything else is
/// retried after `retry()`, the object's back-off in seconds.
pub fn aws_outcome(e: &AwsError, resync: Duration, retry: impl FnOnce() -> Duration) -> (Outcome, Duration) {
    let message = e.to_string();
    match e.kind {
        ErrorKind::AccessDenied => (Outcome::Stalled { reason: reason::ACCESS_DENIED, message }, resync),
        ErrorKind::Invalid => {
            let message = match spec_field_for(e.service, e.operation) {
                Some(field) => format!("{message}; check {field}"),
                None => message,
            };
            (Outcome::Stalled { reason: reason::INVALID_REQUEST, message }, resync)
        }
        ErrorKind::Conflict => (
            Outcome::Stalled {
                reason: reason::NOT_OWNED,
                message: format!(
                    "{message}: the name is taken by another AWS account; choose another spec.bucketPrefix"
                ),
            },
            resync,
        ),
        ErrorKind::NotFound
        | ErrorKind::Retryable
        | ErrorKind::OutcomeUnknown
        | ErrorKind::AlreadyExists
        | ErrorKind::Other => (Outcome::Failed { reason: reason::RETRYING, message }, retry()),
    }
}

/// The spec field(s) whose value AWS refused, from the request that was refused. Each
/// operation below is sent for one part of one kind's spec only.
pub fn spec_field_for(service: &str, operation: &str) -> Option<&'static str> {
    Some(match (service, operation) {
        ("kms", _) => "spec.encryption (DataLake) or spec.replication.region (BackupPolicy)",
        ("s3", "CreateBucket") => "spec.region and spec.bucketPrefix",
        ("s3", "PutBucketLifecycleConfiguration") => {
            "spec.lifecycle and spec.zones[].lifecycle (DataLake), spec.noncurrentVersionRetention (BackupPolicy)"
        }
        ("s3", "PutObjectLockConfiguration") => "spec.objectLock (DataLake) or spec.retention (BackupPolicy)",
        ("s3", "PutBucketReplication") => "spec.replication",
        ("s3", "PutBucketTagging") => "spec.tags",
        ("s3", "PutBucketNotificationConfiguration") => "spec.source",
        ("dynamodb", "UpdateContinuousBackups") => "spec.tables.pointInTimeRecovery",
        ("dynamodb", "UpdateTable") => "spec.catalog.tables or spec.tables.replicaRegions",
        ("dynamodb", _) => "spec.catalog.tables",
        ("cloudtrail", _) => "spec.audit",
        ("lambda", "UpdateFunctionCode") => "spec.code",
        ("lambda", "PutFunctionConcurrency" | "DeleteFunctionConcurrency") => "spec.reservedConcurrency",
        ("lambda", "AddPermission") => "spec.source",
        ("lambda", _) => {
            "spec.runtime, spec.handler, spec.architecture, spec.memoryMb, spec.timeoutSeconds, spec.environment, spec.vpc, spec.deadLetterQueueArn or spec.codeSigningConfigArn"
        }
        ("logs", _) => "spec.logRetentionDays",
        ("iam", _) => "spec.source, spec.destination or spec.deadLetterQueueArn (the role's permissions)",
        _ => return None,
    })
}

/// True when `obj` was Ready for its current generation as this round began. Only then are
/// the settings a round corrects drift: before that (a first convergence, a spec change, or
/// one that a crash, a lost answer or a failure interrupted) they finish the controller's own
/// work, and a `DriftCorrected` event would report a change that nobody made.
pub fn was_converged<K: crate::status::HasStatus>(obj: &K) -> bool {
    use lakeops_crds::common::HasConditions;
    obj.status()
        .is_some_and(|s| lakeops_crds::common::is_ready(s.conditions(), s.observed_generation(), obj.meta().generation))
}

/// Reports corrected drift: a `DriftCorrected` event naming each setting, and the counter;
/// nothing for an object that was not converged yet (see [`was_converged`]).
pub async fn drift_event<K>(ctx: &Context, obj: &K, drift: &[String])
where
    K: crate::status::HasStatus,
{
    if !was_converged(obj) {
        tracing::debug!(settings = drift.len(), "finished the controller's own interrupted or first convergence");
        return;
    }
    let kind = crate::status::static_kind(&K::kind(&()));
    ctx.metrics.drift_corrections.get_or_create(&crate::metrics::KindLabels { kind }).inc_by(drift.len() as u64);
    let event = Event {
        type_: EventType::Normal,
        reason: "DriftCorrected".into(),
        note: Some(format!("corrected out-of-band changes: {}", drift.join("; "))),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        tracing::warn!(error = %e, "could not record event");
    }
}

/// One async lock per key (a bucket name): read-modify-write of a document several
/// objects share, such as a bucket's notification configuration, is serialised.
#[derive(Debug, Default)]
pub struct KeyedLocks(std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>);

impl KeyedLocks {
    /// Waits for and holds the lock of `key` until the guard is dropped.
    pub async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // Locks nobody holds or waits for are dropped, so the map stays as small as the
            // set of buckets being written right now.
            map.retain(|k, l| k == key || std::sync::Arc::strong_count(l) > 1);
            map.entry(key.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// How many keys have a lock right now.
    pub fn len(&self) -> usize {
        self.0.lock().map(|m| m.len()).unwrap_or_default()
    }

    /// True when no key has a lock.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod lock_tests {
    use super::KeyedLocks;

    #[tokio::test]
    async fn one_key_is_held_by_one_writer_and_released_locks_are_forgotten() {
        let locks = std::sync::Arc::new(KeyedLocks::default());
        let guard = locks.lock("bucket-a").await;
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _g = locks.lock("bucket-a").await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a second writer of the same bucket waits");
        drop(guard);
        waiting.await.expect("the waiter gets the lock");
        let _other = locks.lock("bucket-b").await;
        assert_eq!(locks.len(), 1, "bucket-a's lock, held by nobody, was dropped");
    }
}

/// What the controller last reconciled successfully, per object: a watch event caused
/// only by our own status write then costs nothing, instead of a full round of AWS reads.
#[derive(Debug, Default)]
pub struct Fingerprints(std::sync::Mutex<std::collections::HashMap<String, (u64, std::time::Instant)>>);

impl Fingerprints {
    /// The hash of everything a user can change that matters to a reconcile (status excluded).
    fn of<K: ResourceExt>(obj: &K, extra: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let m = obj.meta();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            m.generation,
            &m.labels,
            &m.annotations,
            &m.finalizers,
            m.deletion_timestamp.as_ref().map(|t| t.0.to_string()),
            extra,
        )
            .hash(&mut h);
        h.finish()
    }

    /// `Some(time left)` when `obj` was reconciled successfully with the same user-visible
    /// state less than `resync` ago: the caller can skip this round.
    pub fn fresh<K: ResourceExt>(&self, obj: &K, resync: Duration) -> Option<Duration> {
        self.fresh_with(obj, "", resync)
    }

    /// Like [`fresh`](Self::fresh), for an object that also depends on something else,
    /// summarised by `extra` (e.g. the resourceVersion of the DataLake it references).
    pub fn fresh_with<K: ResourceExt>(&self, obj: &K, extra: &str, resync: Duration) -> Option<Duration> {
        let map = self.0.lock().ok()?;
        let (fp, at) = map.get(&obj.uid()?)?;
        let elapsed = at.elapsed();
        (*fp == Self::of(obj, extra) && elapsed < resync).then(|| resync - elapsed)
    }

    /// Records a successful reconcile.
    pub fn remember<K: ResourceExt>(&self, obj: &K) {
        self.remember_with(obj, "");
    }

    /// Records a successful reconcile that depended on `extra`.
    pub fn remember_with<K: ResourceExt>(&self, obj: &K, extra: &str) {
        if let (Ok(mut map), Some(uid)) = (self.0.lock(), obj.uid()) {
            map.insert(uid, (Self::of(obj, extra), std::time::Instant::now()));
        }
    }

    /// Forgets an object (failed reconcile, deletion), so the next event is handled in full.
    pub fn forget<K: ResourceExt>(&self, obj: &K) {
        if let (Ok(mut map), Some(uid)) = (self.0.lock(), obj.uid()) {
            map.remove(&uid);
        }
    }
}
