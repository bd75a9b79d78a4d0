//! A node's load balancers: in the namespace of a network's load-balancer sandbox (`lb-NET`)
//! connections to the network's virtual IPs, and in the ingress sandbox connections to
//! ports published through the routing mesh, go to one of their replicas, picked per
//! connection. Docker balances with IPVS; this kernel has no IPVS, so it is a DNAT through
//! an nft `numgen` map, as kube-proxy's nftables mode does, and a masquerade to the
//! balancer's own address on the way out, so that the reply comes back through it to be
//! un-NATed, from a replica on any node. A change of replicas changes this one table of
//! one namespace per node, whatever the number of clients, and in it only the map slots of
//! the replicas that came or went.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use crate::DriverError;

/// The table in the balancer's namespace.
pub const BALANCER_TABLE: &str = "netctl-lb";

/// A service's virtual IP on the balancer's network, and where it leads (every port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualIp {
    pub vip: Ipv4Addr,
    pub replicas: Vec<Ipv4Addr>,
}

/// A port published through the routing mesh: traffic the node hands the ingress sandbox
/// at `entry:published` goes to `replica:target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshPort {
    /// `tcp`, `udp` or `sctp`.
    pub proto: &'static str,
    pub published: u16,
    pub target: u16,
    pub replicas: Vec<Ipv4Addr>,
}

/// What one balancer balances.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balancing {
    pub vips: Vec<VirtualIp>,
    /// The ingress sandbox's address on the gateway bridge, where the node DNATs published
    /// ports to; `None` on a load-balancer sandbox.
    pub entry: Option<Ipv4Addr>,
    pub ports: Vec<MeshPort>,
}

impl Balancing {
    pub fn is_empty(&self) -> bool {
        self.vips.is_empty() && self.ports.is_empty()
    }

    /// These destinations with their replicas in the slots they hold in `before`: one that
    /// left gives its slot to a newcomer, or else to the last; other newcomers take new
    /// slots at the end. A change of replicas then touches as many map elements as
    /// replicas came and went.
    pub fn in_slots_of(mut self, before: &Balancing) -> Balancing {
        for vip in &mut self.vips {
            if let Some(old) = before.vips.iter().find(|v| v.vip == vip.vip) {
                vip.replicas = arranged(&old.replicas, &vip.replicas);
            }
        }
        for port in &mut self.ports {
            let old = before
                .ports
                .iter()
                .find(|p| p.proto == port.proto && p.published == port.published);
            if let Some(old) = old.filter(|o| o.target == port.target) {
                port.replicas = arranged(&old.replicas, &port.replicas);
            }
        }
        self
    }

    /// What the table holds: each destination with a replica, by name.
    fn destinations(&self) -> Vec<Destination> {
        let mut all = Vec::new();
        for vip in self.vips.iter().filter(|v| !v.replicas.is_empty()) {
            all.push(Destination {
                name: format!("v-{}", vip.vip.to_string().replace('.', "-")),
                matches: format!("ip daddr {}", vip.vip),
                picks: "dnat to".into(),
                key: "ip daddr".into(),
                slots: vip.replicas.iter().map(|r| r.to_string()).collect(),
            });
        }
        let Some(entry) = self.entry else {
            return all;
        };
        for port in self.ports.iter().filter(|p| !p.replicas.is_empty()) {
            let proto = port.proto;
            all.push(Destination {
                name: format!("p-{proto}-{}", port.published),
                matches: format!("ip daddr {entry} {proto} dport {}", port.published),
                picks: format!("meta l4proto {proto} dnat ip to"),
                key: format!("ip daddr . {proto} dport"),
                slots: port
                    .replicas
                    .iter()
                    .map(|r| format!("{r} . {}", port.target))
                    .collect(),
            });
        }
        all
    }
}

