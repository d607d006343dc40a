//! Typed settings (SPEC §2): loaded from TOML with `TESSERA__SECTION__KEY` overrides, then
//! checked as a whole: every value parsed, every reference between sections resolved. Nothing
//! else in the service reads raw configuration.

pub mod duration;
mod raw;

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::Algorithm;

/// Requests refused before client authentication that one address may make: a burst of 100,
/// then 10 a second (a client misconfigured in earnest stays far below; a flood does not).
pub const DEFAULT_PRE_AUTH_LIMIT: RateLimit = RateLimit {
    per_second: 10,
    burst: 100,
};
use reqwest::Url;

use crate::oauth::{is_resource_indicator, is_scope_token};

pub use duration::parse as parse_duration;
use raw::{RawClient, RawConfig, RawIssuer, RawRule, RawServer, RawSigning, RawStorage};

/// A configuration error: the file, the key at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub server: ServerConfig,
    pub admin: Option<AdminConfig>,
    pub storage: StorageConfig,
    pub signing: SigningConfig,
    pub issuers: Vec<IssuerConfig>,
    pub clients: Vec<ClientConfig>,
    pub rules: Vec<RuleConfig>,
}

/// A rate: `burst` requests at once, refilled at `per_second` (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub listen: String,
    /// Without a trailing slash.
    pub issuer: String,
    pub token_endpoint: String,
    pub max_body_bytes: usize,
    pub default_rate_limit: Option<RateLimit>,
    /// A client must send its request head within this, or is disconnected (slow-loris).
    pub request_header_timeout: Duration,
    /// A request body must arrive whole within this after its head.
    pub body_timeout: Duration,
    /// Idle keep-alive connections are closed after this.
    pub keep_alive: Duration,
    /// Connections at once, per worker thread.
    pub max_connections: usize,
    /// A `private_key_jwt` assertion whose `exp` is further ahead than this is refused.
    pub max_assertion_lifetime: Duration,
    /// Peers whose `Forwarded` / `X-Forwarded-For` say who the client is.
    pub trusted_proxies: Vec<crate::net::Cidr>,
    /// Requests refused before client authentication, per remote address; `None`: unlimited.
    pub pre_auth_limit: Option<RateLimit>,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: String,
    pub token_sha256: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    Sqlite(PathBuf),
    /// A libpq connection URL, kept whole: it may carry a password and TLS settings.
    Postgres(String),
}

impl StorageUrl {
    /// For logs and `check`: the file, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite {}", path.display()),
            Self::Postgres(url) => match Url::parse(url) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("***"));
                    }
                    format!("postgres {u}")
                }
                Err(_) => "postgres (unparsable URL)".into(),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub url: StorageUrl,
    pub retention: Duration,
    /// How long one audit query (admin API, CLI page) may run.
    pub audit_query_budget: Duration,
}

#[derive(Debug, Clone)]
pub struct SigningConfig {
    pub default_ttl: Duration,
    pub max_ttl: Duration,
    pub keys: Vec<SigningKeyConfig>,
}

#[derive(Debug, Clone)]
pub struct SigningKeyConfig {
    pub kid: String,
    pub alg: Algorithm,
    pub private_key_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Uri(Url),
    File(PathBuf),
    /// OIDC discovery / RFC 8414 metadata under the issuer URL.
    Discovery(Url),
    /// The issuer is Tessera itself: its keys are the signing keys.
    Local,
    /// No keys: the issuer's tokens are opaque and introspected.
    None,
}

