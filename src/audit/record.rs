//! One exchange record, as `tessera audit --format json` and the admin API show it.

use serde::{Serialize, Serializer};

use crate::clock::{format_micros, format_secs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Granted,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Denied => "denied",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ExchangeRecord {
    pub id: String,
    #[serde(rename = "time", serialize_with = "micros_rfc3339")]
    pub time_us: i64,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub reason: String,
    pub client_id: Option<String>,
    pub subject_issuer: Option<String>,
    pub subject: Option<String>,
    pub subject_jti: Option<String>,
    pub actor_issuer: Option<String>,
    pub actor: Option<String>,
    pub requested_audiences: Vec<String>,
    pub requested_resources: Vec<String>,
    pub requested_scopes: Vec<String>,
    pub granted_audiences: Vec<String>,
    pub granted_scopes: Vec<String>,
    pub rule: Option<String>,
    pub token_jti: Option<String>,
    #[serde(serialize_with = "opt_secs_rfc3339")]
    pub expires_at: Option<i64>,
    #[serde(serialize_with = "opt_secs_rfc3339")]
    pub revoked_at: Option<i64>,
    pub remote_addr: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: String,
    pub duration_us: i64,
    pub chain: String,
    /// How many requests the record stands for: 1, or those a summary counts.
    pub count: i64,
    /// Request values were cut to fit the record's bounds.
    pub truncated: bool,
    /// The kind of token asked for: `requested_token_type`'s last part (`access_token` when
    /// the request named none this server knows).
    pub token_type: String,
    /// The transaction of the Txn-Token minted, or of the one presented for replacement.
    pub txn: Option<String>,
    /// The grant type's last part: `token-exchange`, or `jwt-bearer` (SPEC §9).
    pub grant_type: String,
    /// The kind of grant for another trust domain issued (token exchange) or presented
    /// (`jwt-bearer`): `authorization_grant` or `id_jag`.
    pub grant_kind: Option<String>,
    #[serde(skip)]
    pub seq: i64,
    #[serde(skip)]
    pub prev_hash: String,
    #[serde(skip)]
    pub hash: String,
    /// When the subject token stops being accepted (microseconds, exclusive): the end of the
    /// span its records can lie in, kept for finding them by `subject_jti`. Not audit content.
    #[serde(skip)]
    pub subject_until_us: Option<i64>,
    /// The `jti` of the actor token the exchange used: revoking that token, when this server
    /// minted it, revokes what was minted with it.
    #[serde(skip)]
    pub actor_jti: Option<String>,
    /// The tokens a grant comes from, for the writer to refuse it inside its commit when one of
    /// them is revoked (`audit::revocation::settle`). Not stored.
    #[serde(skip)]
    pub provenance: Option<Box<super::provenance::Provenance>>,
    /// The client was authenticated: a refusal before that is limited per remote address
    /// (`pre_auth`). Not stored.
    #[serde(skip)]
    pub authenticated: bool,
}

impl ExchangeRecord {
    /// A record for a request that has just arrived; the exchange fills it in as it goes.
    pub fn begin(
        time_us: i64,
        request_id: String,
        remote_addr: Option<String>,
        user_agent: Option<String>,
    ) -> Self {
        Self {
            id: crate::ids::record_id(crate::clock::UnixTime::from_micros(time_us)),
            time_us,
            outcome: Outcome::Denied,
            error: None,
            reason: String::new(),
            client_id: None,
            subject_issuer: None,
            subject: None,
            subject_jti: None,
            actor_issuer: None,
            actor: None,
            requested_audiences: Vec::new(),
            requested_resources: Vec::new(),
            requested_scopes: Vec::new(),
            granted_audiences: Vec::new(),
            granted_scopes: Vec::new(),
            rule: None,
            token_jti: None,
            expires_at: None,
            revoked_at: None,
            remote_addr,
            user_agent,
            request_id,
            duration_us: 0,
            chain: String::new(),
            seq: 0,
            prev_hash: String::new(),
            hash: String::new(),
            subject_until_us: None,
            actor_jti: None,
            count: 1,
            truncated: false,
            token_type: Self::ACCESS_TOKEN.into(),
            txn: None,
            grant_type: Self::TOKEN_EXCHANGE.into(),
            grant_kind: None,
            provenance: None,
            authenticated: false,
        }
    }
}

impl ExchangeRecord {
    /// The `token_type` of a record of an access-token request, the one kind records before
    /// transaction tokens were of.
    pub const ACCESS_TOKEN: &str = "access_token";
    /// The `grant_type` of a record of a token exchange, the one grant records before grants
    /// across trust domains were of.
    pub const TOKEN_EXCHANGE: &str = "token-exchange";
}

/// A value taken from the request keeps at most this many characters in a record.
pub const MAX_VALUE_CHARS: usize = 256;
/// Request-derived text a record keeps in all (UTF-8 bytes as stored, lists as JSON arrays),
/// `reason` included.
pub const MAX_REQUEST_TEXT: usize = 4096;

impl ExchangeRecord {
    /// Cuts what the request put in the record to its bounds (SPEC §6), saying so in
    /// `truncated`: each value to `MAX_VALUE_CHARS`, then the whole to `MAX_REQUEST_TEXT`,
    /// the reason kept first and the lists' last values dropped first.
    pub fn bound(&mut self) {
        let mut cut = false;
        for list in [
            &mut self.requested_audiences,
            &mut self.requested_resources,
            &mut self.requested_scopes,
        ] {
            for value in list.iter_mut() {
                cut |= cut_chars(value, MAX_VALUE_CHARS);
            }
        }
        for value in [&mut self.client_id, &mut self.user_agent]
            .into_iter()
            .flatten()
        {
            cut |= cut_chars(value, MAX_VALUE_CHARS);
        }
        cut |= cut_chars(&mut self.reason, 2 * MAX_VALUE_CHARS);
        let stored = |list: &[String]| serde_json::to_string(list).map_or(0, |s| s.len());
        let fixed = self.reason.len()
            + self.client_id.as_ref().map_or(0, String::len)
            + self.user_agent.as_ref().map_or(0, String::len)
            + self.request_id.len();
        let mut total = fixed
            + stored(&self.requested_audiences)
            + stored(&self.requested_resources)
            + stored(&self.requested_scopes);
        for list in [
            &mut self.requested_scopes,
            &mut self.requested_resources,
            &mut self.requested_audiences,
        ] {
            while total > MAX_REQUEST_TEXT && !list.is_empty() {
                let before = stored(list);
                list.pop();
                total -= before - stored(list);
                cut = true;
            }
        }
        self.truncated |= cut;
    }
}

impl ExchangeRecord {
    /// About how many bytes the record takes in memory, for reading records a few at a time
    /// when they are large.
    pub fn approx_bytes(&self) -> usize {
        let lists = [
            &self.requested_audiences,
            &self.requested_resources,
            &self.requested_scopes,
            &self.granted_audiences,
            &self.granted_scopes,
        ];
        let texts = [
            &self.error,
            &self.client_id,
            &self.subject_issuer,
            &self.subject,
            &self.subject_jti,
            &self.actor_issuer,
            &self.actor,
            &self.rule,
            &self.token_jti,
            &self.remote_addr,
            &self.user_agent,
        ];
        512 + self.reason.len()
            + lists
                .iter()
                .flat_map(|l| l.iter())
                .map(String::len)
                .sum::<usize>()
            + texts
                .iter()
                .filter_map(|t| t.as_ref())
                .map(String::len)
                .sum::<usize>()
    }
}

/// Cuts `value` to `max` characters; whether it was cut.
fn cut_chars(value: &mut String, max: usize) -> bool {
    match value.char_indices().nth(max) {
        Some((at, _)) => {
            value.truncate(at);
            true
        }
        None => false,
    }
}

fn micros_rfc3339<S: Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_micros(*us))
}

