//! A CNI call as a runtime makes it: `CNI_*` variables (the input up to the first NUL, one
//! `NAME=value` a line) and the network configuration on stdin (the rest), decoded as the
//! plugin decodes them; a `prevResult` read back; answers and errors rendered in every
//! version.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use netctl_cni::{version_answer, Attachment, CniError, ErrorCode, Invocation, NetConf, Version};

fuzz_target!(|data: &[u8]| {
    let (env, stdin) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let env: HashMap<String, String> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let call = Invocation::from_env(|name| env.get(name).cloned());
    let spoken = serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v["cniVersion"].as_str().map(String::from));
    let _ = version_answer(spoken.as_deref());
    let conf = match NetConf::parse(stdin) {
        Ok(conf) => conf,
        Err(e) => {
            let rendered = e.to_json(spoken.as_deref().unwrap_or("1.1.0"));
            serde_json::from_str::<serde_json::Value>(&rendered).expect("errors are JSON");
            return;
        }
    };
    let version = conf.version();
    let _ = (
        conf.network_name(),
        conf.describes_network(),
        conf.aliases(),
    );
    if let Some(prev) = &conf.prev_result {
        if let Ok(attachment) = Attachment::from_prev_result(prev) {
            let ifname = call.as_ref().map(|c| c.ifname.clone()).unwrap_or_default();
            let _ = attachment.addresses_of(&ifname);
            let _ = attachment.container_interfaces().count();
            for version in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
                let _ = attachment.render(Version::parse(version).unwrap());
            }
            let _ = attachment.render(version);
        }
    }
    let _ = CniError::new(ErrorCode::InvalidConfig, "x").to_json(version.as_str());
});
