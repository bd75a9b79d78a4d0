//! `netctl-bench`: benchmarks that print a table (or `--json`), netctl and its peers measured
//! side by side in the same run, each in fresh test hosts (network namespaces).

mod attach;
mod dns;
mod docker_run;
mod netctl_host;
mod publish;
mod report;
mod stats;
mod throughput;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "netctl-bench",
    about = "netctl measured against its peers in the same run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        /// Print rows as a JSON array instead of a table.
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
    if let Command::Publish {
        mut counts,
        peers,
        samples,
        peer_cap,
        json,
    } = cli.command
    {
        counts.sort_unstable();
        let rows = publish::run(&counts, &peers, samples, peer_cap)?;
        return publish::print(&rows, json);
    }
    match cli.command {
        Command::Publish { .. } => unreachable!("handled above"),
        Command::DockerRun { count, json } => {
            let rows = docker_run::run(count)?;
            docker_run::print(&rows, json)
        }
        Command::Dns {
            peers,
            sandboxes,
            seconds,
            clients,
            json,
        } => {
            let options = dns::Options {
                peers,
                sandboxes,
                seconds,
                clients,
            };
            let (rows, memory) = dns::run(&options)?;
            dns::print(&rows, &memory, json)
        }
        Command::Throughput { paths, json } => {
            let rows = throughput::run(&paths)?;
            throughput::print(&rows, json)
        }
        Command::Attach {
            mut counts,
            peers,
            samples,
            json,
        } => {
            counts.sort_unstable();
            let rows = attach::run(&counts, &peers, samples)?;
            report::print(&rows, json)
        }
    }
}
