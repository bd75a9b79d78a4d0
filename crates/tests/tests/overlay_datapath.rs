//! The overlay's data path on the real kernel: two hosts on a LAN, one overlay segment each
//! (namespace, bridge, VXLAN device), remote endpoints written as FDB and neighbour entries,
//! and sandboxes plugged into the segments' bridges.

use std::path::{Path, PathBuf};

use netctl_drivers::overlay::{mtu_over, DataPath, Remote, Segment, BRIDGE, DEFAULT_VXLAN_PORT};
use netctl_kernel::Netlink;
use netctl_netns_fixtures::{command_in, in_netns, Host, Lan};

const VNI: u32 = 4242;

/// A LAN host with the overlay's namespaces under its scratch directory.
struct Node {
    host: Host,
    address: String,
}

impl Node {
    fn new(lan: &Lan, address: &str, mtu: u32) -> Self {
        let host = Host::new();
        lan.plug_with_mtu(&host, address, mtu);
        Self {
            host,
            address: address.to_string(),
        }
    }

    fn overlay_dir(&self) -> PathBuf {
        self.host.dir().join("overlay")
    }

    /// Runs `body` with this node's data path, in its namespace.
    fn data_path<T: Send + 'static, F>(
        &self,
        body: impl FnOnce(DataPath) -> F + Send + 'static,
    ) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let dir = self.overlay_dir();
        in_netns(self.host.netns(), move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let host = Netlink::connect().expect("netlink");
                body(DataPath::new(host, dir)).await
            })
        })
    }

    fn segment(&self, mtu: u32) -> Segment {
        Segment {
            vni: VNI,
            mtu,
            gateways: vec!["10.200.0.1/24".parse().unwrap()],
            local: self.address.parse().unwrap(),
            port: DEFAULT_VXLAN_PORT,
        }
    }

    fn segment_ns(&self) -> PathBuf {
        self.overlay_dir().join(format!("ov-{VNI}"))
    }

    fn links(&self) -> String {
        self.host.ip(&["-d", "link", "show"]).expect_ok()
    }
}

