//! The management API: routes under `/v1`, decoded here, served by a [`Management`] impl.

use std::future::Future;
use std::sync::Arc;

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::serve::IncomingStream;
use axum::{Json, Router};
use tokio::net::UnixListener;

use crate::access::{Permission, Rule};
use crate::cluster::{
    ClusterInitRequest, ClusterInspect, ClusterJoinRequest, ClusterLeaveRequest,
    ClusterRestoreRequest, ClusterRestored, JoinToken, JoinTokenRequest, NodeInspect,
    NodeRemoveRequest, ServiceCreateRequest, ServiceInspect, ServiceUpdateRequest,
};
use crate::ports::PortMapping;
use crate::runtime::{
    AttachRequest, Attachment, AttachmentRef, CheckReport, GcReport, GcRequest, RuntimeGcRequest,
};
use crate::{
    ApiError, ConnectRequest, DaemonInfo, DisconnectRequest, DnsExplain, NetworkCreateRequest,
    NetworkInspect, PublishRequest, Removed, SandboxCreateRequest, SandboxInspect,
};

type ApiResult<T> = Result<T, ApiError>;

/// Who is calling: the Unix socket's peer credentials, as they were when it connected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub pid: Option<i32>,
    /// Supplementary groups (`SO_PEERGROUPS`).
    pub groups: Vec<u32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Caller {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        let cred = stream.io().peer_cred().ok();
        Self {
            uid: cred.map(|c| c.uid()),
            gid: cred.map(|c| c.gid()),
            pid: cred.and_then(|c| c.pid()),
            groups: peer_groups(stream.io()).unwrap_or_default(),
        }
    }
}

/// The supplementary groups of the process that connected to `stream`.
fn peer_groups(stream: &tokio::net::UnixStream) -> std::io::Result<Vec<u32>> {
    use std::os::fd::AsRawFd;
    // NGROUPS_MAX is 65536; most callers have a handful.
    let mut groups = vec![0 as libc::gid_t; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: `groups` is writable for `len` bytes, and the kernel writes at most that
        // (or answers ERANGE with the length it needs).
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(count);
            return Ok(groups);
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ERANGE) || count <= groups.len() {
            return Err(error);
        }
        groups.resize(count, 0);
    }
}

