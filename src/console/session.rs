//! Console sessions: a signed cookie (HMAC-SHA-256 under a key made at start, so a restart signs
//! everyone out) holding who signed in, their role and when; `HttpOnly`, `SameSite=Strict`,
//! scoped to `/console`. A session ends after 30 minutes without a request or 12 hours after
//! sign-in. Forms that change something carry a CSRF token derived from the session; the sign-in
//! form, before any session, a random token also set as a cookie (double submit).

use actix_web::HttpRequest;
use actix_web::http::header;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

const COOKIE: &str = "tessera_console";
const FORM_COOKIE: &str = "tessera_console_form";
/// A session ends this long after its last request.
pub const IDLE_SECS: i64 = 30 * 60;
/// And this long after sign-in, whatever.
pub const ABSOLUTE_SECS: i64 = 12 * 3600;

/// The key sessions are signed with, made once per process, and the sessions signed out
/// since: a copy of a signed-out session's cookie is no session, though its signature holds.
pub struct SessionKey {
    key: hmac::Key,
    /// Cookies are sent over https only (the console's `url` is https).
    secure: bool,
    /// Session ids signed out, each with when it would have ended anyway (seconds).
    ended: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl SessionKey {
    pub fn random(secure: bool) -> Result<Self, crate::ids::RandomFailed> {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| crate::ids::RandomFailed)?;
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
            secure,
            ended: Default::default(),
        })
    }

    /// A `Set-Cookie` value: `HttpOnly` always, `Secure` behind https.
    pub fn cookie(
        &self,
        name: &str,
        value: &str,
        path: &str,
        max_age: i64,
        same_site: &str,
    ) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
        )
    }

    pub fn sign(&self, data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, data).as_ref())
    }

    /// `data` signed: `<base64url data>.<signature>`.
    pub fn sealed(&self, data: &[u8]) -> String {
        let payload = URL_SAFE_NO_PAD.encode(data);
        let signature = self.sign(payload.as_bytes());
        format!("{payload}.{signature}")
    }

    /// What `sealed` signed, when the signature holds.
    pub fn unsealed(&self, value: &str) -> Option<Vec<u8>> {
        let (payload, signature) = value.split_once('.')?;
        if !self.verifies(payload.as_bytes(), signature) {
            return None;
        }
        URL_SAFE_NO_PAD.decode(payload).ok()
    }

    fn verifies(&self, data: &[u8], signature: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(signature)
            .is_ok_and(|tag| hmac::verify(&self.key, data, &tag).is_ok())
    }

    fn has_ended(&self, sid: &str) -> bool {
        self.ended
            .lock()
            .map_or(true, |ended| ended.contains_key(sid))
    }
}

/// What a signed-in person may do: `auditor` reads, exports and verifies; `operator` also
/// revokes and reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Auditor,
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auditor => "auditor",
            Self::Operator => "operator",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// Who signed in, as recorded beside what they change.
    pub who: String,
    pub role: Role,
    /// Sign-in and last request, seconds.
    iat: i64,
    seen: i64,
    /// Random: what the CSRF token is derived from.
    sid: String,
}

impl Session {
    /// A new session; without random bytes for its id there is none (its CSRF token and its
    /// sign-out are keyed by that id).
    pub fn new(who: &str, role: Role, now: i64) -> Result<Self, crate::ids::RandomFailed> {
        Ok(Self {
            who: who.to_string(),
            role,
            iat: now,
            seen: now,
            sid: crate::ids::secret()?,
        })
    }

    /// The session a request's cookie holds, when its signature verifies and it has not
    /// expired; its last request is now.
    pub fn of(req: &HttpRequest, key: &SessionKey, now: i64) -> Option<Self> {
        let value = cookie(req, COOKIE)?;
        let mut session: Session = serde_json::from_slice(&key.unsealed(value)?).ok()?;
        if now - session.seen > IDLE_SECS
            || now - session.iat > ABSOLUTE_SECS
            || now < session.iat
            || key.has_ended(&session.sid)
        {
            return None;
        }
        session.seen = now;
        Some(session)
    }

    /// The `Set-Cookie` value that keeps the session going.
    pub fn cookie(&self, key: &SessionKey) -> String {
        let value = key.sealed(&serde_json::to_vec(self).unwrap_or_default());
        let max_age = (self.iat + ABSOLUTE_SECS - self.seen).clamp(0, IDLE_SECS);
        key.cookie(COOKIE, &value, "/console", max_age, "Strict")
    }

