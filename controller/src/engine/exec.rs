//! The two executors of a kind's step sequence: apply and plan.
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use async_trait::async_trait;
use kube::ResourceExt;
use lakeops_crds::names::{annotation, tag};

use crate::aws::error::AwsResult;

use super::{Blocker, Describe, Plan, Planned, Report, Stop};

/// Where the apply executor records progress and intents (a new key's ARN, the names of
/// buckets about to be created) the moment they exist, so a crash before the end of the
/// round cannot lead to a second resource. The controller writes status; tests keep a list.
#[async_trait]
pub trait Progress<S: Sync>: Send + Sync {
    async fn record(&self, status: &S) -> crate::error::Result<()>;
}

/// Records nothing (plans, and tests that do not look).
pub struct NoProgress;

#[async_trait]
impl<S: Sync> Progress<S> for NoProgress {
    async fn record(&self, _status: &S) -> crate::error::Result<()> {
        Ok(())
    }
}

/// Whose resources these are, as the ownership check sees it.
#[derive(Clone, Debug)]
struct Owner {
    kind: String,
    /// `namespace/name`.
    name: String,
    /// The ownership tags (`owner` and `owner-uid`).
    tags: BTreeMap<String, String>,
    has_uid: bool,
    adopt: bool,
}

enum Mode<'a, S: Sync> {
    Apply(&'a dyn Progress<S>),
    Plan,
}

#[derive(Default)]
struct Log {
    report: Report,
    plan: Plan,
    /// Weakening changes count as drift too (DataLake, EtlFunction) or apart (BackupPolicy).
    weakening_apart: bool,
}

/// Runs a step sequence either to apply or to plan. Steps take `&Exec`, so independent
/// resources (the zone buckets) are converged concurrently under either executor.
pub struct Exec<'a, S: Sync> {
    mode: Mode<'a, S>,
    owner: Owner,
    log: Mutex<Log>,
}

impl<'a, S: Sync> Exec<'a, S> {
    /// The controller's executor for `obj`: sends changes, records progress in `progress`.
    pub fn apply<K: kube::Resource<DynamicType = ()>>(obj: &K, progress: &'a dyn Progress<S>) -> Self {
        Self::new(obj, Mode::Apply(progress))
    }

    /// `lakeops plan`'s executor for `obj`: sends no write.
    pub fn plan<K: kube::Resource<DynamicType = ()>>(obj: &K) -> Self {
        Self::new(obj, Mode::Plan)
    }

