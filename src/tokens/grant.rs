//! Grants for another trust domain's authorization server (SPEC §9): a JWT authorization grant
//! (draft-ietf-oauth-identity-chaining), or an Identity Assertion JWT Authorization Grant
//! (draft-ietf-oauth-identity-assertion-authz-grant, `typ: oauth-id-jag+jwt`). Both are signed
//! with the signing keys, like every token this server mints, and are presented elsewhere with
//! RFC 7523's `jwt-bearer` grant.

use serde_json::{Map, Value};

use super::mint::{MintError, Minted};
use crate::config::TokenKind;
use crate::keys::SigningKey;
use crate::oauth::Scopes;

/// The JOSE `typ` of an ID-JAG.
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";
/// The JOSE `typ` of a JWT authorization grant: the drafts name none, so the generic one
/// (RFC 7519 §5.1); its `aud`, the foreign authorization server, is what keeps it a grant.
pub const GRANT_TYP: &str = "JWT";

/// Claims of the subject (an ID token) an ID-JAG carries over when present (SPEC §9).
pub const AUTHENTICATION_CLAIMS: &[&str] = &["auth_time", "acr", "amr"];

/// Everything a grant says, decided before signing.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthzGrant {
    /// `AuthorizationGrant` or `IdJag`.
    pub kind: TokenKind,
    /// `sub`: the subject's, or the claim the rule maps it from.
    pub subject: String,
    /// `aud`: exactly one authorization server.
    pub audience: String,
    /// An ID-JAG's `client_id`: the client's id at the resource authorization server.
    pub client_id: Option<String>,
    /// An ID-JAG's `resource`: the protected resources granted.
    pub resources: Vec<String>,
    /// Empty: no `scope` claim.
    pub scopes: Scopes,
    pub issued_at: i64,
    pub expires_at: i64,
    pub act: Option<Value>,
    /// The rule's copied claims and, for an ID-JAG, the subject's authentication claims.
    pub copied: Map<String, Value>,
    /// The DPoP key the grant is bound to (`cnf.jkt`), when the request proved one.
    pub cnf_jkt: Option<String>,
}

impl AuthzGrant {
    pub fn typ(&self) -> &'static str {
        match self.kind {
            TokenKind::IdJag => ID_JAG_TYP,
            _ => GRANT_TYP,
        }
    }
}

pub fn mint(key: &SigningKey, issuer: &str, grant: &AuthzGrant) -> Result<Minted, MintError> {
    let jti = crate::ids::jti(crate::clock::now())?;
    let token = key.sign_jwt_typed(&claims(issuer, grant, &jti), grant.typ())?;
    Ok(Minted { token, jti })
}

/// The JOSE header of a grant.
pub fn header(key: &SigningKey, typ: &str) -> jsonwebtoken::Header {
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.typ = Some(typ.into());
    header.kid = Some(key.kid.clone());
    header
}

/// The claims of a grant: the copied claims, then those Tessera sets itself.
pub fn claims(issuer: &str, grant: &AuthzGrant, jti: &str) -> Map<String, Value> {
    let mut claims = grant.copied.clone();
    claims.insert("iss".into(), issuer.into());
    claims.insert("sub".into(), grant.subject.clone().into());
    claims.insert("aud".into(), grant.audience.clone().into());
    if let Some(client_id) = &grant.client_id {
        claims.insert("client_id".into(), client_id.clone().into());
    }
    claims.insert("jti".into(), jti.into());
    claims.insert("iat".into(), grant.issued_at.into());
    claims.insert("exp".into(), grant.expires_at.into());
    match grant.resources.as_slice() {
        [] => {}
        [one] => {
            claims.insert("resource".into(), one.clone().into());
        }
        many => {
            claims.insert("resource".into(), many.to_vec().into());
        }
    }
    if !grant.scopes.is_empty() {
        claims.insert("scope".into(), grant.scopes.to_string().into());
    }
    if let Some(act) = &grant.act {
        claims.insert("act".into(), act.clone());
    }
    if let Some(jkt) = &grant.cnf_jkt {
        claims.insert("cnf".into(), serde_json::json!({ "jkt": jkt }));
    }
    claims
}

/// Whether a JOSE `typ` is an ID-JAG's (compared as media types are).
pub fn is_id_jag_typ(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| super::verify::same_typ(t, ID_JAG_TYP))
}
