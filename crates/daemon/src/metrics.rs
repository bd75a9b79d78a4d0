//! Prometheus metrics on `--metrics-addr` (daemon.json `metrics-addr`), off by default.
//!
//! The library crates record through the `metrics` facade (a no-op until a recorder is
//! installed): the DNS server its query times and cache hits, the cluster store its etcd
//! requests, the drivers what reconciling removed. The daemon records its operations here,
//! and counts what it holds when scraped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use netctl_plugin_api::{ApiError, ErrorCode};
use tokio::net::TcpListener;

use crate::controller::Controller;
use crate::error::DaemonError;

/// Latency buckets, in seconds: from a cached DNS answer (tens of µs) to an attach that
/// waits for a DHCP lease (seconds).
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// How often samples are folded into the histograms when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// What an operation is, for its latency histogram and error count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    NetworkCreate,
    NetworkRemove,
    SandboxCreate,
    SandboxRemove,
    /// An endpoint made: `network connect`, a runtime's attach (CNI ADD), Docker's
    /// CreateEndpoint.
    Attach,
    /// An endpoint removed: `network disconnect`, CNI DEL, Docker's DeleteEndpoint.
    Detach,
    /// Docker's Join and Leave.
    Join,
    Leave,
    Publish,
    Unpublish,
}

impl Operation {
    const ALL: [Self; 10] = [
        Self::NetworkCreate,
        Self::NetworkRemove,
        Self::SandboxCreate,
        Self::SandboxRemove,
        Self::Attach,
        Self::Detach,
        Self::Join,
        Self::Leave,
        Self::Publish,
        Self::Unpublish,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::NetworkCreate => "network_create",
            Self::NetworkRemove => "network_remove",
            Self::SandboxCreate => "sandbox_create",
            Self::SandboxRemove => "sandbox_remove",
            Self::Attach => "attach",
            Self::Detach => "detach",
            Self::Join => "join",
            Self::Leave => "leave",
            Self::Publish => "publish",
            Self::Unpublish => "unpublish",
        }
    }
}

/// Which front end asked.
#[derive(Debug, Clone, Copy)]
pub enum Via {
    /// The management API (the CLI).
    Api,
    /// A runtime through the management API (CNI).
    Runtime,
    /// dockerd through the remote plugin.
    Docker,
}

impl Via {
    const ALL: [Self; 3] = [Self::Api, Self::Runtime, Self::Docker];

    fn name(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Runtime => "runtime",
            Self::Docker => "docker",
        }
    }
}

