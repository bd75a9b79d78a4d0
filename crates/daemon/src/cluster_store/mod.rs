//! The daemon's side of a cluster: what it keeps in the cluster store (the `global` scope)
//! and how it takes what must be unique there.

pub mod backup;
pub mod claims;
pub mod credentials;
pub mod join_service;
pub mod liveness;
pub mod members;
pub mod rekey;
pub mod unknown_writes;
