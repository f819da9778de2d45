//! One module per kind, each with the same shape: validate, (converge), write status.
pub mod backuppolicy;
pub mod datalake;
pub mod etlfunction;

use std::time::Duration;

use kube::ResourceExt;
use lakeops_crds::names::annotation;

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

/// Checks that an existing AWS resource carries `ours` (the owner's ownership tags), or that
/// `owner` asks for adoption with the annotation. `Err` is the message for a `NotOwned` stall.
pub fn check_owned<K: kube::Resource<DynamicType = ()>>(
    owner: &K,
    ours: &std::collections::BTreeMap<String, String>,
    what: &str,
    tags: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    let adopt = owner.annotations().get(annotation::ADOPT).is_some_and(|v| v == "true");
    if ours.iter().all(|(k, v)| tags.get(k) == Some(v)) || adopt {
        return Ok(());
    }
    let owner_tag =
        tags.get(lakeops_crds::names::tag::OWNER).map(|o| format!(" (tagged as owned by {o})")).unwrap_or_default();
    Err(format!(
        "{what} already exists and is not this {}'s{owner_tag}; lakeops leaves it alone unless the {} has the annotation {}: \"true\"",
        K::kind(&()),
        K::kind(&()),
        annotation::ADOPT
    ))
}

/// The resync interval of one object: its annotation if valid, else the controller's.
pub fn resync_interval<K: ResourceExt>(obj: &K, default: Duration) -> Duration {
    obj.annotations().get(annotation::RESYNC_INTERVAL).and_then(|v| parse_duration(v)).unwrap_or(default)
}

/// Parses `90s`, `5m`, `1h`, `1h30m`. Intervals under 30 s are raised to 30 s so a typo
/// cannot turn a resync into an AWS request storm.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut num = String::new();
    let mut seen_unit = false;
    for ch in s.trim().chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total = total.checked_add(match ch {
            's' => n,
            'm' => n.checked_mul(60)?,
            'h' => n.checked_mul(3600)?,
            'd' => n.checked_mul(86400)?,
            _ => return None,
        })?;
        seen_unit = true;
    }
    if !num.is_empty() || !seen_unit {
        return None;
    }
    Some(Duration::from_secs(total.max(30)))
}

#[cfg(test)]
mod tests {
    use super::*;

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

/// What the controller last reconciled successfully, per object: a watch event caused
/// only by our own status write then costs nothing, instead of a full round of AWS reads.
#[derive(Debug, Default)]
pub struct Fingerprints(std::sync::Mutex<std::collections::HashMap<String, (u64, std::time::Instant)>>);

impl Fingerprints {
    /// The hash of everything a user can change that matters to a reconcile (status excluded).
    fn of<K: ResourceExt>(obj: &K) -> u64 {
        use std::hash::{Hash, Hasher};
        let m = obj.meta();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            m.generation,
            &m.labels,
            &m.annotations,
            &m.finalizers,
            m.deletion_timestamp.as_ref().map(|t| t.0.to_string()),
        )
            .hash(&mut h);
        h.finish()
    }

    /// `Some(time left)` when `obj` was reconciled successfully with the same user-visible
    /// state less than `resync` ago: the caller can skip this round.
    pub fn fresh<K: ResourceExt>(&self, obj: &K, resync: Duration) -> Option<Duration> {
        self.fresh_with(obj, "", resync)
    }

    /// [`Fingerprints::fresh`], where `also` (e.g. the version of an object this one builds on)
    /// must be the same too.
    pub fn fresh_with<K: ResourceExt>(&self, obj: &K, also: &str, resync: Duration) -> Option<Duration> {
        let map = self.0.lock().ok()?;
        let (fp, at) = map.get(&obj.uid()?)?;
        let elapsed = at.elapsed();
        (*fp == Self::with(obj, also) && elapsed < resync).then(|| resync - elapsed)
    }

    /// Records a successful reconcile.
    pub fn remember<K: ResourceExt>(&self, obj: &K) {
        self.remember_with(obj, "");
    }

    /// Records a successful reconcile that built on `also`.
    pub fn remember_with<K: ResourceExt>(&self, obj: &K, also: &str) {
        if let (Ok(mut map), Some(uid)) = (self.0.lock(), obj.uid()) {
            map.insert(uid, (Self::with(obj, also), std::time::Instant::now()));
        }
    }

    fn with<K: ResourceExt>(obj: &K, also: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        if also.is_empty() {
            return Self::of(obj);
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (Self::of(obj), also).hash(&mut h);
        h.finish()
    }

    /// Forgets an object (failed reconcile, deletion), so the next event is handled in full.
    pub fn forget<K: ResourceExt>(&self, obj: &K) {
        if let (Ok(mut map), Some(uid)) = (self.0.lock(), obj.uid()) {
            map.remove(&uid);
        }
    }
}
