//! An in-memory AWS account behind the adapter traits ([`S3Api`](super::s3::S3Api),
//! [`KmsApi`](super::kms::KmsApi), [`DynamoApi`](super::dynamodb::DynamoApi),
//! [`CloudTrailApi`](super::cloudtrail::CloudTrailApi), [`LambdaApi`](super::lambda::LambdaApi),
//! [`LogsApi`](super::logs::LogsApi), [`IamApi`](super::iam::IamApi)), so the convergence
//! engine can be unit- and property-tested in milliseconds, without the emulator.
//!
//! Compiled for this crate's unit tests and, behind the `fake-aws` cargo feature, for the
//! integration tests in `controller/tests/` (the crate dev-depends on itself with the
//! feature). It is not in the release binary.
//!
//! # What is modelled
//! - One account, every region. Names are unique per account and region (tables, trails,
//!   functions, log groups, KMS aliases), per account for IAM roles, and across every
//!   region and account for buckets. A bucket in another region answers `PermanentRedirect`
//!   (301) to every call but CreateBucket, which answers `BucketAlreadyOwnedByYou`; another
//!   account's bucket answers `AccessDenied` and, to CreateBucket, `BucketAlreadyExists`.
//! - Each answer is what the SDK adapter returns for the same AWS answer: AWS's error code
//!   and HTTP status go through [`AwsError::classify`], and the adapter's own conventions
//!   apply on top (`Ok(None)` for a missing configuration or resource where the trait says
//!   so, `BucketAlreadyOwnedByYou` and missing-on-delete as success).
//! - Creating what exists answers AWS's code: `BucketAlreadyOwnedByYou`/`BucketAlreadyExists`,
//!   `AlreadyExistsException` (KMS alias), `ResourceInUseException` (DynamoDB),
//!   `TrailAlreadyExistsException`, `EntityAlreadyExists` (IAM), `ResourceConflictException`
//!   (Lambda, also for a duplicate permission statement), `ResourceAlreadyExistsException`
//!   (Logs). KMS CreateKey never conflicts: every call makes a new key.
//! - What a create sets: a new bucket has ObjectOwnership BucketOwnerEnforced, all four
//!   Block Public Access flags and SSE-S3 default encryption (AWS's defaults since 2023),
//!   and versioning Enabled when Object Lock is; a new key is Enabled with rotation off; a
//!   new table has what `create_table` documents; a new trail is not logging and selects
//!   management events only.
//! - Settling: a create's own answer reports the transitional state (table `CREATING`,
//!   function `Pending`); later reads see it settled once [`FakeAws::set_settle_calls`]
//!   further calls have been made (0 by default: the next call). Updates of a function set
//!   `LastUpdateStatus` `InProgress` the same way, and a second update meanwhile answers
//!   `ResourceConflictException`, as Lambda does.
//! - Checks AWS makes that the engine depends on: deletion protection on DeleteTable, a
//!   non-empty bucket on DeleteBucket, inline policies on DeleteRole, Object Lock needing
//!   versioning, replication needing versioning on both buckets, the trail's bucket existing
//!   and its policy naming `cloudtrail.amazonaws.com`, a Lambda notification needing an
//!   invoke permission for the bucket, the execution role existing and trusting Lambda,
//!   policies being JSON, rotation periods, log retention values, KMS key states.
//! - AWS Backup: vault names unique per region, a vault holding recovery points not
//!   deletable, plan names NOT unique (as in AWS; moto refuses a second one), a repeated
//!   creator request id refused, a plan with selections not deletable, UpdateBackupPlan a
//!   new version of the same id. No backup job ever runs; recovery points are set by tests.
//! - Account-level services: one GuardDuty detector per region (a second CreateDetector is
//!   refused, as AWS does; moto accepts it), Inspector resource types going through
//!   `ENABLING` for the settle calls, a delegated administrator answering ACCESS_DENIED, one
//!   Config recorder and channel per region (the channel's bucket must exist).
//! - Optional eventual consistency ([`FakeAws::set_read_lag`]): a write becomes visible to
//!   reads only after K further calls. Writes and their checks always see the latest state.
//! - Observability: every call sent ([`FakeAws::calls`], [`FakeAws::writes`]) and a census of
//!   live resources ([`FakeAws::count`], [`FakeAws::resources_owned_by`]).
//! - Faults: a crash after n calls, lost answers to applied writes, injected error codes.
//!
//! # What is not
//! Object data (objects are keys with version ids and ETags, no bodies), IAM evaluation
//! (every call is allowed; another account's bucket is the only AccessDenied), KMS
//! cryptography and key-policy evaluation, pagination (each list is one call, except
//! ListObjectVersions, which pages by 1,000 as the adapter does), the replica tables of a
//! DynamoDB global table in their own regions (replicas are only listed on the source
//! table), multi-region trails' shadow copies, code signing configurations themselves (any
//! ARN is accepted), and the SDK's own retries (an injected throttle is answered once per
//! call, as after the SDK gave up).
mod apigateway;
mod backup;
mod cloudtrail;
mod cloudwatch;
mod config;
mod dynamodb;
mod events;
mod guardduty;
mod iam;
mod inspector;
mod kms;
mod lambda;
mod logs;
mod s3;
mod sns;
mod stepfunctions;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

