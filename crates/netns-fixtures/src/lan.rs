//! A shared underlay: a bridge in a "switch" namespace of its own, and a veth from it to
//! each host that plugs in, so any number of hosts (and etcd members) reach each other on one
//! documentation range (203.0.113.0/24).

use crate::Host;

/// The switch. Hosts' links die with their namespaces, and the bridge with the switch's.
pub struct Lan {
    switch: Host,
    next_port: std::cell::Cell<u32>,
}

/// The interface a host plugs into the LAN with.
pub const LAN_INTERFACE: &str = "ul0";

impl Lan {
    pub fn new() -> Self {
        let switch = Host::new();
        switch
            .ip(&["link", "add", "sw", "type", "bridge"])
            .expect_ok();
        switch.ip(&["link", "set", "sw", "up"]).expect_ok();
        Self {
            switch,
            next_port: std::cell::Cell::new(0),
        }
    }

    /// Plugs `host` in as `ul0` with `address`/24 (say `203.0.113.11`), MTU 1500.
    pub fn plug(&self, host: &Host, address: &str) {
        self.plug_with_mtu(host, address, 1500);
    }

    /// As [`Lan::plug`], with the link's MTU (the switch side takes it too).
    pub fn plug_with_mtu(&self, host: &Host, address: &str, mtu: u32) {
        let port = format!("p{}", self.next_port.get());
        self.next_port.set(self.next_port.get() + 1);
        let mtu = mtu.to_string();
        self.switch
            .ip(&[
                "link",
                "add",
                &port,
                "mtu",
                &mtu,
                "type",
                "veth",
                "peer",
                "name",
                LAN_INTERFACE,
                "mtu",
                &mtu,
                "netns",
                host.netns(),
            ])
            .expect_ok();
        self.switch
            .ip(&["link", "set", &port, "master", "sw", "up"])
            .expect_ok();
        let no_dad = format!("net.ipv6.conf.{LAN_INTERFACE}.accept_dad=0");
        host.exec(&["sysctl", "-qw", &no_dad]).expect_ok();
        let cidr = format!("{address}/24");
        host.ip(&["addr", "add", &cidr, "dev", LAN_INTERFACE])
            .expect_ok();
        host.ip(&["link", "set", LAN_INTERFACE, "up"]).expect_ok();
    }

    /// Cuts `host` off the LAN (its link down), as a pulled cable or a dead machine would.
    pub fn unplug(&self, host: &Host) {
        host.ip(&["link", "set", LAN_INTERFACE, "down"]).expect_ok();
    }

    /// Plugs it back after [`Lan::unplug`].
    pub fn replug(&self, host: &Host) {
        host.ip(&["link", "set", LAN_INTERFACE, "up"]).expect_ok();
    }
}

impl Default for Lan {
    fn default() -> Self {
        Self::new()
    }
}
