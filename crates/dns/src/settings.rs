//! Which upstreams, search domains and options a sandbox gets, and why.
//!
//! Three layers, the first that says something wins, each of servers, search and options on
//! its own (as Docker does): the sandbox's own (`--dns`, `--dns-search`, `--dns-option`),
//! daemon.json (`dns`, `dns-search`, `dns-opts`), the host's resolv.conf.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use serde::{Deserialize, Serialize};

use crate::DnsError;

/// DNS settings as a user writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DnsSettings {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

impl DnsSettings {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.search.is_empty() && self.options.is_empty()
    }

    /// Checks what a user gave (the host's resolv.conf is taken as it is).
    pub fn validate(&self) -> Result<(), DnsError> {
        for server in &self.servers {
            parse_server_address(server).map_err(|why| DnsError::Invalid {
                what: "DNS server",
                value: server.clone(),
                why,
            })?;
        }
        for domain in &self.search {
            check_search_domain(domain).map_err(|why| DnsError::Invalid {
                what: "DNS search domain",
                value: domain.clone(),
                why,
            })?;
        }
        for option in &self.options {
            check_option(option).map_err(|why| DnsError::Invalid {
                what: "DNS option",
                value: option.clone(),
                why,
            })?;
        }
        Ok(())
    }
}

/// The host's resolv.conf: `nameserver`, `search` (or `domain`) and `options` lines.
pub fn parse_resolv_conf(text: &str) -> DnsSettings {
    let mut settings = DnsSettings::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => settings.servers.extend(words.next().map(String::from)),
            // The last of `search` and `domain` wins, as in glibc.
            Some("search") | Some("domain") => {
                settings.search = words.map(String::from).collect();
            }
            Some("options") => settings.options.extend(words.map(String::from)),
            _ => {}
        }
    }
    settings
}

/// Where a setting came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The sandbox's own `--dns*` flags.
    Sandbox,
    /// daemon.json.
    DaemonConfig,
    /// The host's resolv.conf.
    Host,
    /// Nobody said anything.
    #[default]
    Nowhere,
}

/// One upstream server, ready to be sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub text: String,
    pub addr: SocketAddr,
}

/// What one sandbox resolves with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    pub upstreams: Vec<Upstream>,
    pub upstreams_from: Source,
    /// Upstream entries that could not be used, and why.
    pub unusable: Vec<(String, String)>,
    pub search: Vec<String>,
    pub search_from: Source,
    pub options: Vec<String>,
    pub options_from: Source,
    /// Identifies the upstream list, so cached answers are never shared between sandboxes
    /// that ask different servers.
    pub upstreams_key: u64,
}

