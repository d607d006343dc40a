//! Crash safety: SIGKILL mid-load, then a restart: every token any client received has its
//! record, and the audit chain verifies.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_record_of_a_token_handed_out() {
    let app = TestApp::spawn().await;
    let (mut served, path, _) = app.serve_copy("crash", "info", |_| {}).await;
    let http = reqwest::Client::new();
    let subject = app.subject_token(json!({"exp": now() + 3600}));
    let clients = exchange_until_gone(&served.url, &subject, 8);
    tokio::time::sleep(Duration::from_millis(700)).await;
    served.signal("-KILL");
    let _database = served.database.take(); // outlives the process, for the checks below
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
    let recorded = granted_jtis(&path);
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
