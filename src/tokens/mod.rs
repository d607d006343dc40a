//! JWTs in and out: token type URIs, verification of subject tokens, minting of access tokens.

pub mod algorithm;
pub mod dpop;
pub mod introspect;
pub mod mint;
pub mod types;
pub mod unverified;
pub mod verify;

pub use types::TokenType;
pub use verify::VerifiedToken;
