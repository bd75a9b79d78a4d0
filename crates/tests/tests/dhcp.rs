//! The DHCP IPAM: a bridge network on the test host's `eth1` (`-o parent=eth1 --ipam-driver
//! dhcp`), whose other end is a LAN namespace with a real DHCP server (dnsmasq). The daemon
//! leases, renews, confirms after a restart and releases each endpoint's addresses.

use std::time::{Duration, Instant};

use netctl_netns_fixtures::{Dnsmasq, Dockerd, Host, Kea, KeaFamily};
use tests::eventually;

/// The LAN's server: 192.0.2.1 on `srv0`, whose other end is the daemon host's `eth1`.
struct Lan {
    server: Host,
    dhcp: Option<Dnsmasq>,
    options: Vec<String>,
}

/// What the LAN's server hands out, as dnsmasq options.
fn server_options(lease: &str, range_end: u8) -> Vec<String> {
    vec![
        format!("--dhcp-range=192.0.2.100,192.0.2.{range_end},255.255.255.0,{lease}"),
        "--dhcp-option=option:router,192.0.2.1".into(),
        "--dhcp-option=option:dns-server,192.0.2.1".into(),
        "--dhcp-option=option:domain-search,lan.example".into(),
        "--dhcp-option=option:mtu,1400".into(),
        // An answer only this server gives: a sandbox that resolves it forwards to the
        // DNS server its lease named.
        "--address=/probe.lan.example/192.0.2.99".into(),
        "--dhcp-authoritative".into(),
        "--log-dhcp".into(),
        "--no-ping".into(),
    ]
}

/// Kea's DHCPv4 settings for the LAN: leases of `valid` seconds, renewed at `renew` and
/// rebound at `rebind`.
fn kea_v4(valid: u32, renew: u32, rebind: u32) -> String {
    format!(
        r#""valid-lifetime": {valid}, "renew-timer": {renew}, "rebind-timer": {rebind},
           "authoritative": true,
           "subnet4": [{{"id": 1, "subnet": "192.0.2.0/24",
                         "pools": [{{"pool": "192.0.2.100 - 192.0.2.150"}}],
                         "option-data": [
                           {{"name": "routers", "data": "192.0.2.1"}},
                           {{"name": "domain-name-servers", "data": "192.0.2.1"}},
                           {{"name": "domain-search", "data": "lan.example"}},
                           {{"name": "interface-mtu", "data": "1400"}}]}}]"#
    )
}

impl Lan {
    /// The LAN without a server yet.
    fn bare(host: &Host) -> Self {
        let mut lan = Self::new_with(host, None);
        lan.dhcp = None;
        lan
    }

    fn new(host: &Host, lease: &str, range_end: u8) -> Self {
        Self::new_with(host, Some(server_options(lease, range_end)))
    }

    /// The daemon host's `eth1` with 192.0.2.5/24 and a route of its own through the LAN's
    /// router, as a host's uplink would have.
    fn new_with(host: &Host, dnsmasq: Option<Vec<String>>) -> Self {
        Self::new_on(host, Host::new(), dnsmasq, |_| {})
    }

    /// As [`Lan::new_with`], on a server host prepared by `prepare` once its link is there.
    fn new_on(
        host: &Host,
        server: Host,
        dnsmasq: Option<Vec<String>>,
        prepare: impl FnOnce(&Host),
    ) -> Self {
        server
            .ip(&[
                "link",
                "add",
                "srv0",
                "type",
                "veth",
                "peer",
                "name",
                "eth1",
                "netns",
                host.netns(),
            ])
            .expect_ok();
        server
            .ip(&["addr", "add", "192.0.2.1/24", "dev", "srv0"])
            .expect_ok();
        prepare(&server);
        server.ip(&["link", "set", "srv0", "up"]).expect_ok();
        host.ip(&["addr", "add", "192.0.2.5/24", "dev", "eth1"])
            .expect_ok();
        host.ip(&["link", "set", "eth1", "up"]).expect_ok();
        host.ip(&["route", "add", "198.51.100.0/24", "via", "192.0.2.1"])
            .expect_ok();
        let mut lan = Self {
            server,
            dhcp: None,
            options: dnsmasq.clone().unwrap_or_default(),
        };
        if dnsmasq.is_some() {
            lan.start_server();
        }
        lan
    }