impl Resolution {
    pub fn new(own: &DnsSettings, daemon: &DnsSettings, host: &DnsSettings) -> Self {
        let layers = [
            (own, Source::Sandbox),
            (daemon, Source::DaemonConfig),
            (host, Source::Host),
        ];
        let pick = |field: fn(&DnsSettings) -> &Vec<String>| {
            layers
                .iter()
                .find(|(s, _)| !field(s).is_empty())
                .map(|(s, from)| (field(s).clone(), *from))
                .unwrap_or_default()
        };
        let (servers, upstreams_from) = pick(|s| &s.servers);
        let (search, search_from) = pick(|s| &s.search);
        let (options, options_from) = pick(|s| &s.options);
        let mut upstreams = Vec::new();
        let mut unusable = Vec::new();
        for text in servers {
            match parse_server_address(&text) {
                Ok(addr) => upstreams.push(Upstream { text, addr }),
                Err(why) => unusable.push((text, why)),
            }
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        upstreams.iter().for_each(|u| u.addr.hash(&mut hasher));
        Self {
            upstreams_key: hasher.finish(),
            upstreams,
            upstreams_from,
            unusable,
            search,
            search_from,
            options,
            options_from,
        }
    }

    /// `ndots:N` when the options set it.
    pub fn ndots(&self) -> Option<u32> {
        self.options
            .iter()
            .rev()
            .find_map(|o| o.strip_prefix("ndots:")?.parse().ok())
    }

    /// A name without dots stays local when ndots was set to 1 or more: the client then
    /// tries it with each search domain first, and an upstream has no answer for a bare
    /// container-style name anyway. Docker's embedded server does the same.
    pub fn single_labels_stay_local(&self) -> bool {
        self.ndots().is_some_and(|n| n >= 1)
    }

    /// The sandbox's resolv.conf. With the embedded server, its one nameserver is
    /// 127.0.0.11 and `ndots:0` is added unless the options set ndots (as Docker does);
    /// without it (a sandbox in the host's namespace), the upstreams themselves.
    pub fn resolv_conf(&self, embedded: bool) -> String {
        let mut text = String::from("# Generated by netctl. Edits are lost.\n");
        if embedded {
            text.push_str(&format!("nameserver {}\n", crate::SERVER_ADDRESS));
        } else {
            for upstream in &self.upstreams {
                text.push_str(&format!("nameserver {}\n", upstream.text));
            }
        }
        if !self.search.is_empty() {
            text.push_str(&format!("search {}\n", self.search.join(" ")));
        }
        let mut options = self.options.clone();
        if embedded && self.ndots().is_none() {
            options.push("ndots:0".into());
        }
        if !options.is_empty() {
            text.push_str(&format!("options {}\n", options.join(" ")));
        }
        text
    }
}

/// `192.0.2.53`, `2001:db8::53`, or `fe80::1%eth0` (a link-local address and its interface,
/// by name or index) — always port 53.
pub fn parse_server_address(text: &str) -> Result<SocketAddr, String> {
    let (addr, scope) = match text.split_once('%') {
        Some((addr, scope)) => (addr, Some(scope)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| "not an IP address".to_string())?;
    match (ip, scope) {
        (IpAddr::V4(_), Some(_)) => Err("an IPv4 address has no %scope".into()),
        (ip, None) => Ok(SocketAddr::new(ip, 53)),
        (IpAddr::V6(ip), Some(scope)) => {
            let index = match scope.parse::<u32>() {
                Ok(index) => index,
                Err(_) => nix::net::if_::if_nametoindex(scope)
                    .map_err(|_| format!("no interface {scope:?} for the %scope"))?,
            };
            Ok(SocketAddr::V6(SocketAddrV6::new(ip, 53, 0, index)))
        }
    }
}

fn check_search_domain(domain: &str) -> Result<(), String> {
    let name = domain.strip_suffix('.').unwrap_or(domain);
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !name.split('.').all(label_ok) {
        return Err("labels are letters, digits, '-' or '_', 1 to 63 each".into());
    }
    Ok(())
}

fn check_option(option: &str) -> Result<(), String> {
    if option.is_empty() || option.chars().any(char::is_whitespace) {
        return Err("an option is one word, such as ndots:2 or edns0".into());
    }
    if let Some(n) = option.strip_prefix("ndots:") {
        n.parse::<u8>()
            .map_err(|_| "ndots takes a number from 0 to 15".to_string())
            .and_then(|n| {
                (n <= 15)
                    .then_some(())
                    .ok_or("ndots takes a number from 0 to 15".into())
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(servers: &[&str], search: &[&str], options: &[&str]) -> DnsSettings {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        DnsSettings {
            servers: v(servers),
            search: v(search),
            options: v(options),
        }
    }

    #[test]
    fn each_setting_comes_from_the_first_layer_that_has_it() {
        let host = parse_resolv_conf(
            "# comment\nnameserver 127.0.0.53\nsearch lan corp\noptions edns0 trust-ad\n",
        );
        assert_eq!(
            host,
            settings(&["127.0.0.53"], &["lan", "corp"], &["edns0", "trust-ad"])
        );
        let daemon = settings(&["192.0.2.1"], &[], &[]);
        let own = settings(&[], &["corp.example"], &["ndots:2"]);
        let r = Resolution::new(&own, &daemon, &host);
        assert_eq!(r.upstreams[0].addr, "192.0.2.1:53".parse().unwrap());
        assert_eq!(r.upstreams_from, Source::DaemonConfig);
        assert_eq!(
            (r.search_from, r.options_from),
            (Source::Sandbox, Source::Sandbox)
        );
        assert!(r.single_labels_stay_local());
        let r = Resolution::new(&DnsSettings::default(), &DnsSettings::default(), &host);
        assert_eq!(r.upstreams_from, Source::Host);
        assert!(!r.single_labels_stay_local());
        assert_eq!(
            r.resolv_conf(true),
            "# Generated by netctl. Edits are lost.\nnameserver 127.0.0.11\nsearch lan corp\n\
             options edns0 trust-ad ndots:0\n"
        );
    }

    #[test]
    fn upstream_lists_differ_in_their_cache_key() {
        let none = DnsSettings::default();
        let a = Resolution::new(&settings(&["192.0.2.1"], &[], &[]), &none, &none);
        let b = Resolution::new(&settings(&["192.0.2.2"], &[], &[]), &none, &none);
        assert_ne!(a.upstreams_key, b.upstreams_key);
    }

    #[test]
    fn scoped_ipv6_servers_parse() {
        let lo = parse_server_address("fe80::1%lo").unwrap();
        assert!(matches!(lo, SocketAddr::V6(a) if a.scope_id() == 1 && a.port() == 53));
        assert!(parse_server_address("fe80::1%7").is_ok());
        assert!(parse_server_address("fe80::1%nosuchif0").is_err());
        assert!(parse_server_address("192.0.2.1%eth0").is_err());
        assert!(parse_server_address("dns.example").is_err());
        // The host's unusable entries are reported, not fatal.
        let host = parse_resolv_conf("nameserver fe80::1%nosuchif0\nnameserver 192.0.2.9\n");
        let r = Resolution::new(&DnsSettings::default(), &DnsSettings::default(), &host);
        assert_eq!(r.upstreams.len(), 1);
        assert_eq!(r.unusable[0].0, "fe80::1%nosuchif0");
    }

    #[test]
    fn bad_user_settings_are_refused_with_the_reason() {
        let e = settings(&["8.8.8"], &[], &[]).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid DNS server \"8.8.8\": not an IP address"
        );
        assert!(settings(&[], &["bad domain"], &[]).validate().is_err());
        assert!(settings(&[], &["a..b"], &[]).validate().is_err());
        assert!(settings(&[], &[], &["ndots:x"]).validate().is_err());
        assert!(settings(&[], &[], &["ndots:99"]).validate().is_err());
        assert!(
            settings(&["2001:db8::53"], &["corp.example."], &["ndots:2", "edns0"])
                .validate()
                .is_ok()
        );
    }
}
