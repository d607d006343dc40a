//! Resource indicators (RFC 8707): the form, the configuration and the rules hold a `Resource`,
//! checked where it enters.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

/// An absolute URI without a fragment (RFC 8707 §2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Resource(String);

impl TryFrom<String> for Resource {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if is_resource_indicator(&s) {
            Ok(Self(s))
        } else {
            Err(format!(
                "\"{s}\" is not an absolute URI without a fragment (RFC 8707)"
            ))
        }
    }
}

impl std::str::FromStr for Resource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::try_from(s.to_string())
    }
}

impl From<Resource> for String {
    fn from(r: Resource) -> String {
        r.0
    }
}

impl Resource {
    pub fn parse(s: &str) -> Option<Self> {
        is_resource_indicator(s).then(|| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// RFC 8707 §2: an absolute URI without a fragment. `#` is refused even where the URL parser
/// would take it as an empty fragment.
pub fn is_resource_indicator(s: &str) -> bool {
    Url::parse(s).is_ok_and(|u| u.fragment().is_none()) && !s.contains('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_indicators_are_absolute_uris_without_fragment() {
        for good in [
            "https://inventory.internal/",
            "urn:example:api",
            "https://a/b?c=d",
        ] {
            assert_eq!(
                Resource::parse(good).map(|r| r.to_string()),
                Some(good.into())
            );
        }
        for bad in [
            "relative/path",
            "/abs/path",
            "https://a/#",
            "https://a/#f",
            "",
        ] {
            assert!(Resource::parse(bad).is_none(), "{bad:?}");
        }
    }
}
