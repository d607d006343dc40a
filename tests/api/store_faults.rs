//! Store faults (SQLite): a file locked by another process, deleted while running, on a full
//! disk or made read-only. Each time `/token` answers 503
//! `temporarily_unavailable` and mints nothing, `/readyz` says the store is unavailable, and
//! service resumes by itself once the fault clears; every token handed out has its record.
//!
//! The full-disk case mounts a small tmpfs and the read-only case runs the server as another
//! user: both need root, as CI has.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::helpers::*;

/// The server under test (in process, or a `tessera serve` child) and the tokens it handed out,
/// to compare with its records afterwards.
struct Handed<'a> {
    app: &'a TestApp,
    url: String,
    config: PathBuf,
    jtis: Vec<String>,
}

impl<'a> Handed<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self::at(app, &app.url, &app.config_path)
    }

    fn at(app: &'a TestApp, url: &str, config: &Path) -> Self {
        Self {
            app,
            url: url.to_string(),
            config: config.to_path_buf(),
            jtis: Vec::new(),
        }
    }

    /// One exchange: a token (kept), or 503 `temporarily_unavailable` and nothing else.
    async fn exchange(&mut self) -> bool {
        let subject = self.app.subject_token(json!({}));
        let resp = exchange_request(&self.app.http, &self.url, &subject, "inventory-api")
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            let body: Value = resp.json().await.unwrap();
            let token = body["access_token"].as_str().unwrap();
            self.jtis
                .push(claims_of(token)["jti"].as_str().unwrap().to_string());
            return true;
        }
        assert_error(resp, 503, "temporarily_unavailable").await;
        false
    }

    async fn ready(&self) -> (u16, Value) {
        let resp = self
            .app
            .http
            .get(format!("{}/readyz", self.url))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// Exchanges until one is refused (a little write room may be left when a fault starts).
    async fn until_refused(&mut self) {
        for _ in 0..50 {
            if !self.exchange().await {
                return;
            }
        }
        panic!("the fault never made an exchange fail");
    }

    /// While the fault lasts: refusals only, and `/readyz` says the store is unavailable.
    async fn assert_unavailable(&mut self) {
        assert!(
            !self.exchange().await,
            "a token was minted during the fault"
        );
        let (status, body) = self.ready().await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["store"], "unavailable", "{body}");
    }

    /// After the fault: service and readiness come back without a restart.
    async fn assert_resumes(&mut self) {
        let mut resumed = false;
        for _ in 0..60 {
            if self.exchange().await && self.ready().await.0 == 200 {
                resumed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(resumed, "service did not resume");
        assert!(self.exchange().await);
    }

    fn assert_all_recorded(&self) {
        let out = run_cli(
            &[
                "audit",
                "--format",
                "json",
                "--outcome",
                "granted",
                "--limit",
                "100000",
            ],
            Some(&self.config),
        );
        assert!(out.status.success());
        let recorded = String::from_utf8_lossy(&out.stdout);
        for jti in &self.jtis {
            assert!(recorded.contains(jti.as_str()), "token {jti} has no record");
        }
        let verify = run_cli(&["audit", "verify"], Some(&self.config));
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stdout)
        );
    }
}

fn sqlite_file(app: &TestApp) -> PathBuf {
    let url = &app.database.url;
    let file = url.strip_prefix("sqlite://").unwrap();
    app.dir.path().join(file)
}

#[tokio::test]
async fn a_database_locked_by_another_process_delays_then_resumes() {
    let app = TestApp::spawn_with(on_sqlite).await;
    let mut handed = Handed::new(&app);
    assert!(handed.exchange().await);

    let mut intruder = SqliteConnection::establish(&sqlite_file(&app).to_string_lossy()).unwrap();
    intruder.batch_execute("BEGIN EXCLUSIVE").unwrap();
    handed.until_refused().await;
    // A probe answers within its own bound (500 ms), not the store's lock or pool timeouts.
    let asked = std::time::Instant::now();
    let (status, body) = handed.ready().await;
    assert_eq!((status, body["store"].as_str()), (503, Some("unavailable")));
    assert!(
        asked.elapsed() < Duration::from_millis(1500),
        "{:?}",
        asked.elapsed()
    );
    handed.assert_unavailable().await;
    intruder.batch_execute("COMMIT").unwrap();
    handed.assert_resumes().await;
    handed.assert_all_recorded();
}