    /// Ends the session for good: its cookie, wherever a copy of it is, is no session any more.
    pub fn end(&self, key: &SessionKey, now: i64) {
        if let Ok(mut ended) = key.ended.lock() {
            ended.retain(|_, until| *until > now);
            ended.insert(self.sid.clone(), self.iat + ABSOLUTE_SECS);
        }
    }

    /// The token every form that changes something carries.
    pub fn csrf(&self, key: &SessionKey) -> String {
        key.sign(format!("csrf\n{}", self.sid).as_bytes())
    }

    pub fn csrf_matches(&self, key: &SessionKey, presented: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            self.csrf(key).as_bytes(),
            presented.as_bytes(),
        )
        .is_ok()
    }
}

/// The `Set-Cookie` value that ends a session.
pub fn expired(key: &SessionKey) -> String {
    key.cookie(COOKIE, "", "/console", 0, "Strict")
}

/// The sign-in form's token: the one its cookie already holds, or a new one with its cookie.
pub struct FormToken {
    pub value: String,
    pub cookie: Option<String>,
}

pub fn form_token(
    req: &HttpRequest,
    key: &SessionKey,
) -> Result<FormToken, crate::ids::RandomFailed> {
    if let Some(value) = cookie(req, FORM_COOKIE).filter(|v| v.len() == 43) {
        return Ok(FormToken {
            value: value.to_string(),
            cookie: None,
        });
    }
    let value = crate::ids::secret()?;
    Ok(FormToken {
        cookie: Some(key.cookie(FORM_COOKIE, &value, "/console", 3600, "Strict")),
        value,
    })
}

/// Whether the sign-in form's token is the one its cookie holds.
pub fn form_token_matches(req: &HttpRequest, presented: &str) -> bool {
    cookie(req, FORM_COOKIE).is_some_and(|expected| {
        !expected.is_empty()
            && aws_lc_rs::constant_time::verify_slices_are_equal(
                expected.as_bytes(),
                presented.as_bytes(),
            )
            .is_ok()
    })
}

pub fn expired_form_token(key: &SessionKey) -> String {
    key.cookie(FORM_COOKIE, "", "/console", 0, "Strict")
}

/// The value of the request's cookie `name` (the first, when several are sent).
pub fn cookie<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(cookie: &str) -> HttpRequest {
        actix_web::test::TestRequest::default()
            .insert_header((header::COOKIE, cookie.to_string()))
            .to_http_request()
    }

    fn value_of(set_cookie: &str) -> &str {
        set_cookie.split(';').next().expect("a pair")
    }

    #[test]
    fn a_session_holds_until_idle_or_old_and_only_as_signed() {
        let key = SessionKey::random(false).expect("key");
        let session = Session::new("admin token", Role::Operator, 1_000).expect("random");
        let set = session.cookie(&key);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        let req = request_with(value_of(&set));
        let back = Session::of(&req, &key, 1_000 + IDLE_SECS).expect("within idle");
        assert_eq!(
            (back.who.as_str(), back.role),
            ("admin token", Role::Operator)
        );
        assert!(Session::of(&req, &key, 1_001 + IDLE_SECS).is_none(), "idle");
        let other = SessionKey::random(false).expect("key");
        assert!(Session::of(&req, &other, 1_000).is_none(), "another key");
        // A role changed by hand breaks the signature.
        let (payload, signature) = value_of(&set)["tessera_console=".len()..]
            .split_once('.')
            .expect("signed");
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("utf8");
        let forged = URL_SAFE_NO_PAD.encode(json.replace("operator", "auditor"));
        let req = request_with(&format!("tessera_console={forged}.{signature}"));
        assert!(Session::of(&req, &key, 1_000).is_none(), "tampered");
        // Kept alive request by request, it still ends 12 hours after sign-in.
        let mut s = session.clone();
        let mut now = 1_000;
        while now - 1_000 < ABSOLUTE_SECS {
            now += IDLE_SECS - 1;
            let req = request_with(value_of(&s.cookie(&key)));
            match Session::of(&req, &key, now) {
                Some(next) => s = next,
                None => break,
            }
        }
        assert!(now - 1_000 >= ABSOLUTE_SECS - IDLE_SECS, "ended at {now}");
        assert!(s.csrf_matches(&key, &s.csrf(&key)));
        assert!(!s.csrf_matches(&key, "forged"));
        // Signed out, a copy of its cookie is no session.
        let fresh = Session::new("admin token", Role::Operator, 5_000).expect("random");
        let copy = request_with(value_of(&fresh.cookie(&key)));
        assert!(Session::of(&copy, &key, 5_001).is_some());
        fresh.end(&key, 5_002);
        assert!(Session::of(&copy, &key, 5_003).is_none());
    }
}
