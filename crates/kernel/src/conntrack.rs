//! Forgetting conntrack flows (`conntrack` from Debian's conntrack package).

use tokio::process::Command;

/// `conntrack -D -f ipv4|ipv6 -p udp --orig-port-dst PORT`: UDP flows to a port that is no
/// longer published would otherwise keep going to the old container until they time out.
pub async fn forget_udp(v6: bool, host_port: u16) {
    let family = if v6 { "ipv6" } else { "ipv4" };
    let result = Command::new("conntrack")
        .args([
            "-D",
            "-f",
            family,
            "-p",
            "udp",
            "--orig-port-dst",
            &host_port.to_string(),
        ])
        .output()
        .await;
    // Exit status 1 only says that no flow matched.
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot run conntrack to forget UDP flows (is the conntrack package installed?)");
    }
}

/// Which UDP flows [`forget_udp_here`] deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpFlows {
    /// `--reply-src ADDRESS`: those a DNAT sent to ADDRESS.
    To(std::net::IpAddr),
    /// `--orig-dst ADDRESS`: those sent to ADDRESS, wherever a DNAT took them.
    AddressedTo(std::net::IpAddr),
    /// `-f ipv4 --orig-port-dst PORT`: those sent to PORT (a published one).
    ToPort(u16),
}

/// `conntrack -D -f ipv4|ipv6 -p udp --reply-src|--orig-dst ADDRESS`, in the calling thread's
/// namespace (a thread that has entered a sandbox's): UDP flows a service's virtual IP sent
/// to a replica that has left it would otherwise keep going there until they time out. TCP
/// connections are left alone: established ones to a replica that left finish there.
pub fn forget_udp_here(flows: UdpFlows) {
    let (option, value, v6) = match flows {
        UdpFlows::To(a) => ("--reply-src", a.to_string(), a.is_ipv6()),
        UdpFlows::AddressedTo(a) => ("--orig-dst", a.to_string(), a.is_ipv6()),
        UdpFlows::ToPort(port) => ("--orig-port-dst", port.to_string(), false),
    };
    let family = if v6 { "ipv6" } else { "ipv4" };
    let result = std::process::Command::new("conntrack")
        .args(["-D", "-f", family, "-p", "udp", option, &value])
        .output();
    // Exit status 1 only says that no flow matched.
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot run conntrack to forget UDP flows (is the conntrack package installed?)");
    }
}
