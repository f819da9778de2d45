//! Retry back-off per object: a failed round is retried after seconds, growing with each
//! consecutive failure, never after the resync interval (minutes) and never in lockstep with
//! other objects that failed at the same moment.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::ResourceExt;

/// The first retry's delay.
pub const MIN: Duration = Duration::from_secs(5);
/// The longest delay between two retries.
pub const MAX: Duration = Duration::from_secs(300);

/// Consecutive failures per object UID.
#[derive(Debug, Default)]
pub struct Backoff(Mutex<HashMap<String, u32>>);

impl Backoff {
    /// Counts one more failure of `obj` and returns how long to wait before retrying it.
    pub fn next<K: ResourceExt>(&self, obj: &K) -> Duration {
        let failures = {
            let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = map.entry(obj.uid().unwrap_or_default()).or_default();
            *n = n.saturating_add(1);
            *n
        };
        delay(failures, fastrand::f64())
    }

    /// Forgets the failures of `obj` (it succeeded, or is gone).
    pub fn reset<K: ResourceExt>(&self, obj: &K) {
        if let Some(uid) = obj.uid() {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&uid);
        }
    }
}

/// The delay after `failures` consecutive failures: [`MIN`] doubled each time, plus up to 50%
/// (`random` in `[0, 1)`) so that objects failing together spread out, capped at [`MAX`].
pub fn delay(failures: u32, random: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let base = MIN.saturating_mul(1 << exponent).min(MAX);
    (base + base.mul_f64(random.clamp(0.0, 1.0) / 2.0)).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_five_seconds_with_jitter_and_stop_at_five_minutes() {
        assert_eq!(delay(1, 0.0), Duration::from_secs(5));
        assert_eq!(delay(1, 0.999_999), Duration::from_secs(5).mul_f64(1.499_999_5));
        assert_eq!(delay(2, 0.0), Duration::from_secs(10));
        assert_eq!(delay(4, 0.0), Duration::from_secs(40));
        assert_eq!(delay(7, 0.0), MAX);
        assert_eq!(delay(6, 0.9), Duration::from_secs(232));
        assert_eq!(delay(7, 0.9), MAX, "jitter never goes past the cap");
        assert_eq!(delay(u32::MAX, 0.5), MAX);
    }

    #[test]
    fn failures_count_per_object_until_reset() {
        let obj = |uid: &str| {
            let mut cm = k8s_openapi::api::core::v1::ConfigMap::default();
            cm.metadata.uid = Some(uid.into());
            cm
        };
        let backoff = Backoff::default();
        let (a, b) = (obj("a"), obj("b"));
        let first = backoff.next(&a);
        assert!(first >= MIN && first < MIN * 2, "{first:?}");
        assert!(backoff.next(&a) >= MIN * 2);
        assert!(backoff.next(&b) < MIN * 2, "another object starts afresh");
        backoff.reset(&a);
        assert!(backoff.next(&a) < MIN * 2, "a success starts the count again");
    }
}
