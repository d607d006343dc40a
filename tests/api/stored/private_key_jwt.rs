//! private_key_jwt client authentication (RFC 7523).

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::helpers::*;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A config whose `keyed-svc` client authenticates with keys served by `jwks_url`.
fn with_keyed_client(c: &mut RawConfig, jwks_url: &str) {
    let keyed = format!(
        r#"
id = "keyed-svc"
jwks_uri = "{jwks_url}"
"#
    );
    c.clients.insert(0, entry(&keyed));
    c.rule_mut("orders-to-inventory")
        .clients
        .push("keyed-svc".into());
}

fn assertion(key: &TestKey, extra: Value) -> String {
    let mut claims = json!({"iss": "keyed-svc", "sub": "keyed-svc", "aud": format!("{STS}/token"), "exp": now() + 60, "iat": now(), "jti": uuid_like()});
    if let (Some(c), Value::Object(e)) = (claims.as_object_mut(), extra) {
        for (k, v) in e {
            if v.is_null() {
                c.remove(&k);
            } else {
                c.insert(k, v);
            }
        }
    }
    key.sign(&claims)
}

async fn exchange(
    app: &TestApp,
    client_assertion: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let subject = app.subject_token(json!({}));
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "inventory-api"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", client_assertion),
    ];
    form.extend_from_slice(extra);
    app.post_token(&form, None).await
}