/// `after` in the order of `before`'s slots (see [`Balancing::in_slots_of`]): a newcomer
/// takes a slot that was given up, then the slots left over go to the last ones.
fn arranged(before: &[Ipv4Addr], after: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
    let (had, wanted): (HashSet<&Ipv4Addr>, HashSet<&Ipv4Addr>) =
        (before.iter().collect(), after.iter().collect());
    let mut slots = before.to_vec();
    let mut newcomers = after.iter().filter(|r| !had.contains(r)).copied();
    let mut vacated = Vec::new();
    for (i, slot) in slots.iter_mut().enumerate() {
        if !wanted.contains(slot) {
            match newcomers.next() {
                Some(newcomer) => *slot = newcomer,
                None => vacated.push(i),
            }
        }
    }
    // From the highest: the last slot moved down is never one that is going.
    for i in vacated.into_iter().rev() {
        slots.swap_remove(i);
    }
    slots.extend(newcomers);
    slots
}

/// One balanced destination as the table holds it: a map from slot to replica, a chain
/// that picks a slot at random, and a rule in `prerouting` that sends the destination
/// there.
#[derive(Debug, PartialEq, Eq)]
struct Destination {
    name: String,
    /// What the prerouting rule matches (`ip daddr VIP`).
    matches: String,
    /// The statement that picks (`dnat to`).
    picks: String,
    /// The map's value, by the expressions it is typed after (`ip daddr`).
    key: String,
    /// By slot: `10.0.0.2` or `10.0.0.2 . 80`.
    slots: Vec<String>,
}

impl Destination {
    /// `dnat to numgen random mod N map @NAME`, the pick among its slots.
    fn pick(&self) -> String {
        format!(
            "add rule ip {BALANCER_TABLE} {name} {picks} numgen random mod {n} map @{name}\n",
            name = self.name,
            picks = self.picks,
            n = self.slots.len()
        )
    }

    /// `add element ip netctl-lb NAME { 0 : R0, … }` for the slots from `first` on.
    fn elements(&self, slots: impl Iterator<Item = usize>) -> String {
        let elements: Vec<String> = slots.map(|i| format!("{i} : {}", self.slots[i])).collect();
        if elements.is_empty() {
            return String::new();
        }
        format!(
            "add element ip {BALANCER_TABLE} {} {{ {} }}\n",
            self.name,
            elements.join(", ")
        )
    }
}

/// The whole ruleset, replacing whatever the balancer had:
///
/// ```text
/// nft 'add table ip netctl-lb; delete table ip netctl-lb
///      table ip netctl-lb {
///        map v-10-0-0-100 { typeof numgen random mod 1 : ip daddr; }
///        chain prerouting { type nat hook prerouting priority -100; policy accept;
///          ip daddr 10.0.0.100 jump v-10-0-0-100 }
///        chain v-10-0-0-100 { dnat to numgen random mod 2 map @v-10-0-0-100 }
///        chain postrouting { type nat hook postrouting priority 100; policy accept;
///          ct status dnat masquerade } }
///      add element ip netctl-lb v-10-0-0-100 { 0 : 10.0.0.2, 1 : 10.0.0.3 }'
/// ```
///
/// A published port's destination matches `ip daddr ENTRY tcp dport PORT` and maps to
/// `ip daddr . tcp dport`. A virtual IP or port with no replica is left alone: it is the
/// balancer's own address, so the kernel refuses the connection at once (a TCP reset, an
/// ICMP port unreachable), as IPVS does with no real server. Without anything to balance
/// the table goes.
pub fn ruleset(balancing: &Balancing) -> String {
    let t = BALANCER_TABLE;
    let mut rules = format!("add table ip {t}\ndelete table ip {t}\n");
    if balancing.is_empty() {
        return rules;
    }
    let destinations = balancing.destinations();
    rules.push_str(&format!("table ip {t} {{\n"));
    for d in &destinations {
        rules.push_str(&format!(
            "\tmap {} {{ typeof numgen random mod 1 : {}; }}\n\tchain {} {{ }}\n",
            d.name, d.key, d.name
        ));
    }
    rules.push_str(
        "\tchain prerouting { type nat hook prerouting priority -100; policy accept; }\n\
         \tchain postrouting { type nat hook postrouting priority 100; policy accept; }\n}\n",
    );
    for d in &destinations {
        rules.push_str(&d.elements(0..d.slots.len()));
        rules.push_str(&d.pick());
        rules.push_str(&format!(
            "add rule ip {t} prerouting {} jump {}\n",
            d.matches, d.name
        ));
    }
    rules.push_str(&format!(
        "add rule ip {t} postrouting ct status dnat masquerade\n"
    ));
    rules
}

