//! Who is who on each network: the names a sandbox can resolve locally.
//!
//! A sandbox sees the names of the endpoints on the networks it is attached to, and nothing
//! else. Changes are applied in place under a write lock held for a few map operations, so
//! the next query sees them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use crate::locks::ReadWrite;
use crate::settings::Resolution;

/// One endpoint's names and addresses on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointNames {
    pub endpoint_id: String,
    pub network_id: String,
    pub network_name: String,
    /// An internal network's sandboxes never forward.
    pub internal: bool,
    pub sandbox_id: String,
    /// Sandbox name first (the PTR answer), then hostname and aliases.
    pub names: Vec<String>,
    pub addresses: Vec<IpAddr>,
}

/// A service's names on one network, as Docker gives them: `NAME` (and `NAME.NETWORK`) is its
/// virtual IP, `tasks.NAME` its replicas' addresses. Only the virtual IP gets a reverse
/// entry: a replica's is its sandbox's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNames {
    pub service_id: String,
    pub network_id: String,
    pub network_name: String,
    pub internal: bool,
    pub name: String,
    pub vip: IpAddr,
    pub tasks: Vec<IpAddr>,
}

impl ServiceNames {
    /// Each name with the addresses it stands for.
    fn entries(&self) -> [(String, Vec<IpAddr>); 2] {
        let name = self.name.to_ascii_lowercase();
        [
            (format!("tasks.{name}"), self.tasks.clone()),
            (name, vec![self.vip]),
        ]
    }
}

/// What a lookup found among a sandbox's networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    /// The name is known; these addresses have the asked-for family (possibly none).
    Addresses(Vec<IpAddr>),
    /// Reverse lookup of a known address.
    Pointer(String),
    /// Not a local name: forward it, if the sandbox may.
    Unknown,
}

#[derive(Default)]
struct Network {
    name: String,
    internal: bool,
    by_name: HashMap<String, Vec<IpAddr>>,
    by_address: HashMap<IpAddr, String>,
}

struct Sandbox {
    networks: Vec<String>,
    /// `None` until the sandbox is registered with its settings: a sandbox is never served
    /// with an upstream list nobody computed for it.
    resolution: Option<Arc<Resolution>>,
}

impl Network {
    /// `name` and `name.NETWORK` stand for `addresses` too.
    fn add_names(&mut self, name: &str, addresses: &[IpAddr]) {
        let qualified = format!("{name}.{}", self.name);
        for name in [name.to_string(), qualified] {
            self.by_name.entry(name).or_default().extend(addresses);
        }
    }

    /// Takes back one copy of each address [`Network::add_names`] gave `name`.
    fn remove_names(&mut self, name: &str, addresses: &[IpAddr]) {
        let qualified = format!("{name}.{}", self.name);
        for name in [name.to_string(), qualified] {
            if let Some(addrs) = self.by_name.get_mut(&name) {
                // One pass, however many go: a service's tasks may be a thousand.
                let mut taking: HashMap<&IpAddr, usize> = HashMap::new();
                for addr in addresses {
                    *taking.entry(addr).or_default() += 1;
                }
                addrs.retain(|a| match taking.get_mut(a) {
                    Some(copies) if *copies > 0 => {
                        *copies -= 1;
                        false
                    }
                    _ => true,
                });
                if addrs.is_empty() {
                    self.by_name.remove(&name);
                }
            }
        }
    }
}

#[derive(Default)]
struct Inner {
    networks: HashMap<String, Network>,
    sandboxes: HashMap<String, Sandbox>,
    endpoints: HashMap<String, EndpointNames>,
    /// By service and network id.
    services: HashMap<(String, String), ServiceNames>,
}

/// What a query needs to know about its sandbox.
pub struct SandboxView {
    pub resolution: Arc<Resolution>,
    /// At least one network that is not internal: forwarding is allowed.
    pub may_forward: bool,
}

#[derive(Default)]
pub struct Directory {
    inner: RwLock<Inner>,
}

