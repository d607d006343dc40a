//! The trust rules (SPEC §4): which rule applies to an exchange, and what it grants. Pure
//! functions over plain data; `plan` is the whole decision and `invariants` its last check.

pub mod actor;
pub mod cases;
pub mod grant;
pub mod index;
pub mod invariants;
pub mod lifetime;
pub mod lint;
pub mod miss;
pub mod scopes;
pub mod txn;

use serde_json::Map;

use crate::config::{ActorMode, Limits, Mints, RuleConfig, ScopeMode, Wants};
use crate::error::OAuthError;
use crate::oauth::{Resource, Scope, Scopes, TxnParams};
use crate::tokens::VerifiedToken;
use crate::tokens::grant::AuthzGrant;
use crate::tokens::mint::Grant;
use crate::tokens::txn::TxnGrant;
pub use index::RuleSet;
pub use miss::Miss;

/// What the client asked for, as far as rules care.
#[derive(Debug, Clone, Default)]
pub struct Targets<'a> {
    pub audiences: &'a [String],
    pub resources: &'a [Resource],
}

/// An exchange as the rules see it: authenticated client, verified subject, parsed request.
pub struct Exchange<'a> {
    pub client_id: &'a str,
    pub subject: &'a VerifiedToken,
    /// The verified actor token, when the request has one.
    pub actor: Option<&'a VerifiedToken>,
    pub targets: Targets<'a>,
    pub requested_scopes: Option<&'a Scopes>,
    pub now: i64,
    /// The thumbprint of the key a valid DPoP proof showed, if any.
    pub proof_jkt: Option<&'a str>,
    /// The kind of token asked for: only rules that serve it apply.
    pub wants: Wants,
    /// The subject is a grant presented with the `jwt-bearer` grant (SPEC §9): the scope it
    /// carries bounds what is minted whatever the rule's `scope_mode`, and is what is asked for
    /// when the request names no scope.
    pub presented_grant: bool,
    /// A Txn-Token request's context and details.
    pub txn: Option<&'a TxnParams>,
}

/// What a rule grants, by the kind of token it mints.
#[derive(Debug, Clone, PartialEq)]
pub enum Granted {
    AccessToken(Grant),
    TxnToken(TxnGrant),
    /// A JWT authorization grant or an ID-JAG, for another trust domain.
    Grant(AuthzGrant),
}

impl Granted {
    pub fn subject(&self) -> &str {
        match self {
            Self::AccessToken(g) => &g.subject,
            Self::TxnToken(g) => &g.subject,
            Self::Grant(g) => &g.subject,
        }
    }

    pub fn audiences(&self) -> Vec<String> {
        match self {
            Self::AccessToken(g) => g.audiences.clone(),
            Self::TxnToken(g) => vec![g.audience.clone()],
            Self::Grant(g) => std::iter::once(g.audience.clone())
                .chain(g.resources.iter().cloned())
                .collect(),
        }
    }

    pub fn scopes(&self) -> &Scopes {
        match self {
            Self::AccessToken(g) => &g.scopes,
            Self::TxnToken(g) => &g.scopes,
            Self::Grant(g) => &g.scopes,
        }
    }

    pub fn issued_at(&self) -> i64 {
        match self {
            Self::AccessToken(g) => g.issued_at,
            Self::TxnToken(g) => g.issued_at,
            Self::Grant(g) => g.issued_at,
        }
    }

    pub fn expires_at(&self) -> i64 {
        match self {
            Self::AccessToken(g) => g.expires_at,
            Self::TxnToken(g) => g.expires_at,
            Self::Grant(g) => g.expires_at,
        }
    }

    /// The transaction a Txn-Token belongs to.
    pub fn txn(&self) -> Option<&str> {
        match self {
            Self::AccessToken(_) | Self::Grant(_) => None,
            Self::TxnToken(g) => Some(&g.txn),
        }
    }
}

/// The whole decision: the applying rule and the grant it makes, checked against the
/// never-widen invariants. Mints nothing and writes nothing.
pub fn plan<'r>(
    rules: &'r RuleSet,
    limits: Limits<'_>,
    ex: &Exchange<'_>,
) -> Result<(&'r RuleConfig, Granted), OAuthError> {
    let rule = choose(rules, ex)?;
    grant_for(rule, limits, ex).map(|grant| (rule, grant))
}

