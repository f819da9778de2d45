//! A client-side request-rate limiter. Lambda's control plane gives an account one small,
//! non-increasable request budget (about 15 requests per second shared by the write and
//! most read APIs); converging hundreds of functions at once would otherwise surface
//! throttling as failures. Calls wait for their slot instead.
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter as Gcra};
use tokio::sync::Mutex;

/// Time as tokio sees it (so paused-time tests drive the limiter), measured from the
/// limiter's creation; governor uses a `Duration` as an instant on such a clock.
#[derive(Clone, Debug)]
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Spaces requests evenly at `rate` per second after an initial burst (GCRA). Cheap to
/// share behind an `Arc`; every caller of one limiter draws from the same budget.
#[derive(Debug)]
pub struct RateLimiter {
    gcra: Gcra<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>,
    clock: TokioClock,
    /// One waiter at a time, in arrival order (tokio's mutex is fair): none starves.
    queue: Mutex<()>,
}

impl RateLimiter {
    /// `per_second` requests a second (at least 1), allowing `burst` at once (at least 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        let quota = Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        let clock = TokioClock(tokio::time::Instant::now());
        Self { gcra: Gcra::direct_with_clock(quota, clock.clone()), clock, queue: Mutex::new(()) }
    }

    /// Waits until this request may be sent.
    pub async fn acquire(&self) {
        let _turn = self.queue.lock().await;
        while let Err(not_until) = self.gcra.check() {
            tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::time::Instant;

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
