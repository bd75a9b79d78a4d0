//! How a node with a join token gets its credentials for a TLS cluster store.
//!
//! etcd takes only clients with a certificate from the cluster's CA, and only a manager can
//! issue one (the CA's key is a secret only managers read). So, as `docker swarm join`
//! does, the newcomer asks a manager, at `ADDRESS:2377`, over TLS it verifies against the
//! cluster's CA: one JSON [`JoinAsk`] (the token, the node, a signing request for its
//! key, which never leaves it) and one JSON [`JoinAnswer`] back (its certificate, or why
//! not).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Docker swarm's cluster-management port, where managers answer joins.
pub const JOIN_PORT: u16 = 2377;

/// A join's whole exchange, connection included: a manager that does not answer by then
/// is reported, not waited for.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(15);

/// Larger asks or answers are refused unread.
const MAX_MESSAGE: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinAsk {
    pub token: String,
    pub node_id: String,
    pub hostname: String,
    /// The newcomer's advertise address.
    pub address: String,
    pub csr_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinAnswer {
    Admitted {
        cluster_id: String,
        vxlan_port: u16,
        /// `manager` or `worker`: the token's.
        role: String,
        /// The node's client certificate; its common name is the node's etcd user.
        cert_pem: String,
    },
    Refused(String),
}

#[derive(Debug, thiserror::Error)]
pub enum JoinServiceError {
    #[error("the cluster CA certificate: {0}")]
    BadCa(String),
    #[error("the join service's TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("manager {manager}: {message}")]
    Manager {
        manager: SocketAddr,
        message: String,
    },
    #[error("listening on {address} for joins: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, JoinServiceError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| JoinServiceError::BadCa(e.to_string()))?;
    if certs.is_empty() {
        return Err(JoinServiceError::BadCa("no certificate in it".into()));
    }
    Ok(certs)
}

/// Asks the manager at `manager` to admit this node, verifying it against `ca_pem`.
pub async fn ask(
    manager: SocketAddr,
    ca_pem: &str,
    ask: &JoinAsk,
) -> Result<JoinAnswer, JoinServiceError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(ca_pem)? {
        roots
            .add(cert)
            .map_err(|e| JoinServiceError::BadCa(e.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let failed = |message: String| JoinServiceError::Manager { manager, message };
    let exchange = async {
        let tcp = TcpStream::connect(manager)
            .await
            .map_err(|e| failed(format!("cannot connect: {e}")))?;
        let name = ServerName::IpAddress(manager.ip().into());
        let mut tls = connector.connect(name, tcp).await.map_err(|e| {
            failed(format!(
                "TLS: {e} (is it a manager of the cluster whose CA was given?)"
            ))
        })?;
        let request = serde_json::to_vec(ask).expect("asks serialize");
        tls.write_all(&request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        tls.shutdown().await.map_err(|e| failed(e.to_string()))?;
        let mut answer = Vec::new();
        tls.take(MAX_MESSAGE)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| failed(e.to_string()))?;
        serde_json::from_slice(&answer)
            .map_err(|e| failed(format!("an answer that is not a join answer: {e}")))
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .map_err(|_| failed(format!("no answer within {EXCHANGE_TIMEOUT:?}")))?
}

/// What decides a join: the manager's controller.
pub type Admit = Arc<dyn Fn(JoinAsk) -> BoxFuture<'static, JoinAnswer> + Send + Sync>;

/// A manager's join service, listening until dropped.
pub struct JoinService {
    task: tokio::task::JoinHandle<()>,
    pub address: SocketAddr,
}

impl Drop for JoinService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JoinService {
    /// Listens at `address` with the manager's server certificate and key.
    pub async fn start(
        address: SocketAddr,
        cert_pem: &str,
        key_pem: &str,
        admit: Admit,
    ) -> Result<Self, JoinServiceError> {
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| JoinServiceError::BadCa(format!("the server key: {e}")))?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certificates(cert_pem)?, key)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| JoinServiceError::Listen { address, source })?;
        let address = listener
            .local_addr()
            .map_err(|source| JoinServiceError::Listen { address, source })?;
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, say: wait rather than spin.
                        tracing::warn!(error = %e, "the join service cannot accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, admit) = (acceptor.clone(), admit.clone());
                tokio::spawn(async move {
                    let served =
                        tokio::time::timeout(EXCHANGE_TIMEOUT, answer_one(acceptor, tcp, admit))
                            .await;
                    match served {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "a join ask failed"),
                        Err(_) => tracing::info!(%peer, "a join ask timed out"),
                    }
                });
            }
        });
        Ok(Self { task, address })
    }
}

async fn answer_one(acceptor: TlsAcceptor, tcp: TcpStream, admit: Admit) -> std::io::Result<()> {
    let mut tls = acceptor.accept(tcp).await?;
    let mut request = Vec::new();
    (&mut tls)
        .take(MAX_MESSAGE)
        .read_to_end(&mut request)
        .await?;
    let answer = match serde_json::from_slice::<JoinAsk>(&request) {
        Ok(ask) => admit(ask).await,
        Err(e) => JoinAnswer::Refused(format!("not a join ask: {e}")),
    };
    tls.write_all(&serde_json::to_vec(&answer).expect("answers serialize"))
        .await?;
    tls.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_without_certificates_is_named() {
        assert!(matches!(
            certificates("nothing"),
            Err(JoinServiceError::BadCa(_))
        ));
    }

    #[test]
    fn answers_keep_their_shape() {
        let refused = serde_json::to_string(&JoinAnswer::Refused("no".into())).unwrap();
        assert_eq!(refused, r#"{"Refused":"no"}"#);
    }
}
