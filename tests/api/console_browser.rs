//! The console in a real browser (SPEC §11): headless Chromium signs in through a real OpenID
//! provider (panva's oidc-provider), as an auditor and as an operator, and through the admin
//! token; every step of an audit and of a platform engineer's question is clicked through.
//! Skipped, with a printed line, when the browser harness is not installed (see
//! `tests/browser/install.sh`); `.ci/run` installs it and runs these.

use serde_json::{Value, json};

use crate::helpers::*;

/// Tessera on the admin port the provider sends people back to, trusting the provider for
/// console sign-in and itself for re-exchange (lineage).
async fn console_app(provider: &OidcProvider, port: u16) -> TestApp {
    let provider_url = provider.url.clone();
    TestApp::spawn_with(move |c| {
        c.admin.as_mut().unwrap().listen = format!("127.0.0.1:{port}");
        c.append(&format!(
            r#"
[[issuers]]
id = "sso"
issuer = "{provider_url}"
discovery = true
algorithms = ["RS256"]
audiences = ["{client}"]

[[issuers]]
id = "tessera"
issuer = "{STS}"
algorithms = ["ES256"]
audiences = ["inventory-api", "stock-api"]

[[rules]]
name = "hops"
clients = ["orders-svc"]
issuers = ["tessera"]
audiences = ["stock-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
"#,
            client = OidcProvider::CLIENT_ID,
        ));
        c.console = Some(entry(&format!(
            r#"
url = "http://127.0.0.1:{port}"
issuer = "sso"
client_id = "{}"
client_secret = "{}"
scopes = ["openid", "email", "groups"]
auditors = ["tessera-auditors"]
operators = ["tessera-operators"]
"#,
            OidcProvider::CLIENT_ID,
            OidcProvider::CLIENT_SECRET,
        )));
    })
    .await
}

/// Signs `login` in through the provider's pages, from the console's sign-in page.
async fn sign_in_with_provider(browser: &Browser, app: &TestApp, login: &str) {
    browser.goto(&format!("{}/console/", app.admin_url)).await;
    browser.wait_for_url_containing("/console/sign-in").await;
    browser.click("#sign-in-oidc").await;
    browser.fill("input[name=login]", login).await;
    browser.fill("input[name=password]", "any password").await;
    browser.click("#sign-in").await;
    browser.wait_for("#consent").await;
    browser.click("#consent").await;
    // The callback's page moves on to the console by itself.
    browser.wait_for_url_containing("/console/exchanges").await;
}

/// A token minted for `sub` and one re-exchanged from it; their record ids.
async fn chain_for(app: &TestApp, sub: &str) -> (String, String) {
    let first = app.minted(json!({ "sub": sub })).await;
    let resp = app
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &first),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "stock-api"),
        ])
        .await;
    assert_eq!(resp.status(), 200);
    let second = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let id = |token: &str| {
        let jti = claims_of(token)["jti"].as_str().unwrap().to_string();
        app.records(&["--jti", &jti]).pop().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    (id(&first), id(&second))
}

