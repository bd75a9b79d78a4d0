//! `netctl-bench`: benchmarks that print a table (or `--json`), netctl and its peers measured
//! side by side in the same run, each in fresh test hosts (network namespaces).

mod attach;
mod cni;
mod dhcp;
mod dns;
mod docker_run;
mod kernel_floor;
mod load;
mod mesh;
mod netctl_host;
mod overlay;
mod process;
mod publish;
mod report;
mod stats;
mod throughput;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use netctl_host::Build;

#[derive(Parser)]
#[command(
    name = "netctl-bench",
    about = "netctl measured against its peers in the same run"
)]
struct Cli {
    /// Also measure the netctl at PATH (another build, say the previous commit's) as the
    /// peer `netctl@base`, in the same run (attach, publish, dns).
    #[arg(long, global = true)]
    baseline: Option<PathBuf>,
    /// netctl's daemons serve Prometheus metrics (`metrics-addr`), so that what recording
    /// costs is in the figures.
    #[arg(long, global = true)]
    metrics: bool,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// This build, then `--baseline`'s.
    fn builds(&self) -> Vec<Build> {
        std::iter::once(Build::this())
            .chain(self.baseline.as_deref().map(Build::baseline))
            .map(|build| self.configured(build))
            .collect()
    }

    /// This build, as the flags configure its daemon.
    fn this_build(&self) -> Build {
        self.configured(Build::this())
    }

