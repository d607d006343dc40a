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

/// The Transaction Token Service of trust domain `trust-domain.example`, with a rule for
/// orders-svc that builds `tctx` from the request's details.
fn with_txn_rule(c: &mut RawConfig) {
    c.transaction_tokens = Some(entry(r#"trust_domain = "trust-domain.example""#));
    c.append(
        r#"
[[rules]]
name = "gateway-txn"
mints = "txn_token"
clients = ["orders-svc"]
issuers = ["corp"]
scopes = ["inventory:read"]
[rules.tctx]
action = "request.details.action"
"#,
    );
}

#[tokio::test]
async fn explain_covers_txn_token_requests() {
    let app = TestApp::spawn_with(with_txn_rule).await;
    let check = text(&app.cli(&["check"]));
    assert!(
        check
            .contains("mints Txn-Tokens for trust domain trust-domain.example; builds tctx.action"),
        "{check}"
    );
    assert!(
        !check.contains("can never apply"),
        "an access-token rule never shadows a Txn-Token rule: {check}"
    );
    let dir = app.dir.path();
    std::fs::write(dir.join("subject.jwt"), app.subject_token(json!({}))).unwrap();
    std::fs::write(dir.join("details.json"), r#"{"action":"BUY"}"#).unwrap();
    let path = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let base = [
        "explain",
        "--client",
        "orders-svc",
        "--subject-token",
        &path("subject.jwt"),
        "--requested-token-type",
        "txn_token",
        "--audience",
        "trust-domain.example",
        "--scope",
        "inventory:read",
    ];
    let mut args = base.to_vec();
    let details = path("details.json");
    args.extend(["--request-details", &details]);
    let out = app.cli(&args);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains(
            "rule 1 \"orders-to-inventory\": mints access_token, and the request asks for txn_token"
        ),
        "{shown}"
    );
    assert!(shown.contains("rule 2 \"gateway-txn\": applies"), "{shown}");
    assert!(
        shown.contains("result: granted by rule \"gateway-txn\""),
        "{shown}"
    );
    assert!(shown.contains("\"typ\": \"txntoken+jwt\""), "{shown}");
    assert!(shown.contains("\"action\": \"BUY\""), "{shown}");
    assert!(
        shown.contains("\"aud\": \"trust-domain.example\""),
        "{shown}"
    );
    // As /token would: the trust domain is the one audience, and no record is written.
    let mut wrong = base.to_vec();
    wrong[8] = "inventory-api";
    let shown = text(&app.cli(&wrong));
    assert!(
        shown
            .contains("result: denied: invalid_target: a Txn-Token's audience is the trust domain"),
        "{shown}"
    );
    std::fs::write(dir.join("bad.json"), "[1]").unwrap();
    let bad = path("bad.json");
    let mut malformed = base.to_vec();
    malformed.extend(["--request-details", &bad]);
    let shown = text(&app.cli(&malformed));
    assert!(
        shown.contains("result: denied: invalid_request: request_details must be a JSON object"),
        "{shown}"
    );
    assert!(app.records(&[]).is_empty());
}

#[tokio::test]
async fn tessera_test_runs_txn_token_cases() {
    let app = TestApp::spawn_with(with_txn_rule).await;
    let cases = r#"
[[cases]]
name = "the gateway's Txn-Token carries the action"
client = "orders-svc"
subject = { issuer = "corp", claims = { sub = "alice", scope = "inventory:read" } }
request = { token_type = "txn_token", scope = "inventory:read", details = { action = "BUY" } }
expect = { outcome = "granted", rule = "gateway-txn", scopes = ["inventory:read"], tctx = { action = "BUY" } }

[[cases]]
name = "a subject without a scope gets none"
client = "orders-svc"
subject = { issuer = "corp", claims = { sub = "alice" } }
request = { token_type = "txn_token", scope = "inventory:read", details = { action = "BUY" } }
expect = { outcome = "denied", error = "invalid_scope", rule = "gateway-txn" }

[[cases]]
name = "unsigned subjects are not taken from the gateway"
client = "orders-svc"
subject = { issuer = "unsigned_json", claims = { sub = "batch", scope = "inventory:read" } }
request = { token_type = "txn_token", scope = "inventory:read" }
expect = { outcome = "denied", error = "invalid_target" }

[[cases]]
name = "an access-token request is not decided by the Txn-Token rule"
client = "orders-svc"
subject = { issuer = "corp", claims = { sub = "alice", scope = "inventory:read" } }
request = { audiences = ["inventory-api"] }
expect = { outcome = "granted", rule = "orders-to-inventory" }
"#;
    let file = app.dir.path().join("txn-cases.toml");
    std::fs::write(&file, cases).unwrap();
    let out = app.cli(&["test", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("4 passed, 0 failed"), "{}", text(&out));
    let wrong = cases.replace(
        "tctx = { action = \"BUY\" }",
        "tctx = { action = \"SELL\" }",
    );
    std::fs::write(&file, wrong).unwrap();
    let out = app.cli(&["test", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(r#"granted tctx {"action":"BUY"}, expected {"action":"SELL"}"#),
        "{}",
        text(&out)
    );
}
