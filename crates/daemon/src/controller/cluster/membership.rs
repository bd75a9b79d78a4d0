//! `netctl cluster init|join|leave|join-token`: a node entering and leaving its cluster.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use netctl_drivers::cluster::DEFAULT_VXLAN_PORT;
use netctl_drivers::NetworkRole;
use netctl_pki::{Authority, Credential, SigningRequest};
use netctl_plugin_api::cluster::{
    ClusterInitRequest, ClusterInspect, ClusterJoinRequest, ClusterLeaveRequest, JoinToken,
    JoinTokenRequest, StoreTlsMaterial,
};
use netctl_store::{Batch, ClusterStore};

use super::super::effects::Effect;
use super::super::executor;
use super::super::state::State;
use super::super::Controller;
use crate::cluster_store::credentials;
use crate::cluster_store::join_service::{self, JoinAnswer, JoinAsk, JoinServiceError, JOIN_PORT};
use crate::cluster_store::members::{self, MembershipError, Newcomer, Role};
use crate::config::{check_store_urls, normalize_store_urls};
use crate::controller::error::{EngineError, ErrorKind};
use crate::ids::now_rfc3339;
use crate::model::{EndpointRecord, MembershipRecord, NetworkRecord, StoreCredentials};
use crate::persist::BatchExt;

/// How long init and join wait for the cluster's state to be mirrored before answering.
const SYNC_WAIT: Duration = Duration::from_secs(5);

fn parse_role(text: &str) -> Result<Role, EngineError> {
    match text {
        "worker" => Ok(Role::Worker),
        "manager" => Ok(Role::Manager),
        other => Err(EngineError::invalid(format!(
            "unknown role {other:?}: worker or manager"
        ))),
    }
}

impl Controller {
    fn refuse_if_member(&self) -> Result<(), EngineError> {
        match self.cluster.membership() {
            Some(m) => Err(EngineError::conflict(format!(
                "this node is already in cluster {}: `netctl cluster leave` first",
                m.cluster_id
            ))),
            None => Ok(()),
        }
    }

    /// The URLs asked for, or daemon.json's.
    pub(super) fn store_urls(&self, asked: &[String]) -> Result<Vec<String>, EngineError> {
        let asked: Vec<&str> = asked.iter().flat_map(|s| s.split(',')).collect();
        let urls = match normalize_store_urls(&asked) {
            urls if !urls.is_empty() => urls,
            _ => self
                .config
                .cluster_store
                .as_ref()
                .map(|c| c.list())
                .unwrap_or_default(),
        };
        check_store_urls(&urls).map_err(|e| {
            EngineError::invalid(format!(
                "cluster store: {e} (give --store URL,… or daemon.json's cluster-store)"
            ))
        })?;
        Ok(urls)
    }

    /// A new member's checks: an address of this node, and store URLs (`https://` ones
    /// need `tls`, plain ones refuse it).
    async fn prepare(
        &self,
        advertise_addr: &str,
        store: &[String],
        vxlan_port: u16,
        tls: bool,
    ) -> Result<MembershipRecord, EngineError> {
        let address: IpAddr = advertise_addr.trim().parse().map_err(|_| {
            EngineError::invalid(format!(
                "invalid advertise address {advertise_addr:?}: give this node's IP address"
            ))
        })?;
        let urls = self.store_urls(store)?;
        let https = urls.iter().filter(|u| u.starts_with("https://")).count();
        match (https, tls) {
            (0, false) => {}
            (n, true) if n == urls.len() => {}
            (0, true) => return Err(EngineError::invalid(
                "the store's TLS credentials were given for plain http:// URLs: give https:// ones",
            )),
            (n, false) if n == urls.len() => {
                return Err(EngineError::invalid(
                    "an https:// store needs TLS credentials: --store-ca, --store-cert, \
                     --store-key and --store-ca-key for init; --store-ca and --manager for join",
                ))
            }
            _ => {
                return Err(EngineError::invalid(
                    "the store's URLs mix http:// and https://: give one kind",
                ))
            }
        }
        let membership = MembershipRecord {
            cluster_id: String::new(),
            store: urls,
            advertise_addr: address,
            vxlan_port,
            lease: None,
            tokens: Default::default(),
            joined: now_rfc3339(),
            store_tls: None,
        };
        self.underlay(&membership).await?;
        Ok(membership)
    }

