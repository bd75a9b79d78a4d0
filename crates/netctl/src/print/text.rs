//! Local objects for people: networks, sandboxes, DNS answers, gc reports, the daemon.

use netctl_plugin_api::{DnsExplain, NetworkInspect, SandboxInspect};

use super::table::{short, shown_id, table};

pub fn network_rows(networks: &[NetworkInspect], no_trunc: bool) -> String {
    let rows: Vec<Vec<String>> = networks
        .iter()
        .map(|n| {
            vec![
                shown_id(&n.id, no_trunc).to_string(),
                n.name.clone(),
                n.driver.clone(),
                n.scope.clone(),
                subnets(n),
                managed_by(n),
            ]
        })
        .collect();
    table(
        &[
            "NETWORK ID",
            "NAME",
            "DRIVER",
            "SCOPE",
            "SUBNETS",
            "MANAGED BY",
        ],
        &rows,
    )
}

/// `docker ID` for a network dockerd made through the plugin, else `netctl`.
fn managed_by(n: &NetworkInspect) -> String {
    match n.labels.get("com.docker.network.id") {
        Some(id) => format!("docker {}", short(id)),
        None => "netctl".into(),
    }
}

pub fn subnets(n: &NetworkInspect) -> String {
    n.ipam
        .config
        .iter()
        .filter_map(|c| c.subnet.clone())
        .collect::<Vec<_>>()
        .join(",")
}

pub fn network_details(n: &NetworkInspect) -> String {
    let mut out = vec![
        format!("Name:      {}", n.name),
        format!("Id:        {}", n.id),
        format!("Driver:    {}", n.driver),
        format!("Internal:  {}", n.internal),
        format!("IPv6:      {}", n.enable_ipv6),
    ];
    if let Some(bridge) = &n.bridge {
        out.push(format!("Bridge:    {bridge}"));
    }
    for c in &n.ipam.config {
        let mut line = format!(
            "Subnet:    {}  gateway {}",
            c.subnet.as_deref().unwrap_or("-"),
            c.gateway.as_deref().unwrap_or("-")
        );
        if let Some(r) = &c.ip_range {
            line.push_str(&format!("  range {r}"));
        }
        for (k, v) in &c.auxiliary_addresses {
            line.push_str(&format!("  aux {k}={v}"));
        }
        out.push(line);
    }
    for (k, v) in &n.options {
        out.push(format!("Option:    {k}={v}"));
    }
    for (k, v) in &n.labels {
        out.push(format!("Label:     {k}={v}"));
    }
    let rows: Vec<Vec<String>> = n
        .containers
        .values()
        .map(|c| {
            vec![
                c.name.clone(),
                c.ipv4_address.clone(),
                c.ipv6_address.clone(),
                c.mac_address.clone(),
            ]
        })
        .collect();
    out.push(String::new());
    out.push(table(&["SANDBOX", "IPV4", "IPV6", "MAC"], &rows));
    out.join("\n")
}

pub fn sandbox_rows(sandboxes: &[SandboxInspect], no_trunc: bool) -> String {
    let rows: Vec<Vec<String>> = sandboxes
        .iter()
        .map(|s| {
            let nets = &s.network_settings.networks;
            let addresses: Vec<String> = nets
                .values()
                .flat_map(|e| [e.ip_address.clone(), e.global_ipv6_address.clone()])
                .filter(|a| !a.is_empty())
                .collect();
            vec![
                shown_id(&s.id, no_trunc).to_string(),
                s.name.clone(),
                nets.keys().cloned().collect::<Vec<_>>().join(","),
                addresses.join(","),
            ]
        })
        .collect();
    table(&["SANDBOX ID", "NAME", "NETWORKS", "ADDRESSES"], &rows)
}

pub fn sandbox_details(s: &SandboxInspect) -> String {
    let mut out = vec![
        format!("Name:      {}", s.name),
        format!("Id:        {}", s.id),
        format!("Hostname:  {}", s.hostname),
        format!("Netns:     {}", s.network_settings.sandbox_key),
        format!("ResolvConf: {}", s.resolv_conf_path),
        String::new(),
    ];
    let rows: Vec<Vec<String>> = s
        .network_settings
        .networks
        .iter()
        .map(|(name, e)| {
            let v4 = if e.ip_address.is_empty() {
                String::new()
            } else {
                format!("{}/{}", e.ip_address, e.ip_prefix_len)
            };
            vec![
                name.clone(),
                e.interface.clone(),
                v4,
                e.global_ipv6_address.clone(),
                e.mac_address.clone(),
                e.gateway.clone(),
                e.aliases.join(","),
            ]
        })
        .collect();
    out.push(table(
        &[
            "NETWORK",
            "INTERFACE",
            "IPV4",
            "IPV6",
            "MAC",
            "GATEWAY",
            "ALIASES",
        ],
        &rows,
    ));
    out.join("\n")
}

