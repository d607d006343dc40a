//! What a Txn-Token rule grants (SPEC §8): the scope asked for, within the rule's and the
//! subject's (never an unknown subject scope); `tctx` and `rctx` as the rule builds them; the
//! transaction and the chain of requesting workloads, kept from the Txn-Token a replacement
//! replaces; a short lifetime of its own.

use serde_json::{Map, Value};

use super::{Exchange, lifetime};
use crate::condition::{Condition, Failure};
use crate::config::{RuleConfig, TxnConfig};
use crate::error::OAuthError;
use crate::oauth::{Scopes, TokenType};
use crate::tokens::txn::TxnGrant;

pub fn grant(
    rule: &RuleConfig,
    txn: &TxnConfig,
    ex: &Exchange<'_>,
) -> Result<TxnGrant, OAuthError> {
    let scopes = scopes(rule, ex.requested_scopes, &ex.subject.scopes)?;
    let replaced = Replaced::of(ex)?;
    let (built_tctx, built_rctx) = built(rule, ex)?;
    let tctx = merged("tctx", built_tctx, replaced.as_ref().map(|r| &r.tctx))?;
    let rctx = merged("rctx", built_rctx, replaced.as_ref().map(|r| &r.rctx))?;
    let limits = lifetime::Limits {
        rule_ttl: rule.ttl,
        default_ttl: txn.default_ttl,
        max_ttl: txn.max_ttl,
    };
    // A replacement never outlives the Txn-Token it replaces: revoking the transaction's first
    // token reaches every live one through the lineage.
    let expires_at = lifetime::expires_at(&limits, ex.now, ex.subject.exp, None)?;
    let (txn_id, mut requesters) = match replaced {
        Some(r) => (r.txn, r.requesters),
        None => (new_txn(ex.now)?, Vec::new()),
    };
    requesters.push(ex.client_id.to_string());
    Ok(TxnGrant {
        subject: ex.subject.sub.clone(),
        audience: txn.trust_domain.clone(),
        txn: txn_id,
        scopes,
        requesters,
        tctx,
        rctx,
        issued_at: ex.now,
        expires_at,
        replaces: is_replacement(ex),
    })
}

/// Whether the exchange replaces a Txn-Token.
pub fn is_replacement(ex: &Exchange<'_>) -> bool {
    replaces(ex.subject)
}

/// Whether a subject is a Txn-Token, whose exchange replaces it.
pub fn replaces(subject: &crate::tokens::VerifiedToken) -> bool {
    subject.issuer_id == TokenType::TxnToken.name()
}

fn new_txn(now: i64) -> Result<String, OAuthError> {
    crate::ids::txn(crate::clock::UnixTime::from_secs(now)).map_err(|e| {
        tracing::error!(error = %e, "no transaction id");
        OAuthError::server_error()
    })
}

/// The scope asked for, each scope-token in the rule's scopes and carried by the subject. A
/// subject that carries no scope at all is refused: its scope is unknown, and unknown is never
/// unconstrained (draft §"Unknown subject_token scope").
pub fn scopes(
    rule: &RuleConfig,
    requested: Option<&Scopes>,
    subject: &Scopes,
) -> Result<Scopes, OAuthError> {
    let Some(requested) = requested.filter(|r| !r.is_empty()) else {
        return Err(OAuthError::invalid_request(
            "a Txn-Token request names its purpose in the scope parameter",
        ));
    };
    if subject.is_empty() {
        return Err(OAuthError::invalid_scope(
            "the subject token carries no scope (no scope or scp claim), so a Txn-Token's \
             scope cannot be kept within it; an unknown scope is never taken as unconstrained",
        ));
    }
    super::scopes::each_allowed(rule, requested, Some(subject))?;
    Ok(requested.clone())
}

/// What a replacement keeps of the Txn-Token it replaces.
struct Replaced {
    txn: String,
    requesters: Vec<String>,
    tctx: Map<String, Value>,
    rctx: Map<String, Value>,
}

impl Replaced {
    fn of(ex: &Exchange<'_>) -> Result<Option<Self>, OAuthError> {
        if !is_replacement(ex) {
            return Ok(None);
        }
        let claims = &ex.subject.claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
        let object = |name: &str| match claims.get(name) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        Ok(Some(Self {
            txn: text("txn").to_string(),
            requesters: requesters(text("req_wl")),
            tctx: object("tctx"),
            rctx: object("rctx"),
        }))
    }
}

