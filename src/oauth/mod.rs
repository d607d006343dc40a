//! The OAuth vocabulary every part speaks: the strictly decoded form, token type URIs (RFC 8693
//! §3), JOSE algorithm names, and what a scope-token and a resource indicator may be. Parsed at
//! the edge, by the form, the configuration and the rules alike.

pub mod algorithm;
pub mod form;
pub mod resource;
pub mod scope;
pub mod token_type;
pub mod txn_params;

pub use form::Params;
pub use resource::{Resource, is_resource_indicator};
pub use scope::{Scope, Scopes};
pub use token_type::TokenType;
pub use txn_params::TxnParams;
