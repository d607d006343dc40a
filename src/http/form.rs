//! The token request (RFC 8693 §2.1) parsed at the edge into types that cannot be wrong.

use std::str::FromStr;

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;

use crate::config::{is_resource_indicator, is_scope_token};
use crate::error::{ErrorCode, OAuthError};
use crate::tokens::TokenType;

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Parameters that may be given more than once (RFC 8693 §2.1).
const REPEATABLE: &[&str] = &["audience", "resource"];
/// Targets (`audience` and `resource` together, duplicates removed) a request may name, and
/// scope-tokens its `scope` may hold (SPEC §6): what a token and its record can be made to carry.
pub const MAX_TARGETS: usize = 16;
pub const MAX_SCOPES: usize = 64;

/// A form body, with every parameter but `audience` and `resource` given at most once.
/// Empty values count as absent (RFC 6749 §3.1).
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let malformed = || {
            OAuthError::invalid_request(
                "the body is not a valid application/x-www-form-urlencoded form",
            )
        };
        let mut pairs = Vec::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = decode(name).ok_or_else(malformed)?;
            let value = decode(value).ok_or_else(malformed)?;
            if !value.is_empty() {
                pairs.push((name, value));
            }
        }
        let mut seen = std::collections::HashSet::with_capacity(pairs.len());
        for (name, _) in &pairs {
            if !REPEATABLE.contains(&name.as_str()) && !seen.insert(name.as_str()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter \"{}\" is given more than once",
                    printable(name)
                )));
            }
        }
        Ok(Self { pairs })
    }

    pub fn one(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable parameter, in order, each once.
    pub fn all(&self, name: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.pairs
            .iter()
            .filter(|(n, v)| n == name && seen.insert(v.as_str()))
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.one(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter \"{name}\" is required")))
    }

    pub fn check_grant_type(&self) -> Result<(), OAuthError> {
        match self.required("grant_type")? {
            TOKEN_EXCHANGE => Ok(()),
            _ => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("only grant_type={TOKEN_EXCHANGE} is supported"),
            )),
        }
    }
}

