//! A token bucket over an API's requests, as the generic cell rate algorithm (GCRA):
//! `per_second` requests a second on average, up to `burst` at once after a quiet spell.
//!
//! One bucket per API (per service process), not per client: it bounds the work the
//! process takes on, whoever sends it. Sharing fairly between clients is the job of a
//! proxy in front, which sees them; behind one, every client has the proxy's address.
//!
//! The state is one instant — when the bucket will next be full — so a check is a few
//! additions under a mutex that is never held across an `await`. The clock is an
//! argument, so the arithmetic is tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bucket.
#[derive(Debug)]
pub struct RateLimiter {
    /// Time one request "costs": a second divided by the rate.
    interval: Duration,
    /// How far ahead of now the debt may run: `interval × (burst − 1)`.
    tolerance: Duration,
    /// The theoretical arrival time of the next request: `None` until the first one.
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `per_second` and `burst` below one are taken as one.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        let interval = Duration::from_secs(1) / per_second.max(1);
        RateLimiter {
            interval,
            tolerance: interval * (burst.max(1) - 1),
            next: Mutex::new(None),
        }
    }

    /// Takes one request at `now`, or says how long to wait before one would be taken.
    pub fn check(&self, now: Instant) -> Result<(), Duration> {
        // A panic elsewhere while holding this lock leaves a valid instant behind.
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let arrival = next.map_or(now, |next| next.max(now));
        let allowed_from = arrival.checked_sub(self.tolerance).unwrap_or(now);
        if allowed_from > now {
            return Err(allowed_from - now);
        }
        *next = Some(arrival + self.interval);
        Ok(())
    }
}

/// A wait as whole seconds for `Retry-After`, rounded up, at least one.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = RateLimiter::new(10, 3);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.check(start).expect("within the burst");
        }
        assert_eq!(limiter.check(start), Err(ms(100)), "one interval to wait");
        assert_eq!(limiter.check(start + ms(60)), Err(ms(40)));
        limiter.check(start + ms(100)).expect("one refilled");
        assert!(limiter.check(start + ms(100)).is_err());
        // Refused requests cost nothing: the next one is still due at 200 ms.
        limiter.check(start + ms(200)).expect("the next one");
        // A quiet spell refills the burst, and no more than the burst.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            limiter.check(later).expect("a full burst again");
        }
        assert!(limiter.check(later).is_err());
    }

    #[test]
    fn a_steady_rate_at_the_limit_is_never_refused() {
        let limiter = RateLimiter::new(4, 1);
        let start = Instant::now();
        for n in 0..100 {
            limiter.check(start + ms(250) * n).expect("on time");
        }
        assert_eq!(limiter.check(start + ms(250) * 99 + ms(1)), Err(ms(249)));
    }

    #[test]
    fn zero_is_taken_as_one_and_retry_after_rounds_up() {
        let limiter = RateLimiter::new(0, 0);
        let start = Instant::now();
        limiter.check(start).expect("first");
        assert_eq!(limiter.check(start), Err(Duration::from_secs(1)));
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(ms(1)), 1);
        assert_eq!(retry_after_secs(ms(1_000)), 1);
        assert_eq!(retry_after_secs(ms(1_001)), 2);
    }
}
