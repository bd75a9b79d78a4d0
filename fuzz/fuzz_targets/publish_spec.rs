//! `-p` and `--expose` specs (`[IP:][HOSTPORT[-END]:]PORT[-END][/PROTO]`) and services'
//! `--publish`, as the CLI parses them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netctl_plugin_api::ports::{parse_expose, parse_publish, PortMapping};
use netctl_plugin_api::service_ports::ServicePort;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mappings) = parse_publish(spec) {
        assert!(!mappings.is_empty(), "{spec:?} publishes something");
        // A range maps up to 65535 ports; writing all of those out would be all a run did.
        if mappings.len() <= 64 {
            let written = serde_json::to_vec(&mappings).unwrap();
            let again: Vec<PortMapping> = serde_json::from_slice(&written).unwrap();
            assert_eq!(again, mappings);
        }
    }
    if let Ok(ports) = parse_expose(spec) {
        assert!(!ports.is_empty(), "{spec:?} exposes something");
    }
    let _ = ServicePort::parse(spec);
});
