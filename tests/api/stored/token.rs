use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn token_exchanges_a_valid_subject_token_for_a_downscoped_token() {
    let app = TestApp::spawn().await;
    let subject = app.subject_token(json!({}));
    let resp = app.exchange_subject(&subject).await;
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(headers.contains_key("x-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "inventory:read");
    assert!(body.get("refresh_token").is_none());

    // The minted token verifies against the published JWKS and says what was granted.
    let token = body["access_token"].as_str().unwrap();
    let jwks: JwkSet = app.get("/jwks.json").await.json().await.unwrap();
    let header = header_of(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let jwk = jwks
        .find(header["kid"].as_str().unwrap())
        .expect("kid published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["inventory-api"]);
    validation.set_issuer(&[STS]);
    let verified =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap();
    let c = verified.claims;
    assert_eq!(c["sub"], "alice");
    assert_eq!(c["aud"], "inventory-api");
    assert_eq!(c["client_id"], "orders-svc");
    assert_eq!(c["scope"], "inventory:read");
    assert_eq!(c["act"], json!({"sub": "orders-svc"}));
    assert_eq!(c["email"], "alice@example.com");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 300);
    assert!(c["jti"].as_str().unwrap().len() >= 16);
}

#[tokio::test]
async fn token_grants_requested_scopes_and_resources_within_the_rule() {
    let app = TestApp::spawn().await;
    let subject = app.subject_token(json!({}));
    let resp = app
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "inventory-api"),
            ("resource", "https://inventory.internal/"),
            ("scope", "inventory:write inventory:read"),
            (
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:jwt",
            ),
        ])
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "inventory:write inventory:read");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    let c = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        c["aud"],
        json!(["inventory-api", "https://inventory.internal/"])
    );
}

#[tokio::test]
async fn token_accepts_client_secret_post() {
    let app = TestApp::spawn().await;
    let subject = app.subject_token(json!({}));
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "inventory-api"),
        ("client_id", "orders-svc"),
        ("client_secret", ORDERS_SECRET),
    ];
    assert_eq!(app.post_token(&form, None).await.status(), 200);
}

#[tokio::test]
async fn token_lifetime_never_exceeds_the_subject_tokens() {
    let app = TestApp::spawn().await;
    let subject = app.subject_token(json!({"exp": now() + 42}));
    let body: Value = app.exchange_subject(&subject).await.json().await.unwrap();
    let exp = body["expires_in"].as_i64().unwrap();
    assert!((40..=42).contains(&exp), "expires_in {exp}");
}

#[tokio::test]
async fn token_nests_an_existing_actor_chain() {
    let app = TestApp::spawn().await;
    let subject = app.subject_token(json!({"act": {"sub": "gateway"}}));
    let body: Value = app.exchange_subject(&subject).await.json().await.unwrap();
    let c = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        c["act"],
        json!({"sub": "orders-svc", "act": {"sub": "gateway"}})
    );
}

