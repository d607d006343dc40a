//! JWT parsing and validation: the unverified read, the claim checks of a trusted issuer, and
//! signature verification against this server's own key (as introspection and revocation do).

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tessera::config::{IssuerConfig, KeySource, TokenKind};
use tessera::keys::{SigningKey, SigningKeys, generate_pkcs8_pem};
use tessera::oauth::TokenType;

const ISSUER: &str = "https://sts.test.internal";

fn keys() -> &'static SigningKeys {
    static KEYS: OnceLock<SigningKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        tessera::install_crypto_provider();
        let alg = jsonwebtoken::Algorithm::ES256;
        let pem = generate_pkcs8_pem(alg).expect("a key");
        let key = SigningKey::from_pem("fuzz", alg, pem.as_bytes()).expect("a key");
        SigningKeys::from_keys(vec![key]).expect("one key")
    })
}

fn issuer() -> IssuerConfig {
    IssuerConfig {
        id: "corp".into(),
        issuer: "https://idp.test.internal".into(),
        keys: KeySource::Local,
        algorithms: vec![jsonwebtoken::Algorithm::RS256],
        audiences: vec![ISSUER.into()],
        accept: vec![TokenKind::AccessToken],
        leeway: Duration::from_secs(30),
        max_age: Some(Duration::from_secs(3600)),
        jwks_refresh: Duration::from_secs(600),
        jwks_min_refetch: Duration::from_secs(30),
        access_token_typ: None,
        introspection: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = tessera::tokens::verify::verify_local(token, keys(), ISSUER);
    if let Ok(parsed) = tessera::tokens::unverified::parse(token) {
        let issuer = issuer();
        for declared in [TokenType::AccessToken, TokenType::Jwt, TokenType::IdToken] {
            let _ = tessera::tokens::verify::check_claims(
                &issuer,
                declared,
                parsed.header.typ.as_deref(),
                parsed.claims.clone(),
                1_800_000_000,
                &issuer.audiences,
            );
        }
    }
});