    fn start_server(&mut self) {
        let leases = self.server.dir().join("leases");
        let mut options = self.options.clone();
        options.push(format!("--dhcp-leasefile={}", leases.display()));
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        self.dhcp = Some(Dnsmasq::quiet(&self.server, "192.0.2.1", &options));
    }

    fn stop_server(&mut self) {
        self.dhcp = None;
    }

    fn kea(&self, settings: &str) -> Kea {
        Kea::start(&self.server, KeaFamily::V4, "srv0", settings)
    }

    /// dnsmasq's lease file: `EXPIRY MAC IP HOSTNAME CLIENT-ID` per line.
    fn leases(&self) -> String {
        std::fs::read_to_string(self.server.dir().join("leases")).unwrap_or_default()
    }

    fn log(&self) -> String {
        self.dhcp.as_ref().map(|d| d.queries()).unwrap_or_default()
    }
}

/// `ip -4 -o addr show dev IF` in a sandbox: its IPv4 address with prefix, if any.
fn address_in(host: &Host, sandbox: &str, ifname: &str) -> Option<String> {
    let out = host
        .sandbox_exec(sandbox, &["ip", "-4", "-o", "addr", "show", "dev", ifname])
        .expect_ok();
    out.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .map(str::to_string)
}

fn create_lan_network(host: &Host, extra: &[&str]) {
    let mut args = vec![
        "network",
        "create",
        "lan",
        "-o",
        "parent=eth1",
        "--ipam-driver",
        "dhcp",
    ];
    args.extend(extra);
    host.netctl(&args).expect_ok();
}

/// Every address Kea's lease file names.
fn leased_addresses(kea: &Kea) -> std::collections::BTreeSet<String> {
    kea.lease_lines()
        .iter()
        .filter_map(|l| l.split(',').next().map(str::to_string))
        .collect()
}

/// Lines of Kea's lease file for `address`.
fn lines_for(kea: &Kea, address: &str) -> usize {
    let prefix = format!("{address},");
    kea.lease_lines()
        .iter()
        .filter(|l| l.starts_with(&prefix))
        .count()
}

fn inspect(host: &Host, network: &str) -> serde_json::Value {
    let text = host
        .netctl(&["network", "inspect", network, "--format", "json"])
        .expect_ok();
    let value: serde_json::Value = serde_json::from_str(&text).expect("inspect's JSON");
    match value {
        serde_json::Value::Array(mut items) => items.remove(0),
        other => other,
    }
}

/// The host's own view of `eth1`: its addresses and the routes through it.
fn uplink(host: &Host) -> (String, String) {
    let addresses = host.ip(&["-o", "addr", "show", "dev", "eth1"]).expect_ok();
    // Without the index, which is the same, and link-local addresses, which are the link's.
    let addresses: Vec<String> = addresses
        .lines()
        .filter(|l| !l.contains("fe80"))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .collect();
    let routes = host.ip(&["route", "show", "dev", "eth1"]).expect_ok();
    (addresses.join("\n"), routes)
}

