//! What a grant comes from: the tokens presented to its exchange and the token it mints, as the
//! audit writer needs them to refuse, inside its commit, a grant whose source is revoked
//! (`revocation::settle`).

/// A token presented to an exchange, as far as revocation is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub issuer_id: String,
    pub sub: String,
    pub jti: Option<String>,
    pub iat: Option<i64>,
    /// Minted by this server and presented: its own record must exist and not be revoked.
    pub local: bool,
}

/// The tokens a grant comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub subject: Presented,
    pub actor: Option<Presented>,
    /// The token being minted, as this server's issuer entries would see it presented later:
    /// a subject revoked at this server while the exchange ran covers it too.
    pub minted: Vec<Presented>,
}
