//! The error object a plugin prints on failure, with the spec's well-known codes.

use serde::Serialize;

/// The spec's codes (1–99 are reserved to it; 100 and up are the plugin's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 1: the config's version is not one this plugin speaks.
    IncompatibleVersion,
    /// 2: a field of the config is not supported.
    UnsupportedField,
    /// 3: the container is unknown or does not exist.
    UnknownContainer,
    /// 4: a required environment variable is missing or invalid.
    InvalidEnvironment,
    /// 5: an I/O failure (reading stdin).
    Io,
    /// 6: stdin could not be decoded.
    Decoding,
    /// 7: the network config is invalid.
    InvalidConfig,
    /// 11: try again later (the daemon is not running).
    TryAgainLater,
    /// 50: STATUS: the plugin cannot serve ADDs.
    NotAvailable,
    /// 100: the daemon failed to do what was asked (kernel, store).
    Daemon,
}

impl ErrorCode {
    pub fn number(self) -> u32 {
        match self {
            Self::IncompatibleVersion => 1,
            Self::UnsupportedField => 2,
            Self::UnknownContainer => 3,
            Self::InvalidEnvironment => 4,
            Self::Io => 5,
            Self::Decoding => 6,
            Self::InvalidConfig => 7,
            Self::TryAgainLater => 11,
            Self::NotAvailable => 50,
            Self::Daemon => 100,
        }
    }
}

/// A failure, printed on stdout as the spec's error object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct CniError {
    pub code: ErrorCode,
    pub msg: String,
    pub details: Option<String>,
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: &'a str,
    code: u32,
    msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a str>,
}

impl CniError {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// The error object, in the version the caller spoke (1.1.0 when that is unknown).
    pub fn to_json(&self, version: &str) -> String {
        serde_json::to_string(&Wire {
            cni_version: version,
            code: self.code.number(),
            msg: &self.msg,
            details: self.details.as_deref(),
        })
        .expect("an error object serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_object_has_the_specs_fields() {
        let e = CniError::new(ErrorCode::TryAgainLater, "netctl daemon not running")
            .with_details("at /run/netctl/netctl.sock");
        let v: serde_json::Value = serde_json::from_str(&e.to_json("1.0.0")).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["code"], 11);
        assert_eq!(v["msg"], "netctl daemon not running");
        assert_eq!(v["details"], "at /run/netctl/netctl.sock");
        let bare: serde_json::Value =
            serde_json::from_str(&CniError::new(ErrorCode::Decoding, "x").to_json("1.1.0"))
                .unwrap();
        assert!(bare.get("details").is_none());
    }
}
