//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic` or
//! `client_secret_post`, exactly one per request, checked against the SHA-256 of the secret in
//! constant time.

pub mod assertion;
pub mod rate;

use std::collections::HashMap;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::clients::rate::Bucket;
use crate::config::{ClientAuth, ClientConfig};
use crate::error::{OAuthError, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    SecretBasic,
    SecretPost,
}

/// Credentials as presented, before they are checked.
#[derive(Debug)]
pub struct Presented {
    pub method: Method,
    pub client_id: String,
    secret: String,
}

/// The one way a request authenticates its client.
#[derive(Debug)]
pub enum Credentials {
    Secret(Presented),
    /// A `private_key_jwt` assertion, and the `client_id` sent beside it, if any.
    Assertion {
        assertion: String,
        client_id: Option<String>,
    },
}

/// What the request carries that bears on client authentication.
pub struct Evidence<'a> {
    pub authorization: Option<&'a str>,
    pub form_client_id: Option<&'a str>,
    pub form_client_secret: Option<&'a str>,
    pub form_client_assertion: Option<&'a str>,
    pub form_client_assertion_type: Option<&'a str>,
}

/// Finds the one authentication method the request uses. The error tells the client
/// whether Basic was attempted, for the `WWW-Authenticate` challenge.
pub fn credentials(evidence: &Evidence<'_>) -> Result<Credentials, OAuthError> {
    let assertion =
        evidence.form_client_assertion.is_some() || evidence.form_client_assertion_type.is_some();
    let methods = [
        evidence.authorization.is_some(),
        evidence.form_client_secret.is_some(),
        assertion,
    ];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(OAuthError::invalid_request(
            "the request uses more than one client authentication method",
        ));
    }
    if assertion {
        if evidence.form_client_assertion_type != Some(crate::clients::assertion::ASSERTION_TYPE) {
            return Err(OAuthError::invalid_client(
                format!(
                    "client_assertion_type must be {}",
                    crate::clients::assertion::ASSERTION_TYPE
                ),
                false,
            ));
        }
        let assertion = evidence.form_client_assertion.ok_or_else(|| {
            OAuthError::invalid_client(
                "client_assertion_type was sent without client_assertion",
                false,
            )
        })?;
        return Ok(Credentials::Assertion {
            assertion: assertion.to_string(),
            client_id: evidence.form_client_id.map(str::to_string),
        });
    }
    presented(evidence).map(Credentials::Secret)
}

