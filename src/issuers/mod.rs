//! Trusted issuers and their keys (SPEC §2, §5): fetched at start, refreshed every
//! `jwks_refresh`, refetched on an unknown `kid` no more often than `jwks_min_refetch`, the last
//! good keys kept when a fetch fails, and a key that a successful fetch drops no longer accepted.

pub mod fetch;
pub mod jwks;
pub mod outbound;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwapOption;
use jsonwebtoken::Algorithm;
use tokio::runtime::Handle;
use tracing::Instrument;

use crate::config::{IssuerConfig, KeySource};
use crate::keys::SigningKeys;
pub use fetch::Fetcher;
use jwks::{KeyType, VerifyKey};

pub struct KeySet {
    pub keys: Vec<VerifyKey>,
    pub fetched_at: SystemTime,
    /// A SPIFFE bundle's `spiffe_refresh_hint`.
    pub refresh_hint: Option<Duration>,
    /// A SPIFFE bundle's `spiffe_sequence`: a bundle with a lower one is refused.
    pub sequence: Option<u64>,
}

impl KeySet {
    /// The keys that may verify a token with this header: the one its `kid` names, or, when
    /// it names none, every key of the right type.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a VerifyKey> {
        self.keys
            .iter()
            .filter(move |k| k.fits(alg) && (kid.is_none() || k.kid.as_deref() == kid))
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

pub struct Issuer {
    pub config: IssuerConfig,
    keys: ArcSwapOption<KeySet>,
    /// Held while a fetched key set is compared with the one in use and stored, so two fetches
    /// that meet cannot leave the older bundle in use.
    installing: Mutex<()>,
    last_attempt: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    refetch: tokio::sync::Mutex<()>,
    /// Set once its background refresh runs, so a reload never starts a second one.
    refreshing: std::sync::atomic::AtomicBool,
    /// Active introspection answers by SHA-256 of the token (never the token), with the time
    /// (seconds) until which each may be reused.
    introspected: Mutex<HashMap<[u8; 32], (Answer, i64)>>,
}

/// An RFC 7662 introspection answer.
pub type Answer = serde_json::Map<String, serde_json::Value>;

/// Introspection answers kept per issuer at most.
const MAX_CACHED: usize = 10_000;

impl Issuer {
    fn new(config: IssuerConfig) -> Self {
        Self {
            config,
            keys: ArcSwapOption::empty(),
            installing: Mutex::new(()),
            last_attempt: Mutex::new(None),
            last_error: Mutex::new(None),
            refetch: tokio::sync::Mutex::new(()),
            refreshing: std::sync::atomic::AtomicBool::new(false),
            introspected: Mutex::new(HashMap::new()),
        }
    }

    /// A cached active answer for this token hash, while it may still be used.
    pub fn cached_introspection(
        &self,
        hash: &[u8; 32],
        now: i64,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let cache = self.introspected.lock().ok()?;
        cache
            .get(hash)
            .filter(|(_, until)| *until > now)
            .map(|(answer, _)| answer.clone())
    }

    pub fn remember_introspection(
        &self,
        hash: [u8; 32],
        answer: serde_json::Map<String, serde_json::Value>,
        until: i64,
        now: i64,
    ) {
        if let Ok(mut cache) = self.introspected.lock() {
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, (_, u)| *u > now);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(hash, (answer, until));
        }
    }

