//! Keys: `SCOPE/KIND/ID`.

use std::fmt;

/// Where a key lives: on one host, or in the cluster's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Local,
    Global,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Global => "global",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "local" => Some(Self::Local),
            "global" => Some(Self::Global),
            _ => None,
        }
    }
}

/// One object: its scope, its kind (`network`, `docker.pool`…) and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub scope: Scope,
    pub kind: String,
    pub id: String,
}

impl Key {
    /// `kind` must not contain `/`; `id` may.
    pub fn new(scope: Scope, kind: &str, id: impl Into<String>) -> Self {
        debug_assert!(!kind.contains('/'), "kind {kind:?}");
        Self {
            scope,
            kind: kind.to_string(),
            id: id.into(),
        }
    }

    /// The key's text form, `local/network/ID`.
    pub fn encode(&self) -> String {
        format!("{}/{}/{}", self.scope.name(), self.kind, self.id)
    }

    /// Reads [`Key::encode`]'s form back.
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '/');
        let scope = Scope::parse(parts.next()?)?;
        let kind = parts.next()?;
        let id = parts.next()?;
        Some(Self::new(scope, kind, id))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// A set of keys: a whole scope, or one kind of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    pub scope: Scope,
    pub kind: Option<String>,
}

impl Prefix {
    pub fn scope(scope: Scope) -> Self {
        Self { scope, kind: None }
    }

    pub fn kind(scope: Scope, kind: &str) -> Self {
        Self {
            scope,
            kind: Some(kind.to_string()),
        }
    }

    /// The text every key under it starts with.
    pub fn encode(&self) -> String {
        match &self.kind {
            Some(kind) => format!("{}/{kind}/", self.scope.name()),
            None => format!("{}/", self.scope.name()),
        }
    }

    pub fn contains(&self, key: &Key) -> bool {
        key.scope == self.scope && self.kind.as_ref().is_none_or(|k| *k == key.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_ids_may_hold_slashes() {
        let key = Key::new(Scope::Local, "docker.pool", "netctl-1/x");
        assert_eq!(key.encode(), "local/docker.pool/netctl-1/x");
        assert_eq!(Key::decode(&key.encode()), Some(key.clone()));
        assert_eq!(Key::decode("cluster/network/1"), None);
        assert_eq!(Key::decode("local/network"), None);
        assert!(Prefix::kind(Scope::Local, "docker.pool").contains(&key));
        assert!(!Prefix::kind(Scope::Local, "docker").contains(&key));
        assert!(Prefix::scope(Scope::Local).contains(&key));
        assert!(!Prefix::scope(Scope::Global).contains(&key));
        assert!(key
            .encode()
            .starts_with(&Prefix::kind(Scope::Local, "docker.pool").encode()));
    }
}
