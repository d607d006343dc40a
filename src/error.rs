//! The one error type of the OAuth endpoints (RFC 6749 §5.2, RFC 8693 §2.2.2, RFC 9449 §5).
//! Its mapping to HTTP lives in `http::errors`, and nowhere else. Internal failures are typed
//! where they happen (`store::Error`, `startup::Error`, `issuers::fetch::Error`, …) and become
//! text only at the edges: the command line, a log line, an `error_description`, by `chain`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    /// The grant presented with `jwt-bearer` is invalid (RFC 6749 §5.2, RFC 7523 §3.1).
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidTarget,
    InvalidDpopProof,
    /// A missing or wrong bearer token on the admin API (RFC 6750 §3.1).
    InvalidToken,
    TemporarilyUnavailable,
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::InvalidToken => "invalid_token",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which HTTP status a denial gets when the code alone does not decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Default,
    PayloadTooLarge,
    RequestTimeout,
    TooManyRequests { retry_after_secs: u64 },
}

/// A denial, with a description a client developer can act on. It never holds a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    pub status: Status,
    /// Basic authentication was attempted (or none at all), so a 401 carries a challenge.
    pub basic_challenge: bool,
    /// More than the client may see (an evaluator's words, which can name claims), for the
    /// audit record's reason only.
    pub detail: Option<String>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            status: Status::Default,
            basic_challenge: false,
            detail: None,
        }
    }

    /// The same denial, with a reason for the audit record that the client does not see.
    pub fn with_detail(self, detail: impl Into<String>) -> Self {
        Self {
            detail: Some(detail.into()),
            ..self
        }
    }

    /// What the audit record keeps as the reason.
    pub fn reason(&self) -> &str {
        self.detail.as_deref().unwrap_or(&self.description)
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(description: impl Into<String>, basic_challenge: bool) -> Self {
        Self {
            basic_challenge,
            ..Self::new(ErrorCode::InvalidClient, description)
        }
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, description)
    }

    pub fn temporarily_unavailable(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::TemporarilyUnavailable, description)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self {
            status: Status::PayloadTooLarge,
            ..Self::invalid_request(format!("the request body is larger than {limit} bytes"))
        }
    }

    pub fn body_timeout() -> Self {
        Self {
            status: Status::RequestTimeout,
            ..Self::invalid_request("the request body did not arrive in time")
        }
    }

    /// An internal failure: the client sees an opaque description, the cause goes to the log.
    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server could not complete the request",
        )
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl std::error::Error for OAuthError {}

/// An error and its causes, as one line: `what failed: why: why that`.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        line.push_str(": ");
        line.push_str(&e.to_string());
        cause = e.source();
    }
    line
}
