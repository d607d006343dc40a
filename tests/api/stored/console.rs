//! The console (SPEC §11) over HTTP: sign-in with the admin token, sessions, the audit search
//! and a record's detail, lineage, overview, try-it, reload, escaping and the security headers.
//! Sign-in with an identity provider is in `console_sign_in`; the browser tests in
//! `tests/api/console_browser.rs`.

use serde_json::{Value, json};

use crate::helpers::*;

/// A client that shows redirects instead of following them, and keeps no cookies of its own.
pub(super) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` part of each `Set-Cookie` of a response, by name.
pub(super) fn cookies(resp: &reqwest::Response) -> Vec<(String, String, String)> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|full| {
            let pair = full.split(';').next()?;
            let (name, value) = pair.split_once('=')?;
            Some((name.to_string(), value.to_string(), full.to_string()))
        })
        .collect()
}

/// The value of the first `name="…" value="…"` input of a page.
pub(super) fn input_value(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no input {name} in {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Signs in with the admin token; the session cookie (`name=value`) and the CSRF token.
pub(super) async fn sign_in(app: &TestApp) -> (String, String) {
    let http = browser();
    let form = http
        .get(format!("{}/console/sign-in", app.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let form_cookie = cookies(&form)
        .into_iter()
        .find(|(n, _, _)| n == "tessera_console_form")
        .unwrap();
    let page = form.text().await.unwrap();
    let token = input_value(&page, "form_token");
    let resp = http
        .post(format!("{}/console/sign-in", app.admin_url))
        .header("cookie", format!("tessera_console_form={}", form_cookie.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("admin_token", ADMIN_TOKEN),
                ("form_token", token.as_str()),
            ])
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/console/exchanges");
    let (_, value, full) = cookies(&resp)
        .into_iter()
        .find(|(n, _, _)| n == "tessera_console")
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(full.contains(attribute), "{full}");
    }
    let session = format!("tessera_console={value}");
    let page = get(app, "/console/exchanges", &session).await;
    assert_eq!(page.status(), 200);
    let csrf = input_value(&page.text().await.unwrap(), "csrf");
    (session, csrf)
}

pub(super) async fn get(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    browser()
        .get(format!("{}{path}", app.admin_url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_console_needs_a_session_and_answers_under_a_strict_policy() {
    let app = TestApp::spawn().await;
    for path in [
        "/console/",
        "/console/exchanges",
        "/console/exchanges/some-id",
    ] {
        let resp = get(&app, path, "").await;
        assert_eq!(resp.status(), 303, "{path}");
        let to = resp.headers()["location"].to_str().unwrap();
        assert!(
            to == "/console/sign-in" || to == "/console/overview",
            "{path}: {to}"
        );
        let csp = resp.headers()["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("unsafe"),
            "{csp}"
        );
    }
    let page = get(&app, "/console/sign-in", "").await;
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(
        !page.text().await.unwrap().contains("<script"),
        "no script at all"
    );
    // A wrong token, or a sign-in form from elsewhere, signs nobody in.
    let http = browser();
    let form = http
        .get(format!("{}/console/sign-in", app.admin_url))
        .send()
        .await
        .unwrap();
    let form_cookie = cookies(&form).into_iter().next().unwrap().1;
    let token = input_value(&form.text().await.unwrap(), "form_token");
    let attempt = |admin_token: &'static str, form_token: String, cookie: String| {
        let http = http.clone();
        let url = format!("{}/console/sign-in", app.admin_url);
        async move {
            http.post(url)
                .header("cookie", cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    serde_urlencoded::to_string([
                        ("admin_token", admin_token),
                        ("form_token", form_token.as_str()),
                    ])
                    .unwrap(),
                )
                .send()
                .await
                .unwrap()
        }
    };
    let wrong = attempt(
        "not-the-token",
        token.clone(),
        format!("tessera_console_form={form_cookie}"),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(
        cookies(&wrong)
            .iter()
            .all(|(n, _, _)| n != "tessera_console")
    );
    let forged_form = attempt(ADMIN_TOKEN, token.clone(), String::new()).await;
    assert_eq!(forged_form.status(), 401, "login CSRF: no form cookie");
    // A session whose cookie was changed by hand is none.
    let (session, _) = sign_in(&app).await;
    assert!(
        session.starts_with("tessera_console=eyJ"),
        "a JSON payload: {session}"
    );
    let tampered = session.replacen("tessera_console=e", "tessera_console=f", 1);
    assert_eq!(
        get(&app, "/console/exchanges", &tampered).await.status(),
        303
    );
    assert_eq!(
        get(&app, "/console/exchanges", &session).await.status(),
        200
    );
}

#[tokio::test]
async fn the_search_combines_filters_in_the_url_and_pages_newest_first() {
    let app = TestApp::spawn().await;
    for sub in ["alice", "alice", "alice", "bob", "bob"] {
        let resp = app
            .exchange_subject(&app.subject_token(json!({"sub": sub})))
            .await;
        assert_eq!(resp.status(), 200);
    }
    let (session, _) = sign_in(&app).await;
    let page = get(
        &app,
        "/console/exchanges?subject=alice&outcome=granted&client=&limit=2",
        &session,
    )
    .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("<td>alice</td>").count(), 2, "{html}");
    assert!(!html.contains("<td>bob</td>"));
    assert!(
        html.contains(r#"name="subject" value="alice""#),
        "the form keeps the search"
    );
    let older = html
        .split("href=\"/console/exchanges?")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|q| q.replace("&amp;", "&"))
        .expect("a link to older records");
    assert!(older.contains("cursor="), "{older}");
    let html = get(&app, &format!("/console/exchanges?{older}"), &session)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(html.matches("<td>alice</td>").count(), 1, "{html}");
    assert!(html.contains("No more records."));
    // A bad filter is said, not ignored.
    let bad = get(&app, "/console/exchanges?outcome=maybe", &session).await;
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("neither granted nor denied")
    );
}

#[tokio::test]
async fn what_a_record_holds_is_shown_as_text_never_as_markup() {
    let app = TestApp::spawn().await;
    let payload = "<script>alert(1)</script>";
    let agent = "<img src=x onerror=alert(2)>";
    // A client id and a user agent an attacker chose, on a refused request.
    let resp = app
        .http
        .post(format!("{}/token", app.url))
        .header("user-agent", agent)
        .basic_auth(payload, Some("x"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("grant_type", TOKEN_EXCHANGE)]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (session, _) = sign_in(&app).await;
    let html = get(&app, "/console/exchanges", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains(payload) && !html.contains("<img"), "{html}");
    let record: Value = app.records(&[]).pop().unwrap();
    let id = record["id"].as_str().unwrap();
    let detail = get(&app, &format!("/console/exchanges/{id}"), &session).await;
    assert_eq!(detail.status(), 200);
    let html = detail.text().await.unwrap();
    assert!(
        html.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "{html}"
    );
    assert!(!html.contains("<img") && !html.contains(payload));
    for field in ["request_id", "remote_addr", "reason", "chain", "grant_type"] {
        assert!(html.contains(&format!("<th>{field}</th>")), "{field}");
    }
    let missing = get(&app, "/console/exchanges/no-such-record", &session).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_record_links_to_its_lineage() {
    let app = TestApp::spawn().await;
    let subject = app.subject_token(json!({}));
    let jti = claims_of(&subject)["jti"].as_str().unwrap().to_string();
    assert_eq!(app.exchange_subject(&subject).await.status(), 200);
    let (session, _) = sign_in(&app).await;
    let id = app.records(&[]).pop().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let html = get(&app, &format!("/console/exchanges/{id}"), &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("/console/exchanges?subject_jti={jti}")),
        "{html}"
    );
    assert!(
        html.contains(&format!("/console/exchanges?jti={jti}")),
        "where it came from: {html}"
    );
    let lineage = get(
        &app,
        &format!("/console/exchanges?subject_jti={jti}"),
        &session,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        lineage.contains(&format!("/console/exchanges/{id}")),
        "{lineage}"
    );
}

#[tokio::test]
async fn a_record_shows_its_lineage_as_a_tree_with_revoked_ones_marked() {
    // Tessera trusts itself, so a minted token is exchanged again: a chain of three hops, and a
    // second branch from the first token.
    let app = TestApp::spawn_with(|c| {
        c.append(&format!(
            r#"
[[issuers]]
id = "tessera"
issuer = "{STS}"
algorithms = ["ES256"]
audiences = ["inventory-api", "stock-api", "shelf-api"]

[[rules]]
name = "hops"
clients = ["orders-svc"]
issuers = ["tessera"]
audiences = ["stock-api", "shelf-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
"#
        ))
    })
    .await;
    let hop = |token: String, audience: &'static str| {
        let app = &app;
        async move {
            let resp = app
                .exchange(&[
                    ("grant_type", TOKEN_EXCHANGE),
                    ("subject_token", &token),
                    ("subject_token_type", ACCESS_TOKEN),
                    ("audience", audience),
                ])
                .await;
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let first = app.minted(json!({})).await;
    let second = hop(first.clone(), "stock-api").await;
    let third = hop(second.clone(), "shelf-api").await;
    let branch = hop(first.clone(), "shelf-api").await;
    let id_of = |token: &str| {
        let jti = claims_of(token)["jti"].as_str().unwrap().to_string();
        app.records(&["--jti", &jti]).pop().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (first_id, second_id, third_id, branch_id) =
        (id_of(&first), id_of(&second), id_of(&third), id_of(&branch));
    let revoked = app
        .admin_revoke(json!({"jti": claims_of(&third)["jti"]}))
        .await;
    assert_eq!(revoked.status(), 200);
    let (session, _) = sign_in(&app).await;
    let html = get(&app, &format!("/console/exchanges/{second_id}"), &session)
        .await
        .text()
        .await
        .unwrap();
    let tree = &html[html.find(r#"id="lineage""#).expect("a tree")..];
    // Upward: the first token's record, linked; this record; downward: the third, revoked.
    let at = |needle: &str| {
        tree.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in {tree}"))
    };
    let (up, this, down) = (
        at(&format!("/console/exchanges/{first_id}")),
        at("(this record)"),
        at(&format!("/console/exchanges/{third_id}")),
    );
    assert!(up < this && this < down, "{tree}");
    assert!(tree[down..].contains("revoked"), "{tree}");
    // A token of another issuer carrying the same jti is no child of it.
    let foreign = app.subject_token(json!({ "sub": "mallory", "jti": claims_of(&first)["jti"] }));
    assert_eq!(app.exchange_subject(&foreign).await.status(), 200);
    let foreign_id = app.records(&["--subject", "mallory"]).pop().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The first token's record shows both branches under it.
    let html = get(&app, &format!("/console/exchanges/{first_id}"), &session)
        .await
        .text()
        .await
        .unwrap();
    let tree = &html[html.find(r#"id="lineage""#).unwrap()..];
    for id in [&second_id, &third_id, &branch_id] {
        assert!(
            tree.contains(&format!("/console/exchanges/{id}")),
            "{id}: {tree}"
        );
    }
    assert!(!tree.contains(&foreign_id), "{tree}");
    let html = get(&app, &format!("/console/exchanges/{foreign_id}"), &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains(&format!("/console/exchanges/{first_id}")),
        "no parent: {html}"
    );
}

#[tokio::test]
async fn signing_out_needs_the_sessions_csrf_token() {
    let app = TestApp::spawn().await;
    let (session, csrf) = sign_in(&app).await;
    let sign_out = |token: String| {
        let url = format!("{}/console/sign-out", app.admin_url);
        let session = session.clone();
        async move {
            browser()
                .post(url)
                .header("cookie", session)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string([("csrf", token)]).unwrap())
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(sign_out("forged".into()).await.status(), 403);
    let (_, other_csrf) = sign_in(&app).await;
    assert_eq!(
        sign_out(other_csrf).await.status(),
        403,
        "another session's token"
    );
    let resp = sign_out(csrf).await;
    assert_eq!(resp.status(), 303);
    let cleared = cookies(&resp)
        .into_iter()
        .find(|(n, _, _)| n == "tessera_console")
        .unwrap();
    assert!(cleared.1.is_empty() && cleared.2.contains("Max-Age=0"));
    // A copy of the signed-out cookie is no session any more.
    assert_eq!(
        get(&app, "/console/exchanges", &session).await.status(),
        303
    );
}

#[tokio::test]
async fn a_search_exports_as_csv_and_json_lines_streamed() {
    let app = TestApp::spawn().await;
    for sub in ["alice", "bob", "alice"] {
        let resp = app
            .exchange_subject(&app.subject_token(json!({"sub": sub})))
            .await;
        assert_eq!(resp.status(), 200);
    }
    // A client id made to run as a spreadsheet formula.
    let resp = app
        .post_token(
            &[("grant_type", TOKEN_EXCHANGE)],
            Some(("=HYPERLINK(1)", "x")),
        )
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        get(&app, "/console/exchanges.csv", "").await.status(),
        303,
        "no session, no export"
    );
    let (session, _) = sign_in(&app).await;
    let page = get(&app, "/console/exchanges?subject=alice", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"href="/console/exchanges.csv?subject=alice""#),
        "{page}"
    );
    let csv = get(&app, "/console/exchanges.csv?subject=alice", &session).await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("exchanges.csv")
    );
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("id,time,outcome"));
    let all = get(&app, "/console/exchanges.csv", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(all.contains(",'=HYPERLINK(1),"), "the formula guard: {all}");
    let jsonl = get(&app, "/console/exchanges.jsonl?outcome=granted", &session)
        .await
        .text()
        .await
        .unwrap();
    let records: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r["outcome"] == "granted"));
    assert_eq!(
        get(&app, "/console/exchanges.csv?outcome=maybe", &session)
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn the_chain_is_verified_from_the_console() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        let resp = app.exchange_subject(&app.subject_token(json!({}))).await;
        assert_eq!(resp.status(), 200);
    }
    let (session, csrf) = sign_in(&app).await;
    let page = get(&app, "/console/verify", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("No verification has run"), "{page}");
    let start = |token: String| {
        let url = format!("{}/console/verify", app.admin_url);
        let session = session.clone();
        async move {
            browser()
                .post(url)
                .header("cookie", session)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string([("csrf", token)]).unwrap())
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(start("forged".into()).await.status(), 403);
    assert_eq!(start(csrf).await.status(), 303);
    let mut shown = String::new();
    for _ in 0..100 {
        shown = get(&app, "/console/verify", &session)
            .await
            .text()
            .await
            .unwrap();
        if !shown.contains("Running since") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        shown.contains("Audit chain intact: 3 records verified"),
        "{shown}"
    );
    assert!(shown.contains("by admin token"), "who started it: {shown}");
}

#[tokio::test]
async fn an_operator_revokes_from_a_record_after_confirming_and_is_recorded() {
    let app = TestApp::spawn().await;
    let minted = app.minted(json!({})).await;
    let jti = claims_of(&minted)["jti"].as_str().unwrap().to_string();
    let id = app.records(&["--jti", &jti]).pop().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (session, csrf) = sign_in(&app).await;
    let detail = get(&app, &format!("/console/exchanges/{id}"), &session)
        .await
        .text()
        .await
        .unwrap();
    let action = format!("/console/exchanges/{id}/revoke");
    assert!(
        detail.contains(&format!(r#"action="{action}""#)),
        "{detail}"
    );
    let post = |pairs: Vec<(&'static str, String)>| {
        let url = format!("{}{action}", app.admin_url);
        let session = session.clone();
        async move {
            browser()
                .post(url)
                .header("cookie", session)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(pairs).unwrap())
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        post(vec![("csrf", "forged".into()), ("confirm", "yes".into())])
            .await
            .status(),
        403
    );
    // The first post asks; nothing is revoked yet.
    let asked = post(vec![("csrf", csrf.clone())]).await;
    assert_eq!(asked.status(), 200);
    assert!(asked.text().await.unwrap().contains("Yes, revoke"));
    let active = |token: String| {
        let app = &app;
        async move {
            app.post_form(
                "/introspect",
                &[("token", &token)],
                ("orders-svc", ORDERS_SECRET),
            )
            .await
            .json::<Value>()
            .await
            .unwrap()["active"]
                .clone()
        }
    };
    assert_eq!(active(minted.clone()).await, json!(true));
    let done = post(vec![("csrf", csrf), ("confirm", "yes".into())]).await;
    assert_eq!(done.status(), 303);
    assert_eq!(active(minted).await, json!(false));
    let detail = get(&app, &format!("/console/exchanges/{id}"), &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !detail.contains(&format!(r#"action="{action}""#)),
        "revoked already"
    );
    assert!(app.records(&["--jti", &jti])[0]["revoked_at"].is_string());
    let activity = get(&app, "/console/activity", &session)
        .await
        .text()
        .await
        .unwrap();
    for shown in [
        "admin token",
        "operator",
        "revoke",
        &format!("jti {jti}"),
        "1 token(s) revoked",
    ] {
        assert!(activity.contains(shown), "{shown}: {activity}");
    }
}

#[tokio::test]
async fn another_site_or_port_never_acts_with_the_session_and_guessing_is_slowed() {
    let app = TestApp::spawn().await;
    let (session, _) = sign_in(&app).await;
    for site in ["cross-site", "same-site"] {
        let resp = browser()
            .get(format!("{}/console/exchanges.jsonl", app.admin_url))
            .header("cookie", &session)
            .header("sec-fetch-site", site)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "{site}");
    }
    let resp = browser()
        .get(format!("{}/console/exchanges", app.admin_url))
        .header("cookie", &session)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A sign-in form without its cookie is refused, and the refusal gives a fresh one.
    let resp = browser()
        .post(format!("{}/console/sign-in", app.admin_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("admin_token=x&form_token=y")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        cookies(&resp)
            .iter()
            .any(|(n, v, _)| n == "tessera_console_form" && !v.is_empty())
    );
    // Ten wrong tokens in a minute, then even the right one waits.
    let http = browser();
    let form = http
        .get(format!("{}/console/sign-in", app.admin_url))
        .send()
        .await
        .unwrap();
    let cookie = format!(
        "tessera_console_form={}",
        cookies(&form).into_iter().next().unwrap().1
    );
    let token = input_value(&form.text().await.unwrap(), "form_token");
    let mut statuses = Vec::new();
    for admin_token in std::iter::repeat_n("wrong", 10).chain([ADMIN_TOKEN]) {
        let resp = http
            .post(format!("{}/console/sign-in", app.admin_url))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                serde_urlencoded::to_string([
                    ("admin_token", admin_token),
                    ("form_token", token.as_str()),
                ])
                .unwrap(),
            )
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    // At a minute's turn the window starts anew: then the right token signs in.
    assert!(statuses[10] == 429 || statuses[10] == 303, "{statuses:?}");
}

#[tokio::test]
async fn the_trust_configuration_is_shown_without_a_secret() {
    let app = TestApp::spawn_with(|c| {
        c.rule_mut("orders-to-inventory").condition =
            Some(r#"subject.email.endsWith("@example.com")"#.into());
    })
    .await;
    let (session, _) = sign_in(&app).await;
    let page = get(&app, "/console/rules", &session).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for shown in [
        "<td>corp</td>",
        "ready",
        "<td>orders-svc</td>",
        "client secret",
        "<td>orders-to-inventory</td>",
        "inventory-api https://inventory.internal/",
        "subject.email.endsWith(&quot;@example.com&quot;)",
    ] {
        assert!(html.contains(shown), "{shown}: {html}");
    }
    let hash = tessera::clients::sha256_hex(ORDERS_SECRET);
    assert!(!html.contains(&hash) && !html.contains(ORDERS_SECRET));
    assert_eq!(get(&app, "/console/rules", "").await.status(), 303);
}

/// Posts a console form with the session's cookie.
pub(super) async fn post(
    app: &TestApp,
    path: &str,
    session: &str,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    browser()
        .post(format!("{}{path}", app.admin_url))
        .header("cookie", session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(pairs).unwrap())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn try_it_shows_the_decision_as_explain_does_and_keeps_no_token() {
    let app = TestApp::spawn().await;
    let (session, csrf) = sign_in(&app).await;
    let form = get(&app, "/console/try", &session).await;
    assert_eq!(form.status(), 200);
    let form = form.text().await.unwrap();
    assert!(form.contains(r#"<option value="orders-svc">"#), "{form}");
    let recorded = app.records(&[]).len();
    let decision = |html: String| {
        let at = html
            .find(r#"id="decision""#)
            .unwrap_or_else(|| panic!("{html}"));
        html[at..].to_string()
    };
    let claims = r#"{"sub": "alice", "email": "alice@example.com", "scope": "inventory:read"}"#;
    let base = |audience: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("client", "orders-svc".into()),
            ("subject_from", "claims".into()),
            ("issuer", "corp".into()),
            ("claims", claims.into()),
            ("audience", audience.into()),
        ]
    };
    let ask = |pairs: Vec<(&'static str, String)>| {
        let (app, session) = (&app, session.clone());
        async move {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(app, "/console/try", &session, &pairs).await
        }
    };
    let granted = decision(ask(base("inventory-api")).await.text().await.unwrap());
    for shown in [
        "rule 1 &quot;orders-to-inventory&quot;: applies",
        "result: granted by rule &quot;orders-to-inventory&quot;",
        "&quot;aud&quot;: &quot;inventory-api&quot;",
    ] {
        assert!(granted.contains(shown), "{shown}: {granted}");
    }
    let denied = decision(ask(base("payroll-api")).await.text().await.unwrap());
    for shown in ["does not apply", "result: denied: invalid_target"] {
        assert!(denied.contains(shown), "{shown}: {denied}");
    }
    // A real token is verified as /token would, and never sent back.
    let token = app.subject_token(json!({}));
    let mut pairs = base("inventory-api");
    pairs[2].1 = "token".into();
    pairs.push(("token", token.clone()));
    let page = ask(pairs).await.text().await.unwrap();
    assert!(!page.contains(&token), "the token is not echoed");
    assert!(decision(page).contains("result: granted"));
    // Who checked a token is recorded, with its hash, never the token.
    let activity = get(&app, "/console/activity", &session)
        .await
        .text()
        .await
        .unwrap();
    let hash = tessera::clients::sha256_hex(&token);
    assert!(
        activity.contains("<td>try</td>") && activity.contains(&hash),
        "{activity}"
    );
    assert!(!activity.contains(&token));
    // A forged or missing CSRF token tries nothing; nothing is ever recorded.
    let mut forged = base("inventory-api");
    forged[0].1 = "forged".into();
    assert_eq!(ask(forged).await.status(), 403);
    assert_eq!(app.records(&[]).len(), recorded);
}

#[tokio::test]
async fn an_operator_reloads_the_configuration_and_it_is_recorded() {
    let app = TestApp::spawn().await;
    let (session, csrf) = sign_in(&app).await;
    let rules = get(&app, "/console/rules", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(rules.contains(r#"action="/console/reload""#), "{rules}");
    let mut config = app.config();
    config.append(
        r#"
[[rules]]
name = "added-by-reload"
clients = ["billing-svc"]
issuers = ["corp"]
audiences = ["billing-api"]
scopes = ["billing:read"]
default_scopes = ["billing:read"]
"#,
    );
    write_config(&app.config_path, &config);
    let done = post(&app, "/console/reload", &session, &[("csrf", &csrf)]).await;
    assert_eq!(done.status(), 200);
    let page = done.text().await.unwrap();
    assert!(
        page.contains("Reload: reloaded") && page.contains("<td>added-by-reload</td>"),
        "{page}"
    );
    // A bad file changes nothing and says where, never what the file holds there (a value
    // or a parser's excerpt can be a secret, and auditors read the page and the record).
    let mut broken = config.to_toml();
    broken = broken.replacen("default_ttl = \"5m\"", "default_ttl = \"S3CRET\"", 1);
    std::fs::write(&app.config_path, broken).unwrap();
    let refused = post(&app, "/console/reload", &session, &[("csrf", &csrf)]).await;
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("refused at signing.default_ttl; the previous configuration keeps serving"),
        "{page}"
    );
    std::fs::write(&app.config_path, "[server]\nissuer = \"S3CRET").unwrap();
    let refused = post(&app, "/console/reload", &session, &[("csrf", &csrf)]).await;
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("the previous configuration keeps serving"),
        "{page}"
    );
    assert!(!page.contains("S3CRET"), "{page}");
    assert!(page.contains("<td>added-by-reload</td>"));
    assert_eq!(
        post(&app, "/console/reload", &session, &[("csrf", "forged")])
            .await
            .status(),
        403
    );
    let activity = get(&app, "/console/activity", &session)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(activity.matches("<td>reload</td>").count(), 3, "{activity}");
    assert!(!activity.contains("S3CRET"), "{activity}");
    assert!(
        activity.contains("reloaded") && activity.contains("refused"),
        "{activity}"
    );
}

#[tokio::test]
async fn the_overview_counts_each_minute_and_names_the_largest() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        app.minted(json!({})).await;
    }
    let subject = app.subject_token(json!({}));
    for audience in ["payroll-api", "payroll-api"] {
        let resp = app
            .exchange(&[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("audience", audience),
            ])
            .await;
        assert_eq!(resp.status(), 400);
    }
    // A caller that never authenticates is counted, but under no client name it chose.
    let resp = app
        .post_token(
            &[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
            ],
            Some(("<b>made-up</b>", "wrong")),
        )
        .await;
    assert_eq!(resp.status(), 401);
    let (session, _) = sign_in(&app).await;
    let home = get(&app, "/console/", &session).await;
    assert_eq!(home.headers()["location"], "/console/overview");
    let page = get(&app, "/console/overview", &session).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for shown in [
        "3 granted</span> · <span class=\"denied\">3 denied",
        "<svg class=\"chart\"",
        r#"<a href="/console/exchanges?outcome=denied&error=invalid_target">invalid_target</a></td><td>2</td>"#,
        r#"<a href="/console/exchanges?client=orders-svc">orders-svc</a></td><td>5</td>"#,
        "<em>(not attributed)</em></td><td>1</td>",
        r#"<a href="/console/exchanges?outcome=granted&audience=inventory-api">inventory-api</a></td><td>3</td>"#,
    ] {
        assert!(html.contains(shown), "{shown}: {html}");
    }
    assert!(!html.contains("made-up"), "{html}");
    let day = get(&app, "/console/overview?window=day", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(day.contains("Over the last day"), "{day}");
}
