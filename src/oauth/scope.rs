//! Scopes (RFC 6749 §3.3): a `Scope` is a checked scope-token, `Scopes` an ordered set of them.
//! The form, the configuration, the rules and the minted token all hold these, so a scope is
//! checked once, where it enters, and a `scope` value is split in one place.

use std::fmt;

use serde::Serialize;

/// A scope-token: printable ASCII except space, `"` and `\`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Scope(String);

impl Scope {
    pub fn parse(s: &str) -> Option<Self> {
        is_scope_token(s).then(|| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Scopes, each once, in the order first named.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Scopes(Vec<Scope>);

/// Why a list of scopes was refused: the first word that is no scope-token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAScope(pub String);

impl Scopes {
    /// No scope, for what borrows a set that may not be there.
    pub fn none() -> &'static Scopes {
        static NONE: Scopes = Scopes(Vec::new());
        &NONE
    }

    /// The words of a `scope` value, each a scope-token.
    pub fn parse(text: &str) -> Result<Self, NotAScope> {
        Self::from_words(words(text))
    }

    /// `list` as scopes, every entry a scope-token.
    pub fn from_words<'a>(list: impl IntoIterator<Item = &'a str>) -> Result<Self, NotAScope> {
        let mut first_bad = None;
        let scopes = Self::each_once(list.into_iter().filter(|word| {
            let good = is_scope_token(word);
            if !good && first_bad.is_none() {
                first_bad = Some(word.to_string());
            }
            good
        }));
        first_bad.map_or(Ok(scopes), |bad| Err(NotAScope(bad)))
    }

    /// The scope-tokens among `list`; the rest match nothing and are dropped.
    pub fn valid_of<'a>(list: impl IntoIterator<Item = &'a str>) -> Self {
        Self::each_once(list.into_iter().filter(|word| is_scope_token(word)))
    }

    /// Scope-tokens, each once, in order: linear in their number, however many a token's
    /// `scope` claim holds.
    fn each_once<'a>(tokens: impl Iterator<Item = &'a str>) -> Self {
        let mut seen = std::collections::HashSet::new();
        Self(
            tokens
                .filter(|token| seen.insert(*token))
                .map(|token| Scope(token.to_string()))
                .collect(),
        )
    }

    /// Adds `scope` at the end unless it is already here.
    pub fn insert(&mut self, scope: Scope) {
        if !self.0.contains(&scope) {
            self.0.push(scope);
        }
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.0 == scope)
    }

    /// Whether every scope here is also in `other`.
    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.iter().all(|s| other.contains(s.as_str()))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Scope> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes as plain strings, as records and CEL conditions take them.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.clone()).collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut scopes = Self::default();
        for scope in iter {
            scopes.insert(scope);
        }
        scopes
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a Scope;
    type IntoIter = std::slice::Iter<'a, Scope>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The space-separated form of a `scope` value.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&scope.0)?;
        }
        Ok(())
    }
}

/// RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// The words of a `scope` value: split on the space character only (RFC 6749 §3.3), empty
/// words (repeated spaces) skipped.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(' ').filter(|w| !w.is_empty())
}

/// The words of a `scope` value each once, in order, checked by no grammar: what was asked
/// for, as a record keeps it even when the request is refused for it.
pub fn as_asked(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    words(text)
        .filter(|w| seen.insert(*w))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(is_scope_token("inventory:read"));
        assert!(is_scope_token("!#[]~"));
        for bad in ["", "a b", "a\"b", "a\\b", "a\tb", "é"] {
            assert!(!is_scope_token(bad), "{bad:?}");
            assert!(Scope::parse(bad).is_none());
        }
    }

    #[test]
    fn a_scope_value_parses_into_each_scope_once_in_order() {
        let s = Scopes::parse("  b a  b c ").expect("valid");
        assert_eq!(s.names(), ["b", "a", "c"]);
        assert_eq!(s.to_string(), "b a c");
        assert!(s.contains("a") && !s.contains("d"));
        assert_eq!(Scopes::parse("").expect("empty"), Scopes::default());
        assert_eq!(
            Scopes::parse("a x\"y b"),
            Err(NotAScope("x\"y".to_string()))
        );
    }

    #[test]
    fn valid_of_drops_what_is_no_scope_token() {
        let s = Scopes::valid_of(["read", "bad\tone", "", "write", "read"]);
        assert_eq!(s.names(), ["read", "write"]);
    }

    #[test]
    fn subsets() {
        let ab = Scopes::parse("a b").expect("valid");
        let a = Scopes::parse("a").expect("valid");
        assert!(a.is_subset(&ab) && !ab.is_subset(&a));
        assert!(Scopes::default().is_subset(&a));
    }

    #[test]
    fn as_asked_keeps_what_was_sent_once() {
        assert_eq!(as_asked("a  \"x b a"), ["a", "\"x", "b"]);
    }
}
