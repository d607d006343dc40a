//! The configuration file exactly as written (SPEC §2). Unknown keys are errors; values are
//! checked and turned into typed settings by `config::build`.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub storage: RawStorage,
    pub signing: RawSigning,
    #[serde(default)]
    pub issuers: Vec<RawIssuer>,
    #[serde(default)]
    pub clients: Vec<RawClient>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub telemetry: RawTelemetry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    pub otlp_endpoint: Option<String>,
    pub service_name: Option<String>,
    pub sample_ratio: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<String>,
    pub issuer: String,
    pub max_body_bytes: Option<u64>,
    pub default_rate_limit: Option<RawRateLimit>,
    pub request_header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub keep_alive: Option<String>,
    pub max_connections: Option<u64>,
    pub max_assertion_lifetime: Option<String>,
    pub trusted_proxies: Option<Vec<String>>,
    pub pre_auth_limit: Option<RawRateLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: String,
    pub token_sha256: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub url: Option<String>,
    pub retention: Option<String>,
    pub audit_query_budget: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigning {
    pub default_ttl: Option<String>,
    pub max_ttl: Option<String>,
    #[serde(default)]
    pub keys: Vec<RawSigningKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigningKey {
    pub kid: String,
    pub alg: String,
    pub private_key_file: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    pub id: String,
    pub issuer: String,
    pub jwks_uri: Option<String>,
    pub jwks_file: Option<String>,
    pub discovery: Option<bool>,
    pub algorithms: Option<Vec<String>>,
    pub audiences: Option<Vec<String>>,
    pub accept: Option<Vec<super::TokenKind>>,
    pub leeway: Option<String>,
    pub max_age: Option<String>,
    pub jwks_refresh: Option<String>,
    pub jwks_min_refetch: Option<String>,
    pub access_token_typ: Option<String>,
    pub introspection_endpoint: Option<String>,
    pub introspection_client_id: Option<String>,
    pub introspection_client_secret: Option<String>,
    pub introspection_client_secret_file: Option<String>,
    pub introspection_cache: Option<String>,
    pub opaque_token_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub id: String,
    pub secret_sha256: Option<String>,
    pub jwks_file: Option<String>,
    pub jwks_uri: Option<String>,
    pub algorithms: Option<Vec<String>>,
    pub rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    #[serde(default)]
    pub clients: Vec<String>,
    #[serde(default)]
    pub issuers: Vec<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub default_scopes: Vec<String>,
    pub scope_mode: Option<super::ScopeMode>,
    #[serde(default)]
    pub require_scopes: Vec<String>,
    pub condition: Option<String>,
    pub actor: Option<super::ActorMode>,
    pub actors: Option<Vec<RawActor>>,
    pub ttl: Option<String>,
    #[serde(default)]
    pub copy_claims: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawActor {
    pub issuer: String,
    pub subject: String,
}