impl Directory {
    pub fn set_sandbox(&self, id: &str, resolution: Arc<Resolution>) {
        let mut inner = self.inner.writing();
        let networks = inner
            .sandboxes
            .remove(id)
            .map(|s| s.networks)
            .unwrap_or_default();
        inner.sandboxes.insert(
            id.to_string(),
            Sandbox {
                networks,
                resolution: Some(resolution),
            },
        );
    }

    /// Forgets the sandbox's settings; its networks stay known while it has endpoints.
    pub fn remove_sandbox(&self, id: &str) {
        let mut inner = self.inner.writing();
        let Some(sandbox) = inner.sandboxes.get_mut(id) else {
            return;
        };
        if sandbox.networks.is_empty() {
            inner.sandboxes.remove(id);
        } else {
            sandbox.resolution = None;
        }
    }

    /// Replaces every sandbox's resolution at once (daemon.json or resolv.conf changed).
    pub fn update_resolutions(&self, resolve: impl Fn(&str) -> Option<Arc<Resolution>>) {
        let mut inner = self.inner.writing();
        for (id, sandbox) in inner.sandboxes.iter_mut() {
            if let Some(r) = resolve(id) {
                sandbox.resolution = Some(r);
            }
        }
    }

    pub fn add_endpoint(&self, ep: EndpointNames) {
        let mut inner = self.inner.writing();
        if inner.endpoints.contains_key(&ep.endpoint_id) {
            return;
        }
        let net = inner.networks.entry(ep.network_id.clone()).or_default();
        net.name = ep.network_name.to_ascii_lowercase();
        net.internal = ep.internal;
        let qualified: Vec<String> = ep
            .names
            .iter()
            .map(|n| format!("{}.{}", n.to_ascii_lowercase(), net.name))
            .collect();
        for name in ep
            .names
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .chain(qualified)
        {
            let addrs = net.by_name.entry(name).or_default();
            addrs.extend(&ep.addresses);
        }
        if let Some(first) = ep.names.first() {
            let ptr = format!("{}.{}", first.to_ascii_lowercase(), net.name);
            for addr in &ep.addresses {
                net.by_address.insert(*addr, ptr.clone());
            }
        }
        let sandbox = inner
            .sandboxes
            .entry(ep.sandbox_id.clone())
            .or_insert_with(|| Sandbox {
                networks: Vec::new(),
                resolution: None,
            });
        sandbox.networks.push(ep.network_id.clone());
        inner.endpoints.insert(ep.endpoint_id.clone(), ep);
    }

    pub fn remove_endpoint(&self, endpoint_id: &str) {
        let mut inner = self.inner.writing();
        let Some(ep) = inner.endpoints.remove(endpoint_id) else {
            return;
        };
        if let Some(sandbox) = inner.sandboxes.get_mut(&ep.sandbox_id) {
            if let Some(at) = sandbox.networks.iter().position(|n| *n == ep.network_id) {
                sandbox.networks.remove(at);
            }
            if sandbox.networks.is_empty() && sandbox.resolution.is_none() {
                inner.sandboxes.remove(&ep.sandbox_id);
            }
        }
        let Some(net) = inner.networks.get_mut(&ep.network_id) else {
            return;
        };
        let suffix = format!(".{}", net.name);
        for base in ep.names.iter().map(|n| n.to_ascii_lowercase()) {
            for name in [base.clone(), base + &suffix] {
                if let Some(addrs) = net.by_name.get_mut(&name) {
                    // One copy of each address per endpoint holding the name.
                    for addr in &ep.addresses {
                        if let Some(at) = addrs.iter().position(|a| a == addr) {
                            addrs.remove(at);
                        }
                    }
                    if addrs.is_empty() {
                        net.by_name.remove(&name);
                    }
                }
            }
        }
        for addr in &ep.addresses {
            net.by_address.remove(addr);
        }
        if net.by_name.is_empty() {
            inner.networks.remove(&ep.network_id);
        }
    }

    /// Sets a service's names on a network, replacing what it had there.
    pub fn set_service(&self, service: ServiceNames) {
        self.remove_service(&service.service_id, &service.network_id);
        let mut inner = self.inner.writing();
        let net = inner
            .networks
            .entry(service.network_id.clone())
            .or_default();
        net.name = service.network_name.to_ascii_lowercase();
        net.internal = service.internal;
        for (name, addresses) in service.entries() {
            net.add_names(&name, &addresses);
        }
        let ptr = format!("{}.{}", service.name.to_ascii_lowercase(), net.name);
        net.by_address.insert(service.vip, ptr);
        let key = (service.service_id.clone(), service.network_id.clone());
        inner.services.insert(key, service);
    }

