//! ISC Kea (Debian's kea-dhcp4-server and kea-dhcp6-server) as a LAN's DHCP server, in a test
//! host's namespace: leases as short as a test needs (dnsmasq holds them at 2 minutes at
//! least), a lease file to read, a log. Stopped by PID on drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{command_in, Host};

/// Which server: `kea-dhcp4` or `kea-dhcp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeaFamily {
    V4,
    V6,
}

impl KeaFamily {
    fn program(self) -> &'static str {
        match self {
            Self::V4 => "kea-dhcp4",
            Self::V6 => "kea-dhcp6",
        }
    }

    fn section(self) -> &'static str {
        match self {
            Self::V4 => "Dhcp4",
            Self::V6 => "Dhcp6",
        }
    }
}

pub struct Kea {
    child: Option<Child>,
    netns: PathBuf,
    family: KeaFamily,
    config: PathBuf,
    log: PathBuf,
    leases: PathBuf,
}

impl Kea {
    /// Serves on `interface` of `host` with `settings`: the `Dhcp4`/`Dhcp6` section's fields
    /// beyond the interface, the lease file and the log (lifetimes, `subnet4`/`subnet6`…),
    /// as JSON object members.
    pub fn start(host: &Host, family: KeaFamily, interface: &str, settings: &str) -> Self {
        let tag = match family {
            KeaFamily::V4 => "kea4",
            KeaFamily::V6 => "kea6",
        };
        let dir = host.dir();
        let leases = dir.join(format!("{tag}-leases.csv"));
        let config = dir.join(format!("{tag}.json"));
        // DHCPv6's server DUID, given rather than written to /var/lib/kea.
        let server_id = match family {
            KeaFamily::V4 => "",
            KeaFamily::V6 => {
                r#""server-id": {"type": "EN", "enterprise-id": 2495,
                                 "identifier": "6e6574637466", "persist": false},"#
            }
        };
        let text = format!(
            r#"{{"{section}": {{
                {server_id}
                "interfaces-config": {{"interfaces": ["{interface}"]}},
                "lease-database": {{"type": "memfile", "persist": true, "lfc-interval": 0,
                                    "name": "{leases}"}},
                "loggers": [{{"name": "{program}", "severity": "INFO",
                              "output_options": [{{"output": "stdout"}}]}}],
                {settings}
            }}}}"#,
            section = family.section(),
            program = family.program(),
            leases = leases.display(),
        );
        std::fs::write(&config, text).expect("kea config");
        let mut kea = Self {
            child: None,
            netns: host.netns_path(),
            family,
            config,
            log: dir.join(format!("{tag}.log")),
            leases,
        };
        kea.resume();
        kea
    }

    /// Starts it again (after [`Kea::stop`]), with the same lease file.
    pub fn resume(&mut self) {
        if self.child.is_some() {
            return;
        }
        let dir = self.config.parent().expect("the host's directory");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("kea log");
        let child = command_in(&self.netns, self.family.program())
            .arg("-c")
            .arg(&self.config)
            .env("KEA_PIDFILE_DIR", dir)
            .env("KEA_LOCKFILE_DIR", dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "spawn {} (apt-get install kea-dhcp4-server kea-dhcp6-server): {e}",
                    self.family.program()
                )
            });
        self.child = Some(child);
        self.wait_ready();
    }

    /// Ready once it says it serves (`DHCP4_STARTED`/`DHCP6_STARTED`).
    fn wait_ready(&self) {
        let started = match self.family {
            KeaFamily::V4 => "DHCP4_STARTED",
            KeaFamily::V6 => "DHCP6_STARTED",
        };
        let already = self.log().matches(started).count();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.log().matches(started).count() <= already {
            assert!(
                Instant::now() < deadline,
                "{} did not start:\n{}",
                self.family.program(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it (SIGKILL: no goodbye to the clients); [`Kea::resume`] starts it again.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The memfile: a CSV line per lease change (`address,hwaddr,client_id,valid_lifetime,
    /// expire,…`), appended at each grant, renewal and release.
    pub fn lease_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.leases)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect()
    }

    pub fn lease_file(&self) -> &Path {
        &self.leases
    }
}

impl Drop for Kea {
    fn drop(&mut self) {
        self.stop();
    }
}
