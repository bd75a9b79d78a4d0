//! Object ids: 64 hex digits, as Docker's.

pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the kernel's random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// Docker's rule for object names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 128
}

/// A name DNS can carry, as the embedded DNS server serves sandbox names, hostnames and
/// aliases: dot-separated labels of letters, digits, `-` and `_` (not first or last a
/// `-`), 1 to 63 characters each, 253 in all.
pub fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// How [`valid_dns_name`] is said in errors.
pub const DNS_NAME_RULE: &str = "dot-separated labels of letters, digits, '-' and '_', 1 to 63 characters each, not starting or ending with '-'";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_hex() {
        let a = new_id();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_id());
    }

    #[test]
    fn names_follow_docker() {
        assert!(valid_name("web"));
        assert!(valid_name("a.b_c-1"));
        assert!(!valid_name(""));
        assert!(!valid_name("-web"));
        assert!(!valid_name("we b"));
        assert!(!valid_name("a/b"));
    }

    #[test]
    fn dns_names_are_labels_dns_can_carry() {
        assert!(valid_dns_name("web"));
        assert!(valid_dns_name("db.corp-1.example"));
        assert!(valid_dns_name("my_app_1"));
        assert!(!valid_dns_name(""));
        assert!(!valid_dns_name("a..b"));
        assert!(!valid_dns_name("-web"));
        assert!(!valid_dns_name("web-"));
        assert!(!valid_dns_name("we b"));
        assert!(!valid_dns_name(&"a".repeat(64)));
        assert!(valid_dns_name(&"a".repeat(63)));
    }
}
