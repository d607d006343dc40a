use std::path::Path;

use crate::helpers::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test]
async fn check_summarises_a_valid_configuration() {
    let app = TestApp::spawn().await;
    let out = app.cli(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("configuration is valid"));
    assert!(text.contains("corp"));
    assert!(text.contains("orders-svc"));
    assert!(text.contains("orders-to-inventory"));
}

#[test]
fn the_example_configuration_passes_check_without_warnings() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/tessera.toml");
    let out = run_cli(&["check"], Some(&example));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("warning"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn check_warns_about_shadowed_rules_and_unused_clients_and_issuers() {
    let app = TestApp::start(|c| {
        c.append(
            r#"
[[rules]]
name = "never"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["inventory-api"]
scopes = ["inventory:read"]

[[issuers]]
id = "idle"
issuer = "https://idle.example"
jwks_uri = "https://idle.example/jwks"
audiences = ["x"]
"#,
        )
    })
    .await;
    let out = app.cli(&["check"]);
    assert!(
        out.status.success(),
        "warnings do not fail check: {}",
        stderr(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("warning: rule \"never\" can never apply: rule \"orders-to-inventory\""),
        "{text}"
    );
    assert!(
        text.contains("warning: client \"billing-svc\" is named by no rule"),
        "{text}"
    );
    assert!(
        text.contains("warning: issuer \"idle\" is used by no rule"),
        "{text}"
    );
}

#[tokio::test]
async fn check_names_the_file_and_key_at_fault() {
    let app = TestApp::spawn().await;
    let bad = |edit: fn(&mut RawConfig)| {
        let mut config = app.config();
        edit(&mut config);
        config.to_toml()
    };
    // A key no configuration value can hold, added to the file's own tables.
    let mut unknown_key: toml::Table =
        toml::from_str(&std::fs::read_to_string(&app.config_path).unwrap()).unwrap();
    unknown_key
        .get_mut("server")
        .and_then(toml::Value::as_table_mut)
        .unwrap()
        .insert("port".into(), 1.into());
    let cases = [
        (
            bad(|c| c.issuer_mut("corp").algorithms = Some(vec!["HS256".into()])),
            "issuers[0].algorithms",
        ),
        (
            bad(|c| c.issuer_mut("corp").algorithms = Some(vec!["none".into()])),
            "issuers[0].algorithms",
        ),
        (
            bad(|c| c.rule_mut("orders-to-inventory").clients = vec!["ghost".into()]),
            "rules[0].clients",
        ),
        (unknown_key.to_string(), "port"),
        (
            bad(|c| c.signing.default_ttl = Some("five minutes".into())),
            "signing.default_ttl",
        ),
        (
            bad(|c| c.signing.keys[0].private_key_file = "missing.pem".into()),
            "missing.pem",
        ),
        (
            bad(|c| {
                c.rule_mut("orders-to-inventory").condition =
                    Some(r#""staff" in subjct.groups"#.into())
            }),
            "rules[0].condition",
        ),
    ];
    for (text, named) in cases {
        let path = app.dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = run_cli(&["check"], Some(&path));
        assert!(!out.status.success(), "{named}: accepted");
        let err = stderr(&out);
        assert!(err.contains(named), "expected {named} in: {err}");
        assert!(
            err.contains("bad.toml") || named.ends_with(".pem"),
            "the file is named: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    }
}

#[tokio::test]
async fn environment_variables_override_the_file() {
    let app = TestApp::spawn().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["check", "--config"])
        .arg(&app.config_path)
        .env("TESSERA__SERVER__LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("server.listen"), "{}", stderr(&out));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("check")
        .env("TESSERA_CONFIG", &app.config_path)
        .env("TESSERA__SERVER__LISTEN", "127.0.0.1:9999")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:9999"));
}

#[test]
fn keys_generate_writes_a_private_key_and_prints_its_public_jwk() {
    let dir = tempfile::tempdir().unwrap();
    for alg in ["ES256", "EdDSA", "RS256", "PS256"] {
        let out_path = dir.path().join(format!("{alg}.pem"));
        let out = run_cli(
            &[
                "keys",
                "generate",
                "--alg",
                alg,
                "--out",
                out_path.to_str().unwrap(),
            ],
            None,
        );
        assert!(out.status.success(), "{alg}: {}", stderr(&out));
        let pem = std::fs::read_to_string(&out_path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let jwk: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(jwk.get("kid").is_some() && jwk.get("d").is_none(), "{jwk}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&out_path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let again = run_cli(
            &[
                "keys",
                "generate",
                "--alg",
                alg,
                "--out",
                out_path.to_str().unwrap(),
            ],
            None,
        );
        assert!(
            !again.status.success(),
            "an existing key is never overwritten"
        );
    }
    let bad = run_cli(
        &["keys", "generate", "--alg", "HS256", "--out", "x.pem"],
        None,
    );
    assert!(!bad.status.success());
}

#[test]
fn secret_prints_a_strong_secret_and_its_hash() {
    let out = run_cli(&["secret"], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .unwrap();
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("secret_sha256: "))
        .unwrap();
    assert!(secret.len() >= 43, "at least 256 bits");
    assert_eq!(hash, tessera::clients::sha256_hex(secret));
    let other = String::from_utf8(run_cli(&["secret"], None).stdout).unwrap();
    assert_ne!(text, other);
}

#[tokio::test]
async fn migrate_creates_the_schema() {
    let app = TestApp::spawn().await;
    let path = app.config_copy("fresh.toml", |c| {
        c.storage.url = Some("sqlite://fresh.db".into());
    });
    let missing = run_cli(&["audit"], Some(&path));
    assert!(
        !missing.status.success(),
        "audit does not create a database"
    );
    let out = run_cli(&["migrate"], Some(&path));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(app.dir.path().join("fresh.db").is_file());
    let again = run_cli(&["migrate"], Some(&path));
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("0 migration"));
    assert!(run_cli(&["audit"], Some(&path)).status.success());
}

#[test]
fn a_missing_configuration_file_is_one_clear_error() {
    let out = run_cli(&["check"], Some(Path::new("/nonexistent/tessera.toml")));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent/tessera.toml"));
}

#[tokio::test]
async fn serve_logs_json_lines_when_asked() {
    use std::io::BufRead;
    let app = TestApp::spawn().await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--config"])
        .arg(&app.config_path)
        .env("TESSERA_LOG_FORMAT", "json")
        .env("TESSERA__STORAGE__URL", "sqlite://json-logs.db")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let line = std::io::BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("tessera is listening"))
        .expect("a listening line");
    let _ = child.kill();
    let _ = child.wait();
    let entry: serde_json::Value = serde_json::from_str(&line).expect("one JSON object a line");
    assert_eq!(entry["level"], "INFO");
    assert_eq!(entry["fields"]["message"], "tessera is listening");
}

#[test]
fn keys_generate_takes_algorithm_names_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("lower.pem");
    let out = run_cli(
        &[
            "keys",
            "generate",
            "--alg",
            "es256",
            "--out",
            out_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = run_cli(
        &["keys", "generate", "--alg", "hs256", "--out", "x.pem"],
        None,
    );
    assert!(!bad.status.success());
    let err = stderr(&bad);
    assert!(err.contains("ES256, EdDSA, RS256 or PS256"), "{err}");
    assert!(
        !err.contains("PS256?"),
        "no guess at another algorithm: {err}"
    );
}

#[tokio::test]
async fn errors_of_the_first_hour_name_what_to_fix() {
    let app = TestApp::spawn().await;
    // A signing key file that is not there.
    let missing = app.config_copy("missing-key.toml", |c| {
        c.signing.keys[0].private_key_file = "not-there.pem".into();
    });
    let out = run_cli(&["check"], Some(&missing));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("signing.keys[0].private_key_file") && err.contains("tessera keys generate"),
        "{err}"
    );
    // A listen address in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let busy = app.config_copy("busy.toml", |c| {
        c.server.listen = Some(format!("127.0.0.1:{port}"));
    });
    let out = run_cli(&["serve"], Some(&busy));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("server.listen"), "{err}");
    drop(taken);
    // An unknown client and a wrong secret look alike on the wire, not in the record.
    let unknown = app
        .post_token(&[("grant_type", TOKEN_EXCHANGE)], Some(("nobody-svc", "x")))
        .await;
    let wrong = app
        .post_token(&[("grant_type", TOKEN_EXCHANGE)], Some(("orders-svc", "x")))
        .await;
    assert_eq!(unknown.status(), wrong.status());
    assert_eq!(unknown.text().await.unwrap(), wrong.text().await.unwrap());
    let records = app.records(&["--error", "invalid_client"]);
    let reasons: Vec<&str> = records
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("no client has this id")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("the secret is wrong")),
        "{reasons:?}"
    );
}

