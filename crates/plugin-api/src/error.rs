use serde::{Deserialize, Serialize};

/// A stable, machine-readable error kind; scripts match on it, people read the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or its values are invalid.
    InvalidArgument,
    /// A named network, sandbox or endpoint does not exist.
    NotFound,
    /// The request clashes with existing state (name taken, subnet overlaps, address used…).
    Conflict,
    /// A pool has no address or subnet left.
    Exhausted,
    /// The caller may not do this.
    Forbidden,
    /// The kernel or the store failed.
    Internal,
    /// A service the request needs (the cluster store) cannot be reached now; try again.
    Unavailable,
}

impl ErrorCode {
    pub const ALL: [Self; 7] = [
        Self::InvalidArgument,
        Self::NotFound,
        Self::Conflict,
        Self::Exhausted,
        Self::Forbidden,
        Self::Internal,
        Self::Unavailable,
    ];

    /// Its name on the wire and in metrics (`invalid_argument`…).
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Exhausted => "exhausted",
            Self::Forbidden => "forbidden",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidArgument => 400,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::Conflict | Self::Exhausted => 409,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }
}

/// The body of every failed management API call: `{"code": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }
}