#[test]
fn a_sandbox_leases_its_address_and_settings_from_the_lan_and_gives_it_back() {
    let host = Host::with_daemon();
    let lan = Lan::new(&host, "2m", 150);
    let before = uplink(&host);
    host.netctl(&[
        "network",
        "create",
        "lan",
        "--driver",
        "bridge",
        "-o",
        "parent=eth1",
        "--ipam-driver",
        "dhcp",
    ])
    .expect_ok();
    // The bridge took the uplink over, its address and route with it: the host still
    // reaches the LAN.
    let bridge = inspect(&host, "lan")["Bridge"]
        .as_str()
        .unwrap()
        .to_string();
    let on_bridge = host.ip(&["-o", "addr", "show", "dev", &bridge]).expect_ok();
    assert!(on_bridge.contains("192.0.2.5/24"), "{on_bridge}");
    let routes = host.ip(&["route", "show", "dev", &bridge]).expect_ok();
    assert!(routes.contains("198.51.100.0/24 via 192.0.2.1"), "{routes}");
    assert!(host.exec(&["ping", "-c1", "-W2", "192.0.2.1"]).ok());

    let started = Instant::now();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "lan",
        "--hostname",
        "web",
    ])
    .expect_ok();
    eprintln!("sandbox create with a lease took {:?}", started.elapsed());
    let address = address_in(&host, "a", "eth0").expect("a leased address");
    assert!(
        address.starts_with("192.0.2.1") && address.ends_with("/24"),
        "{address}"
    );
    let ip = address.trim_end_matches("/24").to_string();
    let route = host
        .sandbox_exec("a", &["ip", "route", "show", "default"])
        .expect_ok();
    assert!(route.contains("via 192.0.2.1 dev eth0"), "{route}");
    let link = host
        .sandbox_exec("a", &["ip", "-o", "link", "show", "eth0"])
        .expect_ok();
    assert!(link.contains("mtu 1400"), "{link}");
    assert!(host.ping("a", "192.0.2.1"), "the LAN's router");
    // The lease's DNS server is the sandbox's upstream; its search list is the sandbox's.
    let resolved = host
        .sandbox_exec("a", &["nslookup", "-type=A", "probe.lan.example"])
        .expect_ok();
    assert!(resolved.contains("192.0.2.99"), "{resolved}");
    let resolv = std::fs::read_to_string(
        sandbox_inspect(&host, "a")["ResolvConfPath"]
            .as_str()
            .unwrap(),
    )
    .unwrap_or_default();
    assert!(resolv.contains("search lan.example"), "{resolv}");
    let settings = &sandbox_inspect(&host, "a")["NetworkSettings"]["Networks"]["lan"];
    assert_eq!(settings["Gateway"], "192.0.2.1", "{settings}");
    // The server knows the lease by the MAC, with the hostname sent.
    let leases = lan.leases();
    assert!(
        leases.contains(&ip) && leases.contains(" web "),
        "{leases}\n{}",
        lan.log()
    );
    // Inspect shows the lease; another sandbox resolves the name to the leased address.
    let net = inspect(&host, "lan");
    assert_eq!(net["IPAM"]["Driver"], "dhcp");
    let entry = net["Containers"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(entry["IPv4Address"], address.as_str());
    assert_eq!(entry["Leases"][0]["Server"], "192.0.2.1");
    assert!(entry["Leases"][0]["Expires"].as_str().is_some());
    host.netctl(&["sandbox", "create", "b", "--network", "lan"])
        .expect_ok();
    let found = host.sandbox_exec("b", &["nslookup", "web"]).expect_ok();
    assert!(found.contains(&ip), "{found}");
    assert!(host.ping("b", &ip));

    // Removed: the lease goes back to the server.
    host.netctl(&["sandbox", "rm", "a"]).expect_ok();
    eventually("the lease released", Duration::from_secs(5), || {
        !lan.leases().contains(&ip)
    });
    host.netctl(&["sandbox", "rm", "b"]).expect_ok();
    host.netctl(&["network", "rm", "lan"]).expect_ok();
    assert_eq!(uplink(&host), before, "eth1 as it was");
}

fn sandbox_inspect(host: &Host, name: &str) -> serde_json::Value {
    let text = host
        .netctl(&["sandbox", "inspect", name, "--format", "json"])
        .expect_ok();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    match value {
        serde_json::Value::Array(mut items) => items.remove(0),
        other => other,
    }
}

