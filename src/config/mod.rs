//! Typed settings (SPEC §2): loaded from TOML with `TESSERA__SECTION__KEY` overrides, then
//! checked as a whole: every value parsed, every reference between sections resolved. Nothing
//! else in the service reads raw configuration.

mod check;
mod client;
mod console;
pub mod duration;
pub mod grant;
mod issuer;
pub mod raw;
mod rule;
mod txn;

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

use crate::oauth::{Resource, Scopes};
use crate::subjects::SubjectPattern;

pub use console::{ConsoleConfig, ConsoleOidc};
pub use duration::parse as parse_duration;
use raw::RawConfig;
pub use txn::REQUESTERS_SEPARATOR;

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
    pub telemetry: TelemetryConfig,
    /// `[transaction_tokens]`: present when this server is its trust domain's Transaction
    /// Token Service (SPEC §8).
    pub transaction_tokens: Option<TxnConfig>,
    /// `[console]`: how people sign in to the console (the default when absent).
    pub console: ConsoleConfig,
}

/// `[telemetry]`: where spans go besides the log.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// An OTLP/HTTP collector's base URL; spans are posted to `<endpoint>/v1/traces`. `None`:
    /// no export.
    pub otlp_endpoint: Option<Url>,
    pub service_name: String,
    /// The share of requests whose spans are exported, from 0 to 1.
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "tessera".into(),
            sample_ratio: 1.0,
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum TokenKind {
    AccessToken,
    IdToken,
    Jwt,
    /// A JWT authorization grant (draft-ietf-oauth-identity-chaining), taken by the
    /// `jwt-bearer` grant only.
    AuthorizationGrant,
    /// An Identity Assertion JWT Authorization Grant (`typ: oauth-id-jag+jwt`), taken by the
    /// `jwt-bearer` grant only.
    IdJag,
}

impl TokenKind {
    pub const ALL: &[TokenKind] = &[
        Self::AccessToken,
        Self::IdToken,
        Self::Jwt,
        Self::AuthorizationGrant,
        Self::IdJag,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::IdToken => "id_token",
            Self::Jwt => "jwt",
            Self::AuthorizationGrant => "authorization_grant",
            Self::IdJag => "id_jag",
        }
    }

    /// Kinds presented as an `assertion` of the `jwt-bearer` grant, never as a subject token.
    pub fn is_grant(self) -> bool {
        matches!(self, Self::AuthorizationGrant | Self::IdJag)
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

/// `[transaction_tokens]` (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// The `aud` of every Txn-Token, and the one `audience` a Txn-Token request names.
    pub trust_domain: String,
    pub default_ttl: Duration,
    pub max_ttl: Duration,
    /// How many times the Txn-Tokens of one transaction (`txn`) may be replaced in all.
    pub max_replacements: u32,
}

/// The lifetimes of the tokens a rule may mint: what rules are checked against, and what their
/// grants are cut to.
#[derive(Clone, Copy)]
pub struct Limits<'a> {
    pub signing: &'a SigningConfig,
    pub txn: Option<&'a TxnConfig>,
}

/// What a rule mints: an access token (SPEC §4), a Txn-Token (SPEC §8), a JWT authorization
/// grant for a foreign authorization server or an ID-JAG (SPEC §9). A rule applies only to
/// requests its kind serves (`serves`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum Mints {
    #[default]
    AccessToken,
    TxnToken,
    AuthorizationGrant,
    IdJag,
}

/// What a request asks for, as rules serve it: the `requested_token_type` of a token exchange
/// (a `jwt` is an access token or an authorization grant, as the applying rule mints), or an
/// access token for the `jwt-bearer` grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wants {
    AccessToken,
    Jwt,
    TxnToken,
    IdJag,
}

impl Wants {
    /// What a token exchange asking for `requested` wants.
    pub fn of(requested: crate::oauth::TokenType) -> Self {
        use crate::oauth::TokenType;
        match requested {
            TokenType::TxnToken => Self::TxnToken,
            TokenType::IdJag => Self::IdJag,
            TokenType::Jwt => Self::Jwt,
            _ => Self::AccessToken,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::Jwt => "jwt",
            Self::TxnToken => "txn_token",
            Self::IdJag => "id-jag",
        }
    }
}

impl Mints {
    pub const ALL: &[Mints] = &[
        Self::AccessToken,
        Self::TxnToken,
        Self::AuthorizationGrant,
        Self::IdJag,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::TxnToken => "txn_token",
            Self::AuthorizationGrant => "authorization_grant",
            Self::IdJag => "id_jag",
        }
    }

    /// Whether a rule minting this kind decides a request asking for `wants`.
    pub fn serves(self, wants: Wants) -> bool {
        matches!(
            (self, wants),
            (Self::AccessToken, Wants::AccessToken | Wants::Jwt)
                | (Self::AuthorizationGrant, Wants::Jwt)
                | (Self::TxnToken, Wants::TxnToken)
                | (Self::IdJag, Wants::IdJag)
        )
    }

    /// A grant for another trust domain's authorization server (SPEC §9).
    pub fn is_grant(self) -> bool {
        matches!(self, Self::AuthorizationGrant | Self::IdJag)
    }
}

