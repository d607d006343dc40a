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
        return; // SQLite has no server to lose; see ../store_faults.rs for its store faults.
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

/// A TCP relay to the database server that can hold every byte, both ways, while keeping each
/// connection open: a network partition, as neither end sees a close.
struct Partition {
    addr: std::net::SocketAddr,
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Partition {
    async fn to(server: &str) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let server = server.to_string();
        let flag = held.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = tokio::net::TcpStream::connect(&server).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (ur, uw) = upstream.into_split();
                for (mut from, mut to) in [(cr, uw), (ur, cw)].map(|(r, w)| (r, w)) {
                    let flag = flag.clone();
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            while flag.load(Ordering::SeqCst) {
                                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            }
                            if to.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        Self { addr, held }
    }

    fn hold(&self, held: bool) {
        self.held.store(held, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_gone_silent_gets_bounded_answers_and_service_resumes() {
    if !crate::on_postgres() {
        return; // SQLite has no network to lose; see ../store_faults.rs.
    }
    let app = TestApp::spawn().await;
    let mut url = url::Url::parse(&app.database.url).unwrap();
    let server = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    );
    let partition = Partition::to(&server).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(partition.addr.port())).unwrap();
    let path = app.config_copy("partitioned.toml", |c| {
        c.storage.url = Some(url.to_string())
    });
    let served = Served::start(&path);
    served.wait_ready(&app.http).await;
    let subject = app.subject_token(json!({}));
    assert_eq!(
        exchange_at(&app.http, &served.url, &subject, "inventory-api").await,
        200
    );

    partition.hold(true);
    // A probe's answer is reused for a second: the next one asks the store.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // The probe answers within its own bound, and says so.
    let asked = std::time::Instant::now();
    let ready = app
        .http
        .get(format!("{}/readyz", served.url))
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["store"], "unavailable", "{body}");
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    // An exchange gets its 503 within the store's deadline, not after the store's timeouts.
    let asked = std::time::Instant::now();
    let status = exchange_at(&app.http, &served.url, &subject, "inventory-api").await;
    assert_eq!(status, 503);
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        asked.elapsed()
    );

    partition.hold(false);
    let mut resumed = false;
    for _ in 0..60 {
        if exchange_at(&app.http, &served.url, &subject, "inventory-api").await == 200 {
            resumed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(resumed, "service did not resume after the partition healed");
}