#[test]
fn short_leases_renew_rebind_expire_and_survive_a_restart() {
    let mut host = Host::with_daemon();
    let lan = Lan::bare(&host);
    let mut kea = lan.kea(&kea_v4(12, 3, 6));
    create_lan_network(&host, &[]);
    host.netctl(&["sandbox", "create", "a", "--network", "lan"])
        .expect_ok();
    let address = address_in(&host, "a", "eth0").expect("a leased address");
    let ip = address.trim_end_matches("/24").to_string();
    // Renewed at T1 (3 s): the server writes the lease again.
    let granted = lines_for(&kea, &ip);
    assert!(granted >= 1, "{:?}", kea.lease_lines());
    eventually("a renewal at T1", Duration::from_secs(8), || {
        lines_for(&kea, &ip) > granted
    });

    // kill -9 and a restart: the same lease confirmed (INIT-REBOOT), never a second one.
    host.kill_daemon();
    host.start_daemon();
    let confirmed = lines_for(&kea, &ip);
    eventually(
        "the lease confirmed after the restart",
        Duration::from_secs(5),
        || lines_for(&kea, &ip) > confirmed,
    );
    assert_eq!(
        address_in(&host, "a", "eth0").as_deref(),
        Some(address.as_str())
    );
    let addresses = leased_addresses(&kea);
    assert_eq!(addresses.len(), 1, "one lease only: {addresses:?}");
    // Kea saw the client confirm its address, and made only one offer all along.
    let log = kea.log();
    assert!(log.contains("DHCP4_INIT_REBOOT"), "{log}");
    assert_eq!(log.matches("DHCP4_LEASE_ADVERT").count(), 1, "{log}");

    // The server away past T2: the client rebinds, and keeps its address once it answers.
    eventually("a fresh renewal", Duration::from_secs(8), || {
        lines_for(&kea, &ip) > confirmed + 1
    });
    kea.stop();
    std::thread::sleep(Duration::from_secs(7));
    let before_rebind = lines_for(&kea, &ip);
    kea.resume();
    eventually("the lease rebound", Duration::from_secs(8), || {
        lines_for(&kea, &ip) > before_rebind
    });
    assert_eq!(
        address_in(&host, "a", "eth0").as_deref(),
        Some(address.as_str())
    );
    assert!(
        !host.daemon_log().contains("expired"),
        "{}",
        host.daemon_log()
    );

    // The server gone for good: the lease runs out and the address is withdrawn, loudly.
    kea.stop();
    eventually("the address withdrawn", Duration::from_secs(20), || {
        address_in(&host, "a", "eth0").is_none()
    });
    assert!(
        host.daemon_log().contains("expired"),
        "{}",
        host.daemon_log()
    );
    let entry = inspect(&host, "lan")["Containers"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .cloned()
        .unwrap();
    assert_eq!(entry["IPv4Address"], "");
    // It comes back: the client asks again and gets an address.
    kea.resume();
    eventually("a lease again", Duration::from_secs(40), || {
        address_in(&host, "a", "eth0").is_some()
    });
}

#[test]
fn a_refused_address_is_replaced_in_place_and_names_follow() {
    let host = Host::with_daemon();
    let mut options = server_options("2m", 150);
    // Renew after 2 s, rebind after 4 s: dnsmasq keeps leases for 2 minutes at least.
    options.push("--dhcp-option=option:T1,2".into());
    options.push("--dhcp-option=option:T2,4".into());
    let mut lan = Lan::new_with(&host, Some(options));
    create_lan_network(&host, &[]);
    host.netctl(&["sandbox", "create", "a", "--network", "lan"])
        .expect_ok();
    host.netctl(&["sandbox", "create", "b", "--network", "lan"])
        .expect_ok();
    let first = address_in(&host, "a", "eth0").expect("a lease");
    // The server forgets its leases and now hands out other addresses: the renewal is
    // refused (DHCPNAK), and the client asks anew.
    lan.stop_server();
    std::fs::remove_file(lan.server.dir().join("leases")).unwrap();
    for option in &mut lan.options {
        if option.starts_with("--dhcp-range=") {
            *option = "--dhcp-range=192.0.2.160,192.0.2.170,255.255.255.0,2m".into();
        }
    }
    lan.start_server();
    eventually(
        "a new address after the refusal",
        Duration::from_secs(15),
        || address_in(&host, "a", "eth0").is_some_and(|a| a.starts_with("192.0.2.16")),
    );
    let second = address_in(&host, "a", "eth0").unwrap();
    assert_ne!(first, second);
    let ip = second.trim_end_matches("/24");
    // The names change in the same transaction, just after the address is on the link:
    // a query at that moment may still get the old one.
    eventually(
        "the name follows the address",
        Duration::from_secs(5),
        || {
            host.sandbox_exec("b", &["nslookup", "-type=A", "a"])
                .stdout
                .contains(ip)
        },
    );
    let route = host
        .sandbox_exec("a", &["ip", "route", "show", "default"])
        .expect_ok();
    assert!(route.contains("via 192.0.2.1"), "{route}");
    assert!(
        host.daemon_log().contains("refused"),
        "{}",
        host.daemon_log()
    );
}

#[test]
fn with_no_server_the_attach_fails_within_its_bound_and_changes_nothing() {
    let mut host = Host::new();
    host.set_config(r#"{"dhcp-timeout": 3}"#);
    host.start_daemon();
    let _lan = Lan::bare(&host);
    create_lan_network(&host, &[]);
    let links_before = host.ip(&["-o", "link", "show"]).expect_ok().lines().count();
    let started = Instant::now();
    let err = host
        .netctl(&["sandbox", "create", "a", "--network", "lan"])
        .expect_err();
    let took = started.elapsed();
    assert!(
        err.contains("no DHCPv4 server answered on eth0 within 3 s"),
        "{err}"
    );
    assert!(took < Duration::from_secs(6), "bounded: {took:?}");
    assert!(!host.netctl(&["sandbox", "ls"]).expect_ok().contains(" a "));
    host.netctl(&["sandbox", "create", "b"]).expect_ok();
    let err = host
        .netctl(&["network", "connect", "lan", "b"])
        .expect_err();
    assert!(err.contains("no DHCPv4 server answered"), "{err}");
    let net = inspect(&host, "lan");
    assert_eq!(
        net["Containers"].as_object().map(|c| c.len()),
        Some(0),
        "{net}"
    );
    let links_after = host.ip(&["-o", "link", "show"]).expect_ok().lines().count();
    assert_eq!(links_before, links_after, "no interface left behind");
}

#[test]
fn an_exhausted_pool_fails_the_attach_with_the_server_s_answer() {
    let host = Host::with_daemon();
    let lan = Lan::new(&host, "2m", 101);
    create_lan_network(&host, &[]);
    for name in ["a", "b"] {
        host.netctl(&["sandbox", "create", name, "--network", "lan"])
            .expect_ok();
    }
    let err = host
        .netctl(&["sandbox", "create", "c", "--network", "lan"])
        .expect_err();
    assert!(err.contains("no DHCPv4 server answered"), "{err}");
    assert!(err.contains("no address to give"), "{err}");
    assert!(lan.log().contains("no address available"), "{}", lan.log());
}

#[test]
fn fifty_concurrent_attaches_all_lease_distinct_addresses() {
    let host = Host::with_daemon();
    let lan = Lan::new(&host, "2m", 200);
    create_lan_network(&host, &[]);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for i in 0..50 {
            let host = &host;
            scope.spawn(move || {
                host.netctl(&["sandbox", "create", &format!("s{i}"), "--network", "lan"])
                    .expect_ok();
            });
        }
    });
    eprintln!("50 concurrent attaches leased in {:?}", started.elapsed());
    let addresses: std::collections::BTreeSet<String> = (0..50)
        .map(|i| address_in(&host, &format!("s{i}"), "eth0").expect("leased"))
        .collect();
    assert_eq!(addresses.len(), 50, "distinct: {addresses:?}");
    let leases = lan.leases();
    for address in &addresses {
        assert!(leases.contains(address.trim_end_matches("/24")), "{leases}");
    }
}

