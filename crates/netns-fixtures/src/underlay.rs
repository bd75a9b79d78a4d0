//! A veth link joining two hosts, with an address on each end.

use crate::{run, Host};

/// `ip link add A netns HOST_A type veth peer name B netns HOST_B`, addresses
/// `PREFIX.1/24` and `PREFIX.2/24` (a documentation range such as 192.0.2).
pub struct Underlay {
    pub a_address: String,
    pub b_address: String,
}

impl Underlay {
    /// Joins `a` and `b`; the link dies with either namespace, so there is nothing to drop.
    pub fn join(a: &Host, b: &Host, prefix: &str) -> Self {
        let (ifa, ifb) = (format!("ul-{}", b.tag()), format!("ul-{}", a.tag()));
        let out = run(
            "ip",
            &[
                "link",
                "add",
                &ifa,
                "netns",
                a.netns(),
                "type",
                "veth",
                "peer",
                "name",
                &ifb,
                "netns",
                b.netns(),
            ],
        );
        assert!(out.ok(), "underlay: {}", out.stderr);
        let (a_address, b_address) = (format!("{prefix}.1"), format!("{prefix}.2"));
        for (host, ifname, address) in [(a, &ifa, &a_address), (b, &ifb, &b_address)] {
            // A fresh link's IPv6 link-local address is tentative for a second, and until
            // then the host cannot resolve neighbours for traffic it forwards: skip DAD.
            let no_dad = format!("net.ipv6.conf.{ifname}.accept_dad=0");
            host.exec(&["sysctl", "-qw", &no_dad]).expect_ok();
            let cidr = format!("{address}/24");
            host.ip(&["addr", "add", &cidr, "dev", ifname]).expect_ok();
            host.ip(&["link", "set", ifname, "up"]).expect_ok();
        }
        Self {
            a_address,
            b_address,
        }
    }
}
