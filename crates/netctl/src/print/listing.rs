//! What `ls` lists: the objects' short forms for templates (Docker's `ls` fields), and
//! `--filter KEY=VALUE` as Docker reads it: the values of one key are alternatives, and
//! every key given must match.

use std::collections::BTreeMap;

use netctl_plugin_api::cluster::{NodeInspect, ServiceInspect};
use netctl_plugin_api::{NetworkInspect, SandboxInspect};
use serde::Serialize;
use serde_json::{json, Value};

use super::table::shown_id;
use super::text::subnets;

/// An object `ls` lists.
pub trait Listed: Serialize {
    fn id(&self) -> &str;
    /// The fields a `--format` template sees, as Docker's `ls` has them.
    fn row(&self, no_trunc: bool) -> Value;
    /// Column headers of `table TEMPLATE` where they are not the field's name in capitals.
    const HEADERS: &'static [(&'static str, &'static str)];
}

impl Listed for NetworkInspect {
    fn id(&self) -> &str {
        &self.id
    }

    /// `{"ID", "Name", "Driver", "Scope", "IPv6", "Internal", "Labels", "CreatedAt"}` as
    /// `docker network ls` has them (the booleans as text), and netctl's `Subnets`.
    fn row(&self, no_trunc: bool) -> Value {
        json!({
            "ID": shown_id(&self.id, no_trunc),
            "Name": self.name,
            "Driver": self.driver,
            "Scope": self.scope,
            "IPv6": self.enable_ipv6.to_string(),
            "Internal": self.internal.to_string(),
            "Labels": labels_text(&self.labels),
            "CreatedAt": self.created,
            "Subnets": subnets(self),
        })
    }

    const HEADERS: &'static [(&'static str, &'static str)] =
        &[("ID", "NETWORK ID"), ("CreatedAt", "CREATED")];
}

impl Listed for SandboxInspect {
    fn id(&self) -> &str {
        &self.id
    }

    fn row(&self, no_trunc: bool) -> Value {
        let networks = &self.network_settings.networks;
        let addresses: Vec<&str> = networks
            .values()
            .flat_map(|e| [e.ip_address.as_str(), e.global_ipv6_address.as_str()])
            .filter(|a| !a.is_empty())
            .collect();
        json!({
            "ID": shown_id(&self.id, no_trunc),
            "Name": self.name,
            "Hostname": self.hostname,
            "Networks": networks.keys().cloned().collect::<Vec<_>>().join(","),
            "Addresses": addresses.join(","),
            "CreatedAt": self.created,
        })
    }

    const HEADERS: &'static [(&'static str, &'static str)] =
        &[("ID", "SANDBOX ID"), ("CreatedAt", "CREATED")];
}

impl Listed for NodeInspect {
    fn id(&self) -> &str {
        &self.id
    }

    fn row(&self, no_trunc: bool) -> Value {
        json!({
            "ID": shown_id(&self.id, no_trunc),
            "Hostname": self.hostname,
            "Address": self.address,
            "Role": self.role,
            "Status": self.status,
            "Endpoints": self.endpoints,
            "Self": self.this_node,
        })
    }

    const HEADERS: &'static [(&'static str, &'static str)] = &[];
}

impl Listed for ServiceInspect {
    fn id(&self) -> &str {
        &self.id
    }

    fn row(&self, no_trunc: bool) -> Value {
        let ready = self.replicas.iter().filter(|r| r.ready).count();
        json!({
            "ID": shown_id(&self.id, no_trunc),
            "Name": self.name,
            "Network": self.network,
            "VirtualIP": self.virtual_ip,
            "Replicas": format!("{ready}/{}", self.replicas.len()),
            "CreatedAt": self.created,
        })
    }

    const HEADERS: &'static [(&'static str, &'static str)] = &[("VirtualIP", "VIRTUAL IP")];
}

