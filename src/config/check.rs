//! Raw settings checked into typed ones: the whole file (`build`) and the sections every
//! deployment has (`[server]`, `[admin]`, `[storage]`, `[signing]`). Issuers, clients and rules
//! are checked in their own files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::Algorithm;
use reqwest::Url;

use super::raw::{self, RawConfig, RawServer, RawSigning, RawStorage};
use super::*;

/// Checks raw settings as a whole. `file` names the source in errors and anchors relative paths.
pub(super) fn build(file: &Path, raw: RawConfig) -> Result<Config, ConfigError> {
    let ctx = Ctx {
        file,
        base: file.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };
    let server = ctx.server(raw.server)?;
    let admin = raw.admin.map(|a| ctx.admin(a, &server)).transpose()?;
    let storage = ctx.storage(raw.storage)?;
    let signing = ctx.signing(raw.signing)?;
    let telemetry = ctx.telemetry(raw.telemetry)?;
    let mut issuers = Vec::with_capacity(raw.issuers.len());
    for (i, issuer) in raw.issuers.into_iter().enumerate() {
        let issuer = ctx.issuer(i, issuer, &server)?;
        if is_subject_source(&issuer.id) {
            return Err(ctx.err(
                format!("issuers[{i}].id"),
                format!(
                    "\"{}\" is reserved: Txn-Token rules name subjects of that token type by it",
                    issuer.id
                ),
            ));
        }
        if issuers.iter().any(|o: &IssuerConfig| o.id == issuer.id) {
            return Err(ctx.err(
                format!("issuers[{i}].id"),
                format!("\"{}\" is used by two issuers", issuer.id),
            ));
        }
        if issuers
            .iter()
            .any(|o: &IssuerConfig| o.issuer == issuer.issuer)
        {
            return Err(ctx.err(
                format!("issuers[{i}].issuer"),
                format!("\"{}\" is configured twice", issuer.issuer),
            ));
        }
        issuers.push(issuer);
    }
    let mut clients = Vec::with_capacity(raw.clients.len());
    for (i, client) in raw.clients.into_iter().enumerate() {
        let client = ctx.client(i, client, server.default_rate_limit)?;
        if clients.iter().any(|o: &ClientConfig| o.id == client.id) {
            return Err(ctx.err(
                format!("clients[{i}].id"),
                format!("\"{}\" is used by two clients", client.id),
            ));
        }
        clients.push(client);
    }
    let transaction_tokens = raw
        .transaction_tokens
        .map(|t| ctx.transaction_tokens(t))
        .transpose()?;
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, rule) in raw.rules.into_iter().enumerate() {
        let limits = Limits {
            signing: &signing,
            txn: transaction_tokens.as_ref(),
        };
        let rule = ctx.rule(i, rule, &issuers, &clients, limits)?;
        if rules.iter().any(|o: &RuleConfig| o.name == rule.name) {
            return Err(ctx.err(
                format!("rules[{i}].name"),
                format!("\"{}\" is used by two rules", rule.name),
            ));
        }
        rules.push(rule);
    }
    let console = match raw.console {
        Some(c) => ctx.console(c, admin.as_ref(), &issuers, &server)?,
        None => ConsoleConfig::default(),
    };
    Ok(Config {
        console,
        file: file.to_path_buf(),
        server,
        admin,
        storage,
        signing,
        issuers,
        clients,
        rules,
        telemetry,
        transaction_tokens,
    })
}

/// Where a setting comes from: the file named in errors, and the folder relative paths are
/// read from.
pub(super) struct Ctx<'a> {
    file: &'a Path,
    base: PathBuf,
}

