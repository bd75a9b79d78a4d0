//! What each command does: the daemon, or calls to it through the management API.

use std::path::{Path, PathBuf};

use anyhow::Context;
use netctl_plugin_api::client::Client;
use netctl_plugin_api::ports::{self, ExposedPort};
use netctl_plugin_api::{
    ConnectRequest, DisconnectRequest, EndpointConfig, EndpointIpamConfig, IpamRequest,
    NetworkCreateRequest, PublishRequest, SandboxCreateRequest,
};

use crate::cli::{
    Cli, CniCommand, Command, DaemonArgs, DnsCommand, EndpointArgs, FirewallCommand,
    NetworkCommand, NetworkCreateArgs, RemoveArgs, SandboxCommand, SandboxCreateArgs,
    SystemCommand,
};
use crate::each::{inspect, remove_each};
use crate::exit::Exit;
use crate::print::listing::Filters;
use crate::print::text;
use crate::{exec, ipam_flags, print};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let client = || Client::new(&cli.socket);
    match cli.command {
        Command::Daemon(args) => run_daemon(args, cli.socket),
        Command::Network(cmd) => block_on(network(client(), cmd)),
        Command::Sandbox(SandboxCommand::Exec { name, command }) => {
            let (sandbox, info) = block_on(async {
                let client = client();
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
        Command::Sandbox(cmd) => block_on(sandbox(client(), cmd)),
        Command::Firewall(FirewallCommand::Reload) => block_on(async {
            client().firewall_reload().await?;
            Ok(())
        }),
        Command::Cluster(cmd) => block_on(crate::cluster::cluster(client(), cmd)),
        Command::Node(cmd) => block_on(crate::cluster::node(client(), cmd)),
        Command::Service(cmd) => block_on(crate::service::service(client(), cmd)),
        Command::Port {
            sandbox,
            port,
            format,
        } => block_on(crate::port::port(
            client(),
            &sandbox,
            port.as_deref(),
            &format,
        )),
        Command::Cni(CniCommand::Config { network }) => block_on(async {
            let net = client().network_inspect(&network).await?;
            let conflist = crate::cni::conflist(&net.name, &cli.socket);
            print::json(&conflist)
        }),
        Command::Gc { dry_run, format } => block_on(async {
            let report = client()
                .gc(&netctl_plugin_api::runtime::GcRequest { dry_run })
                .await?;
            print::one(&report, &format, text::gc_report)?;
            if report.errors.is_empty() {
                Ok(())
            } else {
                anyhow::bail!("{} could not be reclaimed or repaired", report.errors.len())
            }
        }),
        Command::System(SystemCommand::Info { format }) => block_on(async {
            let info = client().info().await?;
            print::one(&info, &format, text::system_info)
        }),
        Command::Dns(DnsCommand::Explain { sandbox, format }) => block_on(async {
            let explained = client().sandbox_dns(&sandbox).await?;
            print::one(&explained, &format, text::dns_explain)
        }),
        Command::Version { format } => block_on(crate::version::version(client(), &format)),
        Command::Completion { shell } => {
            crate::docs::completion(shell);
            Ok(())
        }
        Command::Man { dir } => crate::docs::man_pages(&dir),
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
            let filters = Filters::parse(&args.filter, Filters::NETWORK)?;
            let mut list = client.network_list().await?;
            list.retain(|n| filters.network(n));
            print::list(&list, &args, text::network_rows)?;
        }
        NetworkCommand::Inspect(args) => {
            inspect(
                &args,
                |key| {
                    let client = client.clone();
                    async move { client.network_inspect(&key).await }
                },
                text::network_details,
            )
            .await?;
        }
        NetworkCommand::Rm(RemoveArgs { names }) => {
            remove_each(&names, |key| {
                let client = client.clone();
                async move { client.network_remove(&key).await }
            })
            .await?;
        }
        NetworkCommand::Prune { filter, force } => {
            crate::prune::prune(&client, &filter, force).await?;
        }
        NetworkCommand::Exists { network } => {
            return match client.network_inspect(&network).await {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some(netctl_plugin_api::ErrorCode::NotFound) => Err(Exit {
                    code: 1,
                    message: None,
                }
                .into()),
                Err(e) => Err(e.into()),
            };
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
                for line in crate::port::lines(&mapping) {
                    println!("{line}");
                }
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
                add_host,
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
                extra_hosts: add_host,
            };
            let created = client.sandbox_create(&req).await?;
            println!("{}", created.id);
        }
        SandboxCommand::Ls(args) => {
            let filters = Filters::parse(&args.filter, Filters::SANDBOX)?;
            let mut list = client.sandbox_list().await?;
            list.retain(|s| filters.sandbox(s));
            print::list(&list, &args, text::sandbox_rows)?;
        }
        SandboxCommand::Inspect(args) => {
            inspect(
                &args,
                |key| {
                    let client = client.clone();
                    async move { client.sandbox_inspect(&key).await }
                },
                text::sandbox_details,
            )
            .await?;
        }
        SandboxCommand::Rm(RemoveArgs { names }) => {
            remove_each(&names, |key| {
                let client = client.clone();
                async move { client.sandbox_remove(&key).await }
            })
            .await?;
        }
        SandboxCommand::Exec { .. } => unreachable!("handled before a runtime starts"),
    }
    Ok(())
}
