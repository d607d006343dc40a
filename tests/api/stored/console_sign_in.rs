//! Console sign-in with the organisation's identity provider (SPEC §11): the authorization code
//! flow with PKCE against the test identity provider, over HTTP; roles from the ID token;
//! every way the way back can be wrong.

use serde_json::{Value, json};

use super::console::{browser, cookies, get, input_value};
use crate::helpers::*;

/// The console at `CONSOLE_URL` signs in with the test IdP (issuer `corp`), groups
/// `tessera-auditors` and `tessera-operators`.
const CONSOLE_URL: &str = "http://127.0.0.1:1";

fn with_sign_in(c: &mut RawConfig) {
    c.console = Some(entry(
        r#"
url = "http://127.0.0.1:1"
issuer = "corp"
client_id = "tessera-console"
client_secret = "console-secret"
scopes = ["openid", "email", "groups"]
auditors = ["tessera-auditors"]
operators = ["tessera-operators"]
"#,
    ));
}

/// One trip out to the provider and back, as a browser makes it; the callback's answer.
/// `tamper` may change the way back's query before it is sent.
async fn round_trip(app: &TestApp, tamper: impl FnOnce(&mut reqwest::Url)) -> reqwest::Response {
    let http = browser();
    let page = get(app, "/console/sign-in", "").await.text().await.unwrap();
    assert!(page.contains(r#"href="/console/sign-in/oidc""#), "{page}");
    let out = get(app, "/console/sign-in/oidc", "").await;
    assert_eq!(out.status(), 303);
    let (_, flow, full) = cookies(&out)
        .into_iter()
        .find(|(n, _, _)| n == "tessera_console_oidc")
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/console/callback"] {
        assert!(full.contains(attribute), "{full}");
    }
    let to = reqwest::Url::parse(out.headers()["location"].to_str().unwrap()).unwrap();
    let asked: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(to.path(), "/authorize");
    assert_eq!(
        asked["redirect_uri"],
        format!("{CONSOLE_URL}/console/callback")
    );
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["scope"], "openid email groups");
    assert!(asked["state"].len() >= 43 && asked["nonce"].len() >= 43);
    let back = http.get(to).send().await.unwrap();
    assert_eq!(back.status(), 302);
    let mut back = reqwest::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(CONSOLE_URL), "{back}");
    tamper(&mut back);
    http.get(format!(
        "{}/console/callback?{}",
        app.admin_url,
        back.query().unwrap_or("")
    ))
    .header("cookie", format!("tessera_console_oidc={flow}"))
    // The way back is the provider's navigation: another site.
    .header("sec-fetch-site", "cross-site")
    .send()
    .await
    .unwrap()
}

/// The session cookie a successful callback set.
fn session_of(resp: &reqwest::Response) -> String {
    let (_, value, _) = cookies(resp)
        .into_iter()
        .find(|(n, v, _)| n == "tessera_console" && !v.is_empty())
        .unwrap_or_else(|| panic!("no session: {:?}", resp.headers()));
    format!("tessera_console={value}")
}

fn person(app: &TestApp, claims: Value) {
    app.idp.sign_in_as(Some((&app.key, claims)));
}

#[tokio::test]
async fn an_auditor_signs_in_with_the_identity_provider_and_reads_but_never_revokes() {
    let app = TestApp::spawn_with(with_sign_in).await;
    let minted = app.minted(json!({})).await;
    let jti = claims_of(&minted)["jti"].as_str().unwrap().to_string();
    let id = app.records(&["--jti", &jti]).pop().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    person(
        &app,
        json!({"email": "alice@example.com", "groups": ["staff", "tessera-auditors"]}),
    );
    let back = round_trip(&app, |_| {}).await;
    assert_eq!(back.status(), 200);
    // A page that moves on by itself: a redirect would carry on the provider's cross-site
    // navigation, on which the SameSite=Strict session cookie is not sent.
    assert_eq!(back.headers()["refresh"], "0;url=/console/exchanges");
    let flow_cleared = cookies(&back).into_iter().any(|(n, v, full)| {
        n == "tessera_console_oidc" && v.is_empty() && full.contains("Max-Age=0")
    });
    assert!(flow_cleared);
    let session = session_of(&back);
    let page = get(&app, "/console/exchanges", &session).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("alice@example.com · corp:person-1 (auditor)"),
        "{page}"
    );
    let csrf = input_value(&page, "csrf");
    // Reading, exporting and verifying are an auditor's; revoking is not.
    let detail = get(&app, &format!("/console/exchanges/{id}"), &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        detail.contains(&jti) && !detail.contains("/revoke\""),
        "{detail}"
    );
    let csv = get(&app, "/console/exchanges.csv", &session).await;
    assert_eq!(csv.status(), 200);
    let refused = browser()
        .post(format!("{}/console/exchanges/{id}/revoke", app.admin_url))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("csrf", csrf.as_str()), ("confirm", "yes")]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(app.records(&["--jti", &jti])[0]["revoked_at"].is_null());
    let rules = get(&app, "/console/rules", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(!rules.contains("/console/reload"), "{rules}");
    let reload = super::console::post(&app, "/console/reload", &session, &[("csrf", &csrf)]).await;
    assert_eq!(reload.status(), 403);
}

