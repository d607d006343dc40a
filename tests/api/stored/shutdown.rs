//! SIGTERM under load: the server stops accepting, finishes what is in flight, commits its
//! records, and exits; every token a client received has its record.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_load_leaves_a_record_for_every_token_handed_out() {
    let app = TestApp::spawn().await;
    let (mut served, path, _) = app.serve_copy("served", "info", |_| {}).await;
    let subject = app.subject_token(json!({"exp": now() + 3600}));

    // Eight clients exchange in a loop until the server goes away.
    let clients = exchange_until_gone(&served.url, &subject, 8);
    tokio::time::sleep(Duration::from_millis(700)).await;
    served.signal("-TERM");
    let _database = served.database.take(); // outlives the process, for the checks below
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

    let recorded = granted_jtis(&path);
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
