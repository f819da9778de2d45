//! A client-side request-rate limiter. Lambda's control plane gives an account one small,
//! non-increasable request budget (about 15 requests per second shared by the write and
//! most read APIs); converging hundreds of functions at once would otherwise surface
//! throttling as failures. Calls wait for their slot instead.
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces requests evenly at `rate` per second after an initial burst. Cheap to share
/// behind an `Arc`; every caller of one limiter draws from the same budget.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    /// How far ahead of now slots may already be handed out: the burst.
    burst: Duration,
    /// The earliest time the next request may be sent.
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `per_second` requests a second (at least 1), allowing `burst` at once (at least 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / per_second.max(1);
        Self { interval, burst: interval * burst.max(1).saturating_sub(1), next: Mutex::new(None) }
    }

    /// Waits until this request may be sent. The slot is reserved before waiting, so
    /// callers are served in arrival order and none starves.
    pub async fn acquire(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            // Unused time does not accumulate beyond the burst.
            let earliest = now.checked_sub(self.burst).unwrap_or(now);
            let slot = next.map_or(earliest, |n| n.max(earliest));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn five_hundred_requests_at_ten_a_second_take_about_fifty_seconds_and_all_complete() {
        let limiter = Arc::new(RateLimiter::new(10, 5));
        let start = Instant::now();

        let tasks: Vec<_> = (0..500)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    l.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.expect("task"));
        }

        let elapsed = times.iter().max().copied().unwrap_or(start) - start;
        // A burst of 5 first, then 495 spaced 100 ms apart.
        assert!(elapsed >= Duration::from_millis(49_000) && elapsed <= Duration::from_millis(50_000), "{elapsed:?}");
        // No one-second window holds more than rate + burst requests.
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u - *t < Duration::from_secs(1)).count();
            assert!(in_window <= 15, "{in_window} requests within one second from {:?}", *t - start);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_limiter_lets_a_burst_through_at_once() {
        let limiter = RateLimiter::new(10, 3);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        for _ in 0..3 {
            limiter.acquire().await;
        }
        assert_eq!(Instant::now() - start, Duration::ZERO);
        limiter.acquire().await;
        assert!(Instant::now() - start > Duration::ZERO, "the fourth request waits");
    }
}
