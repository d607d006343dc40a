//! The OAuth vocabulary every part speaks: the strictly decoded form, token type URIs (RFC 8693
//! §3), JOSE algorithm names, and what a scope-token and a resource indicator may be. Parsed at
//! the edge, by the form, the configuration and the rules alike.

pub mod algorithm;
pub mod form;
pub mod token_type;

use url::Url;

pub use form::Params;
pub use token_type::TokenType;

/// RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// RFC 8707 §2: an absolute URI without a fragment.
pub fn is_resource_indicator(s: &str) -> bool {
    Url::parse(s).is_ok_and(|u| u.fragment().is_none()) && !s.contains('#')
}

/// The space-separated scope-tokens of a `scope` value (RFC 6749 §3.3), each once, in order,
/// checked by no grammar: what was asked for, as a record keeps it.
pub fn scope_list(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    text.split(' ')
        .filter(|s| !s.is_empty() && seen.insert(*s))
        .map(str::to_string)
        .collect()
}
