//! Hostile clients: slow-loris heads, trickling bodies, many idle connections, huge headers.
//! Each is bounded, and the service keeps answering everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

fn address(served: &Served) -> String {
    served.url.trim_start_matches("http://").to_string()
}

/// Reads until the server answers or closes; what it said, or "" on close.
fn read_answer(mut stream: TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).to_string()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_are_bounded_and_others_are_served() {
    let app = TestApp::spawn().await;
    let (served, _, _) = app
        .serve_copy("hostile", "info", |c| {
            c.server.request_header_timeout = Some("2s".into());
            c.server.body_timeout = Some("2s".into());
        })
        .await;
    let http = reqwest::Client::new();
    let subject = app.subject_token(json!({"exp": now() + 3600}));
    let addr = address(&served);

    // Slow-loris: a head that never ends is cut off.
    let mut loris = TcpStream::connect(&addr).unwrap();
    loris
        .write_all(b"POST /token HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    // A body that trickles in is answered 408 once the body timeout passes.
    let mut trickle = TcpStream::connect(&addr).unwrap();
    trickle
        .write_all(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\ngrant_type=")
        .unwrap();
    // Meanwhile everyone else is served.
    assert_eq!(
        exchange_at(&http, &served.url, &subject, "inventory-api").await,
        200
    );
    let (loris_answer, trickle_answer) =
        tokio::task::spawn_blocking(move || (read_answer(loris), read_answer(trickle)))
            .await
            .unwrap();
    assert!(
        loris_answer.is_empty() || loris_answer.starts_with("HTTP/1.1 408"),
        "slow-loris: {loris_answer:?}"
    );
    assert!(
        trickle_answer.starts_with("HTTP/1.1 408"),
        "trickle: {trickle_answer:?}"
    );
    assert!(
        trickle_answer.contains("did not arrive in time"),
        "{trickle_answer}"
    );

    // Headers: one at 16 KiB is served; one far past any limit is refused, harmlessly.
    let big = "a".repeat(16 * 1024);
    let resp = http
        .get(format!("{}/healthz", served.url))
        .header("x-big", &big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let huge = "a".repeat(512 * 1024);
    let refused = http
        .get(format!("{}/healthz", served.url))
        .header("x-huge", &huge)
        .send()
        .await;
    assert!(
        refused
            .map(|r| r.status().is_client_error())
            .unwrap_or(true),
        "a huge header is refused"
    );

    // 10,000 idle connections: the service still answers, in bounded memory.
    let before = rss_kib(served.child.id());
    let target = addr.clone();
    let idle = tokio::task::spawn_blocking(move || {
        (0..10_000)
            .filter_map(|_| TcpStream::connect(&target).ok())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert!(idle.len() > 9_000, "{} connections opened", idle.len());
    assert_eq!(
        exchange_at(&http, &served.url, &subject, "inventory-api").await,
        200
    );
    let during = rss_kib(served.child.id());
    assert!(
        during < 256 * 1024,
        "RSS with 10,000 idle connections: {during} KiB (before: {before} KiB)"
    );
    drop(idle);
    assert_eq!(
        exchange_at(&http, &served.url, &subject, "inventory-api").await,
        200
    );
}
