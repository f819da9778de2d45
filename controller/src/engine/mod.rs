//! One engine for every kind. A kind's convergence is written once, as an ordered sequence
//! of steps (observe what the step needs, check ownership, diff, produce changes), and run
//! by one of two executors ([`Exec`]):
//!
//! - **apply** (the controller) sends each change to AWS, records progress and intents in
//!   status through [`Progress`], and stops at the first blocker;
//! - **plan** (`lakeops plan`) lists each change and every blocker and sends no write; a
//!   later step that needs the ARN of something not created yet gets a stable placeholder.
//!
//! Both run the same code, so the plan cannot disagree with what the controller does.
//! Shared steps live here: the managed KMS key ([`key`]), the owned IAM role ([`role`]),
//! the owned CloudWatch Logs group ([`log_group`]: functions, pipelines, trails), a trail's
//! delivery to CloudWatch Logs ([`trail_logs`]), the ownership check ([`Exec::owned`]) and
//! recorded creation intents ([`intent`]).
//!
//! # When a round is remembered
//! The controller skips a watch event for an object whose user-visible state (generation,
//! labels, annotations, finalizers, deletion, and what it depends on, such as its lake's
//! resourceVersion) equals the last *remembered* round less than one resync interval ago.
//! One rule, [`remembers`], decides: a round is remembered when its outcome is final for
//! that state (`Ready`, or `Stalled`: only a spec change or an adoption annotation, which
//! change the fingerprint, can move it); it is forgotten when the outcome depends on time
//! or on something outside the fingerprint (`Failed` is retried with backoff,
//! `Progressing` is polled, `Waiting` waits for another object). Checks made before a round
//! that depend on other objects (a BackupPolicy's conflict with another policy, a lake
//! not Ready) are not rounds and are never remembered. Every round forgets the object
//! before it starts, so a crash or error in the middle never leaves it remembered.
pub mod exec;
pub mod intent;
pub mod key;
pub mod log_group;
pub mod role;
pub mod trail_logs;

use std::time::Duration;

use lakeops_crds::names::reason;
use serde::Serialize;

use crate::aws::error::AwsError;
use crate::conditions::Outcome;

pub use exec::{Exec, NoProgress, Progress};

/// Why a convergence stopped short.
#[derive(Debug)]
pub enum Stop {
    /// An AWS call failed; classified by [`crate::reconcile::aws_outcome`].
    Aws(AwsError),
    /// The user must act (a resource we do not own, a lake without Object Lock, ...):
    /// the condition reason and a message naming what to change.
    Stalled(&'static str, String),
    /// Another object is not ready yet.
    Waiting(String),
    /// Writing status failed.
    Kube(crate::error::Error),
}

impl From<AwsError> for Stop {
    fn from(e: AwsError) -> Self {
        Stop::Aws(e)
    }
}

impl Stop {
    /// An existing AWS resource is not ours and adoption was not asked for.
    pub fn not_owned(message: String) -> Self {
        Stop::Stalled(reason::NOT_OWNED, message)
    }

    /// The outcome to write and when to look again (`retry` gives the object's next backoff
    /// for a failure worth retrying soon); a Kubernetes failure is the reconcile's error (the
    /// controller retries it with its own backoff).
    pub fn outcome(
        self,
        resync: Duration,
        retry: impl FnOnce() -> Duration,
    ) -> crate::error::Result<(Outcome, Duration)> {
        match self {
            Stop::Aws(e) => Ok(crate::reconcile::aws_outcome(&e, resync, retry)),
            Stop::Stalled(reason, message) => Ok((Outcome::Stalled { reason, message }, resync)),
            Stop::Waiting(message) => Ok((Outcome::Waiting { reason: reason::DATA_LAKE_NOT_READY, message }, resync)),
            Stop::Kube(e) => Err(e),
        }
    }
}

/// The one rule for the round fingerprints (see the module documentation): true when a
/// round that ended with `outcome` may be skipped until the object or its dependency
/// changes or the resync interval passes.
pub fn remembers(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Ready { .. } | Outcome::Stalled { .. } => true,
        Outcome::Failed { .. } | Outcome::Progressing { .. } | Outcome::Waiting { .. } => false,
    }
}

/// What one convergence did (apply executor).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    /// Writes sent.
    pub applied: usize,
    /// Settings corrected on resources that already existed: `resource: setting`.
    pub drift: Vec<String>,
    /// Weakening changes sent (the spec asked for them), for kinds that report them apart.
    pub weakened: Vec<String>,
    /// Protections asked for that AWS does not report as in force yet.
    pub pending: Vec<String>,
}

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