impl TryFrom<String> for Mints {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!("\"{name}\" is not one of {}", names.join(", "))
            })
    }
}

impl From<Mints> for String {
    fn from(kind: Mints) -> Self {
        kind.as_str().to_string()
    }
}

/// Where a Txn-Token rule's subjects may come from besides trusted issuers: the token types
/// the draft adds, named in the rule's `issuers` as if they were issuer ids (no issuer may take
/// these ids). A `self_signed` subject is a JWT the requesting client signed with its own keys;
/// an `unsigned_json` one is the client's word; a `txn_token` one is this server's Txn-Token
/// being replaced.
pub const SUBJECT_SOURCES: &[crate::oauth::TokenType] = &[
    crate::oauth::TokenType::SelfSigned,
    crate::oauth::TokenType::UnsignedJson,
    crate::oauth::TokenType::TxnToken,
];

/// Whether `id` is one of `SUBJECT_SOURCES`' names.
pub fn is_subject_source(id: &str) -> bool {
    SUBJECT_SOURCES.iter().any(|t| t.name() == id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum ScopeMode {
    #[default]
    Intersect,
    Grant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum ActorMode {
    #[default]
    None,
    Client,
    Token,
}

/// The names the file uses, each refused with the names it may be.
impl TryFrom<String> for TokenKind {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!("\"{name}\" is not one of {}", names.join(", "))
            })
    }
}

impl TryFrom<String> for ScopeMode {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        match name.as_str() {
            "intersect" => Ok(Self::Intersect),
            "grant" => Ok(Self::Grant),
            other => Err(format!("\"{other}\" is not intersect or grant")),
        }
    }
}

impl TryFrom<String> for ActorMode {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        match name.as_str() {
            "none" => Ok(Self::None),
            "client" => Ok(Self::Client),
            "token" => Ok(Self::Token),
            other => Err(format!("\"{other}\" is not none, client or token")),
        }
    }
}

/// Each written as the name the file uses, so that a configuration serializes back to its file.
impl From<TokenKind> for String {
    fn from(kind: TokenKind) -> Self {
        kind.as_str().to_string()
    }
}

impl From<ScopeMode> for String {
    fn from(mode: ScopeMode) -> Self {
        match mode {
            ScopeMode::Intersect => "intersect",
            ScopeMode::Grant => "grant",
        }
        .to_string()
    }
}

impl From<ActorMode> for String {
    fn from(mode: ActorMode) -> Self {
        match mode {
            ActorMode::None => "none",
            ActorMode::Client => "client",
            ActorMode::Token => "token",
        }
        .to_string()
    }
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
    /// Subject patterns (SPEC §10); none: any subject.
    pub subjects: Vec<SubjectPattern>,
    pub audiences: Vec<String>,
    pub resources: Vec<Resource>,
    pub scopes: Scopes,
    pub default_scopes: Scopes,
    pub scope_mode: ScopeMode,
    pub require_scopes: Scopes,
    pub condition: Option<crate::condition::Condition>,
    pub actor: ActorMode,
    pub actors: Vec<ActorRef>,
    pub ttl: Option<Duration>,
    pub copy_claims: Vec<String>,
    pub mints: Mints,
    /// A Txn-Token rule's `tctx` and `rctx`: claim names and the CEL expressions that build
    /// them, in name order.
    pub tctx: Vec<(String, crate::condition::Condition)>,
    pub rctx: Vec<(String, crate::condition::Condition)>,
    /// A grant rule's subject mapping: the subject claim whose value becomes the grant's `sub`
    /// (SPEC §9); `None`: the subject's `sub`.
    pub subject_claim: Option<String>,
    /// An ID-JAG rule's `client_id` claim: the client's id at the resource authorization
    /// server; `None`: the requesting client's own id.
    pub audience_client_id: Option<String>,
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
    // What a grant for another trust domain grants (SPEC §9), set by Tessera alone.
    "resource",
    "authorization_details",
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
        .map_err(|e| located(file, &e.to_string()))?;
    check::build(file, raw)
}

/// A deserialization error with its key taken out of the text (`… for key \`rules[0]actor\``)
/// and written as the checks write keys (`rules[0].actor`).
fn located(file: &Path, text: &str) -> ConfigError {
    let (message, key) = match text.rsplit_once(" for key `") {
        Some((message, key)) if key.ends_with('`') => {
            let mut dotted = String::with_capacity(key.len());
            let mut chars = key.trim_end_matches('`').chars().peekable();
            while let Some(c) = chars.next() {
                dotted.push(c);
                if c == ']'
                    && chars
                        .peek()
                        .is_some_and(|n| n.is_alphanumeric() || *n == '_')
                {
                    dotted.push('.');
                }
            }
            (message, dotted)
        }
        _ => (text, String::new()),
    };
    ConfigError {
        file: file.to_path_buf(),
        key,
        message: message.to_string(),
    }
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