/// The secret a request presents, by HTTP Basic or in the body.
fn presented(evidence: &Evidence<'_>) -> Result<Presented, OAuthError> {
    if let Some(header) = evidence.authorization {
        let (id, secret) = parse_basic(header).ok_or_else(|| {
            OAuthError::invalid_client(
                "the Authorization header is not valid HTTP Basic client authentication",
                true,
            )
        })?;
        if evidence.form_client_id.is_some_and(|form_id| form_id != id) {
            return Err(OAuthError::invalid_client(
                "client_id in the body differs from the authenticated client",
                true,
            ));
        }
        return Ok(Presented {
            method: Method::SecretBasic,
            client_id: id,
            secret,
        });
    }
    match (evidence.form_client_id, evidence.form_client_secret) {
        (Some(id), Some(secret)) => Ok(Presented {
            method: Method::SecretPost,
            client_id: id.into(),
            secret: secret.into(),
        }),
        (None, Some(_)) => Err(OAuthError::invalid_client(
            "client_secret was sent without client_id",
            false,
        )),
        _ => Err(OAuthError::invalid_client(
            "client authentication is required (HTTP Basic or client_secret_post)",
            true,
        )),
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, RFC 6749 §2.3.1.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(value.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // Each part is form-urlencoded as a whole (RFC 6749 §2.3.1): `&` and `=` are data.
    let unescape = |s: &str| crate::oauth::form::decode(s.as_bytes());
    let id = unescape(id)?;
    (!id.is_empty()).then_some(())?;
    Some((id, unescape(secret)?))
}

pub struct Clients {
    by_id: HashMap<String, ClientConfig>,
    buckets: HashMap<String, Bucket>,
}

impl Clients {
    pub fn new(configs: &[ClientConfig]) -> Self {
        Self {
            by_id: configs.iter().map(|c| (c.id.clone(), c.clone())).collect(),
            buckets: configs
                .iter()
                .filter_map(|c| c.rate_limit.map(|l| (c.id.clone(), Bucket::new(l))))
                .collect(),
        }
    }

    pub fn contains(&self, client_id: &str) -> bool {
        self.by_id.contains_key(client_id)
    }

    /// Every configured client, by id.
    pub fn configs(&self) -> Vec<&ClientConfig> {
        let mut all: Vec<&ClientConfig> = self.by_id.values().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Spends one request of the client's rate limit: 429 `temporarily_unavailable` with
    /// `Retry-After` when none is left.
    pub fn take_rate(&self, client_id: &str) -> Result<(), OAuthError> {
        match self.buckets.get(client_id).map(Bucket::take) {
            None | Some(Ok(())) => Ok(()),
            Some(Err(retry_after_secs)) => Err(OAuthError {
                status: Status::TooManyRequests { retry_after_secs },
                ..OAuthError::temporarily_unavailable(format!(
                    "client \"{client_id}\" is over its rate limit; retry in {retry_after_secs} s"
                ))
            }),
        }
    }

    /// The authenticated client's id. An unknown client costs the same comparison as a known
    /// one, so timing does not reveal which ids exist.
    pub fn authenticate(&self, presented: &Presented) -> Result<String, OAuthError> {
        let hash = digest(&SHA256, presented.secret.as_bytes());
        let known = self.by_id.get(&presented.client_id);
        let expected = match known.map(|c| &c.auth) {
            Some(ClientAuth::Secret(hash)) => *hash,
            _ => [0u8; 32],
        };
        let matches =
            aws_lc_rs::constant_time::verify_slices_are_equal(hash.as_ref(), &expected).is_ok();
        if matches && known.is_some() {
            return Ok(presented.client_id.clone());
        }
        // The same answer either way (nothing to learn about which ids exist); the record says
        // which it was.
        let why = match known {
            None => "client authentication failed: no client has this id",
            Some(_) => "client authentication failed: the secret is wrong",
        };
        Err(OAuthError::invalid_client(
            "client authentication failed",
            presented.method == Method::SecretBasic,
        )
        .with_detail(why))
    }
}

/// Lowercase hex SHA-256, as `secret_sha256` takes it.
pub fn sha256_hex(secret: &str) -> String {
    crate::hex(digest(&SHA256, secret.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClientAuth, decode_sha256_hex};
    use crate::error::ErrorCode;

    fn clients() -> Clients {
        let hash = decode_sha256_hex(&sha256_hex("s3cret")).expect("hex");
        Clients::new(&[ClientConfig {
            id: "orders-svc".into(),
            auth: ClientAuth::Secret(hash),
            rate_limit: None,
        }])
    }

    fn evidence<'a>(
        auth: Option<&'a str>,
        id: Option<&'a str>,
        secret: Option<&'a str>,
    ) -> Evidence<'a> {
        Evidence {
            authorization: auth,
            form_client_id: id,
            form_client_secret: secret,
            form_client_assertion: None,
            form_client_assertion_type: None,
        }
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_and_post_both_authenticate() {
        let header = basic("orders-svc", "s3cret");
        let p = presented(&evidence(Some(&header), None, None)).expect("basic");
        assert_eq!(
            clients().authenticate(&p).ok().as_deref(),
            Some("orders-svc")
        );
        let p = presented(&evidence(None, Some("orders-svc"), Some("s3cret"))).expect("post");
        assert_eq!(p.method, Method::SecretPost);
        assert!(clients().authenticate(&p).is_ok());
    }

    #[test]
    fn basic_credentials_are_form_urlencoded() {
        let header = basic("orders%2Dsvc", "s3cr%65t");
        let p = presented(&evidence(Some(&header), None, None)).expect("basic");
        assert_eq!(p.client_id, "orders-svc");
        assert!(clients().authenticate(&p).is_ok());
    }

    #[test]
    fn basic_credentials_are_decoded_as_wholes() {
        for (id, secret, want_id, want_secret) in [
            ("a%26b%3Dc", "x%26y%3Dz", "a&b=c", "x&y=z"),
            ("a&b=c", "s=1&t=2", "a&b=c", "s=1&t=2"),
            ("id+with+spaces", "p%2Bq", "id with spaces", "p+q"),
        ] {
            let header = basic(id, secret);
            let p = presented(&evidence(Some(&header), None, None)).expect("basic");
            assert_eq!(
                (p.client_id.as_str(), p.secret.as_str()),
                (want_id, want_secret)
            );
        }
        for bad in [basic("a%2", "s"), basic("a", "%zz")] {
            assert!(presented(&evidence(Some(&bad), None, None)).is_err());
        }
    }

    #[test]
    fn wrong_or_unknown_credentials_fail_alike() {
        for (id, secret) in [
            ("orders-svc", "wrong"),
            ("nobody", "s3cret"),
            ("orders-svc", ""),
        ] {
            let p = presented(&evidence(None, Some(id), Some(secret))).expect("post");
            let err = clients().authenticate(&p).expect_err("must fail");
            assert_eq!(err.code, ErrorCode::InvalidClient);
            assert_eq!(err.description, "client authentication failed");
        }
    }

    #[test]
    fn exactly_one_method_is_allowed() {
        let header = basic("orders-svc", "s3cret");
        let err = credentials(&evidence(Some(&header), Some("orders-svc"), Some("s3cret")))
            .expect_err("two methods");
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        let err = credentials(&evidence(None, None, None)).expect_err("none");
        assert_eq!(err.code, ErrorCode::InvalidClient);
        let err = credentials(&evidence(Some("Bearer abc"), None, None)).expect_err("not basic");
        assert!(err.basic_challenge);
        let err = credentials(&evidence(
            Some(&basic("other", "x")),
            Some("orders-svc"),
            None,
        ))
        .expect_err("ids differ");
        assert_eq!(err.code, ErrorCode::InvalidClient);
    }

    #[test]
    fn an_assertion_needs_its_type_and_comes_alone() {
        let ev = |assertion: Option<&'static str>,
                  ty: Option<&'static str>,
                  secret: Option<&'static str>| Evidence {
            authorization: None,
            form_client_id: Some("svc"),
            form_client_secret: secret,
            form_client_assertion: assertion,
            form_client_assertion_type: ty,
        };
        let jwt_bearer = Some(crate::clients::assertion::ASSERTION_TYPE);
        assert!(matches!(
            credentials(&ev(Some("a.b.c"), jwt_bearer, None)),
            Ok(Credentials::Assertion { .. })
        ));
        assert_eq!(
            credentials(&ev(Some("a.b.c"), Some("urn:other"), None))
                .err()
                .map(|e| e.code),
            Some(ErrorCode::InvalidClient)
        );
        assert_eq!(
            credentials(&ev(None, jwt_bearer, None))
                .err()
                .map(|e| e.code),
            Some(ErrorCode::InvalidClient)
        );
        assert_eq!(
            credentials(&ev(Some("a.b.c"), jwt_bearer, Some("s")))
                .err()
                .map(|e| e.code),
            Some(ErrorCode::InvalidRequest)
        );
    }
}