impl KeySource {
    /// Whether keys come from a file or the network, and so are fetched and refreshed.
    pub fn is_fetched(&self) -> bool {
        matches!(self, Self::Uri(_) | Self::File(_) | Self::Discovery(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    AccessToken,
    IdToken,
    Jwt,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::IdToken => "id_token",
            Self::Jwt => "jwt",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IssuerConfig {
    pub id: String,
    pub issuer: String,
    pub keys: KeySource,
    pub algorithms: Vec<Algorithm>,
    pub audiences: Vec<String>,
    pub accept: Vec<TokenKind>,
    pub leeway: Duration,
    pub max_age: Option<Duration>,
    pub jwks_refresh: Duration,
    pub jwks_min_refetch: Duration,
    pub access_token_typ: Option<String>,
    /// RFC 7662 introspection of opaque subject tokens.
    pub introspection: Option<Introspection>,
}

#[derive(Clone, PartialEq)]
pub struct Introspection {
    pub endpoint: Url,
    pub client_id: String,
    pub client_secret: String,
    /// Results are cached no longer than this (nor than the token's `exp`).
    pub cache: Duration,
    /// Opaque tokens are sent here only when they start with this.
    pub prefix: Option<String>,
}

impl fmt::Debug for Introspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspection")
            .field("endpoint", &self.endpoint.as_str())
            .field("client_id", &self.client_id)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub id: String,
    pub auth: ClientAuth,
    /// This client's limit, or the server's default; `None` = unlimited.
    pub rate_limit: Option<RateLimit>,
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientAuth {
    /// `client_secret_basic` / `client_secret_post`: the SHA-256 of the secret.
    Secret([u8; 32]),
    /// `private_key_jwt` (RFC 7523): assertions signed by one of these keys.
    PrivateKeyJwt {
        keys: KeySource,
        algorithms: Vec<Algorithm>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeMode {
    Intersect,
    Grant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorMode {
    None,
    Client,
    Token,
}

/// An actor a rule always allows (`actors`), by issuer id and subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorRef {
    pub issuer: String,
    pub subject: String,
}

#[derive(Debug, Clone)]
pub struct RuleConfig {
    pub name: String,
    pub clients: Vec<String>,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
    pub scopes: Vec<String>,
    pub default_scopes: Vec<String>,
    pub scope_mode: ScopeMode,
    pub require_scopes: Vec<String>,
    pub condition: Option<crate::condition::Condition>,
    pub actor: ActorMode,
    pub actors: Vec<ActorRef>,
    pub ttl: Option<Duration>,
    pub copy_claims: Vec<String>,
}

/// Claims that carry identity, audience, lifetime, scope, binding or delegation meaning, or that
/// make a token look like an ID token (SPEC §5): a minted token sets its own or carries none, so
/// `copy_claims` may not name them.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "scp",
    "act",
    "cnf",
    "may_act",
    "azp",
    "nonce",
    "at_hash",
    "c_hash",
    "typ",
    "s_hash",
];

pub const SIGNING_ALGORITHMS: &[Algorithm] = &[
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::PS256,
];

/// Where the configuration file is when `--config` is not given.
pub fn default_path() -> PathBuf {
    std::env::var_os("TESSERA_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("tessera.toml"))
}

/// Reads the file, applies `TESSERA__…` environment overrides and checks the result.
pub fn load(file: &Path) -> Result<Config, ConfigError> {
    let whole = |message: String| ConfigError {
        file: file.to_path_buf(),
        key: String::new(),
        message,
    };
    if !file.is_file() {
        return Err(whole(
            "the configuration file does not exist or is not a file; name one with \
             --config PATH (anywhere on the command line) or the TESSERA_CONFIG environment \
             variable"
                .into(),
        ));
    }
    let builder = ::config::Config::builder()
        .add_source(::config::File::from(file).format(::config::FileFormat::Toml))
        .add_source(
            ::config::Environment::with_prefix("TESSERA")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true),
        );
    from_builder(file, builder).map_err(|e| blame_environment(e, std::env::vars()))
}

/// An unknown key that only an environment variable names is that variable's fault, not the
/// file's: the error says so, naming it.
fn blame_environment(e: ConfigError, vars: impl Iterator<Item = (String, String)>) -> ConfigError {
    let Some(unknown) = e
        .message
        .split("unknown field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .map(str::to_ascii_lowercase)
    else {
        return e;
    };
    let culprit = vars
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("TESSERA__"))
        .find(|name| {
            name.rsplit("__")
                .next()
                .is_some_and(|last| last.eq_ignore_ascii_case(&unknown))
        });
    match culprit {
        Some(name) => ConfigError {
            message: format!(
                "the environment variable {name} sets \"{unknown}\", which is not a \
                 configuration key (the file is not at fault): fix its name or unset it"
            ),
            ..e
        },
        None => e,
    }
}

/// The configuration in `text`, as if read from `file` (which anchors relative paths), with no
/// environment overrides: `load` without the file system, for fuzzing and tools.
pub fn parse_str(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let builder = ::config::Config::builder()
        .add_source(::config::File::from_str(text, ::config::FileFormat::Toml));
    from_builder(file, builder)
}

fn from_builder(
    file: &Path,
    builder: ::config::ConfigBuilder<::config::builder::DefaultState>,
) -> Result<Config, ConfigError> {
    let raw: RawConfig = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| ConfigError {
            file: file.to_path_buf(),
            key: String::new(),
            message: e.to_string(),
        })?;
    build(file, raw)
}

/// Checks raw settings as a whole. `file` names the source in errors and anchors relative paths.
fn build(file: &Path, raw: RawConfig) -> Result<Config, ConfigError> {
    let ctx = Ctx {
        file,
        base: file.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };
    let server = ctx.server(raw.server)?;
    let admin = raw.admin.map(|a| ctx.admin(a, &server)).transpose()?;
    let storage = ctx.storage(raw.storage)?;
    let signing = ctx.signing(raw.signing)?;
    let mut issuers = Vec::with_capacity(raw.issuers.len());
    for (i, issuer) in raw.issuers.into_iter().enumerate() {
        let issuer = ctx.issuer(i, issuer, &server)?;
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
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, rule) in raw.rules.into_iter().enumerate() {
        let rule = ctx.rule(i, rule, &issuers, &clients, &signing)?;
        if rules.iter().any(|o: &RuleConfig| o.name == rule.name) {
            return Err(ctx.err(
                format!("rules[{i}].name"),
                format!("\"{}\" is used by two rules", rule.name),
            ));
        }
        rules.push(rule);
    }
    Ok(Config {
        file: file.to_path_buf(),
        server,
        admin,
        storage,
        signing,
        issuers,
        clients,
        rules,
    })
}

struct Ctx<'a> {
    file: &'a Path,
    base: PathBuf,
}

impl Ctx<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        key: &str,
        value: Option<&str>,
        default: &str,
    ) -> Result<Duration, ConfigError> {
        parse_duration(value.unwrap_or(default)).map_err(|m| self.err(key, m))
    }

    fn positive(
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

    fn path(&self, value: &str) -> PathBuf {
        self.base.join(value)
    }

    fn server(&self, raw: RawServer) -> Result<ServerConfig, ConfigError> {
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

    fn rate_limit(&self, key: &str, raw: raw::RawRateLimit) -> Result<RateLimit, ConfigError> {
        if raw.per_second == 0 || raw.burst == 0 {
            return Err(self.err(key, "per_second and burst must both be at least 1"));
        }
        Ok(RateLimit {
            per_second: raw.per_second,
            burst: raw.burst,
        })
    }

    fn admin(&self, raw: raw::RawAdmin, server: &ServerConfig) -> Result<AdminConfig, ConfigError> {
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
    fn web_url(&self, key: &str, value: &str) -> Result<Url, ConfigError> {
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

    fn storage(&self, raw: RawStorage) -> Result<StorageConfig, ConfigError> {
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

    fn signing(&self, raw: RawSigning) -> Result<SigningConfig, ConfigError> {
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

    fn issuer(
        &self,
        i: usize,
        raw: RawIssuer,
        server: &ServerConfig,
    ) -> Result<IssuerConfig, ConfigError> {
        let at = |k: &str| format!("issuers[{i}].{k}");
        if raw.id.trim().is_empty() {
            return Err(self.err(at("id"), "must not be empty"));
        }
        let is_self = raw.issuer.trim_end_matches('/') == server.issuer;
        let chosen = [
            raw.jwks_uri.is_some(),
            raw.jwks_file.is_some(),
            raw.discovery == Some(true),
        ];
        let keys = match (is_self, chosen.iter().filter(|c| **c).count()) {
            (true, 0) => KeySource::Local,
            (true, _) => {
                return Err(self.err(at("issuer"), "is this server's own issuer, whose keys are the signing keys: remove jwks_uri, jwks_file and discovery"));
            }
            (false, 1) => {
                if let Some(uri) = &raw.jwks_uri {
                    KeySource::Uri(self.web_url(&at("jwks_uri"), uri)?)
                } else if let Some(path) = &raw.jwks_file {
                    KeySource::File(self.path(path))
                } else {
                    KeySource::Discovery(self.web_url(&at("issuer"), &raw.issuer)?)
                }
            }
            // Opaque tokens only: no keys, every token is introspected.
            (false, 0) if raw.introspection_endpoint.is_some() => KeySource::None,
            (false, _) => {
                return Err(self.err(
                    at("jwks_uri"),
                    "set exactly one of jwks_uri, jwks_file and discovery = true (or only introspection_endpoint, for opaque tokens)",
                ));
            }
        };
        let introspection = match &raw.introspection_endpoint {
            None => None,
            Some(endpoint) => {
                let client_secret = match (
                    &raw.introspection_client_secret,
                    &raw.introspection_client_secret_file,
                ) {
                    (Some(secret), None) => secret.clone(),
                    (None, Some(file)) => std::fs::read_to_string(self.path(file))
                        .map(|s| s.trim().to_string())
                        .map_err(|e| {
                            self.err(
                                at("introspection_client_secret_file"),
                                format!("cannot be read: {e}"),
                            )
                        })?,
                    _ => {
                        return Err(self.err(
                            at("introspection_client_secret"),
                            "set exactly one of introspection_client_secret and introspection_client_secret_file",
                        ));
                    }
                };
                Some(Introspection {
                    endpoint: self.web_url(&at("introspection_endpoint"), endpoint)?,
                    client_id: raw.introspection_client_id.clone().ok_or_else(|| {
                        self.err(
                            at("introspection_client_id"),
                            "is required with introspection_endpoint",
                        )
                    })?,
                    client_secret,
                    cache: self.duration(
                        &at("introspection_cache"),
                        raw.introspection_cache.as_deref(),
                        "1m",
                    )?,
                    prefix: match raw.opaque_token_prefix.as_deref() {
                        Some("") => {
                            return Err(self.err(
                                at("opaque_token_prefix"),
                                "must not be empty (leave it out to match every opaque token)",
                            ));
                        }
                        prefix => prefix.map(str::to_string),
                    },
                })
            }
        };
        if raw.opaque_token_prefix.is_some() && introspection.is_none() {
            return Err(self.err(
                at("opaque_token_prefix"),
                "needs introspection_endpoint: only opaque tokens are routed by prefix",
            ));
        }
        let algorithms = raw
            .algorithms
            .unwrap_or_else(|| vec!["RS256".into(), "ES256".into()]);
        if algorithms.is_empty() {
            return Err(self.err(at("algorithms"), "must list at least one algorithm"));
        }
        let algorithms = algorithms
            .iter()
            .map(|a| self.verify_algorithm(&at("algorithms"), a))
            .collect::<Result<Vec<_>, _>>()?;
        let audiences = raw.audiences.unwrap_or_default();
        if audiences.is_empty() || audiences.iter().any(|a| a.is_empty()) {
            return Err(self.err(at("audiences"), "must list the audience(s) subject tokens are issued for, e.g. this server's issuer URL"));
        }
        let accept = raw
            .accept
            .unwrap_or_else(|| vec!["access_token".into()])
            .iter()
            .map(|kind| match kind.as_str() {
                "access_token" => Ok(TokenKind::AccessToken),
                "id_token" => Ok(TokenKind::IdToken),
                "jwt" => Ok(TokenKind::Jwt),
                other => Err(self.err(
                    at("accept"),
                    format!("\"{other}\" is not one of access_token, id_token, jwt"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if accept.is_empty() {
            return Err(self.err(at("accept"), "must list at least one token kind"));
        }
        let jwks_refresh =
            self.duration(&at("jwks_refresh"), raw.jwks_refresh.as_deref(), "10m")?;
        if jwks_refresh < Duration::from_secs(1) {
            return Err(self.err(at("jwks_refresh"), "must be at least 1s"));
        }
        Ok(IssuerConfig {
            id: raw.id,
            issuer: raw.issuer,
            keys,
            algorithms,
            audiences,
            accept,
            leeway: self.duration(&at("leeway"), raw.leeway.as_deref(), "30s")?,
            max_age: Some(self.duration(&at("max_age"), raw.max_age.as_deref(), "24h")?),
            jwks_refresh,
            jwks_min_refetch: self.duration(
                &at("jwks_min_refetch"),
                raw.jwks_min_refetch.as_deref(),
                "30s",
            )?,
            access_token_typ: raw.access_token_typ,
            introspection,
        })
    }

    fn verify_algorithm(&self, key: &str, name: &str) -> Result<Algorithm, ConfigError> {
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

    fn client(
        &self,
        i: usize,
        raw: RawClient,
        default_rate_limit: Option<RateLimit>,
    ) -> Result<ClientConfig, ConfigError> {
        let at = |k: &str| format!("clients[{i}].{k}");
        if raw.id.trim().is_empty() {
            return Err(self.err(at("id"), "must not be empty"));
        }
        let rate_limit = match raw.rate_limit {
            Some(limit) => Some(self.rate_limit(&at("rate_limit"), limit)?),
            None => default_rate_limit,
        };
        let auth = match (raw.secret_sha256, raw.jwks_file, raw.jwks_uri) {
            (Some(hex), None, None) => {
                if raw.algorithms.is_some() {
                    return Err(self.err(
                        at("algorithms"),
                        "applies only to clients with jwks_file or jwks_uri",
                    ));
                }
                ClientAuth::Secret(decode_sha256_hex(&hex).ok_or_else(|| {
                    self.err(at("secret_sha256"), "must be 64 hexadecimal characters (a SHA-256 digest; see `tessera secret`)")
                })?)
            }
            (None, Some(file), None) => ClientAuth::PrivateKeyJwt {
                keys: KeySource::File(self.path(&file)),
                algorithms: self.client_algorithms(&at("algorithms"), raw.algorithms)?,
            },
            (None, None, Some(uri)) => ClientAuth::PrivateKeyJwt {
                keys: KeySource::Uri(self.web_url(&at("jwks_uri"), &uri)?),
                algorithms: self.client_algorithms(&at("algorithms"), raw.algorithms)?,
            },
            _ => {
                return Err(self.err(
                    at("secret_sha256"),
                    "set exactly one of secret_sha256 (client_secret_basic/post), jwks_file or jwks_uri (private_key_jwt)",
                ));
            }
        };
        Ok(ClientConfig {
            id: raw.id,
            auth,
            rate_limit,
        })
    }

    fn client_algorithms(
        &self,
        key: &str,
        names: Option<Vec<String>>,
    ) -> Result<Vec<Algorithm>, ConfigError> {
        let names = names.unwrap_or_else(|| {
            ["RS256", "PS256", "ES256", "EdDSA"]
                .map(String::from)
                .to_vec()
        });
        if names.is_empty() {
            return Err(self.err(key, "must list at least one algorithm"));
        }
        names
            .iter()
            .map(|a| self.verify_algorithm(key, a))
            .collect()
    }

    fn rule(
        &self,
        i: usize,
        raw: RawRule,
        issuers: &[IssuerConfig],
        clients: &[ClientConfig],
        signing: &SigningConfig,
    ) -> Result<RuleConfig, ConfigError> {
        let at = |k: &str| format!("rules[{i}].{k}");
        if raw.name.trim().is_empty() {
            return Err(self.err(at("name"), "must not be empty"));
        }
        let condition = raw
            .condition
            .as_deref()
            .map(crate::condition::Condition::compile)
            .transpose()
            .map_err(|e| self.err(at("condition"), e))?;
        if raw.clients.is_empty() {
            return Err(self.err(at("clients"), "must name at least one client"));
        }
        for c in &raw.clients {
            if !clients.iter().any(|k| &k.id == c) {
                return Err(self.err(at("clients"), format!("\"{c}\" is not a configured client")));
            }
        }
        if raw.issuers.is_empty() {
            return Err(self.err(at("issuers"), "must name at least one issuer"));
        }
        for s in &raw.issuers {
            if !issuers.iter().any(|k| &k.id == s) {
                return Err(self.err(
                    at("issuers"),
                    format!("\"{s}\" is not a configured issuer id"),
                ));
            }
        }
        if raw.audiences.is_empty() && raw.resources.is_empty() {
            return Err(self.err(
                at("audiences"),
                "a rule must grant at least one audience or resource",
            ));
        }
        for r in &raw.resources {
            if !is_resource_indicator(r) {
                return Err(self.err(
                    at("resources"),
                    format!("\"{r}\" is not an absolute URI without a fragment (RFC 8707)"),
                ));
            }
        }
        for list in [&raw.scopes, &raw.default_scopes, &raw.require_scopes] {
            if let Some(bad) = list.iter().find(|s| !is_scope_token(s)) {
                return Err(self.err(
                    at("scopes"),
                    format!("\"{bad}\" is not a valid scope (no spaces, quotes or backslashes)"),
                ));
            }
        }
        if let Some(extra) = raw.default_scopes.iter().find(|s| !raw.scopes.contains(s)) {
            return Err(self.err(
                at("default_scopes"),
                format!("\"{extra}\" is not in the rule's scopes"),
            ));
        }
        let scope_mode = match raw.scope_mode.as_deref().unwrap_or("intersect") {
            "intersect" => ScopeMode::Intersect,
            "grant" => ScopeMode::Grant,
            other => {
                return Err(self.err(
                    at("scope_mode"),
                    format!("\"{other}\" is not intersect or grant"),
                ));
            }
        };
        let actor = match raw.actor.as_deref().unwrap_or("none") {
            "none" => ActorMode::None,
            "client" => ActorMode::Client,
            "token" => ActorMode::Token,
            other => {
                return Err(self.err(
                    at("actor"),
                    format!("\"{other}\" is not none, client or token"),
                ));
            }
        };
        if raw.actors.is_some() && actor != ActorMode::Token {
            return Err(self.err(at("actors"), "applies only to actor = \"token\""));
        }
        let mut actors = Vec::new();
        for a in raw.actors.unwrap_or_default() {
            if !issuers.iter().any(|i| i.id == a.issuer) {
                return Err(self.err(
                    at("actors"),
                    format!("issuer \"{}\" is not a configured issuer id", a.issuer),
                ));
            }
            if a.subject.is_empty() {
                return Err(self.err(at("actors"), "subject must not be empty"));
            }
            actors.push(ActorRef {
                issuer: a.issuer,
                subject: a.subject,
            });
        }
        let ttl = match raw.ttl.as_deref() {
            None => None,
            Some(t) => {
                let ttl = parse_duration(t).map_err(|m| self.err(at("ttl"), m))?;
                if ttl.is_zero() || ttl > signing.max_ttl {
                    return Err(self.err(
                        at("ttl"),
                        "must be more than zero and at most signing.max_ttl",
                    ));
                }
                Some(ttl)
            }
        };
        if let Some(reserved) = raw
            .copy_claims
            .iter()
            .find(|c| RESERVED_CLAIMS.contains(&c.as_str()))
        {
            return Err(self.err(
                at("copy_claims"),
                format!(
                    "\"{reserved}\" cannot be copied: it carries identity, audience, lifetime, \
                     scope, binding or delegation meaning, or marks an ID token"
                ),
            ));
        }
        Ok(RuleConfig {
            name: raw.name,
            clients: raw.clients,
            issuers: raw.issuers,
            audiences: raw.audiences,
            resources: raw.resources,
            scopes: dedup(raw.scopes),
            default_scopes: dedup(raw.default_scopes),
            scope_mode,
            require_scopes: dedup(raw.require_scopes),
            condition,
            actor,
            actors,
            ttl,
            copy_claims: raw.copy_claims,
        })
    }
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    list.into_iter()
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

/// Whether a URL may be used to reach a party: https, or http on a loopback host
/// (127.0.0.0/8, ::1, localhost).
pub fn is_allowed_web_url(url: &Url) -> bool {
    url.scheme() == "https" || (url.scheme() == "http" && is_loopback(url))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

pub fn decode_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
