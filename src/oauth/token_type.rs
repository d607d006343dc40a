//! RFC 8693 §3 token type identifiers.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    AccessToken,
    RefreshToken,
    IdToken,
    Saml1,
    Saml2,
    Jwt,
}

const PREFIX: &str = "urn:ietf:params:oauth:token-type:";

impl TokenType {
    pub fn uri(self) -> &'static str {
        match self {
            Self::AccessToken => "urn:ietf:params:oauth:token-type:access_token",
            Self::RefreshToken => "urn:ietf:params:oauth:token-type:refresh_token",
            Self::IdToken => "urn:ietf:params:oauth:token-type:id_token",
            Self::Saml1 => "urn:ietf:params:oauth:token-type:saml1",
            Self::Saml2 => "urn:ietf:params:oauth:token-type:saml2",
            Self::Jwt => "urn:ietf:params:oauth:token-type:jwt",
        }
    }
}

impl FromStr for TokenType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.strip_prefix(PREFIX).ok_or(())? {
            "access_token" => Ok(Self::AccessToken),
            "refresh_token" => Ok(Self::RefreshToken),
            "id_token" => Ok(Self::IdToken),
            "saml1" => Ok(Self::Saml1),
            "saml2" => Ok(Self::Saml2),
            "jwt" => Ok(Self::Jwt),
            _ => Err(()),
        }
    }
}

impl TokenType {
    /// A type as the command line takes it: the URI, or its last part (`jwt`, `access_token`).
    pub fn from_arg(arg: &str) -> Result<Self, String> {
        Self::from_str(arg)
            .or_else(|()| Self::from_str(&format!("{PREFIX}{arg}")))
            .map_err(|()| {
                format!(
                    "\"{arg}\" is not a token type of RFC 8693 §3 (access_token, jwt, id_token, …)"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_uri_round_trips_and_others_are_unknown() {
        for t in [
            TokenType::AccessToken,
            TokenType::RefreshToken,
            TokenType::IdToken,
            TokenType::Saml1,
            TokenType::Saml2,
            TokenType::Jwt,
        ] {
            assert_eq!(t.uri().parse::<TokenType>(), Ok(t));
        }
        assert!(
            "urn:ietf:params:oauth:token-type:Access_Token"
                .parse::<TokenType>()
                .is_err()
        );
        assert!("access_token".parse::<TokenType>().is_err());
    }
}
