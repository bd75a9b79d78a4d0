//! Whether this kernel can encrypt traffic between nodes: IPsec ESP (an xfrm state) or
//! WireGuard. Each is tried in a network namespace made for the purpose, which goes with the
//! process that tried: nothing is left anywhere. Asked once; the kernel does not change.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::OnceLock;

/// What the kernel answered for each way of encrypting: `Ok`, or its refusal.
#[derive(Debug, Clone)]
pub struct EncryptionSupport {
    pub esp: Result<(), String>,
    pub wireguard: Result<(), String>,
}

impl EncryptionSupport {
    pub fn any(&self) -> bool {
        self.esp.is_ok() || self.wireguard.is_ok()
    }
}

/// `ip xfrm state add src 192.0.2.1 dst 192.0.2.2 proto esp spi 0x100 mode transport aead
/// 'rfc4106(gcm(aes))' KEY 128` and `ip link add wg0 type wireguard`, each in a namespace of
/// its own.
pub fn encryption_support() -> &'static EncryptionSupport {
    static SUPPORT: OnceLock<EncryptionSupport> = OnceLock::new();
    SUPPORT.get_or_init(|| EncryptionSupport {
        esp: try_in_new_netns(&[
            "xfrm",
            "state",
            "add",
            "src",
            "192.0.2.1",
            "dst",
            "192.0.2.2",
            "proto",
            "esp",
            "spi",
            "0x100",
            "mode",
            "transport",
            "aead",
            "rfc4106(gcm(aes))",
            "0x0102030405060708090a0b0c0d0e0f1011121314",
            "128",
        ]),
        wireguard: try_in_new_netns(&["link", "add", "wg0", "type", "wireguard"]),
    })
}

/// `ip ARGS` in a fresh network namespace: `Ok` when the kernel took it.
fn try_in_new_netns(args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    // SAFETY: unshare is async-signal-safe; the child enters a namespace of its own before
    // exec, and the namespace goes with it.
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
        });
    }
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .trim_start_matches("Error: ")
            .to_string()),
        Err(e) => Err(format!("cannot run ip: {e}")),
    }
}
