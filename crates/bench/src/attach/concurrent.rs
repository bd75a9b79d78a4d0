//! Many sandboxes attached at once: `sandboxes` sandboxes are made, then connected to the
//! network all at the same moment (one request each, over as many connections), and
//! disconnected again, `rounds` times. What a runtime starting many containers does, and
//! what a daemon that ran every change under one lock made wait in line.

use std::time::{Duration, Instant};

use netctl_plugin_api::{ConnectRequest, DisconnectRequest};

use crate::netctl_host::{Build, NetctlHost, NETWORK};
use crate::report::ConcurrentRow;
use crate::stats::percentile_ms;

pub fn measure(build: &Build, sandboxes: usize, rounds: usize) -> anyhow::Result<ConcurrentRow> {
    let netctl = NetctlHost::new(build)?;
    let names: Vec<String> = (0..sandboxes).map(|i| format!("c{i}")).collect();
    for name in &names {
        netctl.sandbox(name, false)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut walls = Vec::new();
    let mut requests = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let times = runtime.block_on(attach_all(&netctl, &names))?;
        walls.push(started.elapsed());
        requests.extend(times);
        runtime.block_on(detach_all(&netctl, &names))?;
    }
    Ok(ConcurrentRow {
        peer: build.name.clone(),
        sandboxes,
        rounds,
        wall_p50_ms: percentile_ms(&walls, 50.0),
        request_p50_ms: percentile_ms(&requests, 50.0),
        request_p99_ms: percentile_ms(&requests, 99.0),
    })
}

async fn attach_all(netctl: &NetctlHost, names: &[String]) -> anyhow::Result<Vec<Duration>> {
    let calls = names.iter().map(|name| {
        let client = netctl.client.clone();
        let request = ConnectRequest {
            container: name.clone(),
            ..Default::default()
        };
        tokio::spawn(async move {
            let started = Instant::now();
            client.network_connect(NETWORK, &request).await?;
            anyhow::Ok(started.elapsed())
        })
    });
    let mut times = Vec::new();
    for call in futures::future::join_all(calls).await {
        times.push(call??);
    }
    Ok(times)
}

async fn detach_all(netctl: &NetctlHost, names: &[String]) -> anyhow::Result<()> {
    let calls = names.iter().map(|name| {
        let client = netctl.client.clone();
        let request = DisconnectRequest {
            container: name.clone(),
        };
        tokio::spawn(async move { client.network_disconnect(NETWORK, &request).await })
    });
    for call in futures::future::join_all(calls).await {
        call??;
    }
    Ok(())
}
