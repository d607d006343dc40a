//! Rules indexed by client, subject issuer and subject pattern, so choosing a rule costs the
//! same with 10,000 rules as with 10: only the rules that name the client and the issuer, and
//! whose subjects may match, are tried, in file order.

use std::collections::{HashMap, HashSet};

use crate::config::{Mints, RuleConfig, Wants};
use crate::subjects::SubjectIndex;

#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<RuleConfig>,
    /// Client id → indexes of the rules naming it, in file order.
    by_client: HashMap<String, Vec<usize>>,
    /// Client id → issuer id → indexes by subject pattern.
    by_client_issuer: HashMap<String, HashMap<String, SubjectIndex>>,
    /// Clients named by a rule with a condition (or, for Txn-Tokens, claims it builds).
    conditional: HashSet<String>,
    /// The kinds of token the rules naming each client mint.
    kinds: HashMap<String, Vec<Mints>>,
}

impl RuleSet {
    pub fn new(rules: Vec<RuleConfig>) -> Self {
        let mut by_client: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_client_issuer: HashMap<String, HashMap<String, SubjectIndex>> = HashMap::new();
        let mut conditional = HashSet::new();
        let mut kinds: HashMap<String, Vec<Mints>> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            for client in &rule.clients {
                if rule.condition.is_some() || !rule.tctx.is_empty() || !rule.rctx.is_empty() {
                    conditional.insert(client.clone());
                }
                let minted = kinds.entry(client.clone()).or_default();
                if !minted.contains(&rule.mints) {
                    minted.push(rule.mints);
                }
                by_client.entry(client.clone()).or_default().push(i);
                let issuers = by_client_issuer.entry(client.clone()).or_default();
                for issuer in &rule.issuers {
                    issuers
                        .entry(issuer.clone())
                        .or_default()
                        .add(i, &rule.subjects);
                }
            }
        }
        Self {
            rules,
            by_client,
            by_client_issuer,
            conditional,
            kinds,
        }
    }

    pub fn all(&self) -> &[RuleConfig] {
        &self.rules
    }

    /// Whether a rule naming the client has a condition (to evaluate under a budget).
    pub fn has_conditions(&self, client: &str) -> bool {
        self.conditional.contains(client)
    }

    pub fn names_client(&self, client: &str) -> bool {
        self.by_client.contains_key(client)
    }

    /// Whether a rule serving `wants` names the client.
    pub fn names_client_for(&self, client: &str, wants: Wants) -> bool {
        self.kinds
            .get(client)
            .is_some_and(|kinds| kinds.iter().any(|k| k.serves(wants)))
    }

    /// Every rule naming the client, in file order.
    pub fn naming_client<'a>(&'a self, client: &str) -> impl Iterator<Item = &'a RuleConfig> {
        self.pick(self.by_client.get(client))
    }

    /// Whether a rule names both the client and the issuer (by id).
    pub fn names_client_and_issuer(&self, client: &str, issuer: &str) -> bool {
        self.by_client_issuer
            .get(client)
            .is_some_and(|by_issuer| by_issuer.contains_key(issuer))
    }

    /// The rules naming both the client and the issuer whose subjects may match `sub`, in file
    /// order: the only ones that can apply.
    pub fn candidates<'a>(
        &'a self,
        client: &str,
        issuer: &str,
        sub: &str,
    ) -> impl Iterator<Item = &'a RuleConfig> {
        let positions = self
            .by_client_issuer
            .get(client)
            .and_then(|by_issuer| by_issuer.get(issuer))
            .map(|index| index.candidates(sub))
            .unwrap_or_default();
        (0..positions.len()).filter_map(move |i| self.rules.get(positions[i]))
    }

    fn pick<'a>(&'a self, indexes: Option<&'a Vec<usize>>) -> impl Iterator<Item = &'a RuleConfig> {
        indexes
            .into_iter()
            .flatten()
            .filter_map(|i| self.rules.get(*i))
    }
}
