//! Revocation that holds (SPEC §6): under full load, against exchanges in flight, through the
//! whole lineage (subject and actor tokens), and sticky for what it names upstream.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::helpers::*;

const ORDERS: (&str, &str) = ("orders-svc", ORDERS_SECRET);

/// Tessera trusts itself as an issuer (re-exchange), and a rule takes one of its tokens as the
/// actor token of a delegation.
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

[[rules]]
name = "delegated"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["delegated-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
actor = "token"
actors = [{{ issuer = "tessera", subject = "svc-batch" }}]

[[rules]]
name = "delegated-upstream"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["upstream-delegated-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
actor = "token"
actors = [{{ issuer = "corp", subject = "svc-batch" }}]
"#
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

async fn active(app: &TestApp, token: &str) -> bool {
    let resp = app
        .post_form("/introspect", &[("token", token)], ORDERS)
        .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["active"] == true
}

async fn token_of(resp: reqwest::Response) -> Option<String> {
    if resp.status() != 200 {
        return None;
    }
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().map(str::to_string)
}

fn jti_of(token: &str) -> String {
    claims_of(token)["jti"].as_str().unwrap().to_string()
}

/// Exchanges `subject` (re-exchange of a minted token when `audience` is "stock-api") from
/// `tasks` concurrent loops until `stop` is set; returns every token minted.
fn exchanging(
    app: &Arc<TestApp>,
    tasks: usize,
    subjects: Arc<dyn Fn(usize) -> (String, &'static str) + Send + Sync>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    (0..tasks)
        .map(|task| {
            let (app, stop, subjects) = (app.clone(), stop.clone(), subjects.clone());
            tokio::spawn(async move {
                let mut minted = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let (subject, audience) = subjects(task * 1_000_000 + n);
                    n += 1;
                    if let Some(t) = token_of(re_exchange(&app, &subject, audience).await).await {
                        minted.push(t);
                    }
                }
                minted
            })
        })
        .collect()
}

async fn collected(handles: Vec<tokio::task::JoinHandle<Vec<String>>>) -> Vec<String> {
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all
}

async fn revoke_until_done(app: &TestApp, body: Value) -> reqwest::Response {
    let mut resp = app.admin_revoke(body.clone()).await;
    for _ in 0..50 {
        if resp.status() != 503 {
            break;
        }
        resp = app.admin_revoke(body.clone()).await;
    }
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocations_succeed_while_exchanges_run_at_full_speed() {
    let app = Arc::new(TestApp::spawn_with(with_hops).await);
    let mut targets = Vec::new();
    for _ in 0..30 {
        targets.push(app.minted(json!({})).await);
    }
    let load_subject = app.subject_token(json!({"sub": "load"}));
    let stop = Arc::new(AtomicBool::new(false));
    let load = exchanging(
        &app,
        8,
        Arc::new(move |_| (load_subject.clone(), "inventory-api")),
        &stop,
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut failures = Vec::new();
    for (i, token) in targets.iter().enumerate() {
        let resp = if i % 2 == 0 {
            app.admin_revoke(json!({"jti": jti_of(token)})).await
        } else {
            app.post_form("/revoke", &[("token", token)], ORDERS).await
        };
        if resp.status() != 200 {
            failures.push(format!("{}: {}", resp.status(), resp.text().await.unwrap()));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let minted_under_load = collected(load).await.len();
    assert!(failures.is_empty(), "revocations failed: {failures:?}");
    assert!(minted_under_load > 0, "the load ran");
    for token in &targets {
        assert!(!active(&app, token).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_covers_children_minted_while_it_ran() {
    let app = Arc::new(TestApp::spawn_with(with_hops).await);
    for round in 0..8 {
        let parent = app.minted(json!({})).await;
        let stop = Arc::new(AtomicBool::new(false));
        let p = parent.clone();
        let children = exchanging(&app, 4, Arc::new(move |_| (p.clone(), "stock-api")), &stop);
        tokio::time::sleep(std::time::Duration::from_millis(20 + 10 * round)).await;
        // Revocation under load is the other test's subject: here, only its race with re-exchange.
        let resp = revoke_until_done(&app, json!({"jti": jti_of(&parent)})).await;
        assert_eq!(resp.status(), 200, "round {round}");
        // Exchanges started before the answer may still finish; let them.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stop.store(true, Ordering::SeqCst);
        let children = collected(children).await;
        for child in &children {
            assert!(
                !active(&app, child).await,
                "round {round}: a child of a revoked token is active"
            );
            let desc = assert_error(
                re_exchange(&app, child, "shelf-api").await,
                400,
                "invalid_request",
            )
            .await;
            assert!(desc.contains("revoked"), "{desc}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subject_revocation_covers_exchanges_in_flight() {
    let app = Arc::new(TestApp::spawn_with(with_hops).await);
    for round in 0..5 {
        let sub = format!("inflight-{round}");
        // Signed before the revocation, so every one of them is covered by it.
        let tokens: Vec<String> = (0..200)
            .map(|_| app.subject_token(json!({"sub": sub})))
            .collect();
        let tokens = Arc::new(tokens);
        let stop = Arc::new(AtomicBool::new(false));
        let t = tokens.clone();
        let load = exchanging(
            &app,
            6,
            Arc::new(move |n| (t[n % t.len()].clone(), "inventory-api")),
            &stop,
        );
        tokio::time::sleep(std::time::Duration::from_millis(30 + 10 * round)).await;
        let resp = revoke_until_done(&app, json!({"issuer": "corp", "subject": sub})).await;
        assert_eq!(resp.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stop.store(true, Ordering::SeqCst);
        for minted in collected(load).await {
            assert!(
                !active(&app, &minted).await,
                "round {round}: a token minted for a revoked subject is active"
            );
        }
    }
}

#[tokio::test]
async fn a_revoked_subject_token_is_refused_until_it_expires() {
    let app = TestApp::spawn_with(with_hops).await;
    let subject = app.subject_token(json!({"sub": "frank", "jti": "frank-session"}));
    assert_eq!(app.exchange_subject(&subject).await.status(), 200);
    let resp: Value = app
        .admin_revoke(json!({"subject_jti": "frank-session"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["revoked"], 1);
    let desc = assert_error(app.exchange_subject(&subject).await, 400, "invalid_request").await;
    assert!(desc.contains("subject token has been revoked"), "{desc}");
    let record = &app.records(&["--limit", "1"])[0];
    assert_eq!(record["outcome"], "denied");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("subject token has been revoked")
    );
    // A subject token never seen before can be revoked ahead of its use.
    let unseen = app.subject_token(json!({"sub": "frank", "jti": "not-yet-used"}));
    app.admin_revoke(json!({"subject_jti": "not-yet-used"}))
        .await;
    assert_error(app.exchange_subject(&unseen).await, 400, "invalid_request").await;
    // Another token of the same subject is not affected.
    let other = app.subject_token(json!({"sub": "frank"}));
    assert_eq!(app.exchange_subject(&other).await.status(), 200);
}

#[tokio::test]
async fn a_revoked_subject_needs_tokens_issued_after_the_revocation() {
    let app = TestApp::spawn_with(with_hops).await;
    let before = app.subject_token(json!({"sub": "grace", "iat": now() - 5}));
    assert_eq!(app.exchange_subject(&before).await.status(), 200);
    let resp = app
        .admin_revoke(json!({"issuer": "corp", "subject": "grace"}))
        .await;
    assert_eq!(resp.status(), 200);
    let desc = assert_error(app.exchange_subject(&before).await, 400, "invalid_request").await;
    assert!(desc.contains("subject"), "{desc}");
    assert!(desc.contains("revoked"), "{desc}");
    // Signed again after the revocation: accepted (the user signed in again).
    let after = app.subject_token(json!({"sub": "grace", "iat": now() + 2}));
    assert_eq!(app.exchange_subject(&after).await.status(), 200);
    // Other subjects are not affected.
    let other = app.subject_token(json!({"sub": "heidi", "iat": now() - 5}));
    assert_eq!(app.exchange_subject(&other).await.status(), 200);
}

#[tokio::test]
async fn revoking_an_actor_token_revokes_what_was_minted_with_it() {
    let app = TestApp::spawn_with(with_hops).await;
    let actor = app.minted(json!({"sub": "svc-batch"})).await;
    let delegate = |subject: String, actor: String| {
        let app = &app;
        async move {
            app.exchange(&[
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("actor_token", &actor),
                ("actor_token_type", ACCESS_TOKEN),
                ("audience", "delegated-api"),
            ])
            .await
        }
    };
    let subject = app.subject_token(json!({"sub": "ivan"}));
    let delegated = token_of(delegate(subject.clone(), actor.clone()).await)
        .await
        .expect("delegation granted");
    let resp: Value = app
        .admin_revoke(json!({"jti": jti_of(&actor)}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        resp["revoked"], 2,
        "the actor token and the token minted with it"
    );
    assert!(!active(&app, &delegated).await);
    let fresh = app.subject_token(json!({"sub": "ivan"}));
    let desc = assert_error(delegate(fresh, actor).await, 400, "invalid_request").await;
    assert!(desc.contains("actor token has been revoked"), "{desc}");
    let record = &app.records(&["--limit", "1"])[0];
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("actor token has been revoked"),
        "{record}"
    );
}

async fn delegate(app: &TestApp, subject: &str, actor: &str, audience: &str) -> reqwest::Response {
    app.exchange(&[
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("actor_token", actor),
        ("actor_token_type", ACCESS_TOKEN),
        ("audience", audience),
    ])
    .await
}

#[tokio::test]
async fn revoking_a_minted_token_by_subject_jti_revokes_the_token_itself() {
    let app = TestApp::spawn_with(with_hops).await;
    let minted = app.minted(json!({})).await;
    let child = token_of(re_exchange(&app, &minted, "stock-api").await)
        .await
        .expect("re-exchange granted");
    let resp: Value = app
        .admin_revoke(json!({"subject_jti": jti_of(&minted)}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["revoked"], 2, "the token and the one minted from it");
    assert!(!active(&app, &minted).await);
    assert!(!active(&app, &child).await);
    let desc = assert_error(
        re_exchange(&app, &minted, "shelf-api").await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("revoked"), "{desc}");
}

#[tokio::test]
async fn revoking_an_upstream_actor_token_or_actor_revokes_what_was_minted_with_it() {
    let app = TestApp::spawn_with(with_hops).await;
    let actor = app.subject_token(json!({"sub": "svc-batch", "jti": "batch-session"}));
    let first = token_of(
        delegate(
            &app,
            &app.subject_token(json!({})),
            &actor,
            "upstream-delegated-api",
        )
        .await,
    )
    .await
    .expect("delegation granted");
    app.admin_revoke(json!({"subject_jti": "batch-session"}))
        .await;
    assert!(
        !active(&app, &first).await,
        "minted with the revoked actor token"
    );
    let desc = assert_error(
        delegate(
            &app,
            &app.subject_token(json!({})),
            &actor,
            "upstream-delegated-api",
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("actor token has been revoked"), "{desc}");

    let other_actor = app.subject_token(json!({"sub": "svc-batch", "iat": now() - 5}));
    let second = token_of(
        delegate(
            &app,
            &app.subject_token(json!({})),
            &other_actor,
            "upstream-delegated-api",
        )
        .await,
    )
    .await
    .expect("delegation granted");
    let resp = app
        .admin_revoke(json!({"issuer": "corp", "subject": "svc-batch"}))
        .await;
    assert_eq!(resp.status(), 200);
    assert!(
        !active(&app, &second).await,
        "minted with a revoked subject's token as actor"
    );
}

#[tokio::test]
async fn revoking_a_subject_of_this_server_revokes_what_it_minted_for_them() {
    let app = TestApp::spawn_with(with_hops).await;
    let minted = app.minted(json!({"sub": "kim"})).await;
    let resp: Value = app
        .admin_revoke(json!({"issuer": "tessera", "subject": "kim"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["revoked"], 1);
    assert!(!active(&app, &minted).await);
    assert_error(
        re_exchange(&app, &minted, "stock-api").await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn revoking_a_subject_of_an_unknown_issuer_is_refused() {
    let app = TestApp::spawn_with(with_hops).await;
    let desc = assert_error(
        app.admin_revoke(json!({"issuer": "crop", "subject": "kim"}))
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert!(desc.contains("crop"), "{desc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subject_revoked_at_this_server_covers_what_was_minted_while_it_ran() {
    let app = Arc::new(TestApp::spawn_with(with_hops).await);
    for round in 0..4 {
        let sub = format!("minted-{round}");
        let tokens: Vec<String> = (0..100)
            .map(|_| app.subject_token(json!({"sub": sub})))
            .collect();
        let tokens = Arc::new(tokens);
        let stop = Arc::new(AtomicBool::new(false));
        let t = tokens.clone();
        let load = exchanging(
            &app,
            6,
            Arc::new(move |n| (t[n % t.len()].clone(), "inventory-api")),
            &stop,
        );
        tokio::time::sleep(std::time::Duration::from_millis(30 + 10 * round)).await;
        let sent = now();
        let resp = revoke_until_done(&app, json!({"issuer": "tessera", "subject": sub})).await;
        assert_eq!(resp.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stop.store(true, Ordering::SeqCst);
        for minted in collected(load).await {
            // Issued at or before the revocation (it was sent at `sent` or later): revoked.
            if claims_of(&minted)["iat"].as_i64().unwrap() <= sent {
                assert!(
                    !active(&app, &minted).await,
                    "round {round}: a token minted for a revoked subject is active"
                );
            }
        }
    }
}