/// The grant of the applying rule, by the kind of token it mints, checked against the
/// never-widen invariants.
pub fn grant_for(
    rule: &RuleConfig,
    limits: Limits<'_>,
    ex: &Exchange<'_>,
) -> Result<Granted, OAuthError> {
    match (rule.mints, limits.txn) {
        (Mints::AccessToken, _) => access_token(rule, limits, ex).map(Granted::AccessToken),
        (Mints::TxnToken, Some(txn)) => {
            let grant = txn::grant(rule, txn, ex)?;
            invariants::enforce_txn(rule, txn, &grant, ex.subject, ex.proof_jkt)?;
            Ok(Granted::TxnToken(grant))
        }
        (Mints::TxnToken, None) => {
            tracing::error!(rule = %rule.name, "a Txn-Token rule without [transaction_tokens]");
            Err(OAuthError::server_error())
        }
        (Mints::AuthorizationGrant | Mints::IdJag, _) => {
            let granted = grant::grant(rule, limits, ex)?;
            invariants::enforce_grant(rule, &granted, ex.subject, ex.proof_jkt)?;
            Ok(Granted::Grant(granted))
        }
    }
}

fn access_token(
    rule: &RuleConfig,
    limits: Limits<'_>,
    ex: &Exchange<'_>,
) -> Result<Grant, OAuthError> {
    let signing = limits.signing;
    let mode = scope_mode(rule, ex);
    let scopes = match (
        ex.requested_scopes,
        ex.presented_grant && !ex.subject.scopes.is_empty(),
    ) {
        // A presented grant's scope is what is asked for when the request names none: the
        // part of it the rule allows.
        (None, true) => scopes::within_rule(rule, &ex.subject.scopes)?,
        (requested, _) => scopes::grant(rule, mode, requested, &ex.subject.scopes)?,
    };
    let limits = lifetime::Limits {
        rule_ttl: rule.ttl,
        default_ttl: signing.default_ttl,
        max_ttl: signing.max_ttl,
    };
    let new_actor = new_actor(rule, ex)?;
    let expires_at =
        lifetime::expires_at(&limits, ex.now, ex.subject.exp, ex.actor.map(|a| a.exp))?;
    let act = actor::act_claim(new_actor, ex.subject.claims.get("act"))?;
    let copied: Map<String, serde_json::Value> = rule
        .copy_claims
        .iter()
        .filter_map(|name| {
            ex.subject
                .claims
                .get(name)
                .map(|v| (name.clone(), v.clone()))
        })
        .collect();
    let grant = Grant {
        subject: ex.subject.sub.clone(),
        audiences: minted_audiences(rule, ex),
        client_id: ex.client_id.to_string(),
        scopes,
        issued_at: ex.now,
        expires_at,
        act,
        copied,
        cnf_jkt: ex.proof_jkt.map(str::to_string),
    };
    invariants::enforce(rule, mode, &grant, ex.subject, ex.actor, ex.proof_jkt)?;
    Ok(grant)
}

/// An access token's audiences: the requested targets, audiences first; for a presented grant
/// that names none (neither does its request), the targets of the rule that applies.
fn minted_audiences(rule: &RuleConfig, ex: &Exchange<'_>) -> Vec<String> {
    let (audiences, resources) = match (ex.targets.audiences, ex.targets.resources) {
        ([], []) if ex.presented_grant => (&rule.audiences[..], &rule.resources[..]),
        asked => asked,
    };
    audiences
        .iter()
        .cloned()
        .chain(resources.iter().map(Resource::to_string))
        .collect()
}

/// How an access token's scope is bounded: as the rule says, except that a presented grant's
/// scope always bounds it (SPEC §9: the grant's scope is the most that can be granted).
fn scope_mode(rule: &RuleConfig, ex: &Exchange<'_>) -> ScopeMode {
    if ex.presented_grant && grant_carries_scope(ex.subject) {
        ScopeMode::Intersect
    } else {
        rule.scope_mode
    }
}

/// Whether a token states its scope at all (`scope` or `scp`).
fn grant_carries_scope(token: &VerifiedToken) -> bool {
    token.claims.contains_key("scope") || token.claims.contains_key("scp")
}

