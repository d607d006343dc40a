//! Reads a compact JWS *without verifying it*, only to choose the issuer (`iss`) and the key
//! (`alg`, `kid`). Nothing read here is trusted until `verify` has checked the signature over
//! exactly these bytes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Larger tokens are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 32 * 1024;

#[derive(Debug, Deserialize)]
pub struct JoseHeader {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub crit: Option<Value>,
    /// Only DPoP proofs use an embedded key; for tokens it is ignored.
    pub jwk: Option<Value>,
}

#[derive(Debug)]
pub struct Unverified<'a> {
    pub header: JoseHeader,
    pub claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    pub signature: &'a str,
}

impl Unverified<'_> {
    pub fn iss(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    pub fn sub(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }
}

/// Why a token could not even be read; the text never quotes the token.
pub fn parse(token: &str) -> Result<Unverified<'_>, &'static str> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err("is larger than 32 KiB");
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("is not a JWT (three dot-separated parts)");
    };
    let header: JoseHeader = decode_json(header).ok_or("has a malformed JOSE header")?;
    let claims: Map<String, Value> = decode_json(payload).ok_or("has a malformed claims set")?;
    if signature.is_empty() {
        return Err("is not signed");
    }
    let signing_input = token
        .get(..token.len() - signature.len() - 1)
        .ok_or("is not a JWT")?;
    Ok(Unverified {
        header,
        claims,
        signing_input,
        signature,
    })
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn reads_header_and_claims() {
        let token = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"ES256","kid":"k"}"#),
            b64(r#"{"iss":"https://i"}"#)
        );
        let parsed = parse(&token).expect("parse");
        assert_eq!(parsed.header.alg, "ES256");
        assert_eq!(parsed.header.kid.as_deref(), Some("k"));
        assert_eq!(parsed.iss(), Some("https://i"));
        assert_eq!(parsed.signature, "c2ln");
        assert_eq!(format!("{}.c2ln", parsed.signing_input), token);
    }

    #[test]
    fn garbage_is_refused_without_quoting_it() {
        let h = b64(r#"{"alg":"ES256"}"#);
        let c = b64(r#"{"iss":"x"}"#);
        let cases = [
            String::new(),
            "abc".into(),
            "a.b.c".into(),
            format!("{h}.{c}"),
            format!("{h}.{c}."),
            format!("{h}.{c}.s.extra"),
            format!("{}.{c}.s", b64("[]")),
            format!("{h}.{}.s", b64("not json")),
            format!("{h}.{c}.{}", "s".repeat(MAX_TOKEN_BYTES)),
        ];
        for case in cases {
            let err = parse(&case).expect_err("must be refused");
            assert!(!err.contains(&case) || case.is_empty());
        }
    }
}
