//! daemon.json, read as the daemon reads it at start and whenever it changes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netctl_daemon::DaemonConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = DaemonConfig::parse(text) else {
        return;
    };
    // What a running daemon asks of a config it took.
    let _ = (config.mtu(), config.dhcp_timeout(), config.inert_settings());
    let _ = config.local_pool_templates();
    let _ = config.dns_settings();
    let _ = config.cluster_store.as_ref().map(|urls| urls.list());
    assert_eq!(config.without_dns().without_dns(), config.without_dns());
});
