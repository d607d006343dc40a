//! Requests refused before their client is authenticated (SPEC §6): anyone can send them, so
//! they are limited per remote address. Within the limit each leaves its own record; past it the
//! request gets 429 and is only counted, and each address's count for each minute becomes one
//! summary record (and one log line) once the minute is over. An IPv6 address counts as its /64,
//! which one holder usually has whole. The memory this takes is bounded: past `MAX_ADDRESSES`
//! tracked at once, new addresses share one bucket and one summary.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

use crate::audit::ExchangeRecord;
use crate::clients::rate::refill;
use crate::clock::UnixTime;
use crate::config::RateLimit;
use crate::ids::record_id;

/// Addresses tracked at once.
const MAX_ADDRESSES: usize = 65_536;
const MINUTE_US: i64 = 60_000_000;

/// Where the overflow is counted when too many addresses are tracked.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

pub struct PreAuthLimiter {
    limit: Option<RateLimit>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Tokens left per address, and when they were counted.
    buckets: HashMap<IpAddr, (f64, Instant)>,
    /// Requests past the limit, per address and minute (its start, microseconds).
    windows: HashMap<(IpAddr, i64), Window>,
}

#[derive(Default)]
struct Window {
    count: i64,
    errors: BTreeMap<&'static str, i64>,
}

/// How a request refused before authentication is to be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: answered and recorded as usual.
    Record,
    /// Past it: 429 with `Retry-After` (seconds), counted in a summary instead of recorded.
    Summarise { retry_after: u64 },
}

impl PreAuthLimiter {
    /// `None`: no limit (every refusal recorded one by one).
    pub fn new(limit: Option<RateLimit>) -> Self {
        Self {
            limit,
            state: Mutex::new(State::default()),
        }
    }

    /// One request from `addr` refused before authentication with `error`, at `now_us`.
    pub fn refused(&self, addr: Option<IpAddr>, error: &'static str, now_us: i64) -> Verdict {
        self.refused_at(addr, error, now_us, Instant::now())
    }

    fn refused_at(
        &self,
        addr: Option<IpAddr>,
        error: &'static str,
        now_us: i64,
        now: Instant,
    ) -> Verdict {
        let Some(limit) = self.limit else {
            return Verdict::Record;
        };
        let Ok(mut state) = self.state.lock() else {
            return Verdict::Record;
        };
        let mut key = addr.map_or(OVERFLOW, counted_as);
        if !state.buckets.contains_key(&key) && state.buckets.len() >= MAX_ADDRESSES {
            // Full buckets have nothing left to say: forget them before giving up on a key.
            state.buckets.retain(|_, (tokens, at)| {
                refill(*tokens, *at, now, limit).0 < f64::from(limit.burst)
            });
            if state.buckets.len() >= MAX_ADDRESSES {
                key = OVERFLOW;
            }
        }
        let (tokens, at) = state
            .buckets
            .get(&key)
            .copied()
            .unwrap_or((f64::from(limit.burst), now));
        let (left, taken) = refill(tokens, at, now, limit);
        state.buckets.insert(key, (left, now));
        match taken {
            Ok(()) => Verdict::Record,
            Err(retry_after) => {
                let window = state
                    .windows
                    .entry((key, now_us - now_us.rem_euclid(MINUTE_US)))
                    .or_default();
                window.count += 1;
                *window.errors.entry(error).or_default() += 1;
                Verdict::Summarise { retry_after }
            }
        }
    }

    /// The summary records of the minutes that ended before `now_us` (all of them, with
    /// `everything`, as the process stops), taken out of memory.
    pub fn summaries(&self, now_us: i64, everything: bool) -> Vec<ExchangeRecord> {
        let Ok(mut state) = self.state.lock() else {
            return Vec::new();
        };
        let due: Vec<(IpAddr, i64)> = state
            .windows
            .keys()
            .filter(|(_, start)| everything || start + MINUTE_US <= now_us)
            .copied()
            .collect();
        due.into_iter()
            .filter_map(|key| state.windows.remove(&key).map(|w| summary(key, w)))
            .collect()
    }
}