#[tokio::test]
async fn token_answers_each_error_of_the_contract() {
    let app = TestApp::spawn().await;
    let s = app.subject_token(json!({}));
    let base = |extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, String)> = vec![
            ("grant_type", TOKEN_EXCHANGE.into()),
            ("subject_token", s.clone()),
            ("subject_token_type", ACCESS_TOKEN.into()),
            ("audience", "inventory-api".into()),
        ];
        for (k, v) in extra {
            f.retain(|(name, _)| name != k || *k == "audience");
            if !v.is_empty() {
                f.push((k, v.to_string()));
            }
        }
        f
    };
    let jwt = "urn:ietf:params:oauth:token-type:jwt";
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "another grant type",
            base(&[("grant_type", "client_credentials")]),
            400,
            "unsupported_grant_type",
        ),
        (
            "no grant type",
            base(&[("grant_type", "")]),
            400,
            "invalid_request",
        ),
        (
            "no subject token",
            base(&[("subject_token", "")]),
            400,
            "invalid_request",
        ),
        (
            "no subject token type",
            base(&[("subject_token_type", "")]),
            400,
            "invalid_request",
        ),
        (
            "unknown token type",
            base(&[("subject_token_type", "urn:example:bearer")]),
            400,
            "invalid_request",
        ),
        (
            "saml subject",
            base(&[(
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:saml2",
            )]),
            400,
            "invalid_request",
        ),
        (
            "refresh token requested",
            base(&[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )]),
            400,
            "invalid_request",
        ),
        (
            "actor token without type",
            base(&[("actor_token", "x")]),
            400,
            "invalid_request",
        ),
        (
            "actor type without token",
            base(&[("actor_token_type", jwt)]),
            400,
            "invalid_request",
        ),
        (
            "no target",
            base(&[("audience", "")])
                .into_iter()
                .filter(|(k, _)| *k != "audience")
                .collect(),
            400,
            "invalid_request",
        ),
        (
            "unknown audience",
            base(&[("audience", "billing-api")]),
            400,
            "invalid_target",
        ),
        (
            "unknown resource",
            base(&[("resource", "https://billing.internal/")]),
            400,
            "invalid_target",
        ),
        (
            "scope beyond the rule",
            base(&[("scope", "inventory:admin")]),
            400,
            "invalid_scope",
        ),
    ];
    for (what, form, status, code) in cases {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let desc = assert_error(app.exchange(&form).await, status, code).await;
        assert!(
            !desc.contains(&s),
            "{what}: the description echoes the token"
        );
        assert!(!desc.is_empty(), "{what}: no description");
    }
    let mut repeated = base(&[]);
    repeated.push(("scope", "inventory:read".into()));
    repeated.push(("scope", "inventory:write".into()));
    let form: Vec<(&str, &str)> = repeated.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let desc = assert_error(app.exchange(&form).await, 400, "invalid_request").await;
    assert!(desc.contains("scope"), "{desc}");
}

#[tokio::test]
async fn token_refuses_bad_bodies_and_content_types() {
    let app = TestApp::spawn().await;
    let url = format!("{}/token", app.url);
    let basic = ("orders-svc", Some(ORDERS_SECRET));
    let json_body = app
        .http
        .post(&url)
        .basic_auth(basic.0, basic.1)
        .json(&json!({"grant_type": TOKEN_EXCHANGE}))
        .send()
        .await
        .unwrap();
    assert_error(json_body, 400, "invalid_request").await;
    let malformed = app
        .http
        .post(&url)
        .basic_auth(basic.0, basic.1)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=%zz&subject_token=%ff%fe")
        .send()
        .await
        .unwrap();
    assert_error(malformed, 400, "invalid_request").await;
    let huge = format!(
        "grant_type={TOKEN_EXCHANGE}&subject_token={}",
        "a".repeat(9000)
    );
    let too_large = app
        .http
        .post(&url)
        .basic_auth(basic.0, basic.1)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_error(too_large, 413, "invalid_request").await;
    let get = app.get("/token").await;
    assert_eq!(get.status(), 405);
    assert!(
        get.headers().get("x-request-id").is_none(),
        "a 405 is not an exchange"
    );
}

