//! How the model's records sit in the store: one key per record (`local/KIND/ID`), the value
//! a JSON envelope that carries the record's schema version, so a later netctl can read (and
//! upgrade) what an earlier one wrote.

use netctl_store::{Batch, Key, Prefix, Scope, Store};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::DaemonError;
use crate::model::{
    DockerEndpointRecord, DockerNetworkRecord, DockerPoolRecord, EndpointRecord, MembershipRecord,
    NetworkRecord, NodeRecord, SandboxRecord, ServiceRecord,
};

/// A record kind: its key's kind and the schema its values are written in.
pub trait Record: Serialize + DeserializeOwned {
    const KIND: &'static str;
    /// Bumped when the record's stored shape changes; [`decode`] upgrades older ones.
    const SCHEMA: u32 = 1;
    fn id(&self) -> &str;
    /// Its id in the cluster store: a node's own records sit under the node's id
    /// (`NODE/ID`), so etcd can let a node write its own and nobody else's.
    fn global_id(&self) -> String {
        self.id().to_string()
    }
}

impl Record for NodeRecord {
    const KIND: &'static str = "node";
    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for NetworkRecord {
    const KIND: &'static str = "network";
    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for SandboxRecord {
    const KIND: &'static str = "sandbox";
    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for EndpointRecord {
    const KIND: &'static str = "endpoint";
    fn id(&self) -> &str {
        &self.id
    }
    fn global_id(&self) -> String {
        format!("{}/{}", self.node, self.id)
    }
}

impl Record for ServiceRecord {
    const KIND: &'static str = "service";
    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for DockerNetworkRecord {
    const KIND: &'static str = "docker.network";
    fn id(&self) -> &str {
        &self.docker_id
    }
}

impl Record for DockerEndpointRecord {
    const KIND: &'static str = "docker.endpoint";
    fn id(&self) -> &str {
        &self.endpoint_id
    }
}

impl Record for DockerPoolRecord {
    const KIND: &'static str = "docker.pool";
    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for MembershipRecord {
    const KIND: &'static str = "cluster.membership";
    fn id(&self) -> &str {
        "this"
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    schema: u32,
    record: T,
}

pub fn key<R: Record>(id: &str) -> Key {
    Key::new(Scope::Local, R::KIND, id)
}

/// The record's key in the cluster store (`global/KIND/ID`).
pub fn global_key<R: Record>(id: &str) -> Key {
    Key::new(Scope::Global, R::KIND, id)
}

/// The record's id in a cluster store key: the last part of [`Record::global_id`].
pub fn id_in_global_key(key: &Key) -> &str {
    key.id.rsplit('/').next().unwrap_or(&key.id)
}

pub fn encode<R: Record>(record: &R) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        schema: R::SCHEMA,
        record,
    })
    .expect("records serialize")
}

pub fn decode<R: Record>(key: &Key, value: &[u8]) -> Result<R, DaemonError> {
    let corrupt = |message: String| DaemonError::Store(format!("record {key}: {message}"));
    let envelope: Envelope<serde_json::Value> =
        serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
    if envelope.schema > R::SCHEMA {
        return Err(corrupt(format!(
            "schema {} was written by a newer netctl (this one reads up to {})",
            envelope.schema,
            R::SCHEMA
        )));
    }
    serde_json::from_value(envelope.record).map_err(|e| corrupt(e.to_string()))
}

/// Record-level operations on a [`Batch`].
pub trait BatchExt {
    fn put_record<R: Record>(self, record: &R) -> Self;
    fn delete_record<R: Record>(self, id: &str) -> Self;
    fn put_global<R: Record>(self, record: &R) -> Self;
    fn delete_global<R: Record>(self, record: &R) -> Self;
}

impl BatchExt for Batch {
    fn put_record<R: Record>(self, record: &R) -> Self {
        self.put(key::<R>(record.id()), encode(record))
    }

    fn delete_record<R: Record>(self, id: &str) -> Self {
        self.delete(key::<R>(id))
    }

    fn put_global<R: Record>(self, record: &R) -> Self {
        self.put(global_key::<R>(&record.global_id()), encode(record))
    }

    fn delete_global<R: Record>(self, record: &R) -> Self {
        self.delete(global_key::<R>(&record.global_id()))
    }
}

/// Everything in the local store, decoded.
#[derive(Debug, Default)]
pub struct Loaded {
    pub node: Option<NodeRecord>,
    pub membership: Option<MembershipRecord>,
    pub networks: Vec<NetworkRecord>,
    pub sandboxes: Vec<SandboxRecord>,
    pub endpoints: Vec<EndpointRecord>,
    pub docker_networks: Vec<DockerNetworkRecord>,
    pub docker_endpoints: Vec<DockerEndpointRecord>,
    pub docker_pools: Vec<DockerPoolRecord>,
}

pub async fn load(store: &dyn Store) -> Result<Loaded, DaemonError> {
    let snapshot = store
        .load(&Prefix::scope(Scope::Local))
        .await
        .map_err(|e| DaemonError::Store(e.to_string()))?;
    let mut loaded = Loaded::default();
    for entry in snapshot.entries {
        let (key, value) = (&entry.key, entry.value.as_slice());
        match key.kind.as_str() {
            NodeRecord::KIND => loaded.node = Some(decode(key, value)?),
            MembershipRecord::KIND => loaded.membership = Some(decode(key, value)?),
            NetworkRecord::KIND => loaded.networks.push(decode(key, value)?),
            SandboxRecord::KIND => loaded.sandboxes.push(decode(key, value)?),
            EndpointRecord::KIND => loaded.endpoints.push(decode(key, value)?),
            DockerNetworkRecord::KIND => loaded.docker_networks.push(decode(key, value)?),
            DockerEndpointRecord::KIND => loaded.docker_endpoints.push(decode(key, value)?),
            DockerPoolRecord::KIND => loaded.docker_pools.push(decode(key, value)?),
            other => tracing::warn!(key = %key, "unknown kind of record {other:?}; left as it is"),
        }
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_their_schema_and_newer_ones_are_refused() {
        let node = NodeRecord {
            id: "n1".into(),
            hostname: "h".into(),
            created: "t".into(),
        };
        let bytes = encode(&node);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("{\"schema\":1,\"record\":{"), "{text}");
        let key = key::<NodeRecord>("n1");
        assert_eq!(key.encode(), "local/node/n1");
        assert_eq!(decode::<NodeRecord>(&key, &bytes).unwrap(), node);
        let newer = text.replace("\"schema\":1", "\"schema\":9");
        let e = decode::<NodeRecord>(&key, newer.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("newer netctl"), "{e}");
    }
}
