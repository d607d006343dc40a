use serde_json::{Value, json};

use crate::helpers::*;

const FIELDS: &[&str] = &[
    "id",
    "time",
    "outcome",
    "error",
    "reason",
    "client_id",
    "subject_issuer",
    "subject",
    "subject_jti",
    "actor_issuer",
    "actor",
    "requested_audiences",
    "requested_resources",
    "requested_scopes",
    "granted_audiences",
    "granted_scopes",
    "rule",
    "token_jti",
    "expires_at",
    "revoked_at",
    "remote_addr",
    "user_agent",
    "request_id",
    "duration_us",
    "chain",
    "count",
    "truncated",
];

#[tokio::test]
async fn every_exchange_granted_or_denied_leaves_one_record() {
    let app = TestApp::spawn().await;
    let subject = app.subject_token(json!({"jti": "subject-1", "sub": "bob"}));
    let granted = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth("orders-svc", Some(ORDERS_SECRET))
        .header("x-request-id", "req-123")
        .header("user-agent", "orders-svc/1.0")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("audience", "inventory-api"),
                ("scope", "inventory:read"),
            ])
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(granted.headers()["x-request-id"], "req-123");
    let body: Value = granted.json().await.unwrap();
    let minted_jti = claims_of(body["access_token"].as_str().unwrap())["jti"].clone();
    app.post_token(
        &[("grant_type", TOKEN_EXCHANGE)],
        Some(("orders-svc", "wrong")),
    )
    .await;
    app.exchange(&[("grant_type", "password")]).await;

    let records = app.records(&[]);
    assert_eq!(records.len(), 3, "one record per request");
    for r in &records {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        for f in FIELDS {
            assert!(keys.contains(f), "field {f} missing from {r}");
        }
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
    }
    let g = &records[2];
    assert_eq!(g["outcome"], "granted");
    assert_eq!(g["error"], Value::Null);
    assert_eq!(g["client_id"], "orders-svc");
    assert_eq!(g["subject_issuer"], "corp");
    assert_eq!(g["subject"], "bob");
    assert_eq!(g["subject_jti"], "subject-1");
    assert_eq!(g["requested_audiences"], json!(["inventory-api"]));
    assert_eq!(g["requested_resources"], json!([]));
    assert_eq!(g["requested_scopes"], json!(["inventory:read"]));
    assert_eq!(g["granted_audiences"], json!(["inventory-api"]));
    assert_eq!(g["granted_scopes"], json!(["inventory:read"]));
    assert_eq!(g["rule"], "orders-to-inventory");
    assert_eq!(g["token_jti"], minted_jti);
    assert!(g["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(g["revoked_at"], Value::Null);
    assert_eq!(g["remote_addr"], "127.0.0.1");
    assert_eq!(g["user_agent"], "orders-svc/1.0");
    assert_eq!(g["request_id"], "req-123");
    assert!(g["duration_us"].as_i64().unwrap() > 0);
    let bad_secret = &records[1];
    assert_eq!(
        (bad_secret["outcome"].as_str(), bad_secret["error"].as_str()),
        (Some("denied"), Some("invalid_client"))
    );
    assert_eq!(bad_secret["client_id"], "orders-svc");
    assert_eq!(records[0]["error"], "unsupported_grant_type");
    assert!(!records[0]["reason"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn audit_filters_select_the_records_asked_for() {
    let app = TestApp::spawn().await;
    let alice = app.subject_token(json!({"jti": "alice-subject"}));
    let bob = app.subject_token(json!({"sub": "bob", "jti": "bob-subject"}));
    assert_eq!(app.exchange_subject(&alice).await.status(), 200);
    assert_eq!(app.exchange_subject(&alice).await.status(), 200);
    assert_eq!(app.exchange_subject(&bob).await.status(), 200);
    app.exchange(&[
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", &bob),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "billing-api"),
    ])
    .await;
    app.post_token(
        &[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &bob),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", "inventory-api"),
        ],
        Some(("billing-svc", "billing-secret")),
    )
    .await;

    let count = |args: &[&str]| app.records(args).len();
    assert_eq!(count(&[]), 5);
    assert_eq!(count(&["--subject", "alice"]), 2);
    assert_eq!(
        count(&["--subject", "bob"]),
        2,
        "unauthorized_client is decided before the token is read"
    );
    assert_eq!(count(&["--client", "orders-svc"]), 4);
    assert_eq!(count(&["--client", "billing-svc"]), 1);
    assert_eq!(count(&["--issuer", "corp"]), 4);
    assert_eq!(count(&["--audience", "inventory-api"]), 4);
    assert_eq!(count(&["--audience", "billing-api"]), 1);
    assert_eq!(count(&["--audience", "inventory"]), 0, "whole values only");
    assert_eq!(count(&["--rule", "orders-to-inventory"]), 3);
    assert_eq!(count(&["--outcome", "granted"]), 3);
    assert_eq!(count(&["--outcome", "denied"]), 2);
    assert_eq!(count(&["--error", "invalid_target"]), 1);
    assert_eq!(count(&["--error", "unauthorized_client"]), 1);
    assert_eq!(count(&["--subject-jti", "alice-subject"]), 2);
    assert_eq!(count(&["--since", "1h"]), 5);
    assert_eq!(count(&["--until", "1h"]), 0);
    assert_eq!(
        count(&[
            "--since",
            "2000-01-01T00:00:00Z",
            "--until",
            "2999-01-01T00:00:00+02:00"
        ]),
        5
    );
    assert_eq!(count(&["--limit", "2"]), 2);
    let granted = app.records(&["--outcome", "granted"]);
    let jti = granted[0]["token_jti"].as_str().unwrap();
    let by_jti = app.records(&["--jti", jti]);
    assert_eq!(by_jti.len(), 1);
    assert_eq!(by_jti[0]["id"], granted[0]["id"]);
    // Newest first.
    let all = app.records(&[]);
    let times: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r["time"].as_str().unwrap(), r["id"].as_str().unwrap()))
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    let bad = app.cli(&["audit", "--outcome", "maybe"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--outcome"));
    let bad = app.cli(&["audit", "--since", "last tuesday"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since"));
}

#[tokio::test]
async fn audit_prints_csv_and_an_aligned_table() {
    let app = TestApp::spawn().await;
    app.minted(json!({})).await;
    let csv = app.cli(&["audit", "--format", "csv"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("id,time,outcome,error,reason,client_id"));
    assert_eq!(lines[0].split(',').count(), 31);
    assert!(lines[1].contains(",granted,"));
    let table = app.cli(&["audit"]);
    let table = String::from_utf8(table.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TIME"));
    let column = lines[0].find("OUTCOME").unwrap();
    assert_eq!(&lines[1][column..column + 7], "granted");
}

#[tokio::test]
async fn the_database_holds_no_raw_token_or_secret() {
    let app = TestApp::spawn().await;
    let subject = app.subject_token(json!({}));
    let body: Value = app.exchange_subject(&subject).await.json().await.unwrap();
    let minted = body["access_token"].as_str().unwrap().to_string();
    let forged = format!("{}x", &subject[..subject.len() - 1]);
    app.exchange_subject(&forged).await;
    app.stop().await;
    let text = app.database_contents();
    assert!(text.len() > 500, "the database was read");
    for secret in [
        subject.as_str(),
        minted.as_str(),
        forged.as_str(),
        ORDERS_SECRET,
    ] {
        assert!(!text.contains(secret), "the database holds a secret");
        let signature = secret.rsplit('.').next().unwrap();
        assert!(
            !text.contains(signature),
            "the database holds a token signature"
        );
    }
}

#[tokio::test]
async fn no_token_leaves_without_its_record() {
    let app = TestApp::spawn().await;
    app.sql("ALTER TABLE exchanges RENAME TO exchanges_elsewhere");
    let resp = app.exchange_subject(&app.subject_token(json!({}))).await;
    let desc = assert_error(resp, 503, "temporarily_unavailable").await;
    assert!(desc.contains("recorded"), "{desc}");
    // Once the store is back, service resumes by itself.
    app.sql("ALTER TABLE exchanges_elsewhere RENAME TO exchanges");
    app.minted(json!({})).await;
    let records = app.records(&[]);
    assert_eq!(
        records.len(),
        1,
        "only the exchange that was answered with a token is recorded"
    );
    assert_eq!(records[0]["outcome"], "granted");
}

#[tokio::test]
async fn concurrent_exchanges_each_get_a_committed_record() {
    let app = TestApp::spawn().await;
    let tokens: Vec<String> = (0..40)
        .map(|i| app.subject_token(json!({"jti": format!("c-{i}")})))
        .collect();
    let answers =
        futures_util::future::join_all(tokens.iter().map(|t| app.exchange_subject(t))).await;
    let mut jtis = Vec::new();
    for a in answers {
        assert_eq!(a.status(), 200);
        let body: Value = a.json().await.unwrap();
        jtis.push(
            claims_of(body["access_token"].as_str().unwrap())["jti"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let records = app.records(&["--outcome", "granted"]);
    assert_eq!(records.len(), 40);
    for jti in jtis {
        assert!(records.iter().any(|r| r["token_jti"] == jti.as_str()));
    }
}

#[tokio::test]
async fn records_keep_request_values_within_their_bounds() {
    let app = TestApp::spawn_with(|c| c.server.max_body_bytes = Some(200_000)).await;
    let subject = app.subject_token(json!({}));
    let long = "a".repeat(64_000);
    let control = "\u{1}".repeat(5_000);
    let resp = app
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", &long),
            ("audience", &control),
            (
                "scope",
                &format!("{} {}", "b".repeat(3000), "c".repeat(3000)),
            ),
        ])
        .await;
    let desc = assert_error(resp, 400, "invalid_target").await;
    assert!(
        desc.len() < 1024,
        "the description does not echo the request: {} bytes",
        desc.len()
    );
    let record = &app.records(&["--limit", "1"])[0];
    assert_eq!(record["truncated"], true);
    assert_eq!(record["count"], 1);
    let audiences = record["requested_audiences"].as_array().unwrap();
    assert!(
        audiences
            .iter()
            .all(|a| a.as_str().unwrap().chars().count() <= 256)
    );
    let text = serde_json::to_string(record).unwrap();
    assert!(text.len() < 8 * 1024, "a record of {} bytes", text.len());
    // An ordinary record is whole and says so.
    app.minted(json!({})).await;
    assert_eq!(app.records(&["--limit", "1"])[0]["truncated"], false);
}

#[tokio::test]
async fn requests_are_bounded_in_targets_and_scopes() {
    let app = TestApp::spawn_with(|c| c.server.max_body_bytes = Some(200_000)).await;
    let subject = app.subject_token(json!({}));
    let base = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    // One audience repeated thousands of times is one target, minted once.
    let mut form: Vec<(&str, &str)> = base.to_vec();
    form.extend(std::iter::repeat_n(("audience", "inventory-api"), 2807));
    let resp = app.exchange(&form).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["aud"],
        "inventory-api"
    );
    assert_eq!(
        app.records(&["--limit", "1"])[0]["requested_audiences"],
        json!(["inventory-api"])
    );
    // Seventeen distinct targets are too many.
    let names: Vec<String> = (0..17).map(|i| format!("api-{i}")).collect();
    let mut form: Vec<(&str, &str)> = base.to_vec();
    form.extend(names.iter().map(|n| ("audience", n.as_str())));
    let desc = assert_error(app.exchange(&form).await, 400, "invalid_request").await;
    assert!(desc.contains("16 targets"), "{desc}");
    // Sixty-five scope-tokens are too many.
    let scope: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
    let scope = scope.join(" ");
    let mut form: Vec<(&str, &str)> = base.to_vec();
    form.extend([("audience", "inventory-api"), ("scope", scope.as_str())]);
    let desc = assert_error(app.exchange(&form).await, 400, "invalid_request").await;
    assert!(desc.contains("64 scope-tokens"), "{desc}");
}

/// Records written behind the server's back, as a version without record bounds could have
/// stored them (SQL text, on either backend).
fn planted(n: usize, size: usize) -> String {
    let big = format!("[\"{}\"]", "a".repeat(size));
    (0..n)
        .map(|i| {
            format!(
                "INSERT INTO exchanges (id, time_us, outcome, reason, requested_audiences, \
                 requested_resources, requested_scopes, granted_audiences, granted_scopes, \
                 request_id, duration_us, chain, seq, prev_hash, hash) VALUES ('PLANTED{i:04}', \
                 {}, 'denied', 'planted', '{big}', '[]', '[]', '[]', '[]', 'req', 1, 'planted', \
                 {i}, 'p', 'h');",
                1_000_000 + i as i64
            )
        })
        .collect()
}

#[tokio::test]
async fn admin_pages_are_bounded_by_bytes_as_well_as_rows() {
    let app = TestApp::spawn().await;
    app.sql(&planted(12, 200_000));
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/admin/exchanges?limit=1000".to_string(),
            Some(c) => format!("/admin/exchanges?limit=1000&cursor={c}"),
        };
        let body = app.admin_get(&path).await.bytes().await.unwrap();
        assert!(body.len() < 1_600_000, "a page of {} bytes", body.len());
        let page: Value = serde_json::from_slice(&body).unwrap();
        seen += page["items"].as_array().unwrap().len();
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 20, "paging ends");
    }
    assert_eq!(seen, 12, "every record, over several pages");
    assert!(pages >= 2);
}

#[tokio::test]
async fn an_audit_query_past_its_budget_is_refused_and_the_service_goes_on() {
    let app = TestApp::spawn_with(|c| c.storage.audit_query_budget = Some("10ms".into())).await;
    let bulk = if crate::on_postgres() {
        "INSERT INTO exchanges (id, time_us, outcome, reason, requested_audiences, \
         requested_resources, requested_scopes, granted_audiences, granted_scopes, request_id, \
         duration_us, chain, seq, prev_hash, hash) SELECT 'B' || n, n, 'granted', 'r', '[]', \
         '[]', '[]', '[]', '[]', 'req', 1, 'bulk', n, 'p', 'h' FROM generate_series(1, 400000) n"
    } else {
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 400000) \
         INSERT INTO exchanges (id, time_us, outcome, reason, requested_audiences, \
         requested_resources, requested_scopes, granted_audiences, granted_scopes, request_id, \
         duration_us, chain, seq, prev_hash, hash) SELECT 'B' || n, n, 'granted', 'r', '[]', \
         '[]', '[]', '[]', '[]', 'req', 1, 'bulk', n, 'p', 'h' FROM c"
    };
    app.sql(bulk);
    // No record has this error: the query looks at every one of them.
    let resp = app
        .admin_get("/admin/exchanges?error=nothing_like_it")
        .await;
    let desc = assert_error(resp, 400, "invalid_request").await;
    assert!(desc.contains("time budget"), "{desc}");
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.minted(json!({})).await;
}

#[tokio::test]
async fn space_freed_by_retention_returns_to_the_file_system() {
    if crate::on_postgres() {
        return; // PostgreSQL reuses and returns space itself (autovacuum).
    }
    let app = TestApp::spawn_with(|c| c.storage.retention = Some("2s".into())).await;
    let file = app.dir.path().join("tessera.db");
    app.sql(&format!(
        "INSERT INTO audit_chains VALUES ('planted', 0, 39, 'h', -1, '{}'); {}",
        "0".repeat(64),
        planted(40, 100_000)
    ));
    app.sql("PRAGMA wal_checkpoint(TRUNCATE)");
    let full = std::fs::metadata(&file).unwrap().len();
    assert!(full > 3_000_000, "{full}");
    let mut shrunk = false;
    for _ in 0..100 {
        // The writer's commits move the checkpointer, which carries the shorter file over.
        for _ in 0..20 {
            app.minted(json!({})).await;
        }
        if std::fs::metadata(&file).unwrap().len() < full / 2 {
            shrunk = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        shrunk,
        "the file kept its size: {} of {full} bytes",
        std::fs::metadata(&file).unwrap().len()
    );
    let metrics = app
        .http
        .get(format!("{}/metrics", app.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("tessera_store_size_bytes "), "{metrics}");
    assert!(metrics.contains("tessera_store_free_bytes "));
}

/// The largest resident size a child process reached, in KiB: its peak (`VmHWM`, which starts
/// anew at exec) read until it exits.
fn max_rss_kib(mut command: std::process::Command) -> u64 {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            && let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the command failed");
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[tokio::test]
async fn the_cli_reads_large_records_in_flat_memory() {
    let app = TestApp::spawn().await;
    // 300 records of 150 KB each: 45 MB of records written behind the server's back.
    app.sql(&planted(300, 150_000));
    let cli = |args: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
        command.args(args).arg("--config").arg(&app.config_path);
        command
    };
    let export = max_rss_kib(cli(&["audit", "--format", "json", "--limit", "1000"]));
    assert!(export < 40 * 1024, "the export reached {export} KiB");
}

#[tokio::test]
async fn audit_queries_never_take_the_connections_exchanges_need() {
    let app = std::sync::Arc::new(
        TestApp::spawn_with(|c| c.storage.audit_query_budget = Some("2s".into())).await,
    );
    let bulk = if crate::on_postgres() {
        "INSERT INTO exchanges (id, time_us, outcome, reason, requested_audiences, \
         requested_resources, requested_scopes, granted_audiences, granted_scopes, request_id, \
         duration_us, chain, seq, prev_hash, hash) SELECT 'B' || n, n, 'granted', 'r', '[]', \
         '[]', '[]', '[]', '[]', 'req', 1, 'bulk', n, 'p', 'h' FROM generate_series(1, 300000) n"
    } else {
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 300000) \
         INSERT INTO exchanges (id, time_us, outcome, reason, requested_audiences, \
         requested_resources, requested_scopes, granted_audiences, granted_scopes, request_id, \
         duration_us, chain, seq, prev_hash, hash) SELECT 'B' || n, n, 'granted', 'r', '[]', \
         '[]', '[]', '[]', '[]', 'req', 1, 'bulk', n, 'p', 'h' FROM c"
    };
    app.sql(bulk);
    let auditors: Vec<_> = (0..10)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                app.admin_get("/admin/exchanges?audience=nowhere")
                    .await
                    .status()
                    .as_u16()
            })
        })
        .collect();
    // While ten auditors read, the service answers as usual.
    for _ in 0..5 {
        assert_eq!(app.get("/readyz").await.status(), 200);
        let token = app.minted(json!({})).await;
        let introspected = app
            .post_form(
                "/introspect",
                &[("token", &token)],
                ("orders-svc", ORDERS_SECRET),
            )
            .await;
        assert_eq!(introspected.status(), 200);
    }
    for auditor in auditors {
        let status = auditor.await.unwrap();
        assert!(matches!(status, 200 | 400 | 503), "{status}");
    }
}
