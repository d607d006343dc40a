//! Two instances on one database (SPEC §7): whichever instance a request reaches, revocations,
//! single-use proofs and audit queries are the same, and each instance's chain verifies.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::dpop::proof;
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

    drop(b);
    let out = a.cli(&["audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("4 records verified"), "{text}");
}
