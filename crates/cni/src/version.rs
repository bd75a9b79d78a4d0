//! Spec versions: which this plugin speaks, and the VERSION answer.

use crate::error::{CniError, ErrorCode};

/// Every version a config may name, oldest first. 0.3.x and 0.4.0 share a result shape
/// (with `version` on each address); 1.0.0 dropped it; 1.1.0 added STATUS and GC.
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A supported spec version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    V0_3_0,
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

impl Version {
    pub fn parse(text: &str) -> Result<Self, CniError> {
        Ok(match text {
            "0.3.0" => Self::V0_3_0,
            "0.3.1" => Self::V0_3_1,
            "0.4.0" => Self::V0_4_0,
            "1.0.0" => Self::V1_0_0,
            "1.1.0" => Self::V1_1_0,
            other => {
                return Err(CniError::new(
                    ErrorCode::IncompatibleVersion,
                    format!("CNI version {other:?} is not supported"),
                )
                .with_details(format!("supported: {}", SUPPORTED_VERSIONS.join(", "))))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V0_3_0 => "0.3.0",
            Self::V0_3_1 => "0.3.1",
            Self::V0_4_0 => "0.4.0",
            Self::V1_0_0 => "1.0.0",
            Self::V1_1_0 => "1.1.0",
        }
    }

    /// Results before 1.0.0 say which family each address is.
    pub fn tags_address_family(self) -> bool {
        self < Self::V1_0_0
    }

    /// CHECK exists from 0.4.0 on.
    pub fn has_check(self) -> bool {
        self >= Self::V0_4_0
    }

    /// STATUS and GC exist from 1.1.0 on.
    pub fn has_status_and_gc(self) -> bool {
        self >= Self::V1_1_0
    }
}

/// The answer to VERSION: the versions this plugin speaks. `asked` is the stdin's
/// `cniVersion` (a runtime may send any, also one we do not speak).
pub fn version_answer(asked: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": asked.unwrap_or("1.1.0"),
        "supportedVersions": SUPPORTED_VERSIONS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_version_parses_and_round_trips() {
        for text in SUPPORTED_VERSIONS {
            assert_eq!(Version::parse(text).unwrap().as_str(), text);
        }
        let err = Version::parse("2.0.0").unwrap_err();
        assert_eq!(err.code, ErrorCode::IncompatibleVersion);
        assert!(Version::V0_4_0.tags_address_family());
        assert!(!Version::V1_0_0.tags_address_family());
        assert!(!Version::V0_3_1.has_check());
        assert!(Version::V1_1_0.has_status_and_gc() && !Version::V1_0_0.has_status_and_gc());
    }

    #[test]
    fn the_version_answer_lists_every_version() {
        let answer = version_answer(Some("1.0.0"));
        assert_eq!(answer["cniVersion"], "1.0.0");
        assert_eq!(answer["supportedVersions"].as_array().unwrap().len(), 5);
    }
}