#[tokio::test]
async fn an_operator_is_named_by_the_configured_claim_and_revokes_as_themselves() {
    let app = TestApp::spawn_with(|c| {
        with_sign_in(c);
        let console = c.console.as_mut().unwrap();
        console.roles_claim = Some("realm_access.roles".into());
        console.name_claim = Some("preferred_username".into());
    })
    .await;
    let minted = app.minted(json!({})).await;
    let jti = claims_of(&minted)["jti"].as_str().unwrap().to_string();
    let id = app.records(&["--jti", &jti]).pop().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    person(
        &app,
        json!({"preferred_username": "olga", "realm_access": {"roles": ["tessera-operators"]}}),
    );
    let session = session_of(&round_trip(&app, |_| {}).await);
    let page = get(&app, "/console/exchanges", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("olga · corp:person-1 (operator)"), "{page}");
    let csrf = input_value(&page, "csrf");
    let done = browser()
        .post(format!("{}/console/exchanges/{id}/revoke", app.admin_url))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("csrf", csrf.as_str()), ("confirm", "yes")]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let activity = get(&app, "/console/activity", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        activity.contains("olga · corp:person-1") && activity.contains("operator"),
        "{activity}"
    );
}

#[tokio::test]
async fn a_wrong_way_back_signs_nobody_in_and_says_why() {
    let app = TestApp::spawn_with(with_sign_in).await;
    let refused = |resp: reqwest::Response, why: &'static str| async move {
        let status = resp.status();
        let sessions: Vec<_> = cookies(&resp)
            .into_iter()
            .filter(|(n, v, _)| n == "tessera_console" && !v.is_empty())
            .collect();
        let page = resp.text().await.unwrap();
        assert_eq!(status, 401, "{why}: {page}");
        assert!(sessions.is_empty(), "{why}");
        assert!(page.contains(why), "{why}: {page}");
        page
    };
    // No role among the configured values.
    person(
        &app,
        json!({"email": "mallory@example.com", "groups": ["staff"]}),
    );
    refused(round_trip(&app, |_| {}).await, "holds no console role").await;
    // The state of another sign-in.
    person(&app, json!({"groups": ["tessera-operators"]}));
    let other_state = |u: &mut reqwest::Url| {
        let code: String = u.query_pairs().find(|(k, _)| k == "code").unwrap().1.into();
        u.set_query(Some(&format!("code={code}&state=forged")));
    };
    refused(
        round_trip(&app, other_state).await,
        "state is not this sign-in",
    )
    .await;
    // The nonce, the audience or the party of another sign-in.
    for (claims, why) in [
        (json!({"nonce": "replayed"}), "nonce is not this sign-in"),
        (json!({"aud": "another-app"}), "not issued to the console"),
        (
            json!({"aud": ["tessera-console", "x"], "azp": "x"}),
            "issued to another party",
        ),
        (json!({"exp": 1_000}), "has expired"),
    ] {
        let mut claims = claims;
        claims["groups"] = json!(["tessera-operators"]);
        person(&app, claims);
        refused(round_trip(&app, |_| {}).await, why).await;
    }
    // An ID token signed by a key the issuer does not publish.
    let stranger = TestKey::generate(jsonwebtoken::Algorithm::ES256, "stranger");
    app.idp
        .sign_in_as(Some((&stranger, json!({"groups": ["tessera-operators"]}))));
    refused(round_trip(&app, |_| {}).await, "does not publish").await;
    // The person refuses at the provider: its words are shown as text.
    app.idp.sign_in_as(None);
    let page = refused(round_trip(&app, |_| {}).await, "access_denied").await;
    assert!(
        page.contains("&lt;b&gt;the person said no&lt;/b&gt;") && !page.contains("<b>the person"),
        "{page}"
    );
    // Without the flow cookie (another browser, or after 10 minutes), nothing is redeemed.
    let resp = browser()
        .get(format!(
            "{}/console/callback?code=code-1&state=x",
            app.admin_url
        ))
        .send()
        .await
        .unwrap();
    refused(resp, "not started here").await;
}