impl Ctx<'_> {
    pub(super) fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }

    pub(super) fn duration(
        &self,
        key: &str,
        value: Option<&str>,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        parse_duration(value.unwrap_or(default)).map_err(|m| self.err(key, m))
    }

    pub(super) fn positive(
        &self,
        key: &str,
        value: Option<&str>,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        let d = self.duration(key, value, default)?;
        if d.is_zero() {
            return Err(self.err(key, "must be more than zero"));
        }
        Ok(d)
    }

    pub(super) fn path(&self, value: &str) -> PathBuf {
        self.base.join(value)
    }

    pub(super) fn server(&self, raw: RawServer) -> Result<ServerConfig, ConfigError> {
        let listen = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        if listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(self.err(
                "server.listen",
                format!("\"{listen}\" is not an address such as \"127.0.0.1:8080\""),
            ));
        }
        let issuer = raw.issuer.trim_end_matches('/').to_string();
        let url = self.web_url("server.issuer", &issuer)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(self.err("server.issuer", "must not have a query or fragment"));
        }
        let max_body_bytes = raw.max_body_bytes.unwrap_or(65_536);
        if !(1024..=16 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(self.err("server.max_body_bytes", "must be between 1024 and 16777216"));
        }
        Ok(ServerConfig {
            listen,
            token_endpoint: format!("{issuer}/token"),
            issuer,
            max_body_bytes: max_body_bytes as usize,
            default_rate_limit: raw
                .default_rate_limit
                .map(|l| self.rate_limit("server.default_rate_limit", l))
                .transpose()?,
            request_header_timeout: self.positive(
                "server.request_header_timeout",
                raw.request_header_timeout.as_deref(),
                "5s",
            )?,
            body_timeout: self.positive(
                "server.body_timeout",
                raw.body_timeout.as_deref(),
                "10s",
            )?,
            keep_alive: self.duration("server.keep_alive", raw.keep_alive.as_deref(), "5s")?,
            // About 150 KB each at most (a body of max_body_bytes in flight, with the HTTP
            // buffers): 1,024 per worker fits a few hundred MB on a small machine (README).
            max_connections: match raw.max_connections.unwrap_or(1024) {
                0 => return Err(self.err("server.max_connections", "must be at least 1")),
                n => n as usize,
            },
            max_assertion_lifetime: self.positive(
                "server.max_assertion_lifetime",
                raw.max_assertion_lifetime.as_deref(),
                "10m",
            )?,
            trusted_proxies: raw
                .trusted_proxies
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    crate::net::Cidr::parse(text)
                        .map_err(|e| self.err(format!("server.trusted_proxies[{i}]"), e))
                })
                .collect::<Result<_, _>>()?,
            pre_auth_limit: match raw.pre_auth_limit {
                None => Some(DEFAULT_PRE_AUTH_LIMIT),
                Some(raw::RawRateLimit { per_second: 0, .. }) => None,
                Some(l) => Some(self.rate_limit("server.pre_auth_limit", l)?),
            },
        })
    }

    pub(super) fn rate_limit(
        &self,
        key: &str,
        raw: raw::RawRateLimit,
    ) -> Result<RateLimit, ConfigError> {
        if raw.per_second == 0 || raw.burst == 0 {
            return Err(self.err(key, "per_second and burst must both be at least 1"));
        }
        Ok(RateLimit {
            per_second: raw.per_second,
            burst: raw.burst,
        })
    }

    pub(super) fn admin(
        &self,
        raw: raw::RawAdmin,
        server: &ServerConfig,
    ) -> Result<AdminConfig, ConfigError> {
        if raw.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(self.err(
                "admin.listen",
                format!(
                    "\"{}\" is not an address such as \"127.0.0.1:9090\"",
                    raw.listen
                ),
            ));
        }
        if raw.listen == server.listen && !raw.listen.ends_with(":0") {
            return Err(self.err(
                "admin.listen",
                "must differ from server.listen: the admin API is never on the public listener",
            ));
        }
        let token_sha256 = decode_sha256_hex(&raw.token_sha256).ok_or_else(|| {
            self.err("admin.token_sha256", "must be 64 hexadecimal characters (the SHA-256 of the admin token; see `tessera secret`)")
        })?;
        Ok(AdminConfig {
            listen: raw.listen,
            token_sha256,
        })
    }

    /// An https URL, or http on a loopback host (127.0.0.0/8, ::1, localhost).
    pub(super) fn web_url(&self, key: &str, value: &str) -> Result<Url, ConfigError> {
        let url = Url::parse(value)
            .map_err(|e| self.err(key, format!("\"{value}\" is not a URL: {e}")))?;
        match url.scheme() {
            "https" => Ok(url),
            "http" if is_loopback(&url) => Ok(url),
            "http" => Err(self.err(
                key,
                format!("\"{value}\" must use https (http is allowed on loopback hosts only)"),
            )),
            other => Err(self.err(
                key,
                format!("\"{value}\" has scheme \"{other}\"; use https"),
            )),
        }
    }

    /// The collector may be across a private network on plain http, like most sidecars: spans
    /// carry ids of requests, clients, rules and issuers, never a token or a secret.
    pub(super) fn telemetry(&self, raw: raw::RawTelemetry) -> Result<TelemetryConfig, ConfigError> {
        let otlp_endpoint = match raw.otlp_endpoint {
            None => None,
            Some(text) => {
                let url = Url::parse(&text).map_err(|e| {
                    self.err(
                        "telemetry.otlp_endpoint",
                        format!("\"{text}\" is not a URL: {e}"),
                    )
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
                    return Err(self.err(
                        "telemetry.otlp_endpoint",
                        format!(
                            "\"{text}\" must be an http or https URL without a query, such as \
                             http://otel-collector:4318"
                        ),
                    ));
                }
                Some(url)
            }
        };
        let service_name = raw.service_name.unwrap_or_else(|| "tessera".into());
        if service_name.trim().is_empty() {
            return Err(self.err("telemetry.service_name", "must not be empty"));
        }
        let sample_ratio = raw.sample_ratio.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&sample_ratio) {
            return Err(self.err(
                "telemetry.sample_ratio",
                "must be from 0 (no request) to 1 (every request)",
            ));
        }
        Ok(TelemetryConfig {
            otlp_endpoint,
            service_name,
            sample_ratio,
        })
    }

    pub(super) fn storage(&self, raw: RawStorage) -> Result<StorageConfig, ConfigError> {
        let url = raw.url.unwrap_or_else(|| "sqlite://tessera.db".into());
        let url = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(self.err(
                    "storage.url",
                    "names no database file, e.g. \"sqlite://tessera.db\"",
                ));
            }
            StorageUrl::Sqlite(self.path(path))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Url::parse(&url).map_err(|e| {
                self.err("storage.url", format!("is not a valid PostgreSQL URL: {e}"))
            })?;
            StorageUrl::Postgres(url)
        } else {
            return Err(self.err(
                "storage.url",
                format!("\"{url}\" is neither sqlite://PATH nor postgres://…"),
            ));
        };
        let retention = self.duration("storage.retention", raw.retention.as_deref(), "90d")?;
        let audit_query_budget = self.positive(
            "storage.audit_query_budget",
            raw.audit_query_budget.as_deref(),
            "5s",
        )?;
        Ok(StorageConfig {
            url,
            retention,
            audit_query_budget,
        })
    }

    pub(super) fn signing(&self, raw: RawSigning) -> Result<SigningConfig, ConfigError> {
        let default_ttl = self.duration("signing.default_ttl", raw.default_ttl.as_deref(), "5m")?;
        let max_ttl = self.duration("signing.max_ttl", raw.max_ttl.as_deref(), "1h")?;
        if default_ttl.is_zero() || default_ttl > max_ttl {
            return Err(self.err(
                "signing.default_ttl",
                "must be more than zero and at most signing.max_ttl",
            ));
        }
        if raw.keys.is_empty() {
            return Err(self.err(
                "signing.keys",
                "at least one [[signing.keys]] is required (see `tessera keys generate`)",
            ));
        }
        let mut keys: Vec<SigningKeyConfig> = Vec::with_capacity(raw.keys.len());
        for (i, key) in raw.keys.into_iter().enumerate() {
            let at = |k: &str| format!("signing.keys[{i}].{k}");
            if key.kid.trim().is_empty() {
                return Err(self.err(at("kid"), "must not be empty"));
            }
            if keys.iter().any(|k| k.kid == key.kid) {
                return Err(self.err(at("kid"), format!("\"{}\" is used by two keys", key.kid)));
            }
            let alg = key
                .alg
                .parse::<Algorithm>()
                .ok()
                .filter(|a| SIGNING_ALGORITHMS.contains(a))
                .ok_or_else(|| {
                    self.err(
                        at("alg"),
                        format!("\"{}\" is not one of ES256, EdDSA, RS256, PS256", key.alg),
                    )
                })?;
            keys.push(SigningKeyConfig {
                kid: key.kid,
                alg,
                private_key_file: self.path(&key.private_key_file),
            });
        }
        Ok(SigningConfig {
            default_ttl,
            max_ttl,
            keys,
        })
    }

    pub(super) fn verify_algorithm(&self, key: &str, name: &str) -> Result<Algorithm, ConfigError> {
        if name.eq_ignore_ascii_case("none") || name.to_ascii_uppercase().starts_with("HS") {
            return Err(self.err(
                key,
                format!(
                    "\"{name}\" is never accepted: only asymmetric algorithms verify subject tokens"
                ),
            ));
        }
        crate::oauth::algorithm::named(name)
            .ok_or_else(|| self.err(key, format!("\"{name}\" is not a supported algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA or Ed25519)")))
    }
}