/// Object versions are S3's own type; [`ObjectVersion::new`] builds one for a starting state.
pub use crate::aws::s3::ObjectVersion;
pub use apigateway::{Domain, FakeApiGateway, RestApi};
pub use backup::{BackupPlan, BackupVault, FakeBackup};
pub use cloudtrail::{FakeCloudTrail, Trail};
pub use cloudwatch::{Alarm, FakeCloudWatch};
pub use config::{ConfigRegion, FakeConfig};
pub use dynamodb::{FakeDynamo, Table};
pub use events::{EventRule, FakeEvents};
pub use guardduty::FakeGuardDuty;
pub use iam::{FakeIam, Role};
pub use inspector::{FakeInspector, InspectorAccount, ScanState};
pub use kms::{FakeKms, Key};
pub use lambda::{FakeLambda, Function};
pub use logs::{FakeLogs, LogGroupState};
pub use s3::{Bucket, FakeS3};
pub use sns::{FakeSns, Topic};
pub use stepfunctions::{FakeStepFunctions, StateMachine};

use super::clients::Regional;
use super::error::{AwsError, AwsResult, ErrorKind};
use super::iam::IamApi;

/// One request the code under test sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// e.g. `s3`.
    pub service: &'static str,
    /// AWS's operation name, e.g. `PutBucketPolicy`.
    pub operation: &'static str,
    /// What the call named: bucket, key id or alias, table name, ARN...
    pub resource: String,
    /// The region of the client that sent it; empty for IAM.
    pub region: String,
    /// True when the operation changes state (whether or not it succeeded).
    pub write: bool,
}

/// The kinds of resource the census counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Key,
    Bucket,
    Table,
    Trail,
    Role,
    Function,
    LogGroup,
    BackupVault,
    BackupPlan,
    BackupSelection,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Key => "key",
            Kind::Bucket => "bucket",
            Kind::Table => "table",
            Kind::Trail => "trail",
            Kind::Role => "role",
            Kind::Function => "function",
            Kind::LogGroup => "log group",
            Kind::BackupVault => "backup vault",
            Kind::BackupPlan => "backup plan",
            Kind::BackupSelection => "backup selection",
        })
    }
}

