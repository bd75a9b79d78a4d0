//! `netctl network prune`: every network nothing uses goes, as `docker network prune`.
//! Kept: the predefined `host` and `none`, the networks dockerd made through the plugin
//! (dockerd's to remove), and the cluster's (global networks, the gateway bridge and the
//! ingress network), which other nodes use.

use std::io::BufRead;
use std::time::SystemTime;

use netctl_plugin_api::client::Client;
use netctl_plugin_api::{ErrorCode, NetworkInspect};

use crate::print::listing::BUILTIN_NETWORKS;

/// Drivers whose networks belong to the cluster.
const CLUSTER_DRIVERS: &[&str] = &["gwbridge", "ingress", "overlay"];

pub async fn prune(client: &Client, filters: &[String], force: bool) -> anyhow::Result<()> {
    let filters = PruneFilters::parse(filters)?;
    if !force && !confirmed()? {
        return Ok(());
    }
    let candidates: Vec<NetworkInspect> = client
        .network_list()
        .await?
        .into_iter()
        .filter(|n| prunable(n) && filters.allow(n))
        .collect();
    let mut deleted = Vec::new();
    for net in candidates {
        match client.network_remove(&net.id).await {
            Ok(removed) => deleted.push(removed.name),
            // Taken into use since it was listed: it stays.
            Err(e) if e.code() == Some(ErrorCode::Conflict) => {}
            Err(e) => eprintln!("netctl: {}: {e}", net.name),
        }
    }
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        deleted.iter().for_each(|name| println!("{name}"));
    }
    Ok(())
}

fn prunable(n: &NetworkInspect) -> bool {
    n.containers.is_empty()
        && n.scope == "local"
        && !BUILTIN_NETWORKS.contains(&n.name.as_str())
        && !CLUSTER_DRIVERS.contains(&n.driver.as_str())
        && !n.labels.contains_key("com.docker.network.id")
}

/// Docker's question, answered on stdin.
fn confirmed() -> anyhow::Result<bool> {
    eprint!("WARNING! This will remove all networks not used by at least one sandbox or container.\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `label=KEY[=VALUE]`, `label!=KEY[=VALUE]` and `until=WHEN` (RFC 3339, or a duration
/// such as `24h`: that long ago).
#[derive(Debug, Default)]
struct PruneFilters {
    labels: Vec<(String, Option<String>, bool)>,
    until: Option<SystemTime>,
}

impl PruneFilters {
    fn parse(given: &[String]) -> anyhow::Result<Self> {
        let mut filters = Self::default();
        for filter in given {
            let (key, value, wanted) = if let Some((k, v)) = filter.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = filter.split_once('=') {
                (k, v, true)
            } else {
                anyhow::bail!("bad filter {filter:?}: filters are KEY=VALUE");
            };
            match key {
                "label" => {
                    let (k, v) = match value.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (value.to_string(), None),
                    };
                    filters.labels.push((k, v, wanted));
                }
                "until" if wanted => filters.until = Some(point_in_time(value)?),
                _ => anyhow::bail!("invalid filter {key:?}: prune takes label, label!= and until"),
            }
        }
        Ok(filters)
    }

    fn allow(&self, n: &NetworkInspect) -> bool {
        let labels_ok = self.labels.iter().all(|(k, v, wanted)| {
            let has = match v {
                Some(v) => n.labels.get(k) == Some(v),
                None => n.labels.contains_key(k),
            };
            has == *wanted
        });
        let old_enough = self.until.is_none_or(|until| {
            humantime::parse_rfc3339_weak(&n.created).is_ok_and(|created| created < until)
        });
        labels_ok && old_enough
    }
}

fn point_in_time(value: &str) -> anyhow::Result<SystemTime> {
    if let Ok(at) = humantime::parse_rfc3339_weak(value) {
        return Ok(at);
    }
    let ago = humantime::parse_duration(value).map_err(|_| {
        anyhow::anyhow!("invalid until {value:?}: an RFC 3339 time or a duration such as 24h")
    })?;
    Ok(SystemTime::now() - ago)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_filters() {
        let f = PruneFilters::parse(&["label=env=dev".into(), "label!=keep".into()]).unwrap();
        assert_eq!(f.labels.len(), 2);
        assert!(PruneFilters::parse(&["until=24h".into()])
            .unwrap()
            .until
            .is_some());
        assert!(PruneFilters::parse(&["until=2026-01-01T00:00:00Z".into()]).is_ok());
        assert!(PruneFilters::parse(&["until=soon".into()]).is_err());
        assert!(PruneFilters::parse(&["driver=bridge".into()]).is_err());
    }
}