    fn configured(&self, build: Build) -> Build {
        match self.metrics {
            true => build.with_config(r#"{"metrics-addr": "127.0.0.1:9323"}"#),
            false => build,
        }
    }

    /// `peers` with `netctl@base` after `netctl` when there is a baseline.
    fn with_baseline(&self, peers: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for peer in peers {
            out.push(peer.clone());
            if peer == "netctl" && self.baseline.is_some() {
                out.push(netctl_host::BASELINE.into());
            }
        }
        out
    }
}

#[derive(Subcommand)]
enum Command {
    /// Attach sandboxes one by one to one bridge. Row `n`: attaching (and detaching) one more
    /// sandbox when n-1 are attached, repeated `--samples` times; from the request to its
    /// answer, the namespace already made. Every attached sandbox is checked to reach its
    /// gateway (untimed).
    Attach {
        #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
        counts: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "netctl,netavark,cni")]
        peers: Vec<String>,
        /// Timed attach/detach pairs per row.
        #[arg(long, default_value_t = 50)]
        samples: usize,
        /// Then: this many sandboxes attached all at once, per netctl build (0: skip).
        #[arg(long, default_value_t = 100)]
        concurrent: usize,
        /// Rounds of the concurrent attach.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Print rows as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One host under load: networks, endpoints spread over bridges, attaches all at once,
    /// published ports; each phase's latencies and the daemon's memory after it.
    Load {
        #[arg(long, default_value_t = 1000)]
        networks: usize,
        #[arg(long, default_value_t = 10000)]
        endpoints: usize,
        /// Endpoints per bridge (a bridge takes 1,024 ports).
        #[arg(long, default_value_t = 1000)]
        per_bridge: usize,
        #[arg(long, default_value_t = 200)]
        concurrent: usize,
        #[arg(long, default_value_t = 50000)]
        ports: usize,
        #[arg(long, default_value_t = 100)]
        ports_per_sandbox: usize,
        /// Networks per sandbox of the endpoints phase (the first at creation, the rest
        /// by connect): endpoints with fewer sandboxes.
        #[arg(long, default_value_t = 1)]
        networks_per_sandbox: usize,
        #[arg(long)]
        json: bool,
    },
    /// iperf3 TCP over each path: veth ceiling, bridge, published port, docker-proxy.
    Throughput {
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "veth,bridge,published,docker-proxy"
        )]
        paths: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// DNS queries per second and latency from inside a sandbox (dnsperf): netctl's embedded
    /// server against dnsmasq and aardvark-dns serving the same names, for container names
    /// (`local`) and forwarded names (cache warm); and netctl's memory serving `--sandboxes`.
    Dns {
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "netctl,aardvark-dns,dnsmasq,dnsmasq-lo"
        )]
        peers: Vec<String>,
        /// Sandboxes with names (the client is one more).
        #[arg(long, default_value_t = 1000)]
        sandboxes: usize,
        /// Length of each timed dnsperf run.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// dnsperf clients (sockets).
        #[arg(long, default_value_t = 8)]
        clients: u32,
        #[arg(long)]
        json: bool,
    },
    /// `docker run --rm --network NET busybox:local true` on a netctl network (remote plugin)
    /// and on one of Docker's bridge driver, interleaved, against one dockerd.
    DockerRun {
        #[arg(long, default_value_t = 50)]
        count: usize,
        #[arg(long)]
        json: bool,
    },
    /// Two netctl nodes in a cluster on etcd (3 members), one overlay network: convergence
    /// (attach on A -> first reply to B's pings, beside etcd's own put -> watch floor),
    /// overlay attach beside a bridge attach, and iperf3 across the nodes over the overlay
    /// beside a hand-built VXLAN and the underlay; `service update` with 10 and 100 sandboxes
    /// on the node; Docker's swarm overlay as a peer of the convergence and throughput rows;
    /// then `--scale-hosts` nodes with `--scale-endpoints` sandboxes each.
    Overlay {
        /// Endpoints attached for the convergence rows.
        #[arg(long, default_value_t = 100)]
        endpoints: usize,
        /// Timed connect/disconnect pairs per attach row.
        #[arg(long, default_value_t = 50)]
        samples: usize,
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "convergence,attach,throughput,services,docker,scale"
        )]
        parts: Vec<String>,
        /// Hosts of the scale rows.
        #[arg(long, default_value_t = 20)]
        scale_hosts: usize,
        /// Sandboxes per host of the scale rows.
        #[arg(long, default_value_t = 10)]
        scale_endpoints: usize,
        #[arg(long)]
        json: bool,
    },
    /// The routing mesh on two netctl nodes: connections and requests per second (32
    /// clients, a short HTTP-like exchange) through a published port to a local and to a
    /// remote replica, beside host mode and a direct call on the overlay; then the time for a
    /// `service update` of N replicas to reach both nodes' balancers after the etcd write,
    /// and the daemons' memory at the largest N.
    Mesh {
        /// Seconds of each timed traffic run (three per row).
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
        replicas: Vec<usize>,
        /// Timed updates per replica count (half drop a replica, half take it back).
        #[arg(long, default_value_t = 20)]
        updates: usize,
        #[arg(long, value_delimiter = ',', default_value = "traffic,updates")]
        parts: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// CNI plugins exec'd as a runtime does: ADD and DEL of one more container when N are
    /// attached, netctl's plugin beside the reference bridge + host-local (and + portmap,
    /// beside netctl publishing a port too); then VERSION.
    Cni {
        #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
        counts: Vec<usize>,
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "netctl,bridge,netctl+port,bridge+portmap"
        )]
        peers: Vec<String>,
        /// Timed ADD/DEL pairs per row.
        #[arg(long, default_value_t = 50)]
        samples: usize,
        #[arg(long)]
        json: bool,
    },
    /// Attaching a container whose address a LAN's DHCP server (dnsmasq) leases: netctl's
    /// DHCP network beside its own pool, the reference CNI bridge + dhcp plugins (with their
    /// dhcp daemon) and busybox's udhcpc (the server's round trips); then N attaches at once,
    /// and the daemon's memory holding M leases.
    Dhcp {
        /// Timed attach/detach pairs per row.
        #[arg(long, default_value_t = 30)]
        samples: usize,
        #[arg(long, default_value_t = 100)]
        concurrent: usize,
        #[arg(long, default_value_t = 1000)]
        leases: usize,
        #[arg(long)]
        json: bool,
    },
    /// Publish one more port when N are published: netctl (API), netavark (setup with port
    /// mappings), CNI (portmap). Peers run only up to `--peer-cap`.
    Publish {
        #[arg(long, value_delimiter = ',', default_value = "10,1000,10000")]
        counts: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "netctl,netavark,cni")]
        peers: Vec<String>,
        #[arg(long, default_value_t = 50)]
        samples: usize,
        /// Largest N the peers are run at.
        #[arg(long, default_value_t = 10000)]
        peer_cap: usize,
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let builds = cli.builds();
    let baseline_peers = |peers: &[String]| cli.with_baseline(peers);
    if let Command::Publish {
        counts,
        peers,
        samples,
        peer_cap,
        json,
    } = &cli.command
    {
        let mut counts = counts.clone();
        counts.sort_unstable();
        let peers = baseline_peers(peers);
        let rows = publish::run(&counts, &peers, &builds, *samples, *peer_cap)?;
        return publish::print(&rows, *json);
    }
    match &cli.command {
        Command::Publish { .. } => unreachable!("handled above"),
        Command::Overlay {
            endpoints,
            samples,
            parts,
            scale_hosts,
            scale_endpoints,
            json,
        } => {
            let options = overlay::Options {
                endpoints: *endpoints,
                samples: *samples,
                parts: parts.clone(),
                scale: (*scale_hosts, *scale_endpoints),
            };
            overlay::print(&overlay::run(&options)?, *json)
        }
        Command::Mesh {
            seconds,
            concurrency,
            replicas,
            updates,
            parts,
            json,
        } => {
            let options = mesh::Options {
                seconds: *seconds,
                concurrency: *concurrency,
                replicas: replicas.clone(),
                updates: *updates,
                parts: parts.clone(),
            };
            overlay::print(&mesh::run(&options)?, *json)
        }
        Command::Cni {
            counts,
            peers,
            samples,
            json,
        } => {
            let mut counts = counts.clone();
            counts.sort_unstable();
            // Only this build: an older netctl may have no CNI plugin to compare.
            let options = cni::Options {
                counts,
                peers: peers.clone(),
                samples: *samples,
            };
            let (rows, versions) = cni::run(&options, &builds)?;
            cni::print(&rows, &versions, *json)
        }
        Command::Dhcp {
            samples,
            concurrent,
            leases,
            json,
        } => {
            let options = dhcp::Options {
                samples: *samples,
                concurrent: *concurrent,
                leases: *leases,
            };
            dhcp::print(&dhcp::run(&options, &cli.this_build())?, *json)
        }
        Command::DockerRun { count, json } => {
            let rows = docker_run::run(*count)?;
            docker_run::print(&rows, *json)
        }
        Command::Dns {
            peers,
            sandboxes,
            seconds,
            clients,
            json,
        } => {
            let options = dns::Options {
                peers: peers.clone(),
                sandboxes: *sandboxes,
                seconds: *seconds,
                clients: *clients,
            };
            let (mut rows, mut memory) = dns::run(&options, &cli.this_build())?;
            // The other build serves the same names in a setup of its own, measured after.
            for build in builds.iter().skip(1) {
                let theirs = dns::Options {
                    peers: vec!["netctl".into()],
                    ..options.clone()
                };
                let (more, memory_too) = dns::run(&theirs, build)?;
                rows.extend(more);
                memory.extend(memory_too);
            }
            dns::print(&rows, &memory, *json)
        }
        Command::Load {
            networks,
            endpoints,
            per_bridge,
            concurrent,
            ports,
            ports_per_sandbox,
            networks_per_sandbox,
            json,
        } => {
            let options = load::Options {
                networks_per_sandbox: *networks_per_sandbox,
                networks: *networks,
                endpoints: *endpoints,
                per_bridge: *per_bridge,
                concurrent: *concurrent,
                ports: *ports,
                ports_per_sandbox: *ports_per_sandbox,
            };
            load::print(&load::run(&options, &cli.this_build())?, *json)
        }
        Command::Throughput { paths, json } => {
            let rows = throughput::run(paths)?;
            throughput::print(&rows, *json)
        }
        Command::Attach {
            counts,
            peers,
            samples,
            concurrent,
            rounds,
            json,
        } => {
            let mut counts = counts.clone();
            counts.sort_unstable();
            let peers = baseline_peers(peers);
            let options = attach::Options {
                counts: &counts,
                peers: &peers,
                samples: *samples,
                builds: &builds,
                concurrent: *concurrent,
                rounds: *rounds,
            };
            let (rows, concurrent) = attach::run(&options)?;
            report::print(&rows, &concurrent, *json)
        }
    }
}
