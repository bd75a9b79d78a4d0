//! What each command does: the daemon, or one call to it through the management API.

use std::path::{Path, PathBuf};

use anyhow::Context;
use netctl_plugin_api::client::Client;
use netctl_plugin_api::ports::{self, ExposedPort};
use netctl_plugin_api::{
    ConnectRequest, DisconnectRequest, EndpointConfig, EndpointIpamConfig, IpamRequest,
    NetworkCreateRequest, PublishRequest, SandboxCreateRequest,
};

use crate::cli::{
    Cli, CniCommand, Command, DaemonArgs, DnsCommand, EndpointArgs, FirewallCommand, Format,
    ListArgs, NetworkCommand, NetworkCreateArgs, RemoveArgs, SandboxCommand, SandboxCreateArgs,
    SystemCommand,
};
use crate::{exec, ipam_flags, output};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Daemon(args) => run_daemon(args, cli.socket),
        Command::Network(cmd) => block_on(network(Client::new(&cli.socket), cmd)),
        Command::Sandbox(SandboxCommand::Exec { name, command }) => {
            let client = Client::new(&cli.socket);
            let (sandbox, info) = block_on(async {
                Ok((client.sandbox_inspect(&name).await?, client.info().await?))
            })?;
            let netns = PathBuf::from(&sandbox.network_settings.sandbox_key);
            let hosts = PathBuf::from(&sandbox.hosts_path);
            let files = exec::SandboxFiles {
                resolv_conf: Path::new(&sandbox.resolv_conf_path),
                hosts: (!sandbox.hosts_path.is_empty()).then_some(hosts.as_path()),
            };
            exec::exec_in(&netns, info.pid, &sandbox.hostname, &files, &command)
        }
        Command::Sandbox(cmd) => block_on(sandbox(Client::new(&cli.socket), cmd)),
        Command::Firewall(FirewallCommand::Reload) => block_on(async {
            Client::new(&cli.socket).firewall_reload().await?;
            Ok(())
        }),
        Command::Cluster(cmd) => block_on(crate::cluster::cluster(Client::new(&cli.socket), cmd)),
        Command::Node(cmd) => block_on(crate::cluster::node(Client::new(&cli.socket), cmd)),
        Command::Service(cmd) => block_on(crate::service::service(Client::new(&cli.socket), cmd)),
        Command::Port { sandbox, format } => {
            block_on(port(Client::new(&cli.socket), &sandbox, format))
        }
        Command::Cni(CniCommand::Config { network }) => block_on(async {
            let net = Client::new(&cli.socket).network_inspect(&network).await?;
            let conflist = crate::cni::conflist(&net.name, &cli.socket);
            println!("{}", serde_json::to_string_pretty(&conflist)?);
            Ok(())
        }),
        Command::Gc { dry_run, format } => block_on(async {
            let report = Client::new(&cli.socket)
                .gc(&netctl_plugin_api::runtime::GcRequest { dry_run })
                .await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Format::Table => print!("{}", output::gc_report(&report)),
            }
            if report.errors.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("{} could not be reclaimed entirely", report.errors.len())
            }
        }),
        Command::System(SystemCommand::Info { format }) => block_on(async {
            let info = Client::new(&cli.socket).info().await?;
            match format {
                Format::Json => print_json(&info),
                Format::Table => {
                    print!("{}", output::system_info(&info));
                    Ok(())
                }
            }
        }),
        Command::Dns(DnsCommand::Explain { sandbox, format }) => block_on(async {
            let explained = Client::new(&cli.socket).sandbox_dns(&sandbox).await?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&explained)?),
                Format::Table => print!("{}", output::dns_explain(&explained)),
            }
            Ok(())
        }),
    }
}

/// The CLI is one request at a time: a single-threaded runtime, so that `exec` can change
/// namespaces afterwards on a process with no other threads.
fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(f)
}

