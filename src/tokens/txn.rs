//! Transaction tokens (SPEC §8, draft-ietf-oauth-transaction-tokens): minting a Txn-Token, and
//! verifying one presented for replacement. A Txn-Token is a JWS with `typ: txntoken+jwt`,
//! signed with the signing keys like every minted token, whose `aud` is the trust domain.

use jsonwebtoken::Header;
use serde_json::{Map, Value};

use super::mint::{MintError, Minted};
use super::unverified;
use super::verified::{VerifiedToken, scopes_of};
use crate::config::TxnConfig;
use crate::error::OAuthError;
use crate::keys::{SigningKey, SigningKeys};
use crate::oauth::{Scopes, TokenType};

/// The JOSE `typ` of a Txn-Token (the media type `application/txntoken+jwt`).
pub const TYP: &str = "txntoken+jwt";

/// What this server needs to be its trust domain's Transaction Token Service: the
/// configuration, its own issuer, and the keys that sign (and so verify) its Txn-Tokens.
#[derive(Clone)]
pub struct TxnService {
    pub config: TxnConfig,
    pub issuer: String,
    pub keys: SigningKeys,
    /// How far ahead a self-signed subject token's `exp` may lie
    /// (`server.max_assertion_lifetime`, as for client assertions).
    pub max_assertion_lifetime: std::time::Duration,
}

/// Everything a Txn-Token says, decided before signing.
#[derive(Debug, Clone, PartialEq)]
pub struct TxnGrant {
    pub subject: String,
    /// `aud`: the trust domain.
    pub audience: String,
    pub txn: String,
    pub scopes: Scopes,
    /// `req_wl`: the workloads (client ids) that requested this Txn-Token and the ones it
    /// replaces, the first first.
    pub requesters: Vec<String>,
    pub tctx: Map<String, Value>,
    pub rctx: Map<String, Value>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// It replaces a Txn-Token (the subject token was one): replacements of a `txn` are counted.
    pub replaces: bool,
}

impl TxnGrant {
    /// `req_wl`: the requesting workloads, joined by the separator no client id of a Txn-Token
    /// rule may hold.
    pub fn req_wl(&self) -> String {
        self.requesters
            .join(&crate::config::REQUESTERS_SEPARATOR.to_string())
    }
}

pub fn mint(key: &SigningKey, issuer: &str, grant: &TxnGrant) -> Result<Minted, MintError> {
    let jti = crate::ids::jti(crate::clock::now())?;
    let token = key.sign_jwt_typed(&claims(issuer, grant, &jti), TYP)?;
    Ok(Minted { token, jti })
}

/// The JOSE header of a Txn-Token.
pub fn header(key: &SigningKey) -> Header {
    let mut header = Header::new(key.alg);
    header.typ = Some(TYP.into());
    header.kid = Some(key.kid.clone());
    header
}

/// The claims of a Txn-Token. `jti` is not one the draft names: it lets a Txn-Token be revoked
/// and its lineage followed like any token this server mints. The subject token itself is
/// never among them.
pub fn claims(issuer: &str, grant: &TxnGrant, jti: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.into());
    claims.insert("iat".into(), grant.issued_at.into());
    claims.insert("exp".into(), grant.expires_at.into());
    claims.insert("aud".into(), grant.audience.clone().into());
    claims.insert("txn".into(), grant.txn.clone().into());
    claims.insert("sub".into(), grant.subject.clone().into());
    claims.insert("scope".into(), grant.scopes.to_string().into());
    claims.insert("req_wl".into(), grant.req_wl().into());
    if !grant.tctx.is_empty() {
        claims.insert("tctx".into(), Value::Object(grant.tctx.clone()));
    }
    if !grant.rctx.is_empty() {
        claims.insert("rctx".into(), Value::Object(grant.rctx.clone()));
    }
    claims.insert("jti".into(), jti.into());
    claims
}

/// A Txn-Token presented as subject token for replacement: only one this server signed, with
/// `typ: txntoken+jwt`, its own `iss`, the trust domain as `aud`, and not expired (no leeway:
/// an expired Txn-Token is never replaced). Attributed to the `txn_token` subject source.
pub fn verify(token: &str, service: &TxnService, now: i64) -> Result<VerifiedToken, OAuthError> {
    let invalid = |why: &str| OAuthError::invalid_request(format!("the subject token {why}"));
    let parsed = unverified::parse(token).map_err(invalid)?;
    if !is_txn_typ(parsed.header.typ.as_deref()) {
        return Err(invalid(
            "is not a Txn-Token (its typ is not txntoken+jwt); only Txn-Tokens are replaced",
        ));
    }
    let foreign = || {
        invalid(
            "is not a Txn-Token this server issued: only this trust domain's own Txn-Tokens \
             are replaced",
        )
    };
    if parsed.header.crit.is_some()
        || !super::verify::signed_here(&parsed, &service.keys, &service.issuer)
    {
        return Err(foreign());
    }
    let claims = parsed.claims;
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if claims.get("aud").and_then(Value::as_str) != Some(service.config.trust_domain.as_str()) {
        return Err(invalid(&format!(
            "is a Txn-Token for another trust domain than \"{}\"",
            service.config.trust_domain
        )));
    }
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(foreign)?;
    if now >= exp {
        return Err(invalid(
            "is a Txn-Token that has expired; an expired Txn-Token is never replaced: request a \
             new one with the transaction's original subject token",
        ));
    }
    let (Some(sub), Some(_), Some(_), Some(_)) =
        (text("sub"), text("txn"), text("req_wl"), text("scope"))
    else {
        return Err(foreign());
    };
    Ok(VerifiedToken {
        issuer_id: TokenType::TxnToken.name().into(),
        iss: service.issuer.clone(),
        sub: sub.to_string(),
        jti: text("jti").map(str::to_string),
        exp,
        accepted_until: exp,
        scopes: scopes_of(&claims),
        claims,
    })
}

