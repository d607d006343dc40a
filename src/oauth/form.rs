//! The form body of a request (RFC 6749 appendix B), decoded strictly: each grant reads its
//! parameters from `Params`.

use crate::error::OAuthError;

/// Parameters that may be given more than once (RFC 8693 §2.1).
const REPEATABLE: &[&str] = &["audience", "resource"];

/// A form body, with every parameter but `audience` and `resource` given at most once.
/// Empty values count as absent (RFC 6749 §3.1).
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let malformed = || {
            OAuthError::invalid_request(
                "the body is not a valid application/x-www-form-urlencoded form",
            )
        };
        let mut pairs = Vec::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = decode(name).ok_or_else(malformed)?;
            let value = decode(value).ok_or_else(malformed)?;
            if !value.is_empty() {
                pairs.push((name, value));
            }
        }
        let mut seen = std::collections::HashSet::with_capacity(pairs.len());
        for (name, _) in &pairs {
            if !REPEATABLE.contains(&name.as_str()) && !seen.insert(name.as_str()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter \"{}\" is given more than once",
                    printable(name)
                )));
            }
        }
        Ok(Self { pairs })
    }

    pub fn one(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable parameter, in order, each once.
    pub fn all(&self, name: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.pairs
            .iter()
            .filter(|(n, v)| n == name && seen.insert(v.as_str()))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.one(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter \"{name}\" is required")))
    }
}

/// One name or value, strictly form-decoded: `+` is a space, every `%` starts a two-digit hex
/// escape, and the result is UTF-8. (Lenient parsers guess at broken input instead.)
pub fn decode(part: &[u8]) -> Option<String> {
    if !part.iter().any(|b| matches!(b, b'%' | b'+')) {
        return std::str::from_utf8(part).ok().map(str::to_owned);
    }
    let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
    let mut out = Vec::with_capacity(part.len());
    let mut rest = part;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = hex(tail.first())? * 16 + hex(tail.get(1))?;
                out.push(u8::try_from(byte).ok()?);
                rest = &tail[2..];
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// A parameter name shown back to the client, cut short and stripped of control characters.
pub fn printable(name: &str) -> String {
    crate::text::shown(name, 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_decoded_strictly() {
        let p = Params::parse(b"a=x+y%2Bz&&b&c=%C3%A9&d=1=2").expect("valid");
        assert_eq!(p.one("a"), Some("x y+z"));
        assert_eq!(p.one("b"), None, "a name alone has an empty value: absent");
        assert_eq!(p.one("c"), Some("é"));
        assert_eq!(p.one("d"), Some("1=2"), "the first = ends the name");
        for bad in ["a=%+1", "a=%1", "a=%", "%C3=1", "a=%C3%28"] {
            assert!(Params::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_repeat_is_found_among_many_parameters() {
        let body: String = (0..20_000).map(|i| format!("p{i}=1&")).collect();
        assert!(Params::parse(body.as_bytes()).is_ok());
        let repeated = format!("{body}p7=2");
        assert!(Params::parse(repeated.as_bytes()).is_err());
    }
}
