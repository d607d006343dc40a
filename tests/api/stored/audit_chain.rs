//! `tessera audit verify` against rows altered, removed or inserted directly in the database.

use serde_json::json;

use crate::helpers::*;

fn verify(app: &TestApp) -> (bool, String) {
    let out = app.cli(&["audit", "verify"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn sql(app: &TestApp, statement: &str) {
    app.sql(statement);
}

/// A server with six records written: five granted, then one denied. Ids oldest first.
async fn app_with_records() -> (TestApp, Vec<String>) {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        let token = app.subject_token(json!({"sub": format!("user-{i}")}));
        assert_eq!(app.exchange_subject(&token).await.status(), 200);
    }
    app.exchange_subject("not-a-token").await;
    let mut ids: Vec<String> = app
        .records(&[])
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.reverse();
    (app, ids)
}

#[tokio::test]
async fn audit_verify_detects_altered_removed_and_inserted_records() {
    let (app, ids) = app_with_records().await;
    let (ok, text) = verify(&app);
    assert!(ok, "{text}");
    assert!(text.contains("6 records verified"), "{text}");
    let id = |i: usize| ids[i].clone();

    let cases: Vec<(String, String, &str)> = vec![
        (
            format!(
                "UPDATE exchanges SET subject = 'mallory' WHERE id = '{}'",
                id(2)
            ),
            id(2),
            "altered",
        ),
        (
            format!(
                "UPDATE exchanges SET granted_scopes = '[\"inventory:admin\"]' WHERE id = '{}'",
                id(0)
            ),
            id(0),
            "altered",
        ),
        (
            format!("DELETE FROM exchanges WHERE id = '{}'", id(3)),
            id(4),
            "removed",
        ),
        (
            format!("DELETE FROM exchanges WHERE id = '{}'", id(0)),
            id(1),
            "removed",
        ),
        (
            format!("DELETE FROM exchanges WHERE id = '{}'", id(5)),
            id(4),
            "removed",
        ),
        (
            format!(
                "INSERT INTO exchanges SELECT 'FORGED', time_us, outcome, error, reason, client_id, subject_issuer, subject, subject_jti, actor_issuer, actor, requested_audiences, requested_resources, requested_scopes, granted_audiences, granted_scopes, rule, 'forged-jti', expires_at, revoked_at, remote_addr, user_agent, request_id, duration_us, chain, seq + 100, hash, hash, subject_until_us, actor_jti, count, truncated FROM exchanges WHERE id = '{}'",
                id(5)
            ),
            "FORGED".into(),
            "broken at record FORGED",
        ),
        (
            format!(
                "INSERT INTO exchanges SELECT 'STRAY', time_us, outcome, error, reason, client_id, subject_issuer, subject, subject_jti, actor_issuer, actor, requested_audiences, requested_resources, requested_scopes, granted_audiences, granted_scopes, rule, 'stray-jti', expires_at, revoked_at, remote_addr, user_agent, request_id, duration_us, 'another-chain', seq, prev_hash, hash, subject_until_us, actor_jti, count, truncated FROM exchanges WHERE id = '{}'",
                id(1)
            ),
            "STRAY".into(),
            "inserted",
        ),
    ];
    for (statement, named, what) in cases {
        let (app, ids) = app_with_records().await;
        let statement = ids
            .iter()
            .enumerate()
            .fold(statement, |st, (i, fresh)| st.replace(&id(i), fresh));
        let named = ids
            .iter()
            .enumerate()
            .fold(named, |n, (i, fresh)| n.replace(&id(i), fresh));
        sql(&app, &statement);
        let (ok, text) = verify(&app);
        assert!(!ok, "{statement}: verify passed");
        assert!(
            text.contains(&named) && text.contains(what),
            "{statement}: {text}"
        );
    }
    // Marking a revocation is the one update the chain allows.
    sql(
        &app,
        &format!("UPDATE exchanges SET revoked_at = 1 WHERE id = '{}'", id(1)),
    );
    let (ok, text) = verify(&app);
    assert!(ok, "{text}");
}

#[tokio::test]
async fn each_server_start_writes_its_own_chain_and_all_verify() {
    let app = TestApp::spawn().await;
    app.minted(json!({})).await;
    app.stop().await;
    let config = tessera::config::load(&app.config_path).unwrap();
    let second = tessera::startup::Application::build(config).await.unwrap();
    let url = format!("http://127.0.0.1:{}", second.port());
    let handle = second.handle();
    tokio::spawn(second.run_until_stopped());
    for _ in 0..200 {
        if app
            .http
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let body = serde_urlencoded::to_string([
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", &app.subject_token(json!({}))),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "inventory-api"),
    ])
    .unwrap();
    let resp = app
        .http
        .post(format!("{url}/token"))
        .basic_auth("orders-svc", Some(ORDERS_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    handle.stop(true).await;
    let records = app.records(&[]);
    assert_ne!(records[0]["chain"], records[1]["chain"]);
    let (ok, text) = verify(&app);
    assert!(ok && text.contains("2 records verified"), "{text}");
}

#[tokio::test]
async fn retention_prunes_old_records_and_the_chain_still_verifies() {
    let app = TestApp::spawn_with(|c| c.storage.retention = Some("2s".into())).await;
    for _ in 0..3 {
        assert_eq!(
            app.exchange_subject(&app.subject_token(json!({})))
                .await
                .status(),
            200
        );
    }
    let mut remaining = usize::MAX;
    for _ in 0..100 {
        remaining = app.records(&[]).len();
        if remaining == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(remaining, 0, "records past retention are pruned");
    let (ok, text) = verify(&app);
    assert!(ok, "{text}");
    app.minted(json!({})).await;
    let (ok, text) = verify(&app);
    assert!(
        ok && text.contains("1 records verified"),
        "the chain goes on from its anchor: {text}"
    );
}