#[test]
fn parents_and_settings_that_cannot_work_are_refused_and_change_nothing() {
    let host = Host::with_daemon();
    let _lan = Lan::bare(&host);
    let before = uplink(&host);
    let refused = |args: &[&str], expected: &str| {
        let mut full = vec!["network", "create"];
        full.extend(args);
        let err = host.netctl(&full).expect_err();
        assert!(err.contains(expected), "{args:?}: {err}");
        let list = host.netctl(&["network", "ls"]).expect_ok();
        assert!(!list.contains("bad"), "{args:?} left a network: {list}");
    };
    refused(
        &["bad", "-o", "parent=eth9"],
        "parent interface eth9 does not exist",
    );
    refused(&["bad", "-o", "parent=lo"], "is the loopback device");
    refused(
        &["bad", "-o", "parent=a/b"],
        "invalid parent interface \"a/b\"",
    );
    refused(
        &["bad", "--ipam-driver", "dhcp", "--subnet", "192.0.2.0/24"],
        "cannot be given with --ipam-driver dhcp",
    );
    refused(
        &["bad", "--ipam-driver", "carrier-pigeon"],
        "unknown IPAM driver \"carrier-pigeon\"",
    );
    refused(
        &["bad", "--ipam-driver", "dhcp", "--ipam-opt", "lease=1h"],
        "unknown IPAM option \"lease\"",
    );
    create_lan_network(&host, &[]);
    refused(
        &["bad", "-o", "parent=eth1"],
        "parent interface eth1 is already used by network lan",
    );
    let bridge = inspect(&host, "lan")["Bridge"]
        .as_str()
        .unwrap()
        .to_string();
    refused(&["bad", "-o", &format!("parent={bridge}")], "is a bridge");
    host.netctl(&["sandbox", "create", "s"]).expect_ok();
    for (flag, value, expected) in [
        ("--ip", "192.0.2.120", "come from its DHCP server"),
        ("-p", "8080:80", "ports cannot be published on network lan"),
    ] {
        let err = host
            .netctl(&["network", "connect", flag, value, "lan", "s"])
            .expect_err();
        assert!(err.contains(expected), "{err}");
    }
    host.netctl(&["network", "rm", "lan"]).expect_ok();
    assert_eq!(uplink(&host), before, "eth1 as it was");
}