/// What takes the balancer from `before` to `after` (arranged by
/// [`Balancing::in_slots_of`]): with the same destinations, only the slots that changed
/// and the pick of each destination whose count changed —
///
/// ```text
/// nft 'delete element ip netctl-lb v-10-0-0-100 { 1 }
///      flush chain ip netctl-lb v-10-0-0-100
///      add rule ip netctl-lb v-10-0-0-100 dnat to numgen random mod 1 map @v-10-0-0-100'
/// ```
///
/// — else the whole [`ruleset`].
pub fn changes(before: Option<&Balancing>, after: &Balancing) -> String {
    let Some(before) = before else {
        return ruleset(after);
    };
    let (old, new) = (before.destinations(), after.destinations());
    let same_shape = old.len() == new.len()
        && old
            .iter()
            .zip(&new)
            .all(|(o, n)| o.name == n.name && o.matches == n.matches);
    if !same_shape || before.is_empty() || after.is_empty() {
        return ruleset(after);
    }
    let t = BALANCER_TABLE;
    let mut rules = String::new();
    for (o, n) in old.iter().zip(&new) {
        let differs = |i: &usize| o.slots.get(*i) != n.slots.get(*i);
        let gone: Vec<String> = (0..o.slots.len())
            .filter(differs)
            .map(|i| i.to_string())
            .collect();
        if !gone.is_empty() {
            rules.push_str(&format!(
                "delete element ip {t} {} {{ {} }}\n",
                o.name,
                gone.join(", ")
            ));
        }
        rules.push_str(&n.elements((0..n.slots.len()).filter(differs)));
        if o.slots.len() != n.slots.len() {
            rules.push_str(&format!("flush chain ip {t} {}\n", n.name));
            rules.push_str(&n.pick());
        }
    }
    rules
}