#[tokio::test]
async fn a_deleted_database_file_is_never_written_blind_and_a_restored_one_is_resumed() {
    let app = TestApp::spawn_with(on_sqlite).await;
    let mut handed = Handed::new(&app);
    assert!(handed.exchange().await);
    let file = sqlite_file(&app);
    let backup = app.dir.path().join("backup.db");
    app.sql(&format!("VACUUM INTO '{}'", backup.display()));

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    handed.until_refused().await;
    handed.assert_unavailable().await;
    assert!(!file.exists(), "no empty database was made in its place");

    std::fs::rename(&backup, &file).unwrap();
    handed.assert_resumes().await;
    handed.assert_all_recorded();
    let chains: std::collections::HashSet<String> = app
        .records(&[])
        .iter()
        .map(|r| r["chain"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(chains.len(), 2, "a new chain started in the restored file");
}

fn is_root() -> bool {
    let uid = Command::new("id").arg("-u").output().unwrap().stdout;
    String::from_utf8_lossy(&uid).trim() == "0"
}

/// A small tmpfs, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    /// `None` when not running as root, where mounting is not allowed.
    fn tmpfs(at: &Path, size: &str) -> Option<Self> {
        if !is_root() {
            eprintln!("not root: the tmpfs store-fault test does not run");
            return None;
        }
        std::fs::create_dir_all(at).unwrap();
        run(
            "mount",
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            at,
        );
        Some(Self(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn run(program: &str, args: &[&str], path: &Path) {
    let status = Command::new(program).args(args).arg(path).status().unwrap();
    assert!(status.success(), "{program} {args:?} {}", path.display());
}

/// A server whose database lives on its own small tmpfs.
async fn app_on_tmpfs(size: &str) -> Option<(TestApp, Mount, tempfile::TempDir)> {
    let outer = tempfile::tempdir().unwrap();
    let mount = Mount::tmpfs(&outer.path().join("store"), size)?;
    let url = format!("sqlite://{}/tessera.db", mount.0.display());
    let app = TestApp::spawn_with(|c| c.storage.url = Some(url)).await;
    Some((app, mount, outer))
}

#[tokio::test]
async fn a_full_disk_refuses_exchanges_until_space_is_freed() {
    let Some((app, mount, _outer)) = app_on_tmpfs("8m").await else {
        return;
    };
    let mut handed = Handed::new(&app);
    assert!(handed.exchange().await);

    let filler = mount.0.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    for size in [64 * 1024, 4096, 1] {
        let chunk = vec![0u8; size];
        while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    }
    drop(file);
    handed.until_refused().await;
    handed.assert_unavailable().await;

    std::fs::remove_file(&filler).unwrap();
    handed.assert_resumes().await;
    handed.assert_all_recorded();
}

#[tokio::test]
async fn a_read_only_database_file_refuses_exchanges_until_writable_again() {
    // Tessera runs as an unprivileged user here, as its systemd unit does: root would write
    // whatever the permissions say.
    const NOBODY: u32 = 65534;
    if !is_root() {
        eprintln!("not root: cannot start the server as another user; this test does not run");
        return;
    }
    let app = TestApp::spawn_with(on_sqlite).await;
    let store = app.dir.path().join("ro");
    std::fs::create_dir(&store).unwrap();
    let path = app.config_copy("ro.toml", |c| {
        c.storage.url = Some("sqlite://ro/tessera.db".into());
    });
    run(
        "chown",
        &["-R", &format!("{NOBODY}:{NOBODY}")],
        app.dir.path(),
    );
    let served = Served::start_as(&path, NOBODY);
    served.wait_ready(&app.http).await;
    let mut handed = Handed::at(&app, &served.url, &path);
    assert!(handed.exchange().await);

    let file = store.join("tessera.db");
    let set_mode = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set_mode(0o444);
    handed.until_refused().await;
    handed.assert_unavailable().await;
    // An outage is summarised in the log, not written once per request.
    for _ in 0..30 {
        assert!(!handed.exchange().await);
    }
    for what in ["audit commit failed", "exchange not recorded"] {
        let lines = served.count_logged(what);
        assert!((1..=3).contains(&lines), "{lines} lines of \"{what}\"");
    }

    set_mode(0o644);
    handed.assert_resumes().await;
    drop(served);
    handed.assert_all_recorded();
}