/// Something the controller would stall on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blocker {
    pub resource: String,
    pub message: String,
}

/// The plan of one object: the changes in the order the controller sends them, and the
/// blockers it would stall on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub changes: Vec<Planned>,
    pub blockers: Vec<Blocker>,
}

/// A change one AWS call makes, as plans and events name it. Every kind's change type
/// implements it; its applier is an exhaustive match (a change reaching the wrong applier
/// does not compile).
pub trait Describe: std::fmt::Display {
    /// The setting, as named in events and metrics.
    fn setting(&self) -> &'static str;
    /// The AWS resource the change is about.
    fn resource(&self) -> &str;
    /// True when the change removes or weakens a protection.
    fn weakens(&self) -> bool;
    /// `Some` when the change itself creates or deletes its resource; `None` when it is a
    /// setting (part of the create when the resource is new, else an update).
    fn action(&self) -> Option<Action>;
}

/// Implements [`Describe`] for a kind's change type from its inherent `setting`,
/// `resource` and `weakens` and an `action` function.
macro_rules! describe_with_inherent {
    ($t:ty, $action:path) => {
        impl $crate::engine::Describe for $t {
            fn setting(&self) -> &'static str {
                <$t>::setting(self)
            }

            fn resource(&self) -> &str {
                <$t>::resource(self)
            }

            fn weakens(&self) -> bool {
                <$t>::weakens(self)
            }

            fn action(&self) -> Option<$crate::engine::Action> {
                $action(self)
            }
        }
    };
}
pub(crate) use describe_with_inherent;

impl Planned {
    /// The plan line of `change`; `existed` tells whether its resource exists already.
    pub fn of<C: Describe + ?Sized>(change: &C, existed: bool) -> Self {
        let action = change.action().unwrap_or(if existed { Action::Update } else { Action::Create });
        Planned {
            action,
            resource: change.resource().to_string(),
            setting: change.setting().to_string(),
            description: change.to_string(),
            weakens: change.weakens(),
        }
    }
}

/// Stands in for the ARN of something the plan would create: stable, readable, never a
/// valid ARN (so it cannot be mistaken for one), and the same in every plan.
pub fn placeholder(what: &str) -> String {
    format!("(the new {what})")
}

/// True when `arn` is a [`placeholder`].
pub fn is_placeholder(arn: &str) -> bool {
    arn.starts_with("(the new ")
}

/// The AWS clients a sequence needs (BackupPolicy writes in the lake's region and in the
/// backup region; `lakeops plan` plans every kind): the controller's
/// [`crate::aws::clients::AwsClients`], or the in-memory fake in tests.
#[async_trait::async_trait]
pub trait Clients: Send + Sync {
    /// The clients of one region.
    fn region(&self, region: &str) -> crate::aws::clients::Regional;
    /// IAM (global).
    fn iam(&self) -> std::sync::Arc<dyn crate::aws::iam::IamApi>;
    /// The account the clients act in.
    async fn account_id(&self) -> crate::aws::error::AwsResult<String>;
}

#[async_trait::async_trait]
impl Clients for crate::aws::clients::AwsClients {
    fn region(&self, region: &str) -> crate::aws::clients::Regional {
        crate::aws::clients::AwsClients::region(self, region)
    }

    fn iam(&self) -> std::sync::Arc<dyn crate::aws::iam::IamApi> {
        crate::aws::clients::AwsClients::iam(self)
    }

    async fn account_id(&self) -> crate::aws::error::AwsResult<String> {
        crate::aws::clients::AwsClients::account_id(self).await
    }
}

#[cfg(any(test, feature = "fake-aws"))]
#[async_trait::async_trait]
impl Clients for crate::aws::fake::FakeAws {
    fn region(&self, region: &str) -> crate::aws::clients::Regional {
        crate::aws::fake::FakeAws::region(self, region)
    }

    fn iam(&self) -> std::sync::Arc<dyn crate::aws::iam::IamApi> {
        crate::aws::fake::FakeAws::iam(self)
    }

    async fn account_id(&self) -> crate::aws::error::AwsResult<String> {
        Ok(crate::aws::fake::FakeAws::account_id(self))
    }
}

#[cfg(test)]
mod tests;
