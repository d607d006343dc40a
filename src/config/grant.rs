//! Rules that mint grants for another trust domain's authorization server (SPEC §9): a JWT
//! authorization grant (`mints = "authorization_grant"`) or an ID-JAG (`mints = "id_jag"`).

use std::time::Duration;

use super::check::Ctx;
use super::raw::RawRule;
use super::*;

/// The longest a grant for another trust domain lives, and the most a grant rule's `ttl` may
/// say: a grant is a bearer credential presented once, right after it is issued.
pub const GRANT_MAX_TTL: Duration = Duration::from_secs(300);

impl Ctx<'_> {
    /// What only grant rules take (`subject_claim`, `audience_client_id`), and what they must
    /// be: an ID-JAG rule takes ID tokens of issuers that accept them, names the resource
    /// authorization servers as its audiences, and has no actor; a grant keeps no actor token.
    pub(super) fn grant_rule(
        &self,
        at: &dyn Fn(&str) -> String,
        raw: &RawRule,
        mints: Mints,
        issuers: &[IssuerConfig],
    ) -> Result<(), ConfigError> {
        if !mints.is_grant() {
            for (key, set) in [
                ("subject_claim", raw.subject_claim.is_some()),
                ("audience_client_id", raw.audience_client_id.is_some()),
            ] {
                if set {
                    return Err(self.err(
                        at(key),
                        "applies to mints = \"authorization_grant\" or \"id_jag\" rules only",
                    ));
                }
            }
            return Ok(());
        }
        if raw.subject_claim.as_deref().is_some_and(str::is_empty) {
            return Err(self.err(at("subject_claim"), "must name a claim"));
        }
        if raw.actor.is_some_and(|a| a == ActorMode::Token) || raw.actors.is_some() {
            return Err(self.err(
                at("actor"),
                "a grant for another trust domain is requested without an actor_token",
            ));
        }
        if mints == Mints::AuthorizationGrant {
            if raw.audience_client_id.is_some() {
                return Err(self.err(
                    at("audience_client_id"),
                    "applies to mints = \"id_jag\" rules only",
                ));
            }
            return Ok(());
        }
        if raw.audiences.is_empty() {
            return Err(self.err(
                at("audiences"),
                "an ID-JAG rule names the resource authorization servers (their issuer \
                 identifiers) it issues ID-JAGs for",
            ));
        }
        if raw.actor.is_some_and(|a| a != ActorMode::None) {
            return Err(self.err(
                at("actor"),
                "an ID-JAG names no actor: leave actor unset or \"none\"",
            ));
        }
        if raw.audience_client_id.as_deref().is_some_and(str::is_empty) {
            return Err(self.err(at("audience_client_id"), "must not be empty"));
        }
        for id in &raw.issuers {
            if let Some(issuer) = issuers.iter().find(|i| &i.id == id)
                && !issuer.accept.contains(&TokenKind::IdToken)
            {
                return Err(self.err(
                    at("issuers"),
                    format!(
                        "an ID-JAG is issued from an ID token; issuer \"{id}\" does not accept \
                         id_token"
                    ),
                ));
            }
        }
        Ok(())
    }
}
