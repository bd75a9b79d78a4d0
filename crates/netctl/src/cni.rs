//! The CNI plugin: `netctl` run by a runtime with `CNI_COMMAND` set. A thin client of the
//! daemon: it decodes the call, asks the daemon, and writes the result (or the spec's error
//! object) on stdout. VERSION is answered here, without the daemon: runtimes ask it of every
//! plugin on every command.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use netctl_cni::{
    version_answer, Attachment, CniError, Command, Dns, ErrorCode, Interface, Invocation, IpConfig,
    NetConf, Route, Version,
};
use netctl_plugin_api::client::{Client, ClientError};
use netctl_plugin_api::ports::{PortMapping, Protocol};
use netctl_plugin_api::runtime::{AttachRequest, AttachmentRef, RuntimeGcRequest, ValidAttachment};
use netctl_plugin_api::{
    EndpointConfig, EndpointIpamConfig, IpamConfig, IpamRequest, NetworkCreateRequest,
};

/// Runs the call the environment describes and exits with its status.
pub fn run_plugin() -> ! {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    // The version the caller speaks, for the error object, when stdin says.
    let spoken = serde_json::from_slice::<serde_json::Value>(&stdin)
        .ok()
        .and_then(|v| v["cniVersion"].as_str().map(String::from));
    let outcome = match read {
        Err(e) => Err(CniError::new(ErrorCode::Io, format!("reading stdin: {e}"))),
        Ok(_) => Invocation::from_env(|k| std::env::var(k).ok())
            .and_then(|call| dispatch(&call, &stdin, spoken.as_deref())),
    };
    let mut out = std::io::stdout().lock();
    match outcome {
        Ok(Some(answer)) => {
            let _ = writeln!(out, "{answer}");
            std::process::exit(0)
        }
        Ok(None) => std::process::exit(0),
        Err(e) => {
            let _ = writeln!(out, "{}", e.to_json(spoken.as_deref().unwrap_or("1.1.0")));
            std::process::exit(1)
        }
    }
}

fn dispatch(
    call: &Invocation,
    stdin: &[u8],
    spoken: Option<&str>,
) -> Result<Option<serde_json::Value>, CniError> {
    if call.command == Command::Version {
        return Ok(Some(version_answer(spoken)));
    }
    let conf = NetConf::parse(stdin)?;
    let client = Client::new(socket_of(&conf));
    // Sockets only: no timers, no signals (a plugin is one request).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| CniError::new(ErrorCode::Io, format!("starting the runtime: {e}")))?;
    runtime.block_on(async {
        match call.command {
            Command::Add => add(&client, call, &conf).await.map(Some),
            Command::Del => del(&client, call, &conf).await.map(|()| None),
            Command::Check => check(&client, call, &conf).await.map(|()| None),
            Command::Status => status(&client, &conf).await.map(|()| None),
            Command::Gc => gc(&client, &conf).await.map(|()| None),
            Command::Version => unreachable!("answered above"),
        }
    })
}

/// The config's `socket`, else `NETCTL_SOCKET` (for tests: runtimes pass no environment of
/// ours), else the daemon's default.
fn socket_of(conf: &NetConf) -> PathBuf {
    conf.socket
        .clone()
        .or_else(|| std::env::var_os("NETCTL_SOCKET").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(netctl_daemon::DEFAULT_SOCKET))
}

async fn add(
    client: &Client,
    call: &Invocation,
    conf: &NetConf,
) -> Result<serde_json::Value, CniError> {
    let netns = call.netns.as_deref().expect("ADD has CNI_NETNS");
    if !crate::exec::is_netns_path(netns) {
        return Err(CniError::new(
            ErrorCode::UnknownContainer,
            format!("no network namespace at {}", netns.display()),
        ));
    }
    let prev = conf
        .prev_result
        .as_ref()
        .map(Attachment::from_prev_result)
        .transpose()?;
    let chained = prev
        .as_ref()
        .filter(|p| p.container_interfaces().next().is_some());
    let chained_addresses = match chained {
        Some(prev) => {
            let addresses = prev.addresses_of(&call.ifname);
            if addresses.is_empty() {
                return Err(CniError::new(
                    ErrorCode::InvalidConfig,
                    format!("prevResult has no address for {}", call.ifname),
                ));
            }
            addresses.iter().map(ToString::to_string).collect()
        }
        None => Vec::new(),
    };
    let req = AttachRequest {
        container_id: call.container_id.clone(),
        netns: netns.display().to_string(),
        caller_pid: Some(std::process::id()),
        ifname: call.ifname.clone(),
        network: conf.network_name().to_string(),
        create: conf.describes_network().then(|| network_settings(conf)),
        hostname: call.args.pod_name.clone(),
        endpoint_config: endpoint_config(call, conf)?,
        chained_addresses,
    };
    let attached = client
        .runtime_attach(&req)
        .await
        .map_err(|e| from_client(e, &socket_of(conf), Command::Add))?;
    if let Some(prev) = chained {
        // A chained plugin passes the result on as it came.
        return Ok(prev.render(conf.version()));
    }
    Ok(result_of(&attached, netns).render(conf.version()))
}

