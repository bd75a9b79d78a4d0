//! netctl's firewall: one nft table of its own in the daemon's namespace.

pub mod balancer;
pub mod dns_redirect;
pub mod docker_user;
mod publish;
pub mod table;

pub use publish::PortForward;

use ipnetwork::IpNetwork;
use netctl_kernel::nft;
use nftables::schema::{NfCmd, NfListObject, NfObject, Nftables};

use crate::DriverError;

/// What the firewall needs to know of one network with a device on the host (a bridge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallNetwork {
    pub bridge: String,
    pub icc: bool,
    pub internal: bool,
    /// Traffic leaving the subnets is masqueraded (Docker's `enable_ip_masquerade`).
    pub masquerade: bool,
    pub subnets: Vec<IpNetwork>,
}

impl FirewallNetwork {
    /// The set elements that describe this network.
    fn elements(&self) -> Vec<NfListObject<'static>> {
        let mut out = vec![table::elements(
            table::SET_BRIDGES,
            vec![table::ifname(&self.bridge)],
        )];
        if self.icc {
            out.push(table::elements(
                table::SET_ICC_PAIRS,
                vec![table::ifname_pair(&self.bridge, &self.bridge)],
            ));
        }
        if self.internal {
            out.push(table::elements(
                table::SET_INTERNAL,
                vec![table::ifname(&self.bridge)],
            ));
        } else {
            let mut sets = vec![
                (table::SET_HAIRPIN_V4, false),
                (table::SET_HAIRPIN_V6, true),
            ];
            if self.masquerade {
                sets.extend([(table::SET_MASQ_V4, false), (table::SET_MASQ_V6, true)]);
            }
            for (set, v6) in sets {
                let nets: Vec<_> = self
                    .subnets
                    .iter()
                    .filter(|n| n.is_ipv6() == v6)
                    .map(table::prefix)
                    .collect();
                if !nets.is_empty() {
                    out.push(table::elements(set, nets));
                }
            }
        }
        out
    }
}

/// The table as a whole, rebuilt from desired state, or changed one network at a time.
#[derive(Debug, Default, Clone)]
pub struct Firewall;

impl Firewall {
    /// Replaces the whole table with one built from `networks` and the published `forwards`,
    /// atomically: `add table inet netctl; delete table inet netctl; add table inet netctl; …`
    pub async fn sync(
        &self,
        networks: &[FirewallNetwork],
        forwards: &[PortForward],
    ) -> Result<(), DriverError> {
        let mut batch: Vec<_> = table::user_table().into_iter().map(add).collect();
        batch.extend([
            add(table::table()),
            NfObject::CmdObject(NfCmd::Delete(table::table())),
            add(table::table()),
        ]);
        batch.extend(table::chains().into_iter().map(add));
        batch.extend(publish::chains().into_iter().map(add));
        batch.extend(table::sets().into_iter().map(add));
        batch.extend(publish::maps().into_iter().map(add));
        batch.extend(table::rules().into_iter().map(add));
        batch.extend(publish::rules().into_iter().map(add));
        batch.extend(networks.iter().flat_map(|n| n.elements()).map(add));
        batch.extend(publish::elements(forwards).into_iter().map(add));
        apply(batch).await
    }

    /// Publishes ports: `add element inet netctl pub4_addr { … }` and the like, one
    /// transaction for all of them.
    pub async fn publish(&self, forwards: &[PortForward]) -> Result<(), DriverError> {
        if forwards.is_empty() {
            return Ok(());
        }
        apply(publish::elements(forwards).into_iter().map(add).collect()).await
    }

    /// Withdraws published ports; withdrawing one twice is not an error.
    pub async fn unpublish(&self, forwards: &[PortForward]) -> Result<(), DriverError> {
        if forwards.is_empty() {
            return Ok(());
        }
        apply(add_then_delete(publish::elements(forwards))).await
    }

    /// Whether the forward's element is in the table (`nft get element …`; see
    /// [`publish::lookup`]), and leads where the forward says.
    pub async fn is_published(&self, forward: &PortForward) -> bool {
        match netctl_kernel::nft::run_text(publish::lookup(forward)).await {
            Ok(listing) => listing.contains(&forward.target.to_string()),
            Err(_) => false,
        }
    }

    /// `add element inet netctl bridges { BRIDGE }` and the like, in one transaction.
    pub async fn add_network(&self, net: &FirewallNetwork) -> Result<(), DriverError> {
        apply(net.elements().into_iter().map(add).collect()).await
    }

    /// Removes the network's elements. Each is added before it is deleted, in the same
    /// transaction, so removing a network twice is not an error.
    pub async fn remove_network(&self, net: &FirewallNetwork) -> Result<(), DriverError> {
        let elements = net.elements();
        let mut batch: Vec<_> = elements.iter().cloned().map(add).collect();
        batch.extend(
            elements
                .into_iter()
                .map(|e| NfObject::CmdObject(NfCmd::Delete(e))),
        );
        apply(batch).await
    }

    /// Whether the table still has the shape [`Firewall::sync`] gives it: its chains, rules,
    /// sets and maps, and one `bridges` element per bridge network. `nft flush ruleset`, a
    /// deleted table or a flushed chain all fail this.
    pub async fn is_intact(&self, bridges: usize) -> Result<bool, DriverError> {
        let Some(listing) = nft::list_table(table::TABLE, true).await? else {
            return Ok(false);
        };
        let doc: serde_json::Value = serde_json::from_str(&listing)
            .map_err(|e| netctl_kernel::KernelError::Nft(format!("reading the table: {e}")))?;
        let objects = doc["nftables"].as_array().cloned().unwrap_or_default();
        let count = |kind: &str| objects.iter().filter(|o| o.get(kind).is_some()).count();
        let elements = objects
            .iter()
            .filter_map(|o| o.get("set"))
            .find(|s| s["name"] == table::SET_BRIDGES)
            .and_then(|s| s["elem"].as_array().map(|e| e.len()))
            .unwrap_or(0);
        Ok(
            count("chain") == table::chains().len() + publish::chains().len()
                && count("rule") == table::rules().len() + publish::rules().len()
                && count("set") + count("map") == table::sets().len() + publish::maps().len()
                && elements == bridges,
        )
    }
}

/// Each object added, then deleted, in one transaction: deletes what is there and does not
/// fail on what is not.
fn add_then_delete(objects: Vec<NfListObject<'static>>) -> Vec<NfObject<'static>> {
    let mut batch: Vec<_> = objects.iter().cloned().map(add).collect();
    batch.extend(
        objects
            .into_iter()
            .map(|o| NfObject::CmdObject(NfCmd::Delete(o))),
    );
    batch
}

/// Runs `objects` as one nft transaction.
async fn apply(objects: Vec<NfObject<'static>>) -> Result<(), DriverError> {
    let document = Nftables {
        objects: objects.into(),
    };
    let json = serde_json::to_string(&document)
        .map_err(|e| DriverError::Kernel(netctl_kernel::KernelError::Nft(e.to_string())))?;
    Ok(nft::apply_json(json).await?)
}

fn add(object: NfListObject<'static>) -> NfObject<'static> {
    NfObject::CmdObject(NfCmd::Add(object))
}
