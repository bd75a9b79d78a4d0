//! Inside a sandbox: a connection to a service's virtual IP goes to one of the service's
//! replicas, picked per connection. Docker balances virtual IPs with IPVS in each container's
//! namespace; this kernel has no IPVS, so it is a DNAT through an nft `numgen` map, as
//! kube-proxy's nftables mode does. Done in the client's own namespace, so the reply comes
//! straight back from the replica and is un-NATed where it was NATed, wherever the replica
//! runs.

use std::net::Ipv4Addr;

use crate::DriverError;

/// The table in the sandbox's namespace.
pub const SERVICE_TABLE: &str = "netctl-svc";

/// One service's virtual IP on a network the sandbox is on, and where it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualIp {
    pub vip: Ipv4Addr,
    pub replicas: Vec<Ipv4Addr>,
}

/// The ruleset, replacing the sandbox's earlier one at once:
///
/// ```text
/// nft 'add table ip netctl-svc; delete table ip netctl-svc; table ip netctl-svc {
///        chain output { type nat hook output priority -100; policy accept;
///          ip daddr VIP dnat to numgen random mod 2 map { 0 : R0, 1 : R1 } }
///        chain refuse { type filter hook output priority 0; policy accept;
///          ip daddr VIP_WITHOUT_REPLICAS reject } }'
/// ```
///
/// A virtual IP with no replica refuses connections at once, as IPVS does with no real
/// server. Without virtual IPs the table goes.
pub fn ruleset(vips: &[VirtualIp]) -> String {
    let mut rules = format!("add table ip {SERVICE_TABLE}\ndelete table ip {SERVICE_TABLE}\n");
    if vips.is_empty() {
        return rules;
    }
    rules.push_str(&format!(
        "table ip {SERVICE_TABLE} {{\n\
         \tchain output {{\n\
         \t\ttype nat hook output priority -100; policy accept;\n"
    ));
    for vip in vips.iter().filter(|v| !v.replicas.is_empty()) {
        let map: Vec<String> = vip
            .replicas
            .iter()
            .enumerate()
            .map(|(i, replica)| format!("{i} : {replica}"))
            .collect();
        rules.push_str(&format!(
            "\t\tip daddr {} dnat to numgen random mod {} map {{ {} }}\n",
            vip.vip,
            vip.replicas.len(),
            map.join(", ")
        ));
    }
    rules.push_str(
        "\t}\n\tchain refuse {\n\t\ttype filter hook output priority 0; policy accept;\n",
    );
    for vip in vips.iter().filter(|v| v.replicas.is_empty()) {
        rules.push_str(&format!("\t\tip daddr {} reject\n", vip.vip));
    }
    rules.push_str("\t}\n}\n");
    rules
}

/// Installs `vips` in the namespace of the calling thread (which has entered the
/// sandbox's).
pub fn apply_here(vips: &[VirtualIp]) -> Result<(), DriverError> {
    Ok(netctl_kernel::nft::apply_text_here(&ruleset(vips))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(vip: &str, replicas: &[&str]) -> VirtualIp {
        VirtualIp {
            vip: vip.parse().unwrap(),
            replicas: replicas.iter().map(|r| r.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn each_vip_picks_among_its_replicas_and_one_without_refuses() {
        let rules = ruleset(&[
            vip("10.0.0.100", &["10.0.0.2", "10.0.1.7", "10.0.0.9"]),
            vip("10.0.0.101", &[]),
        ]);
        assert!(rules.contains(
            "ip daddr 10.0.0.100 dnat to numgen random mod 3 map \
             { 0 : 10.0.0.2, 1 : 10.0.1.7, 2 : 10.0.0.9 }"
        ));
        assert!(rules.contains("ip daddr 10.0.0.101 reject"));
        assert!(!rules.contains("ip daddr 10.0.0.101 dnat"));
        assert!(rules.starts_with("add table ip netctl-svc\ndelete table ip netctl-svc\n"));
    }

    #[test]
    fn no_vip_removes_the_table() {
        assert_eq!(
            ruleset(&[]),
            "add table ip netctl-svc\ndelete table ip netctl-svc\n"
        );
    }
}
