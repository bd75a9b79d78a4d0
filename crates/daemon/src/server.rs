//! The management API on a Unix socket.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use tokio::net::{UnixListener, UnixStream};

use crate::{Controller, DaemonError};

/// Serves the management API on `socket` (mode 0660) until `shutdown` resolves.
pub async fn serve(
    controller: Arc<Controller>,
    socket: &Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let io = |what| {
        move |source| DaemonError::Io {
            what,
            path: socket.to_path_buf(),
            source,
        }
    };
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(io("create directory for"))?;
    }
    if UnixStream::connect(socket).await.is_ok() {
        return Err(io("socket")(std::io::Error::other(
            "another daemon is already listening there",
        )));
    }
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket).map_err(io("bind"))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(io("chmod"))?;
    tracing::info!(socket = %socket.display(), "serving the management API");
    let app = plugin_api::management::router(controller)
        .into_make_service_with_connect_info::<plugin_api::management::Caller>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(io("serve"))
}
