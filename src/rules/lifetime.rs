//! Lifetime (SPEC §4): min(rule ttl or default, max ttl, subject exp − now, actor exp − now).

use std::time::Duration;

use crate::error::OAuthError;

pub struct Limits {
    pub rule_ttl: Option<Duration>,
    pub default_ttl: Duration,
    pub max_ttl: Duration,
}

/// The expiry of the minted token, never later than any token it came from.
pub fn expires_at(
    limits: &Limits,
    now: i64,
    subject_exp: i64,
    actor_exp: Option<i64>,
) -> Result<i64, OAuthError> {
    let configured = limits
        .rule_ttl
        .unwrap_or(limits.default_ttl)
        .min(limits.max_ttl)
        .as_secs() as i64;
    let mut ttl = configured.min(subject_exp.saturating_sub(now));
    if let Some(actor_exp) = actor_exp {
        ttl = ttl.min(actor_exp.saturating_sub(now));
    }
    if ttl <= 0 {
        return Err(OAuthError::invalid_request(
            "the token to exchange expires too soon to be exchanged",
        ));
    }
    Ok(now + ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000;

    fn limits(rule_ttl: Option<u64>) -> Limits {
        Limits {
            rule_ttl: rule_ttl.map(Duration::from_secs),
            default_ttl: Duration::from_secs(300),
            max_ttl: Duration::from_secs(3600),
        }
    }

    #[test]
    fn the_shortest_bound_wins() {
        assert_eq!(
            expires_at(&limits(None), NOW, NOW + 10_000, None).ok(),
            Some(NOW + 300)
        );
        assert_eq!(
            expires_at(&limits(Some(60)), NOW, NOW + 10_000, None).ok(),
            Some(NOW + 60)
        );
        assert_eq!(
            expires_at(&limits(Some(7200)), NOW, NOW + 10_000, None).ok(),
            Some(NOW + 3600)
        );
        assert_eq!(
            expires_at(&limits(None), NOW, NOW + 100, None).ok(),
            Some(NOW + 100)
        );
        assert_eq!(
            expires_at(&limits(None), NOW, NOW + 100, Some(NOW + 40)).ok(),
            Some(NOW + 40)
        );
    }

    #[test]
    fn a_token_expiring_now_is_not_exchanged() {
        assert!(expires_at(&limits(None), NOW, NOW, None).is_err());
        assert!(
            expires_at(&limits(None), NOW, NOW - 5, None).is_err(),
            "expired within leeway"
        );
    }
}
