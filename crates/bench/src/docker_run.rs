//! `netctl-bench docker-run`: wall time of `docker run --rm --network NET busybox:local true`
//! on a netctl network (the remote plugin, with netctl's IPAM) and on a network of Docker's
//! own bridge driver, runs interleaved in the same dockerd so both see the same noise.

use std::time::{Duration, Instant};

use anyhow::bail;
use netctl_netns_fixtures::{Dockerd, Host};
use serde::Serialize;

use crate::stats::percentile_ms;

#[derive(Debug, Clone, Serialize)]
pub struct DockerRunRow {
    pub driver: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// (driver, network name, `network create` options)
const NETWORKS: [(&str, &str, &[&str]); 2] = [
    (
        "netctl",
        "bench-netctl",
        &[
            "-d",
            "netctl",
            "--ipam-driver",
            "netctl",
            "--subnet",
            "10.91.0.0/24",
        ],
    ),
    (
        "bridge",
        "bench-bridge",
        &["-d", "bridge", "--subnet", "10.92.0.0/24"],
    ),
];
const WARM_UP: usize = 3;

pub fn run(count: usize) -> anyhow::Result<Vec<DockerRunRow>> {
    let host = Host::with_daemon();
    let dockerd = Dockerd::start(&host);
    dockerd.import_busybox();
    for (driver, network, options) in NETWORKS {
        let mut args = vec!["network", "create"];
        args.extend_from_slice(options);
        args.push(network);
        let out = dockerd.docker(&args);
        if !out.ok() {
            bail!("docker network create ({driver}): {}", out.stderr);
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); NETWORKS.len()];
    for round in 0..WARM_UP + count {
        for (index, (driver, network, _)) in NETWORKS.iter().enumerate() {
            let started = Instant::now();
            let out =
                dockerd.docker(&["run", "--rm", "--network", network, "busybox:local", "true"]);
            let elapsed = started.elapsed();
            if !out.ok() {
                bail!("docker run on {driver}: {}", out.stderr);
            }
            if round >= WARM_UP {
                samples[index].push(elapsed);
            }
        }
    }
    Ok(NETWORKS
        .iter()
        .zip(&samples)
        .map(|((driver, _, _), samples)| DockerRunRow {
            driver: driver.to_string(),
            p50_ms: percentile_ms(samples, 50.0),
            p99_ms: percentile_ms(samples, 99.0),
        })
        .collect())
}

pub fn print(rows: &[DockerRunRow], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    println!(
        "{:<8} {:>9} {:>9} {:>12}",
        "driver", "p50 ms", "p99 ms", "p50/bridge"
    );
    let bridge = rows.iter().find(|r| r.driver == "bridge").map(|r| r.p50_ms);
    for row in rows {
        let ratio = bridge
            .filter(|b| *b > 0.0)
            .map_or("-".into(), |b| format!("{:.2}", row.p50_ms / b));
        println!(
            "{:<8} {:>9.1} {:>9.1} {:>12}",
            row.driver, row.p50_ms, row.p99_ms, ratio
        );
    }
    Ok(())
}
