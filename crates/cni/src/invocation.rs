//! The environment a runtime runs a plugin with.

use std::path::PathBuf;

use crate::args::CniArgs;
use crate::error::{CniError, ErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Command {
    pub fn parse(text: &str) -> Result<Self, CniError> {
        Ok(match text {
            "ADD" => Self::Add,
            "DEL" => Self::Del,
            "CHECK" => Self::Check,
            "STATUS" => Self::Status,
            "GC" => Self::Gc,
            "VERSION" => Self::Version,
            other => {
                return Err(CniError::new(
                    ErrorCode::InvalidEnvironment,
                    format!(
                        "CNI_COMMAND {other:?} is none of ADD, DEL, CHECK, STATUS, GC, VERSION"
                    ),
                ))
            }
        })
    }
}

/// One call, as the environment describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    /// `CNI_CONTAINERID`; empty for STATUS, GC and VERSION.
    pub container_id: String,
    /// `CNI_NETNS`; `None` when absent or empty (containerd's DEL after the task is gone).
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`
    pub ifname: String,
    pub args: CniArgs,
}

impl Invocation {
    /// Reads the `CNI_*` variables through `var` (the process environment, or a test's).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, CniError> {
        let command = Command::parse(&var("CNI_COMMAND").unwrap_or_default())?;
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        let needs_container = matches!(command, Command::Add | Command::Del | Command::Check);
        let required = |name: &str| -> Result<String, CniError> {
            get(name).ok_or_else(|| {
                CniError::new(
                    ErrorCode::InvalidEnvironment,
                    format!("{name} is required for {command:?}"),
                )
            })
        };
        let (container_id, ifname) = if needs_container {
            (required("CNI_CONTAINERID")?, required("CNI_IFNAME")?)
        } else {
            (String::new(), String::new())
        };
        let netns = match command {
            Command::Add | Command::Check => Some(PathBuf::from(required("CNI_NETNS")?)),
            Command::Del => get("CNI_NETNS").map(PathBuf::from),
            _ => None,
        };
        if needs_container {
            check_container_id(&container_id)?;
            check_ifname(&ifname)?;
        }
        let args = match command {
            Command::Add | Command::Check => CniArgs::parse(&var("CNI_ARGS").unwrap_or_default())?,
            // A DEL must succeed whatever the runtime passes along.
            _ => CniArgs::parse(&var("CNI_ARGS").unwrap_or_default()).unwrap_or_default(),
        };
        Ok(Self {
            command,
            container_id,
            netns,
            ifname,
            args,
        })
    }
}

/// The spec: alphanumerics, then also `_`, `.` and `-`.
fn check_container_id(id: &str) -> Result<(), CniError> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return Ok(());
    }
    Err(CniError::new(
        ErrorCode::InvalidEnvironment,
        format!("CNI_CONTAINERID {id:?} is not a valid container id"),
    ))
}

/// A Linux interface name: at most 15 bytes, no `/`, `:` or whitespace, not `.` or `..`.
fn check_ifname(name: &str) -> Result<(), CniError> {
    let bad = name.len() > 15
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if bad {
        return Err(CniError::new(
            ErrorCode::InvalidEnvironment,
            format!("CNI_IFNAME {name:?} is not a valid interface name"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn add_needs_container_netns_and_ifname() {
        let ok = Invocation::from_env(env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "default-t1"),
            ("CNI_NETNS", "/proc/42/ns/net"),
            ("CNI_IFNAME", "eth0"),
        ]))
        .unwrap();
        assert_eq!(ok.netns, Some(PathBuf::from("/proc/42/ns/net")));
        let missing = Invocation::from_env(env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
        ]))
        .unwrap_err();
        assert_eq!(missing.code, ErrorCode::InvalidEnvironment);
        assert!(missing.msg.contains("CNI_NETNS"));
    }

    #[test]
    fn del_takes_an_empty_netns_and_status_needs_nothing() {
        let del = Invocation::from_env(env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", ""),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", "Bad"),
        ]))
        .unwrap();
        assert_eq!(del.netns, None);
        let status = Invocation::from_env(env(&[("CNI_COMMAND", "STATUS")])).unwrap();
        assert_eq!(status.command, Command::Status);
    }

    #[test]
    fn bad_ids_names_and_commands_are_refused() {
        for (id, ifname) in [("../x", "eth0"), ("c1", "a/b"), ("c1", "sixteen-chars-xx")] {
            let e = Invocation::from_env(env(&[
                ("CNI_COMMAND", "DEL"),
                ("CNI_CONTAINERID", id),
                ("CNI_IFNAME", ifname),
            ]))
            .unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidEnvironment, "{id} {ifname}");
        }
        assert!(Invocation::from_env(env(&[("CNI_COMMAND", "FROB")])).is_err());
        assert!(Invocation::from_env(env(&[])).is_err());
    }
}
