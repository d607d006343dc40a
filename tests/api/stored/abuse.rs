//! Bounded against abuse (SPEC §6): requests refused before client authentication are limited
//! per remote address and summarised; the address is the peer's unless the peer is a trusted
//! proxy.

use serde_json::{Value, json};

use crate::helpers::*;

fn limited(c: &mut RawConfig) {
    c.server.pre_auth_limit = Some(RawRateLimit {
        per_second: 1,
        burst: 5,
    });
}

async fn garbage(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app
        .http
        .post(format!("{}/token", app.url))
        .basic_auth("orders-svc", Some("wrong-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type={TOKEN_EXCHANGE}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn refusals_before_authentication_past_the_limit_become_one_summary() {
    let app = TestApp::spawn_with(limited).await;
    let mut refused = 0;
    let mut limited = 0;
    for _ in 0..40 {
        let resp = garbage(&app, &[]).await;
        match resp.status().as_u16() {
            401 => refused += 1,
            429 => {
                assert!(resp.headers().contains_key("retry-after"));
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["error"], "temporarily_unavailable");
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        (5..=20).contains(&refused),
        "{refused} answered 401 within the limit"
    );
    assert_eq!(refused + limited, 40);
    // An authenticated client from the same address is not held back.
    app.minted(json!({})).await;
    let individually = app.records(&["--outcome", "denied"]).len();
    assert_eq!(
        individually, refused,
        "past the limit, nothing is recorded one by one"
    );

    // The summary is written when its minute ends, or as the server stops. A run that
    // straddles a minute's turn has two: together they stand for every request limited.
    app.stop().await;
    let mut summaries = Vec::new();
    for _ in 0..100 {
        summaries = app
            .records(&["--outcome", "denied"])
            .into_iter()
            // A summary's reason counts its errors ("invalid_client ×30").
            .filter(|r| r["reason"].as_str().is_some_and(|why| why.contains('×')))
            .collect();
        let counted: i64 = summaries.iter().filter_map(|r| r["count"].as_i64()).sum();
        if counted == limited as i64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let counted: i64 = summaries.iter().filter_map(|r| r["count"].as_i64()).sum();
    assert_eq!(counted, limited as i64, "{summaries:?}");
    let summary = summaries
        .into_iter()
        .max_by_key(|r| r["count"].as_i64())
        .expect("a summary record");
    assert_eq!(summary["client_id"], Value::Null);
    assert_eq!(summary["remote_addr"], "127.0.0.1");
    assert!(
        summary["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{summary}"
    );
    let verify = app.cli(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let app = TestApp::spawn().await;
    let resp = garbage(&app, &[("x-forwarded-for", "198.51.100.1")]).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        app.records(&["--limit", "1"])[0]["remote_addr"],
        "127.0.0.1",
        "a header from an untrusted peer is ignored"
    );
    let app =
        TestApp::spawn_with(|c| c.server.trusted_proxies = Some(vec!["127.0.0.0/8".into()])).await;
    garbage(&app, &[("x-forwarded-for", "203.0.113.50, 198.51.100.1")]).await;
    assert_eq!(
        app.records(&["--limit", "1"])[0]["remote_addr"],
        "198.51.100.1"
    );
    garbage(&app, &[("forwarded", "for=\"[2001:db8::9]:443\"")]).await;
    assert_eq!(
        app.records(&["--limit", "1"])[0]["remote_addr"],
        "2001:db8::9"
    );
}

#[tokio::test]
async fn check_refuses_a_malformed_trusted_proxy() {
    let app = TestApp::spawn().await;
    let path = app.config_copy("proxies.toml", |c| {
        c.server.trusted_proxies = Some(vec!["10.0.0.0/40".into()]);
    });
    let out = run_cli(&["check"], Some(&path));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.trusted_proxies[0]"), "{err}");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn connections_holding_partial_bodies_take_bounded_memory() {
    use std::io::Write;
    let app = TestApp::spawn().await;
    let path = app.config_copy("connections.toml", |c| c.server.max_connections = Some(20));
    let served = Served::start(&path);
    served.wait_ready(&app.http).await;
    let pid = served.child.id();
    let before = rss_kib(pid);
    let addr = served.url.trim_start_matches("http://").to_string();
    // Each declares a body of 8,000 bytes and sends 6,000 of them, then waits.
    let mut held = Vec::new();
    for _ in 0..200 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let _ = s.write_all(
            format!(
                "POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8000\r\n\r\n{}",
                "a".repeat(6000)
            )
            .as_bytes(),
        );
        held.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let grown = rss_kib(pid).saturating_sub(before);
    // At most 20 connections per worker are served at once; the others wait unread.
    assert!(grown < 8 * 1024, "200 connections took {grown} KiB");
    drop(held);
}

#[tokio::test]
async fn refusals_past_the_limit_are_not_logged_one_by_one() {
    let app = TestApp::spawn_with(limited).await;
    let (served, _, _) = app.serve_copy("logged", "info", |_| {}).await;
    for _ in 0..60 {
        let resp = app
            .http
            .post(format!("{}/token", served.url))
            .basic_auth("stranger-svc", Some("wrong-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type={TOKEN_EXCHANGE}"))
            .send()
            .await
            .unwrap();
        assert!(matches!(resp.status().as_u16(), 401 | 429));
    }
    let lines = served.count_logged("token exchange");
    assert!(lines <= 20, "{lines} lines for 60 refused requests");
    assert!(
        !served.logged("stranger-svc"),
        "a client id nobody configured is not logged"
    );
}
