//! Who the management API's callers are and which roles daemon.json grants them.

use std::collections::BTreeMap;

use netctl_plugin_api::access::{Grants, Role, Rule};
use netctl_plugin_api::management::Caller;
use netctl_plugin_api::{ApiError, ErrorCode};
use nix::unistd::{Gid, Group, Uid, User};
use serde::Deserialize;

/// daemon.json's `roles`: Unix users and groups, by name or numeric id, and their roles.
/// Root is `full`; anyone unlisted is `none`. A caller's grants add up: its user's and
/// each of its groups'.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RolesConfig {
    #[serde(default)]
    pub users: BTreeMap<String, Role>,
    #[serde(default)]
    pub groups: BTreeMap<String, Role>,
}

impl RolesConfig {
    pub fn validate(&self) -> Result<(), String> {
        let keys = self.users.keys().map(|k| ("users", k));
        for (kind, key) in keys.chain(self.groups.keys().map(|k| ("groups", k))) {
            if key.trim().is_empty() || key.contains(char::is_whitespace) {
                return Err(format!("roles.{kind}: {key:?} is not a name or an id"));
            }
        }
        Ok(())
    }

    /// Names this host does not know (yet): their grants apply once it does.
    pub fn unknown_names(&self) -> Vec<String> {
        let users = self.users.keys().filter(|k| k.parse::<u32>().is_err());
        let groups = self.groups.keys().filter(|k| k.parse::<u32>().is_err());
        let unknown_users = users
            .filter(|name| !matches!(User::from_name(name), Ok(Some(_))))
            .map(|name| format!("user {name}"));
        let unknown_groups = groups
            .filter(|name| !matches!(Group::from_name(name), Ok(Some(_))))
            .map(|name| format!("group {name}"));
        unknown_users.chain(unknown_groups).collect()
    }

    /// The roles `caller` holds.
    pub fn grants(&self, caller: &Caller) -> Grants {
        let Some(uid) = caller.uid else {
            return Grants::default();
        };
        if uid == 0 {
            return Grants::new(vec![Role::Full]);
        }
        let mut roles = Vec::new();
        if !self.users.is_empty() {
            let name = User::from_uid(Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.name);
            roles.extend(granted(&self.users, uid, name));
        }
        if !self.groups.is_empty() {
            for gid in caller.gid.iter().chain(&caller.groups) {
                let name = Group::from_gid(Gid::from_raw(*gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name);
                roles.extend(granted(&self.groups, *gid, name));
            }
        }
        Grants::new(roles)
    }

    /// Passes `caller` when one of its roles allows what `rule` needs.
    pub fn check(&self, caller: &Caller, rule: Rule) -> Result<(), ApiError> {
        let grants = self.grants(caller);
        if grants.allows(rule.needs) {
            return Ok(());
        }
        Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("permission denied: {grants} cannot {}", rule.what),
        ))
    }
}

/// The role `table` gives to `id` or to its `name`.
fn granted(table: &BTreeMap<String, Role>, id: u32, name: Option<String>) -> Option<Role> {
    table
        .get(&id.to_string())
        .or_else(|| name.and_then(|n| table.get(&n)))
        .copied()
}

/// The group a socket is given (`--group`, daemon.json `group`): a name or a numeric id.
pub fn group_id(group: &str) -> Result<Gid, String> {
    if let Ok(id) = group.parse::<u32>() {
        return Ok(Gid::from_raw(id));
    }
    match Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(format!("group {group:?}: no such group")),
        Err(e) => Err(format!("group {group:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netctl_plugin_api::access::Permission;

    fn caller(uid: u32, gid: u32, groups: &[u32]) -> Caller {
        Caller {
            uid: Some(uid),
            gid: Some(gid),
            pid: Some(1),
            groups: groups.to_vec(),
        }
    }

    fn roles(json: &str) -> RolesConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn root_is_full_the_unknown_none_and_the_listed_what_they_are_given() {
        let config = roles(r#"{"users": {"4001": "view"}, "groups": {"4100": "restricted"}}"#);
        assert_eq!(config.grants(&caller(0, 0, &[])).roles(), &[Role::Full]);
        assert_eq!(config.grants(&Caller::default()).roles(), &[] as &[Role]);
        assert_eq!(
            config.grants(&caller(4002, 4002, &[])).roles(),
            &[] as &[Role]
        );
        assert_eq!(
            config.grants(&caller(4001, 4001, &[])).roles(),
            &[Role::View]
        );
        // The group grant adds to the user's: by the primary group or a supplementary one.
        let both = [Role::View, Role::Restricted];
        assert_eq!(config.grants(&caller(4001, 4100, &[])).roles(), &both);
        assert_eq!(config.grants(&caller(4001, 4001, &[4100])).roles(), &both);
    }

    #[test]
    fn names_are_matched_through_the_user_database() {
        // root's name and group are on every host.
        let config = roles(r#"{"groups": {"root": "scheduler"}}"#);
        let grants = config.grants(&caller(4001, 4001, &[0]));
        assert_eq!(grants.roles(), &[Role::Scheduler]);
        assert!(config.unknown_names().is_empty());
        let config = roles(r#"{"users": {"no-such-user-here": "view"}}"#);
        assert_eq!(config.unknown_names(), vec!["user no-such-user-here"]);
    }

    #[test]
    fn a_refusal_names_the_role_and_what_it_cannot_do() {
        let config = roles(r#"{"users": {"4001": "view"}}"#);
        let rule = Rule::new(Permission::Networks, "create networks");
        let err = config.check(&caller(4001, 4001, &[]), rule).unwrap_err();
        assert_eq!(err.code, ErrorCode::Forbidden);
        assert_eq!(
            err.message,
            "permission denied: role view cannot create networks"
        );
        let err = config.check(&caller(4002, 4002, &[]), rule).unwrap_err();
        assert_eq!(
            err.message,
            "permission denied: role none cannot create networks"
        );
        config.check(&caller(0, 0, &[]), rule).unwrap();
    }

    #[test]
    fn bad_roles_are_refused() {
        assert!(serde_json::from_str::<RolesConfig>(r#"{"users": {"a": "admin"}}"#).is_err());
        assert!(serde_json::from_str::<RolesConfig>(r#"{"people": {}}"#).is_err());
        assert!(roles(r#"{"users": {" ": "view"}}"#).validate().is_err());
        assert!(group_id("no-such-group-here").is_err());
        assert_eq!(group_id("0"), Ok(Gid::from_raw(0)));
        assert_eq!(group_id("root"), Ok(Gid::from_raw(0)));
    }
}