#[test]
fn a_command_without_a_configuration_says_how_to_name_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["check"])
        .current_dir(dir.path())
        .env_remove("TESSERA_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--config") && err.contains("TESSERA_CONFIG"),
        "{err}"
    );
}

#[tokio::test]
async fn a_typo_in_an_environment_override_names_the_variable() {
    let app = TestApp::spawn().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["check", "--config"])
        .arg(&app.config_path)
        .env("TESSERA__SERVER__LISTN", "0.0.0.0:8080")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("TESSERA__SERVER__LISTN"), "{err}");
}

#[tokio::test]
async fn config_is_taken_anywhere_on_the_audit_verify_command_line() {
    let app = TestApp::spawn().await;
    app.minted(serde_json::json!({})).await;
    let config = app.config_path.to_str().unwrap();
    for args in [
        vec!["--config", config, "audit", "verify"],
        vec!["audit", "--config", config, "verify"],
        vec!["audit", "verify", "--config", config],
    ] {
        let out = run_cli(&args, None);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("audit chain intact"));
    }
    let out = run_cli(
        &["audit", "--subject", "alice", "verify"],
        Some(&app.config_path),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("takes no filters"));
}

#[test]
fn keys_generate_makes_a_missing_folder_for_its_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("keys").join("new.pem");
    let out = run_cli(
        &[
            "keys",
            "generate",
            "--alg",
            "ES256",
            "--out",
            out_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out_path.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[tokio::test]
async fn the_audit_table_shows_whole_jtis_and_revocations() {
    let app = TestApp::spawn().await;
    let token = app.minted(serde_json::json!({})).await;
    let jti = claims_of(&token)["jti"].as_str().unwrap().to_string();
    app.admin_revoke(serde_json::json!({ "jti": jti })).await;
    let out = app.cli(&["audit"]);
    let table = String::from_utf8(out.stdout).unwrap();
    let header = table.lines().next().unwrap();
    assert!(header.contains("REVOKED"), "{header}");
    let row = table
        .lines()
        .find(|l| l.contains(&jti))
        .expect("the whole jti is shown");
    let at = header.find("REVOKED").unwrap();
    assert!(
        row[at..].trim().starts_with("20"),
        "a revocation time: {row}"
    );
}

#[tokio::test]
async fn long_commands_show_progress_on_a_terminal_and_stay_quiet_otherwise() {
    let app = TestApp::spawn().await;
    let fresh = |name: &str| {
        app.config_copy(&format!("{name}.toml"), |c| {
            c.storage.url = Some(format!("sqlite://{name}.db"));
        })
    };
    // Piped: the result on stdout, nothing on stderr.
    let piped = run_cli(&["migrate"], Some(&fresh("piped")));
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert!(stderr(&piped).is_empty(), "{}", stderr(&piped));
    let verify = run_cli(&["audit", "verify"], Some(&app.config_path));
    assert!(stderr(&verify).is_empty(), "{}", stderr(&verify));
    // On a terminal (a pseudo-terminal `script` gives it): the steps are said as they start.
    let on_terminal = fresh("terminal");
    let out = std::process::Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "{} migrate --config {}",
            env!("CARGO_BIN_EXE_tessera"),
            on_terminal.display()
        ))
        .arg("/dev/null")
        // `script` copies its input to the terminal: without any (a CI job's closed stdin) it
        // would stop before the command speaks.
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("applying 10 migration(s)"), "{shown}");
}
