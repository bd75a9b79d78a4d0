//! The local store: one redb file, one table per kind of record, values as JSON.
//! Every change is one durable transaction.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::{DockerPoolRecord, EndpointRecord, NetworkRecord, SandboxRecord};
use crate::DaemonError;

const NETWORKS: TableDefinition<&str, &str> = TableDefinition::new("networks");
const SANDBOXES: TableDefinition<&str, &str> = TableDefinition::new("sandboxes");
const ENDPOINTS: TableDefinition<&str, &str> = TableDefinition::new("endpoints");
const DOCKER_POOLS: TableDefinition<&str, &str> = TableDefinition::new("docker_pools");

/// One change to desired state; a list of them commits together or not at all.
pub enum Change<'a> {
    PutNetwork(&'a NetworkRecord),
    DeleteNetwork(&'a str),
    PutSandbox(&'a SandboxRecord),
    DeleteSandbox(&'a str),
    PutEndpoint(&'a EndpointRecord),
    DeleteEndpoint(&'a str),
    PutDockerPool(&'a DockerPoolRecord),
    DeleteDockerPool(&'a str),
}

/// Everything the store holds.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub networks: Vec<NetworkRecord>,
    pub sandboxes: Vec<SandboxRecord>,
    pub endpoints: Vec<EndpointRecord>,
    pub docker_pools: Vec<DockerPoolRecord>,
}

pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, DaemonError> {
        let db = Database::create(path).map_err(store_err(path))?;
        let store = Self {
            db,
            path: path.to_path_buf(),
        };
        // Create the tables so that reads never meet a missing one.
        store.apply(&[])?;
        Ok(store)
    }

    pub fn load(&self) -> Result<Snapshot, DaemonError> {
        let txn = self.db.begin_read().map_err(self.err())?;
        Ok(Snapshot {
            networks: self.read_all(&txn, NETWORKS)?,
            sandboxes: self.read_all(&txn, SANDBOXES)?,
            endpoints: self.read_all(&txn, ENDPOINTS)?,
            docker_pools: self.read_all(&txn, DOCKER_POOLS)?,
        })
    }

    fn read_all<T: DeserializeOwned>(
        &self,
        txn: &redb::ReadTransaction,
        table: TableDefinition<&str, &str>,
    ) -> Result<Vec<T>, DaemonError> {
        let table = txn.open_table(table).map_err(self.err())?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(self.err())? {
            let (key, value) = entry.map_err(self.err())?;
            let record = serde_json::from_str(value.value()).map_err(|e| DaemonError::Store {
                path: self.path.clone(),
                message: format!("record {}: {e}", key.value()),
            })?;
            out.push(record);
        }
        Ok(out)
    }

    /// Commits `changes` durably, in one transaction.
    pub fn apply(&self, changes: &[Change<'_>]) -> Result<(), DaemonError> {
        let txn = self.db.begin_write().map_err(self.err())?;
        {
            let mut networks = txn.open_table(NETWORKS).map_err(self.err())?;
            let mut sandboxes = txn.open_table(SANDBOXES).map_err(self.err())?;
            let mut endpoints = txn.open_table(ENDPOINTS).map_err(self.err())?;
            let mut pools = txn.open_table(DOCKER_POOLS).map_err(self.err())?;
            for change in changes {
                let result = match change {
                    Change::PutNetwork(r) => {
                        networks.insert(r.id.as_str(), json(r).as_str()).map(drop)
                    }
                    Change::DeleteNetwork(id) => networks.remove(*id).map(drop),
                    Change::PutSandbox(r) => {
                        sandboxes.insert(r.id.as_str(), json(r).as_str()).map(drop)
                    }
                    Change::DeleteSandbox(id) => sandboxes.remove(*id).map(drop),
                    Change::PutEndpoint(r) => {
                        endpoints.insert(r.id.as_str(), json(r).as_str()).map(drop)
                    }
                    Change::DeleteEndpoint(id) => endpoints.remove(*id).map(drop),
                    Change::PutDockerPool(r) => {
                        pools.insert(r.id.as_str(), json(r).as_str()).map(drop)
                    }
                    Change::DeleteDockerPool(id) => pools.remove(*id).map(drop),
                };
                result.map_err(self.err())?;
            }
        }
        txn.commit().map_err(self.err())
    }

    fn err<E: std::fmt::Display>(&self) -> impl Fn(E) -> DaemonError + '_ {
        store_err(&self.path)
    }
}

fn store_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> DaemonError + '_ {
    move |e| DaemonError::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn json(record: &impl Serialize) -> String {
    serde_json::to_string(record).expect("records serialize")
}
