//! DPoP (RFC 9449) at the token endpoint.

use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::*;

const ENDPOINT: &str = "https://sts.test.internal/token";

fn proof_with(key: &TestKey, alg: Algorithm, jwk: Value, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.typ = Some("dpop+jwt".into());
    header.extras.insert("jwk", jwk);
    let encoding = if alg == Algorithm::HS256 {
        EncodingKey::from_secret(b"shared")
    } else {
        key.encoding()
    };
    jsonwebtoken::encode(&header, &claims, &encoding).unwrap()
}

pub fn proof(key: &TestKey, claims: Value) -> String {
    let mut base = json!({"jti": uuid_like(), "htm": "POST", "htu": ENDPOINT, "iat": now()});
    if let (Some(b), Value::Object(extra)) = (base.as_object_mut(), claims) {
        b.extend(extra);
    }
    proof_with(key, key.alg, key.jwk.clone(), base)
}

fn thumbprint(key: &TestKey) -> String {
    let jwk: Jwk = serde_json::from_value(key.jwk.clone()).unwrap();
    jwk.thumbprint(ThumbprintHash::SHA256).unwrap()
}

async fn exchange(app: &TestApp, subject: &str, proofs: &[&str]) -> reqwest::Response {
    let body = serde_urlencoded::to_string([
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "inventory-api"),
    ])
    .unwrap();
    let mut req = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth("orders-svc", Some(ORDERS_SECRET))
        .header("content-type", "application/x-www-form-urlencoded");
    for p in proofs {
        req = req.header("DPoP", *p);
    }
    req.body(body).send().await.unwrap()
}