/// The result a runtime reads: the container's interface, its addresses, routes and DNS.
fn result_of(attached: &netctl_plugin_api::runtime::Attachment, netns: &Path) -> Attachment {
    Attachment {
        interfaces: vec![Interface {
            name: attached.ifname.clone(),
            mac: attached.mac_address.clone(),
            mtu: Some(attached.mtu),
            sandbox: Some(netns.display().to_string()),
        }],
        ips: attached
            .addresses
            .iter()
            .filter_map(|a| {
                Some(IpConfig {
                    address: a.address.parse().ok()?,
                    gateway: a.gateway.as_deref().and_then(|g| g.parse().ok()),
                    interface: Some(0),
                })
            })
            .collect(),
        routes: attached
            .routes
            .iter()
            .filter_map(|r| {
                Some(Route {
                    dst: r.destination.parse().ok()?,
                    gw: r.gateway.as_deref().and_then(|g| g.parse().ok()),
                })
            })
            .collect(),
        dns: Dns {
            nameservers: attached.nameservers.clone(),
            domain: None,
            search: attached.search.clone(),
            options: attached.dns_options.clone(),
        },
    }
}

/// Addresses (`IP=` first, then runtimeConfig `ips`), MAC, aliases and port mappings.
fn endpoint_config(call: &Invocation, conf: &NetConf) -> Result<EndpointConfig, CniError> {
    let invalid = |msg: String| CniError::new(ErrorCode::InvalidConfig, msg);
    let mut ips: Vec<IpAddr> = call.args.ips.clone();
    for text in &conf.runtime_config.ips {
        let ip: IpAddr = text
            .split('/')
            .next()
            .unwrap_or(text)
            .parse()
            .map_err(|_| invalid(format!("runtimeConfig ips: {text:?} is no address")))?;
        ips.push(ip);
    }
    // After `podman network reload` the same address comes twice.
    ips.dedup();
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips.dedup();
    let pick = |v6: bool| -> Result<Option<String>, CniError> {
        let mut family = ips.iter().filter(|ip| ip.is_ipv6() == v6);
        let first = family.next().map(ToString::to_string);
        if family.next().is_some() {
            return Err(invalid(format!(
                "more than one {} address asked for on one interface",
                if v6 { "IPv6" } else { "IPv4" }
            )));
        }
        Ok(first)
    };
    let (ipv4, ipv6) = (pick(false)?, pick(true)?);
    let ipam_config = (ipv4.is_some() || ipv6.is_some()).then_some(EndpointIpamConfig {
        ipv4_address: ipv4,
        ipv6_address: ipv6,
    });
    let port_bindings = conf
        .runtime_config
        .port_mappings
        .iter()
        .map(|p| {
            let proto = match p.protocol.to_ascii_lowercase().as_str() {
                "tcp" | "" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                other => {
                    return Err(invalid(format!(
                        "portMappings: protocol {other:?} is none of tcp, udp, sctp"
                    )))
                }
            };
            let host_ip = match p.host_ip.as_deref().filter(|h| !h.is_empty()) {
                None => None,
                Some(text) => Some(text.parse::<IpAddr>().map_err(|_| {
                    invalid(format!("portMappings: hostIP {text:?} is no address"))
                })?),
            };
            if p.container_port == 0 {
                return Err(invalid("portMappings: containerPort 0".into()));
            }
            Ok(PortMapping {
                proto,
                host_ip,
                host_port: p.host_port,
                host_port_end: p.host_port,
                container_port: p.container_port,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(EndpointConfig {
        ipam_config,
        aliases: conf.aliases(),
        mac_address: call.args.mac.clone().or(conf.runtime_config.mac.clone()),
        port_bindings,
        ..EndpointConfig::default()
    })
}

/// The network the conflist describes, made on first ADD when it does not exist.
fn network_settings(conf: &NetConf) -> NetworkCreateRequest {
    let config = conf
        .subnet
        .iter()
        .enumerate()
        .map(|(i, subnet)| IpamConfig {
            subnet: Some(subnet.clone()),
            gateway: conf.gateway.get(i).cloned(),
            ..IpamConfig::default()
        })
        .collect();
    NetworkCreateRequest {
        name: conf.network_name().to_string(),
        driver: conf.driver.clone(),
        ipam: Some(IpamRequest {
            config,
            ..IpamRequest::default()
        }),
        internal: conf.internal,
        enable_ipv6: conf.ipv6,
        options: conf.options.clone(),
        ..NetworkCreateRequest::default()
    }
}

/// Succeeds whatever is left to remove; with the daemon down, it succeeds too and the
/// daemon collects the endpoint when it comes back (the namespace will be gone by then).
async fn del(client: &Client, call: &Invocation, conf: &NetConf) -> Result<(), CniError> {
    let req = AttachmentRef {
        container_id: call.container_id.clone(),
        ifname: call.ifname.clone(),
        network: conf.network_name().to_string(),
        ..AttachmentRef::default()
    };
    match client.runtime_detach(&req).await {
        Ok(()) => Ok(()),
        Err(ClientError::Connect { path, .. }) => {
            eprintln!(
                "netctl: daemon not running at {}: the endpoint is collected when it starts",
                path.display()
            );
            Ok(())
        }
        Err(ClientError::Api(e)) if e.code != netctl_plugin_api::ErrorCode::InvalidArgument => {
            // Removed from the records; what the kernel kept is retried at the next start.
            eprintln!("netctl: {}", e.message);
            Ok(())
        }
        Err(e) => Err(from_client(e, &socket_of(conf), Command::Del)),
    }
}

async fn check(client: &Client, call: &Invocation, conf: &NetConf) -> Result<(), CniError> {
    if !conf.version().has_check() {
        return Err(CniError::new(
            ErrorCode::IncompatibleVersion,
            format!("CHECK is not defined for CNI {}", conf.cni_version),
        ));
    }
    let Some(prev) = &conf.prev_result else {
        return Err(CniError::new(
            ErrorCode::InvalidConfig,
            "CHECK needs the prevResult of the ADD",
        ));
    };
    Attachment::from_prev_result(prev)?;
    let netns = call.netns.as_deref().expect("CHECK has CNI_NETNS");
    let req = AttachmentRef {
        container_id: call.container_id.clone(),
        ifname: call.ifname.clone(),
        network: conf.network_name().to_string(),
        netns: Some(netns.display().to_string()),
        caller_pid: Some(std::process::id()),
    };
    let report = client
        .runtime_check(&req)
        .await
        .map_err(|e| from_client(e, &socket_of(conf), Command::Check))?;
    if report.differences.is_empty() {
        return Ok(());
    }
    Err(CniError::new(
        ErrorCode::Daemon,
        format!(
            "container {} on network {} is not as it was attached",
            call.container_id,
            conf.network_name()
        ),
    )
    .with_details(report.differences.join("; ")))
}

async fn status(client: &Client, conf: &NetConf) -> Result<(), CniError> {
    client.info().await.map(drop).map_err(|e| {
        CniError::new(
            ErrorCode::NotAvailable,
            from_client(e, &socket_of(conf), Command::Status).msg,
        )
    })
}

async fn gc(client: &Client, conf: &NetConf) -> Result<(), CniError> {
    let req = RuntimeGcRequest {
        network: conf.network_name().to_string(),
        valid: conf
            .valid_attachments
            .iter()
            .flatten()
            .map(|a| ValidAttachment {
                container_id: a.container_id.clone(),
                ifname: a.ifname.clone(),
            })
            .collect(),
    };
    match client.runtime_gc(&req).await {
        Ok(report) => {
            for error in report.errors {
                eprintln!("netctl: {error}");
            }
            Ok(())
        }
        // No such network: nothing of it to collect.
        Err(ClientError::Api(e)) if e.code == netctl_plugin_api::ErrorCode::NotFound => Ok(()),
        Err(e) => Err(from_client(e, &socket_of(conf), Command::Gc)),
    }
}

/// The daemon's answer as the spec's error: down → try again later; bad input → invalid
/// config; a namespace or container it does not know → unknown container.
fn from_client(e: ClientError, socket: &Path, command: Command) -> CniError {
    use netctl_plugin_api::ErrorCode as Api;
    match e {
        ClientError::Connect { .. } => CniError::new(
            ErrorCode::TryAgainLater,
            format!("netctl daemon not running at {}", socket.display()),
        ),
        ClientError::Http(msg) => CniError::new(ErrorCode::TryAgainLater, msg),
        ClientError::Api(e) => {
            let code = match e.code {
                Api::NotFound if command == Command::Check => ErrorCode::UnknownContainer,
                Api::NotFound if e.message.contains("network namespace") => {
                    ErrorCode::UnknownContainer
                }
                Api::InvalidArgument | Api::NotFound | Api::Conflict => ErrorCode::InvalidConfig,
                Api::Unavailable => ErrorCode::TryAgainLater,
                _ => ErrorCode::Daemon,
            };
            CniError::new(code, e.message)
        }
    }
}

/// `netctl cni config NET`: the conflist that attaches containers to an existing network.
pub fn conflist(network: &str, socket: &Path) -> serde_json::Value {
    let mut plugin = serde_json::json!({
        "type": "netctl",
        "network": network,
        "capabilities": {"portMappings": true, "ips": true, "mac": true, "aliases": true},
    });
    if socket != Path::new(netctl_daemon::DEFAULT_SOCKET) {
        plugin["socket"] = socket.display().to_string().into();
    }
    serde_json::json!({
        // 1.0.0, not 1.1.0: libcni 1.1 (podman 4, containerd 1.6) rejects 1.1.0 results.
        "cniVersion": Version::V1_0_0.as_str(),
        "name": network,
        "plugins": [plugin],
    })
}