    fn newcomer(&self, membership: &MembershipRecord) -> Newcomer {
        Newcomer {
            id: self.node.id.clone(),
            hostname: self.node.hostname.clone(),
            address: membership.advertise_addr.to_string(),
        }
    }

    pub async fn cluster_init(
        &self,
        req: ClusterInitRequest,
    ) -> Result<ClusterInspect, EngineError> {
        self.refuse_if_member()?;
        let port = req.vxlan_port.unwrap_or(DEFAULT_VXLAN_PORT);
        if port == 0 {
            return Err(EngineError::invalid("invalid VXLAN port 0"));
        }
        let mut membership = self
            .prepare(
                &req.advertise_addr,
                &req.store,
                port,
                req.store_tls.is_some(),
            )
            .await?;
        let store = match &req.store_tls {
            Some(material) => {
                let (store, credentials) = self.secure_store(&membership, material).await?;
                membership.store_tls = Some(credentials);
                store
            }
            None => connect(&membership, None).await?,
        };
        let (record, tokens) = members::init(&store, &self.newcomer(&membership), port)
            .await
            .map_err(EngineError::from)?;
        membership.cluster_id = record.id.clone();
        for role in [Role::Worker, Role::Manager] {
            membership
                .tokens
                .insert(role.name().into(), tokens.of(role).to_string());
        }
        self.enter_cluster(membership, store).await?;
        if let Err(e) = self.ensure_ingress_network().await {
            tracing::error!(error = %e, "the cluster has no ingress network; make one with --driver ingress");
        }
        tracing::info!(cluster = %record.id, "cluster initialized");
        self.cluster_inspect().await
    }

    pub async fn cluster_join(
        &self,
        req: ClusterJoinRequest,
    ) -> Result<ClusterInspect, EngineError> {
        self.refuse_if_member()?;
        let mut membership = self
            .prepare(
                &req.advertise_addr,
                &req.store,
                DEFAULT_VXLAN_PORT,
                req.store_ca.is_some(),
            )
            .await?;
        let (cluster_id, role, store) = match &req.store_ca {
            Some(ca) => {
                let (cluster_id, role, credentials) =
                    self.ask_to_join(&req, ca, &mut membership).await?;
                let store = connect(&membership, Some(&credentials)).await?;
                membership.store_tls = Some(credentials);
                (cluster_id, role, store)
            }
            None => {
                let store = connect(&membership, None).await?;
                let (record, role) =
                    members::join(&store, req.token.trim(), &self.newcomer(&membership))
                        .await
                        .map_err(EngineError::from)?;
                membership.vxlan_port = record.vxlan_port;
                (record.id, role.name().to_string(), store)
            }
        };
        membership.cluster_id = cluster_id.clone();
        self.enter_cluster(membership, store).await?;
        tracing::info!(cluster = %cluster_id, role, "joined the cluster");
        self.cluster_inspect().await
    }

