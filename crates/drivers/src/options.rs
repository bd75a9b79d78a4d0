//! Reading option values the way Docker's drivers do.

use crate::DriverError;

/// `true`/`1`/`yes` or `false`/`0`/`no`.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, DriverError> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(DriverError::InvalidOption(format!(
            "option {key}: {value:?} is not a boolean (true or false)"
        ))),
    }
}

/// An MTU between 68 (IPv4's minimum) and 65535.
pub fn parse_mtu(value: &str) -> Result<u32, DriverError> {
    let mtu: u32 = value
        .parse()
        .map_err(|_| DriverError::InvalidOption(format!("invalid MTU {value:?}")))?;
    check_mtu(mtu).map_err(DriverError::InvalidOption)?;
    Ok(mtu)
}

pub fn check_mtu(mtu: u32) -> Result<(), String> {
    if !(68..=65535).contains(&mtu) {
        return Err(format!("invalid MTU {mtu}: must be between 68 and 65535"));
    }
    Ok(())
}
