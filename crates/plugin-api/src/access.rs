//! Who may do what on the management API: roles (after Docker UCP's), the permissions each
//! grants, and the rule each route needs.
//!
//! | role         | read | networks | workloads | nodes (view) | admin |
//! |--------------|------|----------|-----------|--------------|-------|
//! | `none`       |      |          |           |              |       |
//! | `view`       | yes  |          |           |              |       |
//! | `restricted` | yes  | yes      |           |              |       |
//! | `scheduler`  | yes  |          | yes       | yes          |       |
//! | `full`       | yes  | yes      | yes       | yes          | yes   |

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a caller may do: one of the roles of Docker UCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Nothing at all.
    None,
    /// List and inspect: `ls`, `inspect`, `port`, `dns explain`.
    View,
    /// Create and remove networks; attach nothing.
    Restricted,
    /// Attach and detach workloads, publish ports, view nodes.
    Scheduler,
    /// Everything, cluster and node commands included.
    Full,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::None,
        Role::View,
        Role::Restricted,
        Role::Scheduler,
        Role::Full,
    ];

    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::None => false,
            Role::View => permission == Read,
            Role::Restricted => matches!(permission, Read | Networks),
            Role::Scheduler => matches!(permission, Read | Workloads | Nodes),
            Role::Full => true,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::View => "view",
            Role::Restricted => "restricted",
            Role::Scheduler => "scheduler",
            Role::Full => "full",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?} (one of none, view, restricted, scheduler, full)")
            })
    }
}

/// What a route does, as far as access goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// List and inspect networks, sandboxes, services, ports and DNS settings.
    Read,
    /// Create and remove networks.
    Networks,
    /// Attach and detach workloads: sandboxes, connections, published ports, services,
    /// runtimes' attachments.
    Workloads,
    /// See the cluster's nodes.
    Nodes,
    /// The node and the cluster themselves: init, join, leave, tokens, backups, node roles,
    /// the firewall, garbage collection.
    Admin,
}

/// The permission a route needs, and what it does in the words of a refusal
/// (`role view cannot create networks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub needs: Permission,
    pub what: &'static str,
}

impl Rule {
    pub const fn new(needs: Permission, what: &'static str) -> Self {
        Self { needs, what }
    }
}

/// The roles one caller holds: from its user and from each of its groups. Grants add up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(Vec<Role>);

impl Grants {
    pub fn new(mut roles: Vec<Role>) -> Self {
        roles.sort();
        roles.dedup();
        // `none` grants nothing, and says so only when it is all there is.
        if roles.len() > 1 {
            roles.retain(|r| *r != Role::None);
        }
        Self(roles)
    }

    pub fn allows(&self, permission: Permission) -> bool {
        self.0.iter().any(|r| r.allows(permission))
    }

    pub fn roles(&self) -> &[Role] {
        &self.0
    }
}

impl fmt::Display for Grants {
    /// `role view`, `roles restricted and view`, `role none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("role none"),
            [one] => write!(f, "role {one}"),
            many => {
                let names: Vec<_> = many.iter().map(|r| r.name()).collect();
                let (last, rest) = names.split_last().expect("many");
                write!(f, "roles {} and {last}", rest.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_grants_what_its_table_row_says() {
        use Permission::*;
        let all = [Read, Networks, Workloads, Nodes, Admin];
        let granted = |role: Role| -> Vec<Permission> {
            all.into_iter().filter(|p| role.allows(*p)).collect()
        };
        assert_eq!(granted(Role::None), vec![]);
        assert_eq!(granted(Role::View), vec![Read]);
        assert_eq!(granted(Role::Restricted), vec![Read, Networks]);
        assert_eq!(granted(Role::Scheduler), vec![Read, Workloads, Nodes]);
        assert_eq!(granted(Role::Full), all.to_vec());
    }

    #[test]
    fn grants_add_up_and_name_their_roles() {
        let both = Grants::new(vec![Role::View, Role::Restricted, Role::None, Role::View]);
        assert!(both.allows(Permission::Networks));
        assert!(!both.allows(Permission::Workloads));
        assert_eq!(both.to_string(), "roles view and restricted");
        assert_eq!(Grants::new(vec![Role::None]).to_string(), "role none");
        assert_eq!(Grants::default().to_string(), "role none");
        assert!(!Grants::default().allows(Permission::Read));
    }

    #[test]
    fn roles_parse_by_name_only() {
        assert_eq!("scheduler".parse::<Role>(), Ok(Role::Scheduler));
        assert!("admin"
            .parse::<Role>()
            .unwrap_err()
            .contains("unknown role"));
        let role: Role = serde_json::from_str(r#""restricted""#).unwrap();
        assert_eq!(role, Role::Restricted);
        assert!(serde_json::from_str::<Role>(r#""Full""#).is_err());
    }
}