/// Takes the balancer in the namespace of the calling thread (which has entered the
/// balancer's) from `before` (what it was last given; `None`: unknown) to `after`.
pub fn apply_here(before: Option<&Balancing>, after: &Balancing) -> Result<(), DriverError> {
    Ok(netctl_kernel::nft::apply_text_here(&changes(
        before, after,
    ))?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<Ipv4Addr> {
        list.iter().map(|r| r.parse().unwrap()).collect()
    }

    pub(crate) fn vip(vip: &str, replicas: &[&str]) -> VirtualIp {
        VirtualIp {
            vip: vip.parse().unwrap(),
            replicas: ips(replicas),
        }
    }

    pub(crate) fn vips(list: &[VirtualIp]) -> Balancing {
        Balancing {
            vips: list.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn each_vip_picks_among_its_replicas_and_one_without_is_left_to_the_kernel() {
        let rules = ruleset(&vips(&[
            vip("10.0.0.100", &["10.0.0.2", "10.0.1.7", "10.0.0.9"]),
            vip("10.0.0.101", &[]),
        ]));
        for line in [
            "map v-10-0-0-100 { typeof numgen random mod 1 : ip daddr; }",
            "add element ip netctl-lb v-10-0-0-100 { 0 : 10.0.0.2, 1 : 10.0.1.7, 2 : 10.0.0.9 }",
            "add rule ip netctl-lb v-10-0-0-100 dnat to numgen random mod 3 map @v-10-0-0-100",
            "add rule ip netctl-lb prerouting ip daddr 10.0.0.100 jump v-10-0-0-100",
            "add rule ip netctl-lb postrouting ct status dnat masquerade",
        ] {
            assert!(rules.contains(line), "{line} in {rules}");
        }
        assert!(!rules.contains("10.0.0.101"));
        assert!(rules.starts_with("add table ip netctl-lb\ndelete table ip netctl-lb\n"));
    }

    #[test]
    fn a_published_port_picks_a_replica_and_its_target_port() {
        let rules = ruleset(&Balancing {
            entry: Some("172.18.0.2".parse().unwrap()),
            ports: vec![MeshPort {
                proto: "udp",
                published: 5353,
                target: 53,
                replicas: ips(&["10.0.0.5", "10.0.0.6"]),
            }],
            ..Default::default()
        });
        for line in [
            "map p-udp-5353 { typeof numgen random mod 1 : ip daddr . udp dport; }",
            "add element ip netctl-lb p-udp-5353 { 0 : 10.0.0.5 . 53, 1 : 10.0.0.6 . 53 }",
            "add rule ip netctl-lb p-udp-5353 meta l4proto udp dnat ip to numgen random mod 2 \
             map @p-udp-5353",
            "add rule ip netctl-lb prerouting ip daddr 172.18.0.2 udp dport 5353 jump p-udp-5353",
        ] {
            assert!(rules.contains(line), "{line} in {rules}");
        }
    }

    #[test]
    fn a_replica_that_leaves_gives_its_slot_to_the_last() {
        let before = vips(&[vip("10.0.0.100", &["10.0.0.2", "10.0.0.3", "10.0.0.4"])]);
        // In the service's order, 10.0.0.3 gone and 10.0.0.5 new.
        let after =
            vips(&[vip("10.0.0.100", &["10.0.0.2", "10.0.0.4", "10.0.0.5"])]).in_slots_of(&before);
        assert_eq!(
            after.vips[0].replicas,
            ips(&["10.0.0.2", "10.0.0.5", "10.0.0.4"])
        );
        let shrunk = vips(&[vip("10.0.0.100", &["10.0.0.2", "10.0.0.4"])]).in_slots_of(&before);
        assert_eq!(shrunk.vips[0].replicas, ips(&["10.0.0.2", "10.0.0.4"]));
        assert_eq!(
            changes(Some(&before), &shrunk),
            "delete element ip netctl-lb v-10-0-0-100 { 1, 2 }\n\
             add element ip netctl-lb v-10-0-0-100 { 1 : 10.0.0.4 }\n\
             flush chain ip netctl-lb v-10-0-0-100\n\
             add rule ip netctl-lb v-10-0-0-100 dnat to numgen random mod 2 map @v-10-0-0-100\n"
        );
        // The same count: only the slot that changed.
        let swapped =
            vips(&[vip("10.0.0.100", &["10.0.0.2", "10.0.0.9", "10.0.0.4"])]).in_slots_of(&before);
        assert_eq!(
            changes(Some(&before), &swapped),
            "delete element ip netctl-lb v-10-0-0-100 { 1 }\n\
             add element ip netctl-lb v-10-0-0-100 { 1 : 10.0.0.9 }\n"
        );
        assert_eq!(changes(Some(&before), &before), "");
    }

    #[test]
    fn new_or_emptied_destinations_rewrite_the_table() {
        let before = vips(&[vip("10.0.0.100", &["10.0.0.2"])]);
        let more = vips(&[
            vip("10.0.0.100", &["10.0.0.2"]),
            vip("10.0.0.101", &["10.0.0.3"]),
        ]);
        assert!(changes(Some(&before), &more).starts_with("add table"));
        let emptied = vips(&[vip("10.0.0.100", &[])]);
        assert!(changes(Some(&before), &emptied).contains("delete table"));
        assert!(changes(None, &before).starts_with("add table"));
    }

    #[test]
    fn nothing_to_balance_removes_the_table() {
        assert_eq!(
            ruleset(&Balancing::default()),
            "add table ip netctl-lb\ndelete table ip netctl-lb\n"
        );
    }
}
