//! The management API and the Docker plugin API, each on a Unix socket.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};

use crate::controller::Controller;
use crate::error::DaemonError;
use crate::front::{DockerFront, ManagementApi};

/// Binds the management API's socket (mode 0660), of `group` when one is given (dockerd's
/// `-G`). Done first of all: a second daemon started by mistake stops here, before it
/// reconciles anything (it would take the first one's networks for leftovers).
pub async fn bind_api(socket: &Path, group: Option<&str>) -> Result<Api, DaemonError> {
    if let Some(listener) = socket_from_systemd() {
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| UnixListener::from_std(listener))
            .map_err(io_err(socket, "take systemd's socket for"))?;
        tracing::info!("serving the management API on the socket systemd passed");
        return Ok(Api {
            listener,
            from_systemd: true,
        });
    }
    let listener = listen(socket, 0o660).await?;
    if let Some(group) = group {
        let owned = crate::access::group_id(group)
            .map_err(|message| DaemonError::Config {
                path: socket.to_path_buf(),
                message,
            })
            .and_then(|gid| {
                nix::unistd::chown(socket, None, Some(gid))
                    .map_err(|e| io_err(socket, "chown")(e.into()))
            });
        if let Err(e) = owned {
            let _ = std::fs::remove_file(socket);
            return Err(e);
        }
    }
    Ok(Api {
        listener,
        from_systemd: false,
    })
}

/// The management API's listener.
pub struct Api {
    pub listener: UnixListener,
    /// Passed by systemd (`netctl.socket`): its file is systemd's, left when the daemon stops.
    pub from_systemd: bool,
}

/// The socket systemd passed, when the daemon is socket-activated (sd_listen_fds(3):
/// `LISTEN_PID` is this process, `LISTEN_FDS` at least 1, the first at descriptor 3) and
/// it is a Unix stream socket. Written here rather than taken from a crate: it is these
/// few lines.
fn socket_from_systemd() -> Option<std::os::unix::net::UnixListener> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    let fds: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    if pid != std::process::id() || fds < 1 {
        return None;
    }
    const SD_LISTEN_FDS_START: i32 = 3;
    let unix_stream =
        nix::sys::socket::getsockname::<nix::sys::socket::UnixAddr>(SD_LISTEN_FDS_START).is_ok()
            && nix::sys::socket::getsockopt(
                // SAFETY: descriptor 3 is open (getsockname just answered for it); borrowed
                // for this call only.
                &unsafe { std::os::fd::BorrowedFd::borrow_raw(SD_LISTEN_FDS_START) },
                nix::sys::socket::sockopt::SockType,
            ) == Ok(nix::sys::socket::SockType::Stream);
    if !unix_stream {
        tracing::warn!("LISTEN_FDS is set but descriptor 3 is not a Unix stream socket: binding the API socket instead");
        return None;
    }
    // SAFETY: systemd passed descriptor 3 to this process, and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(SD_LISTEN_FDS_START) };
    Some(std::os::unix::net::UnixListener::from(fd))
}

/// Serves the management API on `listener` (bound to `socket`) until `shutdown` resolves.
pub async fn serve(
    controller: Arc<Controller>,
    listener: UnixListener,
    socket: &Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    // Where it really listens: systemd's socket may be elsewhere than --socket.
    let at = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf))
        .unwrap_or_else(|| socket.to_path_buf());
    tracing::info!(socket = %at.display(), "serving the management API");
    let app = netctl_plugin_api::management::router(Arc::new(ManagementApi::new(controller)))
        .into_make_service_with_connect_info::<netctl_plugin_api::management::Caller>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(io_err(socket, "serve"))
}

/// Binds the Docker plugin's socket (root only): dockerd finds the driver `netctl` as
/// `/run/docker/plugins/netctl.sock`.
pub async fn bind_docker_plugin(socket: &Path) -> Result<UnixListener, DaemonError> {
    listen(socket, 0o600).await
}

/// Serves Docker's remote plugin API on `listener` until `shutdown` resolves.
pub async fn serve_docker_plugin(
    controller: Arc<Controller>,
    listener: UnixListener,
    socket: PathBuf,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tracing::info!(socket = %socket.display(), "serving the Docker plugin API");
    let served = axum::serve(
        listener,
        netctl_plugin_api::docker::router(Arc::new(DockerFront::new(controller))),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    if let Err(e) = served {
        tracing::error!(socket = %socket.display(), error = %e, "Docker plugin API stopped");
    }
}

/// Binds `socket` with `mode`, refusing when another daemon already answers there.
async fn listen(socket: &Path, mode: u32) -> Result<UnixListener, DaemonError> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(socket, "create directory for"))?;
    }
    if UnixStream::connect(socket).await.is_ok() {
        return Err(io_err(socket, "socket")(std::io::Error::other(
            "another daemon is already listening there",
        )));
    }
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).map_err(io_err(socket, "bind"))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(socket, "chmod"))?;
    Ok(listener)
}

fn io_err<'a>(socket: &'a Path, what: &'static str) -> impl Fn(std::io::Error) -> DaemonError + 'a {
    move |source| DaemonError::Io {
        what,
        path: socket.to_path_buf(),
        source,
    }
}