/// What the daemon does for each management call.
pub trait Management: Send + Sync + 'static {
    /// The one place every request is checked, against its route's rule, before it is
    /// decoded.
    fn authorize(&self, caller: &Caller, rule: Rule) -> ApiResult<()>;
    fn info(&self) -> impl Future<Output = ApiResult<DaemonInfo>> + Send;
    fn network_create(
        &self,
        req: NetworkCreateRequest,
    ) -> impl Future<Output = ApiResult<NetworkInspect>> + Send;
    fn network_list(&self) -> impl Future<Output = ApiResult<Vec<NetworkInspect>>> + Send;
    fn network_inspect(
        &self,
        name: String,
    ) -> impl Future<Output = ApiResult<NetworkInspect>> + Send;
    fn network_remove(&self, name: String) -> impl Future<Output = ApiResult<Removed>> + Send;
    fn network_connect(
        &self,
        network: String,
        req: ConnectRequest,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    fn network_disconnect(
        &self,
        network: String,
        req: DisconnectRequest,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    fn sandbox_create(
        &self,
        req: SandboxCreateRequest,
    ) -> impl Future<Output = ApiResult<SandboxInspect>> + Send;
    fn sandbox_list(&self) -> impl Future<Output = ApiResult<Vec<SandboxInspect>>> + Send;
    fn sandbox_inspect(
        &self,
        name: String,
    ) -> impl Future<Output = ApiResult<SandboxInspect>> + Send;
    fn sandbox_remove(&self, name: String) -> impl Future<Output = ApiResult<Removed>> + Send;
    fn sandbox_dns(&self, name: String) -> impl Future<Output = ApiResult<DnsExplain>> + Send;
    fn network_publish(
        &self,
        network: String,
        req: PublishRequest,
    ) -> impl Future<Output = ApiResult<Vec<PortMapping>>> + Send;
    fn network_unpublish(
        &self,
        network: String,
        req: PublishRequest,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    /// Rebuilds netctl's firewall table from the daemon's state.
    fn firewall_reload(&self) -> impl Future<Output = ApiResult<()>> + Send;
    fn cluster_init(
        &self,
        req: ClusterInitRequest,
    ) -> impl Future<Output = ApiResult<ClusterInspect>> + Send;
    fn cluster_join(
        &self,
        req: ClusterJoinRequest,
    ) -> impl Future<Output = ApiResult<ClusterInspect>> + Send;
    fn cluster_leave(&self, req: ClusterLeaveRequest)
        -> impl Future<Output = ApiResult<()>> + Send;
    fn cluster_inspect(&self) -> impl Future<Output = ApiResult<ClusterInspect>> + Send;
    fn cluster_join_token(
        &self,
        req: JoinTokenRequest,
    ) -> impl Future<Output = ApiResult<JoinToken>> + Send;
    fn cluster_backup(&self) -> impl Future<Output = ApiResult<serde_json::Value>> + Send;
    fn cluster_restore(
        &self,
        req: ClusterRestoreRequest,
    ) -> impl Future<Output = ApiResult<ClusterRestored>> + Send;
    fn node_list(&self) -> impl Future<Output = ApiResult<Vec<NodeInspect>>> + Send;
    fn node_inspect(&self, node: String) -> impl Future<Output = ApiResult<NodeInspect>> + Send;
    /// `promote` (to manager) or `demote` (to worker).
    fn node_set_role(
        &self,
        node: String,
        role: String,
    ) -> impl Future<Output = ApiResult<NodeInspect>> + Send;
    fn node_remove(
        &self,
        node: String,
        req: NodeRemoveRequest,
    ) -> impl Future<Output = ApiResult<()>> + Send;
    fn service_create(
        &self,
        req: ServiceCreateRequest,
    ) -> impl Future<Output = ApiResult<ServiceInspect>> + Send;
    fn service_list(&self) -> impl Future<Output = ApiResult<Vec<ServiceInspect>>> + Send;
    fn service_inspect(
        &self,
        name: String,
    ) -> impl Future<Output = ApiResult<ServiceInspect>> + Send;
    fn service_update(
        &self,
        name: String,
        req: ServiceUpdateRequest,
    ) -> impl Future<Output = ApiResult<ServiceInspect>> + Send;
    fn service_remove(&self, name: String) -> impl Future<Output = ApiResult<Removed>> + Send;
    /// A runtime's container joins a network in the namespace the runtime made (CNI ADD).
    fn runtime_attach(
        &self,
        req: AttachRequest,
    ) -> impl Future<Output = ApiResult<Attachment>> + Send;
    /// Undoes an attach; one that is not there is no error (CNI DEL).
    fn runtime_detach(&self, req: AttachmentRef) -> impl Future<Output = ApiResult<()>> + Send;
    /// Compares the kernel with the record (CNI CHECK).
    fn runtime_check(
        &self,
        req: AttachmentRef,
    ) -> impl Future<Output = ApiResult<CheckReport>> + Send;
    /// Removes a network's runtime attachments the runtime no longer has (CNI GC).
    fn runtime_gc(&self, req: RuntimeGcRequest)
        -> impl Future<Output = ApiResult<GcReport>> + Send;
    /// Removes endpoints whose namespace is gone, for every front end (`netctl gc`).
    fn gc(&self, req: GcRequest) -> impl Future<Output = ApiResult<GcReport>> + Send;
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self)).into_response()
    }
}

/// A JSON body whose decoding errors come back as `invalid_argument` with serde's reason.
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    Json<T>: axum::extract::FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Body(v))
            .map_err(|e| ApiError::invalid(format!("malformed request body: {}", e.body_text())))
    }
}

/// One route of the management API: its method and path, the rule a caller must pass, and
/// its handler. The router is made of these alone, so no route exists without a rule.
pub struct Route<M> {
    pub method: Method,
    pub path: &'static str,
    pub rule: Rule,
    handler: MethodRouter<Arc<M>>,
}

impl<M: Management> Route<M> {
    fn get<H: Handler<T, Arc<M>>, T: 'static>(path: &'static str, rule: Rule, h: H) -> Self {
        Self::new(Method::GET, path, rule, get(h))
    }

    fn post<H: Handler<T, Arc<M>>, T: 'static>(path: &'static str, rule: Rule, h: H) -> Self {
        Self::new(Method::POST, path, rule, post(h))
    }

    fn delete<H: Handler<T, Arc<M>>, T: 'static>(path: &'static str, rule: Rule, h: H) -> Self {
        Self::new(Method::DELETE, path, rule, delete(h))
    }

    fn new(method: Method, path: &'static str, rule: Rule, handler: MethodRouter<Arc<M>>) -> Self {
        Self {
            method,
            path,
            rule,
            handler,
        }
    }
}