#[tokio::test]
async fn token_authenticates_clients_with_exactly_one_method() {
    let app = TestApp::spawn().await;
    let s = app.subject_token(json!({}));
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", s.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "inventory-api"),
    ];
    let none = app.post_token(&form, None).await;
    assert!(none.headers().contains_key("www-authenticate"));
    assert_error(none, 401, "invalid_client").await;

    let wrong = app.post_token(&form, Some(("orders-svc", "wrong"))).await;
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_error(wrong, 401, "invalid_client").await;
    assert_error(
        app.post_token(&form, Some(("stranger", "x"))).await,
        401,
        "invalid_client",
    )
    .await;

    let mut post = form.to_vec();
    post.extend([("client_id", "orders-svc"), ("client_secret", "wrong")]);
    let wrong_post = app.post_token(&post, None).await;
    assert!(!wrong_post.headers().contains_key("www-authenticate"));
    assert_error(wrong_post, 401, "invalid_client").await;

    let mut both = form.to_vec();
    both.extend([
        ("client_id", "orders-svc"),
        ("client_secret", ORDERS_SECRET),
    ]);
    assert_error(
        app.post_token(&both, Some(("orders-svc", ORDERS_SECRET)))
            .await,
        400,
        "invalid_request",
    )
    .await;

    let unnamed = app
        .post_token(&form, Some(("billing-svc", "billing-secret")))
        .await;
    assert_error(unnamed, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn token_applies_the_scope_math_of_the_rule() {
    let app = TestApp::spawn().await;
    let exchange = |subject: String, scope: Option<&'static str>| {
        let app = &app;
        async move {
            let mut form = vec![
                ("grant_type", TOKEN_EXCHANGE.to_string()),
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN.to_string()),
                ("audience", "inventory-api".to_string()),
            ];
            if let Some(scope) = scope {
                form.push(("scope", scope.to_string()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.exchange(&form).await
        }
    };
    // The subject does not carry write: intersect mode refuses it, naming it.
    let read_only = app.subject_token(json!({"scope": "inventory:read"}));
    let desc = assert_error(
        exchange(read_only.clone(), Some("inventory:write")).await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(desc.contains("inventory:write"), "{desc}");
    // Nothing requested: the default scope, when the subject carries it.
    let body: Value = exchange(read_only, None).await.json().await.unwrap();
    assert_eq!(body["scope"], "inventory:read");
    // Nothing requested and the subject carries no default scope: no token without a scope.
    let write_only = app.subject_token(json!({"scope": "inventory:write"}));
    assert_error(exchange(write_only, None).await, 400, "invalid_scope").await;
    // Scopes from `scp` (a list) count too.
    let scp =
        app.subject_token(json!({"scope": null, "scp": ["inventory:read", "inventory:write"]}));
    assert_eq!(exchange(scp, Some("inventory:write")).await.status(), 200);
}

#[tokio::test]
async fn token_follows_rule_order_and_required_scopes() {
    let app = TestApp::spawn_with(|c| {
        c.rules.insert(
            0,
            entry(
                r#"
name = "needs-exchange-scope"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["inventory-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
require_scopes = ["exchange"]
ttl = "1m"
"#,
            ),
        )
    })
    .await;
    let with = app.subject_token(json!({"scope": "exchange inventory:read"}));
    let body: Value = app.exchange_subject(&with).await.json().await.unwrap();
    assert_eq!(body["expires_in"], 60, "the first rule applies");
    let without = app.subject_token(json!({}));
    let body: Value = app.exchange_subject(&without).await.json().await.unwrap();
    assert_eq!(body["expires_in"], 300, "the second rule applies");
    let records = app.records(&["--limit", "2"]);
    assert_eq!(records[0]["rule"], "orders-to-inventory");
    assert_eq!(records[1]["rule"], "needs-exchange-scope");
}

#[tokio::test]
async fn token_re_exchanges_a_token_this_server_minted() {
    let app = TestApp::spawn_with(|c| {
        c.append(&format!(
            r#"
[[issuers]]
id = "tessera"
issuer = "{STS}"
algorithms = ["ES256"]
audiences = ["inventory-api"]

[[rules]]
name = "inventory-to-stock"
clients = ["orders-svc"]
issuers = ["tessera"]
audiences = ["stock-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
actor = "client"
"#
        ))
    })
    .await;
    let first: Value = app
        .exchange_subject(&app.subject_token(json!({})))
        .await
        .json()
        .await
        .unwrap();
    let minted = first["access_token"].as_str().unwrap();
    let resp = app
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", minted),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "stock-api"),
        ])
        .await;
    assert_eq!(resp.status(), 200);
    let second: Value = resp.json().await.unwrap();
    let c = claims_of(second["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], "stock-api");
    assert_eq!(
        c["act"],
        json!({"sub": "orders-svc", "act": {"sub": "orders-svc"}})
    );
    assert!(c["exp"].as_i64() <= claims_of(minted)["exp"].as_i64());
    // The lineage: the second record names the first token as its subject.
    let first_jti = claims_of(minted)["jti"].as_str().unwrap().to_string();
    let lineage = app.records(&["--subject-jti", &first_jti]);
    assert_eq!(lineage.len(), 1);
    assert_eq!(lineage[0]["subject_issuer"], "tessera");
}

#[tokio::test]
async fn token_is_signed_with_each_supported_algorithm() {
    for alg in ["EdDSA", "RS256", "PS256"] {
        let keys = tempfile::tempdir().unwrap();
        let app = TestApp::spawn_with(|c| {
            let pem = tessera::keys::generate_pkcs8_pem(alg.parse().unwrap()).unwrap();
            let path = keys.path().join(format!("{alg}.pem"));
            std::fs::write(&path, pem).unwrap();
            let key = &mut c.signing.keys[0];
            key.alg = alg.into();
            key.private_key_file = path.display().to_string();
        })
        .await;
        let body: Value = app
            .exchange_subject(&app.subject_token(json!({})))
            .await
            .json()
            .await
            .unwrap();
        let token = body["access_token"].as_str().unwrap();
        assert_eq!(header_of(token)["alg"], alg);
        let jwks: jsonwebtoken::jwk::JwkSet = app.get("/jwks.json").await.json().await.unwrap();
        let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut validation = Validation::new(alg.parse().unwrap());
        validation.set_audience(&["inventory-api"]);
        assert!(
            jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok(),
            "{alg}"
        );
    }
}

#[tokio::test]
async fn token_limits_a_clients_rate_without_recording_each_refusal() {
    let app = TestApp::spawn_with(|c| {
        c.client_mut("orders-svc").rate_limit = Some(RawRateLimit {
            per_second: 1,
            burst: 2,
        });
    })
    .await;
    let subject = app.subject_token(json!({}));
    // A burst of 2 at 1/s: however slow this machine, ten quick requests meet a refusal.
    let mut granted = 0;
    let mut limited = None;
    for _ in 0..10 {
        let resp = app.exchange_subject(&subject).await;
        if resp.status() == 200 {
            granted += 1;
        } else {
            limited = Some(resp);
            break;
        }
    }
    let limited = limited.expect("the rate limit answered");
    assert!(granted >= 2, "the burst passes");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let desc = assert_error(limited, 429, "temporarily_unavailable").await;
    assert!(desc.contains("rate limit"), "{desc}");
    // Another client has its own budget (none here: unlimited).
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "inventory-api"),
    ];
    let other = app
        .post_token(&form, Some(("billing-svc", "billing-secret")))
        .await;
    assert_eq!(
        other.status(),
        400,
        "billing-svc is limited by nothing but its rules"
    );
    assert_eq!(
        app.records(&["--client", "orders-svc"]).len(),
        granted,
        "refusals for rate are not recorded one by one"
    );
}

#[tokio::test]
async fn an_untrusted_issuer_is_named_with_the_trusted_one_it_resembles() {
    let app = TestApp::spawn().await;
    let slash = format!("{}/", app.idp.url);
    let token = app.subject_token(json!({ "iss": slash }));
    let desc = assert_error(app.exchange_subject(&token).await, 400, "invalid_request").await;
    assert!(desc.contains(&format!("iss \"{slash}\"")), "{desc}");
    assert!(
        desc.contains(&format!("did you mean \"{}\"", app.idp.url)),
        "{desc}"
    );
    let record = &app.records(&["--limit", "1"])[0];
    assert_eq!(
        record["subject_issuer"],
        slash.as_str(),
        "the record keeps the presented iss"
    );
    let stranger = app.subject_token(json!({ "iss": "https://evil.example/\u{202e}x" }));
    let desc = assert_error(
        app.exchange_subject(&stranger).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("https://evil.example/"), "{desc}");
    assert!(!desc.contains("did you mean"), "{desc}");
}

/// Lifetimes are judged at the server's clock, and a minted token and its record carry its
/// time: a server an hour ahead refuses a token with ten minutes left, and takes it once its
/// clock is set back.
#[tokio::test]
async fn a_server_judges_lifetimes_and_stamps_tokens_by_its_clock() {
    use tessera::clock::{Clock, UnixTime};
    let clock = Clock::fixed(UnixTime::from_secs(now() + 3_600));
    let app = TestApp::start_with_clock(clock.clone(), |_| {}).await;
    app.wait_ready().await;
    let subject = app.subject_token(json!({}));
    let desc = assert_error(app.exchange_subject(&subject).await, 400, "invalid_request").await;
    assert!(desc.contains("expired"), "{desc}");

    let at = now() + 60;
    clock.set(UnixTime::from_secs(at));
    let resp = app.exchange_subject(&subject).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["iat"], at);
    assert_eq!(body["expires_in"], claims["exp"].as_i64().unwrap() - at);
    let record = &app.records(&["--outcome", "granted"])[0];
    assert!(
        record["time"]
            .as_str()
            .unwrap()
            .starts_with(&tessera::clock::format_secs(at)[..19]),
        "{record}"
    );
}