/// Everything that exists in the account. Public so tests can inspect a
/// [`snapshot`](FakeAws::snapshot) or change it with [`FakeAws::edit`].
#[derive(Clone, Debug, Default)]
pub struct Resources {
    /// By name: bucket names are global.
    pub buckets: BTreeMap<String, Bucket>,
    /// By key id (ids are unique across regions).
    pub keys: BTreeMap<String, Key>,
    /// `(region, alias/...)` to key id.
    pub aliases: BTreeMap<(String, String), String>,
    /// By `(region, name)`.
    pub tables: BTreeMap<(String, String), Table>,
    pub trails: BTreeMap<(String, String), Trail>,
    pub functions: BTreeMap<(String, String), Function>,
    pub log_groups: BTreeMap<(String, String), LogGroupState>,
    /// By name: IAM is global.
    pub roles: BTreeMap<String, Role>,
    /// GuardDuty detectors by `(region, id)`.
    pub detectors: BTreeMap<(String, String), crate::aws::guardduty::DetectorInfo>,
    /// Inspector by region (the fake has one account).
    pub inspector: BTreeMap<String, InspectorAccount>,
    /// AWS Config by region.
    pub config: BTreeMap<String, ConfigRegion>,
    /// SNS topics by ARN.
    pub topics: BTreeMap<String, Topic>,
    /// EventBridge rules of the default bus by `(region, name)`.
    pub event_rules: BTreeMap<(String, String), EventRule>,
    /// Step Functions state machines by ARN.
    pub state_machines: BTreeMap<String, StateMachine>,
    /// CloudWatch metric alarms by `(region, name)`.
    pub alarms: BTreeMap<(String, String), Alarm>,
    /// API Gateway REST APIs by id (ids are unique across regions).
    pub rest_apis: BTreeMap<String, RestApi>,
    /// API Gateway usage plans by `(region, id)`.
    pub usage_plans: BTreeMap<(String, String), crate::aws::apigateway::UsagePlanInfo>,
    /// API Gateway custom domains by `(region, name)`.
    pub domains: BTreeMap<(String, String), Domain>,
    /// AWS Backup vaults by `(region, name)`.
    pub backup_vaults: BTreeMap<(String, String), BackupVault>,
    /// AWS Backup plans by id (ids are unique across regions), deleted ones included.
    pub backup_plans: BTreeMap<String, BackupPlan>,
}

/// A fault armed for calls whose operation matches.
struct Injected {
    operation: String,
    code: String,
    status: u16,
    /// How many more calls it fails; `None`: every one.
    remaining: Option<usize>,
}

type DropPredicate = Box<dyn Fn(&str, &str) -> bool + Send + Sync>;

#[derive(Default)]
struct Faults {
    /// Calls are refused once the log has this many entries.
    crash_at: Option<usize>,
    drop_on: Vec<DropPredicate>,
    drop_at: Vec<usize>,
    fail: Vec<Injected>,
}

struct World {
    now: Resources,
    /// With a read lag: what reads see, and the writes not yet visible (call index, state after).
    visible: Resources,
    pending: VecDeque<(usize, Resources)>,
    read_lag: usize,
    settle_calls: usize,
    calls: Vec<Call>,
    refused: usize,
    faults: Faults,
    next_id: u64,
}

/// An AWS failure as AWS sends it, before classification.
#[derive(Debug)]
pub(crate) struct Fail {
    code: &'static str,
    status: u16,
    message: String,
}

/// AWS's answer `code` with HTTP `status`.
pub(crate) fn fail(code: &'static str, status: u16, message: impl Into<String>) -> Fail {
    Fail { code, status, message: message.into() }
}

/// What a write operation works on.
pub(crate) struct WriteCtx<'a> {
    pub res: &'a mut Resources,
    pub account: &'a str,
    /// The region of the client.
    pub region: &'a str,
    /// Index of this call in the log.
    pub index: usize,
    /// Call index from which a transition this write starts has settled.
    pub settles_at: usize,
    next_id: &'a mut u64,
}

impl WriteCtx<'_> {
    /// A fresh number for ids (key ids, revision ids).
    pub fn next_id(&mut self) -> u64 {
        *self.next_id += 1;
        *self.next_id
    }
}