/// Whether a presented token is a Txn-Token by its header: such a token is never taken as an
/// access token, an ID token or a plain JWT (draft §"Transaction Tokens Are Not OAuth 2.0
/// Access Tokens").
pub fn is_txn_typ(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| super::verify::same_typ(t, TYP))
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::Algorithm;
    use serde_json::json;

    use super::*;
    use crate::keys::generate_pkcs8_pem;

    fn service() -> TxnService {
        crate::install_crypto_provider();
        let pem = generate_pkcs8_pem(Algorithm::ES256).expect("key");
        let key = SigningKey::from_pem("k1", Algorithm::ES256, pem.as_bytes()).expect("load");
        TxnService {
            config: TxnConfig {
                trust_domain: "trust-domain.example".into(),
                default_ttl: std::time::Duration::from_secs(60),
                max_ttl: std::time::Duration::from_secs(300),
                max_replacements: 8,
            },
            issuer: "https://sts".into(),
            keys: SigningKeys::from_keys(vec![key]).expect("keys"),
            max_assertion_lifetime: std::time::Duration::from_secs(600),
        }
    }

    fn grant() -> TxnGrant {
        let mut tctx = Map::new();
        tctx.insert("action".into(), json!("BUY"));
        TxnGrant {
            subject: "alice".into(),
            audience: "trust-domain.example".into(),
            txn: "97053963-771d-49cc-a4e3-20aad399c312".into(),
            scopes: Scopes::parse("trade.stocks").expect("scope"),
            requesters: vec!["gateway".into(), "orders".into()],
            tctx,
            rctx: Map::new(),
            issued_at: 1000,
            expires_at: 1060,
            replaces: false,
        }
    }

    #[test]
    fn a_txn_token_has_the_drafts_header_and_claims() {
        let s = service();
        let minted = mint(s.keys.current(), &s.issuer, &grant()).expect("mint");
        let parsed = unverified::parse(&minted.token).expect("parse");
        assert_eq!(parsed.header.typ.as_deref(), Some("txntoken+jwt"));
        assert_eq!(parsed.header.kid.as_deref(), Some("k1"));
        let c = &parsed.claims;
        assert_eq!(c["aud"], "trust-domain.example");
        assert_eq!(c["txn"], "97053963-771d-49cc-a4e3-20aad399c312");
        assert_eq!(c["req_wl"], "gateway,orders");
        assert_eq!(c["tctx"], json!({"action": "BUY"}));
        assert!(c.get("rctx").is_none(), "an empty rctx is left out");
        for claim in ["iss", "iat", "exp", "sub", "scope", "jti"] {
            assert!(c.contains_key(claim), "{claim}");
        }
    }

    #[test]
    fn only_unexpired_txn_tokens_of_this_server_and_trust_domain_verify() {
        let s = service();
        let token = mint(s.keys.current(), &s.issuer, &grant())
            .expect("mint")
            .token;
        let v = verify(&token, &s, 1059).expect("valid");
        assert_eq!(v.sub, "alice");
        assert_eq!(v.issuer_id, "txn_token");
        assert_eq!(v.scopes, Scopes::parse("trade.stocks").expect("scope"));
        let expired = verify(&token, &s, 1060).expect_err("expired at exp, no leeway");
        assert!(
            expired.description.contains("expired"),
            "{}",
            expired.description
        );
        let mut other = s.clone();
        other.config.trust_domain = "other.example".into();
        let foreign = verify(&token, &other, 1000).expect_err("another trust domain");
        assert!(foreign.description.contains("another trust domain"));
        let stranger = service();
        let err = verify(&token, &stranger, 1000).expect_err("another server's keys");
        assert!(
            err.description.contains("this server issued"),
            "{}",
            err.description
        );
        let access = crate::tokens::mint::mint(
            s.keys.current(),
            &s.issuer,
            &crate::tokens::mint::Grant {
                subject: "alice".into(),
                audiences: vec!["trust-domain.example".into()],
                client_id: "gateway".into(),
                scopes: Scopes::parse("trade.stocks").expect("scope"),
                issued_at: 1000,
                expires_at: 1060,
                act: None,
                copied: Map::new(),
                cnf_jkt: None,
            },
        )
        .expect("mint")
        .token;
        let err = verify(&access, &s, 1000).expect_err("an access token is no Txn-Token");
        assert!(err.description.contains("typ is not txntoken+jwt"));
    }
}
