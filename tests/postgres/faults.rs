//! The database server dropping every connection (a restart, a failover): requests fail with
//! 503 at worst, no token leaves without its record, and service resumes by itself.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn service_resumes_by_itself_after_the_server_drops_every_connection() {
    let app = TestApp::spawn().await;
    app.minted(json!({})).await;
    let drop_connections = if crate::on_postgres() {
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()"
    } else {
        return; // SQLite has no server to lose; see tests/api/audit.rs for its store faults.
    };
    app.sql(drop_connections);

    let mut granted = Vec::new();
    for _ in 0..5 {
        let resp = app.exchange_subject(&app.subject_token(json!({}))).await;
        if resp.status() == 200 {
            let body: serde_json::Value = resp.json().await.unwrap();
            granted.push(
                claims_of(body["access_token"].as_str().unwrap())["jti"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        } else {
            assert_error(resp, 503, "temporarily_unavailable").await;
        }
    }
    assert!(
        granted.len() >= 3,
        "service resumed: {} of 5",
        granted.len()
    );
    let ready = app
        .http
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let recorded = app.records(&["--outcome", "granted"]);
    for jti in granted {
        assert!(recorded.iter().any(|r| r["token_jti"] == jti.as_str()));
    }
}