#[tokio::test]
async fn a_client_authenticates_with_a_signed_assertion() {
    let key = TestKey::generate(Algorithm::ES256, "client-1");
    let client_idp = TestIdp::start(&[&key]).await;
    let url = format!("{}/jwks", client_idp.url);
    let app = TestApp::spawn_with(|c| with_keyed_client(c, &url)).await;
    // A client's keys are fetched in the background, outside readiness: until they arrive its
    // assertions get 503, which a loaded machine can make last a moment.
    let mut once = assertion(&key, json!({}));
    let mut resp = exchange(&app, &once, &[("client_id", "keyed-svc")]).await;
    for _ in 0..50 {
        if resp.status() != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        once = assertion(&key, json!({}));
        resp = exchange(&app, &once, &[("client_id", "keyed-svc")]).await;
    }
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["client_id"],
        "keyed-svc"
    );
    let record = &app.records(&["--limit", "1"])[0];
    assert_eq!(record["client_id"], "keyed-svc");
    // The same assertion again is a replay.
    let desc = assert_error(exchange(&app, &once, &[]).await, 401, "invalid_client").await;
    assert!(desc.contains("used before"), "{desc}");
    // aud may also be the issuer, as a string or in an array.
    assert_eq!(
        exchange(&app, &assertion(&key, json!({"aud": STS})), &[])
            .await
            .status(),
        200
    );
    assert_eq!(
        exchange(&app, &assertion(&key, json!({"aud": ["x", STS]})), &[])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn bad_assertions_do_not_authenticate() {
    let key = TestKey::generate(Algorithm::ES256, "client-1");
    let stranger = TestKey::generate(Algorithm::ES256, "client-2");
    let client_idp = TestIdp::start(&[&key]).await;
    let url = format!("{}/jwks", client_idp.url);
    let app = TestApp::spawn_with(|c| with_keyed_client(c, &url)).await;
    // The client's keys arrive in the background, outside readiness: until then an assertion
    // gets 503, whatever is wrong with it.
    for _ in 0..200 {
        if exchange(&app, &assertion(&key, json!({})), &[])
            .await
            .status()
            != 503
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let cases: Vec<(&str, String)> = vec![
        ("wrong aud", assertion(&key, json!({"aud": "https://elsewhere/token"}))),
        ("expired", assertion(&key, json!({"exp": now() - 120}))),
        ("too long-lived", assertion(&key, json!({"exp": now() + 3600}))),
        ("no jti", assertion(&key, json!({"jti": null}))),
        ("sub is another client", assertion(&key, json!({"sub": "orders-svc"}))),
        ("an unknown key", assertion(&stranger, json!({}))),
        ("a client with a secret", assertion(&key, json!({"iss": "orders-svc", "sub": "orders-svc"}))),
        (
            "HS256",
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(Algorithm::HS256),
                &json!({"iss": "keyed-svc", "sub": "keyed-svc", "aud": format!("{STS}/token"), "exp": now() + 60, "jti": "h"}),
                &jsonwebtoken::EncodingKey::from_secret(b"shared"),
            )
            .unwrap(),
        ),
        ("garbage", "garbage".into()),
    ];
    for (what, a) in cases {
        let resp = exchange(&app, &a, &[]).await;
        assert_eq!(resp.status(), 401, "{what}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{what}: {body}");
    }
    let desc = assert_error(
        exchange(
            &app,
            &assertion(&key, json!({})),
            &[("client_id", "orders-svc")],
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    assert!(desc.contains("client_id"), "{desc}");
    let wrong_type = app
        .post_token(
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("client_assertion_type", "urn:other"),
                ("client_assertion", "a.b.c"),
            ],
            None,
        )
        .await;
    assert_error(wrong_type, 401, "invalid_client").await;
}

#[tokio::test]
async fn an_assertion_is_single_use_for_as_long_as_it_is_accepted() {
    let key = TestKey::generate(Algorithm::ES256, "client-1");
    let client_idp = TestIdp::start(&[&key]).await;
    let url = format!("{}/jwks", client_idp.url);
    // A short retention prunes expired single-use identifiers every second.
    let app = TestApp::spawn_with(|c| {
        with_keyed_client(c, &url);
        c.storage.retention = Some("4s".into());
    })
    .await;
    let mut once = assertion(&key, json!({"exp": now() + 2}));
    let mut resp = exchange(&app, &once, &[]).await;
    for _ in 0..50 {
        if resp.status() != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        once = assertion(&key, json!({"exp": now() + 2}));
        resp = exchange(&app, &once, &[]).await;
    }
    assert_eq!(resp.status(), 200);
    // Past its exp, but within the 30 s leeway that still accepts it, and after pruning ran.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let desc = assert_error(exchange(&app, &once, &[]).await, 401, "invalid_client").await;
    assert!(desc.contains("used before"), "{desc}");
}

#[tokio::test]
async fn long_lived_assertions_need_max_assertion_lifetime() {
    let key = TestKey::generate(Algorithm::ES256, "client-1");
    let client_idp = TestIdp::start(&[&key]).await;
    let url = format!("{}/jwks", client_idp.url);
    let app = TestApp::spawn_with(|c| with_keyed_client(c, &url)).await;
    let hour = assertion(&key, json!({"exp": now() + 3600}));
    let mut resp = exchange(&app, &hour, &[]).await;
    for _ in 0..50 {
        if resp.status() != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        resp = exchange(&app, &assertion(&key, json!({"exp": now() + 3600})), &[]).await;
    }
    let desc = assert_error(resp, 401, "invalid_client").await;
    assert!(desc.contains("server.max_assertion_lifetime"), "{desc}");
    assert!(desc.contains("10m"), "{desc}");
    // A platform team allows an hour knowingly (Authlib's default).
    let app = TestApp::spawn_with(|c| {
        with_keyed_client(c, &url);
        c.server.max_assertion_lifetime = Some("1h".into());
    })
    .await;
    let mut status = 503;
    for _ in 0..50 {
        status = exchange(&app, &assertion(&key, json!({"exp": now() + 3590})), &[])
            .await
            .status()
            .as_u16();
        if status != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_ed25519_assertion_is_accepted_by_its_fully_specified_name() {
    let key = TestKey::generate(Algorithm::EdDSA, "client-ed");
    let client_idp = TestIdp::start(&[&key]).await;
    let url = format!("{}/jwks", client_idp.url);
    let app = TestApp::spawn_with(|c| with_keyed_client(c, &url)).await;
    let named = || {
        let claims = json!({"iss": "keyed-svc", "sub": "keyed-svc", "aud": format!("{STS}/token"), "exp": now() + 60, "iat": now(), "jti": uuid_like()});
        key.sign_named("Ed25519", json!({"kid": "client-ed"}), &claims)
    };
    let mut status = 503;
    for _ in 0..50 {
        status = exchange(&app, &named(), &[]).await.status().as_u16();
        if status != 503 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
}
