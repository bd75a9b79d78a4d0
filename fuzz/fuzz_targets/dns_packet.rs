//! A DNS query arriving at a sandbox's server, over UDP or TCP (the first byte's low bit):
//! read by the wire fast path or by hickory-proto, answered from the names, the cache or
//! with an error, or handed to the forwarder. Every answer must be a DNS message that
//! hickory-proto decodes, carrying the query's id.
#![no_main]

use std::sync::{Arc, OnceLock};

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use netctl_dns::{Dns, DnsSettings, EndpointNames};

const SANDBOX: &str = "fuzz";

fn dns() -> &'static Arc<Dns> {
    static DNS: OnceLock<Arc<Dns>> = OnceLock::new();
    DNS.get_or_init(|| {
        let dns = Dns::new().expect("DNS thread");
        let own = DnsSettings {
            servers: vec!["192.0.2.53".into()],
            search: vec!["example.test".into()],
            options: vec!["ndots:1".into()],
        };
        dns.add_sandbox(SANDBOX, &own);
        dns.directory().add_endpoint(EndpointNames {
            endpoint_id: "ep".into(),
            network_id: "net".into(),
            network_name: "net".into(),
            internal: false,
            sandbox_id: SANDBOX.into(),
            names: vec![SANDBOX.into(), "web".into(), "www.example.test".into()],
            addresses: vec!["172.30.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
        });
        dns
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&how, query)) = data.split_first() else {
        return;
    };
    let tcp = how & 1 == 1;
    if let netctl_dns::Reply::Now(answer) = dns().answer(SANDBOX, query, tcp) {
        let message = Message::from_vec(&answer).unwrap_or_else(|e| {
            panic!("answer to {query:02x?} does not decode ({e}): {answer:02x?}")
        });
        assert_eq!(
            message.metadata.id,
            u16::from_be_bytes([query[0], query[1]])
        );
        if !tcp {
            assert!(answer.len() <= 65535);
        }
    }
});
