//! Who may do what in the cluster's etcd: etcd's own users and roles (`etcdctl user …`,
//! `etcdctl role …`, `etcdctl auth enable`), and the keys only managers read.
//!
//! A node's etcd user is the common name of its client certificate. A manager's user has
//! etcd's `root` role; a worker's user has a role of its own whose [`Grant`]s name the
//! keys it may write. Secrets (the cluster CA's key) live outside the `global` scope, at
//! `/netctl/secret/NAME`, where no worker's role reaches.

use etcd_client::{GetOptions, Permission, UserAddOptions};

use crate::cluster::ROOT;
use crate::{ClusterStore, Prefix, StoreError};

/// etcd's all-powerful role: user and role administration needs it.
pub const ROOT_ROLE: &str = "root";

/// A range of netctl's keys a role may read, or read and write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Read every key under the prefix.
    Read(Prefix),
    /// Read and write one key, `SCOPE/KIND/ID`.
    WriteKey(crate::Key),
    /// Read and write every key under `SCOPE/KIND/` followed by `id_prefix`.
    WriteUnder(Prefix, String),
}

impl Grant {
    fn permission(&self) -> Permission {
        match self {
            Self::Read(prefix) => {
                Permission::read(format!("{ROOT}{}", prefix.encode())).with_prefix()
            }
            Self::WriteKey(key) => Permission::read_write(format!("{ROOT}{}", key.encode())),
            Self::WriteUnder(prefix, id_prefix) => {
                Permission::read_write(format!("{ROOT}{}{id_prefix}", prefix.encode()))
                    .with_prefix()
            }
        }
    }
}

fn secret_key(name: &str) -> String {
    format!("{ROOT}secret/{name}")
}

/// etcd's answer to adding what exists already.
fn exists(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable { message, .. } if message.contains("already exists"))
}

/// etcd's answer to removing what is not there.
fn missing(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable { message, .. }
        if message.contains("not found") || message.contains("not granted"))
}

/// `result`, with the failures `benign` picks out (adding what exists, removing what is
/// gone) counted as done.
fn unless<T>(
    result: Result<T, StoreError>,
    benign: fn(&StoreError) -> bool,
) -> Result<(), StoreError> {
    match result {
        Err(e) if !benign(&e) => Err(e),
        _ => Ok(()),
    }
}

impl ClusterStore {
    /// Turns etcd's authentication on, with a `root` user (no password: the administrator
    /// proves itself with a certificate named `root`). Harmless when it is on already.
    ///
    /// `etcdctl user add root --no-password; etcdctl user grant-role root root; etcdctl auth enable`
    pub async fn enable_auth(&self) -> Result<(), StoreError> {
        self.add_user(ROOT_ROLE).await?;
        self.grant_role(ROOT_ROLE, ROOT_ROLE).await?;
        self.retrying(|mut c| async move { c.auth_enable().await })
            .await?;
        Ok(())
    }

    /// Makes `user`, or brings it up to date, with a role of the same name holding
    /// `grants`; `manager` gives it etcd's `root` role too, and its absence takes that away.
    /// Granting again what the role holds changes nothing, so a node's permissions never
    /// lapse while this runs (a promotion, a second join).
    ///
    /// `etcdctl role add USER; etcdctl role grant-permission USER …; etcdctl user add USER
    /// --no-password; etcdctl user grant-role USER USER`
    pub async fn set_user(
        &self,
        user: &str,
        grants: &[Grant],
        manager: bool,
    ) -> Result<(), StoreError> {
        let name = user.to_string();
        let added = self
            .retrying(|mut c| {
                let name = name.clone();
                async move { c.role_add(name).await }
            })
            .await;
        unless(added, exists)?;
        for grant in grants {
            let permission = grant.permission();
            self.retrying(|mut c| {
                let (name, permission) = (name.clone(), permission.clone());
                async move { c.role_grant_permission(name, permission).await }
            })
            .await?;
        }
        self.add_user(user).await?;
        self.grant_role(user, user).await?;
        if manager {
            self.grant_role(user, ROOT_ROLE).await
        } else {
            self.revoke_role(user, ROOT_ROLE).await
        }
    }

    /// Removes `user` and its role: its certificate opens nothing any more. Gone already
    /// is not an error.
    ///
    /// `etcdctl user delete USER; etcdctl role delete USER`
    pub async fn remove_user(&self, user: &str) -> Result<(), StoreError> {
        let name = user.to_string();
        let deleted = self
            .retrying(|mut c| {
                let name = name.clone();
                async move { c.user_delete(name).await }
            })
            .await;
        unless(deleted, missing)?;
        self.delete_role(user).await
    }

    /// `etcdctl put /netctl/secret/NAME VALUE`
    pub async fn put_secret(&self, name: &str, value: Vec<u8>) -> Result<(), StoreError> {
        let key = secret_key(name);
        self.retrying(|mut c| {
            let (key, value) = (key.clone(), value.clone());
            async move { c.put(key, value, None).await }
        })
        .await?;
        Ok(())
    }

    /// `etcdctl get /netctl/secret/NAME`: `None` when unset; [`StoreError::Denied`] for a
    /// worker.
    pub async fn secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = secret_key(name);
        let response = self
            .retrying(|mut c| {
                let key = key.clone();
                async move { c.get(key, None::<GetOptions>).await }
            })
            .await?;
        Ok(response.kvs().first().map(|kv| kv.value().to_vec()))
    }

    async fn add_user(&self, user: &str) -> Result<(), StoreError> {
        let name = user.to_string();
        let added = self
            .retrying(|mut c| {
                let name = name.clone();
                async move {
                    c.user_add(name, "", Some(UserAddOptions::new().with_no_pwd()))
                        .await
                }
            })
            .await;
        unless(added, exists)
    }

    async fn grant_role(&self, user: &str, role: &str) -> Result<(), StoreError> {
        let (user, role) = (user.to_string(), role.to_string());
        self.retrying(|mut c| {
            let (user, role) = (user.clone(), role.clone());
            async move { c.user_grant_role(user, role).await }
        })
        .await?;
        Ok(())
    }

    async fn revoke_role(&self, user: &str, role: &str) -> Result<(), StoreError> {
        let (user, role) = (user.to_string(), role.to_string());
        let revoked = self
            .retrying(|mut c| {
                let (user, role) = (user.clone(), role.clone());
                async move { c.user_revoke_role(user, role).await }
            })
            .await;
        unless(revoked, missing)
    }

    async fn delete_role(&self, role: &str) -> Result<(), StoreError> {
        let role = role.to_string();
        let deleted = self
            .retrying(|mut c| {
                let role = role.clone();
                async move { c.role_delete(role).await }
            })
            .await;
        unless(deleted, missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Key, Scope};

    #[test]
    fn grants_name_ranges_under_netctls_root() {
        let read = Grant::Read(Prefix::scope(Scope::Global)).permission();
        assert_eq!(read.key_str().unwrap(), "/netctl/global/");
        assert!(read.is_prefix());
        let own = Grant::WriteKey(Key::new(Scope::Global, "node", "n1")).permission();
        assert_eq!(own.key_str().unwrap(), "/netctl/global/node/n1");
        assert!(!own.is_prefix());
        let under =
            Grant::WriteUnder(Prefix::kind(Scope::Global, "endpoint"), "n1/".into()).permission();
        assert_eq!(under.key_str().unwrap(), "/netctl/global/endpoint/n1/");
        assert!(under.is_prefix());
        assert_eq!(secret_key("ca"), "/netctl/secret/ca");
    }
}
