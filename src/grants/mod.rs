//! The grant types of `POST /token`, one file each, and what every grant's decision shares: the
//! `Context` it is decided in, what it `Learned` on the way (the audit record is built from
//! that, granted or denied) and the `Decision` it comes to. The HTTP endpoint and
//! `tessera explain` call the same `decide`; it ends in the rules' choice and grant
//! (`rules::choose`, `rules::grant_for`), which `tessera test` runs on its cases through
//! `rules::plan`.

pub mod jwt_bearer;
pub mod token_exchange;

use std::sync::Arc;

use crate::condition::CONDITION_BUDGET;
use crate::config::Wants;
use crate::error::{ErrorCode, OAuthError};
use crate::oauth::Params;
use crate::oauth::{TokenType, TxnParams};
use crate::rules::{self, Exchange, Granted};
use crate::state::Policy;
use crate::tokens::VerifiedToken;

/// The grant types `POST /token` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantType {
    TokenExchange,
    /// RFC 7523 §2.1: a grant for this server from another trust domain (SPEC §9).
    JwtBearer,
}

impl GrantType {
    pub const ALL: &[GrantType] = &[GrantType::TokenExchange, GrantType::JwtBearer];

    pub fn uri(self) -> &'static str {
        match self {
            GrantType::TokenExchange => token_exchange::GRANT_TYPE,
            GrantType::JwtBearer => jwt_bearer::GRANT_TYPE,
        }
    }

    /// The URI's last part, as records and the command line name the grant type.
    pub fn name(self) -> &'static str {
        let uri = self.uri();
        &uri[uri.rfind(':').map_or(0, |i| i + 1)..]
    }

    /// The request's `grant_type`: `unsupported_grant_type` when Tessera serves no such grant.
    pub fn of(params: &Params) -> Result<Self, OAuthError> {
        let named = params.required("grant_type")?;
        Self::ALL
            .iter()
            .copied()
            .find(|g| g.uri() == named)
            .ok_or_else(|| {
                let served: Vec<String> = Self::ALL
                    .iter()
                    .map(|g| format!("grant_type={}", g.uri()))
                    .collect();
                OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!("only {} is supported", served.join(" or ")),
                )
            })
    }
}

/// A request of one of the grant types, parsed.
pub enum Request {
    TokenExchange(token_exchange::Request),
    JwtBearer(jwt_bearer::Request),
}

impl Request {
    /// The request of `grant`, read from its parameters: a malformed one is refused before
    /// anything is verified.
    pub fn parse(grant: GrantType, params: &Params) -> Result<Self, OAuthError> {
        Ok(match grant {
            GrantType::TokenExchange => {
                Self::TokenExchange(token_exchange::Request::parse(params)?)
            }
            GrantType::JwtBearer => Self::JwtBearer(jwt_bearer::Request::parse(params)?),
        })
    }

    /// The grant type's decision on the request from the authenticated `client_id`, whose DPoP
    /// proof (when it sent one, checked) showed the key `proof_jkt`.
    pub async fn decide(
        &self,
        ctx: &Context<'_>,
        client_id: &str,
        proof_jkt: Option<&str>,
        learned: &mut Learned,
    ) -> Result<Decision, OAuthError> {
        match self {
            Self::TokenExchange(r) => {
                token_exchange::decide(ctx, client_id, r, proof_jkt, learned).await
            }
            Self::JwtBearer(r) => jwt_bearer::decide(ctx, client_id, r, proof_jkt, learned).await,
        }
    }
}

/// What an exchange is decided against.
pub struct Context<'a> {
    pub policy: &'a Arc<Policy>,
    /// The time it is judged at, in seconds.
    pub now: i64,
    pub conditions: Conditions<'a>,
}

/// Where rule conditions are evaluated.
pub enum Conditions<'a> {
    /// On the caller's thread (the command line).
    Inline,
    /// On the blocking pool, at most as many at once as `slots` holds, within
    /// `CONDITION_BUDGET`: a condition never holds an HTTP worker, and one that runs long denies
    /// its own request only.
    Pooled(&'a Arc<tokio::sync::Semaphore>),
}

/// What a decision found out before it granted or denied: the record keeps it either way.
#[derive(Default)]
pub struct Learned {
    /// The subject token's issuer: its id when trusted, the `iss` presented (printable,
    /// bounded) when not.
    pub subject_issuer: Option<String>,
    pub subject: Option<VerifiedToken>,
    pub actor: Option<VerifiedToken>,
    /// The rule that applies, once one does.
    pub rule: Option<String>,
    /// The transaction of the Txn-Token minted, or of the one presented for replacement.
    pub txn: Option<String>,
    /// The kind of grant for another trust domain presented (`jwt-bearer`), once read.
    pub grant_kind: Option<crate::config::TokenKind>,
}

/// A granted exchange: what to mint.
pub struct Decision {
    pub grant: Granted,
    pub issued_token_type: TokenType,
    /// What the request spends once it is granted: a presented grant's `jti`.
    pub single_use: Option<SingleUse>,
}

