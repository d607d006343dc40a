//! Two instances on one database (SPEC §7): whichever instance a request reaches, revocations,
//! single-use proofs and audit queries are the same, and each instance's chain verifies.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use super::dpop::proof;
use crate::helpers::*;

async fn exchange_with_proof(
    http: &reqwest::Client,
    url: &str,
    subject: &str,
    dpop: &str,
) -> reqwest::Response {
    exchange_request(http, url, subject, "inventory-api")
        .header("DPoP", dpop)
        .send()
        .await
        .unwrap()
}

async fn introspect(http: &reqwest::Client, url: &str, token: &str) -> Value {
    http.post(format!("{url}/introspect"))
        .basic_auth("orders-svc", Some(ORDERS_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("token", token)]).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn exchanges_seen_at(http: &reqwest::Client, admin_url: &str) -> Vec<Value> {
    let page: Value = http
        .get(format!("{admin_url}/admin/exchanges?limit=100"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn two_instances_share_revocation_replay_protection_and_the_audit_trail() {
    let a = TestApp::spawn().await;
    let b = a.serve_another_instance().await;
    let b_admin = b.admin_url.clone().unwrap();
    let key = TestKey::generate(Algorithm::ES256, "client-key");

    // A token minted at A, revoked through B, is inactive at A.
    let minted = a.minted(json!({})).await;
    assert_eq!(introspect(&a.http, &b.url, &minted).await["active"], true);
    let jti = claims_of(&minted)["jti"].as_str().unwrap().to_string();
    let revoked: Value = a
        .http
        .post(format!("{b_admin}/admin/revoke"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "jti": jti }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["revoked"], 1, "{revoked}");
    assert_eq!(introspect(&a.http, &a.url, &minted).await["active"], false);

    // A DPoP proof used at A is refused at B.
    let dpop = proof(&key, json!({}));
    let first = exchange_with_proof(&a.http, &a.url, &a.subject_token(json!({})), &dpop).await;
    assert_eq!(first.status(), 200);
    let replay = exchange_with_proof(&a.http, &b.url, &a.subject_token(json!({})), &dpop).await;
    let desc = assert_error(replay, 400, "invalid_dpop_proof").await;
    assert!(desc.contains("used before"), "{desc}");

    // A grant at B, then both instances' records seen from either.
    let at_b = exchange_at(
        &a.http,
        &b.url,
        &a.subject_token(json!({})),
        "inventory-api",
    )
    .await;
    assert_eq!(at_b, 200);
    let from_a = exchanges_seen_at(&a.http, &a.admin_url).await;
    let from_b = exchanges_seen_at(&a.http, &b_admin).await;
    assert_eq!(from_a.len(), 4, "{from_a:?}");
    assert_eq!(from_a, from_b, "the same audit trail at either instance");
    let chains: std::collections::HashSet<&str> = from_a
        .iter()
        .map(|r| r["chain"].as_str().unwrap())
        .collect();
    assert_eq!(chains.len(), 2, "one chain per instance");
    // The console's overview counts both instances' exchanges, whichever one shows it.
    let (session, _) = super::console::sign_in(&a).await;
    let overview = super::console::get(&a, "/console/overview", &session)
        .await
        .text()
        .await
        .unwrap();
    let granted = from_a.iter().filter(|r| r["outcome"] == "granted").count();
    let denied = from_a.len() - granted;
    assert!(
        overview.contains(&format!(
            "{granted} granted</span> · <span class=\"denied\">{denied} denied"
        )),
        "{overview}"
    );

    drop(b);
    let out = a.cli(&["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("4 records verified"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_at_one_instance_covers_exchanges_in_flight_at_both() {
    let a = std::sync::Arc::new(TestApp::spawn().await);
    let b = a.serve_another_instance().await;
    let b_admin = b.admin_url.clone().unwrap();
    for round in 0..4 {
        let sub = format!("both-{round}");
        let tokens: std::sync::Arc<Vec<String>> = std::sync::Arc::new(
            (0..100)
                .map(|_| a.subject_token(json!({ "sub": sub })))
                .collect(),
        );
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks: Vec<_> = (0..6)
            .map(|t| {
                let (a, tokens, stop) = (a.clone(), tokens.clone(), stop.clone());
                let url = if t % 2 == 0 {
                    a.url.clone()
                } else {
                    b.url.clone()
                };
                tokio::spawn(async move {
                    let mut minted = Vec::new();
                    let mut n = t;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let resp =
                            exchange_request(&a.http, &url, &tokens[n % 100], "inventory-api")
                                .send()
                                .await
                                .unwrap();
                        n += 6;
                        if resp.status() == 200 {
                            let body: Value = resp.json().await.unwrap();
                            minted.push(body["access_token"].as_str().unwrap().to_string());
                        }
                    }
                    minted
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(40 + 10 * round)).await;
        let resp = a
            .http
            .post(format!("{b_admin}/admin/revoke"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "issuer": "corp", "subject": sub }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for task in tasks {
            for token in task.await.unwrap() {
                for url in [&a.url, &b.url] {
                    assert_eq!(
                        introspect(&a.http, url, &token).await["active"],
                        false,
                        "round {round}: a token minted for a revoked subject is active"
                    );
                }
            }
        }
    }
}
