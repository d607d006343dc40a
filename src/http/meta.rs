//! Public documents: the signing keys (`/jwks.json`) and RFC 8414 server metadata.

use crate::oauth::TokenType;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use jsonwebtoken::Algorithm;
use serde_json::json;

use crate::state::AppState;

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.keys.jwks())
}

/// Client authentication, the same at every endpoint that takes it.
const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

/// Algorithms a client assertion may be signed with (each client's own list is a subset).
const ASSERTION_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn advertised(algorithms: &[Algorithm]) -> Vec<String> {
    algorithms
        .iter()
        .flat_map(|a| crate::oauth::algorithm::names(*a))
        .collect()
}

/// The `requested_token_type`s `/token` serves: Txn-Tokens only from a Transaction Token
/// Service (configured), the others always.
fn requested_token_types(state: &AppState) -> Vec<&'static str> {
    let mut types = vec![TokenType::AccessToken.uri(), TokenType::Jwt.uri()];
    if state.policy.load().txn.is_some() {
        types.push(TokenType::TxnToken.uri());
    }
    types.push(TokenType::IdJag.uri());
    types
}

/// The token types a client can request for another trust domain
/// (draft-ietf-oauth-identity-chaining §4): what Tessera implements, whichever servers its
/// rules name (those, the trust relationships, are never published).
const IDENTITY_CHAINING_TYPES: &[TokenType] = &[TokenType::Jwt, TokenType::IdJag];

/// The grant profiles `jwt-bearer` implements (draft-ietf-oauth-identity-assertion-authz-grant
/// §"Resource Authorization Server Metadata"): it says the processing rules are implemented,
/// never which issuers are trusted.
const GRANT_PROFILES: &[&str] = &["urn:ietf:params:oauth:grant-profile:id-jag"];

/// RFC 8414 metadata. `response_types_supported` is REQUIRED there and validators (Authlib's)
/// refuse it empty; Tessera has no authorization endpoint, so the one truthful value is `none`
/// (OAuth 2.0 Multiple Response Types: no credential is ever returned from it).
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.server.issuer;
    let assertion_algs = advertised(ASSERTION_ALGORITHMS);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(json!({
            "issuer": issuer,
            "token_endpoint": state.server.token_endpoint,
            "jwks_uri": format!("{issuer}/jwks.json"),
            "response_types_supported": ["none"],
            "grant_types_supported": crate::grants::GrantType::ALL.iter().map(|g| g.uri()).collect::<Vec<_>>(),
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": assertion_algs,
            "introspection_endpoint": format!("{issuer}/introspect"),
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "introspection_endpoint_auth_signing_alg_values_supported": assertion_algs,
            "revocation_endpoint": format!("{issuer}/revoke"),
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_signing_alg_values_supported": assertion_algs,
            "dpop_signing_alg_values_supported": advertised(crate::tokens::dpop::ALGORITHMS),
            "requested_token_types_supported": requested_token_types(&state),
            "identity_chaining_requested_token_types_supported":
                IDENTITY_CHAINING_TYPES.iter().map(|t| t.uri()).collect::<Vec<_>>(),
            "authorization_grant_profiles_supported": GRANT_PROFILES,
        }))
}
