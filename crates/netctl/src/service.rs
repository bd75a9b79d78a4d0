//! `netctl service …`.

use netctl_plugin_api::client::Client;
use netctl_plugin_api::cluster::{ServiceCreateRequest, ServiceInspect, ServiceUpdateRequest};
use netctl_plugin_api::service_ports::PublishMode;

use crate::cli::ServiceCommand;
use crate::commands::{inspect, remove_each};
use crate::output::table;
use crate::print;

pub async fn service(client: Client, cmd: ServiceCommand) -> anyhow::Result<()> {
    match cmd {
        ServiceCommand::Create {
            name,
            network,
            replicas,
            publish,
        } => {
            let created = client
                .service_create(&ServiceCreateRequest {
                    name,
                    network,
                    replicas,
                    publish,
                })
                .await?;
            println!("{}", created.id);
        }
        ServiceCommand::Ls(args) => {
            let filters =
                crate::listing::Filters::parse(&args.filter, crate::listing::Filters::SERVICE)?;
            let mut services = client.service_list().await?;
            services.retain(|s| filters.service(s));
            print::list(&services, &args, service_rows)?;
        }
        ServiceCommand::Inspect(args) => {
            inspect(
                &args,
                |key| {
                    let client = client.clone();
                    async move { client.service_inspect(&key).await }
                },
                service_details,
            )
            .await?;
        }
        ServiceCommand::Update { name, replicas } => {
            let updated = client
                .service_update(&name, &ServiceUpdateRequest { replicas })
                .await?;
            println!("{}", updated.name);
        }
        ServiceCommand::Rm(args) => {
            remove_each(&args.names, |key| {
                let client = client.clone();
                async move { client.service_remove(&key).await }
            })
            .await?;
        }
    }
    Ok(())
}

/// `ID  NAME  NETWORK  VIRTUAL IP  REPLICAS` (ready of all).
fn service_rows(services: &[ServiceInspect], no_trunc: bool) -> String {
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|s| {
            let ready = s.replicas.iter().filter(|r| r.ready).count();
            vec![
                print::shown_id(&s.id, no_trunc).to_string(),
                s.name.clone(),
                s.network.clone(),
                s.virtual_ip.clone(),
                format!("{ready}/{}", s.replicas.len()),
                ports(s),
            ]
        })
        .collect();
    table(
        &["ID", "NAME", "NETWORK", "VIRTUAL IP", "REPLICAS", "PORTS"],
        &rows,
    )
}

/// `*:8080->80/tcp, *:9090->90/tcp (host)`, as `docker service ls`.
fn ports(s: &ServiceInspect) -> String {
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

fn service_details(s: &ServiceInspect) -> String {
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
