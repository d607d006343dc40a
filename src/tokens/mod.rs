//! JWTs in and out: verification of subject tokens (and of the subjects a Txn-Token request
//! asserts), DPoP proofs, minting of access tokens and Txn-Tokens.

pub mod asserted;
pub mod dpop;
pub mod grant;
pub mod mint;
pub mod opaque;
pub mod txn;
pub mod unverified;
pub mod verified;
pub mod verify;

pub use verified::VerifiedToken;