/// Every route of the management API, with the rule it is checked against.
pub fn routes<M: Management>() -> Vec<Route<M>> {
    use Permission::*;
    let r = Rule::new;
    vec![
        Route::get("/v1/info", r(Read, "see the daemon's info"), info::<M>),
        Route::get("/v1/networks", r(Read, "list networks"), network_list::<M>),
        Route::post(
            "/v1/networks",
            r(Networks, "create networks"),
            network_create::<M>,
        ),
        Route::get(
            "/v1/networks/{name}",
            r(Read, "inspect networks"),
            network_inspect::<M>,
        ),
        Route::delete(
            "/v1/networks/{name}",
            r(Networks, "remove networks"),
            network_remove::<M>,
        ),
        Route::post(
            "/v1/networks/{name}/connect",
            r(Workloads, "connect sandboxes to networks"),
            network_connect::<M>,
        ),
        Route::post(
            "/v1/networks/{name}/disconnect",
            r(Workloads, "disconnect sandboxes from networks"),
            network_disconnect::<M>,
        ),
        Route::post(
            "/v1/networks/{name}/publish",
            r(Workloads, "publish ports"),
            network_publish::<M>,
        ),
        Route::post(
            "/v1/networks/{name}/unpublish",
            r(Workloads, "unpublish ports"),
            network_unpublish::<M>,
        ),
        Route::get(
            "/v1/sandboxes",
            r(Read, "list sandboxes"),
            sandbox_list::<M>,
        ),
        Route::post(
            "/v1/sandboxes",
            r(Workloads, "create sandboxes"),
            sandbox_create::<M>,
        ),
        Route::get(
            "/v1/sandboxes/{name}",
            r(Read, "inspect sandboxes"),
            sandbox_inspect::<M>,
        ),
        Route::delete(
            "/v1/sandboxes/{name}",
            r(Workloads, "remove sandboxes"),
            sandbox_remove::<M>,
        ),
        Route::get(
            "/v1/sandboxes/{name}/dns",
            r(Read, "explain sandboxes' DNS"),
            sandbox_dns::<M>,
        ),
        Route::post(
            "/v1/firewall/reload",
            r(Admin, "reload the firewall"),
            firewall_reload::<M>,
        ),
        Route::get(
            "/v1/cluster",
            r(Nodes, "inspect the cluster"),
            cluster_inspect::<M>,
        ),
        Route::post(
            "/v1/cluster/init",
            r(Admin, "init a cluster"),
            cluster_init::<M>,
        ),
        Route::post(
            "/v1/cluster/join",
            r(Admin, "join a cluster"),
            cluster_join::<M>,
        ),
        Route::post(
            "/v1/cluster/leave",
            r(Admin, "leave the cluster"),
            cluster_leave::<M>,
        ),
        Route::post(
            "/v1/cluster/join-token",
            r(Admin, "manage join tokens"),
            cluster_join_token::<M>,
        ),
        Route::get(
            "/v1/cluster/backup",
            r(Admin, "back the cluster up"),
            cluster_backup::<M>,
        ),
        Route::post(
            "/v1/cluster/restore",
            r(Admin, "restore the cluster"),
            cluster_restore::<M>,
        ),
        Route::get("/v1/nodes", r(Nodes, "list nodes"), node_list::<M>),
        Route::get(
            "/v1/nodes/{node}",
            r(Nodes, "inspect nodes"),
            node_inspect::<M>,
        ),
        Route::post(
            "/v1/nodes/{node}/promote",
            r(Admin, "promote nodes"),
            node_promote::<M>,
        ),
        Route::post(
            "/v1/nodes/{node}/demote",
            r(Admin, "demote nodes"),
            node_demote::<M>,
        ),
        Route::post(
            "/v1/nodes/{node}/remove",
            r(Admin, "remove nodes"),
            node_remove::<M>,
        ),
        Route::get("/v1/services", r(Read, "list services"), service_list::<M>),
        Route::post(
            "/v1/services",
            r(Workloads, "create services"),
            service_create::<M>,
        ),
        Route::get(
            "/v1/services/{name}",
            r(Read, "inspect services"),
            service_inspect::<M>,
        ),
        Route::delete(
            "/v1/services/{name}",
            r(Workloads, "remove services"),
            service_remove::<M>,
        ),
        Route::post(
            "/v1/services/{name}/update",
            r(Workloads, "update services"),
            service_update::<M>,
        ),
        Route::post(
            "/v1/runtime/attach",
            r(Workloads, "attach containers"),
            runtime_attach::<M>,
        ),
        Route::post(
            "/v1/runtime/detach",
            r(Workloads, "detach containers"),
            runtime_detach::<M>,
        ),
        Route::post(
            "/v1/runtime/check",
            r(Workloads, "check containers"),
            runtime_check::<M>,
        ),
        Route::post(
            "/v1/runtime/gc",
            r(Workloads, "collect runtimes' garbage"),
            runtime_gc::<M>,
        ),
        Route::post("/v1/gc", r(Admin, "collect garbage"), gc::<M>),
    ]
}

