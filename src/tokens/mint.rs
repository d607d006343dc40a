//! Minting RFC 9068 access tokens: header `typ: at+jwt` with `alg` and `kid`, the registered
//! claims, the copied claims and the actor chain.

use jsonwebtoken::Header;
use serde_json::{Map, Value};

use crate::keys::SigningKey;

/// Everything a minted token says, decided before signing.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    pub subject: String,
    /// The targets: requested audiences, then requested resources.
    pub audiences: Vec<String>,
    pub client_id: String,
    pub scopes: crate::oauth::Scopes,
    pub issued_at: i64,
    pub expires_at: i64,
    pub act: Option<Value>,
    pub copied: Map<String, Value>,
    /// The DPoP key the token is bound to (`cnf.jkt`), when the request proved one.
    pub cnf_jkt: Option<String>,
}

pub struct Minted {
    pub token: String,
    pub jti: String,
}

/// Why a grant could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error(transparent)]
    Jti(#[from] crate::ids::RandomFailed),
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
}

pub fn mint(key: &SigningKey, issuer: &str, grant: &Grant) -> Result<Minted, MintError> {
    let jti = crate::ids::jti(crate::clock::now())?;
    let token = key.sign_jwt(&claims(issuer, grant, &jti))?;
    Ok(Minted { token, jti })
}

/// The JOSE header of a minted token.
pub fn header(key: &SigningKey) -> Header {
    let mut header = Header::new(key.alg);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key.kid.clone());
    header
}

/// The claims of a minted token: the copied claims, then those Tessera sets itself.
pub fn claims(issuer: &str, grant: &Grant, jti: &str) -> Map<String, Value> {
    let mut claims = grant.copied.clone();
    claims.insert("iss".into(), issuer.into());
    claims.insert("sub".into(), grant.subject.clone().into());
    claims.insert("aud".into(), audience_claim(&grant.audiences));
    claims.insert("client_id".into(), grant.client_id.clone().into());
    claims.insert("scope".into(), grant.scopes.to_string().into());
    claims.insert("iat".into(), grant.issued_at.into());
    claims.insert("exp".into(), grant.expires_at.into());
    claims.insert("jti".into(), jti.into());
    if let Some(act) = &grant.act {
        claims.insert("act".into(), act.clone());
    }
    if let Some(jkt) = &grant.cnf_jkt {
        claims.insert("cnf".into(), serde_json::json!({ "jkt": jkt }));
    }
    claims
}

/// A single audience is a string, several an array (RFC 7519 §4.1.3).
fn audience_claim(audiences: &[String]) -> Value {
    match audiences {
        [one] => one.clone().into(),
        many => many.to_vec().into(),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::Algorithm;
    use serde_json::json;

    use super::*;
    use crate::keys::generate_pkcs8_pem;
    use crate::tokens::unverified;

    #[test]
    fn a_minted_token_carries_the_grant_and_verifies() {
        crate::install_crypto_provider();
        let pem = generate_pkcs8_pem(Algorithm::ES256).expect("key");
        let key = SigningKey::from_pem("k1", Algorithm::ES256, pem.as_bytes()).expect("load");
        let mut copied = Map::new();
        copied.insert("email".into(), json!("a@example.com"));
        let grant = Grant {
            subject: "alice".into(),
            audiences: vec!["inventory-api".into()],
            client_id: "orders-svc".into(),
            scopes: crate::oauth::Scopes::parse("read write").expect("scopes"),
            issued_at: 100,
            expires_at: 400,
            act: Some(json!({"sub": "orders-svc"})),
            copied,
            cnf_jkt: None,
        };
        let minted = mint(&key, "https://sts", &grant).expect("mint");
        let parsed = unverified::parse(&minted.token).expect("parse");
        assert_eq!(parsed.header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(parsed.header.kid.as_deref(), Some("k1"));
        let c = &parsed.claims;
        assert_eq!(c["iss"], "https://sts");
        assert_eq!(c["aud"], "inventory-api");
        assert_eq!(c["scope"], "read write");
        assert_eq!(c["exp"], 400);
        assert_eq!(c["jti"], minted.jti.as_str());
        assert_eq!(c["act"], json!({"sub": "orders-svc"}));
        assert_eq!(c["email"], "a@example.com");
        assert!(
            jsonwebtoken::crypto::verify(
                parsed.signature,
                parsed.signing_input.as_bytes(),
                &key.decoding,
                Algorithm::ES256
            )
            .expect("verify")
        );
    }

    #[test]
    fn jtis_are_unique_hex_and_never_look_like_a_flag() {
        let a = crate::ids::jti(crate::clock::now()).expect("jti");
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(a, crate::ids::jti(crate::clock::now()).expect("jti"));
    }
}
