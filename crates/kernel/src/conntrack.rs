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