/// One name or value, strictly form-decoded: `+` is a space, every `%` starts a two-digit hex
/// escape, and the result is UTF-8. (Lenient parsers guess at broken input instead.)
pub fn decode(part: &[u8]) -> Option<String> {
    if !part.iter().any(|b| matches!(b, b'%' | b'+')) {
        return std::str::from_utf8(part).ok().map(str::to_owned);
    }
    let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
    let mut out = Vec::with_capacity(part.len());
    let mut rest = part;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = hex(tail.first())? * 16 + hex(tail.get(1))?;
                out.push(u8::try_from(byte).ok()?);
                rest = &tail[2..];
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// A parameter name shown back to the client, cut short and stripped of control characters.
fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[derive(Debug)]
pub struct TokenRequest {
    pub subject_token: String,
    pub subject_token_type: TokenType,
    pub actor_token: Option<(String, TokenType)>,
    pub audiences: Vec<String>,
    pub resources: Vec<String>,
    /// `None` when no scope was requested.
    pub scopes: Option<Vec<String>>,
    pub requested_token_type: TokenType,
}

impl TokenRequest {
    pub fn from_params(p: &Params) -> Result<Self, OAuthError> {
        let subject_token = p.required("subject_token")?.to_string();
        let subject_token_type =
            token_type(p.required("subject_token_type")?, "subject_token_type")?;
        let actor_token = match (p.one("actor_token"), p.one("actor_token_type")) {
            (Some(t), Some(ty)) => Some((t.to_string(), token_type(ty, "actor_token_type")?)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(OAuthError::invalid_request(
                    "actor_token requires actor_token_type",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "actor_token_type was given without actor_token",
                ));
            }
        };
        let requested_token_type = match p.one("requested_token_type") {
            None => TokenType::AccessToken,
            Some(uri) => match token_type(uri, "requested_token_type")? {
                t @ (TokenType::AccessToken | TokenType::Jwt) => t,
                other => {
                    return Err(OAuthError::invalid_request(format!(
                        "requested_token_type {} is not supported; request an access_token or a jwt",
                        other.uri()
                    )));
                }
            },
        };
        let audiences = p.all("audience");
        let resources = p.all("resource");
        if audiences.is_empty() && resources.is_empty() {
            return Err(OAuthError::invalid_request(
                "name the target API with an audience or resource parameter",
            ));
        }
        let targets = audiences.len() + resources.len();
        if targets > MAX_TARGETS {
            return Err(OAuthError::invalid_request(format!(
                "a request names at most {MAX_TARGETS} targets (audience and resource together, \
                 each once); this one names {targets}"
            )));
        }
        if let Some(bad) = resources.iter().find(|r| !is_resource_indicator(r)) {
            return Err(OAuthError::invalid_target(format!(
                "resource \"{}\" is not an absolute URI without a fragment",
                printable(bad)
            )));
        }
        let scopes = match p.one("scope") {
            None => None,
            Some(text) => {
                let mut seen = std::collections::HashSet::new();
                let list: Vec<String> = text
                    .split(' ')
                    .filter(|s| !s.is_empty() && seen.insert(*s))
                    .map(str::to_string)
                    .collect();
                if list.len() > MAX_SCOPES {
                    return Err(OAuthError::invalid_request(format!(
                        "a scope holds at most {MAX_SCOPES} scope-tokens; this one holds {}",
                        list.len()
                    )));
                }
                if let Some(bad) = list.iter().find(|s| !is_scope_token(s)) {
                    return Err(OAuthError::invalid_scope(format!(
                        "scope \"{}\" contains characters scopes may not have",
                        printable(bad)
                    )));
                }
                (!list.is_empty()).then_some(list)
            }
        };
        Ok(Self {
            subject_token,
            subject_token_type,
            actor_token,
            audiences,
            resources,
            scopes,
            requested_token_type,
        })
    }
}

fn token_type(uri: &str, param: &str) -> Result<TokenType, OAuthError> {
    TokenType::from_str(uri).map_err(|_| {
        OAuthError::invalid_request(format!("{param} is not a token type URI of RFC 8693 §3"))
    })
}

/// The body, refused before it is read whole when it is larger than allowed, or not a form.
pub async fn read_body(
    req: &HttpRequest,
    body: web::Payload,
    limit: usize,
    within: std::time::Duration,
) -> Result<Vec<u8>, OAuthError> {
    tokio::time::timeout(within, read_whole(req, body, limit))
        .await
        .unwrap_or_else(|_| Err(OAuthError::body_timeout()))
}

async fn read_whole(
    req: &HttpRequest,
    mut body: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(OAuthError::payload_too_large(limit));
    }
    // Grown as the body arrives, never reserved from what the client declares: a connection
    // that declares a large body and sends a byte must not hold the whole of it.
    let mut bytes = Vec::with_capacity(declared.unwrap_or(1024).min(limit).min(4096));
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|_| OAuthError::invalid_request("the request body could not be read"))?;
        if bytes.len() + chunk.len() > limit {
            return Err(OAuthError::payload_too_large(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> Result<TokenRequest, OAuthError> {
        TokenRequest::from_params(&Params::parse(body.as_bytes())?)
    }

    const BASE: &str = "subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=a";

    #[test]
    fn a_full_request_parses() {
        let r = request(&format!(
            "{BASE}&audience=b&resource=https%3A%2F%2Fr%2F&scope=x+y"
        ))
        .expect("valid");
        assert_eq!(r.audiences, vec!["a", "b"]);
        assert_eq!(r.resources, vec!["https://r/"]);
        assert_eq!(r.scopes, Some(vec!["x".to_string(), "y".to_string()]));
        assert_eq!(r.requested_token_type, TokenType::AccessToken);
    }

    #[test]
    fn bad_requests_get_the_right_code() {
        let at = "urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token";
        let cases: Vec<(String, ErrorCode)> = vec![
            (format!("{BASE}&scope=a&scope=b"), ErrorCode::InvalidRequest),
            (format!("{BASE}&subject_token=u"), ErrorCode::InvalidRequest),
            (
                "subject_token_type=x&audience=a".into(),
                ErrorCode::InvalidRequest,
            ),
            (
                BASE.replace("access_token", "bogus"),
                ErrorCode::InvalidRequest,
            ),
            (format!("{BASE}&actor_token=x"), ErrorCode::InvalidRequest),
            (
                format!("{BASE}&actor_token_type={at}"),
                ErrorCode::InvalidRequest,
            ),
            (
                format!(
                    "{BASE}&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Arefresh_token"
                ),
                ErrorCode::InvalidRequest,
            ),
            (BASE.replace("&audience=a", ""), ErrorCode::InvalidRequest),
            (
                format!("{BASE}&resource=relative%2Fpath"),
                ErrorCode::InvalidTarget,
            ),
            (format!("{BASE}&scope=a%22b"), ErrorCode::InvalidScope),
            ("%zz=1".into(), ErrorCode::InvalidRequest),
            (format!("{BASE}&scope=%ff%fe"), ErrorCode::InvalidRequest),
            (format!("{BASE}&scope=a%2"), ErrorCode::InvalidRequest),
        ];
        for (body, code) in cases {
            let err = request(&body).expect_err(&body);
            assert_eq!(err.code, code, "{body}: {}", err.description);
        }
    }

    #[test]
    fn names_and_values_are_decoded_strictly() {
        let p = Params::parse(b"a=x+y%2Bz&&b&c=%C3%A9&d=1=2").expect("valid");
        assert_eq!(p.one("a"), Some("x y+z"));
        assert_eq!(p.one("b"), None, "a name alone has an empty value: absent");
        assert_eq!(p.one("c"), Some("é"));
        assert_eq!(p.one("d"), Some("1=2"), "the first = ends the name");
        for bad in ["a=%+1", "a=%1", "a=%", "%C3=1", "a=%C3%28"] {
            assert!(Params::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_values_count_as_absent() {
        let r = request(&format!("{BASE}&scope=&actor_token=&actor_token_type=")).expect("valid");
        assert_eq!(r.scopes, None);
        assert!(r.actor_token.is_none());
    }

    #[test]
    fn a_repeat_is_found_among_many_parameters() {
        let body: String = (0..20_000).map(|i| format!("p{i}=1&")).collect();
        assert!(Params::parse(body.as_bytes()).is_ok());
        let repeated = format!("{body}p7=2");
        assert!(Params::parse(repeated.as_bytes()).is_err());
    }

    #[test]
    fn only_token_exchange_is_a_supported_grant() {
        let p = Params::parse(b"grant_type=client_credentials").expect("parse");
        assert_eq!(
            p.check_grant_type().expect_err("unsupported").code,
            ErrorCode::UnsupportedGrantType
        );
        let p = Params::parse(b"x=1").expect("parse");
        assert_eq!(
            p.check_grant_type().expect_err("missing").code,
            ErrorCode::InvalidRequest
        );
    }
}
