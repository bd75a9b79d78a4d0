//! What dockerd sends, checked before anything is looked up or made: its network and
//! endpoint ids are 64 lowercase hex digits, a sandbox key is an absolute path, and a pool id
//! is one netctl gave. Anything else is refused with an error naming the field, and changes
//! nothing (a network named `docker-../../etc` once followed from such an id).

use crate::ApiError;

/// A Docker object id: 64 lowercase hex digits, as dockerd makes them.
pub fn docker_id(field: &str, id: &str) -> Result<(), ApiError> {
    let valid = id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "invalid {field} {:?}: expected 64 lowercase hex digits",
            shorten(id)
        )))
    }
}

/// A network and an endpoint id, as most calls carry.
pub fn endpoint_ids(network_id: &str, endpoint_id: &str) -> Result<(), ApiError> {
    docker_id("NetworkID", network_id)?;
    docker_id("EndpointID", endpoint_id)
}

/// Join's SandboxKey: the path of the container's namespace.
pub fn sandbox_key(key: &str) -> Result<(), ApiError> {
    let path = std::path::Path::new(key);
    let valid = path.is_absolute()
        && !key.contains('\0')
        && path
            .components()
            .all(|c| !matches!(c, std::path::Component::ParentDir));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "invalid SandboxKey {:?}: expected an absolute path",
            shorten(key)
        )))
    }
}

/// A pool id netctl's IPAM gave: `netctl-` (or `netctl-dhcp-`) and hex digits.
pub fn pool_id(id: &str) -> Result<(), ApiError> {
    let digits = id
        .strip_prefix("netctl-dhcp-")
        .or_else(|| id.strip_prefix("netctl-"));
    let valid = digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_hexdigit()));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "invalid PoolID {:?}: not a pool of netctl's",
            shorten(id)
        )))
    }
}

/// At most 80 characters of what was sent, for the error.
fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ids_are_64_hex_digits() {
        assert!(docker_id("NetworkID", &"ab".repeat(32)).is_ok());
        for bad in [
            "",
            "a;b",
            "../../etc",
            &"AB".repeat(32),
            &"a".repeat(63),
            &"g".repeat(64),
        ] {
            let e = docker_id("NetworkID", bad).unwrap_err();
            assert!(
                e.message.contains("invalid NetworkID"),
                "{bad:?}: {}",
                e.message
            );
        }
    }

    #[test]
    fn sandbox_keys_and_pool_ids() {
        assert!(sandbox_key("/var/run/docker/netns/8cab03fb5b27").is_ok());
        for bad in ["", "netns/x", "/run/../etc/passwd", "/run/a\0b"] {
            assert!(sandbox_key(bad).is_err(), "{bad:?}");
        }
        assert!(pool_id("netctl-0123456789abcdef01234567").is_ok());
        assert!(pool_id("netctl-dhcp-0123456789abcdef01234567").is_ok());
        for bad in ["", "nope", "netctl-", "netctl-xyz", "default/10.0.0.0/8"] {
            assert!(pool_id(bad).is_err(), "{bad:?}");
        }
    }
}