/// The address a request is counted under: an IPv6 address as its /64.
fn counted_as(addr: IpAddr) -> IpAddr {
    match crate::net::canonical(addr) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

fn summary((addr, start_us): (IpAddr, i64), window: Window) -> ExchangeRecord {
    let shown = if addr == OVERFLOW {
        "many addresses".to_string()
    } else if addr.is_ipv6() {
        format!("{addr}/64")
    } else {
        addr.to_string()
    };
    let errors: Vec<String> = window
        .errors
        .iter()
        .map(|(error, n)| format!("{error} ×{n}"))
        .collect();
    let mut record = ExchangeRecord::begin(
        start_us,
        format!("summary-{}", record_id(UnixTime::from_micros(start_us))),
        Some(shown),
        None,
    );
    record.count = window.count;
    record.reason = format!(
        "{} requests refused before client authentication past this address's limit in this \
         minute, answered 429: {}",
        window.count,
        errors.join(", ")
    );
    record
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limiter() -> PreAuthLimiter {
        PreAuthLimiter::new(Some(RateLimit {
            per_second: 1,
            burst: 3,
        }))
    }

    #[test]
    fn past_the_limit_requests_are_counted_in_one_summary_per_minute() {
        let l = limiter();
        let addr: IpAddr = "203.0.113.7".parse().expect("an address");
        let t0 = Instant::now();
        let minute = 1_700_000_040_000_000;
        for _ in 0..3 {
            assert_eq!(
                l.refused_at(Some(addr), "invalid_client", minute, t0),
                Verdict::Record
            );
        }
        for i in 0..10 {
            let error = if i % 2 == 0 {
                "invalid_client"
            } else {
                "invalid_request"
            };
            assert!(matches!(
                l.refused_at(Some(addr), error, minute + 1_000, t0),
                Verdict::Summarise { .. }
            ));
        }
        assert!(
            l.summaries(minute + 59_000_000, false).is_empty(),
            "the minute is not over"
        );
        let records = l.summaries(minute + MINUTE_US, false);
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!((r.count, r.client_id.as_deref()), (10, None));
        assert_eq!(r.remote_addr.as_deref(), Some("203.0.113.7"));
        assert_eq!(r.time_us, minute);
        assert!(r.reason.contains("invalid_client ×5") && r.reason.contains("invalid_request ×5"));
        assert!(
            l.summaries(minute + 2 * MINUTE_US, false).is_empty(),
            "taken out once"
        );
        // The rate refills.
        assert_eq!(
            l.refused_at(
                Some(addr),
                "invalid_client",
                minute,
                t0 + Duration::from_secs(2)
            ),
            Verdict::Record
        );
    }

    #[test]
    fn an_ipv6_address_counts_as_its_64_and_addresses_are_counted_apart() {
        let l = limiter();
        let t0 = Instant::now();
        for host in ["2001:db8::1", "2001:db8::2", "2001:db8::3"] {
            let addr: IpAddr = host.parse().expect("an address");
            assert_eq!(
                l.refused_at(Some(addr), "invalid_client", 0, t0),
                Verdict::Record
            );
        }
        let same_64: IpAddr = "2001:db8::ffff".parse().expect("an address");
        assert!(matches!(
            l.refused_at(Some(same_64), "invalid_client", 0, t0),
            Verdict::Summarise { .. }
        ));
        let other: IpAddr = "2001:db8:0:1::1".parse().expect("an address");
        assert_eq!(
            l.refused_at(Some(other), "invalid_client", 0, t0),
            Verdict::Record
        );
        let records = l.summaries(0, true);
        assert_eq!(records[0].remote_addr.as_deref(), Some("2001:db8::/64"));
    }

    #[test]
    fn without_a_limit_everything_is_recorded() {
        let l = PreAuthLimiter::new(None);
        for _ in 0..1000 {
            assert_eq!(l.refused(None, "invalid_client", 0), Verdict::Record);
        }
    }
}
