//! A rule condition: compiled with its static bounds (measured on the parsed expression), then
//! evaluated against a request under its step budget. The first line of the input is the
//! condition, the rest the subject token's claims (JSON). Whatever the input, an evaluation
//! must end well within the run's per-input timeout: a slow input is a failure of the bound.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tessera::condition::{Condition, Input};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (source, claims) = text.split_once('\n').unwrap_or((text, "{}"));
    let Ok(condition) = Condition::compile(source) else {
        return;
    };
    let subject: Map<String, Value> = serde_json::from_str(claims).unwrap_or_default();
    let scopes = tessera::oauth::Scopes::parse("inventory:read").unwrap_or_default();
    let details = serde_json::json!({ "action": "BUY", "items": [1, 2, 3] });
    let input = Input {
        subject: &subject,
        spiffe: Some(("prod.example.org", "/ns/payments/sa/api")),
        actor: None,
        client: "orders-svc",
        audiences: &["inventory-api".to_string()],
        resources: &[],
        scopes: &scopes,
        context: None,
        details: Some(&details),
    };
    let _ = condition.evaluate(&input);
    // The same expression as a claim a Txn-Token rule builds.
    let _ = Condition::values(&[&condition], &input);
});
