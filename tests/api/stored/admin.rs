//! The admin API: authentication, the audit query with its filters and paging, revocation.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn admin_api_requires_the_admin_token() {
    let app = TestApp::spawn().await;
    let url = format!("{}/admin/exchanges", app.admin_url);
    let none = app.http.get(&url).send().await.unwrap();
    assert!(
        none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_error(none, 401, "invalid_token").await;
    let wrong = app
        .http
        .get(&url)
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_error(wrong, 401, "invalid_token").await;
    let basic = app
        .http
        .get(&url)
        .basic_auth("admin", Some(ADMIN_TOKEN))
        .send()
        .await
        .unwrap();
    assert_error(basic, 401, "invalid_token").await;
    let revoke = app
        .http
        .post(format!("{}/admin/revoke", app.admin_url))
        .json(&json!({"jti": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(revoke, 401, "invalid_token").await;
    assert_eq!(app.admin_get("/admin/exchanges").await.status(), 200);
    // Never on the public listener.
    assert_eq!(app.get("/admin/exchanges").await.status(), 404);
}

#[tokio::test]
async fn admin_exchanges_filter_like_the_cli() {
    let app = TestApp::spawn().await;
    let alice = app.subject_token(json!({"jti": "alice-subject"}));
    assert_eq!(app.exchange_subject(&alice).await.status(), 200);
    assert_eq!(
        app.exchange_subject(&app.subject_token(json!({"sub": "bob"})))
            .await
            .status(),
        200
    );
    app.exchange(&[
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", &alice),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "billing-api"),
    ])
    .await;
    let all: Value = app
        .admin_get("/admin/exchanges")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    assert_eq!(all["next_cursor"], Value::Null);
    let first = &all["items"][0];
    assert_eq!(first["error"], "invalid_target");
    assert!(first["requested_audiences"].is_array() && first["granted_scopes"].is_array());
    let jti = all["items"][1]["token_jti"].as_str().unwrap().to_string();
    let cases: Vec<(String, usize)> = vec![
        ("subject=alice".into(), 2),
        ("client=orders-svc".into(), 3),
        ("issuer=corp".into(), 3),
        ("audience=billing-api".into(), 1),
        ("rule=orders-to-inventory".into(), 2),
        ("outcome=denied".into(), 1),
        ("error=invalid_target".into(), 1),
        (format!("jti={jti}"), 1),
        ("subject_jti=alice-subject".into(), 2),
        ("since=1h".into(), 3),
        ("until=2000-01-01T00:00:00Z".into(), 0),
        ("subject=alice&outcome=granted".into(), 1),
    ];
    for (query, expected) in cases {
        let page: Value = app
            .admin_get(&format!("/admin/exchanges?{query}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            page["items"].as_array().map(Vec::len),
            Some(expected),
            "{query}: {page}"
        );
    }
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "cursor=bogus",
        "outcome=maybe",
        "since=tomorrowish",
        "colour=blue",
        "subject=a&subject=b",
    ] {
        assert_error(
            app.admin_get(&format!("/admin/exchanges?{bad}")).await,
            400,
            "invalid_request",
        )
        .await;
    }
}

#[tokio::test]
async fn admin_exchanges_page_without_duplicates_or_gaps_while_records_arrive() {
    let app = TestApp::spawn().await;
    for i in 0..25 {
        let token = app.subject_token(json!({"sub": format!("u{i}")}));
        assert_eq!(app.exchange_subject(&token).await.status(), 200);
    }
    let before: Vec<String> = app
        .records(&[])
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            None => "/admin/exchanges?limit=10".to_string(),
            Some(c) => format!("/admin/exchanges?limit=10&cursor={c}"),
        };
        let page: Value = app.admin_get(&query).await.json().await.unwrap();
        pages += 1;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        // New records arrive between pages.
        assert_eq!(
            app.exchange_subject(&app.subject_token(json!({"sub": "late"})))
                .await
                .status(),
            200
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, before, "every record once, newest first");
}

/// A configuration where minted tokens can be exchanged again twice: for stock-api, then shelf-api.
fn with_hops(c: &mut RawConfig) {
    c.append(&format!(
        r#"
[[issuers]]
id = "tessera"
issuer = "{STS}"
algorithms = ["ES256"]
audiences = ["inventory-api", "stock-api"]

[[rules]]
name = "hops"
clients = ["orders-svc"]
issuers = ["tessera"]
audiences = ["stock-api", "shelf-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]

[[clients]]
id = "inventory-api"
secret_sha256 = "{}"
"#,
        tessera::clients::sha256_hex("inventory-secret")
    ));
}

async fn re_exchange(app: &TestApp, token: &str, audience: &str) -> reqwest::Response {
    app.exchange(&[
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", token),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", audience),
    ])
    .await
}

async fn introspect(app: &TestApp, token: &str, client: (&str, &str)) -> Value {
    let resp = app
        .post_form("/introspect", &[("token", token)], client)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    resp.json().await.unwrap()
}

const ORDERS: (&str, &str) = ("orders-svc", ORDERS_SECRET);
const INVENTORY: (&str, &str) = ("inventory-api", "inventory-secret");
const BILLING: (&str, &str) = ("billing-svc", "billing-secret");

#[tokio::test]
async fn introspection_answers_for_the_client_and_the_audience_only() {
    let app = TestApp::spawn_with(with_hops).await;
    let token = app.minted(json!({})).await;
    let answer = introspect(&app, &token, ORDERS).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["sub"], "alice");
    assert_eq!(answer["client_id"], "orders-svc");
    assert_eq!(answer["scope"], "inventory:read");
    assert_eq!(answer["aud"], "inventory-api");
    assert_eq!(answer["iss"], STS);
    assert_eq!(answer["token_type"], "Bearer");
    assert!(answer["exp"].is_i64() && answer["jti"].is_string());
    assert_eq!(
        introspect(&app, &token, INVENTORY).await["active"],
        true,
        "the audience may introspect"
    );
    assert_eq!(
        introspect(&app, &token, BILLING).await,
        json!({"active": false}),
        "another client learns nothing"
    );
    for not_ours in ["garbage", app.subject_token(json!({})).as_str()] {
        assert_eq!(
            introspect(&app, not_ours, ORDERS).await,
            json!({"active": false})
        );
    }
    assert_error(
        app.post_form("/introspect", &[], ORDERS).await,
        400,
        "invalid_request",
    )
    .await;
    assert_error(
        app.post_form("/introspect", &[("token", &token)], ("orders-svc", "wrong"))
            .await,
        401,
        "invalid_client",
    )
    .await;
}

#[tokio::test]
async fn an_expired_token_is_inactive() {
    let app = TestApp::spawn().await;
    let token = app.minted(json!({"exp": now() + 1})).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        introspect(&app, &token, ORDERS).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn revocation_by_the_client_deactivates_the_token_and_its_lineage() {
    let app = TestApp::spawn_with(with_hops).await;
    let first = app.minted(json!({})).await;
    let second: Value = re_exchange(&app, &first, "stock-api")
        .await
        .json()
        .await
        .unwrap();
    let second = second["access_token"].as_str().unwrap().to_string();
    let third: Value = re_exchange(&app, &second, "shelf-api")
        .await
        .json()
        .await
        .unwrap();
    let third = third["access_token"].as_str().unwrap().to_string();
    let unrelated = app.minted(json!({})).await;

    // Another client's revocation changes nothing.
    assert_eq!(
        app.post_form("/revoke", &[("token", &first)], BILLING)
            .await
            .status(),
        200
    );
    assert_eq!(introspect(&app, &first, ORDERS).await["active"], true);

    let resp = app
        .post_form(
            "/revoke",
            &[("token", &first), ("token_type_hint", "access_token")],
            ORDERS,
        )
        .await;
    assert_eq!(resp.status(), 200);
    for t in [&first, &second, &third] {
        assert_eq!(introspect(&app, t, ORDERS).await, json!({"active": false}));
    }
    assert_eq!(introspect(&app, &unrelated, ORDERS).await["active"], true);
    let desc = assert_error(
        re_exchange(&app, &second, "shelf-api").await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("revoked"), "{desc}");
    let revoked = app
        .records(&["--outcome", "granted"])
        .iter()
        .filter(|r| r["revoked_at"].is_string())
        .count();
    assert_eq!(revoked, 3);
    // Unknown and foreign tokens are not an error (RFC 7009 §2.2).
    assert_eq!(
        app.post_form("/revoke", &[("token", "garbage")], ORDERS)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn admin_revocation_by_jti_subject_jti_and_subject() {
    let app = TestApp::spawn_with(with_hops).await;
    let by_jti = app.minted(json!({"sub": "carol"})).await;
    let child: Value = re_exchange(&app, &by_jti, "stock-api")
        .await
        .json()
        .await
        .unwrap();
    let child = child["access_token"].as_str().unwrap().to_string();
    let jti = claims_of(&by_jti)["jti"].as_str().unwrap().to_string();
    let resp: Value = app
        .admin_revoke(json!({"jti": jti}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["revoked"], 2, "the token and the one minted from it");
    assert_eq!(introspect(&app, &child, ORDERS).await["active"], false);

    let subject = app.subject_token(json!({"sub": "dave", "jti": "dave-session"}));
    for _ in 0..2 {
        assert_eq!(app.exchange_subject(&subject).await.status(), 200);
    }
    let resp: Value = app
        .admin_revoke(json!({"subject_jti": "dave-session"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["revoked"], 2);

    let erin = app.minted(json!({"sub": "erin"})).await;
    let resp: Value = app
        .admin_revoke(json!({"issuer": app.idp.url, "subject": "erin"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["revoked"], 1, "the issuer named by its URL");
    assert_eq!(introspect(&app, &erin, ORDERS).await["active"], false);
    let resp: Value = app
        .admin_revoke(json!({"issuer": "corp", "subject": "nobody"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["revoked"], 0);

    for bad in [
        json!({}),
        json!({"jti": "a", "subject_jti": "b"}),
        json!({"issuer": "corp"}),
        json!({"jti": 5}),
        json!({"token": "x"}),
    ] {
        assert_error(app.admin_revoke(bad).await, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn metrics_count_exchanges_audit_commits_and_key_fetches() {
    let app = TestApp::spawn().await;
    app.minted(json!({})).await;
    app.exchange(&[("grant_type", "password")]).await;
    let form = [("grant_type", TOKEN_EXCHANGE)];
    app.post_token(&form, Some(("mallory-made-this-up", "x")))
        .await;
    let resp = app
        .http
        .get(format!("{}/metrics", app.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for expected in [
        "tessera_exchanges_total{outcome=\"granted\",error=\"\",client=\"orders-svc\",rule=\"orders-to-inventory\",token_type=\"access_token\"} 1",
        "tessera_exchanges_total{outcome=\"denied\",error=\"unsupported_grant_type\",client=\"unknown\",rule=\"\",token_type=\"access_token\"} 1",
        "tessera_exchanges_total{outcome=\"denied\",error=\"invalid_client\",client=\"unknown\",rule=\"\",token_type=\"access_token\"} 1",
        "tessera_exchange_duration_seconds_count 3",
        "tessera_audit_batch_records_count",
        "tessera_audit_commit_duration_seconds_bucket{le=\"+Inf\"}",
        "tessera_jwks_fetches_total{issuer=\"corp\",result=\"ok\"}",
        "tessera_issuer_keys_age_seconds{issuer=\"corp\"}",
    ] {
        assert!(text.contains(expected), "missing {expected} in:\n{text}");
    }
    assert!(
        !text.contains("mallory"),
        "request input never becomes a label"
    );
    assert_eq!(
        app.get("/metrics").await.status(),
        404,
        "not on the public listener"
    );
}
