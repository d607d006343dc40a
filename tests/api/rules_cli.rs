//! `tessera explain` and `tessera test`.

use serde_json::json;

use crate::helpers::*;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn explain_shows_the_applying_rule_and_the_token_without_minting() {
    let app = TestApp::spawn_with(|c| {
        c.rules.insert(
            0,
            entry(
                r#"
name = "billing-only"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["billing-api"]
scopes = ["billing:read"]
"#,
            ),
        )
    })
    .await;
    let token_file = app.dir.path().join("subject.jwt");
    std::fs::write(&token_file, app.subject_token(json!({}))).unwrap();
    let path = token_file.to_str().unwrap().to_string();
    let cli = app.cli(&[
        "explain",
        "--client",
        "orders-svc",
        "--subject-token",
        &path,
        "--audience",
        "inventory-api",
        "--scope",
        "inventory:write",
    ]);
    let shown = text(&cli);
    assert!(cli.status.success(), "{shown}");
    assert!(
        shown.contains(
            "rule 1 \"billing-only\": does not apply: it does not grant audience \"inventory-api\""
        ),
        "{shown}"
    );
    assert!(
        shown.contains("rule 2 \"orders-to-inventory\": applies"),
        "{shown}"
    );
    assert!(
        shown.contains("result: granted by rule \"orders-to-inventory\""),
        "{shown}"
    );
    assert!(
        shown.contains("\"scope\": \"inventory:write\"") && shown.contains("\"typ\": \"at+jwt\""),
        "{shown}"
    );

    let denied = app.cli(&[
        "explain",
        "--client",
        "orders-svc",
        "--subject-token",
        &path,
        "--audience",
        "stock-api",
    ]);
    let shown = text(&denied);
    assert!(shown.contains("result: denied: invalid_target"), "{shown}");
    let forged = app.dir.path().join("forged.jwt");
    std::fs::write(&forged, "not.a.token").unwrap();
    let shown = text(&app.cli(&[
        "explain",
        "--client",
        "orders-svc",
        "--subject-token",
        forged.to_str().unwrap(),
        "--audience",
        "inventory-api",
    ]));
    assert!(shown.contains("result: denied: invalid_request"), "{shown}");
    assert!(app.records(&[]).is_empty(), "explain writes no record");
}

#[tokio::test]
async fn tessera_test_reports_passing_and_failing_cases() {
    let app = TestApp::spawn().await;
    let passing = r#"
[[cases]]
name = "read is granted"
client = "orders-svc"
subject = { issuer = "corp", claims = { sub = "alice", scope = "inventory:read" } }
request = { audiences = ["inventory-api"] }
expect = { outcome = "granted", rule = "orders-to-inventory", scopes = ["inventory:read"] }

[[cases]]
name = "billing is not a client of any rule"
client = "billing-svc"
subject = { issuer = "corp", claims = { sub = "alice" } }
request = { audiences = ["inventory-api"] }
expect = { outcome = "denied", error = "unauthorized_client" }
"#;
    let file = app.dir.path().join("cases.toml");
    std::fs::write(&file, passing).unwrap();
    let out = app.cli(&["test", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("2 passed, 0 failed"));

    let failing = format!(
        "{passing}\n[[cases]]\nname = \"write without the scope\"\nclient = \"orders-svc\"\nsubject = {{ issuer = \"corp\", claims = {{ sub = \"alice\", scope = \"inventory:read\" }} }}\nrequest = {{ audiences = [\"inventory-api\"], scope = \"inventory:write\" }}\nexpect = {{ outcome = \"granted\" }}\n"
    );
    std::fs::write(&file, failing).unwrap();
    let out = app.cli(&["test", file.to_str().unwrap()]);
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    assert!(
        shown.contains("FAILED  write without the scope: denied with invalid_scope"),
        "{shown}"
    );
    assert!(shown.contains("2 passed, 1 failed"), "{shown}");

    std::fs::write(&file, "[[cases]]\nname = \"x\"\nunknown = 1\n").unwrap();
    let out = app.cli(&["test", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cases.toml"), "{}", text(&out));
}

#[test]
fn the_example_cases_pass_against_the_example_configuration() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases = root.join("deploy/tessera-cases.toml");
    let out = run_cli(
        &["test", cases.to_str().unwrap()],
        Some(&root.join("deploy/tessera.toml")),
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test]
async fn explain_and_cases_take_resources_and_scopes_in_the_grammar_of_token() {
    let app = TestApp::spawn().await;
    let token_file = app.dir.path().join("subject.jwt");
    std::fs::write(&token_file, app.subject_token(json!({}))).unwrap();
    let path = token_file.to_str().unwrap().to_string();
    let explain = |extra: &[&str]| {
        let mut args = vec![
            "explain",
            "--client",
            "orders-svc",
            "--subject-token",
            &path,
        ];
        args.extend_from_slice(extra);
        app.cli(&args)
    };
    let out = explain(&["--resource", "inventory/relative"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("\"inventory/relative\" is not an absolute URI without a fragment"),
        "{}",
        text(&out)
    );
    let out = explain(&[
        "--audience",
        "inventory-api",
        "--scope",
        "inventory:read a\"b",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("--scope: \"a\"b\" is not a scope-token"),
        "{}",
        text(&out)
    );
    let out = explain(&[
        "--resource",
        "https://inventory.internal/",
        "--scope",
        "inventory:read  inventory:read",
    ]);
    let shown = text(&out);
    assert!(
        shown.contains("result: granted by rule \"orders-to-inventory\"")
            && shown.contains("\"scope\": \"inventory:read\""),
        "{shown}"
    );
    assert!(app.records(&[]).is_empty(), "explain writes no record");

    let file = app.dir.path().join("cases.toml");
    let case = |request: &str| {
        format!(
            "[[cases]]\nname = \"c\"\nclient = \"orders-svc\"\nsubject = {{ issuer = \"corp\", claims = {{ sub = \"alice\", scope = \"inventory:read\" }} }}\nrequest = {request}\nexpect = {{ outcome = \"granted\" }}\n"
        )
    };
    std::fs::write(&file, case("{ resources = [\"inventory/relative\"] }")).unwrap();
    let out = app.cli(&["test", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("\"inventory/relative\" is not an absolute URI without a fragment"),
        "{}",
        text(&out)
    );
    std::fs::write(
        &file,
        case("{ audiences = [\"inventory-api\"], scope = \"inventory:read a\\\\b\" }"),
    )
    .unwrap();
    let out = app.cli(&["test", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("FAILED  c: request: scope \"a\\b\" is not a scope-token"),
        "{}",
        text(&out)
    );
}
