//! Secrets hygiene: after traffic carrying tokens, secrets and proofs, none of them is found
//! in the logs, the database file or the metrics.

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_secret_or_proof_reaches_logs_database_or_metrics() {
    let app = TestApp::spawn().await;
    let (served, _, _) = app.serve_copy("hygiene", "debug", |_| {}).await;
    let http = reqwest::Client::new();
    let admin_url = served.admin_url.clone().expect("the admin listener");

    let subject = app.subject_token(json!({}));
    let forged = format!("{}x", &subject[..subject.len() - 2]);
    let dpop_key = TestKey::generate(Algorithm::ES256, "holder");
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".into());
    header.extras.insert("jwk", dpop_key.jwk.clone());
    let proof = jsonwebtoken::encode(
        &header,
        &json!({"jti": uuid_like(), "htm": "POST", "htu": format!("{STS}/token"), "iat": now()}),
        &dpop_key.encoding(),
    )
    .unwrap();
    let wrong_secret = "a-wrong-secret-that-must-not-leak";
    let mut sent: Vec<String> = vec![
        subject.clone(),
        forged.clone(),
        proof.clone(),
        ORDERS_SECRET.into(),
        wrong_secret.into(),
        ADMIN_TOKEN.into(),
    ];

    let post = |token: &str, secret: &str, proof: Option<&str>| {
        let body = serde_urlencoded::to_string([
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", token),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "inventory-api"),
        ])
        .unwrap();
        let mut req = http
            .post(format!("{}/token", served.url))
            .basic_auth("orders-svc", Some(secret))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        req.body(body).send()
    };
    let granted: Value = post(&subject, ORDERS_SECRET, Some(&proof))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let minted = granted["access_token"].as_str().unwrap().to_string();
    sent.push(minted.clone());
    post(&subject, ORDERS_SECRET, Some(&proof)).await.unwrap();
    post(&forged, ORDERS_SECRET, None).await.unwrap();
    post(&subject, wrong_secret, None).await.unwrap();
    http.post(format!("{}/introspect", served.url))
        .basic_auth("orders-svc", Some(ORDERS_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={minted}"))
        .send()
        .await
        .unwrap();
    http.get(format!("{admin_url}/admin/exchanges"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    http.get(format!("{admin_url}/admin/exchanges"))
        .bearer_auth("a-wrong-admin-token-xyz")
        .send()
        .await
        .unwrap();
    sent.push("a-wrong-admin-token-xyz".into());
    let metrics = http
        .get(format!("{admin_url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let database = crate::storage::contents(&served.database.as_ref().unwrap().url, app.dir.path());
    drop(served);

    let mut haystacks: Vec<(String, String)> = vec![("metrics".into(), metrics)];
    haystacks.push((
        "logs".into(),
        std::fs::read_to_string(app.dir.path().join("hygiene.log")).unwrap_or_default(),
    ));
    haystacks.push(("database".into(), database));
    assert!(
        haystacks
            .iter()
            .any(|(n, h)| n == "logs" && h.contains("token exchange")),
        "the logs were captured"
    );
    for secret in &sent {
        let signature = secret.rsplit('.').next().unwrap_or(secret);
        for (name, haystack) in &haystacks {
            assert!(
                !haystack.contains(secret.as_str()),
                "a secret reached the {name}"
            );
            assert!(
                signature.len() < 16 || !haystack.contains(signature),
                "a token signature reached the {name}"
            );
        }
    }
}