    pub fn remove_service(&self, service_id: &str, network_id: &str) {
        let mut inner = self.inner.writing();
        let key = (service_id.to_string(), network_id.to_string());
        let Some(service) = inner.services.remove(&key) else {
            return;
        };
        let Some(net) = inner.networks.get_mut(network_id) else {
            return;
        };
        for (name, addresses) in service.entries() {
            net.remove_names(&name, &addresses);
        }
        net.by_address.remove(&service.vip);
    }

    pub fn view(&self, sandbox_id: &str) -> Option<SandboxView> {
        let inner = self.inner.reading();
        let sandbox = inner.sandboxes.get(sandbox_id)?;
        let resolution = sandbox.resolution.clone()?;
        let may_forward = sandbox
            .networks
            .iter()
            .any(|n| inner.networks.get(n).is_some_and(|n| !n.internal));
        Some(SandboxView {
            resolution,
            may_forward,
        })
    }

    /// `name` is lower case without the trailing dot; `v6` picks AAAA over A.
    pub fn lookup(&self, sandbox_id: &str, name: &str, v6: bool) -> Local {
        let inner = self.inner.reading();
        let Some(sandbox) = inner.sandboxes.get(sandbox_id) else {
            return Local::Unknown;
        };
        let mut known = false;
        let mut found = Vec::new();
        for net in sandbox
            .networks
            .iter()
            .filter_map(|n| inner.networks.get(n))
        {
            if let Some(addrs) = net.by_name.get(name) {
                known = true;
                found.extend(addrs.iter().filter(|a| a.is_ipv6() == v6));
            }
        }
        if !known {
            return Local::Unknown;
        }
        found.sort_unstable();
        found.dedup();
        fastrand::shuffle(&mut found);
        Local::Addresses(found)
    }

