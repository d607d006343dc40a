//! Token type identifiers: RFC 8693 §3's, and those of transaction tokens
//! (draft-ietf-oauth-transaction-tokens: the Txn-Token itself, and the subjects a requesting
//! workload asserts, `self_signed` and `unsigned_json`) and of the Identity Assertion JWT
//! Authorization Grant (`id-jag`).

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    AccessToken,
    RefreshToken,
    IdToken,
    Saml1,
    Saml2,
    Jwt,
    TxnToken,
    SelfSigned,
    UnsignedJson,
    IdJag,
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
            Self::TxnToken => "urn:ietf:params:oauth:token-type:txn_token",
            Self::SelfSigned => "urn:ietf:params:oauth:token-type:self_signed",
            Self::UnsignedJson => "urn:ietf:params:oauth:token-type:unsigned_json",
            Self::IdJag => "urn:ietf:params:oauth:token-type:id-jag",
        }
    }

    /// The URI's last part, as records, metrics and the command line name the type.
    pub fn name(self) -> &'static str {
        &self.uri()[PREFIX.len()..]
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
            "txn_token" => Ok(Self::TxnToken),
            "self_signed" => Ok(Self::SelfSigned),
            "unsigned_json" => Ok(Self::UnsignedJson),
            "id-jag" => Ok(Self::IdJag),
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
                    "\"{arg}\" is not a token type of RFC 8693 §3 (access_token, jwt, id_token, …) or of \
                     transaction tokens (txn_token, self_signed, unsigned_json) or id-jag"
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
            TokenType::TxnToken,
            TokenType::SelfSigned,
            TokenType::UnsignedJson,
            TokenType::IdJag,
        ] {
            assert_eq!(t.uri().parse::<TokenType>(), Ok(t));
            assert_eq!(TokenType::from_arg(t.name()), Ok(t));
        }
        assert!(
            "urn:ietf:params:oauth:token-type:Access_Token"
                .parse::<TokenType>()
                .is_err()
        );
        assert!("access_token".parse::<TokenType>().is_err());
    }
}