/// A sandbox: a namespace with `eth0` whose other end is a port of the segment's bridge.
fn plug_sandbox(segment_ns: &Path, sandbox: &Host, mac: &str, address: &str, mtu: u32) {
    let ip = |args: &[&str]| {
        let out = command_in(segment_ns, "ip").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mtu = mtu.to_string();
    ip(&[
        "link",
        "add",
        "ve0",
        "mtu",
        &mtu,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "mtu",
        &mtu,
        "address",
        mac,
        "netns",
        &sandbox.netns_path().to_string_lossy(),
    ]);
    ip(&["link", "set", "ve0", "master", BRIDGE, "up"]);
    let cidr = format!("{address}/24");
    sandbox
        .ip(&["addr", "add", &cidr, "dev", "eth0"])
        .expect_ok();
    sandbox.ip(&["link", "set", "eth0", "up"]).expect_ok();
    sandbox
        .ip(&["route", "add", "default", "via", "10.200.0.1"])
        .expect_ok();
}

fn remote(mac: [u8; 6], address: &str, vtep: &str) -> Remote {
    Remote {
        mac,
        addresses: vec![address.parse().unwrap()],
        vtep: vtep.parse().unwrap(),
    }
}

const MAC_A: [u8; 6] = [0x02, 0x42, 0x0a, 0xc8, 0x00, 0x02];
const MAC_B: [u8; 6] = [0x02, 0x42, 0x0a, 0xc8, 0x00, 0x03];

/// Two nodes on a 1400-byte underlay, sandbox a on the first and b on the second.
struct TwoNodes {
    a: Node,
    b: Node,
    sa: Host,
    sb: Host,
    mtu: u32,
    _lan: Lan,
}

impl TwoNodes {
    fn new() -> Self {
        let lan = Lan::new();
        let underlay_mtu = 1400;
        let (a, b) = (
            Node::new(&lan, "203.0.113.11", underlay_mtu),
            Node::new(&lan, "203.0.113.12", underlay_mtu),
        );
        let mtu = mtu_over(underlay_mtu);
        for (node, peer_vtep, peer) in [
            (
                &a,
                "203.0.113.12",
                remote(MAC_B, "10.200.0.3", "203.0.113.12"),
            ),
            (
                &b,
                "203.0.113.11",
                remote(MAC_A, "10.200.0.2", "203.0.113.11"),
            ),
        ] {
            let segment = node.segment(mtu);
            let vtep = peer_vtep.parse().unwrap();
            node.data_path(move |dp| async move {
                let ns = dp.ensure(&segment).await.expect("segment");
                // Twice: every call is idempotent.
                let ns2 = dp.ensure(&segment).await.expect("segment again");
                drop(ns2);
                dp.add_remote(&ns, &peer).await.expect("remote");
                dp.add_remote(&ns, &peer).await.expect("remote again");
                dp.add_flood(&ns, vtep).await.expect("flood");
                dp.add_flood(&ns, vtep).await.expect("flood again");
            });
        }
        let (sa, sb) = (Host::new(), Host::new());
        plug_sandbox(&a.segment_ns(), &sa, "02:42:0a:c8:00:02", "10.200.0.2", mtu);
        plug_sandbox(&b.segment_ns(), &sb, "02:42:0a:c8:00:03", "10.200.0.3", mtu);
        Self {
            a,
            b,
            sa,
            sb,
            mtu,
            _lan: lan,
        }
    }
}

#[test]
fn sandboxes_on_two_nodes_reach_each_other_and_arp_is_answered_locally() {
    let nodes = TwoNodes::new();
    nodes
        .sa
        .exec(&["ping", "-c1", "-W2", "10.200.0.3"])
        .expect_ok();
    nodes
        .sb
        .exec(&["ping", "-c1", "-W2", "10.200.0.2"])
        .expect_ok();
    // The gateway exists on every node's bridge.
    nodes
        .sb
        .exec(&["ping", "-c1", "-W2", "10.200.0.1"])
        .expect_ok();
    // b's address was resolved to b's MAC by a's own VXLAN device.
    let neigh = nodes.sa.ip(&["neigh", "show", "10.200.0.3"]).expect_ok();
    assert!(neigh.contains("02:42:0a:c8:00:03"), "{neigh}");
    // The overlay stays out of the node's own routing.
    let routes = nodes.a.host.ip(&["route", "show"]).expect_ok();
    assert!(!routes.contains("10.200.0."), "{routes}");
    let vx = nodes.a.links();
    assert!(
        !vx.contains("vxlan"),
        "the VXLAN device is in the segment's namespace: {vx}"
    );
}

#[test]
fn broadcast_reaches_the_other_node_through_head_end_replication_only() {
    let nodes = TwoNodes::new();
    // a's sandbox answers broadcast pings (kernels ignore them by default).
    nodes
        .sa
        .exec(&["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_broadcasts=0"])
        .expect_ok();
    // A broadcast from b crosses to a only through b's all-zero FDB entry for a's VTEP
    // (ARP is no test of it: the VXLAN device answers ARP from its neighbour entries and
    // drops what it cannot answer, as Docker's overlay does).
    let ping = nodes
        .sb
        .exec(&["ping", "-b", "-c1", "-W2", "10.200.0.255"])
        .expect_ok();
    assert!(ping.contains("from 10.200.0.2"), "{ping}");
    nodes.b.data_path(|dp| async move {
        let ns = dp.open(VNI).await.unwrap().expect("b's segment");
        dp.remove_flood(&ns, "203.0.113.11".parse().unwrap())
            .await
            .unwrap();
    });
    nodes
        .sb
        .exec(&["ping", "-b", "-c1", "-W1", "10.200.0.255"])
        .expect_err();
    // Unicast to a known endpoint needs no flooding.
    nodes
        .sb
        .exec(&["ping", "-c1", "-W2", "10.200.0.2"])
        .expect_ok();
}

#[test]
fn the_overlay_mtu_is_the_underlays_minus_50_and_a_full_size_packet_crosses() {
    let nodes = TwoNodes::new();
    assert_eq!(nodes.mtu, 1350);
    let fits = (nodes.mtu - 28).to_string();
    let too_big = (nodes.mtu - 27).to_string();
    nodes
        .sa
        .exec(&["ping", "-c1", "-W2", "-M", "do", "-s", &fits, "10.200.0.3"])
        .expect_ok();
    nodes
        .sa
        .exec(&[
            "ping",
            "-c1",
            "-W2",
            "-M",
            "do",
            "-s",
            &too_big,
            "10.200.0.3",
        ])
        .expect_err();
}

#[test]
fn a_removed_remote_is_unreachable_and_a_removed_segment_leaves_nothing() {
    let nodes = TwoNodes::new();
    nodes
        .sa
        .exec(&["ping", "-c1", "-W2", "10.200.0.3"])
        .expect_ok();
    nodes.a.data_path(|dp| async move {
        let ns = dp.open(VNI).await.unwrap().expect("a's segment");
        let b = remote(MAC_B, "10.200.0.3", "203.0.113.12");
        dp.remove_remote(&ns, &b).await.unwrap();
        dp.remove_flood(&ns, b.vtep).await.unwrap();
        let vx = ns
            .netlink()
            .link_by_name("vx0")
            .await
            .unwrap()
            .unwrap()
            .index;
        assert!(ns.netlink().fdb_entries(vx).await.unwrap().is_empty());
        assert!(ns
            .netlink()
            .permanent_neighbours(vx)
            .await
            .unwrap()
            .is_empty());
    });
    nodes.sa.exec(&["ip", "neigh", "flush", "all"]).expect_ok();
    nodes
        .sa
        .exec(&["ping", "-c1", "-W1", "10.200.0.3"])
        .expect_err();
    let before = nodes.a.links();
    nodes.a.data_path(|dp| async move {
        dp.remove(VNI).await.unwrap();
        dp.remove(VNI).await.unwrap();
        assert!(dp.open(VNI).await.unwrap().is_none());
    });
    assert!(!nodes.a.segment_ns().exists());
    assert_eq!(
        before,
        nodes.a.links(),
        "the node's own links are untouched"
    );
    // The sandbox's veth dies with the segment's namespace, which the kernel tears down
    // in the background.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while nodes.sa.ip(&["link", "show", "eth0"]).ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "eth0 outlived its peer"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
