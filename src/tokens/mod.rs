//! JWTs in and out: verification of subject tokens, DPoP proofs, minting of access tokens.

pub mod dpop;
pub mod mint;
pub mod opaque;
pub mod unverified;
pub mod verified;
pub mod verify;

pub use verified::VerifiedToken;
