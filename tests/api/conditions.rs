//! CEL conditions through the token endpoint.

use serde_json::json;

use crate::helpers::*;

fn staff_only(c: &mut RawConfig) {
    c.rules.insert(
        0,
        entry(
            r#"
name = "staff-reports"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["reports-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
condition = '"staff" in subject.groups && client == "orders-svc" && "reports-api" in request.audiences'
"#,
        ),
    );
}

async fn reports(app: &TestApp, subject: &str) -> reqwest::Response {
    app.exchange(&[
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", "reports-api"),
    ])
    .await
}

#[tokio::test]
async fn a_rule_applies_only_when_its_condition_is_true() {
    let app = TestApp::spawn_with(staff_only).await;
    let staff = app.subject_token(json!({"groups": ["staff", "eu"]}));
    assert_eq!(reports(&app, &staff).await.status(), 200);

    let guest = app.subject_token(json!({"groups": ["guests"]}));
    let desc = assert_error(reports(&app, &guest).await, 400, "invalid_target").await;
    assert!(
        desc.contains("staff-reports") && desc.contains("condition"),
        "{desc}"
    );
    assert!(
        !desc.contains("subject.groups"),
        "the condition's text stays private: {desc}"
    );

    // No groups claim at all: evaluation fails, and a failure never allows.
    let none = app.subject_token(json!({}));
    let desc = assert_error(reports(&app, &none).await, 400, "invalid_target").await;
    assert!(desc.contains("could not be evaluated"), "{desc}");
    let records = app.records(&["--outcome", "denied"]);
    assert_eq!(records.len(), 2);
    assert!(
        records[0]["reason"]
            .as_str()
            .unwrap()
            .contains("could not be evaluated")
    );
}

#[tokio::test]
async fn check_names_the_rule_whose_condition_is_not_valid_cel() {
    let app = TestApp::spawn_with(staff_only).await;
    let path = app.config_copy("bad-cel.toml", |c| {
        c.rule_mut("staff-reports").condition = Some(
            r#""staff" in subject.groups &&& client == "orders-svc" && "reports-api" in request.audiences"#
                .into(),
        );
    });
    let out = run_cli(&["check"], Some(&path));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rules[0].condition") && err.contains("CEL"),
        "{err}"
    );
}

fn looping(c: &mut RawConfig) {
    c.rules.insert(
        0,
        entry(
            r#"
name = "loops"
clients = ["orders-svc"]
issuers = ["corp"]
audiences = ["reports-api"]
scopes = ["inventory:read"]
default_scopes = ["inventory:read"]
condition = 'subject.groups.all(g, g != "banned")'
"#,
        ),
    );
}

#[tokio::test]
async fn a_condition_over_its_budget_denies_that_request_only() {
    let app = TestApp::spawn_with(looping).await;
    let ok = app.subject_token(json!({"groups": ["staff"]}));
    assert_eq!(reports(&app, &ok).await.status(), 200);
    let long = app.subject_token(json!({"groups": vec![0; 1001]}));
    let desc = assert_error(reports(&app, &long).await, 400, "invalid_target").await;
    assert!(desc.contains("exceeded its budget"), "{desc}");
    assert!(!desc.contains("groups"), "{desc}");
    // Other requests are served as before.
    assert_eq!(reports(&app, &ok).await.status(), 200);
    assert_eq!(
        app.exchange_subject(&long).await.status(),
        200,
        "rules without conditions"
    );
    let record = &app.records(&["--outcome", "denied"])[0];
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("exceeded its budget"),
        "{record}"
    );
}

#[tokio::test]
async fn an_evaluation_error_is_detailed_in_the_record_only() {
    let app = TestApp::spawn_with(staff_only).await;
    let none = app.subject_token(json!({"groups": null}));
    let desc = assert_error(reports(&app, &none).await, 400, "invalid_target").await;
    assert!(desc.contains("could not be evaluated"), "{desc}");
    assert!(
        !desc.contains("groups"),
        "the evaluator's words stay private: {desc}"
    );
    let record = &app.records(&["--outcome", "denied"])[0];
    let reason = record["reason"].as_str().unwrap();
    assert!(
        reason.contains("could not be evaluated") && reason.len() > desc.len(),
        "{reason}"
    );
}

#[tokio::test]
async fn check_refuses_comprehensions_nested_however_they_are_written() {
    let app = TestApp::spawn_with(looping).await;
    for nested in [
        "subject.groups.map (a, subject.groups.map (b, a + b)).size() > 0",
        "subject.groups.exists(a, subject.groups.all(b, a == b))",
    ] {
        let path = app.config_copy("nested.toml", |c| {
            c.rule_mut("loops").condition = Some(nested.into());
        });
        let out = run_cli(&["check"], Some(&path));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{nested}");
        assert!(
            err.contains("rules[0].condition") && err.contains("inside another"),
            "{err}"
        );
    }
}