/// The management API. Serve it with `into_make_service_with_connect_info::<Caller>()` so
/// that requests carry their caller.
pub fn router<M: Management>(api: Arc<M>) -> Router {
    let mut router = Router::new();
    for route in routes::<M>() {
        let guard = middleware::from_fn_with_state((api.clone(), route.rule), authorize::<M>);
        router = router.route(route.path, route.handler.route_layer(guard));
    }
    router
        .fallback(|| async { ApiError::not_found("no such API path") })
        // Docker's health answer: whoever reaches the socket may ask whether it serves.
        .route("/_ping", get(|| async { "OK" }).head(|| async { "" }))
        .with_state(api)
}

async fn authorize<M: Management>(
    State((m, rule)): State<(Arc<M>, Rule)>,
    request: Request,
    next: Next,
) -> Response {
    // Served without connect info, a caller is unknown and so refused.
    let caller = request
        .extensions()
        .get::<ConnectInfo<Caller>>()
        .map(|c| c.0.clone())
        .unwrap_or_default();
    match m.authorize(&caller, rule) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn network_publish<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
    Body(req): Body<PublishRequest>,
) -> ApiResult<Json<Vec<PortMapping>>> {
    m.network_publish(name, req).await.map(Json)
}

async fn network_unpublish<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
    Body(req): Body<PublishRequest>,
) -> ApiResult<StatusCode> {
    m.network_unpublish(name, req)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn firewall_reload<M: Management>(State(m): State<Arc<M>>) -> ApiResult<StatusCode> {
    m.firewall_reload().await.map(|()| StatusCode::NO_CONTENT)
}

async fn info<M: Management>(State(m): State<Arc<M>>) -> ApiResult<Json<DaemonInfo>> {
    m.info().await.map(Json)
}

async fn network_create<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<NetworkCreateRequest>,
) -> ApiResult<(StatusCode, Json<NetworkInspect>)> {
    m.network_create(req)
        .await
        .map(|n| (StatusCode::CREATED, Json(n)))
}

async fn network_list<M: Management>(
    State(m): State<Arc<M>>,
) -> ApiResult<Json<Vec<NetworkInspect>>> {
    m.network_list().await.map(Json)
}

async fn network_inspect<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
) -> ApiResult<Json<NetworkInspect>> {
    m.network_inspect(name).await.map(Json)
}

async fn network_remove<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    m.network_remove(name).await.map(Json)
}

async fn network_connect<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
    Body(req): Body<ConnectRequest>,
) -> ApiResult<StatusCode> {
    m.network_connect(name, req)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn network_disconnect<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
    Body(req): Body<DisconnectRequest>,
) -> ApiResult<StatusCode> {
    m.network_disconnect(name, req)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn sandbox_create<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<SandboxCreateRequest>,
) -> ApiResult<(StatusCode, Json<SandboxInspect>)> {
    m.sandbox_create(req)
        .await
        .map(|s| (StatusCode::CREATED, Json(s)))
}

async fn sandbox_list<M: Management>(
    State(m): State<Arc<M>>,
) -> ApiResult<Json<Vec<SandboxInspect>>> {
    m.sandbox_list().await.map(Json)
}

async fn sandbox_inspect<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
) -> ApiResult<Json<SandboxInspect>> {
    m.sandbox_inspect(name).await.map(Json)
}

async fn sandbox_remove<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    m.sandbox_remove(name).await.map(Json)
}

