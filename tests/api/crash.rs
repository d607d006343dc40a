//! Crash safety: SIGKILL mid-load, then a restart: every token any client received has its
//! record, and the audit chain verifies.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_record_of_a_token_handed_out() {
    let app = TestApp::spawn().await;
    let config = std::fs::read_to_string(&app.config_path)
        .unwrap()
        .replace("tessera.db", "crash.db");
    let path = app.dir.path().join("crash.toml");
    std::fs::write(&path, &config).unwrap();
    let mut served = Served::start(&path);
    let http = reqwest::Client::new();
    served.wait_ready(&http).await;
    let subject = app.subject_token(json!({"exp": now() + 3600}));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, subject) = (http.clone(), served.url.clone(), subject.clone());
            tokio::spawn(async move {
                let body = serde_urlencoded::to_string([
                    ("grant_type", TOKEN_EXCHANGE),
                    ("subject_token", subject.as_str()),
                    ("subject_token_type", ACCESS_TOKEN),
                    ("audience", "inventory-api"),
                ])
                .unwrap();
                let mut jtis = Vec::new();
                loop {
                    let sent = http
                        .post(format!("{url}/token"))
                        .basic_auth("orders-svc", Some(ORDERS_SECRET))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send()
                        .await;
                    let Ok(resp) = sent else { break };
                    let Ok(answer) = resp.json::<Value>().await else {
                        break;
                    };
                    if let Some(token) = answer["access_token"].as_str() {
                        jtis.push(claims_of(token)["jti"].as_str().unwrap().to_string());
                    }
                }
                jtis
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    served.signal("-KILL");
    let _ = tokio::task::spawn_blocking(move || served.child.wait()).await;
    let mut received = Vec::new();
    for c in clients {
        received.extend(c.await.unwrap());
    }
    assert!(
        received.len() > 10,
        "the load ran ({} tokens)",
        received.len()
    );

    // Restart on the same database: migrations and a new chain; then audit as an operator would.
    let restarted = Served::start(&path);
    restarted.wait_ready(&http).await;
    drop(restarted);
    let out = run_cli(
        &[
            "audit",
            "--format",
            "json",
            "--limit",
            "1000000",
            "--outcome",
            "granted",
        ],
        Some(&path),
    );
    let recorded: std::collections::HashSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["token_jti"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let missing = received.iter().filter(|j| !recorded.contains(*j)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} tokens have no record",
        received.len()
    );
    let verify = run_cli(&["audit", "verify"], Some(&path));
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