/// The workloads of a `req_wl`, the first first.
pub fn requesters(req_wl: &str) -> Vec<String> {
    req_wl
        .split(crate::config::REQUESTERS_SEPARATOR)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A Txn-Token's `tctx` and `rctx`.
type Contexts = (Map<String, Value>, Map<String, Value>);

/// The claims the rule's `tctx` and `rctx` build for this exchange, its expressions evaluated
/// over one input; an entry whose expression comes to null is left out.
fn built(rule: &RuleConfig, ex: &Exchange<'_>) -> Result<Contexts, OAuthError> {
    if rule.tctx.is_empty() && rule.rctx.is_empty() {
        return Ok((Map::new(), Map::new()));
    }
    let entries: Vec<(&str, &String, &Condition)> = (rule.tctx.iter().map(|(n, e)| ("tctx", n, e)))
        .chain(rule.rctx.iter().map(|(n, e)| ("rctx", n, e)))
        .collect();
    let expressions: Vec<&Condition> = entries.iter().map(|(_, _, e)| *e).collect();
    let values =
        Condition::values(&expressions, &super::condition_input(ex)).map_err(|(i, failure)| {
            let (claim, name) = entries
                .get(i)
                .map_or(("tctx", ""), |(c, n, _)| (*c, n.as_str()));
            let what = format!(
                "rule \"{}\" could not build {claim}.{name} from this request",
                rule.name
            );
            let detail = match failure {
                Failure::OverBudget => "over its budget".to_string(),
                Failure::Error(e) => e,
            };
            OAuthError::invalid_request(format!(
                "{what}: check request_context and request_details"
            ))
            .with_detail(format!("{what}: {detail}"))
        })?;
    let (mut tctx, mut rctx) = (Map::new(), Map::new());
    for ((claim, name, _), value) in entries.into_iter().zip(values) {
        if value.is_null() {
            continue;
        }
        let into = if claim == "tctx" {
            &mut tctx
        } else {
            &mut rctx
        };
        into.insert(name.clone(), value);
    }
    Ok((tctx, rctx))
}

/// A replacement's context: what the replaced Txn-Token asserted stays as it was (draft
/// §"Txn-Token as a subject_token": values are never modified to widen what is permitted, and
/// this server cannot tell a narrowing change from a widening one). `rctx`, the request's
/// environment, may gain values; `tctx`, the transaction's authorization details, may not (SPEC
/// §8: it may only narrow, and a value added, such as an approval, can widen).
fn merged(
    claim: &str,
    built: Map<String, Value>,
    kept: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, OAuthError> {
    let Some(kept) = kept else {
        return Ok(built);
    };
    let mut out = kept.clone();
    for (name, value) in built {
        match kept.get(&name) {
            Some(old) if *old != value => {
                return Err(OAuthError::invalid_request(format!(
                    "{claim}.{} would change in this replacement; a replacement Txn-Token keeps \
                     every value the replaced one asserts, and may only add new ones",
                    crate::text::shown(&name, 64)
                )));
            }
            Some(_) => {}
            None if claim == "tctx" => {
                return Err(OAuthError::invalid_request(format!(
                    "tctx.{} cannot be added in this replacement; a replacement Txn-Token keeps \
                     the replaced one's tctx as it is",
                    crate::text::shown(&name, 64)
                )));
            }
            None => {
                out.insert(name, value);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;
    use crate::rules::tests::rule;

    fn s(text: &str) -> Scopes {
        Scopes::parse(text).expect("scopes")
    }

    #[test]
    fn a_txn_scope_is_within_the_rules_and_the_subjects_and_never_unknown() {
        let r = rule("txn", &["trade.stocks", "trade.read"], &[]);
        assert_eq!(
            scopes(&r, Some(&s("trade.read")), &s("trade.read trade.stocks")).expect("ok"),
            s("trade.read")
        );
        let unknown = scopes(&r, Some(&s("trade.read")), &Scopes::default()).expect_err("unknown");
        assert_eq!(unknown.code, ErrorCode::InvalidScope);
        assert!(unknown.description.contains("never taken as unconstrained"));
        let wider = scopes(&r, Some(&s("trade.stocks")), &s("trade.read")).expect_err("wider");
        assert_eq!(wider.code, ErrorCode::InvalidScope);
        assert!(wider.description.contains("\"trade.stocks\""));
        let outside = scopes(&r, Some(&s("admin")), &s("admin")).expect_err("outside the rule");
        assert!(outside.description.contains("rule \"txn\""));
        let none = scopes(&r, None, &s("trade.read")).expect_err("no scope");
        assert_eq!(none.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn a_replacement_keeps_every_asserted_value_and_may_add_only_to_rctx() {
        let kept = json!({"action": "BUY", "amount": 100});
        let kept = kept.as_object().expect("object");
        let mut built = Map::new();
        built.insert("action".into(), json!("BUY"));
        built.insert("desk".into(), json!("eq"));
        let err = merged("tctx", built.clone(), Some(kept)).expect_err("no tctx additions");
        assert!(
            err.description.contains("tctx.desk cannot be added"),
            "{}",
            err.description
        );
        let out = merged("rctx", built, Some(kept)).expect("rctx additions");
        assert_eq!(
            Value::Object(out),
            json!({"action": "BUY", "amount": 100, "desk": "eq"})
        );
        let mut changed = Map::new();
        changed.insert("amount".into(), json!(1_000_000));
        let err = merged("tctx", changed, Some(kept)).expect_err("a changed value");
        assert!(
            err.description.contains("tctx.amount would change"),
            "{}",
            err.description
        );
        assert_eq!(
            merged("tctx", Map::new(), Some(kept)).expect("kept"),
            kept.clone(),
            "nothing the replaced token asserted is dropped"
        );
    }

    #[test]
    fn the_chain_of_requesting_workloads_reads_back_in_order() {
        assert_eq!(requesters("gateway,orders"), ["gateway", "orders"]);
        assert_eq!(requesters("gateway"), ["gateway"]);
    }
}