/// Runs `work`, recording how long it took and, when it failed, why.
pub async fn timed<T, E: Into<ApiError>>(
    operation: Operation,
    via: Via,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, ApiError> {
    let started = Instant::now();
    let result = work.await.map_err(Into::into);
    let (operation, via) = (operation.name(), via.name());
    metrics::histogram!("netctl_operation_duration_seconds", "operation" => operation, "via" => via)
        .record(started.elapsed());
    if let Err(e) = &result {
        metrics::counter!("netctl_errors_total", "operation" => operation, "kind" => e.code.name())
            .increment(1);
    }
    result
}

/// Installs the recorder (so every crate's records are kept from now on); returns what
/// renders them.
fn install() -> Result<PrometheusHandle, DaemonError> {
    let describe = |message: String| DaemonError::Config {
        path: "metrics-addr".into(),
        message,
    };
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .map_err(|e| describe(e.to_string()))?
        .install_recorder()
        .map_err(|e| describe(e.to_string()))?;
    describe_all();
    register_all();
    Ok(handle)
}

/// Every series there is, at zero, from the start: a dashboard or an alert on a rate sees
/// a series before its first event, not a gap.
fn register_all() {
    for operation in Operation::ALL {
        for via in Via::ALL {
            let _ = metrics::histogram!("netctl_operation_duration_seconds", "operation" => operation.name(), "via" => via.name());
        }
        for kind in ErrorCode::ALL {
            metrics::counter!("netctl_errors_total", "operation" => operation.name(), "kind" => kind.name())
                .increment(0);
        }
    }
    for answer in ["local", "forwarded"] {
        let _ = metrics::histogram!("netctl_dns_query_duration_seconds", "answer" => answer);
    }
    metrics::counter!("netctl_dns_cache_hits_total").increment(0);
    let _ = metrics::histogram!("netctl_etcd_request_duration_seconds");
    metrics::counter!("netctl_etcd_request_errors_total").increment(0);
    for what in REPAIRS {
        metrics::counter!("netctl_reconcile_repairs_total", "what" => what).increment(0);
    }
}

/// What `netctl_reconcile_repairs_total` counts.
const REPAIRS: [&str; 5] = [
    "link",
    "namespace",
    "overlay_segment",
    "docker_endpoint",
    "firewall",
];

fn describe_all() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        "netctl_operation_duration_seconds",
        Unit::Seconds,
        "How long operations took, by operation and front end"
    );
    describe_counter!(
        "netctl_errors_total",
        "Operations that failed, by operation and error kind"
    );
    describe_histogram!(
        "netctl_dns_query_duration_seconds",
        Unit::Seconds,
        "From a DNS query's arrival to its answer: answered here (local names, the cache) or forwarded"
    );
    describe_counter!(
        "netctl_dns_cache_hits_total",
        "DNS queries answered from the cache"
    );
    describe_histogram!(
        "netctl_etcd_request_duration_seconds",
        Unit::Seconds,
        "Cluster store requests, retries included"
    );
    describe_counter!(
        "netctl_etcd_request_errors_total",
        "Cluster store requests that failed"
    );
    describe_counter!(
        "netctl_reconcile_repairs_total",
        "What reconciling put right, by what it was"
    );
    for (gauge, help) in [
        ("netctl_networks", "Networks this daemon knows"),
        ("netctl_sandboxes", "Sandboxes on this node"),
        ("netctl_endpoints", "Endpoints on this node"),
        ("netctl_published_ports", "Published ports on this node"),
        ("netctl_dhcp_clients", "DHCP clients keeping leases"),
    ] {
        describe_gauge!(gauge, help);
    }
}

/// The recorder installed and the metrics' address bound: a daemon asked for metrics that
/// cannot serve them does not start.
pub struct Exporter {
    handle: PrometheusHandle,
    listener: TcpListener,
    addr: SocketAddr,
}

impl Exporter {
    pub async fn start(addr: SocketAddr) -> Result<Self, DaemonError> {
        let listener = TcpListener::bind(addr).await.map_err(io_err(addr))?;
        Ok(Self {
            handle: install()?,
            listener,
            addr,
        })
    }
}

fn io_err(addr: SocketAddr) -> impl Fn(std::io::Error) -> DaemonError {
    move |source| DaemonError::Io {
        what: "metrics listener",
        path: addr.to_string().into(),
        source,
    }
}

/// Serves `/metrics` until `shutdown` resolves.
pub async fn serve(
    controller: Arc<Controller>,
    exporter: Exporter,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let Exporter {
        handle,
        listener,
        addr,
    } = exporter;
    tracing::info!(%addr, "serving metrics at /metrics");
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(UPKEEP).await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state((controller, handle));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(io_err(addr))
}

async fn scrape(State((controller, handle)): State<(Arc<Controller>, PrometheusHandle)>) -> String {
    let held = controller.holdings().await;
    metrics::gauge!("netctl_networks").set(held.networks as f64);
    metrics::gauge!("netctl_sandboxes").set(held.sandboxes as f64);
    metrics::gauge!("netctl_endpoints").set(held.endpoints as f64);
    metrics::gauge!("netctl_published_ports").set(held.published_ports as f64);
    metrics::gauge!("netctl_dhcp_clients").set(held.dhcp_clients as f64);
    handle.render()
}