/// An identifier that may be used once, for as long as what carries it would be accepted.
pub struct SingleUse {
    /// Its kind in the replay memory.
    pub kind: &'static str,
    pub key: String,
    /// Unix seconds: when it may be forgotten.
    pub until: i64,
}

/// The applying rule (into `rule` once chosen, for the record) and its grant, for `ex`: the
/// rules' `plan`, with the rule's expressions (conditions, and the claims a Txn-Token rule
/// builds) evaluated where `conditions` says.
async fn plan(
    policy: &Arc<Policy>,
    conditions: &Conditions<'_>,
    ex: &Exchange<'_>,
    rule: &mut Option<String>,
) -> Result<Granted, OAuthError> {
    let (chosen, granted) = match conditions {
        Conditions::Pooled(slots) if policy.rules.has_conditions(ex.client_id) => {
            plan_pooled(policy, slots, ex).await?
        }
        _ => {
            let chosen = rules::choose(&policy.rules, ex)?;
            (
                chosen.name.clone(),
                rules::grant_for(chosen, policy.limits(), ex),
            )
        }
    };
    tracing::Span::current().record("rule", chosen.as_str());
    *rule = Some(chosen);
    granted
}

/// The applying rule's name and its grant, on the blocking pool under the conditions' budget.
async fn plan_pooled(
    policy: &Arc<Policy>,
    slots: &Arc<tokio::sync::Semaphore>,
    ex: &Exchange<'_>,
) -> Result<(String, Result<Granted, OAuthError>), OAuthError> {
    let deadline = tokio::time::Instant::now() + CONDITION_BUDGET;
    let Ok(Ok(slot)) = tokio::time::timeout_at(deadline, slots.clone().acquire_owned()).await
    else {
        return Err(OAuthError::temporarily_unavailable(
            "the rules' conditions are busy; retry later",
        ));
    };
    let owned = OwnedExchange::of(ex);
    let policy = policy.clone();
    let job = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let ex = owned.borrow();
        rules::choose(&policy.rules, &ex).map(|rule| {
            (
                rule.name.clone(),
                rules::grant_for(rule, policy.limits(), &ex),
            )
        })
    });
    match tokio::time::timeout_at(deadline, job).await {
        Ok(Ok(chosen)) => chosen,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "rule evaluation failed");
            Err(OAuthError::server_error())
        }
        Err(_) => Err(rules::over_budget("")),
    }
}

/// An `Exchange` that owns its parts, to cross to another thread.
struct OwnedExchange {
    client_id: String,
    subject: VerifiedToken,
    actor: Option<VerifiedToken>,
    audiences: Vec<String>,
    resources: Vec<crate::oauth::Resource>,
    requested_scopes: Option<crate::oauth::Scopes>,
    now: i64,
    proof_jkt: Option<String>,
    wants: Wants,
    presented_grant: bool,
    txn: Option<TxnParams>,
}

impl OwnedExchange {
    fn of(ex: &Exchange<'_>) -> Self {
        Self {
            client_id: ex.client_id.to_string(),
            subject: ex.subject.clone(),
            actor: ex.actor.cloned(),
            audiences: ex.targets.audiences.to_vec(),
            resources: ex.targets.resources.to_vec(),
            requested_scopes: ex.requested_scopes.cloned(),
            now: ex.now,
            proof_jkt: ex.proof_jkt.map(str::to_string),
            wants: ex.wants,
            presented_grant: ex.presented_grant,
            txn: ex.txn.cloned(),
        }
    }

    fn borrow(&self) -> Exchange<'_> {
        Exchange {
            client_id: &self.client_id,
            subject: &self.subject,
            actor: self.actor.as_ref(),
            targets: rules::Targets {
                audiences: &self.audiences,
                resources: &self.resources,
            },
            requested_scopes: self.requested_scopes.as_ref(),
            now: self.now,
            proof_jkt: self.proof_jkt.as_deref(),
            wants: self.wants,
            presented_grant: self.presented_grant,
            txn: self.txn.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_exchange_and_jwt_bearer_are_the_supported_grants() {
        let p = Params::parse(b"grant_type=client_credentials").expect("parse");
        let err = GrantType::of(&p).expect_err("unsupported");
        assert_eq!(err.code, ErrorCode::UnsupportedGrantType);
        assert_eq!(
            err.description,
            "only grant_type=urn:ietf:params:oauth:grant-type:token-exchange or \
             grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer is supported"
        );
        let p = Params::parse(b"x=1").expect("parse");
        assert_eq!(
            GrantType::of(&p).expect_err("missing").code,
            ErrorCode::InvalidRequest
        );
        for (grant, name) in [
            (GrantType::TokenExchange, "token-exchange"),
            (GrantType::JwtBearer, "jwt-bearer"),
        ] {
            let p = Params::parse(format!("grant_type={}", grant.uri()).as_bytes()).expect("parse");
            assert_eq!(GrantType::of(&p).expect("served"), grant);
            assert_eq!(grant.name(), name);
        }
    }
}
