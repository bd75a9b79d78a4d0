//! The `global` scope's backend: a cluster's state in etcd (v3 API).
//!
//! Keys are stored as `/netctl/global/KIND/ID`; a batch is one etcd transaction, so every
//! `Create` in it is checked (`create_revision == 0`) and the whole batch applied or not, on
//! every member at once. etcd commits through its consensus before it answers, so an applied
//! batch is durable already and [`Store::sync`] has nothing to wait for. Revisions are etcd's.
//!
//! Every request has a short deadline: with quorum lost, etcd does not refuse a write, it
//! never answers it, and the caller must hear that within seconds, not hang.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Identity,
    KeyValue, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::mpsc;

use crate::watch::Watch;
use crate::{
    Batch, Changes, Entry, Event, Key, Op, Prefix, Revision, Scope, Snapshot, Store, StoreError,
};

/// Where netctl's keys start in etcd, so a shared etcd can hold other tenants too.
pub(crate) const ROOT: &str = "/netctl/";

/// Where the `global` scope's keys start: every node may read below it (see
/// [`crate::Grant`]), so reads that only need any answer ask here.
const GLOBAL: &str = "/netctl/global/";

/// How long one request may take, retries included, before the store is called unavailable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one attempt may take: a write sent to a member whose leader just died waits
/// for an answer that never comes, and the next attempt reaches the new leader.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(800);

/// A lease: keys put with it go when it expires (a node's liveness).
pub type LeaseId = i64;

/// The cluster's store, on the etcd members at `endpoints`.
///
/// One client per member, used one at a time, and the next one after a member fails to
/// answer: etcd-client's own balancing across members kept sending requests to a dead
/// member for seconds.
#[derive(Clone)]
pub struct ClusterStore {
    pub(crate) members: Arc<Members>,
    endpoints: Vec<String>,
}

/// How a node proves itself to a store that serves TLS with client certificates (`https://`
/// endpoints): the CA the members' certificates are signed by, and the node's own
/// certificate and key. etcd takes the certificate's common name as the node's etcd user.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for StoreTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTls").finish_non_exhaustive()
    }
}

pub(crate) struct Members {
    clients: Vec<Client>,
    /// The member requests go to.
    current: AtomicUsize,
}

impl Members {
    pub(crate) fn current(&self) -> (usize, Client) {
        let at = self.current.load(Ordering::Relaxed) % self.clients.len();
        (at, self.clients[at].clone())
    }

