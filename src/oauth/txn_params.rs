//! What a Txn-Token request adds to the token-exchange form (draft-ietf-oauth-transaction-tokens
//! "Txn-Token Request"): `request_context` and `request_details`, each a JSON object.

use serde_json::Value;

use super::Params;
use crate::error::OAuthError;

/// The longest `request_context` or `request_details` taken, in bytes (SPEC §8).
pub const MAX_BYTES: usize = 8192;

/// A Txn-Token request's context (the environment of the call that starts the transaction) and
/// details (its parameters), as sent: the rule decides what of them a Txn-Token carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TxnParams {
    pub context: Option<Value>,
    pub details: Option<Value>,
}

impl TxnParams {
    pub fn parse(p: &Params) -> Result<Self, OAuthError> {
        Ok(Self {
            context: p
                .one("request_context")
                .map(|t| object("request_context", t))
                .transpose()?,
            details: p
                .one("request_details")
                .map(|t| object("request_details", t))
                .transpose()?,
        })
    }

    /// Whether the form holds either parameter.
    pub fn named_in(p: &Params) -> bool {
        p.one("request_context").is_some() || p.one("request_details").is_some()
    }
}

/// `text` as a JSON object of at most `MAX_BYTES`.
pub fn object(name: &str, text: &str) -> Result<Value, OAuthError> {
    if text.len() > MAX_BYTES {
        return Err(OAuthError::invalid_request(format!(
            "{name} is longer than {MAX_BYTES} bytes"
        )));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(OAuthError::invalid_request(format!(
            "{name} must be a JSON object ({{…}})"
        ))),
        Err(e) => Err(OAuthError::invalid_request(format!(
            "{name} is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounded_json_objects_are_taken() {
        let ok = object("request_details", r#"{"action":"BUY","n":[1,2]}"#).expect("object");
        assert_eq!(ok["action"], "BUY");
        for (text, why) in [
            ("{\"a\":", "not valid JSON"),
            ("[1,2]", "must be a JSON object"),
            ("\"text\"", "must be a JSON object"),
            ("null", "must be a JSON object"),
        ] {
            let err = object("request_details", text).expect_err(text);
            assert!(err.description.contains(why), "{text}: {}", err.description);
            assert!(err.description.starts_with("request_details"));
        }
        let long = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BYTES));
        let err = object("request_context", &long).expect_err("too long");
        assert!(err.description.contains("longer than 8192 bytes"));
        let exact = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BYTES - 8));
        assert_eq!(exact.len(), MAX_BYTES);
        object("request_context", &exact).expect("at the bound");
    }

    #[test]
    fn both_parameters_are_read_from_the_form() {
        let p = Params::parse(b"request_context=%7B%22req_ip%22%3A%221.2.3.4%22%7D").expect("form");
        let t = TxnParams::parse(&p).expect("valid");
        assert_eq!(t.context.expect("context")["req_ip"], "1.2.3.4");
        assert!(t.details.is_none());
        assert!(TxnParams::named_in(&p));
    }
}