#[tokio::test]
async fn a_valid_proof_binds_the_minted_token_to_its_key() {
    let app = TestApp::spawn().await;
    let key = TestKey::generate(Algorithm::ES256, "client-key");
    let resp = exchange(
        &app,
        &app.subject_token(json!({})),
        &[&proof(&key, json!({}))],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(claims_of(token)["cnf"], json!({"jkt": thumbprint(&key)}));
    let answer: Value = app
        .post_form(
            "/introspect",
            &[("token", token)],
            ("orders-svc", ORDERS_SECRET),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["cnf"]["jkt"], thumbprint(&key));
    let metadata: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        metadata["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
}

#[tokio::test]
async fn bad_proofs_are_refused_with_invalid_dpop_proof() {
    let app = TestApp::spawn().await;
    let key = TestKey::generate(Algorithm::ES256, "client-key");
    let subject = app.subject_token(json!({}));
    let mut private_jwk = key.jwk.clone();
    private_jwk["d"] = json!("c2VjcmV0");
    let base = json!({"jti": uuid_like(), "htm": "POST", "htu": ENDPOINT, "iat": now()});
    let mut untyped = Header::new(Algorithm::ES256);
    untyped.extras.insert("jwk", key.jwk.clone());
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong htu",
            proof(&key, json!({"htu": "https://sts.test.internal/other"})),
        ),
        ("wrong htm", proof(&key, json!({"htm": "GET"}))),
        ("stale iat", proof(&key, json!({"iat": now() - 120}))),
        ("future iat", proof(&key, json!({"iat": now() + 120}))),
        ("no jti", proof(&key, json!({"jti": ""}))),
        (
            "symmetric algorithm",
            proof_with(
                &key,
                Algorithm::HS256,
                json!({"kty": "oct", "k": "c2hhcmVk"}),
                base.clone(),
            ),
        ),
        (
            "private key in the header",
            proof_with(&key, Algorithm::ES256, private_jwk, base.clone()),
        ),
        (
            "a key that did not sign",
            proof_with(
                &key,
                Algorithm::ES256,
                TestKey::generate(Algorithm::ES256, "x").jwk,
                base.clone(),
            ),
        ),
        (
            "no typ",
            jsonwebtoken::encode(&untyped, &base, &key.encoding()).unwrap(),
        ),
        ("garbage", "garbage".into()),
    ];
    for (what, p) in cases {
        let desc = assert_error(
            exchange(&app, &subject, &[&p]).await,
            400,
            "invalid_dpop_proof",
        )
        .await;
        assert!(desc.contains("DPoP"), "{what}: {desc}");
    }
    let twice = proof(&key, json!({}));
    assert_eq!(exchange(&app, &subject, &[&twice]).await.status(), 200);
    let desc = assert_error(
        exchange(&app, &subject, &[&twice]).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(desc.contains("used before"), "replay: {desc}");
    let (a, b) = (proof(&key, json!({})), proof(&key, json!({})));
    assert_error(
        exchange(&app, &subject, &[&a, &b]).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
}

#[tokio::test]
async fn a_bound_subject_token_is_exchanged_only_with_a_proof_of_its_key() {
    let app = TestApp::spawn().await;
    let key = TestKey::generate(Algorithm::ES256, "holder");
    let other = TestKey::generate(Algorithm::ES256, "thief");
    let bound = app.subject_token(json!({"cnf": {"jkt": thumbprint(&key)}}));
    let desc = assert_error(exchange(&app, &bound, &[]).await, 400, "invalid_dpop_proof").await;
    assert!(desc.contains("cnf.jkt"), "{desc}");
    assert_error(
        exchange(&app, &bound, &[&proof(&other, json!({}))]).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    let resp = exchange(&app, &bound, &[&proof(&key, json!({}))]).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        thumbprint(&key)
    );
}

async fn delegate(
    app: &TestApp,
    subject: &str,
    actor: &str,
    proof: Option<&str>,
) -> reqwest::Response {
    let body = serde_urlencoded::to_string([
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("actor_token", actor),
        ("actor_token_type", ACCESS_TOKEN),
        ("audience", "delegated-api"),
    ])
    .unwrap();
    let mut req = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth("orders-svc", Some(ORDERS_SECRET))
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.body(body).send().await.unwrap()
}

#[tokio::test]
async fn a_bound_actor_token_is_accepted_only_with_a_proof_of_its_key() {
    let app = TestApp::spawn_with(|c| {
        c.append(
            r#"
[[rules]]
name = "delegated"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["delegated-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
actor = "token"
actors = [{ issuer = "corp", subject = "svc-batch" }]
"#,
        )
    })
    .await;
    let key = TestKey::generate(Algorithm::ES256, "actor-key");
    let other = TestKey::generate(Algorithm::ES256, "subject-key");
    let actor = app.subject_token(json!({"sub": "svc-batch", "cnf": {"jkt": thumbprint(&key)}}));
    let subject = app.subject_token(json!({}));
    let desc = assert_error(
        delegate(&app, &subject, &actor, None).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(desc.contains("actor token is bound"), "{desc}");
    assert_error(
        delegate(&app, &subject, &actor, Some(&proof(&other, json!({})))).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    let resp = delegate(&app, &subject, &actor, Some(&proof(&key, json!({})))).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP", "the binding is kept");
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["cnf"]["jkt"],
        thumbprint(&key)
    );
    // Subject and actor bound to different keys: refused whichever key is proved.
    let bound_subject = app.subject_token(json!({"cnf": {"jkt": thumbprint(&other)}}));
    for k in [&key, &other] {
        let desc = assert_error(
            delegate(&app, &bound_subject, &actor, Some(&proof(k, json!({})))).await,
            400,
            "invalid_dpop_proof",
        )
        .await;
        assert!(desc.contains("different keys"), "{desc}");
    }
    // A confirmation method Tessera cannot check.
    let x5t = app.subject_token(json!({"sub": "svc-batch", "cnf": {"x5t#S256": "abc"}}));
    let desc = assert_error(
        delegate(&app, &subject, &x5t, None).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("confirmation method"), "{desc}");
}

#[tokio::test]
async fn a_proof_jti_is_bounded_in_length() {
    let app = TestApp::spawn().await;
    let key = TestKey::generate(Algorithm::ES256, "client-key");
    let long = proof(&key, json!({"jti": "j".repeat(65)}));
    let desc = assert_error(
        exchange(&app, &app.subject_token(json!({})), &[&long]).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(desc.contains("64 bytes"), "{desc}");
    let ok = proof(&key, json!({"jti": "j".repeat(64)}));
    assert_eq!(
        exchange(&app, &app.subject_token(json!({})), &[&ok])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_ed25519_proof_is_accepted_by_its_fully_specified_name() {
    let app = TestApp::spawn().await;
    let key = TestKey::generate(Algorithm::EdDSA, "ed-key");
    let claims = json!({"jti": uuid_like(), "htm": "POST", "htu": ENDPOINT, "iat": now()});
    let named = key.sign_named(
        "Ed25519",
        json!({"typ": "dpop+jwt", "jwk": key.jwk}),
        &claims,
    );
    let resp = exchange(&app, &app.subject_token(json!({})), &[&named]).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let metadata: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    for field in [
        "dpop_signing_alg_values_supported",
        "token_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
    ] {
        let list = metadata[field].as_array().unwrap();
        assert!(
            list.contains(&json!("Ed25519")) && list.contains(&json!("EdDSA")),
            "{field}"
        );
    }
    assert_eq!(metadata["response_types_supported"], json!(["none"]));
    for field in [
        "introspection_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
    ] {
        assert!(
            metadata[field]
                .as_array()
                .unwrap()
                .contains(&json!("private_key_jwt"))
        );
    }
}