    /// Moves on from member `failed`, unless another request did already.
    fn next_after(&self, failed: usize) {
        let next = (failed + 1) % self.clients.len();
        let _ = self
            .current
            .compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

impl ClusterStore {
    /// Connects to the members at `endpoints` (`http://203.0.113.101:2379`, …). Succeeds
    /// while any of them answers; requests then need the members' quorum.
    pub async fn connect(endpoints: &[String]) -> Result<Self, StoreError> {
        Self::connect_with(endpoints, None).await
    }

    /// [`ClusterStore::connect`], over TLS with a client certificate when `tls` is given
    /// (the endpoints are then `https://`).
    pub async fn connect_with(
        endpoints: &[String],
        tls: Option<&StoreTls>,
    ) -> Result<Self, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::Backend {
                what: "cluster store".into(),
                message: "no etcd endpoint given".into(),
            });
        }
        // require_leader: a member that has lost its leader refuses at once instead of
        // queueing the request until quorum is back (and then applying a write its client
        // was told had failed).
        let options = ConnectOptions::new()
            .with_connect_timeout(ATTEMPT_TIMEOUT)
            .with_timeout(ATTEMPT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), REQUEST_TIMEOUT)
            .with_require_leader(true);
        let options = match tls {
            Some(tls) => options.with_tls(
                TlsOptions::new()
                    .ca_certificate(Certificate::from_pem(&tls.ca_pem))
                    .identity(Identity::from_pem(&tls.cert_pem, &tls.key_pem)),
            ),
            None => options,
        };
        let mut clients = Vec::new();
        for endpoint in endpoints {
            // Lazy: nothing is sent before the first request.
            let client = Client::connect([endpoint], Some(options.clone()))
                .await
                .map_err(|e| unavailable(endpoints, &e))?;
            clients.push(client);
        }
        let store = Self {
            members: Arc::new(Members {
                clients,
                current: AtomicUsize::new(0),
            }),
            endpoints: endpoints.to_vec(),
        };
        store.probe().await?;
        Ok(store)
    }

    /// Connecting is lazy: ask every member once, so a wrong address is an error here and
    /// now. A serializable read, which any one member answers: a cluster without quorum can
    /// be connected to, and its writes then fail fast with that reason. Requests start at
    /// the first member that answered.
    async fn probe(&self) -> Result<(), StoreError> {
        let asks = self
            .members
            .clients
            .iter()
            .cloned()
            .map(|mut client| async move {
                let options = GetOptions::new().with_count_only().with_serializable();
                match tokio::time::timeout(ATTEMPT_TIMEOUT, client.get(GLOBAL, Some(options))).await
                {
                    Ok(Ok(_)) => Ok(()),
                    // It answered: it has lost its leader, which later requests will say.
                    Ok(Err(e)) if is_no_leader(&e) => Ok(()),
                    Ok(Err(e)) => Err(self.unavailable(&e)),
                    Err(_) => Err(StoreError::Unavailable {
                        endpoints: self.endpoints.join(", "),
                        message: format!("connect: no answer within {ATTEMPT_TIMEOUT:?}"),
                    }),
                }
            });
        let answers = futures::future::join_all(asks).await;
        match answers.iter().position(Result::is_ok) {
            Some(first) => {
                self.members.current.store(first, Ordering::Relaxed);
                Ok(())
            }
            None => Err(answers
                .into_iter()
                .last()
                .and_then(Result::err)
                .expect("a store has at least one member")),
        }
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The store's revision now (a quorum read).
    pub async fn current_revision(&self) -> Result<Revision, StoreError> {
        let response = self
            .retrying(|mut c| async move {
                c.get(GLOBAL, Some(GetOptions::new().with_count_only()))
                    .await
            })
            .await?;
        Ok(header_revision(response.header()))
    }

    /// `etcdctl lease grant TTL`.
    pub async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let ttl = ttl.as_secs().max(1) as i64;
        let response = self
            .retrying(|mut c| async move { c.lease_grant(ttl, None).await })
            .await?;
        Ok(response.id())
    }

    /// `etcdctl lease keep-alive --once ID`: whether the lease still lives.
    pub async fn keep_alive(&self, lease: LeaseId) -> Result<bool, StoreError> {
        let answer = self
            .retrying(|mut c| async move {
                let (mut keeper, mut responses) = c.lease_keep_alive(lease).await?;
                keeper.keep_alive().await?;
                responses.message().await
            })
            .await;
        match answer {
            Ok(answer) => Ok(answer.is_some_and(|a| a.ttl() > 0)),
            Err(StoreError::Unavailable { message, .. }) if message.contains("not found") => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// `etcdctl lease revoke ID`: the lease's keys go at once. A lease gone already is not
    /// an error.
    pub async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        match self
            .retrying(|mut c| async move { c.lease_revoke(lease).await })
            .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::Unavailable { message, .. }) if message.contains("not found") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sets `key` for as long as `lease` lives (a node's presence).
    pub async fn put_leased(
        &self,
        key: &Key,
        value: Vec<u8>,
        lease: LeaseId,
    ) -> Result<Revision, StoreError> {
        self.check_scope(key)?;
        let key = etcd_key(key);
        let response = self
            .retrying(|mut c| {
                let (key, value) = (key.clone(), value.clone());
                async move {
                    c.put(key, value, Some(PutOptions::new().with_lease(lease)))
                        .await
                }
            })
            .await?;
        Ok(header_revision(response.header()))
    }

    fn check_scope(&self, key: &Key) -> Result<(), StoreError> {
        if key.scope == Scope::Global {
            Ok(())
        } else {
            Err(StoreError::WrongScope {
                key: key.clone(),
                scope: Scope::Global,
            })
        }
    }

    /// Runs `request` until it answers, retrying while the members elect a leader (a
    /// leader's death stalls writes until the election ends) or the one it reached is down,
    /// for at most [`REQUEST_TIMEOUT`] in all.
    pub(crate) async fn retrying<T, F, Fut>(&self, request: F) -> Result<T, StoreError>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let started = std::time::Instant::now();
        let result = self.retrying_untimed(request).await;
        metrics::histogram!("netctl_etcd_request_duration_seconds").record(started.elapsed());
        if result.is_err() {
            metrics::counter!("netctl_etcd_request_errors_total").increment(1);
        }
        result
    }

    async fn retrying_untimed<T, F, Fut>(&self, mut request: F) -> Result<T, StoreError>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (member, client) = self.members.current();
            let error = match tokio::time::timeout(left, request(client)).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(e)) => e,
                Err(_) => return Err(self.timed_out("request")),
            };
            match worth_retrying(&error) {
                Retry::No => return Err(self.unavailable(&error)),
                Retry::Now => self.members.next_after(member),
                Retry::AfterElection => {
                    self.members.next_after(member);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.unavailable(&error));
            }
        }
    }

    fn unavailable(&self, error: &etcd_client::Error) -> StoreError {
        unavailable(&self.endpoints, error)
    }

    fn timed_out(&self, what: &str) -> StoreError {
        StoreError::Unavailable {
            endpoints: self.endpoints.join(", "),
            message: format!("{what}: no answer within {REQUEST_TIMEOUT:?}"),
        }
    }

    /// The transaction that applies `batch`: every `Create`'s key must be new; if one is
    /// not, the `else` branch reads the `Create` keys back to name the one that exists.
    fn transaction(batch: &Batch) -> (Txn, Vec<(Key, Vec<u8>)>) {
        let mut compares = Vec::new();
        let mut creates = Vec::new();
        let mut ops = Vec::new();
        for op in &batch.ops {
            match op {
                Op::Put { key, value } => ops.push(TxnOp::put(etcd_key(key), value.clone(), None)),
                Op::Create { key, value } => {
                    compares.push(Compare::create_revision(etcd_key(key), CompareOp::Equal, 0));
                    creates.push((key.clone(), value.clone()));
                    ops.push(TxnOp::put(etcd_key(key), value.clone(), None));
                }
                Op::Delete { key } => ops.push(TxnOp::delete(etcd_key(key), None)),
            }
        }
        let reads: Vec<TxnOp> = creates
            .iter()
            .map(|(k, _)| TxnOp::get(etcd_key(k), None))
            .collect();
        let txn = Txn::new().when(compares).and_then(ops).or_else(reads);
        (txn, creates)
    }
}