    fn new<K: kube::Resource<DynamicType = ()>>(obj: &K, mode: Mode<'a, S>) -> Self {
        let owner = Owner {
            kind: K::kind(&()).to_string(),
            name: format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()),
            tags: crate::reconcile::owner_tags(obj),
            has_uid: obj.uid().is_some(),
            adopt: obj.annotations().get(annotation::ADOPT).is_some_and(|v| v == "true"),
        };
        Self { mode, owner, log: Mutex::new(Log::default()) }
    }

    /// Weakening changes are reported apart from drift (a Warning event names them).
    pub fn weakening_apart(self) -> Self {
        self.with_log(|l| l.weakening_apart = true);
        self
    }

    fn with_log<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut log)
    }

    /// True for the plan executor.
    pub fn plans(&self) -> bool {
        matches!(self.mode, Mode::Plan)
    }

    /// One change. The apply executor awaits `send` (the kind's applier, one AWS call) and
    /// counts the change; the plan executor lists it and drops `send` unpolled, so nothing
    /// is sent. Returns what `send` returned (the ARN of a create), `None` when planning.
    /// `existed`: the resource existed before this round (its changes are drift).
    pub async fn change<C: Describe + ?Sized>(
        &self,
        change: &C,
        existed: bool,
        label: &str,
        send: impl Future<Output = AwsResult<Option<String>>>,
    ) -> Result<Option<String>, Stop> {
        match self.mode {
            Mode::Plan => {
                self.with_log(|l| l.plan.changes.push(Planned::of(change, existed)));
                Ok(None)
            }
            Mode::Apply(_) => {
                let created = send.await?;
                self.with_log(|l| {
                    // What was sent, in the plan's terms: tests compare it with the plan.
                    l.plan.changes.push(Planned::of(change, existed));
                    l.report.applied += 1;
                    if change.weakens() && l.weakening_apart {
                        l.report.weakened.push(change.to_string());
                    } else if existed && change.action().is_none() {
                        l.report.drift.push(format!("{label}: {}", change.setting()));
                    }
                });
                Ok(created)
            }
        }
    }

    /// Checks that an existing resource (`what`, carrying `tags`) is ours, or that the
    /// owner asks for adoption. Apply: `Err` stalls the round (`NotOwned`). Plan: a
    /// manifest has no UID yet, so the owner's name decides; the blocker is listed and
    /// planning goes on, so every blocker shows at once. `Ok(false)`: planned as blocked
    /// (a step then plans no deletion of it).
    pub fn owned(&self, what: &str, tags: &BTreeMap<String, String>) -> Result<bool, Stop> {
        if self.is_ours(tags) || self.owner.adopt {
            return Ok(true);
        }
        let owner_tag = tags.get(tag::OWNER).map(|o| format!(" (tagged as owned by {o})")).unwrap_or_default();
        let kind = &self.owner.kind;
        self.blocked(
            what,
            Stop::not_owned(format!(
                "{what} already exists and is not this {kind}'s{owner_tag}; lakeops leaves it alone unless the {kind} has the annotation {}: \"true\"",
                annotation::ADOPT
            )),
        )?;
        Ok(false)
    }

    /// True when `tags` say the resource is ours (by name alone when planning a manifest
    /// without a UID). No blocker: for deciding whether to delete something.
    pub fn is_ours(&self, tags: &BTreeMap<String, String>) -> bool {
        if self.plans() && !self.owner.has_uid {
            tags.get(tag::OWNER) == Some(&self.owner.name)
        } else {
            self.owner.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
        }
    }

    /// A blocker on `resource`: apply stops with `stop`; plan lists it and goes on.
    pub fn blocked(&self, resource: &str, stop: Stop) -> Result<(), Stop> {
        if !self.plans() {
            return Err(stop);
        }
        let message = match stop {
            Stop::Stalled(_, m) | Stop::Waiting(m) => m,
            Stop::Aws(e) => e.to_string(),
            Stop::Kube(e) => e.to_string(),
        };
        self.with_log(|l| l.plan.blockers.push(Blocker { resource: resource.to_string(), message }));
        Ok(())
    }

    /// Ownership tags to compare a resource's tags with. A plan's manifest has no UID: the
    /// UID the resource shows (or none) is taken, so only the owner name is compared.
    pub fn desired_tags(&self, tags: &mut BTreeMap<String, String>, observed: Option<&BTreeMap<String, String>>) {
        if self.plans() && !self.owner.has_uid {
            match observed.and_then(|t| t.get(tag::OWNER_UID)) {
                Some(uid) => tags.insert(tag::OWNER_UID.into(), uid.clone()),
                None => tags.remove(tag::OWNER_UID),
            };
        }
    }

    /// Something AWS has not finished yet (replicas becoming ACTIVE): the round succeeds
    /// but is looked at again soon.
    pub fn pending(&self, what: String) {
        self.with_log(|l| l.report.pending.push(what));
    }

    /// Writes `status` now (apply); nothing when planning.
    pub async fn record(&self, status: &S) -> Result<(), Stop> {
        match self.mode {
            Mode::Apply(progress) => progress.record(status).await.map_err(Stop::Kube),
            Mode::Plan => Ok(()),
        }
    }

    /// What the round did and the changes it sent (apply), or what it would do (plan).
    pub fn finish(self) -> (Report, Plan) {
        let log = self.log.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        (log.report, log.plan)
    }
}

/// Writes progress into the object's status with server-side apply.
pub struct StatusProgress<'c, K> {
    pub ctx: &'c crate::context::Context,
    pub obj: &'c K,
}

#[async_trait]
impl<K> Progress<K::Status> for StatusProgress<'_, K>
where
    K: crate::status::HasStatus + Send + Sync,
    K::Status: Sync,
{
    async fn record(&self, status: &K::Status) -> crate::error::Result<()> {
        crate::status::record_progress(self.ctx, self.obj, status).await
    }
}