/// `k=v,k2=v2`, as `docker network ls` shows labels.
fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `--filter KEY=VALUE…`, checked against the keys a listing knows.
#[derive(Debug, Default)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn parse(given: &[String], known: &[&str]) -> anyhow::Result<Self> {
        let mut filters = BTreeMap::<String, Vec<String>>::new();
        for filter in given {
            let Some((key, value)) = filter.split_once('=') else {
                anyhow::bail!("bad filter {filter:?}: filters are KEY=VALUE");
            };
            if !known.contains(&key) {
                anyhow::bail!(
                    "invalid filter {key:?}: the filters here are {}",
                    known.join(", ")
                );
            }
            filters.entry(key.into()).or_default().push(value.into());
        }
        Ok(Self(filters))
    }

    /// Whether `key` was not given, or one of its values passes `test`.
    fn allows(&self, key: &str, test: impl Fn(&str) -> bool) -> bool {
        self.0
            .get(key)
            .is_none_or(|values| values.iter().any(|v| test(v)))
    }

    /// `label=KEY` (present) or `label=KEY=VALUE`.
    fn allows_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.allows("label", |wanted| match wanted.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(wanted),
        })
    }

    /// `docker network ls --filter`: `driver`, `id` (a prefix), `label`, `name` (part of
    /// the name), `scope`, `type` (`builtin`: netctl's predefined networks; `custom`), and
    /// `dangling` (`true`: no endpoints).
    pub const NETWORK: &'static [&'static str] =
        &["dangling", "driver", "id", "label", "name", "scope", "type"];

    pub fn network(&self, n: &NetworkInspect) -> bool {
        let builtin = BUILTIN_NETWORKS.contains(&n.name.as_str());
        self.allows("driver", |d| n.driver == d)
            && self.allows("id", |id| n.id.starts_with(id))
            && self.allows_labels(&n.labels)
            && self.allows("name", |name| n.name.contains(name))
            && self.allows("scope", |scope| n.scope == scope)
            && self.allows("type", |t| {
                (t == "builtin") == builtin && matches!(t, "builtin" | "custom")
            })
            && self.allows("dangling", |d| {
                (d == "true" || d == "1") == n.containers.is_empty()
            })
    }

    /// `sandbox ls --filter`: `id` (a prefix), `name` (part of the name), `network` (a
    /// network's name or id).
    pub const SANDBOX: &'static [&'static str] = &["id", "name", "network"];

    pub fn sandbox(&self, s: &SandboxInspect) -> bool {
        let networks = &s.network_settings.networks;
        self.allows("id", |id| s.id.starts_with(id))
            && self.allows("name", |name| s.name.contains(name))
            && self.allows("network", |net| {
                networks
                    .iter()
                    .any(|(name, e)| name == net || e.network_id.starts_with(net))
            })
    }
}

/// `node ls --filter`: `id` (a prefix), `name` (part of the hostname), `role`.
impl Filters {
    pub const NODE: &'static [&'static str] = &["id", "name", "role"];

    pub fn node(&self, n: &NodeInspect) -> bool {
        self.allows("id", |id| n.id.starts_with(id))
            && self.allows("name", |name| n.hostname.contains(name))
            && self.allows("role", |role| n.role == role)
    }

    /// `service ls --filter`: `id` (a prefix), `name` (part of the name), `network`.
    pub const SERVICE: &'static [&'static str] = &["id", "name", "network"];

    pub fn service(&self, s: &ServiceInspect) -> bool {
        self.allows("id", |id| s.id.starts_with(id))
            && self.allows("name", |name| s.name.contains(name))
            && self.allows("network", |net| s.network == net)
    }
}

/// The networks every daemon has (`docker network ls --filter type=builtin`).
pub const BUILTIN_NETWORKS: &[&str] = &["host", "none"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_docker_s() {
        let f = Filters::parse(&["name=we".into(), "name=db".into()], Filters::NETWORK).unwrap();
        assert!(f.allows("name", |v| "web".contains(v)));
        assert!(
            f.allows("driver", |_| false),
            "a key not given lets all pass"
        );
        let e = Filters::parse(&["colour=red".into()], Filters::NETWORK).unwrap_err();
        assert!(e.to_string().contains("invalid filter \"colour\""), "{e}");
        assert!(Filters::parse(&["name".into()], Filters::NETWORK).is_err());
        let labels = BTreeMap::from([("env".to_string(), "dev".to_string())]);
        let f = Filters::parse(&["label=env".into()], Filters::NETWORK).unwrap();
        assert!(f.allows_labels(&labels));
        let f = Filters::parse(&["label=env=prod".into()], Filters::NETWORK).unwrap();
        assert!(!f.allows_labels(&labels));
    }
}
