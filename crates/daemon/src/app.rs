//! The wiring: sockets, controller, watchers, servers, and a clean stop.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use crate::controller::{run_cluster, watch_dns_sources, watch_firewall, watch_leases, Controller};
use crate::{server, DaemonConfig, DaemonError, Paths};

/// Starts the daemon and serves until `shutdown` resolves. A clean stop closes the API and
/// plugin sockets and removes their files (dockerd would keep trying a stale plugin
/// socket); every network, endpoint and published port stays as it is in the kernel, and
/// the next start takes them over.
pub async fn run(
    config: DaemonConfig,
    paths: Paths,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    // First of all: a second daemon started by mistake stops here, before it reconciles
    // anything (it would take the first one's networks for leftovers).
    let _instance = crate::instance::InstanceLock::take()?;
    let api = server::bind_api(&paths.socket, config.group.as_deref()).await?;
    // From here on, a failed start removes the socket it bound (systemd's stays systemd's).
    let mut sockets = SocketFiles(Vec::new());
    if !api.from_systemd {
        sockets.0.push(paths.socket.clone());
    }
    let api = api.listener;
    // Before anything is recorded: the recorder keeps what is recorded once installed.
    let metrics = match config.metrics_addr {
        Some(addr) => Some(crate::metrics::Exporter::start(addr).await?),
        None => None,
    };
    netctl_kernel::ports::raise_file_limit();
    // In a container (a Docker managed plugin), /proc/sys is read-only: bridges need their
    // sysctls set.
    if let Err(e) = netctl_kernel::sysctl::make_writable() {
        tracing::warn!(error = %e, "/proc/sys stays read-only; setting up networks will fail");
    }
    let controller = Arc::new(Controller::start(config, paths.clone()).await?);
    tokio::spawn(watch_firewall(controller.clone()));
    tokio::spawn(watch_dns_sources(controller.clone()));
    tokio::spawn(watch_leases(controller.clone()));
    tokio::spawn(run_cluster(controller.clone()));
    tokio::spawn(crate::memory::give_back_freed());

    let (stop, stopped) = watch::channel(false);
    let until_stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let plugin = match &paths.docker_plugin_socket {
        Some(socket) => {
            let listener = server::bind_docker_plugin(socket).await?;
            sockets.0.push(socket.clone());
            Some(tokio::spawn(server::serve_docker_plugin(
                controller.clone(),
                listener,
                socket.clone(),
                until_stopped(),
            )))
        }
        None => None,
    };
    if let Some(exporter) = metrics {
        let serving = crate::metrics::serve(controller.clone(), exporter, until_stopped());
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!(error = %e, "metrics are not served");
            }
        });
    }
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("stopping: the kernel's networks stay as they are");
        let _ = stop.send(true);
    });
    // Tests' crash injection counts the steps of requests, not those of the start.
    if netctl_crashpoint::arms_on_signal() {
        arm_crashpoint_on_sigusr2();
    } else {
        netctl_crashpoint::arm_from_env();
    }
    let served = server::serve(controller, api, &paths.socket, until_stopped()).await;
    if let Some(plugin) = plugin {
        let _ = plugin.await;
    }
    drop(sockets);
    served
}

/// Tests' crash injection, armed when the test has seen the start finish.
fn arm_crashpoint_on_sigusr2() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::user_defined2()) {
        Ok(mut armed) => {
            tokio::spawn(async move {
                if armed.recv().await.is_some() {
                    netctl_crashpoint::arm_from_env();
                }
            });
        }
        Err(e) => tracing::error!(error = %e, "crash injection cannot wait for SIGUSR2"),
    }
}

/// Socket files this daemon bound, removed when it stops.
struct SocketFiles(Vec<PathBuf>);

impl Drop for SocketFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            remove_socket(path);
        }
    }
}

fn remove_socket(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(socket = %path.display(), error = %e, "cannot remove socket"),
    }
}
