//! CEL conditions through the token endpoint.

use serde_json::json;

use crate::helpers::*;

fn staff_only(c: String) -> String {
    c.replace(
        "[[rules]]\nname = \"orders-to-inventory\"",
        "[[rules]]\nname = \"staff-reports\"\nclients = [\"orders-svc\"]\nissuers = [\"corp\"]\naudiences = [\"reports-api\"]\nscopes = [\"inventory:read\"]\ndefault_scopes = [\"inventory:read\"]\ncondition = '\"staff\" in subject.groups && client == \"orders-svc\" && \"reports-api\" in request.audiences'\n\n[[rules]]\nname = \"orders-to-inventory\"",
    )
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
    let config = std::fs::read_to_string(&app.config_path)
        .unwrap()
        .replace("subject.groups &&", "subject.groups &&&");
    let path = app.dir.path().join("bad-cel.toml");
    std::fs::write(&path, config).unwrap();
    let out = run_cli(&["check"], Some(&path));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rules[0].condition") && err.contains("CEL"),
        "{err}"
    );
}