async fn sandbox_dns<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
) -> ApiResult<Json<DnsExplain>> {
    m.sandbox_dns(name).await.map(Json)
}

async fn cluster_init<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<ClusterInitRequest>,
) -> ApiResult<Json<ClusterInspect>> {
    m.cluster_init(req).await.map(Json)
}

async fn cluster_join<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<ClusterJoinRequest>,
) -> ApiResult<Json<ClusterInspect>> {
    m.cluster_join(req).await.map(Json)
}

async fn cluster_leave<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<ClusterLeaveRequest>,
) -> ApiResult<StatusCode> {
    m.cluster_leave(req).await.map(|()| StatusCode::NO_CONTENT)
}

async fn cluster_inspect<M: Management>(
    State(m): State<Arc<M>>,
) -> ApiResult<Json<ClusterInspect>> {
    m.cluster_inspect().await.map(Json)
}

async fn cluster_join_token<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<JoinTokenRequest>,
) -> ApiResult<Json<JoinToken>> {
    m.cluster_join_token(req).await.map(Json)
}

async fn cluster_backup<M: Management>(
    State(m): State<Arc<M>>,
) -> ApiResult<Json<serde_json::Value>> {
    m.cluster_backup().await.map(Json)
}

async fn cluster_restore<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<ClusterRestoreRequest>,
) -> ApiResult<Json<ClusterRestored>> {
    m.cluster_restore(req).await.map(Json)
}

async fn service_create<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<ServiceCreateRequest>,
) -> ApiResult<(StatusCode, Json<ServiceInspect>)> {
    m.service_create(req)
        .await
        .map(|s| (StatusCode::CREATED, Json(s)))
}

async fn service_list<M: Management>(
    State(m): State<Arc<M>>,
) -> ApiResult<Json<Vec<ServiceInspect>>> {
    m.service_list().await.map(Json)
}

async fn service_inspect<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
) -> ApiResult<Json<ServiceInspect>> {
    m.service_inspect(name).await.map(Json)
}

async fn service_update<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
    Body(req): Body<ServiceUpdateRequest>,
) -> ApiResult<Json<ServiceInspect>> {
    m.service_update(name, req).await.map(Json)
}

async fn service_remove<M: Management>(
    State(m): State<Arc<M>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    m.service_remove(name).await.map(Json)
}

async fn node_list<M: Management>(State(m): State<Arc<M>>) -> ApiResult<Json<Vec<NodeInspect>>> {
    m.node_list().await.map(Json)
}

async fn node_inspect<M: Management>(
    State(m): State<Arc<M>>,
    Path(node): Path<String>,
) -> ApiResult<Json<NodeInspect>> {
    m.node_inspect(node).await.map(Json)
}

async fn node_promote<M: Management>(
    State(m): State<Arc<M>>,
    Path(node): Path<String>,
) -> ApiResult<Json<NodeInspect>> {
    m.node_set_role(node, "manager".into()).await.map(Json)
}

async fn node_demote<M: Management>(
    State(m): State<Arc<M>>,
    Path(node): Path<String>,
) -> ApiResult<Json<NodeInspect>> {
    m.node_set_role(node, "worker".into()).await.map(Json)
}

async fn node_remove<M: Management>(
    State(m): State<Arc<M>>,
    Path(node): Path<String>,
    Body(req): Body<NodeRemoveRequest>,
) -> ApiResult<StatusCode> {
    m.node_remove(node, req)
        .await
        .map(|()| StatusCode::NO_CONTENT)
}

async fn runtime_attach<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<AttachRequest>,
) -> ApiResult<Json<Attachment>> {
    m.runtime_attach(req).await.map(Json)
}

async fn runtime_detach<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<AttachmentRef>,
) -> ApiResult<StatusCode> {
    m.runtime_detach(req).await.map(|()| StatusCode::NO_CONTENT)
}

async fn runtime_check<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<AttachmentRef>,
) -> ApiResult<Json<CheckReport>> {
    m.runtime_check(req).await.map(Json)
}

async fn runtime_gc<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<RuntimeGcRequest>,
) -> ApiResult<Json<GcReport>> {
    m.runtime_gc(req).await.map(Json)
}

async fn gc<M: Management>(
    State(m): State<Arc<M>>,
    Body(req): Body<GcRequest>,
) -> ApiResult<Json<GcReport>> {
    m.gc(req).await.map(Json)
}
