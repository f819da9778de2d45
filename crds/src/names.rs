//! Every string the API, the controller and the tools must agree on: condition types,
//! reasons, annotations, tags, the finalizer and the field manager.

/// The API group of every lakeops kind.
pub const GROUP: &str = "lakeops.dev";
/// The served and stored version.
pub const VERSION: &str = "v1alpha1";

/// Condition types. `Ready` summarises; `Reconciling` and `Stalled` are what kstatus
/// (Argo CD, Flux) reads to tell progress from a dead end.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const RECONCILING: &str = "Reconciling";
    pub const STALLED: &str = "Stalled";
}

/// CamelCase condition reasons.
pub mod reason {
    /// First sight of a generation: work has not finished yet.
    pub const PROGRESSING: &str = "Progressing";
    /// AWS matches the spec.
    pub const RECONCILED: &str = "Reconciled";
    /// The spec breaks a rule the schema could not express.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// An AWS resource with our name exists but carries no ownership tags of ours.
    pub const NOT_OWNED: &str = "NotOwned";
    /// The referenced DataLake is missing or not Ready yet.
    pub const DATA_LAKE_NOT_READY: &str = "DataLakeNotReady";
    /// Retention was asked for on a lake whose buckets have no Object Lock.
    pub const OBJECT_LOCK_DISABLED: &str = "ObjectLockDisabled";
    /// A change would weaken protection and the manifest does not allow it.
    pub const PROTECTION_DOWNGRADE_REFUSED: &str = "ProtectionDowngradeRefused";
    /// Table replicas were asked for and AWS does not report them ACTIVE yet.
    pub const REPLICAS_NOT_ACTIVE: &str = "ReplicasNotActive";
    /// Another object already claims the same thing.
    pub const CONFLICT: &str = "Conflict";
    /// AWS refused a call for lack of permission.
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// AWS rejected a request as invalid.
    pub const INVALID_REQUEST: &str = "InvalidRequest";
    /// A transient AWS or Kubernetes failure; retried with back-off.
    pub const RETRYING: &str = "Retrying";
    /// Deletion is held back because a resource still holds data.
    pub const DELETION_BLOCKED: &str = "DeletionBlocked";
    /// An account service was enabled and AWS reports it still starting (Inspector ENABLING).
    pub const SERVICES_ENABLING: &str = "ServicesEnabling";
    /// Inspector reports a finding on the function at or above its `maximumFindingSeverity`.
    pub const VULNERABLE_CODE: &str = "VulnerableCode";
    /// The lake requires a SecurityBaseline and no Ready one covers its account and region.
    pub const BASELINE_NOT_READY: &str = "BaselineNotReady";
}

/// Annotations users put on objects.
pub mod annotation {
    /// `"true"` lets lakeops take over existing AWS resources that carry no owner tags.
    pub const ADOPT: &str = "lakeops.dev/adopt";
    /// Per-object resync interval (e.g. `5m`, `1h`), overriding the controller flag.
    pub const RESYNC_INTERVAL: &str = "lakeops.dev/resync-interval";
    /// Any new value asks for an immediate reconcile; echoed in status when handled.
    pub const RECONCILE_REQUESTED_AT: &str = "lakeops.dev/reconcile-requested-at";
}

/// Tags lakeops writes on every AWS resource it creates.
pub mod tag {
    /// `namespace/name` of the owning object.
    pub const OWNER: &str = "lakeops.dev/owner";
    /// UID of the owning object, so a re-created object with the same name is told apart.
    pub const OWNER_UID: &str = "lakeops.dev/owner-uid";
    /// Set when the owner was deleted with `deletionPolicy: Retain`.
    pub const RETAINED: &str = "lakeops.dev/retained";
    /// Prefix users may not use in `spec.tags`.
    pub const RESERVED_PREFIX: &str = "lakeops.dev/";
}

/// The finalizer that guards AWS clean-up.
pub const FINALIZER: &str = "lakeops.dev/cleanup";

/// Server-side-apply field manager of the controller.
pub const FIELD_MANAGER: &str = "lakeops-controller";
