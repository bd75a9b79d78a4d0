//! Docker's remote plugin requests, as dockerd sends them as JSON bodies: decoded, checked
//! as the daemon checks them before anything else, and written back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netctl_plugin_api::docker::{
    checks, CreateEndpoint, CreateNetwork, EndpointRef, Join, NetworkRef, ReleaseAddress,
    ReleasePool, RequestAddress, RequestPool,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

fuzz_target!(|data: &[u8]| {
    let Some((&call, body)) = data.split_first() else {
        return;
    };
    match call % 9 {
        0 => {
            if let Some(r) = decoded::<RequestPool>(body) {
                let _ = r.options.as_ref().map(|o| o.get("netctl.dhcp"));
            }
        }
        1 => {
            if let Some(r) = decoded::<ReleasePool>(body) {
                let _ = checks::pool_id(&r.pool_id);
            }
        }
        2 => {
            if let Some(r) = decoded::<RequestAddress>(body) {
                let _ = checks::pool_id(&r.pool_id);
            }
        }
        3 => {
            if let Some(r) = decoded::<ReleaseAddress>(body) {
                let _ = checks::pool_id(&r.pool_id);
            }
        }
        4 => {
            if let Some(r) = decoded::<CreateNetwork>(body) {
                let _ = checks::docker_id("NetworkID", &r.network_id);
            }
        }
        5 => {
            if let Some(r) = decoded::<NetworkRef>(body) {
                let _ = checks::docker_id("NetworkID", &r.network_id);
            }
        }
        6 => {
            if let Some(r) = decoded::<CreateEndpoint>(body) {
                let _ = checks::endpoint_ids(&r.network_id, &r.endpoint_id);
            }
        }
        7 => {
            if let Some(r) = decoded::<Join>(body) {
                let _ = checks::endpoint_ids(&r.network_id, &r.endpoint_id);
                let _ = checks::sandbox_key(&r.sandbox_key);
            }
        }
        _ => {
            if let Some(r) = decoded::<EndpointRef>(body) {
                let _ = checks::endpoint_ids(&r.network_id, &r.endpoint_id);
            }
        }
    }
});

/// Decodes `body`; what decodes is written back and must decode to the same again.
fn decoded<T: DeserializeOwned + Serialize>(body: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(body).ok()?;
    let written = serde_json::to_vec(&value).expect("a decoded request encodes");
    let again: T = serde_json::from_slice(&written).expect("what netctl writes it reads back");
    assert_eq!(
        serde_json::to_vec(&again).unwrap(),
        written,
        "a request survives a round trip"
    );
    Some(value)
}