fn opt_secs_rfc3339<S: Serializer>(secs: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match secs {
        Some(secs) => s.serialize_str(&format_secs(*secs)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_request_values_within_bounds() {
        let mut r = ExchangeRecord::begin(0, "req".into(), None, Some("u".repeat(300)));
        r.requested_audiences = (0..16).map(|i| format!("{i}{}", "a".repeat(400))).collect();
        r.requested_scopes = (0..64).map(|i| format!("s{i}")).collect();
        r.reason = format!("does not grant audience \"{}\"", "\u{1}".repeat(2000));
        r.bound();
        assert!(r.truncated);
        assert!(
            r.requested_audiences
                .iter()
                .all(|a| a.chars().count() <= MAX_VALUE_CHARS)
        );
        assert_eq!(r.user_agent.as_deref().map(str::len), Some(MAX_VALUE_CHARS));
        let stored = |l: &[String]| serde_json::to_string(l).expect("json").len();
        let total = r.reason.len()
            + r.user_agent.as_ref().map_or(0, String::len)
            + r.request_id.len()
            + stored(&r.requested_audiences)
            + stored(&r.requested_resources)
            + stored(&r.requested_scopes);
        assert!(total <= MAX_REQUEST_TEXT, "{total}");
        assert!(
            !r.requested_audiences.is_empty(),
            "the first values are kept"
        );

        let mut small = ExchangeRecord::begin(0, "req".into(), None, None);
        small.requested_audiences = vec!["inventory-api".into()];
        small.reason = "granted".into();
        small.bound();
        assert!(!small.truncated);
        assert_eq!(small.requested_audiences, ["inventory-api"]);
    }
}
