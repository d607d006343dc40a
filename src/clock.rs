//! The one clock. An instant knows its unit: `secs()` for token claims and lifetimes,
//! `micros()` for records, so the two are never mixed up by a stray `/ 1_000_000`. The server's
//! clock sits in its state and can be fixed, so a test can judge lifetimes at a time it chooses.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A moment as a Unix time, kept in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(i64);

impl UnixTime {
    pub fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// Whole seconds, rounded down (the unit of JWT `iat`, `exp` and `nbf`).
    pub fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    pub fn millis(self) -> i64 {
        self.0.div_euclid(1_000)
    }

    /// This instant less `duration` (saturating).
    pub fn before(self, duration: std::time::Duration) -> Self {
        Self(
            self.0
                .saturating_sub(duration.as_micros().min(i64::MAX as u128) as i64),
        )
    }
}

/// Where "now" comes from: the system, or a time a test set.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    fixed: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stays at `at` until `set` moves it.
    pub fn fixed(at: UnixTime) -> Self {
        Self {
            fixed: Some(Arc::new(AtomicI64::new(at.micros()))),
        }
    }

    /// Moves a fixed clock (and every copy of it); a system clock ignores this.
    pub fn set(&self, at: UnixTime) {
        if let Some(fixed) = &self.fixed {
            fixed.store(at.micros(), Ordering::Relaxed);
        }
    }

    pub fn now(&self) -> UnixTime {
        match &self.fixed {
            Some(fixed) => UnixTime(fixed.load(Ordering::Relaxed)),
            None => now(),
        }
    }
}

/// The system's time now, for work that no request's clock governs (the CLI, the audit
/// writer's own bookkeeping, retention).
pub fn now() -> UnixTime {
    UnixTime((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64)
}

/// RFC 3339 UTC with exactly six fractional digits, so times also sort as text.
pub fn format_micros(us: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

/// RFC 3339 UTC to the second (token lifetimes are whole seconds).
pub fn format_secs(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_gives_each_unit_and_rounds_seconds_down() {
        let t = UnixTime::from_micros(1_700_000_000_999_999);
        assert_eq!(t.secs(), 1_700_000_000);
        assert_eq!(t.millis(), 1_700_000_000_999);
        assert_eq!(UnixTime::from_secs(5).micros(), 5_000_000);
        assert_eq!(UnixTime::from_micros(-1).secs(), -1);
        assert_eq!(
            UnixTime::from_secs(10).before(std::time::Duration::from_secs(3)),
            UnixTime::from_secs(7)
        );
    }

    #[test]
    fn a_fixed_clock_moves_only_when_set_and_its_copies_follow() {
        let clock = Clock::fixed(UnixTime::from_secs(1_000));
        let copy = clock.clone();
        assert_eq!(clock.now().secs(), 1_000);
        copy.set(UnixTime::from_secs(2_000));
        assert_eq!(clock.now().secs(), 2_000);
        let system = Clock::system();
        system.set(UnixTime::from_secs(0));
        assert!(system.now().secs() > 1_700_000_000);
    }

    #[test]
    fn times_format_as_rfc3339() {
        assert_eq!(format_micros(1_500_000), "1970-01-01T00:00:01.500000Z");
        assert_eq!(format_secs(86_400), "1970-01-02T00:00:00Z");
    }
}
