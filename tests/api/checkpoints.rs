//! SQLite: the write-ahead log is copied into the database file while the server runs, beside
//! the audit writer, not only when the log reaches SQLite's own threshold of 1,000 pages.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn the_log_is_copied_into_the_database_file_as_records_are_written() {
    let app = TestApp::spawn_with(on_sqlite).await;
    let file = app.dir.path().join("tessera.db");
    let before = std::fs::metadata(&file).unwrap().len();
    // One commit each: about ten pages of log apiece, far below SQLite's own threshold.
    for i in 0..40 {
        let token = app.subject_token(json!({"jti": format!("ckpt-{i}")}));
        assert_eq!(app.exchange_subject(&token).await.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let grown = loop {
        let now = std::fs::metadata(&file).unwrap().len();
        if now > before || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        grown > before,
        "the database file stayed at {before} bytes: the records are only in the log"
    );
    assert_eq!(app.records(&["--outcome", "granted"]).len(), 40);
    let verified = app.cli(&["audit", "verify"]);
    assert!(verified.status.success(), "{verified:?}");
}
