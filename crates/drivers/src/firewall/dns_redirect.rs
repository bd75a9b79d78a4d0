//! Inside a sandbox: queries to 127.0.0.11:53 go to the port the daemon's DNS server really
//! listens on, so that port 53 stays free for the container's own servers (a container that
//! runs dnsmasq or CoreDNS on 0.0.0.0:53 must be able to bind it), as Docker does. Replies
//! are translated back to port 53 by conntrack.

use std::io::Write;
use std::process::{Command, Stdio};

use super::libnftables;
use crate::DriverError;

/// The table in the sandbox's namespace.
pub const DNS_TABLE: &str = "netctl-dns";

/// The ruleset, replacing any earlier one (a restarted daemon listens on a new port):
///
/// ```text
/// nft 'add table ip netctl-dns; delete table ip netctl-dns; table ip netctl-dns {
///        chain output { type nat hook output priority -100; policy accept;
///          ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:PORT
///          ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:PORT } }'
/// ```
pub fn ruleset(address: std::net::Ipv4Addr, port: u16) -> String {
    format!(
        "add table ip {DNS_TABLE}\ndelete table ip {DNS_TABLE}\ntable ip {DNS_TABLE} {{\n\
         \tchain output {{\n\
         \t\ttype nat hook output priority -100; policy accept;\n\
         \t\tip daddr {address} udp dport 53 dnat to {address}:{port}\n\
         \t\tip daddr {address} tcp dport 53 dnat to {address}:{port}\n\
         \t}}\n}}\n"
    )
}

/// Installs the redirect in the namespace of the calling thread (which has entered the
/// sandbox's): libnftables with a context made here, else the `nft` binary started from here.
pub fn redirect_dns_here(address: std::net::Ipv4Addr, port: u16) -> Result<(), DriverError> {
    let rules = ruleset(address, port);
    if let Some(result) = libnftables::run_here(&rules) {
        return result.map(drop).map_err(DriverError::Nft);
    }
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DriverError::Nft(format!("cannot run nft: {e}")))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(rules.as_bytes())
        .map_err(|e| DriverError::Nft(format!("writing to nft: {e}")))?;
    let out = child
        .wait_with_output()
        .map_err(|e| DriverError::Nft(format!("waiting for nft: {e}")))?;
    if !out.status.success() {
        return Err(DriverError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_protocols_go_to_the_one_port() {
        let rules = ruleset("127.0.0.11".parse().unwrap(), 45123);
        assert!(rules.contains("udp dport 53 dnat to 127.0.0.11:45123"));
        assert!(rules.contains("tcp dport 53 dnat to 127.0.0.11:45123"));
        assert!(rules.starts_with("add table ip netctl-dns\ndelete table ip netctl-dns\n"));
    }
}