fn run_daemon(args: DaemonArgs, socket: PathBuf) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!(
            "netctl daemon must run as root: it makes network namespaces, links and nftables tables"
        );
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let (config_path, required) = match args.config {
        Some(path) => (path, true),
        None => (PathBuf::from(netctl_daemon::DEFAULT_CONFIG), false),
    };
    let mut config = netctl_daemon::DaemonConfig::load(&config_path, required)?;
    if let Some(group) = args.group {
        netctl_daemon::access::group_id(&group).map_err(anyhow::Error::msg)?;
        config.group = Some(group);
    }
    if let Some(addr) = args.metrics_addr {
        config.metrics_addr = Some(addr);
    }
    let paths = netctl_daemon::Paths {
        data_root: args
            .data_root
            .or_else(|| config.data_root.clone())
            .unwrap_or_else(|| netctl_daemon::DEFAULT_DATA_ROOT.into()),
        exec_root: args
            .exec_root
            .or_else(|| config.exec_root.clone())
            .unwrap_or_else(|| netctl_daemon::DEFAULT_EXEC_ROOT.into()),
        socket,
        config: config_path,
        host_resolv_conf: args.resolv_conf,
        docker_plugin_socket: (args.docker_plugin_socket != std::path::Path::new("none"))
            .then_some(args.docker_plugin_socket),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        netctl_daemon::run(config, paths, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}

fn endpoint_config(args: EndpointArgs) -> anyhow::Result<EndpointConfig> {
    let ipam = (args.ip.is_some() || args.ip6.is_some()).then_some(EndpointIpamConfig {
        ipv4_address: args.ip,
        ipv6_address: args.ip6,
    });
    let port_bindings = parse_publish_all(&args.publish)?;
    let mut exposed_ports = Vec::new();
    for spec in &args.expose {
        let parsed = ports::parse_expose(spec).map_err(anyhow::Error::msg)?;
        exposed_ports.extend(
            parsed
                .into_iter()
                .map(|(port, proto)| ExposedPort { proto, port }),
        );
    }
    Ok(EndpointConfig {
        ipam_config: ipam,
        aliases: args.alias,
        mac_address: args.mac,
        port_bindings,
        exposed_ports,
        publish_all_ports: args.publish_all,
    })
}

fn parse_publish_all(specs: &[String]) -> anyhow::Result<Vec<ports::PortMapping>> {
    let mut all = Vec::new();
    for spec in specs {
        all.extend(ports::parse_publish(spec).map_err(anyhow::Error::msg)?);
    }
    Ok(all)
}

/// `netctl port SANDBOX`: `80/tcp -> 0.0.0.0:8080`, one line per published port.
async fn port(client: Client, sandbox: &str, format: Format) -> anyhow::Result<()> {
    let inspect = client.sandbox_inspect(sandbox).await?;
    let mut mappings: Vec<_> = inspect
        .network_settings
        .networks
        .values()
        .flat_map(|e| e.ports.iter().cloned())
        .collect();
    mappings.sort_by_key(|m| (m.container_port, m.proto, m.host_port));
    match format {
        Format::Json => print_json(&mappings),
        Format::Table => {
            mappings.iter().for_each(|m| println!("{m}"));
            Ok(())
        }
    }
}

pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `ls`: JSON, names only (`-q`), or a table.
pub(crate) fn print_list<T: serde::Serialize>(
    items: &[T],
    args: &ListArgs,
    name: impl Fn(&T) -> &String,
    table: impl Fn(&[T]) -> String,
) -> anyhow::Result<()> {
    match (args.format, args.quiet) {
        (Format::Json, _) => print_json(&items)?,
        (Format::Table, true) => items.iter().for_each(|i| println!("{}", name(i))),
        (Format::Table, false) => println!("{}", table(items)),
    }
    Ok(())
}

/// `inspect`: JSON, or one block of details per object.
pub(crate) fn print_details<T: serde::Serialize>(
    items: &[T],
    format: Format,
    details: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    match format {
        Format::Json => print_json(&items),
        Format::Table => {
            let text: Vec<_> = items.iter().map(details).collect();
            println!("{}", text.join("\n\n"));
            Ok(())
        }
    }
}

fn create_request(args: NetworkCreateArgs) -> anyhow::Result<NetworkCreateRequest> {
    let config = ipam_flags::consolidate(
        &args.subnet,
        &args.gateway,
        &args.ip_range,
        &args.aux_address,
    )?;
    Ok(NetworkCreateRequest {
        name: args.name,
        driver: Some(args.driver),
        ipam: Some(IpamRequest {
            driver: args.ipam_driver,
            config,
            options: ipam_flags::key_values(&args.ipam_opt, "IPAM option")?,
        }),
        internal: args.internal,
        enable_ipv6: args.ipv6,
        options: ipam_flags::driver_options(&args.opt)?,
        labels: ipam_flags::key_values(&args.label, "label")?,
    })
}

async fn network(client: Client, cmd: NetworkCommand) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Create(args) => {
            let created = client.network_create(&create_request(args)?).await?;
            println!("{}", created.id);
        }
        NetworkCommand::Ls(args) => {
            let list = client.network_list().await?;
            print_list(&list, &args, |n| &n.name, output::network_rows)?;
        }
        NetworkCommand::Inspect(args) => {
            let mut found = Vec::new();
            for name in &args.names {
                found.push(client.network_inspect(name).await?);
            }
            print_details(&found, args.format, output::network_details)?;
        }
        NetworkCommand::Rm(RemoveArgs { names }) => {
            for name in &names {
                client.network_remove(name).await?;
                println!("{name}");
            }
        }
        NetworkCommand::Connect {
            network,
            sandbox,
            endpoint,
        } => {
            let req = ConnectRequest {
                container: sandbox,
                endpoint_config: endpoint_config(endpoint)?,
            };
            client.network_connect(&network, &req).await?;
        }
        NetworkCommand::Publish {
            network,
            sandbox,
            publish,
        } => {
            let req = PublishRequest {
                container: sandbox,
                port_bindings: parse_publish_all(&publish)?,
            };
            for mapping in client.network_publish(&network, &req).await? {
                println!("{mapping}");
            }
        }
        NetworkCommand::Unpublish {
            network,
            sandbox,
            publish,
        } => {
            let req = PublishRequest {
                container: sandbox,
                port_bindings: parse_publish_all(&publish)?,
            };
            client.network_unpublish(&network, &req).await?;
        }
        NetworkCommand::Disconnect { network, sandbox } => {
            client
                .network_disconnect(&network, &DisconnectRequest { container: sandbox })
                .await?;
        }
    }
    Ok(())
}

