//! Forged and confused subject tokens: each is refused with `invalid_request`, and no answer
//! quotes the token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tessera::config::TokenKind;

use crate::helpers::*;

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn token_refuses_every_forged_or_confused_subject_token() {
    let app = TestApp::spawn().await;
    let claims = app.claims(json!({}));
    let rsa = &app.key;
    let outsider = TestKey::generate(Algorithm::ES256, "rsa-1");
    let ghost = TestKey::generate(Algorithm::ES256, "ghost");

    // alg none, with and without a signature part.
    let none_header = b64(&json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"}));
    let alg_none = format!("{none_header}.{}.", b64(&claims));
    let alg_none_sig = format!("{none_header}.{}.AAAA", b64(&claims));
    // HS256 with the issuer's RSA public key (its PEM and its JWK text) as the HMAC secret.
    let public_pem = rsa_public_pem(rsa);
    let hs_pem = hs256(&claims, public_pem.as_bytes());
    let hs_jwk = hs256(&claims, rsa.jwk.to_string().as_bytes());
    // A valid signature over other claims.
    let good = app.subject_token(json!({}));
    let mut parts: Vec<&str> = good.split('.').collect();
    let tampered_claims = b64(&app.claims(json!({"sub": "mallory"})));
    parts[1] = &tampered_claims;
    let tampered = parts.join(".");
    // An attacker's key, offered in the header (jwk, jku) or under the issuer's kid.
    let mut with_jwk = Header::new(Algorithm::ES256);
    with_jwk.jwk = serde_json::from_value(outsider.jwk.clone()).ok();
    let embedded_jwk = jsonwebtoken::encode(&with_jwk, &claims, &outsider.encoding()).unwrap();
    let mut with_jku = Header::new(Algorithm::ES256);
    with_jku.jku = Some(format!("{}/jwks", app.idp.url));
    with_jku.kid = Some("rsa-1".into());
    let jku = jsonwebtoken::encode(&with_jku, &claims, &outsider.encoding()).unwrap();
    let same_kid_other_key = outsider.sign(&claims);
    let mut with_crit = Header::new(Algorithm::RS256);
    with_crit.kid = Some("rsa-1".into());
    with_crit.crit = Some(vec!["exp-policy".into()]);
    let crit = jsonwebtoken::encode(&with_crit, &claims, &rsa.encoding()).unwrap();

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", alg_none, ACCESS_TOKEN),
        ("alg none with a signature", alg_none_sig, ACCESS_TOKEN),
        ("HS256 with the RSA public key PEM as secret", hs_pem, ACCESS_TOKEN),
        ("HS256 with the RSA JWK as secret", hs_jwk, ACCESS_TOKEN),
        ("PS256, outside the allow-list", rsa.sign_as(Algorithm::PS256, Some("rsa-1"), &claims), ACCESS_TOKEN),
        ("RS384, outside the allow-list", rsa.sign_as(Algorithm::RS384, Some("rsa-1"), &claims), ACCESS_TOKEN),
        ("unknown kid", ghost.sign(&claims), ACCESS_TOKEN),
        ("another key under the issuer's kid", same_kid_other_key, ACCESS_TOKEN),
        ("an embedded jwk", embedded_jwk, ACCESS_TOKEN),
        ("a jku header", jku, ACCESS_TOKEN),
        ("tampered claims", tampered, ACCESS_TOKEN),
        ("a validly signed token with unknown critical headers", crit, ACCESS_TOKEN),
        ("expired", app.subject_token(json!({"exp": now() - 120})), ACCESS_TOKEN),
        ("not yet valid", app.subject_token(json!({"nbf": now() + 300})), ACCESS_TOKEN),
        ("issued in the future", app.subject_token(json!({"iat": now() + 300})), ACCESS_TOKEN),
        ("older than max_age", app.subject_token(json!({"iat": now() - 2 * 86_400})), ACCESS_TOKEN),
        ("no exp", app.subject_token(json!({"exp": null})), ACCESS_TOKEN),
        ("no sub", app.subject_token(json!({"sub": null})), ACCESS_TOKEN),
        ("wrong iss", app.subject_token(json!({"iss": "https://idp.elsewhere"})), ACCESS_TOKEN),
        ("untrusted issuer with its own key", outsider.sign(&json!({"iss": "https://evil.example", "sub": "alice", "aud": STS, "exp": now() + 600, "iat": now()})), ACCESS_TOKEN),
        ("wrong aud", app.subject_token(json!({"aud": "https://someone-else"})), ACCESS_TOKEN),
        ("an ID token (nonce)", app.subject_token(json!({"nonce": "n-0S6_WzA2Mj"})), ACCESS_TOKEN),
        ("an ID token (at_hash)", app.subject_token(json!({"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"})), ACCESS_TOKEN),
        ("declared an ID token", app.subject_token(json!({})), ID_TOKEN),
        ("garbage", "garbage".into(), ACCESS_TOKEN),
        ("three garbage parts", "a.b.c".into(), ACCESS_TOKEN),
        ("oversized", format!("{}.{}.{}", b64(&json!({"alg": "RS256"})), "A".repeat(7000), "s"), ACCESS_TOKEN),
    ];
    for (what, token, token_type) in cases {
        let resp = app
            .exchange(&[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &token),
                ("subject_token_type", token_type),
                ("audience", "inventory-api"),
            ])
            .await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "{what}: {body}"
        );
        let text = body.to_string();
        assert!(
            !text.contains(&token),
            "{what}: the answer quotes the token"
        );
    }
    // Every one of them left a denied record, and none a token.
    let records = app.records(&[]);
    assert_eq!(records.len(), 27);
    assert!(
        records
            .iter()
            .all(|r| r["outcome"] == "denied" && r["token_jti"].is_null())
    );
}

#[tokio::test]
async fn token_refuses_an_oversized_subject_token_without_reading_on() {
    let app = TestApp::spawn_with(|c| c.server.max_body_bytes = Some(65536)).await;
    let huge = format!(
        "{}.{}.sig",
        b64(&json!({"alg": "RS256"})),
        "A".repeat(40_000)
    );
    let resp = app.exchange_subject(&huge).await;
    let desc = assert_error(resp, 400, "invalid_request").await;
    assert!(desc.contains("32 KiB"), "{desc}");
}

#[tokio::test]
async fn token_accepts_id_tokens_only_from_issuers_that_accept_them() {
    let app = TestApp::spawn_with(|c| {
        c.issuer_mut("corp").accept = Some(vec![TokenKind::AccessToken, TokenKind::IdToken]);
    })
    .await;
    let id_token = app.subject_token(json!({"nonce": "n"}));
    let resp = app
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &id_token),
            ("subject_token_type", ID_TOKEN),
            ("audience", "inventory-api"),
        ])
        .await;
    assert_eq!(resp.status(), 200);
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// The SubjectPublicKeyInfo PEM of an RSA test key, as an attacker would download it.
fn rsa_public_pem(key: &TestKey) -> String {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    let der = pem_body(&key.pem);
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).unwrap();
    let spki = pair.public_key().as_der().unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(spki.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

fn pem_body(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}
