//! The configuration file exactly as written (SPEC §2). Unknown keys are errors; values are
//! checked and turned into typed settings by `config::build`. Serialized, absent keys left out,
//! a value is a file that reads back the same: the integration tests build theirs this way.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<RawAdmin>,
    #[serde(default)]
    pub storage: RawStorage,
    pub signing: RawSigning,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<RawIssuer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<RawClient>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub telemetry: RawTelemetry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_tokens: Option<RawTransactionTokens>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<RawConsole>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token_sign_in: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles_claim: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auditors: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operators: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_claim: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransactionTokens {
    pub trust_domain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_replacements: Option<u32>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_ratio: Option<f64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    pub issuer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_rate_limit: Option<RawRateLimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_header_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_assertion_lifetime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_proxies: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_auth_limit: Option<RawRateLimit>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: String,
    pub token_sha256: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_query_budget: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigning {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<RawSigningKey>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigningKey {
    pub kid: String,
    pub alg: String,
    pub private_key_file: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    pub id: String,
    pub issuer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovery: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept: Option<Vec<super::TokenKind>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leeway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_refresh: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_min_refetch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_typ: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_client_secret_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_cache: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opaque_token_prefix: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub per_second: u32,
    pub burst: u32,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_mode: Option<super::ScopeMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require_scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<super::ActorMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<RawActor>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy_claims: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mints: Option<super::Mints>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tctx: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rctx: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_claim: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience_client_id: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawActor {
    pub issuer: String,
    pub subject: String,
}
