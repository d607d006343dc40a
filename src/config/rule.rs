//! A `[[rules]]` entry checked against the issuers, clients and signing limits it names.

use std::time::Duration;

use super::check::Ctx;
use super::raw::RawRule;
use super::*;
use crate::oauth::scope::NotAScope;

/// Subject patterns one rule may name: each is indexed once per client and issuer it names.
const MAX_SUBJECTS: usize = 256;

impl Ctx<'_> {
    pub(super) fn rule(
        &self,
        i: usize,
        mut raw: RawRule,
        issuers: &[IssuerConfig],
        clients: &[ClientConfig],
        limits: Limits<'_>,
    ) -> Result<RuleConfig, ConfigError> {
        let at = |k: &str| format!("rules[{i}].{k}");
        let mints = raw.mints.unwrap_or_default();
        if raw.name.trim().is_empty() {
            return Err(self.err(at("name"), "must not be empty"));
        }
        let condition = raw
            .condition
            .as_deref()
            .map(crate::condition::Condition::compile)
            .transpose()
            .map_err(|e| self.err(at("condition"), e))?;
        self.references(&at, &raw, issuers, clients, mints)?;
        let (tctx, rctx) = match mints {
            Mints::TxnToken => self.txn_rule(&at, &mut raw, limits.txn)?,
            _ => {
                self.access_token_rule(&at, &raw, limits.txn)?;
                (Vec::new(), Vec::new())
            }
        };
        self.grant_rule(&at, &raw, mints, issuers)?;
        let resources = self.targets(&at, &raw, mints)?;
        if raw.subjects.len() > MAX_SUBJECTS {
            return Err(self.err(
                at("subjects"),
                format!("names at most {MAX_SUBJECTS} patterns; split the rule"),
            ));
        }
        let subjects = raw
            .subjects
            .iter()
            .map(|s| SubjectPattern::parse(s).map_err(|e| self.err(at("subjects"), e)))
            .collect::<Result<_, _>>()?;
        let [scopes, default_scopes, require_scopes] = self.scopes(&at, &raw)?;
        // An ID token carries no scopes of another domain's resources: an ID-JAG rule's
        // scopes are its own to grant unless it says otherwise.
        let scope_mode = raw.scope_mode.unwrap_or(if mints == Mints::IdJag {
            ScopeMode::Grant
        } else {
            ScopeMode::default()
        });
        let actor = raw.actor.unwrap_or_default();
        let actors = self.actors(&at, &mut raw, actor, issuers)?;
        let ttl = self.ttl(&at, &raw, limits, mints)?;
        self.copy_claims(&at, &raw)?;
        Ok(RuleConfig {
            name: raw.name,
            clients: raw.clients,
            issuers: raw.issuers,
            subjects,
            audiences: raw.audiences,
            resources,
            scopes,
            default_scopes,
            scope_mode,
            require_scopes,
            condition,
            actor,
            actors,
            ttl,
            copy_claims: raw.copy_claims,
            mints,
            tctx,
            rctx,
            subject_claim: raw.subject_claim,
            audience_client_id: raw.audience_client_id,
        })
    }

    /// The clients and issuers it names are configured ones.
    fn references(
        &self,
        at: &dyn Fn(&str) -> String,
        raw: &RawRule,
        issuers: &[IssuerConfig],
        clients: &[ClientConfig],
        mints: Mints,
    ) -> Result<(), ConfigError> {
        if raw.clients.is_empty() {
            return Err(self.err(at("clients"), "must name at least one client"));
        }
        for c in &raw.clients {
            if !clients.iter().any(|k| &k.id == c) {
                return Err(self.err(at("clients"), format!("\"{c}\" is not a configured client")));
            }
        }
        if raw.issuers.is_empty() {
            return Err(self.err(at("issuers"), "must name at least one issuer"));
        }
        for s in &raw.issuers {
            if mints == Mints::TxnToken && is_subject_source(s) {
                continue;
            }
            if is_subject_source(s) {
                return Err(self.err(
                    at("issuers"),
                    format!("\"{s}\" subjects are taken by mints = \"txn_token\" rules only"),
                ));
            }
            if !issuers.iter().any(|k| &k.id == s) {
                return Err(self.err(
                    at("issuers"),
                    format!("\"{s}\" is not a configured issuer id"),
                ));
            }
        }
        Ok(())
    }

    /// It grants a target, and every resource is an RFC 8707 indicator.
    fn targets(
        &self,
        at: &dyn Fn(&str) -> String,
        raw: &RawRule,
        mints: Mints,
    ) -> Result<Vec<Resource>, ConfigError> {
        if mints != Mints::TxnToken && raw.audiences.is_empty() && raw.resources.is_empty() {
            return Err(self.err(
                at("audiences"),
                "a rule must grant at least one audience or resource",
            ));
        }
        raw.resources
            .iter()
            .map(|r| Resource::try_from(r.clone()).map_err(|e| self.err(at("resources"), e)))
            .collect()
    }

    /// `scopes`, `default_scopes` and `require_scopes`, every entry a scope-token and every
    /// default one of the rule's scopes.
    fn scopes(
        &self,
        at: &dyn Fn(&str) -> String,
        raw: &RawRule,
    ) -> Result<[Scopes; 3], ConfigError> {
        let lists = [&raw.scopes, &raw.default_scopes, &raw.require_scopes].map(|list| {
            Scopes::from_words(list.iter().map(String::as_str)).map_err(|NotAScope(bad)| {
                self.err(
                    at("scopes"),
                    format!("\"{bad}\" is not a valid scope (no spaces, quotes or backslashes)"),
                )
            })
        });
        let [scopes, default_scopes, require_scopes] = lists;
        let (scopes, default_scopes, require_scopes) = (scopes?, default_scopes?, require_scopes?);
        if let Some(extra) = default_scopes.iter().find(|s| !scopes.contains(s.as_str())) {
            return Err(self.err(
                at("default_scopes"),
                format!("\"{extra}\" is not in the rule's scopes"),
            ));
        }
        Ok([scopes, default_scopes, require_scopes])
    }

    /// The actors a delegating rule always allows.
    fn actors(
        &self,
        at: &dyn Fn(&str) -> String,
        raw: &mut RawRule,
        actor: ActorMode,
        issuers: &[IssuerConfig],
    ) -> Result<Vec<ActorRef>, ConfigError> {
        if raw.actors.is_some() && actor != ActorMode::Token {
            return Err(self.err(at("actors"), "applies only to actor = \"token\""));
        }
        let mut actors = Vec::new();
        for a in raw.actors.take().unwrap_or_default() {
            if !issuers.iter().any(|i| i.id == a.issuer) {
                return Err(self.err(
                    at("actors"),
                    format!("issuer \"{}\" is not a configured issuer id", a.issuer),
                ));
            }
            if a.subject.is_empty() {
                return Err(self.err(at("actors"), "subject must not be empty"));
            }
            actors.push(ActorRef {
                issuer: a.issuer,
                subject: a.subject,
            });
        }
        Ok(actors)
    }

    /// Its own lifetime, within the limits of the tokens it mints.
    fn ttl(
        &self,
        at: &dyn Fn(&str) -> String,
        raw: &RawRule,
        limits: Limits<'_>,
        mints: Mints,
    ) -> Result<Option<Duration>, ConfigError> {
        let (max, key) = match (mints, limits.txn) {
            (Mints::TxnToken, Some(txn)) => (txn.max_ttl, "transaction_tokens.max_ttl"),
            (m, _) if m.is_grant() => (
                super::grant::GRANT_MAX_TTL,
                "5m, the longest a grant for another trust domain lives",
            ),
            _ => (limits.signing.max_ttl, "signing.max_ttl"),
        };
        let ttl = match raw.ttl.as_deref() {
            None => None,
            Some(t) => {
                let ttl = parse_duration(t).map_err(|m| self.err(at("ttl"), m))?;
                if ttl.is_zero() || ttl > max {
                    return Err(self.err(
                        at("ttl"),
                        format!("must be more than zero and at most {key}"),
                    ));
                }
                Some(ttl)
            }
        };
        Ok(ttl)
    }

    /// No claim it copies carries a meaning Tessera sets itself.
    fn copy_claims(&self, at: &dyn Fn(&str) -> String, raw: &RawRule) -> Result<(), ConfigError> {
        if let Some(reserved) = raw
            .copy_claims
            .iter()
            .find(|c| RESERVED_CLAIMS.contains(&c.as_str()))
        {
            return Err(self.err(
                at("copy_claims"),
                format!(
                    "\"{reserved}\" cannot be copied: it carries identity, audience, lifetime, \
                     scope, binding or delegation meaning, or marks an ID token"
                ),
            ));
        }
        Ok(())
    }
}