    /// A TLS store: the manager at `--manager` issues this node's certificate for its
    /// token. Returns the cluster's id, the node's role and its credentials.
    async fn ask_to_join(
        &self,
        req: &ClusterJoinRequest,
        ca_pem: &str,
        membership: &mut MembershipRecord,
    ) -> Result<(String, String, StoreCredentials), EngineError> {
        let manager = parse_manager(req.manager.as_deref())?;
        let request = SigningRequest::new(&credentials::node_user(&self.node.id))
            .map_err(|e| EngineError::internal(e.to_string()))?;
        let newcomer = self.newcomer(membership);
        let ask = JoinAsk {
            token: req.token.trim().to_string(),
            node_id: newcomer.id,
            hostname: newcomer.hostname,
            address: newcomer.address,
            csr_pem: request.csr_pem,
        };
        let answer = join_service::ask(manager, ca_pem, &ask)
            .await
            .map_err(|e| match e {
                JoinServiceError::BadCa(_) => EngineError::invalid(format!("--store-ca: {e}")),
                _ => EngineError::unavailable(e.to_string()),
            })?;
        match answer {
            JoinAnswer::Admitted {
                cluster_id,
                vxlan_port,
                role,
                cert_pem,
            } => {
                membership.vxlan_port = vxlan_port;
                let credentials = StoreCredentials {
                    ca_pem: ca_pem.to_string(),
                    cert_pem,
                    key_pem: request.key_pem,
                };
                Ok((cluster_id, role, credentials))
            }
            JoinAnswer::Refused(why) => Err(EngineError::new(
                ErrorKind::Forbidden,
                format!("manager {manager} refused the join: {why}"),
            )),
        }
    }

    /// `cluster init` on a TLS store, as its administrator (`root`): keeps the CA for the
    /// managers, makes this node's etcd user (a manager), turns etcd's authentication on,
    /// and issues this node's certificate. Refused, with nothing changed, when the store
    /// holds a cluster already or the CA's key does not match it.
    async fn secure_store(
        &self,
        membership: &MembershipRecord,
        material: &StoreTlsMaterial,
    ) -> Result<(ClusterStore, StoreCredentials), EngineError> {
        let authority = Authority::from_pem(&Credential {
            cert_pem: material.ca.clone(),
            key_pem: material.ca_key.clone(),
        })
        .map_err(|e| EngineError::invalid(format!("--store-ca/--store-ca-key: {e}")))?;
        let admin = StoreCredentials {
            ca_pem: material.ca.clone(),
            cert_pem: material.cert.clone(),
            key_pem: material.key.clone(),
        };
        let store = connect(membership, Some(&admin)).await?;
        match members::cluster(&store).await {
            Ok(record) => {
                return Err(EngineError::from(MembershipError::AlreadyInitialized(
                    record.id,
                )))
            }
            Err(MembershipError::NoCluster) => {}
            Err(e) => return Err(EngineError::from(e)),
        }
        let store_error = EngineError::from;
        credentials::keep_authority(&store, authority.credential())
            .await
            .map_err(store_error)?;
        credentials::admit(&store, &self.node.id, Role::Manager)
            .await
            .map_err(store_error)?;
        store.enable_auth().await.map_err(store_error)?;
        let credentials = issue(&authority, &self.node.id)?;
        let store = connect(membership, Some(&credentials)).await?;
        Ok((store, credentials))
    }

    /// Keeps the membership, gives the overlay its underlay, hands the connection to the
    /// supervisor and waits for the cluster's state to be mirrored.
    async fn enter_cluster(
        &self,
        membership: MembershipRecord,
        store: ClusterStore,
    ) -> Result<(), EngineError> {
        let underlay = self.underlay(&membership).await?;
        self.save_membership(&membership).await?;
        self.set_underlay(Some(underlay));
        self.cluster.replace(Some(membership), Some(store));
        if !self.cluster.wait_synced(SYNC_WAIT).await {
            tracing::warn!("the cluster's state is not mirrored yet; it will be shortly");
        }
        // Made again on the first connect that needs it, should this fail.
        if let Err(e) = self.ensure_gateway_bridge().await {
            tracing::error!(error = %e, "no gateway bridge yet");
        }
        Ok(())
    }

