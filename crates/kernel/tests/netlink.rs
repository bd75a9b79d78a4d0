//! The netlink calls against the real kernel, inside namespaces made by the test (root only).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use netctl_kernel::netlink::{FdbEntry, Neighbour, Request, VethEnds, VxlanSpec};
use netctl_kernel::Netns;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace of the test's own, bind-mounted under /tmp; removed on drop, pass or fail.
struct Scratch {
    netns: Netns,
    dir: PathBuf,
}

impl Scratch {
    async fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "netctl-kernel-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let netns = Netns::create(&dir.join("ns")).await.expect("namespace");
        Self { netns, dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = netctl_kernel::netns::remove(self.netns.path());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_veth_born_in_another_namespace_is_echoed_with_both_indexes() {
    runtime().block_on(async {
        let host = Scratch::new().await;
        let sandbox = Scratch::new().await;
        let nl = host.netns.netlink();
        let bridge = nl
            .add_bridge("tbr0", [2, 0x6e, 0, 0, 0, 1], 1400, false)
            .await
            .unwrap();
        nl.set_up(bridge).await.unwrap();
        let made = nl
            .add_veth(&VethEnds {
                name: "tv0",
                peer: "eth7",
                peer_netns: sandbox.netns.raw_fd(),
                peer_mac: [2, 0x42, 10, 0, 0, 2],
                mtu: 1400,
                controller: bridge,
            })
            .await
            .unwrap();
        assert_eq!(made.name, "tv0");
        // The echo is made before the link is enslaved: ask for the controller.
        let near = nl.link_by_name("tv0").await.unwrap().unwrap();
        assert_eq!((near.index, near.controller), (made.index, Some(bridge)));
        let peer = sandbox
            .netns
            .netlink()
            .link_by_name("eth7")
            .await
            .unwrap()
            .expect("peer in the sandbox");
        assert_eq!(made.peer_index, Some(peer.index));
        assert_eq!(peer.mac, Some(vec![2, 0x42, 10, 0, 0, 2]));
        assert_eq!(peer.mtu, Some(1400));

        // A second one by the same name is refused as existing.
        let again = nl
            .add_veth(&VethEnds {
                name: "tv0",
                peer: "eth8",
                peer_netns: sandbox.netns.raw_fd(),
                peer_mac: [2, 0x42, 10, 0, 0, 3],
                mtu: 1400,
                controller: bridge,
            })
            .await
            .unwrap_err();
        assert!(again.already_exists(), "{again}");

        nl.set_port_up_with_hairpin("tv0").await.unwrap();
        assert!(nl.link_by_name("tv0").await.unwrap().unwrap().up);
        assert!(nl.delete_link_by_name("tv0").await.unwrap());
        assert!(!nl.delete_link_by_name("tv0").await.unwrap());
        assert!(sandbox
            .netns
            .netlink()
            .link_by_name("eth7")
            .await
            .unwrap()
            .is_none());
    });
}

#[test]
fn vxlan_fdb_and_neighbour_entries_are_written_and_read_back() {
    runtime().block_on(async {
        let host = Scratch::new().await;
        let nl = host.netns.netlink();
        let local: IpAddr = "192.0.2.11".parse().unwrap();
        let vxlan = nl
            .add_vxlan(&VxlanSpec {
                name: "tvx0",
                vni: 4242,
                local,
                port: 4789,
                underlay: None,
                mtu: 1450,
            })
            .await
            .unwrap();
        let link = nl.link_by_name("tvx0").await.unwrap().unwrap();
        assert_eq!((link.index, link.vxlan), (vxlan, Some((4242, 4789))));
        assert_eq!(nl.link_by_name("nothere").await.unwrap(), None);

        // Flooding to two remotes: the same all-zero MAC twice (APPEND, not EXCL).
        let flood = |remote: &str| FdbEntry {
            mac: [0; 6],
            remote: remote.parse().unwrap(),
        };
        let endpoint = FdbEntry {
            mac: [2, 0x42, 10, 200, 0, 3],
            remote: "192.0.2.12".parse().unwrap(),
        };
        for entry in [flood("192.0.2.12"), flood("192.0.2.13"), endpoint.clone()] {
            nl.append_fdb(vxlan, &entry).await.unwrap();
        }
        // Appending what is there changes nothing and is no error.
        nl.append_fdb(vxlan, &endpoint).await.unwrap();
        let mut seen = nl.fdb_entries(vxlan).await.unwrap();
        seen.sort_by_key(|e| (e.mac, e.remote));
        assert_eq!(
            seen,
            vec![flood("192.0.2.12"), flood("192.0.2.13"), endpoint.clone()]
        );
        nl.delete_fdb(vxlan, &flood("192.0.2.13")).await.unwrap();
        nl.delete_fdb(vxlan, &flood("192.0.2.13")).await.unwrap();
        assert_eq!(nl.fdb_entries(vxlan).await.unwrap().len(), 2);

        let neighbour = Neighbour {
            address: "10.200.0.3".parse().unwrap(),
            mac: endpoint.mac,
        };
        nl.replace_neighbour(vxlan, &neighbour).await.unwrap();
        nl.replace_neighbour(vxlan, &neighbour).await.unwrap();
        let v6 = Neighbour {
            address: "fd00:200::3".parse().unwrap(),
            mac: endpoint.mac,
        };
        nl.replace_neighbour(vxlan, &v6).await.unwrap();
        let mut seen = nl.permanent_neighbours(vxlan).await.unwrap();
        seen.sort_by_key(|n| n.address);
        assert_eq!(seen, vec![neighbour.clone(), v6.clone()]);
        assert!(nl.delete_neighbour(vxlan, neighbour.address).await.unwrap());
        assert!(!nl.delete_neighbour(vxlan, neighbour.address).await.unwrap());
        assert_eq!(nl.permanent_neighbours(vxlan).await.unwrap(), vec![v6]);
    });
}

#[test]
fn a_batch_is_handled_in_order_and_its_failure_named() {
    runtime().block_on(async {
        let host = Scratch::new().await;
        let nl = host.netns.netlink();
        let bridge = nl
            .add_bridge("tbr1", [2, 0x6e, 0, 0, 0, 2], 1500, false)
            .await
            .unwrap();
        let e = nl
            .run_all(vec![
                Request::link_up(bridge),
                Request::link_up(999_999),
                Request::link_mtu(bridge, 1400),
                Request::replace_address(bridge, "192.0.2.1/24".parse().unwrap()),
            ])
            .await
            .unwrap_err();
        // Named by the kind of request it answered.
        assert!(e.to_string().contains("set link 999999 up"), "{e}");
        assert!(!e.to_string().contains("add address"), "{e}");
        let link = nl.link_by_name("tbr1").await.unwrap().unwrap();
        assert!(link.up, "the first request was done");
        assert_eq!(link.mtu, Some(1400), "and the one after the failure too");
        nl.run_all(vec![]).await.unwrap();
    });
}