#[tokio::test]
async fn an_auditor_finds_a_users_tokens_follows_the_lineage_exports_and_verifies() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let port = unused_port();
    let provider = OidcProvider::start(&format!("http://127.0.0.1:{port}/console/callback")).await;
    let app = console_app(&provider, port).await;
    let (first_id, second_id) = chain_for(&app, "alice").await;
    chain_for(&app, "alice").await;
    app.minted(json!({ "sub": "bob" })).await;
    // Text an attacker chose, on a refused request: a client id and a user agent.
    let payload = r#"<img src=x onerror="document.body.setAttribute('data-pwned','1')">"#;
    let resp = app
        .http
        .post(format!("{}/token", app.url))
        .header("user-agent", payload)
        .basic_auth(payload, Some("x"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("grant_type", TOKEN_EXCHANGE)]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    sign_in_with_provider(&browser, &app, "alice").await;
    assert!(
        browser
            .text("header .who")
            .await
            .contains("alice@example.com · sso:alice (auditor)")
    );
    // The attacker's text is shown as text, and nothing of it ran.
    assert!(browser.source().await.contains("&lt;img src=x onerror="));
    assert!(!browser.exists("main table img").await);
    assert!(!browser.exists("body[data-pwned]").await);

    // Every token minted for alice in the last week, two a page.
    browser
        .fill("form.filters input[name=subject]", "alice")
        .await;
    browser
        .fill("form.filters input[name=outcome]", "granted")
        .await;
    browser.fill("form.filters input[name=since]", "7d").await;
    browser.fill("form.filters input[name=limit]", "2").await;
    browser.click("form.filters button").await;
    let url = browser.wait_for_url_containing("subject=alice").await;
    assert!(url.contains("since=7d"), "the search is in the URL: {url}");
    let rows = |html: String| html.matches("href=\"/console/exchanges/").count();
    let first_page = browser.source().await;
    assert_eq!(rows(first_page.clone()), 2, "{first_page}");
    browser.click(".pager a").await;
    browser.wait_for_url_containing("cursor=").await;
    let second_page = browser.source().await;
    assert_eq!(
        rows(second_page.clone()),
        2,
        "four tokens for alice: {second_page}"
    );
    assert!(browser.text(".pager").await.contains("No more records"));

    // A record, then its lineage: up to where its token came from.
    browser
        .goto(&format!("{}/console/exchanges/{second_id}", app.admin_url))
        .await;
    browser.wait_for("#lineage").await;
    assert!(browser.text("#lineage").await.contains("(this record)"));
    assert!(
        !browser.exists("form.revoke").await,
        "auditors never revoke"
    );
    browser
        .click(&format!("#lineage a[href='/console/exchanges/{first_id}']"))
        .await;
    browser
        .wait_for_url_containing(&format!("/console/exchanges/{first_id}"))
        .await;
    let tree = browser.text("#lineage").await;
    assert!(tree.contains("stock-api"), "and down again: {tree}");

    // Export the set: the links carry the search, and answer the session.
    let search = format!(
        "{}/console/exchanges?subject=alice&outcome=granted&since=7d",
        app.admin_url
    );
    browser.goto(&search).await;
    browser.wait_for("p.exports").await;
    let session = browser
        .cookies()
        .await
        .into_iter()
        .find(|c| c["name"] == "tessera_console")
        .expect("a session cookie");
    let csv_href = browser
        .source()
        .await
        .split("href=\"/console/exchanges.csv?")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSV link")
        .replace("&amp;", "&");
    let csv = reqwest::Client::new()
        .get(format!(
            "{}/console/exchanges.csv?{csv_href}",
            app.admin_url
        ))
        .header(
            "cookie",
            format!("tessera_console={}", session["value"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + 4,
        "a header and alice's four: {csv}"
    );

    // The chain, verified from the console.
    browser
        .goto(&format!("{}/console/verify", app.admin_url))
        .await;
    browser.click("main form button").await;
    browser
        .wait_for_text("main p.granted", "Audit chain intact")
        .await;
}

#[tokio::test]
async fn an_operator_revokes_reloads_and_learns_why_a_request_is_denied() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let port = unused_port();
    let provider = OidcProvider::start(&format!("http://127.0.0.1:{port}/console/callback")).await;
    let app = console_app(&provider, port).await;
    let (first_id, second_id) = chain_for(&app, "carol").await;

    sign_in_with_provider(&browser, &app, "olga").await;
    assert!(
        browser
            .text("header .who")
            .await
            .contains("olga@example.com · sso:olga (operator)")
    );

    // Revoke from the record, after confirming: the token and what was minted from it.
    browser
        .goto(&format!("{}/console/exchanges/{first_id}", app.admin_url))
        .await;
    browser.click("form.revoke button").await;
    browser.wait_for_text("main", "Yes, revoke").await;
    browser.click("main form button").await;
    browser
        .wait_for_url_containing(&format!("/console/exchanges/{first_id}"))
        .await;
    browser.wait_for_text("#lineage", "revoked").await;
    let revoked: Vec<Value> = app
        .records(&["--outcome", "granted"])
        .into_iter()
        .filter(|r| r["id"] == *first_id || r["id"] == *second_id)
        .collect();
    assert_eq!(revoked.len(), 2);
    assert!(
        revoked.iter().all(|r| r["revoked_at"].is_string()),
        "{revoked:?}"
    );
    browser
        .goto(&format!("{}/console/activity", app.admin_url))
        .await;
    let activity = browser.text("main").await;
    assert!(
        activity.contains("olga@example.com") && activity.contains("2 token(s) revoked"),
        "{activity}"
    );

    // Why was payroll-api refused? From the denied record, the request tried again against
    // the rules, the decision explained rule by rule.
    let subject = app.subject_token(json!({ "sub": "carol" }));
    let resp = app
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "payroll-api"),
        ])
        .await;
    assert_eq!(resp.status(), 400);
    let denied = app.records(&["--outcome", "denied"]).remove(0);
    browser
        .goto(&format!(
            "{}/console/exchanges/{}",
            app.admin_url,
            denied["id"].as_str().unwrap()
        ))
        .await;
    browser.click("#try-this").await;
    browser.wait_for_url_containing("/console/try").await;
    browser.click("form.try button").await;
    let decision = browser
        .wait_for_text("#decision", "result: denied: invalid_target")
        .await;
    assert!(
        decision.contains("rule 1 \"orders-to-inventory\": does not apply"),
        "{decision}"
    );

    // Reload, from the trust configuration page.
    browser
        .goto(&format!("{}/console/rules", app.admin_url))
        .await;
    browser.click("form.reload button").await;
    browser.wait_for_text("#reload-result", "reloaded").await;
}

#[tokio::test]
async fn the_admin_token_signs_in_in_a_browser_and_signing_out_ends_it() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::spawn().await;
    browser.goto(&format!("{}/console/", app.admin_url)).await;
    browser.wait_for_url_containing("/console/sign-in").await;
    assert!(
        !browser.exists("#sign-in-oidc").await,
        "no provider configured"
    );
    browser.fill("input[name=admin_token]", "not it").await;
    browser.click("form.sign-in button").await;
    browser
        .wait_for_text("main p.error", "not the admin token")
        .await;
    browser.fill("input[name=admin_token]", ADMIN_TOKEN).await;
    browser.click("form.sign-in button").await;
    browser.wait_for_url_containing("/console/exchanges").await;
    assert!(
        browser
            .text("header .who")
            .await
            .contains("admin token (operator)")
    );
    browser
        .goto(&format!("{}/console/overview", app.admin_url))
        .await;
    assert!(browser.exists("svg.chart").await);
    browser.click("header nav form button").await;
    browser.wait_for_url_containing("/console/sign-in").await;
    browser
        .goto(&format!("{}/console/exchanges", app.admin_url))
        .await;
    browser.wait_for_url_containing("/console/sign-in").await;
}