/// `netctl dns explain`: the settings, where each came from, and the decisions, one a line.
pub fn dns_explain(d: &DnsExplain) -> String {
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(" ")
        }
    };
    let mut out = vec![
        format!("Sandbox:     {}", d.sandbox),
        format!("Nameservers: {}", list(&d.nameservers)),
        format!("ResolvConf:  {}", d.resolv_conf_path),
        format!(
            "Upstreams:   {}  (from {})",
            list(&d.upstreams),
            d.upstreams_from
        ),
        format!("Search:      {}  (from {})", list(&d.search), d.search_from),
        format!(
            "Options:     {}  (from {})",
            list(&d.options),
            d.options_from
        ),
        format!("Forwarding:  {}", if d.forwarding { "on" } else { "off" }),
    ];
    for unusable in &d.unusable {
        out.push(format!("Unusable:    {unusable}"));
    }
    for unreachable in &d.unreachable {
        out.push(format!("Unreachable: {unreachable}"));
    }
    out.push(String::new());
    out.extend(d.reasons.iter().map(|r| format!("- {r}")));
    out.join("\n") + "\n"
}

/// `netctl gc`: one row per reclaimed endpoint, then what that came to.
pub fn gc_report(report: &netctl_plugin_api::runtime::GcReport) -> String {
    let rows: Vec<Vec<String>> = report
        .endpoints
        .iter()
        .map(|e| {
            vec![
                short(&e.owner).to_string(),
                e.network.clone(),
                e.addresses.join(","),
                e.ports.join(","),
                e.reason.clone(),
            ]
        })
        .collect();
    let mut out = String::new();
    if !rows.is_empty() {
        out.push_str(&table(
            &["CONTAINER", "NETWORK", "ADDRESSES", "PORTS", "REASON"],
            &rows,
        ));
        out.push('\n');
    }
    let addresses: usize = report.endpoints.iter().map(|e| e.addresses.len()).sum();
    let ports: usize = report.endpoints.iter().map(|e| e.ports.len()).sum();
    out.push_str(&format!(
        "{} {} endpoints, {addresses} addresses and {ports} ports\n",
        if report.dry_run {
            "would reclaim"
        } else {
            "reclaimed"
        },
        report.endpoints.len()
    ));
    for repair in &report.sandboxes {
        let state = match (report.dry_run, repair.repaired) {
            (true, _) => "would repair",
            (false, true) => "repaired",
            (false, false) => "cannot repair",
        };
        out.push_str(&format!(
            "sandbox {}: {state}: {}\n",
            repair.sandbox,
            repair.problems.join("; ")
        ));
    }
    for error in &report.errors {
        out.push_str(&format!("error: {error}\n"));
    }
    out
}

/// `netctl system info`, one `Key: value` per line as `docker info` prints.
pub fn system_info(info: &netctl_plugin_api::DaemonInfo) -> String {
    let mut lines = vec![
        format!("Version: {}", info.version),
        format!("PID: {}", info.pid),
        format!("Data root: {}", info.data_root),
        format!("Exec root: {}", info.exec_root),
        format!("Node: {}", info.node_id),
        format!("Cluster: {}", info.cluster_id.as_deref().unwrap_or("none")),
        format!("Drivers: {}", info.drivers.join(" ")),
        format!("Networks: {}", info.networks),
        format!("Sandboxes: {}", info.sandboxes),
        format!("Endpoints: {}", info.endpoints),
        format!("Published ports: {}", info.published_ports),
        format!("DHCP clients: {}", info.dhcp_clients),
    ];
    if let Some(memory) = &info.memory {
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        lines.push(format!(
            "Memory: {:.1} MiB resident, heap {:.1} MiB in use and {:.1} MiB free",
            mib(memory.rss),
            mib(memory.heap_in_use),
            mib(memory.heap_free)
        ));
    }
    lines.push(String::new());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let t = table(&["A", "NAME"], &[vec!["long-value".into(), "x".into()]]);
        assert_eq!(t, "A            NAME\nlong-value   x");
    }
}
