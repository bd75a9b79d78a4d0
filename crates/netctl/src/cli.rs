//! Command-line grammar; spellings follow Docker's.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::print::template::Format;

#[derive(Parser, Debug)]
#[command(
    name = "netctl",
    version,
    about = "Container networking: bridge, host, none and overlay networks, IPAM and sandboxes"
)]
pub struct Cli {
    /// The daemon's management socket.
    #[arg(long, global = true, env = "NETCTL_SOCKET", default_value = netctl_daemon::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon in the foreground.
    Daemon(DaemonArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage sandboxes (network namespaces).
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// netctl's firewall.
    #[command(subcommand)]
    Firewall(FirewallCommand),
    /// The embedded DNS server.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Make, join, leave and inspect a cluster (for overlay networks).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The cluster's nodes.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Services: a virtual IP on a global network, balanced over replica sandboxes.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// The CNI plugin's side: conflists for netctl networks.
    #[command(subcommand)]
    Cni(CniCommand),
    /// Reclaim endpoints, addresses and ports of containers whose namespace is gone (their
    /// runtime never said DEL).
    Gc {
        /// Only show what would be reclaimed.
        #[arg(long)]
        dry_run: bool,
        /// `table`, `json`, or a Go template (`'{{json .}}'`).
        #[arg(long, default_value = "table")]
        format: Format,
    },
    /// The daemon: what it is and holds (`system info`).
    #[command(subcommand)]
    System(SystemCommand),
    /// List a sandbox's published ports, or where one port is published, as `docker
    /// port` does.
    Port {
        sandbox: String,
        /// PORT[/PROTO] (tcp when not given).
        port: Option<String>,
        /// `table`, `json`, or a Go template (`'{{json .}}'`).
        #[arg(long, default_value = "table")]
        format: Format,
    },
    /// The client's and the daemon's versions.
    Version {
        /// `table`, `json`, or a Go template (`'{{.Client.Version}}'`).
        #[arg(short, long, default_value = "table")]
        format: Format,
    },
    /// Print a shell completion script (`netctl completion bash > /etc/bash_completion.d/netctl`).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write a man page for every command into DIR (`netctl.1`, `netctl-network-create.1`…).
    Man {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Version, paths, node and cluster, and how many networks, sandboxes, endpoints,
    /// published ports and DHCP clients the daemon holds.
    Info {
        /// `table`, `json`, or a Go template (`'{{json .}}'`).
        #[arg(long, default_value = "table")]
        format: Format,
    },
}

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// daemon.json (Docker-compatible keys).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where the store lives.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
    /// Where sockets and namespace files live.
    #[arg(long)]
    pub exec_root: Option<PathBuf>,
    /// The host's resolv.conf: upstreams for sandboxes that name none (re-read on change).
    #[arg(long, default_value = netctl_daemon::DEFAULT_HOST_RESOLV_CONF)]
    pub resolv_conf: PathBuf,
    /// The Docker remote plugin's socket; its file name is the driver's name. `none`: no
    /// plugin.
    #[arg(long, default_value = netctl_daemon::DEFAULT_DOCKER_PLUGIN_SOCKET)]
    pub docker_plugin_socket: PathBuf,
    /// The API socket's group, as dockerd's `-G`: its members reach the API and get what
    /// daemon.json's `roles` gives them.
    #[arg(short = 'G', long)]
    pub group: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (`127.0.0.1:9323`), as dockerd's
    /// `--metrics-addr`.
    #[arg(long)]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

#[derive(Subcommand, Debug)]
pub enum CniCommand {
    /// Print the conflist that attaches CNI runtimes' containers to an existing network
    /// (`netctl cni config web > /etc/cni/net.d/10-web.conflist`).
    Config { network: String },
}

#[derive(Subcommand, Debug)]
pub enum DnsCommand {
    /// Which upstreams, search domains and options a sandbox uses, and why.
    Explain {
        sandbox: String,
        /// `table`, `json`, or a Go template (`'{{json .}}'`).
        #[arg(long, default_value = "table")]
        format: Format,
    },
}

/// A sandbox's own DNS settings, as `docker run` takes them.
#[derive(Args, Debug, Default)]
pub struct DnsArgs {
    /// An upstream DNS server (repeatable); before daemon.json's and the host's.
    #[arg(long)]
    pub dns: Vec<String>,
    /// A search domain (repeatable).
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// A resolver option such as ndots:2 (repeatable).
    #[arg(long)]
    pub dns_option: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct ListArgs {
    /// `table`, `json`, a Go template (`'{{.Name}} {{.Driver}}'`, `'{{json .}}'`), or
    /// `table TEMPLATE` (with a header).
    #[arg(long, default_value = "table")]
    pub format: Format,
    /// Only print IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print whole IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only what matches KEY=VALUE (repeatable; values of one key are alternatives).
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// `table`, `json`, or a Go template (`'{{.IPAM.Config}}'`).
    #[arg(short, long, default_value = "table")]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network.
    Create(NetworkCreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Show one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm(RemoveArgs),
    /// Connect a sandbox to a network.
    Connect {
        network: String,
        sandbox: String,
        #[command(flatten)]
        endpoint: EndpointArgs,
    },
    /// Disconnect a sandbox from a network.
    Disconnect { network: String, sandbox: String },
    /// Remove every network no sandbox or container uses (netctl's predefined and
    /// cluster networks and Docker's stay).
    Prune {
        /// Only networks that match: `label=KEY[=VALUE]`, `label!=…`, `until=TIMESTAMP`
        /// (RFC 3339, or a duration such as `24h` ago).
        #[arg(long = "filter")]
        filter: Vec<String>,
        /// Do not ask.
        #[arg(short, long)]
        force: bool,
    },
    /// Exit 0 when the network exists, 1 when it does not (as `podman network exists`).
    Exists { network: String },
    /// Publish more ports of a connected sandbox.
    Publish {
        network: String,
        sandbox: String,
        /// [IP:][HOSTPORT[-END]:]PORT[-END][/PROTO]
        #[arg(short = 'p', long, required = true)]
        publish: Vec<String>,
    },
    /// Withdraw published ports (all of them without -p).
    Unpublish {
        network: String,
        sandbox: String,
        #[arg(short = 'p', long)]
        publish: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    pub name: String,
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR form (repeat for several, e.g. an IPv4 and an IPv6 one).
    #[arg(long)]
    pub subnet: Vec<String>,
    /// Gateway of the subnet it falls in.
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Where automatic addresses come from, within a subnet.
    #[arg(long)]
    pub ip_range: Vec<String>,
    /// Addresses never handed out: NAME=ADDRESS.
    #[arg(long = "aux-address")]
    pub aux_address: Vec<String>,
    /// Driver options: KEY=VALUE (mtu, icc, or Docker's com.docker.network.* names).
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Labels: KEY=VALUE.
    #[arg(long)]
    pub label: Vec<String>,
    /// No traffic in or out of the network.
    #[arg(long)]
    pub internal: bool,
    /// Give the network IPv6.
    #[arg(long)]
    pub ipv6: bool,
    /// Where endpoints' addresses come from: `default` (netctl's pools) or `dhcp` (the
    /// LAN's DHCP server, usually with `-o parent=IFACE`).
    #[arg(long)]
    pub ipam_driver: Option<String>,
    /// IPAM driver options: KEY=VALUE.
    #[arg(long)]
    pub ipam_opt: Vec<String>,
}

#[derive(Args, Debug, Default)]
pub struct EndpointArgs {
    /// IPv4 address.
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address.
    #[arg(long)]
    pub ip6: Option<String>,
    /// Another name for the sandbox on this network.
    #[arg(long)]
    pub alias: Vec<String>,
    /// MAC address of the interface.
    #[arg(long)]
    pub mac: Option<String>,
    /// Publish a port: [IP:][HOSTPORT[-END]:]PORT[-END][/tcp|udp|sctp] (IPv6 as [addr]).
    #[arg(short = 'p', long)]
    pub publish: Vec<String>,
    /// Offer a port, PORT[-END][/PROTO], published by --publish-all.
    #[arg(long)]
    pub expose: Vec<String>,
    /// Publish every exposed port on a host port of the daemon's choosing.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
}

#[derive(Args, Debug)]
pub struct SandboxCreateArgs {
    pub name: String,
    /// A network to join: a bridge network, `host` or `none`.
    #[arg(long)]
    pub network: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    /// A line for the sandbox's hosts file: HOST:IP (repeatable), as `docker run
    /// --add-host`.
    #[arg(long)]
    pub add_host: Vec<String>,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    #[command(flatten)]
    pub dns: DnsArgs,
}

#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// Create a sandbox: a network namespace with loopback up.
    Create(Box<SandboxCreateArgs>),
    /// List sandboxes.
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Show one or more sandboxes.
    Inspect(InspectArgs),
    /// Remove one or more sandboxes.
    #[command(alias = "remove")]
    Rm(RemoveArgs),
    /// Run a command inside a sandbox's network namespace.
    Exec {
        name: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum FirewallCommand {
    /// Rebuild netctl's nft table from the daemon's state (the user's table is left alone).
    Reload,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Make a cluster with this node as its first manager.
    Init {
        /// This node's address on the underlay (its VXLAN endpoint).
        #[arg(long)]
        advertise_addr: String,
        /// The cluster store's (etcd's) client URLs, comma-separated; daemon.json's
        /// cluster-store when not given.
        #[arg(long, value_delimiter = ',')]
        store: Vec<String>,
        /// The cluster's VXLAN UDP port.
        #[arg(long, default_value_t = 4789)]
        vxlan_port: u16,
        #[command(flatten)]
        tls: StoreTlsFlags,
    },
    /// Join a cluster with a token from one of its managers.
    Join {
        #[arg(long)]
        token: String,
        #[arg(long)]
        advertise_addr: String,
        #[arg(long, value_delimiter = ',')]
        store: Vec<String>,
        /// A TLS store's CA certificate (PEM): the manager and the store are verified
        /// against it.
        #[arg(long, requires = "manager")]
        store_ca: Option<PathBuf>,
        /// A manager of the cluster, ADDRESS[:PORT] (port 2377): it issues this node's
        /// certificate for a TLS store.
        #[arg(long, requires = "store_ca")]
        manager: Option<String>,
    },
    /// Make the certificates of a TLS cluster store in DIR: the cluster's CA (ca.pem,
    /// ca-key.pem), the etcd members' server certificate (etcd.pem, etcd-key.pem) and the
    /// administrator's client certificate (root.pem, root-key.pem).
    Certs {
        #[arg(long)]
        dir: PathBuf,
        /// The etcd members' addresses or DNS names, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        host: Vec<String>,
    },
    /// Print the token (and the command) that joins a node as a worker or a manager.
    JoinToken {
        #[arg(value_parser = ["worker", "manager"])]
        role: String,
        /// Only the token.
        #[arg(short, long)]
        quiet: bool,
        /// Make a new token; the old one stops working.
        #[arg(long)]
        rotate: bool,
    },
    /// Leave the cluster.
    Leave {
        /// Leave even as the last manager, or with endpoints on global networks.
        #[arg(short, long)]
        force: bool,
    },
    /// Show the cluster this node is in.
    Inspect {
        /// `table`, `json`, or a Go template (`'{{json .}}'`).
        #[arg(long, default_value = "table")]
        format: Format,
    },
    /// Write netctl's keys in the cluster store to FILE (JSON).
    Backup { file: PathBuf },
    /// Restore a backup into an empty cluster store.
    Restore {
        file: PathBuf,
        /// The store to restore into; this node's (or daemon.json's) when not given.
        #[arg(long, value_delimiter = ',')]
        store: Vec<String>,
    },
}

/// `cluster init` on a TLS store (`https://`): all four, or none.
#[derive(Args, Debug, Default)]
pub struct StoreTlsFlags {
    /// The CA (PEM) etcd verifies clients against, and its members are verified against.
    #[arg(long, requires_all = ["store_cert", "store_key", "store_ca_key"])]
    pub store_ca: Option<PathBuf>,
    /// The CA's key: managers issue each node's certificate with it.
    #[arg(long, requires = "store_ca")]
    pub store_ca_key: Option<PathBuf>,
    /// A client certificate of etcd's `root` user (common name `root`).
    #[arg(long, requires = "store_ca")]
    pub store_cert: Option<PathBuf>,
    #[arg(long, requires = "store_ca")]
    pub store_key: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Create a service on a global network.
    Create {
        name: String,
        /// The global network of its virtual IP and its replicas.
        #[arg(long)]
        network: String,
        /// Sandboxes on that network, on any node: NAME (unique in the cluster) or
        /// NODE/NAME, comma-separated.
        #[arg(long, value_delimiter = ',')]
        replicas: Vec<String>,
        /// Publish a port on every node, balanced over the replicas (the routing mesh):
        /// PUBLISHED:TARGET[/PROTO], TARGET (a port from 30000-32767), or
        /// mode=host|ingress,published=P,target=T[,protocol=udp] (host: only on the nodes
        /// of replicas, client address kept).
        #[arg(short, long)]
        publish: Vec<String>,
    },
    /// List services.
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Show one or more services.
    Inspect(InspectArgs),
    /// Replace a service's replica set.
    Update {
        name: String,
        /// The whole new replica set, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        replicas: Vec<String>,
    },
    /// Remove services.
    #[command(alias = "remove")]
    Rm(RemoveArgs),
}

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// List the cluster's nodes.
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Show one or more nodes (by id, id prefix or hostname).
    Inspect(InspectArgs),
    /// Make nodes managers.
    Promote(RemoveArgs),
    /// Make nodes workers.
    Demote(RemoveArgs),
    /// Remove nodes from the cluster; their endpoints and addresses go with them.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        nodes: Vec<String>,
        /// Remove a node that is still ready.
        #[arg(short, long)]
        force: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every flag a usage line names outside brackets is one the command requires.
    #[test]
    fn usage_lines_show_only_required_flags_as_required() {
        fn check(cmd: &mut clap::Command, path: &str) {
            let usage = cmd.render_usage().to_string();
            for arg in cmd.get_arguments() {
                let Some(long) = arg.get_long() else {
                    continue;
                };
                let shown = usage.contains(&format!(" --{long} <"))
                    || usage.ends_with(&format!(" --{long}"));
                assert!(
                    !shown || arg.is_required_set(),
                    "{path}: --{long} shown as required in {usage:?}"
                );
            }
            for sub in cmd.get_subcommands_mut() {
                let path = format!("{path} {}", sub.get_name());
                check(sub, &path);
            }
        }
        let mut cli = Cli::command();
        cli.build();
        check(&mut cli, "netctl");
    }

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }
}