/// Who acts, per the rule's `actor` mode; an actor token is required by `token` and refused
/// by the other modes rather than ignored.
fn new_actor<'a>(rule: &RuleConfig, ex: &Exchange<'a>) -> Result<actor::NewActor<'a>, OAuthError> {
    match (rule.actor, ex.actor) {
        (ActorMode::None, None) => Ok(actor::NewActor::None),
        (ActorMode::Client, None) => Ok(actor::NewActor::Client(ex.client_id)),
        (ActorMode::Token, Some(a)) => {
            actor::check_allowed(rule, ex.subject, a)?;
            Ok(actor::NewActor::Token {
                sub: &a.sub,
                iss: &a.iss,
            })
        }
        (ActorMode::Token, None) => Err(OAuthError::invalid_request(format!(
            "rule \"{}\" delegates: send the acting party's token as actor_token",
            rule.name
        ))),
        (_, Some(_)) => Err(OAuthError::invalid_request(format!(
            "rule \"{}\" does not take an actor_token",
            rule.name
        ))),
    }
}

/// The first rule, in file order, that applies. Requested scopes take no part in the choice.
/// When rules name the client but none applies, the error says what the closest one lacked.
pub fn choose<'r>(rules: &'r RuleSet, ex: &Exchange<'_>) -> Result<&'r RuleConfig, OAuthError> {
    if !rules.names_client_for(ex.client_id, ex.wants) {
        return Err(OAuthError::unauthorized_client(match ex.wants {
            Wants::AccessToken | Wants::Jwt => format!(
                "client \"{}\" is not allowed to exchange tokens",
                ex.client_id
            ),
            Wants::TxnToken => format!(
                "client \"{}\" is not allowed to obtain Txn-Tokens: no rule with mints = \
                 \"txn_token\" names it",
                ex.client_id
            ),
            Wants::IdJag => format!(
                "client \"{}\" is not allowed to obtain ID-JAGs: no rule with mints = \
                 \"id_jag\" names it",
                ex.client_id
            ),
        }));
    }
    for rule in rules.candidates(ex.client_id, &ex.subject.issuer_id, &ex.subject.sub) {
        if rule.mints.serves(ex.wants) && misses(rule, ex)?.is_empty() {
            return Ok(rule);
        }
    }
    Err(closest_miss(rules, ex)?)
}

/// Rules a denial weighs to find the closest: a denied request costs no more than this many
/// rules' misses, however many rules name the client.
pub const CLOSEST_WEIGHED: usize = 256;