/// What a read operation sees.
pub(crate) struct ReadCtx<'a> {
    pub res: &'a Resources,
    pub account: &'a str,
    pub index: usize,
}

/// The in-memory account. Build it with [`FakeAws::new`], hand [`region`](Self::region) and
/// [`iam`](Self::iam) to the code under test, and inspect or steer it from the test.
pub struct FakeAws {
    account: String,
    me: Weak<FakeAws>,
    world: Mutex<World>,
}

impl fmt::Debug for FakeAws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeAws").field("account", &self.account).finish_non_exhaustive()
    }
}

/// Ownership tag the census reads.
const OWNER_TAG: &str = lakeops_crds::names::tag::OWNER;

impl FakeAws {
    /// An empty account with this id.
    pub fn new(account: &str) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            account: account.to_string(),
            me: me.clone(),
            world: Mutex::new(World {
                now: Resources::default(),
                visible: Resources::default(),
                pending: VecDeque::new(),
                read_lag: 0,
                settle_calls: 0,
                calls: Vec::new(),
                refused: 0,
                faults: Faults::default(),
                next_id: 0,
            }),
        })
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn this(&self) -> Arc<Self> {
        // `me` points at the Arc that owns `self`, which is alive while `&self` is.
        self.me.upgrade().unwrap_or_else(|| unreachable!("FakeAws is only built inside an Arc"))
    }

    pub fn account_id(&self) -> String {
        self.account.clone()
    }

    /// The adapters for `region`, sharing this account's state.
    pub fn region(&self, region: &str) -> Regional {
        Regional {
            s3: Arc::new(self.s3(region)),
            kms: Arc::new(self.kms(region)),
            dynamodb: Arc::new(self.dynamodb(region)),
            cloudtrail: Arc::new(self.cloudtrail(region)),
            lambda: Arc::new(self.lambda(region)),
            logs: Arc::new(self.logs(region)),
            guardduty: Arc::new(FakeGuardDuty::new(self.this(), region)),
            inspector: Arc::new(FakeInspector::new(self.this(), region)),
            config: Arc::new(FakeConfig::new(self.this(), region)),
            sns: Arc::new(FakeSns::new(self.this(), region)),
            events: Arc::new(self.events(region)),
            stepfunctions: Arc::new(FakeStepFunctions::new(self.this(), region)),
            cloudwatch: Arc::new(FakeCloudWatch::new(self.this(), region)),
            apigateway: Arc::new(FakeApiGateway::new(self.this(), region)),
            backup: Arc::new(FakeBackup::new(self.this(), region)),
        }
    }

    /// The IAM adapter (global).
    pub fn iam(&self) -> Arc<dyn IamApi> {
        Arc::new(FakeIam::new(self.this()))
    }

    /// The concrete adapters, for their inherent methods (e.g. [`FakeKms::find_key_by_tag`]).
    pub fn s3(&self, region: &str) -> FakeS3 {
        FakeS3::new(self.this(), region)
    }
    pub fn kms(&self, region: &str) -> FakeKms {
        FakeKms::new(self.this(), region)
    }
    pub fn dynamodb(&self, region: &str) -> FakeDynamo {
        FakeDynamo::new(self.this(), region)
    }
    pub fn cloudtrail(&self, region: &str) -> FakeCloudTrail {
        FakeCloudTrail::new(self.this(), region)
    }
    pub fn lambda(&self, region: &str) -> FakeLambda {
        FakeLambda::new(self.this(), region)
    }
    pub fn logs(&self, region: &str) -> FakeLogs {
        FakeLogs::new(self.this(), region)
    }
    pub fn events(&self, region: &str) -> FakeEvents {
        FakeEvents::new(self.this(), region)
    }

    // ----- the call path -----

    /// Runs one call: crash check, log, injected failure, the operation on the current state
    /// (writes) or on what reads see (reads), lost answer.
    fn call<T>(
        &self,
        region: &str,
        service: &'static str,
        operation: &'static str,
        resource: &str,
        write: bool,
        op: impl FnOnce(&mut World, usize) -> Result<T, Fail>,
    ) -> AwsResult<T> {
        let mut w = self.world();
        if w.faults.crash_at.is_some_and(|at| w.calls.len() >= at) {
            w.refused += 1;
            return Err(AwsError {
                kind: ErrorKind::Retryable,
                service,
                operation,
                resource: resource.to_string(),
                code: None,
                message: "the process has stopped (simulated crash); nothing was sent".to_string(),
            });
        }
        let index = w.calls.len();
        w.calls.push(Call { service, operation, resource: resource.to_string(), region: region.to_string(), write });
        let classify =
            |f: Fail| AwsError::classify(service, operation, resource, Some(f.code), Some(&f.message), Some(f.status));
        let named =
            |f: &Injected| f.operation == operation || f.operation.split_once(':') == Some((service, operation));
        let injected = w.faults.fail.iter_mut().find(|f| named(f) && f.remaining != Some(0));
        if let Some(f) = injected {
            if let Some(n) = &mut f.remaining {
                *n -= 1;
            }
            let (code, status) = (f.code.clone(), f.status);
            return Err(AwsError::classify(
                service,
                operation,
                resource,
                Some(&code),
                Some("injected failure"),
                Some(status),
            ));
        }
        let result = op(&mut w, index).map_err(classify);
        if write && w.read_lag > 0 {
            let after = w.now.clone();
            w.pending.push_back((index, after));
        }
        let dropped = w.faults.drop_at.contains(&index) || w.faults.drop_on.iter().any(|p| p(service, operation));
        if dropped {
            // What the SDK reports when the answer never arrives: no code, no status.
            return Err(AwsError::classify(service, operation, resource, None, Some("the request timed out"), None));
        }
        result
    }

    /// A read: `op` sees what reads see at this point (lagging writes hidden).
    pub(crate) fn read<T>(
        &self,
        region: &str,
        service: &'static str,
        operation: &'static str,
        resource: &str,
        op: impl FnOnce(&ReadCtx<'_>) -> Result<T, Fail>,
    ) -> AwsResult<T> {
        self.call(region, service, operation, resource, false, |w, index| {
            let lag = w.read_lag;
            if lag > 0 {
                while w.pending.front().is_some_and(|(at, _)| at + lag < index) {
                    if let Some((_, state)) = w.pending.pop_front() {
                        w.visible = state;
                    }
                }
            }
            let res = if lag > 0 { &w.visible } else { &w.now };
            op(&ReadCtx { res, account: &self.account, index })
        })
    }

    /// A write: `op` changes the current state.
    pub(crate) fn write<T>(
        &self,
        region: &str,
        service: &'static str,
        operation: &'static str,
        resource: &str,
        op: impl FnOnce(&mut WriteCtx<'_>) -> Result<T, Fail>,
    ) -> AwsResult<T> {
        self.call(region, service, operation, resource, true, |w, index| {
            let settles_at = index + 1 + w.settle_calls;
            let World { now, next_id, .. } = w;
            op(&mut WriteCtx { res: now, account: &self.account, region, index, settles_at, next_id })
        })
    }

    // ----- observing -----

    /// Every call sent since the last [`reset_calls`](Self::reset_calls), in order.
    pub fn calls(&self) -> Vec<Call> {
        self.world().calls.clone()
    }

    /// The write calls among [`calls`](Self::calls).
    pub fn writes(&self) -> Vec<Call> {
        self.world().calls.iter().filter(|c| c.write).cloned().collect()
    }

    /// Forgets the call log (and the refused-call count). Armed faults stay armed; a
    /// [`crash_after`](Self::crash_after) armed earlier is re-armed relative to the empty log.
    pub fn reset_calls(&self) {
        let mut w = self.world();
        let sent = w.calls.len();
        w.calls.clear();
        w.refused = 0;
        if let Some(at) = &mut w.faults.crash_at {
            *at = at.saturating_sub(sent);
        }
    }

    /// Calls refused after a simulated crash (never sent, not in [`calls`](Self::calls)).
    pub fn refused_calls(&self) -> usize {
        self.world().refused
    }

    /// A copy of everything in the account, as it is now (ignoring any read lag).
    pub fn snapshot(&self) -> Resources {
        self.world().now.clone()
    }

    /// How many live resources of `kind` exist in the account (every region). Keys pending
    /// deletion are not live.
    pub fn count(&self, kind: Kind) -> usize {
        self.census().into_iter().filter(|(k, _, _)| *k == kind).count()
    }

    /// Live resources per kind (kinds with none are absent).
    pub fn counts(&self) -> BTreeMap<Kind, usize> {
        let mut counts = BTreeMap::new();
        for (kind, _, _) in self.census() {
            *counts.entry(kind).or_insert(0) += 1;
        }
        counts
    }

    /// Live resources whose `lakeops.dev/owner` tag is `owner` (`namespace/name`), as
    /// (kind, id): bucket and role names, key ARNs, `region/name` for the regional others.
    pub fn resources_owned_by(&self, owner: &str) -> Vec<(Kind, String)> {
        self.census()
            .into_iter()
            .filter(|(_, _, tags)| tags.get(OWNER_TAG).is_some_and(|o| o == owner))
            .map(|(kind, id, _)| (kind, id))
            .collect()
    }

    fn census(&self) -> Vec<(Kind, String, BTreeMap<String, String>)> {
        let w = self.world();
        let r = &w.now;
        let regional = |(region, name): &(String, String)| format!("{region}/{name}");
        let mut all = Vec::new();
        all.extend(r.keys.values().filter(|k| k.is_live()).map(|k| (Kind::Key, k.arn.clone(), k.tags.clone())));
        all.extend(
            r.buckets
                .values()
                .filter(|b| b.account == self.account)
                .map(|b| (Kind::Bucket, b.name.clone(), b.tags.clone())),
        );
        all.extend(r.tables.iter().map(|(id, t)| (Kind::Table, regional(id), t.tags.clone())));
        all.extend(r.trails.iter().map(|(id, t)| (Kind::Trail, regional(id), t.tags.clone())));
        all.extend(r.functions.iter().map(|(id, f)| (Kind::Function, regional(id), f.tags.clone())));
        all.extend(r.log_groups.iter().map(|(id, g)| (Kind::LogGroup, regional(id), g.tags.clone())));
        all.extend(r.backup_vaults.iter().map(|(id, v)| (Kind::BackupVault, regional(id), v.tags.clone())));
        for p in r.backup_plans.values().filter(|p| !p.info.deleted) {
            all.push((Kind::BackupPlan, p.info.id.clone(), p.tags.clone()));
            // Selections carry no tags: their plan's owner owns them.
            all.extend(p.selections.iter().map(|s| (Kind::BackupSelection, s.summary.id.clone(), p.tags.clone())));
        }
        all.extend(r.roles.values().map(|role| (Kind::Role, role.name.clone(), role.tags.clone())));
        all
    }

    // ----- steering -----

    /// Reads see a write only once `calls` further calls have been made (0: at once, the
    /// default). Turning it on or off makes everything written so far visible.
    pub fn set_read_lag(&self, calls: usize) {
        let mut w = self.world();
        w.read_lag = calls;
        w.pending.clear();
        w.visible = w.now.clone();
    }

    /// How many calls after a create or update its transitional state (table `CREATING`,
    /// function `Pending` or update `InProgress`, replica `CREATING`) lasts; 0 by default:
    /// only the write's own answer shows it.
    pub fn set_settle_calls(&self, calls: usize) {
        self.world().settle_calls = calls;
    }

    /// Changes the account directly, as a test's starting state: no call is logged and no
    /// fault applies. The change is visible to reads at once.
    pub fn edit<R>(&self, change: impl FnOnce(&mut Resources) -> R) -> R {
        let mut w = self.world();
        let out = change(&mut w.now);
        w.pending.clear();
        w.visible = w.now.clone();
        out
    }

    /// A second account with a copy of this one's resources (and id counter, so the same
    /// calls make the same ids), an empty call log, no faults, the same read lag and settle
    /// calls: to run, say, the plan on one copy and the apply on the other from one state.
    pub fn fork(&self) -> Arc<Self> {
        let copy = Self::new(&self.account);
        {
            let w = self.world();
            let mut c = copy.world();
            c.now = w.now.clone();
            c.visible = w.now.clone();
            c.read_lag = w.read_lag;
            c.settle_calls = w.settle_calls;
            c.next_id = w.next_id;
        }
        copy
    }

    /// A fresh number for ids made by the helpers.
    fn next_id(&self) -> u64 {
        let mut w = self.world();
        w.next_id += 1;
        w.next_id
    }

    // ----- faults -----

    /// The next `n` calls go through; every later one is refused with a retryable error and
    /// has no effect, as if the process had died (nothing more is sent). Counts from now.
    pub fn crash_after(&self, n: usize) {
        let mut w = self.world();
        w.faults.crash_at = Some(w.calls.len() + n);
    }

    /// Every call for which `predicate(service, operation)` holds takes effect, then its
    /// answer is lost: the caller sees a timeout (no code), as the SDK reports one.
    pub fn drop_response_on(&self, predicate: impl Fn(&str, &str) -> bool + Send + Sync + 'static) {
        self.world().faults.drop_on.push(Box::new(predicate));
    }

    /// The call that will have this index in [`calls`](Self::calls) takes effect and its
    /// answer is lost.
    pub fn drop_response_at(&self, index: usize) {
        self.world().faults.drop_at.push(index);
    }

    /// Every call of `operation` (e.g. `PutBucketPolicy`, or `kms:TagResource` for one
    /// service's operation of a shared name) answers AWS error `code` with HTTP
    /// `status`, without effect, until [`clear_faults`](Self::clear_faults).
    pub fn fail_with(&self, operation: &str, code: &str, status: u16) {
        self.fail_next(operation, code, status, None);
    }

    /// Like [`fail_with`](Self::fail_with) for the next `times` calls of `operation` only.
    pub fn fail_times(&self, operation: &str, code: &str, status: u16, times: usize) {
        self.fail_next(operation, code, status, Some(times));
    }

    fn fail_next(&self, operation: &str, code: &str, status: u16, remaining: Option<usize>) {
        self.world().faults.fail.push(Injected {
            operation: operation.to_string(),
            code: code.to_string(),
            status,
            remaining,
        });
    }

    /// Disarms every fault: the "process" runs again, answers arrive, nothing is injected.
    pub fn clear_faults(&self) {
        self.world().faults = Faults::default();
    }
}

/// The adapters' convention for reads that say `Ok(None)` when the thing does not exist.
pub(crate) fn none_if_missing<T>(result: AwsResult<T>) -> AwsResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The adapters' convention for deletes that succeed when the thing is already gone.
pub(crate) fn ok_if_missing(result: AwsResult<()>) -> AwsResult<()> {
    none_if_missing(result).map(drop)
}

/// Tags merged as TagResource does: new keys added, existing keys overwritten.
pub(crate) fn merge_tags(into: &mut BTreeMap<String, String>, tags: &BTreeMap<String, String>) {
    into.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
}

/// AWS refuses a policy document that is not JSON; the code differs per service.
pub(crate) fn check_json(document: &str, code: &'static str) -> Result<(), Fail> {
    serde_json::from_str::<serde_json::Value>(document)
        .map(drop)
        .map_err(|e| fail(code, 400, format!("the policy is not valid JSON: {e}")))
}
