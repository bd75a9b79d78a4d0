//! The engine's errors as the management API says them: a stable code and the message.

use netctl_plugin_api::{ApiError, ErrorCode};

use crate::controller::{EngineError, ErrorKind};

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let code = match e.kind() {
            ErrorKind::Invalid => ErrorCode::InvalidArgument,
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::Conflict => ErrorCode::Conflict,
            ErrorKind::Exhausted => ErrorCode::Exhausted,
            ErrorKind::Forbidden => ErrorCode::Forbidden,
            ErrorKind::Unavailable => ErrorCode::Unavailable,
            ErrorKind::Internal => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}