#[async_trait]
impl Store for ClusterStore {
    fn scope(&self) -> Scope {
        Scope::Global
    }

    async fn load(&self, prefix: &Prefix) -> Result<Snapshot, StoreError> {
        if prefix.scope != Scope::Global {
            return Ok(Snapshot::default());
        }
        let key = etcd_prefix(prefix);
        let response = self
            .retrying(|mut c| {
                let key = key.clone();
                async move { c.get(key, Some(GetOptions::new().with_prefix())).await }
            })
            .await?;
        Ok(Snapshot {
            entries: response.kvs().iter().filter_map(entry).collect(),
            revision: header_revision(response.header()),
        })
    }

    async fn apply_unsynced(&self, batch: Batch) -> Result<Revision, StoreError> {
        netctl_crashpoint::step(&"a cluster store transaction");
        for op in &batch.ops {
            self.check_scope(op.key())?;
        }
        let (txn, creates) = Self::transaction(&batch);
        let response = self
            .retrying(|mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .await?;
        if response.succeeded() {
            return Ok(header_revision(response.header()));
        }
        // Every create key holds just what this batch would write: an attempt whose answer
        // was lost did apply it (values name their object, so nobody else writes the same).
        let mut ours = None;
        for (answer, (key, value)) in response.op_responses().into_iter().zip(&creates) {
            let TxnOpResponse::Get(got) = answer else {
                continue;
            };
            match got.kvs().first() {
                Some(kv) if kv.value() == value.as_slice() => {
                    ours = Some(kv.mod_revision() as Revision)
                }
                Some(_) => return Err(StoreError::Exists(key.clone())),
                None => {}
            }
        }
        match ours {
            Some(revision) => Ok(revision),
            None => Err(StoreError::Exists(creates[0].0.clone())),
        }
    }

    async fn sync(&self, _revision: Revision) -> Result<(), StoreError> {
        // etcd answered a write only once its quorum had it on disk.
        Ok(())
    }

    fn watch(&self, prefix: &Prefix, from: Revision) -> Result<Watch, StoreError> {
        let (sender, receiver) = mpsc::channel(256);
        let (_, client) = self.members.current();
        let endpoints = self.endpoints.clone();
        let key = etcd_prefix(prefix);
        tokio::spawn(forward_watch(client, endpoints, key, from, sender));
        Ok(Watch::from_channel(prefix.clone(), from, receiver))
    }
}

/// Feeds an etcd watch into a [`Watch`]'s channel until the watch is dropped or fails; a
/// failure is the last thing sent.
async fn forward_watch(
    mut client: Client,
    endpoints: Vec<String>,
    key: String,
    from: Revision,
    sender: mpsc::Sender<Result<Changes, StoreError>>,
) {
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(from as i64 + 1);
    let mut stream = match client.watch(key, Some(options)).await {
        Ok(stream) => stream,
        Err(e) => {
            let _ = sender.send(Err(unavailable(&endpoints, &e))).await;
            return;
        }
    };
    loop {
        let message = tokio::select! {
            message = stream.message() => message,
            _ = sender.closed() => return,
        };
        let response = match message {
            Ok(Some(response)) => response,
            Ok(None) => {
                let _ = sender.send(Err(watch_ended(&endpoints))).await;
                return;
            }
            Err(e) => {
                let _ = sender.send(Err(unavailable(&endpoints, &e))).await;
                return;
            }
        };
        if response.compact_revision() > 0 {
            let compacted = StoreError::Compacted {
                from,
                oldest: response.compact_revision() as Revision,
            };
            let _ = sender.send(Err(compacted)).await;
            return;
        }
        if response.canceled() {
            let _ = sender.send(Err(watch_ended(&endpoints))).await;
            return;
        }
        for changes in group_by_revision(response.events()) {
            if sender.send(Ok(changes)).await.is_err() {
                return;
            }
        }
    }
}

/// One etcd watch response may carry several transactions' events: one [`Changes`] each.
fn group_by_revision(events: &[etcd_client::Event]) -> Vec<Changes> {
    let mut all: Vec<Changes> = Vec::new();
    for event in events {
        let Some(kv) = event.kv() else { continue };
        let revision = kv.mod_revision() as Revision;
        let Some(key) = kv.key_str().ok().and_then(decode_key) else {
            continue;
        };
        let event = match event.event_type() {
            EventType::Put => Event::Put(Entry {
                key,
                value: kv.value().to_vec(),
                revision,
            }),
            EventType::Delete => Event::Delete { key, revision },
        };
        match all.last_mut() {
            Some(last) if last.revision == revision => last.events.push(event),
            _ => all.push(Changes {
                revision,
                events: vec![event],
            }),
        }
    }
    all
}

fn entry(kv: &KeyValue) -> Option<Entry> {
    Some(Entry {
        key: decode_key(kv.key_str().ok()?)?,
        value: kv.value().to_vec(),
        revision: kv.mod_revision() as Revision,
    })
}

fn etcd_key(key: &Key) -> String {
    format!("{ROOT}{}", key.encode())
}

fn etcd_prefix(prefix: &Prefix) -> String {
    format!("{ROOT}{}", prefix.encode())
}

fn decode_key(text: &str) -> Option<Key> {
    Key::decode(text.strip_prefix(ROOT)?)
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map_or(0, |h| h.revision().max(0) as Revision)
}

fn unavailable(endpoints: &[String], error: &etcd_client::Error) -> StoreError {
    if let etcd_client::Error::GRpcStatus(status) = error {
        if matches!(
            status.code(),
            tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
        ) {
            return StoreError::Denied(status.message().to_string());
        }
    }
    let message = match error {
        etcd_client::Error::GRpcStatus(status) => match status.code() {
            tonic_code::Cancelled | tonic_code::DeadlineExceeded => {
                format!("no quorum answered within {REQUEST_TIMEOUT:?}")
            }
            _ => status.message().to_string(),
        },
        other => other.to_string(),
    };
    StoreError::Unavailable {
        endpoints: endpoints.join(", "),
        message,
    }
}

/// An error after which the request may be sent again: the members are electing a leader
/// (the request was not applied), or the member it went to is down (a balanced channel
/// may pick a dead member before it has found out which are alive).
/// etcd's answer from a member that has lost its leader (asked with `require_leader`).
fn is_no_leader(error: &etcd_client::Error) -> bool {
    matches!(error, etcd_client::Error::GRpcStatus(status) if status.message().contains("no leader"))
}

fn worth_retrying(error: &etcd_client::Error) -> Retry {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            let message = status.message();
            if message.contains("leader changed") || is_no_leader(error) {
                Retry::AfterElection
            } else if matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ) {
                // Down, or an attempt that outlived its deadline (sent to a leader that
                // died): a batch is safe to send twice, see `apply_unsynced`.
                Retry::Now
            } else {
                Retry::No
            }
        }
        etcd_client::Error::TransportError(_) => Retry::Now,
        _ => Retry::No,
    }
}

enum Retry {
    No,
    Now,
    AfterElection,
}

fn watch_ended(endpoints: &[String]) -> StoreError {
    StoreError::Unavailable {
        endpoints: endpoints.join(", "),
        message: "the watch ended".into(),
    }
}

/// The gRPC status codes of a request that ran out of time.
mod tonic_code {
    pub use tonic::Code::{Cancelled, DeadlineExceeded};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_under_netctls_root_and_only_those_decode() {
        let key = Key::new(Scope::Global, "endpoint", "n1/abc");
        assert_eq!(etcd_key(&key), "/netctl/global/endpoint/n1/abc");
        assert_eq!(decode_key(&etcd_key(&key)), Some(key));
        assert_eq!(decode_key("/other/global/endpoint/x"), None);
        assert_eq!(
            etcd_prefix(&Prefix::kind(Scope::Global, "node")),
            "/netctl/global/node/"
        );
    }
}