    /// The cluster's ingress network, made by the manager that starts the cluster, as
    /// Docker's swarm init does; a cluster may replace it later.
    async fn ensure_ingress_network(&self) -> Result<(), EngineError> {
        use netctl_drivers::ingress::DEFAULT_SUBNET;
        let exists = self
            .state
            .lock()
            .await
            .networks()
            .any(|n| self.role(n) == NetworkRole::Ingress);
        if exists {
            return Ok(());
        }
        let driver = self
            .drivers
            .with_role(NetworkRole::Ingress)
            .map(|d| d.name())
            .ok_or_else(|| EngineError::internal("this daemon has no ingress driver"))?;
        self.create_network(netctl_plugin_api::NetworkCreateRequest {
            name: driver.into(),
            driver: Some(driver.into()),
            ipam: Some(netctl_plugin_api::IpamRequest {
                config: vec![netctl_plugin_api::IpamConfig {
                    subnet: Some(DEFAULT_SUBNET.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map(drop)
    }

    /// Leaves the cluster: refused as the last manager of a cluster with other nodes, or
    /// with endpoints on global networks, unless forced (the endpoints are then removed).
    pub async fn cluster_leave(&self, req: ClusterLeaveRequest) -> Result<(), EngineError> {
        let membership = self
            .cluster
            .membership()
            .ok_or_else(super::not_in_cluster)?;
        let standing = leave_standing(&*self.state.lock().await, &self.node.id, |n| {
            self.is_global(n)
        });
        if !req.force {
            standing.refuse_leave()?;
        }
        let mine = standing.mine;
        let store = self.cluster.store().ok();
        if let Some(store) = &store {
            self.forget_in_cluster(store, &mine, membership.lease)
                .await?;
        } else if !req.force {
            self.cluster.store()?;
        }
        self.cluster.replace(None, None);
        self.set_underlay(None);
        self.drop_global_state().await;
        // The services' names go with the cluster's state.
        self.refresh_services().await;
        if let Err(e) = self.drop_gateway_bridge().await {
            tracing::warn!(error = %e, "the gateway bridge stays");
        }
        self.store
            .apply(Batch::new().delete_record::<MembershipRecord>("this"))
            .await
            .map_err(EngineError::from)?;
        if let Err(e) = std::fs::remove_dir_all(self.credentials_dir()) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(error = %e, "the node's store credentials stay on disk");
            }
        }
        tracing::info!(cluster = %membership.cluster_id, "left the cluster");
        Ok(())
    }

    /// Takes this node and its endpoints (with their address claims) out of the store. The
    /// lease goes before the node's record: its liveness key with it, and no announcement
    /// can put that back; and on a TLS store, a manager that sees the record go deletes this
    /// node's etcd user, after which it could revoke nothing.
    async fn forget_in_cluster(
        &self,
        store: &ClusterStore,
        mine: &[EndpointRecord],
        lease: Option<i64>,
    ) -> Result<(), EngineError> {
        let state = self.state.lock().await;
        let mut batch = Batch::new();
        for ep in mine {
            if let Some(net) = state.network_by_id(&ep.network_id) {
                batch = batch.and(self.endpoint_removal(net, ep));
            }
        }
        drop(state);
        super::nodes::apply_in_chunks(store, batch).await?;
        if let Some(lease) = lease {
            if let Err(e) = store.revoke_lease(lease).await {
                tracing::warn!(error = %e, "cannot revoke this node's lease; it ends at its TTL");
            }
        }
        members::remove_node(store, &self.node.id)
            .await
            .map_err(EngineError::from)
    }

    /// After leaving: global networks and every node's endpoints out of the state, the DNS
    /// directory and the kernel.
    async fn drop_global_state(&self) {
        let effects = {
            let mut state = self.state.lock().await;
            let globals: Vec<_> = state
                .networks()
                .filter(|n| self.is_global(n))
                .cloned()
                .collect();
            let mut effects = Vec::new();
            for net in globals {
                let endpoints: Vec<EndpointRecord> =
                    state.endpoints_of_network(&net.id).cloned().collect();
                for ep in endpoints {
                    effects.push(Effect::RemoveNames(ep.id.clone()));
                    if ep.node == self.node.id {
                        let sandbox = state.sandbox_of(&ep).cloned();
                        effects.extend(self.plan_leave(&mut state, &net, sandbox.as_ref(), &ep));
                    } else {
                        state.remove_endpoint(&ep.id);
                    }
                }
                tracing::debug!(network = %net.name, vni = self.vni(&net), "forgetting a global network");
                state.remove_network(&net.id);
                state.release_network_subnets(&net);
                effects.push(Effect::DeleteNetwork {
                    driver: net.driver.clone(),
                    net: super::super::specs::network_spec(&net),
                });
            }
            state.global = Default::default();
            effects
        };
        executor::best_effort(self, "clean up after leaving the cluster", &effects).await;
    }

    /// `netctl cluster join-token ROLE [--rotate]`: the token this node made, or a new one.
    pub async fn cluster_join_token(
        &self,
        req: JoinTokenRequest,
    ) -> Result<JoinToken, EngineError> {
        let role = parse_role(&req.role)?;
        let mut membership = self
            .cluster
            .membership()
            .ok_or_else(super::not_in_cluster)?;
        self.require_manager_to("join-token", "manage join tokens")
            .await?;
        let token = match membership.tokens.get(role.name()) {
            Some(token) if !req.rotate => token.clone(),
            known => {
                if known.is_none() && !req.rotate {
                    return Err(EngineError::not_found(format!(
                        "the {0} token was made on another manager (the cluster keeps only its \
                         hash): run `netctl cluster join-token {0}` there, or `--rotate` here \
                         (the old token then stops working)",
                        role.name()
                    )));
                }
                let store = self.cluster.store()?;
                let token = members::rotate_token(&store, role)
                    .await
                    .map_err(EngineError::from)?;
                membership
                    .tokens
                    .insert(role.name().to_string(), token.clone());
                self.save_membership(&membership).await?;
                *self.cluster.membership.lock() = Some(membership.clone());
                token
            }
        };
        let mut command = format!(
            "netctl cluster join --token {token} --advertise-addr <this node's address> --store {}",
            membership.store.join(",")
        );
        if membership.store_tls.is_some() {
            // The CA's certificate is public; this manager issues the newcomer's.
            command.push_str(&format!(
                " --store-ca <the cluster's ca.pem> --manager {}",
                membership.advertise_addr
            ));
        }
        Ok(JoinToken {
            role: role.name().into(),
            token,
            command,
        })
    }
}

/// Connects to the membership's store, over TLS with `credentials` when given.
async fn connect(
    membership: &MembershipRecord,
    credentials: Option<&StoreCredentials>,
) -> Result<ClusterStore, EngineError> {
    let tls = credentials.map(StoreCredentials::tls);
    ClusterStore::connect_with(&membership.store, tls.as_ref())
        .await
        .map_err(EngineError::from)
}

/// A certificate for node `node_id`'s etcd user, with a key made here.
pub(super) fn issue(authority: &Authority, node_id: &str) -> Result<StoreCredentials, EngineError> {
    let user = credentials::node_user(node_id);
    let internal = |e: netctl_pki::PkiError| EngineError::internal(e.to_string());
    let request = SigningRequest::new(&user).map_err(internal)?;
    let cert_pem = authority.sign(&request.csr_pem, &user).map_err(internal)?;
    Ok(StoreCredentials {
        ca_pem: authority.cert_pem().to_string(),
        cert_pem,
        key_pem: request.key_pem,
    })
}

/// `--manager ADDRESS[:PORT]`.
fn parse_manager(manager: Option<&str>) -> Result<SocketAddr, EngineError> {
    let manager = manager.map(str::trim).unwrap_or_default();
    if manager.is_empty() {
        return Err(EngineError::invalid(
            "a TLS store is joined through a manager: give --manager ADDRESS of one",
        ));
    }
    if let Ok(address) = manager.parse::<SocketAddr>() {
        return Ok(address);
    }
    manager
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, JOIN_PORT))
        .map_err(|_| {
            EngineError::invalid(format!(
                "invalid --manager {manager:?}: give ADDRESS or ADDRESS:PORT"
            ))
        })
}

/// What a node leaving the cluster would leave behind.
struct LeaveStanding {
    /// It is the last manager, and other nodes stay.
    last_manager_with_others: bool,
    /// Its endpoints on global networks (its own balancers among them).
    mine: Vec<EndpointRecord>,
}

fn leave_standing(
    state: &State,
    node: &str,
    is_global: impl Fn(&NetworkRecord) -> bool,
) -> LeaveStanding {
    let other_managers = state
        .global
        .nodes
        .values()
        .filter(|n| n.role == Role::Manager && n.id != node)
        .count();
    let manager = state
        .global
        .nodes
        .get(node)
        .is_some_and(|n| n.role == Role::Manager);
    let mine = state
        .endpoints()
        .filter(|e| e.node == node)
        .filter(|e| state.network_by_id(&e.network_id).is_some_and(&is_global))
        .cloned()
        .collect();
    LeaveStanding {
        last_manager_with_others: manager && other_managers == 0 && state.global.nodes.len() > 1,
        mine,
    }
}

impl LeaveStanding {
    /// Refuses a leave without `--force` that would leave the cluster without a manager,
    /// or users' endpoints without their network.
    fn refuse_leave(&self) -> Result<(), EngineError> {
        if self.last_manager_with_others {
            return Err(EngineError::conflict(
                "this node is the cluster's last manager and other nodes remain: promote \
                 another node first, or leave with --force (the others keep the cluster \
                 but no node may change its global networks)",
            ));
        }
        // The node's own balancers go with it.
        let users = self.mine.iter().filter(|e| !e.balancer).count();
        if users > 0 {
            return Err(EngineError::conflict(format!(
                "this node has {users} endpoint(s) on global networks: disconnect them \
                 first, or leave with --force to remove them"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster_store::members::ClusterNode;
    use crate::controller::test_records::{endpoint, network};
    use crate::controller::ErrorKind;
    use crate::model::SubnetOwner;

    fn node(id: &str, role: Role) -> ClusterNode {
        ClusterNode {
            id: id.into(),
            hostname: id.into(),
            address: String::new(),
            role,
            joined: String::new(),
        }
    }

    fn standing(roles: &[(&str, Role)], endpoints: &[(&str, bool)]) -> LeaveStanding {
        let mut state = State::new(netctl_ipam::Ipam::new(Vec::new(), Vec::new()));
        for (id, role) in roles {
            state.global.nodes.insert(id.to_string(), node(id, *role));
        }
        state.insert_network(network("g1", "web", "overlay", SubnetOwner::Network));
        for (id, balancer) in endpoints {
            let mut ep = endpoint(id, "g1", "s1");
            ep.node = "me".into();
            ep.balancer = *balancer;
            state.insert_endpoint(ep);
        }
        leave_standing(&state, "me", |n| n.driver == "overlay")
    }

    #[test]
    fn the_last_manager_may_not_leave_others_without_one() {
        let alone = standing(&[("me", Role::Manager), ("w", Role::Worker)], &[]);
        let refused = alone.refuse_leave().unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Conflict);
        assert!(refused.to_string().contains("last manager"));
        let another = standing(&[("me", Role::Manager), ("m2", Role::Manager)], &[]);
        assert!(another.refuse_leave().is_ok());
        let only_node = standing(&[("me", Role::Manager)], &[]);
        assert!(only_node.refuse_leave().is_ok());
    }

    #[test]
    fn a_node_with_users_on_global_networks_stays_but_its_balancers_go_with_it() {
        let roles = [("me", Role::Worker), ("m", Role::Manager)];
        let users = standing(&roles, &[("e1", false), ("b1", true)]);
        assert!(users
            .refuse_leave()
            .unwrap_err()
            .to_string()
            .contains("1 endpoint(s)"));
        let balancers = standing(&roles, &[("b1", true)]);
        assert!(balancers.refuse_leave().is_ok());
        assert_eq!(
            balancers.mine.len(),
            1,
            "removed with the node all the same"
        );
    }
}
