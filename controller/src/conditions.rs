//! Building conditions so that a status write happens only when something a reader cares
//! about changed: `lastTransitionTime` moves only when a condition's status flips.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use lakeops_crds::names::{condition, reason};

/// The outcome of one reconcile, as the three kstatus conditions express it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Work is under way; `Reconciling=True`, `Ready=False` (or `Unknown` on first sight).
    Progressing { reason: &'static str, message: String },
    /// Everything matches the spec.
    Ready { message: String },
    /// Cannot progress without a change by the user (spec or AWS permissions).
    Stalled { reason: &'static str, message: String },
    /// A transient failure; retried.
    Failed { reason: &'static str, message: String },
    /// Waiting on something outside this object (a DataLake, AWS).
    Waiting { reason: &'static str, message: String },
}

impl Outcome {
    /// The Ready condition's reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Outcome::Ready { .. } => reason::RECONCILED,
            Outcome::Progressing { reason, .. }
            | Outcome::Stalled { reason, .. }
            | Outcome::Failed { reason, .. }
            | Outcome::Waiting { reason, .. } => reason,
        }
    }

    fn message(&self) -> &str {
        match self {
            Outcome::Ready { message }
            | Outcome::Progressing { message, .. }
            | Outcome::Stalled { message, .. }
            | Outcome::Failed { message, .. }
            | Outcome::Waiting { message, .. } => message,
        }
    }

    /// `(Ready, Reconciling, Stalled)` statuses.
    fn statuses(&self) -> (&'static str, bool, bool) {
        match self {
            Outcome::Ready { .. } => ("True", false, false),
            Outcome::Progressing { .. } | Outcome::Waiting { .. } | Outcome::Failed { .. } => ("False", true, false),
            Outcome::Stalled { .. } => ("False", false, true),
        }
    }
}

/// The conditions after `outcome`, given the current ones. Types lakeops does not know
/// are kept as they are. Negative-polarity conditions that are `False` are omitted, as
/// kstatus expects.
pub fn next_conditions(
    current: &[Condition],
    outcome: &Outcome,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let (ready, reconciling, stalled) = outcome.statuses();
    let mut out: Vec<Condition> = current
        .iter()
        .filter(|c| ![condition::READY, condition::RECONCILING, condition::STALLED].contains(&c.type_.as_str()))
        .cloned()
        .collect();
    let mut put = |type_: &str, status: &str| {
        let previous = current.iter().find(|c| c.type_ == type_);
        let last_transition_time = match previous {
            Some(p) if p.status == status => p.last_transition_time.clone(),
            _ => now.clone(),
        };
        out.push(Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: outcome.reason().to_string(),
            message: outcome.message().to_string(),
            observed_generation: generation,
            last_transition_time,
        });
    };
    put(condition::READY, ready);
    if reconciling {
        put(condition::RECONCILING, "True");
    }
    if stalled {
        put(condition::STALLED, "True");
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// True when two condition lists differ in anything but timestamps.
pub fn conditions_differ(a: &[Condition], b: &[Condition]) -> bool {
    fn key(c: &Condition) -> (&str, &str, &str, &str, Option<i64>) {
        (&c.type_, &c.status, &c.reason, &c.message, c.observed_generation)
    }
    let mut a: Vec<_> = a.iter().map(key).collect();
    let mut b: Vec<_> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a != b
}

#[cfg(test)]
mod tests {
    use super::*;
    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).expect("valid timestamp"))
    }

    fn find<'a>(c: &'a [Condition], t: &str) -> Option<&'a Condition> {
        c.iter().find(|x| x.type_ == t)
    }

    #[test]
    fn first_sight_sets_reconciling_and_not_ready() {
        let o = Outcome::Progressing { reason: reason::PROGRESSING, message: "creating".into() };
        let c = next_conditions(&[], &o, Some(1), &at(10));
        assert_eq!(find(&c, condition::READY).map(|c| c.status.as_str()), Some("False"));
        assert_eq!(find(&c, condition::RECONCILING).map(|c| c.status.as_str()), Some("True"));
        assert!(find(&c, condition::STALLED).is_none());
        assert!(c.iter().all(|c| c.observed_generation == Some(1)));
    }

    #[test]
    fn unchanged_outcome_keeps_transition_times_and_is_not_a_difference() {
        let o = Outcome::Stalled { reason: reason::INVALID_SPEC, message: "spec.region: bad".into() };
        let first = next_conditions(&[], &o, Some(2), &at(10));
        let second = next_conditions(&first, &o, Some(2), &at(99));
        assert_eq!(first, second);
        assert!(!conditions_differ(&first, &second));
    }

    #[test]
    fn a_flip_moves_the_transition_time_and_drops_stale_types() {
        let stalled = Outcome::Stalled { reason: reason::INVALID_SPEC, message: "bad".into() };
        let first = next_conditions(&[], &stalled, Some(1), &at(10));
        let ready = next_conditions(&first, &Outcome::Ready { message: "ok".into() }, Some(2), &at(20));
        let r = find(&ready, condition::READY).expect("ready");
        assert_eq!((r.status.as_str(), r.last_transition_time.clone()), ("True", at(20)));
        assert!(find(&ready, condition::STALLED).is_none());
        assert!(conditions_differ(&first, &ready));
    }

    #[test]
    fn foreign_condition_types_are_kept() {
        let foreign = Condition {
            type_: "example.com/Audited".into(),
            status: "True".into(),
            reason: "Done".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: at(1),
        };
        let c =
            next_conditions(std::slice::from_ref(&foreign), &Outcome::Ready { message: "ok".into() }, Some(1), &at(5));
        assert!(c.contains(&foreign));
    }
}
