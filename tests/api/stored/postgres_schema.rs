//! The schema on PostgreSQL (SPEC §7): `tessera migrate` is the deploy step, and `serve`
//! refuses a schema behind its own rather than changing a database other instances share.

use crate::helpers::*;
use crate::storage::Database;

#[tokio::test]
async fn serve_refuses_a_schema_behind_its_own_until_migrate_runs() {
    if !crate::on_postgres() {
        return; // SQLite is migrated by `serve` itself, as every other test shows.
    }
    let app = TestApp::spawn().await;
    let empty = Database::fresh_postgres(false);
    let path = app.config_copy("behind.toml", |c| c.storage.url = Some(empty.url.clone()));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("behind"), "{stderr}");
    assert!(stderr.contains("tessera migrate"), "{stderr}");
    assert!(!stderr.contains(":postgres@") || !stderr.contains("password"));

    let out = run_cli(&["migrate"], Some(&path));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("10 migration(s) applied"));
    let again = run_cli(&["migrate"], Some(&path));
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 migration(s) applied"));

    let served = Served::start(&path);
    served.wait_ready(&app.http).await;
    let status = exchange_at(
        &app.http,
        &served.url,
        &app.subject_token(serde_json::json!({})),
        "inventory-api",
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_unreachable_server_is_named_with_its_own_error() {
    let app = TestApp::spawn().await;
    let path = app.config_copy("unreachable.toml", |c| {
        c.storage.url = Some("postgres://tessera:hunter2@127.0.0.1:1/tessera".into());
    });
    let out = run_cli(&["migrate"], Some(&path));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "the password stays out: {stderr}"
    );
}
