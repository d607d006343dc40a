//! Per-client token buckets (SPEC §3): `burst` requests at once, refilled at `per_second`.
//! Limits are per instance.

use std::sync::Mutex;
use std::time::Instant;

use crate::config::RateLimit;

#[derive(Debug)]
pub struct Bucket {
    limit: RateLimit,
    /// Tokens left, and when they were counted.
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            state: Mutex::new((f64::from(limit.burst), Instant::now())),
        }
    }

    /// Takes one token, or says how many whole seconds until one is back.
    pub fn take(&self) -> Result<(), u64> {
        self.take_at(Instant::now())
    }

    fn take_at(&self, now: Instant) -> Result<(), u64> {
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        let (tokens, since) = *state;
        let (left, taken) = refill(tokens, since, now, self.limit);
        *state = (left, now);
        taken
    }
}

/// A bucket that held `tokens` at `since`, refilled until `now`, then asked for one token: the
/// tokens left, and whether one was taken or how many whole seconds until one is back.
pub fn refill(
    tokens: f64,
    since: Instant,
    now: Instant,
    limit: RateLimit,
) -> (f64, Result<(), u64>) {
    let rate = f64::from(limit.per_second);
    let refilled = (tokens + now.saturating_duration_since(since).as_secs_f64() * rate)
        .min(f64::from(limit.burst));
    if refilled >= 1.0 {
        (refilled - 1.0, Ok(()))
    } else {
        (
            refilled,
            Err((((1.0 - refilled) / rate).ceil() as u64).max(1)),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_refills() {
        let bucket = Bucket::new(RateLimit {
            per_second: 2,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(bucket.take_at(t0), Ok(()));
        }
        assert_eq!(bucket.take_at(t0), Err(1));
        assert_eq!(
            bucket.take_at(t0 + Duration::from_millis(500)),
            Ok(()),
            "one token back after 0.5 s at 2/s"
        );
        assert!(bucket.take_at(t0 + Duration::from_millis(500)).is_err());
        for _ in 0..3 {
            assert_eq!(
                bucket.take_at(t0 + Duration::from_secs(60)),
                Ok(()),
                "refilled up to the burst"
            );
        }
        assert!(
            bucket.take_at(t0 + Duration::from_secs(60)).is_err(),
            "never beyond the burst"
        );
    }

    #[test]
    fn slow_rates_ask_for_longer_waits() {
        let bucket = Bucket::new(RateLimit {
            per_second: 1,
            burst: 1,
        });
        let t0 = Instant::now();
        assert_eq!(bucket.take_at(t0), Ok(()));
        assert_eq!(bucket.take_at(t0), Err(1));
    }
}