#[test]
fn dhcpv6_leases_an_address_beside_the_v4_one_and_routes_by_router_advertisements() {
    let host = Host::with_daemon();
    let server = Host::new();
    server
        .exec(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"])
        .expect_ok();
    let mut options = server_options("2m", 150);
    options.extend([
        "--listen-address=2001:db8::1".to_string(),
        "--dhcp-range=2001:db8::100,2001:db8::1ff,64,2m".into(),
        "--dhcp-option=option6:dns-server,[2001:db8::1]".into(),
        "--enable-ra".into(),
        // dnsmasq advertises only on interfaces named as such (not found by address).
        "--interface=srv0".into(),
        // A router lifetime of its own: dnsmasq otherwise advertises none (not a default
        // router) when its host has no default route, as this LAN's has not.
        "--ra-param=srv0,5,600".into(),
    ]);
    let lan = Lan::new_on(&host, server, Some(options), |server| {
        server
            .ip(&["addr", "add", "2001:db8::1/64", "dev", "srv0"])
            .expect_ok();
    });
    create_lan_network(&host, &["--ipv6"]);
    host.netctl(&["sandbox", "create", "a", "--network", "lan"])
        .expect_ok();
    let v6 = host
        .sandbox_exec(
            "a",
            &[
                "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global",
            ],
        )
        .expect_ok();
    let address = v6
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .unwrap_or_else(|| panic!("no leased IPv6 address: {v6}\n{}", lan.log()))
        .to_string();
    assert!(address.starts_with("2001:db8::1"), "{address}");
    let ip = address.trim_end_matches("/128").to_string();
    assert!(
        address_in(&host, "a", "eth0").is_some(),
        "the IPv4 lease too"
    );
    // The default route comes from the router's advertisements, as on any IPv6 host.
    eventually(
        "a default route from an RA",
        Duration::from_secs(10),
        || {
            host.sandbox_exec("a", &["ip", "-6", "route", "show", "default"])
                .expect_ok()
                .contains("via fe80")
        },
    );
    eventually("the LAN's router over IPv6", Duration::from_secs(5), || {
        host.sandbox_exec("a", &["ping", "-6", "-c1", "-W1", "2001:db8::1"])
            .ok()
    });
    let entry = inspect(&host, "lan")["Containers"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .cloned()
        .unwrap();
    assert_eq!(entry["IPv6Address"], address.as_str());
    assert_eq!(entry["Leases"].as_array().map(Vec::len), Some(2), "{entry}");
    assert!(lan.leases().contains(&ip), "{}", lan.leases());
    host.netctl(&["sandbox", "rm", "a"]).expect_ok();
    eventually("the IPv6 lease released", Duration::from_secs(5), || {
        !lan.leases().contains(&ip)
    });
}

/// The sandbox's global IPv6 address on `ifname`, if any.
fn v6_address_in(host: &Host, sandbox: &str, ifname: &str) -> Option<String> {
    let out = host
        .sandbox_exec(
            sandbox,
            &[
                "ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "global",
            ],
        )
        .expect_ok();
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .map(str::to_string)
}

#[test]
fn dhcpv6_leases_renew_survive_a_restart_and_expire() {
    let mut host = Host::with_daemon();
    let server = Host::new();
    server
        .exec(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"])
        .expect_ok();
    let lan = Lan::new_on(&host, server, None, |server| {
        server
            .ip(&["addr", "add", "2001:db8::1/64", "dev", "srv0"])
            .expect_ok();
    });
    let _kea4 = lan.kea(&kea_v4(120, 60, 105));
    let mut kea6 = Kea::start(
        &lan.server,
        KeaFamily::V6,
        "srv0",
        r#""valid-lifetime": 12, "preferred-lifetime": 9, "renew-timer": 3,
           "rebind-timer": 6,
           "subnet6": [{"id": 1, "subnet": "2001:db8::/64", "interface": "srv0",
                        "pools": [{"pool": "2001:db8::100 - 2001:db8::1ff"}],
                        "option-data": [{"name": "dns-servers", "data": "2001:db8::1"}]}]"#,
    );
    create_lan_network(&host, &["--ipv6"]);
    host.netctl(&["sandbox", "create", "a", "--network", "lan"])
        .expect_ok();
    let address = v6_address_in(&host, "a", "eth0")
        .unwrap_or_else(|| panic!("no IPv6 lease:\n{}", kea6.log()));
    let ip = address.trim_end_matches("/128").to_string();
    let granted = lines_for(&kea6, &ip);
    eventually("a DHCPv6 renewal at T1", Duration::from_secs(8), || {
        lines_for(&kea6, &ip) > granted
    });
    host.kill_daemon();
    host.start_daemon();
    let confirmed = lines_for(&kea6, &ip);
    eventually(
        "the lease confirmed after the restart",
        Duration::from_secs(8),
        || lines_for(&kea6, &ip) > confirmed,
    );
    assert_eq!(
        v6_address_in(&host, "a", "eth0").as_deref(),
        Some(address.as_str())
    );
    let leased = leased_addresses(&kea6);
    assert_eq!(leased.len(), 1, "one lease only: {leased:?}");
    kea6.stop();
    eventually(
        "the IPv6 address withdrawn at expiry",
        Duration::from_secs(20),
        || v6_address_in(&host, "a", "eth0").is_none(),
    );
    assert!(
        address_in(&host, "a", "eth0").is_some(),
        "the IPv4 lease stays"
    );
}

/// `docker network create -d netctl --ipam-driver netctl --ipam-opt netctl.dhcp=true -o
/// parent=eth1 [EXTRA…] lan2`
fn docker_dhcp_network(dockerd: &Dockerd, extra: &[&str]) -> netctl_netns_fixtures::Output {
    let mut args = vec![
        "network",
        "create",
        "-d",
        "netctl",
        "--ipam-driver",
        "netctl",
        "--ipam-opt",
        "netctl.dhcp=true",
        "-o",
        "parent=eth1",
    ];
    args.extend(extra);
    args.push("lan2");
    dockerd.docker(&args)
}

/// A container on lan2: leased, routed through the LAN's router, renewed from inside, and
/// its lease given back when it goes.
fn docker_container_leases(host: &Host, dockerd: &Dockerd, kea: &Kea, name: &str) {
    let docker = |args: &[&str]| {
        let out = dockerd.docker(args);
        assert!(out.ok(), "docker {args:?}: {out:?}\n{}", host.daemon_log());
        out.stdout
    };
    let ipam = docker(&[
        "network",
        "inspect",
        "lan2",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}",
    ]);
    // The gateway shows where dockerd chose it (not when --subnet was given): the
    // container's default route below is the proof either way.
    assert!(
        ["192.0.2.0/24", "192.0.2.0/24 192.0.2.1"].contains(&ipam.trim()),
        "{ipam}"
    );
    docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "lan2",
        "busybox:local",
        "sleep",
        "3600",
    ]);
    let addr = docker(&["exec", name, "ip", "-4", "-o", "addr", "show", "eth0"]);
    let address = addr
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no address: {addr}"))
        .to_string();
    assert!(
        address.starts_with("192.0.2.1") && address.ends_with("/24"),
        "{address}"
    );
    let ip = address.trim_end_matches("/24").to_string();
    let route = docker(&["exec", name, "ip", "route"]);
    assert!(route.contains("default via 192.0.2.1"), "{route}");
    docker(&["exec", name, "ping", "-c1", "-W2", "192.0.2.1"]);
    // The server leased that address to the MAC the container's interface has.
    let mac = docker(&["exec", name, "cat", "/sys/class/net/eth0/address"]);
    let prefix = format!("{ip},{}", mac.trim());
    assert!(
        kea.lease_lines().iter().any(|l| l.starts_with(&prefix)),
        "{:?} {mac}\n{}",
        kea.lease_lines(),
        kea.log()
    );
    // Renewed from inside the container, from its address.
    let granted = lines_for(kea, &ip);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines_for(kea, &ip) <= granted {
        assert!(
            Instant::now() < deadline,
            "no renewal from the container:\n{}\n{}",
            host.daemon_log(),
            kea.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let released = kea.log().matches("DHCP4_RELEASE").count();
    docker(&["rm", "-f", name]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while kea.log().matches("DHCP4_RELEASE").count() <= released {
        assert!(
            Instant::now() < deadline,
            "the container's lease was not released:\n{}\n{}",
            host.daemon_log(),
            kea.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let release = kea.log();
    assert!(
        release
            .lines()
            .any(|l| l.contains("DHCP4_RELEASE") && l.contains(&ip)),
        "{release}"
    );
}

#[test]
fn docker_containers_lease_from_the_lan_through_netctl_s_ipam() {
    let host = Host::with_daemon();
    let dockerd = Dockerd::start(&host);
    dockerd.import_busybox();
    let lan = Lan::bare(&host);
    let kea = lan.kea(&kea_v4(30, 4, 20));
    let before = uplink(&host);
    // eth1 holds an address on the LAN: dockerd takes the LAN's subnet only when named.
    let refused = docker_dhcp_network(&dockerd, &[]);
    assert!(!refused.ok());
    assert!(
        refused.stderr.contains("add --subnet 192.0.2.0/24"),
        "{refused:?}"
    );
    let wrong = docker_dhcp_network(&dockerd, &["--subnet", "198.51.100.0/24"]);
    assert!(
        wrong
            .stderr
            .contains("serves 192.0.2.0/24, not 198.51.100.0/24"),
        "{wrong:?}"
    );
    let named = docker_dhcp_network(&dockerd, &["--subnet", "192.0.2.0/24"]);
    assert!(named.ok(), "{named:?}\n{}", host.daemon_log());
    docker_container_leases(&host, &dockerd, &kea, "c1");
    assert!(dockerd.docker(&["network", "rm", "lan2"]).ok());
    assert_eq!(uplink(&host), before, "eth1 as it was");

    // An uplink that is only the LAN's (no address of the host's on it): as spelled.
    host.ip(&["addr", "flush", "dev", "eth1"]).expect_ok();
    let plain = docker_dhcp_network(&dockerd, &[]);
    assert!(plain.ok(), "{plain:?}\n{}", host.daemon_log());
    docker_container_leases(&host, &dockerd, &kea, "c2");
    assert!(dockerd.docker(&["network", "rm", "lan2"]).ok());
}

#[test]
fn a_cni_container_on_a_dhcp_network_gets_its_lease_in_the_result() {
    use netctl_netns_fixtures::cni::{exec_plugin, Call, Container};
    let host = Host::with_daemon();
    let lan = Lan::new(&host, "2m", 150);
    create_lan_network(&host, &[]);
    let container = Container::new();
    let netns = container.netns_path().display().to_string();
    let conf = serde_json::json!({
        "cniVersion": "1.0.0", "name": "lan", "type": "netctl", "socket": host.socket(),
    });
    let call = |command| Call {
        command,
        container_id: &container.id,
        netns: &netns,
        ifname: "eth0",
        args: "",
    };
    let plugin = netctl_netns_fixtures::netctl_bin();
    let added = exec_plugin(&plugin, &call("ADD"), &conf);
    assert!(
        added.output.ok(),
        "{:?}\n{}",
        added.output,
        host.daemon_log()
    );
    let address = added.json["ips"][0]["address"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        address.starts_with("192.0.2.1") && address.ends_with("/24"),
        "{}",
        added.json
    );
    assert_eq!(
        added.json["ips"][0]["gateway"], "192.0.2.1",
        "{}",
        added.json
    );
    let routes = added.json["routes"].as_array().cloned().unwrap_or_default();
    assert!(
        routes
            .iter()
            .any(|r| r["dst"] == "0.0.0.0/0" && r["gw"] == "192.0.2.1"),
        "{}",
        added.json
    );
    let inside = container
        .ip(&["-4", "-o", "addr", "show", "dev", "eth0"])
        .expect_ok();
    assert!(inside.contains(&address), "{inside}");
    let ip = address.trim_end_matches("/24").to_string();
    assert!(lan.leases().contains(&ip), "{}", lan.leases());
    let deleted = exec_plugin(&plugin, &call("DEL"), &conf);
    assert!(deleted.output.ok(), "{:?}", deleted.output);
    eventually(
        "the container's lease released",
        Duration::from_secs(5),
        || !lan.leases().contains(&ip),
    );
}
