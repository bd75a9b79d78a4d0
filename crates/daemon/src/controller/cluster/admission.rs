//! A manager admitting nodes to a cluster whose store is TLS with client certificates:
//! its join service, and what it decides for each ask (see [`crate::cluster_store::join_service`]).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use netctl_store::{ClusterStore, StoreError};

use super::super::Controller;
use crate::cluster_store::credentials::{self, CredentialError};
use crate::cluster_store::join_service::{Admit, JoinAnswer, JoinAsk, JoinService, JOIN_PORT};
use crate::cluster_store::members::{self, Newcomer};
use crate::cluster_store::rekey::rekey_endpoints;
use crate::model::MembershipRecord;

impl Controller {
    pub(super) fn store_is_tls(&self) -> bool {
        self.cluster
            .membership()
            .is_some_and(|m| m.store_tls.is_some())
    }

    /// Each time the store is reached: endpoint keys of an older layout moved, and, on a
    /// manager of a TLS store, the join service started.
    pub(super) async fn after_connect(
        self: &Arc<Self>,
        store: &ClusterStore,
        membership: &MembershipRecord,
    ) {
        match rekey_endpoints(store, Some(&self.node.id)).await {
            Ok(0) => {}
            Ok(moved) => tracing::info!(moved, "endpoint keys moved under this node's id"),
            Err(e) => tracing::warn!(error = %e, "cannot move endpoint keys to the current layout"),
        }
        if membership.store_tls.is_some() {
            self.serve_joins(store, membership).await;
        }
    }

    /// A node promoted to manager answers joins from then on.
    pub(super) async fn serve_joins_if_promoted(self: &Arc<Self>) {
        let Some(membership) = self.cluster.membership() else {
            return;
        };
        if membership.store_tls.is_none() || self.cluster.answers_joins() {
            return;
        }
        let manager = self
            .state
            .lock()
            .await
            .global
            .nodes
            .get(&self.node.id)
            .is_some_and(|n| n.role == members::Role::Manager);
        if let (true, Ok(store)) = (manager, self.cluster.store()) {
            self.serve_joins(&store, &membership).await;
        }
    }

    /// Starts the join service when this node can issue certificates (it reads the CA:
    /// it is a manager) and it is not running yet.
    pub(super) async fn serve_joins(
        self: &Arc<Self>,
        store: &ClusterStore,
        membership: &MembershipRecord,
    ) {
        if self.cluster.answers_joins() {
            return;
        }
        let authority = match credentials::authority(store).await {
            Ok(Some(authority)) => authority,
            Ok(None) => return,
            // A worker: etcd keeps the CA from it.
            Err(CredentialError::Store(StoreError::Denied(_))) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the cluster's CA; no join service here");
                return;
            }
        };
        let host = membership.advertise_addr.to_string();
        let server = match authority.server("netctl manager", &[host]) {
            Ok(server) => server,
            Err(e) => {
                tracing::warn!(error = %e, "cannot issue the join service's certificate");
                return;
            }
        };
        let address = SocketAddr::new(membership.advertise_addr, JOIN_PORT);
        let weak = Arc::downgrade(self);
        let admit: Admit = Arc::new(move |ask| {
            let weak: Weak<Controller> = weak.clone();
            Box::pin(async move {
                match weak.upgrade() {
                    Some(controller) => controller.admit(ask).await,
                    None => JoinAnswer::Refused("the manager is stopping".into()),
                }
            })
        });
        match JoinService::start(address, &server.cert_pem, &server.key_pem, admit).await {
            Ok(service) => {
                tracing::info!(%address, "answering joins");
                *self.cluster.join_service.lock() = Some(service);
            }
            Err(e) => tracing::warn!(error = %e, "no join service on this manager"),
        }
    }

    /// A node gone from the cluster: its etcd user goes too, when this node is a manager
    /// answering joins (the others, and plain HTTP stores, have no users to delete).
    pub(super) async fn forget_user(&self, node: &str) {
        if !self.cluster.answers_joins() {
            return;
        }
        let Ok(store) = self.cluster.store() else {
            return;
        };
        match store.remove_user(&credentials::node_user(node)).await {
            Ok(()) => tracing::info!(%node, "the node's etcd user is removed"),
            Err(e) => tracing::warn!(%node, error = %e, "cannot remove the node's etcd user"),
        }
    }

    /// One ask: a token of this cluster, then the node's etcd user, its certificate and
    /// its record. A refused ask changes nothing.
    async fn admit(&self, ask: JoinAsk) -> JoinAnswer {
        match self.try_admit(&ask).await {
            Ok(answer) => {
                tracing::info!(node = %ask.hostname, address = %ask.address, "admitted to the cluster");
                answer
            }
            Err(why) => {
                tracing::info!(node = %ask.hostname, address = %ask.address, %why, "join refused");
                JoinAnswer::Refused(why)
            }
        }
    }

    async fn try_admit(&self, ask: &JoinAsk) -> Result<JoinAnswer, String> {
        if ask.node_id.len() != 64 || !ask.node_id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("invalid node id {:?}", ask.node_id));
        }
        let printable = |c: char| !c.is_control();
        if ask.hostname.is_empty()
            || ask.hostname.len() > 253
            || !ask.hostname.chars().all(printable)
        {
            return Err(format!("invalid hostname {:?}", ask.hostname));
        }
        if ask.address.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("invalid advertise address {:?}", ask.address));
        }
        let store = self.cluster.store().map_err(|e| e.to_string())?;
        let (record, role) = members::check_token(&store, ask.token.trim())
            .await
            .map_err(|e| e.to_string())?;
        let authority = credentials::authority(&store)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("this cluster's store has no CA")?;
        let user = credentials::node_user(&ask.node_id);
        let cert_pem = authority
            .sign(&ask.csr_pem, &user)
            .map_err(|e| e.to_string())?;
        credentials::admit(&store, &ask.node_id, role)
            .await
            .map_err(|e| e.to_string())?;
        let newcomer = Newcomer {
            id: ask.node_id.clone(),
            hostname: ask.hostname.clone(),
            address: ask.address.clone(),
        };
        members::record_node(&store, &newcomer, role)
            .await
            .map_err(|e| e.to_string())?;
        Ok(JoinAnswer::Admitted {
            cluster_id: record.id,
            vxlan_port: record.vxlan_port,
            role: role.name().to_string(),
            cert_pem,
        })
    }
}