/// The denial when no rule applies, saying what the closest rule naming the client lacked: the
/// first with the fewest misses among the first `CLOSEST_WEIGHED` rules naming it. One miss is
/// the fewest a rule that did not apply can have, so the first such rule ends the search.
fn closest_miss(rules: &RuleSet, ex: &Exchange<'_>) -> Result<OAuthError, OAuthError> {
    let mut closest: Option<(&RuleConfig, Vec<Miss<'_>>)> = None;
    let of_kind = rules
        .naming_client(ex.client_id)
        .filter(|r| r.mints.serves(ex.wants));
    for rule in of_kind.take(CLOSEST_WEIGHED) {
        let misses = misses(rule, ex)?;
        if closest.as_ref().is_none_or(|(_, m)| misses.len() < m.len()) {
            let nearest = misses.len() <= 1;
            closest = Some((rule, misses));
            if nearest {
                break;
            }
        }
    }
    let (name, misses) = closest.map_or((String::new(), Vec::new()), |(r, m)| (r.name.clone(), m));
    Ok(OAuthError::invalid_target(format!(
        "no rule grants this exchange; the closest, rule \"{name}\": {}",
        miss::joined(&misses)
    )))
}

/// Each criterion of §4 the rule does not meet. The condition is evaluated only when
/// everything else holds; an evaluation error denies the exchange outright rather than letting
/// a later rule apply.
pub fn misses<'a>(rule: &'a RuleConfig, ex: &Exchange<'a>) -> Result<Vec<Miss<'a>>, OAuthError> {
    let (subject, targets) = (ex.subject, &ex.targets);
    let mut out = Vec::new();
    if !rule.issuers.contains(&subject.issuer_id) {
        out.push(Miss::Issuer {
            presented: &subject.issuer_id,
            accepted: &rule.issuers,
        });
    }
    let spiffe_path = subject.spiffe_id().map(|(_, path)| path);
    if !crate::subjects::any_matches(&rule.subjects, &subject.sub, spiffe_path) {
        out.push(Miss::Subject {
            sub: &subject.sub,
            patterns: &rule.subjects,
        });
    }
    // A Txn-Token's one target, the trust domain, is checked with the request.
    let no_targets: &[String] = &[];
    let asked = match rule.mints {
        Mints::TxnToken => (no_targets, &[][..]),
        _ => (targets.audiences, targets.resources),
    };
    let audiences: Vec<&str> = asked
        .0
        .iter()
        .filter(|a| !rule.audiences.contains(a))
        .map(String::as_str)
        .collect();
    if !audiences.is_empty() {
        out.push(Miss::Audiences {
            asked: audiences,
            granted: &rule.audiences,
        });
    }
    let resources: Vec<&str> = asked
        .1
        .iter()
        .filter(|r| !rule.resources.contains(r))
        .map(Resource::as_str)
        .collect();
    if !resources.is_empty() {
        out.push(Miss::Resources {
            asked: resources,
            granted: &rule.resources,
        });
    }
    let missing: Vec<&str> = rule
        .require_scopes
        .iter()
        .filter(|s| !subject.scopes.contains(s.as_str()))
        .map(Scope::as_str)
        .collect();
    if !missing.is_empty() {
        out.push(Miss::RequiredScopes {
            missing,
            carried: &subject.scopes,
        });
    }
    if out.is_empty() && !condition_holds(rule, ex)? {
        out.push(Miss::Condition);
    }
    Ok(out)
}

/// Whether the rule's condition (if any) holds for the exchange.
fn condition_holds(rule: &RuleConfig, ex: &Exchange<'_>) -> Result<bool, OAuthError> {
    let Some(condition) = &rule.condition else {
        return Ok(true);
    };
    match condition.evaluate(&condition_input(ex)) {
        Ok(holds) => Ok(holds),
        Err(crate::condition::Failure::OverBudget) => Err(over_budget(&rule.name)),
        Err(crate::condition::Failure::Error(e)) => Err(OAuthError::invalid_target(format!(
            "rule \"{}\": the rule's condition could not be evaluated for this exchange",
            rule.name
        ))
        .with_detail(format!(
            "rule \"{}\": the rule's condition could not be evaluated for this exchange: {e}",
            rule.name
        ))),
    }
}

/// What CEL expressions (conditions, a Txn-Token rule's `tctx` and `rctx`) see of an exchange.
pub(crate) fn condition_input<'a>(ex: &Exchange<'a>) -> crate::condition::Input<'a> {
    crate::condition::Input {
        subject: &ex.subject.claims,
        spiffe: ex.subject.spiffe_id(),
        actor: ex.actor.map(|a| &a.claims),
        client: ex.client_id,
        audiences: ex.targets.audiences,
        resources: ex.targets.resources,
        scopes: ex.requested_scopes.unwrap_or(Scopes::none()),
        context: ex.txn.and_then(|t| t.context.as_ref()),
        details: ex.txn.and_then(|t| t.details.as_ref()),
    }
}

/// The denial of a request whose conditions would run past their budget (`rule`: the one
/// whose condition did, when known).
pub fn over_budget(rule: &str) -> OAuthError {
    let which = if rule.is_empty() {
        String::new()
    } else {
        format!("rule \"{rule}\": ")
    };
    OAuthError::invalid_target(format!(
        "{which}condition exceeded its budget for this exchange"
    ))
}

/// Values quoted for a description, each cut to 64 characters and at most four of them: a
/// description names what was wrong, it does not echo whatever a request sent.
pub fn quoted(items: &[&str]) -> String {
    let mut out: Vec<String> = items
        .iter()
        .take(4)
        .map(|i| format!("\"{}\"", crate::text::shown(i, 64).replace('"', "\\\"")))
        .collect();
    if items.len() > 4 {
        out.push(format!("and {} more", items.len() - 4));
    }
    out.join(", ")
}

#[cfg(test)]
pub(crate) mod tests;
