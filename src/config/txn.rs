//! `[transaction_tokens]` and what is particular to the rules that mint Txn-Tokens (SPEC §8).

use std::collections::BTreeMap;

use super::check::Ctx;
use super::raw::{RawRule, RawTransactionTokens};
use super::*;
use crate::condition::Condition;

/// Claims one rule's `tctx` or `rctx` may build.
const MAX_CONTEXT_ENTRIES: usize = 32;

/// The separator of `req_wl`'s chain of requesting workloads, which client ids of Txn-Token
/// rules may not hold.
pub const REQUESTERS_SEPARATOR: char = ',';

impl Ctx<'_> {
    pub(super) fn transaction_tokens(
        &self,
        raw: RawTransactionTokens,
    ) -> Result<TxnConfig, ConfigError> {
        let key = |k: &str| format!("transaction_tokens.{k}");
        if raw.trust_domain.trim().is_empty() {
            return Err(self.err(key("trust_domain"), "must not be empty"));
        }
        let default_ttl = self.positive(&key("default_ttl"), raw.default_ttl.as_deref(), "1m")?;
        let max_ttl = self.positive(&key("max_ttl"), raw.max_ttl.as_deref(), "5m")?;
        if default_ttl > max_ttl {
            return Err(self.err(key("default_ttl"), "must not exceed max_ttl"));
        }
        Ok(TxnConfig {
            trust_domain: raw.trust_domain,
            default_ttl,
            max_ttl,
            max_replacements: raw.max_replacements.unwrap_or(8),
        })
    }

    /// An access-token rule has no use for what only Txn-Tokens carry, and never grants the
    /// trust domain as an audience: an access token must not pass for a Txn-Token with a
    /// validator that checks signature, `aud` and `exp` only.
    pub(super) fn access_token_rule(
        &self,
        at: &dyn Fn(&str) -> String,
        raw: &RawRule,
        txn: Option<&TxnConfig>,
    ) -> Result<(), ConfigError> {
        if let Some(txn) = txn
            && raw.audiences.contains(&txn.trust_domain)
        {
            return Err(self.err(
                at("audiences"),
                format!(
                    "\"{}\" is the trust domain, the audience of Txn-Tokens only",
                    txn.trust_domain
                ),
            ));
        }
        for (key, set) in [("tctx", &raw.tctx), ("rctx", &raw.rctx)] {
            if !set.is_empty() {
                return Err(self.err(at(key), "applies to mints = \"txn_token\" rules only"));
            }
        }
        Ok(())
    }

    /// A Txn-Token rule: the trust domain is its audience, the request names the scope, the
    /// scope stays within the subject's, no actor, nothing copied but what `tctx` and `rctx`
    /// build. Returns those, compiled.
    #[allow(clippy::type_complexity)]
    pub(super) fn txn_rule(
        &self,
        at: &dyn Fn(&str) -> String,
        raw: &mut RawRule,
        txn: Option<&TxnConfig>,
    ) -> Result<(Vec<(String, Condition)>, Vec<(String, Condition)>), ConfigError> {
        if txn.is_none() {
            return Err(self.err(
                at("mints"),
                "Txn-Tokens need a [transaction_tokens] section naming the trust domain",
            ));
        }
        let refused: [(&str, bool, &str); 6] = [
            (
                "audiences",
                !raw.audiences.is_empty() || !raw.resources.is_empty(),
                "a Txn-Token's audience is transaction_tokens.trust_domain; a txn_token rule \
                 names no audiences or resources",
            ),
            (
                "default_scopes",
                !raw.default_scopes.is_empty(),
                "a Txn-Token request always names its scope; default_scopes do not apply",
            ),
            (
                "scope_mode",
                raw.scope_mode == Some(ScopeMode::Grant),
                "must be intersect: a Txn-Token's scope stays within the subject token's",
            ),
            (
                "actor",
                raw.actor.is_some_and(|a| a != ActorMode::None) || raw.actors.is_some(),
                "Txn-Tokens name no actor; the chain of requesting workloads is req_wl",
            ),
            (
                "copy_claims",
                !raw.copy_claims.is_empty(),
                "a Txn-Token carries what tctx and rctx build; copy_claims does not apply",
            ),
            (
                "scopes",
                raw.scopes.is_empty(),
                "must name the scopes (purposes) its Txn-Tokens may carry",
            ),
        ];
        if let Some((key, _, why)) = refused.into_iter().find(|(_, bad, _)| *bad) {
            return Err(self.err(at(key), why));
        }
        if let Some(c) = raw
            .clients
            .iter()
            .find(|c| c.contains(REQUESTERS_SEPARATOR))
        {
            return Err(self.err(
                at("clients"),
                format!(
                    "\"{c}\" holds a \"{REQUESTERS_SEPARATOR}\", which separates the requesting \
                     workloads of req_wl"
                ),
            ));
        }
        let tctx = self.context_claims(&at("tctx"), std::mem::take(&mut raw.tctx))?;
        let rctx = self.context_claims(&at("rctx"), std::mem::take(&mut raw.rctx))?;
        Ok((tctx, rctx))
    }

    fn context_claims(
        &self,
        key: &str,
        raw: BTreeMap<String, String>,
    ) -> Result<Vec<(String, Condition)>, ConfigError> {
        if raw.len() > MAX_CONTEXT_ENTRIES {
            return Err(self.err(key, format!("builds at most {MAX_CONTEXT_ENTRIES} claims")));
        }
        raw.into_iter()
            .map(|(name, source)| {
                if name.is_empty() {
                    return Err(self.err(key, "a claim name must not be empty"));
                }
                Condition::compile(&source)
                    .map(|c| (name.clone(), c))
                    .map_err(|e| self.err(format!("{key}.{name}"), e))
            })
            .collect()
    }
}
