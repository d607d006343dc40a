//! SIGTERM under load: the server stops accepting, finishes what is in flight, commits its
//! records, and exits; every token a client received has its record.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_leaves_a_record_for_every_token_handed_out() {
    let app = TestApp::spawn().await;
    let config = std::fs::read_to_string(&app.config_path)
        .unwrap()
        .replace("tessera.db", "served.db");
    let path = app.dir.path().join("served.toml");
    std::fs::write(&path, &config).unwrap();
    let mut served = Served::start(&path);
    let http = reqwest::Client::new();
    served.wait_ready(&http).await;
    let subject = app.subject_token(json!({"exp": now() + 3600}));

    // Eight clients exchange in a loop until the server goes away.
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, subject) = (http.clone(), served.url.clone(), subject.clone());
            tokio::spawn(async move {
                let mut jtis = Vec::new();
                let body = serde_urlencoded::to_string([
                    ("grant_type", TOKEN_EXCHANGE),
                    ("subject_token", subject.as_str()),
                    ("subject_token_type", ACCESS_TOKEN),
                    ("audience", "inventory-api"),
                ])
                .unwrap();
                loop {
                    let sent = http
                        .post(format!("{url}/token"))
                        .basic_auth("orders-svc", Some(ORDERS_SECRET))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send()
                        .await;
                    let Ok(resp) = sent else { break };
                    if resp.status() != 200 {
                        break;
                    }
                    let Ok(answer) = resp.json::<Value>().await else {
                        break;
                    };
                    jtis.push(
                        claims_of(answer["access_token"].as_str().unwrap())["jti"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                }
                jtis
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    served.signal("-TERM");
    let status = tokio::task::spawn_blocking(move || served.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "a clean exit: {status:?}");
    let mut received = Vec::new();
    for c in clients {
        received.extend(c.await.unwrap());
    }
    assert!(
        received.len() > 10,
        "the load ran ({} tokens)",
        received.len()
    );

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
    assert!(out.status.success());
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
    let missing: Vec<&String> = received.iter().filter(|j| !recorded.contains(*j)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} tokens have no record",
        missing.len(),
        received.len()
    );
    let verify = run_cli(&["audit", "verify"], Some(&path));
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