    pub fn keys(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    pub fn is_ready(&self) -> bool {
        self.keys
            .load()
            .as_ref()
            .is_some_and(|k| !k.keys.is_empty())
    }

    pub fn is_trust_domain(&self) -> bool {
        crate::spiffe::is_trust_domain(&self.config.issuer)
    }

    /// How long until the next scheduled fetch: `jwks_refresh`, or sooner when a SPIFFE bundle
    /// hints so, though never sooner than `jwks_min_refetch` (nor 1 s).
    pub fn refresh_interval(&self) -> Duration {
        let configured = self.config.jwks_refresh;
        let floor = self.config.jwks_min_refetch.max(Duration::from_secs(1));
        match self.keys().and_then(|k| k.refresh_hint) {
            Some(hint) => hint.max(floor).min(configured),
            None => configured,
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Fetches the keys now. A failure keeps the last good keys.
    pub async fn refresh(&self, fetcher: &Fetcher) -> Result<(), RefreshError> {
        let span = tracing::info_span!("key_fetch", issuer = %self.config.id);
        self.fetch_keys(fetcher).instrument(span).await
    }

    async fn fetch_keys(&self, fetcher: &Fetcher) -> Result<(), RefreshError> {
        if let Ok(mut at) = self.last_attempt.lock() {
            *at = Some(Instant::now());
        }
        let outcome = fetcher.keys(&self.config.keys, &self.config.issuer).await;
        let result = match outcome {
            Ok(jwks::KeyDocument {
                keys,
                skipped,
                refresh_hint,
                sequence,
            }) => {
                for note in &skipped {
                    tracing::warn!(issuer = %self.config.id, "{note}");
                }
                let _installing = self.installing.lock();
                let held = self.keys().and_then(|k| k.sequence);
                if keys.is_empty() {
                    Err(RefreshError::NoUsableKey)
                } else if let (Some(held), Some(got)) = (held, sequence)
                    && got < held
                {
                    // An older bundle replayed could bring back a key rotated out since.
                    Err(RefreshError::OlderBundle { held, got })
                } else {
                    tracing::info!(issuer = %self.config.id, keys = keys.len(), "issuer keys loaded");
                    self.keys.store(Some(Arc::new(KeySet {
                        keys,
                        fetched_at: SystemTime::now(),
                        refresh_hint,
                        sequence,
                    })));
                    Ok(())
                }
            }
            Err(e) => Err(RefreshError::Fetch(e)),
        };
        fetcher.record(&self.config.id, result.is_ok());
        let error = result.as_ref().err().map(|e| crate::error::chain(e));
        if let Some(e) = &error {
            tracing::warn!(issuer = %self.config.id, error = %crate::telemetry::repeated::one_line(e), kept_last_good_keys = self.is_ready(), "issuer key fetch failed");
        }
        if let Ok(mut last) = self.last_error.lock() {
            *last = error;
        }
        result
    }

    /// For a `kid` we do not know: fetch again unless the last attempt, failed or not, is more
    /// recent than `jwks_min_refetch`. Concurrent callers share one fetch.
    async fn refetch_for_unknown_kid(self: &Arc<Self>, fetcher: &Fetcher, runtime: &Handle) {
        let _one_at_a_time = self.refetch.lock().await;
        let recent = self
            .last_attempt
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_some_and(|at| at.elapsed() < self.config.jwks_min_refetch);
        if recent || !self.config.keys.is_fetched() {
            return;
        }
        // On the background runtime, so a client that hangs up cannot cancel the fetch halfway;
        // in the request's span, whose fetch it is.
        let (issuer, fetcher) = (Arc::clone(self), fetcher.clone());
        let _ = runtime
            .spawn(async move { issuer.refresh(&fetcher).await }.in_current_span())
            .await;
    }
}

/// Why a key fetch left an issuer's keys as they were.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Fetch(fetch::Error),
    #[error("the issuer publishes no usable key")]
    NoUsableKey,
    #[error("the bundle's spiffe_sequence {got} is lower than the {held} of the bundle in use")]
    OlderBundle { held: u64, got: u64 },
}

/// Every configured issuer, found by its `iss` value.
pub struct Issuers {
    by_iss: HashMap<String, Arc<Issuer>>,
    fetcher: Fetcher,
    runtime: Handle,
}

impl Issuers {
    /// Builds the registry; the local issuer (this server) gets the signing keys at once, and
    /// file-based JWKS are read now so they are usable from the first request.
    pub async fn new(
        configs: &[IssuerConfig],
        signing: &SigningKeys,
        fetcher: Fetcher,
        runtime: Handle,
    ) -> Self {
        Self::rebuild(configs, signing, fetcher, runtime, None).await
    }

    /// Like `new`, keeping the issuers of `previous` whose configuration did not change, with
    /// their cached keys and their running refresh.
    pub async fn rebuild(
        configs: &[IssuerConfig],
        signing: &SigningKeys,
        fetcher: Fetcher,
        runtime: Handle,
        previous: Option<&Issuers>,
    ) -> Self {
        let mut by_iss = HashMap::new();
        for config in configs {
            let kept = previous
                .and_then(|p| p.get(&config.issuer))
                .filter(|old| old.config == *config);
            if let Some(old) = kept {
                by_iss.insert(config.issuer.clone(), Arc::clone(old));
                continue;
            }
            let issuer = Arc::new(Issuer::new(config.clone()));
            match &config.keys {
                KeySource::Local => issuer.keys.store(Some(Arc::new(local_keys(signing)))),
                KeySource::File(_) => {
                    let _ = issuer.refresh(&fetcher).await;
                }
                KeySource::Uri(_) | KeySource::Discovery(_) | KeySource::None => {}
            }
            by_iss.insert(config.issuer.clone(), issuer);
        }
        Self {
            by_iss,
            fetcher,
            runtime,
        }
    }

    pub fn get(&self, iss: &str) -> Option<&Arc<Issuer>> {
        self.by_iss.get(iss)
    }

    /// The issuer a token comes from: the one its `iss` names; else, for a JWT-SVID (which
    /// need not carry `iss`, and whose `iss` is no trust domain), the trust domain of the SPIFFE
    /// ID in its `sub`. A trust domain is never reached through `iss`: its keys vouch for its
    /// own SPIFFE IDs only. Either way the signature must then verify with that issuer's keys.
    pub fn attributed(&self, iss: Option<&str>, sub: Option<&str>) -> Option<&Arc<Issuer>> {
        iss.and_then(|iss| self.get(iss))
            .filter(|issuer| !issuer.is_trust_domain())
            .or_else(|| {
                sub.and_then(crate::spiffe::trust_domain_id)
                    .and_then(|domain| self.get(domain))
            })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Issuer>> {
        self.by_iss.values()
    }

    /// Ids of issuers that have no usable keys yet, sorted.
    pub fn not_ready(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .iter()
            .filter(|i| i.config.keys != KeySource::None && !i.is_ready())
            .map(|i| i.config.id.clone())
            .collect();
        ids.sort();
        ids
    }

    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    pub async fn refetch_for_unknown_kid(&self, issuer: &Arc<Issuer>) {
        issuer
            .refetch_for_unknown_kid(&self.fetcher, &self.runtime)
            .await;
    }

    /// One background task per remote issuer; each ends when its issuer is dropped.
    pub fn spawn_refreshers(&self) {
        let starting = self.iter().filter(|i| {
            i.config.keys.is_fetched()
                && !i.refreshing.swap(true, std::sync::atomic::Ordering::SeqCst)
        });
        for issuer in starting {
            let weak = Arc::downgrade(issuer);
            let fetcher = self.fetcher.clone();
            let first_wait = if issuer.is_ready() {
                issuer.config.jwks_refresh
            } else {
                Duration::ZERO
            };
            self.runtime.spawn(refresh_loop(weak, fetcher, first_wait));
        }
    }
}

async fn refresh_loop(issuer: Weak<Issuer>, fetcher: Fetcher, first_wait: Duration) {
    const MAX_BACKOFF: Duration = Duration::from_secs(60);
    tokio::time::sleep(first_wait).await;
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some(strong) = issuer.upgrade() else {
            return;
        };
        let wait = match strong.refresh(&fetcher).await {
            Ok(()) => {
                backoff = Duration::from_secs(1);
                strong.refresh_interval()
            }
            Err(_) => {
                let wait = backoff.min(strong.config.jwks_refresh);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        drop(strong);
        tokio::time::sleep(wait).await;
    }
}

fn local_keys(signing: &SigningKeys) -> KeySet {
    let keys = signing
        .iter()
        .map(|k| VerifyKey {
            kid: Some(k.kid.clone()),
            alg: Some(k.alg),
            key_type: match k.alg {
                Algorithm::ES256 => KeyType::P256,
                Algorithm::EdDSA => KeyType::Ed25519,
                _ => KeyType::Rsa,
            },
            key: k.decoding.clone(),
            // Tokens of this server's own are rarer: they verify through jsonwebtoken.
            rsa: None,
        })
        .collect();
    KeySet {
        keys,
        fetched_at: SystemTime::now(),
        refresh_hint: None,
        sequence: None,
    }
}