async fn sandbox(client: Client, cmd: SandboxCommand) -> anyhow::Result<()> {
    match cmd {
        SandboxCommand::Create(args) => {
            let SandboxCreateArgs {
                name,
                network,
                hostname,
                endpoint,
                dns,
            } = *args;
            let req = SandboxCreateRequest {
                name,
                hostname,
                network,
                endpoint_config: endpoint_config(endpoint)?,
                dns: dns.dns,
                dns_search: dns.dns_search,
                dns_options: dns.dns_option,
            };
            let created = client.sandbox_create(&req).await?;
            println!("{}", created.id);
        }
        SandboxCommand::Ls(args) => {
            let list = client.sandbox_list().await?;
            print_list(&list, &args, |s| &s.name, output::sandbox_rows)?;
        }
        SandboxCommand::Inspect(args) => {
            let mut found = Vec::new();
            for name in &args.names {
                found.push(client.sandbox_inspect(name).await?);
            }
            print_details(&found, args.format, output::sandbox_details)?;
        }
        SandboxCommand::Rm(RemoveArgs { names }) => {
            for name in &names {
                client.sandbox_remove(name).await?;
                println!("{name}");
            }
        }
        SandboxCommand::Exec { .. } => unreachable!("handled before a runtime starts"),
    }
    Ok(())
}