    pub fn reverse(&self, sandbox_id: &str, addr: IpAddr) -> Local {
        let inner = self.inner.reading();
        let Some(sandbox) = inner.sandboxes.get(sandbox_id) else {
            return Local::Unknown;
        };
        sandbox
            .networks
            .iter()
            .filter_map(|n| inner.networks.get(n))
            .find_map(|net| net.by_address.get(&addr))
            .map_or(Local::Unknown, |name| Local::Pointer(name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(tasks: &[&str]) -> ServiceNames {
        ServiceNames {
            service_id: "s1".into(),
            network_id: "n1".into(),
            network_name: "web".into(),
            internal: false,
            name: "Api".into(),
            vip: "10.0.0.100".parse().unwrap(),
            tasks: tasks.iter().map(|t| t.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn a_service_resolves_to_its_vip_and_tasks_to_its_replicas() {
        let dir = Directory::default();
        dir.add_endpoint(ep("e1", "n1", "sb1", &["a"], "10.0.0.2"));
        dir.set_service(service(&["10.0.0.2", "10.0.0.3"]));
        let vip: IpAddr = "10.0.0.100".parse().unwrap();
        assert_eq!(dir.lookup("sb1", "api", false), Local::Addresses(vec![vip]));
        assert_eq!(
            dir.lookup("sb1", "api.web", false),
            Local::Addresses(vec![vip])
        );
        let Local::Addresses(mut tasks) = dir.lookup("sb1", "tasks.api", false) else {
            panic!("tasks.api unknown");
        };
        tasks.sort();
        assert_eq!(tasks.len(), 2);
        assert_eq!(dir.reverse("sb1", vip), Local::Pointer("api.web".into()));
        // A replica keeps its own reverse name.
        let a: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(dir.reverse("sb1", a), Local::Pointer("a.web".into()));
        // Replaced in place, then gone.
        dir.set_service(service(&["10.0.0.3"]));
        assert_eq!(
            dir.lookup("sb1", "tasks.api", false),
            Local::Addresses(vec!["10.0.0.3".parse().unwrap()])
        );
        dir.remove_service("s1", "n1");
        assert_eq!(dir.lookup("sb1", "api", false), Local::Unknown);
        assert_eq!(dir.lookup("sb1", "tasks.api", false), Local::Unknown);
        assert_eq!(dir.reverse("sb1", a), Local::Pointer("a.web".into()));
    }

    fn ep(id: &str, net: &str, sandbox: &str, names: &[&str], addr: &str) -> EndpointNames {
        EndpointNames {
            endpoint_id: id.into(),
            network_id: net.into(),
            network_name: if net == "n1" { "web" } else { "db" }.into(),
            internal: net == "n2",
            sandbox_id: sandbox.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            addresses: vec![addr.parse().unwrap()],
        }
    }

    fn directory() -> Directory {
        let d = Directory::default();
        for s in ["a", "b", "c", "z"] {
            d.set_sandbox(s, Arc::default());
        }
        d.add_endpoint(ep("ea", "n1", "a", &["a"], "10.0.0.2"));
        d.add_endpoint(ep("eb", "n1", "b", &["b", "api"], "10.0.0.3"));
        d.add_endpoint(ep("ec", "n1", "c", &["C", "api"], "10.0.0.4"));
        d.add_endpoint(ep("ez", "n2", "z", &["z"], "10.1.0.2"));
        d
    }

    fn v4(d: &Directory, sandbox: &str, name: &str) -> Vec<String> {
        match d.lookup(sandbox, name, false) {
            Local::Addresses(mut a) => {
                a.sort();
                a.iter().map(|a| a.to_string()).collect()
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn names_are_per_network_and_case_blind() {
        let d = directory();
        assert_eq!(v4(&d, "a", "b"), ["10.0.0.3"]);
        assert_eq!(v4(&d, "a", "c"), ["10.0.0.4"]);
        assert_eq!(v4(&d, "a", "b.web"), ["10.0.0.3"]);
        assert_eq!(v4(&d, "a", "api"), ["10.0.0.3", "10.0.0.4"]);
        assert_eq!(d.lookup("a", "z", false), Local::Unknown);
        assert_eq!(d.lookup("z", "a", false), Local::Unknown);
        assert_eq!(d.lookup("a", "b", true), Local::Addresses(vec![]));
        assert_eq!(
            d.reverse("a", "10.0.0.3".parse().unwrap()),
            Local::Pointer("b.web".into())
        );
        assert_eq!(d.reverse("a", "10.1.0.2".parse().unwrap()), Local::Unknown);
        assert!(d.view("a").unwrap().may_forward);
        assert!(!d.view("z").unwrap().may_forward);
    }

    #[test]
    fn several_holders_come_back_in_every_order() {
        let d = directory();
        let orders: std::collections::HashSet<_> = (0..64)
            .map(|_| match d.lookup("a", "api", false) {
                Local::Addresses(a) => a,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(orders.len(), 2);
    }

    #[test]
    fn a_sandbox_is_served_only_with_settings_computed_for_it() {
        let d = Directory::default();
        d.add_endpoint(ep("ea", "n1", "a", &["a"], "10.0.0.2"));
        assert!(d.view("a").is_none(), "endpoints alone make no view");
        d.set_sandbox("a", Arc::default());
        assert!(d.view("a").is_some());
        d.remove_sandbox("a");
        assert!(d.view("a").is_none());
        assert_eq!(d.lookup("b", "a", false), Local::Unknown);
        d.remove_endpoint("ea");
        assert!(d.inner.reading().sandboxes.is_empty());
    }

    #[test]
    fn removing_an_endpoint_removes_only_its_names() {
        let d = directory();
        d.remove_endpoint("eb");
        assert_eq!(d.lookup("a", "b", false), Local::Unknown);
        assert_eq!(v4(&d, "a", "api"), ["10.0.0.4"]);
        assert_eq!(d.reverse("a", "10.0.0.3".parse().unwrap()), Local::Unknown);
        d.remove_endpoint("ea");
        assert_eq!(d.lookup("a", "c", false), Local::Unknown);
        assert!(!d.view("a").unwrap().may_forward);
    }
}
