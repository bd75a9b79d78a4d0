//! A management API client over the daemon's Unix socket (used by the CLI, tests and bench).

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;

use crate::cluster::{
    ClusterInitRequest, ClusterInspect, ClusterJoinRequest, ClusterLeaveRequest,
    ClusterRestoreRequest, ClusterRestored, JoinToken, JoinTokenRequest, NodeInspect,
    NodeRemoveRequest, ServiceCreateRequest, ServiceInspect, ServiceUpdateRequest,
};
use crate::{
    ApiError, ConnectRequest, DaemonInfo, DisconnectRequest, ErrorCode, NetworkCreateRequest,
    NetworkInspect, PublishRequest, Removed, SandboxCreateRequest, SandboxInspect,
};

/// Why a call did not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the netctl daemon at {path}: {source} ({})",
        connect_hint(source)
    )]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the netctl daemon: {0}")]
    Http(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// What to look at when the socket cannot be reached.
fn connect_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied => {
            "only root and the members of the socket's group (`netctl daemon --group`) may use it"
        }
        _ => "is `netctl daemon` running?",
    }
}

impl ClientError {
    /// The API's error code, when the daemon answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api(e) => Some(e.code),
            _ => None,
        }
    }
}

type Result<T> = std::result::Result<T, ClientError>;

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: impl AsRef<Path>) -> Self {
        Self {
            socket: socket.as_ref().to_path_buf(),
        }
    }

    /// Sends raw bytes as a request body; returns the status and the body (tests of bad input).
    pub async fn raw(&self, method: &str, path: &str, body: Vec<u8>) -> Result<(u16, Vec<u8>)> {
        let method =
            Method::from_bytes(method.as_bytes()).map_err(|e| ClientError::Http(e.to_string()))?;
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    path: self.socket.clone(),
                    source,
                })?;
        let http = |e: hyper::Error| ClientError::Http(e.to_string());
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "netctl")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(http)?
            .to_bytes();
        Ok((status, bytes.to_vec()))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| ClientError::Http(e.to_string()))?,
            None => Vec::new(),
        };
        let (status, answer) = self.raw(method, path, bytes).await?;
        if !(200..300).contains(&status) {
            let error = serde_json::from_slice::<ApiError>(&answer).unwrap_or_else(|_| {
                ApiError::internal(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&answer)
                ))
            });
            return Err(error.into());
        }
        let answer = if answer.is_empty() {
            b"null".to_vec()
        } else {
            answer
        };
        serde_json::from_slice(&answer)
            .map_err(|e| ClientError::Http(format!("unexpected answer: {e}")))
    }

    pub async fn info(&self) -> Result<DaemonInfo> {
        self.call("GET", "/v1/info", None::<&()>).await
    }

    pub async fn network_create(&self, req: &NetworkCreateRequest) -> Result<NetworkInspect> {
        self.call("POST", "/v1/networks", Some(req)).await
    }

    pub async fn network_list(&self) -> Result<Vec<NetworkInspect>> {
        self.call("GET", "/v1/networks", None::<&()>).await
    }

    pub async fn network_inspect(&self, name: &str) -> Result<NetworkInspect> {
        self.call(
            "GET",
            &format!("/v1/networks/{}", escape(name)),
            None::<&()>,
        )
        .await
    }

    pub async fn network_remove(&self, name: &str) -> Result<Removed> {
        self.call(
            "DELETE",
            &format!("/v1/networks/{}", escape(name)),
            None::<&()>,
        )
        .await
    }

    pub async fn network_connect(&self, network: &str, req: &ConnectRequest) -> Result<()> {
        let path = format!("/v1/networks/{}/connect", escape(network));
        self.call("POST", &path, Some(req)).await
    }

    pub async fn network_disconnect(&self, network: &str, req: &DisconnectRequest) -> Result<()> {
        let path = format!("/v1/networks/{}/disconnect", escape(network));
        self.call("POST", &path, Some(req)).await
    }

    pub async fn sandbox_create(&self, req: &SandboxCreateRequest) -> Result<SandboxInspect> {
        self.call("POST", "/v1/sandboxes", Some(req)).await
    }

    pub async fn sandbox_list(&self) -> Result<Vec<SandboxInspect>> {
        self.call("GET", "/v1/sandboxes", None::<&()>).await
    }

    pub async fn sandbox_inspect(&self, name: &str) -> Result<SandboxInspect> {
        self.call(
            "GET",
            &format!("/v1/sandboxes/{}", escape(name)),
            None::<&()>,
        )
        .await
    }

    pub async fn sandbox_dns(&self, name: &str) -> Result<crate::DnsExplain> {
        let path = format!("/v1/sandboxes/{}/dns", escape(name));
        self.call("GET", &path, None::<&()>).await
    }

    pub async fn network_publish(
        &self,
        network: &str,
        req: &PublishRequest,
    ) -> Result<Vec<crate::ports::PortMapping>> {
        let path = format!("/v1/networks/{}/publish", escape(network));
        self.call("POST", &path, Some(req)).await
    }

    pub async fn network_unpublish(&self, network: &str, req: &PublishRequest) -> Result<()> {
        let path = format!("/v1/networks/{}/unpublish", escape(network));
        self.call("POST", &path, Some(req)).await
    }

    pub async fn firewall_reload(&self) -> Result<()> {
        self.call("POST", "/v1/firewall/reload", None::<&()>).await
    }

    pub async fn sandbox_remove(&self, name: &str) -> Result<Removed> {
        self.call(
            "DELETE",
            &format!("/v1/sandboxes/{}", escape(name)),
            None::<&()>,
        )
        .await
    }

    pub async fn cluster_init(&self, req: &ClusterInitRequest) -> Result<ClusterInspect> {
        self.call("POST", "/v1/cluster/init", Some(req)).await
    }

    pub async fn cluster_join(&self, req: &ClusterJoinRequest) -> Result<ClusterInspect> {
        self.call("POST", "/v1/cluster/join", Some(req)).await
    }

    pub async fn cluster_leave(&self, req: &ClusterLeaveRequest) -> Result<()> {
        self.call("POST", "/v1/cluster/leave", Some(req)).await
    }

    pub async fn cluster_inspect(&self) -> Result<ClusterInspect> {
        self.call("GET", "/v1/cluster", None::<&()>).await
    }

    pub async fn cluster_join_token(&self, req: &JoinTokenRequest) -> Result<JoinToken> {
        self.call("POST", "/v1/cluster/join-token", Some(req)).await
    }

    pub async fn cluster_backup(&self) -> Result<serde_json::Value> {
        self.call("GET", "/v1/cluster/backup", None::<&()>).await
    }

    pub async fn cluster_restore(&self, req: &ClusterRestoreRequest) -> Result<ClusterRestored> {
        self.call("POST", "/v1/cluster/restore", Some(req)).await
    }

    pub async fn node_list(&self) -> Result<Vec<NodeInspect>> {
        self.call("GET", "/v1/nodes", None::<&()>).await
    }

    pub async fn node_inspect(&self, node: &str) -> Result<NodeInspect> {
        let path = format!("/v1/nodes/{}", escape(node));
        self.call("GET", &path, None::<&()>).await
    }

    /// `promote` or `demote`.
    pub async fn node_role(&self, node: &str, change: &str) -> Result<NodeInspect> {
        let path = format!("/v1/nodes/{}/{change}", escape(node));
        self.call("POST", &path, None::<&()>).await
    }

    pub async fn node_remove(&self, node: &str, req: &NodeRemoveRequest) -> Result<()> {
        let path = format!("/v1/nodes/{}/remove", escape(node));
        self.call("POST", &path, Some(req)).await
    }

    pub async fn service_create(&self, req: &ServiceCreateRequest) -> Result<ServiceInspect> {
        self.call("POST", "/v1/services", Some(req)).await
    }

    pub async fn service_list(&self) -> Result<Vec<ServiceInspect>> {
        self.call("GET", "/v1/services", None::<&()>).await
    }

    pub async fn service_inspect(&self, name: &str) -> Result<ServiceInspect> {
        let path = format!("/v1/services/{}", escape(name));
        self.call("GET", &path, None::<&()>).await
    }

    pub async fn service_update(
        &self,
        name: &str,
        req: &ServiceUpdateRequest,
    ) -> Result<ServiceInspect> {
        let path = format!("/v1/services/{}/update", escape(name));
        self.call("POST", &path, Some(req)).await
    }

    pub async fn service_remove(&self, name: &str) -> Result<Removed> {
        let path = format!("/v1/services/{}", escape(name));
        self.call("DELETE", &path, None::<&()>).await
    }

    pub async fn runtime_attach(
        &self,
        req: &crate::runtime::AttachRequest,
    ) -> Result<crate::runtime::Attachment> {
        self.call("POST", "/v1/runtime/attach", Some(req)).await
    }

    pub async fn runtime_detach(&self, req: &crate::runtime::AttachmentRef) -> Result<()> {
        self.call("POST", "/v1/runtime/detach", Some(req)).await
    }

    pub async fn runtime_check(
        &self,
        req: &crate::runtime::AttachmentRef,
    ) -> Result<crate::runtime::CheckReport> {
        self.call("POST", "/v1/runtime/check", Some(req)).await
    }

    pub async fn runtime_gc(
        &self,
        req: &crate::runtime::RuntimeGcRequest,
    ) -> Result<crate::runtime::GcReport> {
        self.call("POST", "/v1/runtime/gc", Some(req)).await
    }

    pub async fn gc(&self, req: &crate::runtime::GcRequest) -> Result<crate::runtime::GcReport> {
        self.call("POST", "/v1/gc", Some(req)).await
    }
}

/// Percent-encodes a path segment (names are validated by the daemon, but a client must not
/// be able to smuggle a `/` or `?` into the path).
fn escape(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
