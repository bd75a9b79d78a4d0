//! Cluster objects for people: nodes, the cluster, services.

use netctl_plugin_api::cluster::{ClusterInspect, NodeInspect, ServiceInspect};
use netctl_plugin_api::service_ports::PublishMode;

use super::table::{shown_id, table};

/// `ID  HOSTNAME  ADDRESS  ROLE  STATUS  ENDPOINTS`, this node's id marked with `*` as
/// `docker node ls` does.
pub fn node_rows(nodes: &[NodeInspect], no_trunc: bool) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let mark = if n.this_node { " *" } else { "" };
            vec![
                format!("{}{mark}", shown_id(&n.id, no_trunc)),
                n.hostname.clone(),
                n.address.clone(),
                n.role.clone(),
                n.status.clone(),
                n.endpoints.to_string(),
            ]
        })
        .collect();
    table(
        &["ID", "HOSTNAME", "ADDRESS", "ROLE", "STATUS", "ENDPOINTS"],
        &rows,
    )
}

pub fn node_details(n: &NodeInspect) -> String {
    [
        format!("ID:         {}", n.id),
        format!("Hostname:   {}", n.hostname),
        format!("Address:    {}", n.address),
        format!("Role:       {}", n.role),
        format!("Status:     {}", n.status),
        format!("Endpoints:  {}", n.endpoints),
        format!("Joined:     {}", n.joined),
    ]
    .join("\n")
}

pub fn cluster_details(c: &ClusterInspect) -> String {
    [
        format!("ID:               {}", c.id),
        format!("Created:          {}", c.created),
        format!("VXLAN port:       {}", c.vxlan_port),
        format!(
            "Store:            {} ({})",
            c.store.join(","),
            if c.store_reachable {
                "reachable"
            } else {
                "unreachable"
            }
        ),
        format!(
            "Store user:       {}",
            c.store_user.as_deref().unwrap_or("none (plain HTTP)")
        ),
        format!("Managers:         {}", c.managers),
        format!("Workers:          {}", c.workers),
        format!("Global networks:  {}", c.global_networks),
        format!(
            "This node:        {} ({}, {}, {})",
            c.this_node.hostname, c.this_node.address, c.this_node.role, c.this_node.status
        ),
    ]
    .join("\n")
}

/// `ID  NAME  NETWORK  VIRTUAL IP  REPLICAS` (ready of all).
pub fn service_rows(services: &[ServiceInspect], no_trunc: bool) -> String {
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|s| {
            let ready = s.replicas.iter().filter(|r| r.ready).count();
            vec![
                shown_id(&s.id, no_trunc).to_string(),
                s.name.clone(),
                s.network.clone(),
                s.virtual_ip.clone(),
                format!("{ready}/{}", s.replicas.len()),
                service_ports(s),
            ]
        })
        .collect();
    table(
        &["ID", "NAME", "NETWORK", "VIRTUAL IP", "REPLICAS", "PORTS"],
        &rows,
    )
}

/// `*:8080->80/tcp, *:9090->90/tcp (host)`, as `docker service ls`.
fn service_ports(s: &ServiceInspect) -> String {
    let ports: Vec<String> = s
        .ports
        .iter()
        .map(|p| {
            let host = match p.publish_mode {
                PublishMode::Ingress => "",
                PublishMode::Host => " (host)",
            };
            format!(
                "*:{}->{}/{}{host}",
                p.published_port,
                p.target_port,
                p.protocol.name()
            )
        })
        .collect();
    ports.join(", ")
}

pub fn service_details(s: &ServiceInspect) -> String {
    let mut lines = vec![
        format!("ID:          {}", s.id),
        format!("Name:        {}", s.name),
        format!("Network:     {}", s.network),
        format!("Virtual IP:  {}", s.virtual_ip),
        format!("Created:     {}", s.created),
    ];
    if !s.ports.is_empty() {
        lines.push("Ports:".to_string());
        lines.extend(s.ports.iter().map(|p| format!("  {p}")));
    }
    lines.push("Replicas:".to_string());
    for r in &s.replicas {
        lines.push(format!(
            "  {} on {} ({}){}",
            r.sandbox,
            r.node,
            r.address,
            if r.ready { "" } else { " down" }
        ));
    }
    lines.join("\n")
}
