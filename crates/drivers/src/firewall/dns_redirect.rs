//! Inside a sandbox: queries to 127.0.0.11:53 go to the port the daemon's DNS server really
//! listens on, so that port 53 stays free for the container's own servers (a container that
//! runs dnsmasq or CoreDNS on 0.0.0.0:53 must be able to bind it), as Docker does.
//!
//! Unlike Docker's DNAT, the ports are rewritten statelessly both ways, untracked: connection
//! tracking and NAT on every query cost about a fifth of the server's throughput.

use crate::DriverError;

/// The table in the sandbox's namespace.
pub const DNS_TABLE: &str = "netctl-dns";

/// The ruleset, replacing any earlier one (the port may change with a restart):
///
/// ```text
/// nft 'add table ip netctl-dns
///      add chain ip netctl-dns output { type filter hook output priority -300; policy accept; }
///      flush chain ip netctl-dns output
///      add rule ip netctl-dns output ip daddr 127.0.0.11 udp dport 53 notrack udp dport set PORT
///      add rule ip netctl-dns output ip saddr 127.0.0.11 udp sport PORT notrack udp sport set 53
///      … and the same for tcp'
/// ```
///
/// Queries and answers are both made in the sandbox (the server's socket lives there), so
/// the output hook sees both directions; priority -300 comes before connection tracking.
/// Added and flushed rather than deleted and made anew: deleting a base chain unregisters
/// its hook, and nft returns only after the kernel's grace period (about 10 ms), which every
/// new sandbox would pay. Flushing rules costs that only where there were rules to flush.
pub fn ruleset(address: std::net::Ipv4Addr, port: u16) -> String {
    let chain = format!("ip {DNS_TABLE} output");
    let mut rules = format!(
        "add table ip {DNS_TABLE}\n\
         add chain {chain} {{ type filter hook output priority -300; policy accept; }}\n\
         flush chain {chain}\n"
    );
    for proto in ["udp", "tcp"] {
        rules.push_str(&format!(
            "add rule {chain} ip daddr {address} {proto} dport 53 notrack {proto} dport set {port}\n\
             add rule {chain} ip saddr {address} {proto} sport {port} notrack {proto} sport set 53\n"
        ));
    }
    rules
}

/// Installs the redirect in the namespace of the calling thread (which has entered the
/// sandbox's).
pub fn redirect_dns_here(address: std::net::Ipv4Addr, port: u16) -> Result<(), DriverError> {
    Ok(netctl_kernel::nft::apply_text_here(&ruleset(
        address, port,
    ))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_protocols_go_to_the_one_port() {
        let rules = ruleset("127.0.0.11".parse().unwrap(), 45123);
        for proto in ["udp", "tcp"] {
            assert!(rules.contains(&format!(
                "ip daddr 127.0.0.11 {proto} dport 53 notrack {proto} dport set 45123"
            )));
            assert!(rules.contains(&format!(
                "ip saddr 127.0.0.11 {proto} sport 45123 notrack {proto} sport set 53"
            )));
        }
        assert!(rules.starts_with("add table ip netctl-dns\n"));
        assert!(
            !rules.contains("delete"),
            "no hook is unregistered on the way"
        );
    }
}