#[tokio::test]
async fn a_code_is_redeemed_once() {
    let app = TestApp::spawn_with(with_sign_in).await;
    person(&app, json!({"groups": ["tessera-auditors"]}));
    // The flow cookie and the way back, captured, then used twice.
    let out = get(&app, "/console/sign-in/oidc", "").await;
    let flow = cookies(&out)
        .into_iter()
        .find(|(n, _, _)| n == "tessera_console_oidc")
        .unwrap()
        .1;
    let to = out.headers()["location"].to_str().unwrap().to_string();
    let back = browser().get(to).send().await.unwrap();
    let back = reqwest::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let send = || {
        browser()
            .get(format!(
                "{}/console/callback?{}",
                app.admin_url,
                back.query().unwrap()
            ))
            .header("cookie", format!("tessera_console_oidc={flow}"))
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    let again = send().await.unwrap();
    assert_eq!(again.status(), 401);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("did not take the code")
    );
}

#[tokio::test]
async fn the_admin_token_sign_in_can_be_turned_off_and_cookies_are_secure_behind_https() {
    let app = TestApp::spawn_with(|c| {
        with_sign_in(c);
        let console = c.console.as_mut().unwrap();
        console.admin_token_sign_in = Some(false);
    })
    .await;
    let page = get(&app, "/console/sign-in", "")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("admin_token"), "{page}");
    let resp = browser()
        .post(format!("{}/console/sign-in", app.admin_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([("admin_token", ADMIN_TOKEN), ("form_token", "x")])
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let app = TestApp::spawn_with(|c| {
        c.console = Some(entry(r#"url = "https://tessera-admin.example.internal""#));
    })
    .await;
    let form = get(&app, "/console/sign-in", "").await;
    let set: Vec<String> = cookies(&form)
        .into_iter()
        .map(|(_, _, full)| full)
        .collect();
    assert!(
        !set.is_empty() && set.iter().all(|c| c.contains("; Secure")),
        "{set:?}"
    );
}

#[tokio::test]
async fn the_console_section_is_checked() {
    let app = TestApp::spawn().await;
    let check = |edit: &dyn Fn(&mut RawConfig)| {
        let path = app.config_copy("console.toml", edit);
        let out = run_cli(&["check"], Some(&path));
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    for (toml, says) in [
        (
            "issuer = \"corp\"\nclient_id = \"c\"\nauditors = [\"a\"]",
            "console.url",
        ),
        (
            "url = \"http://127.0.0.1:1\"\nissuer = \"nobody\"\nclient_id = \"c\"\nauditors = [\"a\"]",
            "names no [[issuers]] entry",
        ),
        (
            "url = \"http://127.0.0.1:1\"\nissuer = \"corp\"\nclient_id = \"c\"",
            "no one signing in would hold a role",
        ),
        (
            "url = \"http://127.0.0.1:1\"\nissuer = \"corp\"\nclient_id = \"c\"\nauditors = [\"a\"]\nscopes = [\"email\"]",
            "must include \"openid\"",
        ),
        ("url = \"http://console.example\"", "must use https"),
        (
            "url = \"https://proxy.example/tessera\"",
            "must be an origin",
        ),
        ("admin_token_sign_in = false", "nobody could sign in"),
        ("client_id = \"c\"", "set console.issuer too"),
    ] {
        let console: RawConsole = entry(toml);
        let console = std::sync::Mutex::new(Some(console));
        let stderr = check(&|c| c.console = console.lock().unwrap().take());
        assert!(stderr.contains(says), "{toml}: {stderr}");
    }
}

#[tokio::test]
async fn refused_ways_back_count_as_failed_sign_ins() {
    let app = TestApp::spawn_with(with_sign_in).await;
    // Codes the provider refuses (here: a person without a role) are failed sign-ins; past ten
    // in a minute the provider is not asked again until the minute is over.
    person(&app, json!({"groups": ["staff"]}));
    let mut statuses = Vec::new();
    // Ten refusals then a 429, within one minute; should the minute turn meanwhile, the count
    // starts again, and ten more reach it all the same.
    while statuses.len() < 22 && statuses.last() != Some(&429) {
        statuses.push(round_trip(&app, |_| {}).await.status().as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses.len() >= 11, "ten refusals first: {statuses:?}");
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
}
