//! The management API's request bodies: decoded as its router decodes them, and written
//! back as the CLI would send them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netctl_plugin_api::cluster::{
    ClusterInitRequest, ClusterJoinRequest, ClusterLeaveRequest, ClusterRestoreRequest,
    JoinTokenRequest, NodeRemoveRequest, ServiceCreateRequest, ServiceUpdateRequest,
};
use netctl_plugin_api::runtime::{AttachRequest, AttachmentRef, GcRequest, RuntimeGcRequest};
use netctl_plugin_api::{
    ConnectRequest, DisconnectRequest, NetworkCreateRequest, PublishRequest, SandboxCreateRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

fuzz_target!(|data: &[u8]| {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    match route % 17 {
        0 => decode::<NetworkCreateRequest>(body),
        1 => decode::<ConnectRequest>(body),
        2 => decode::<DisconnectRequest>(body),
        3 => decode::<SandboxCreateRequest>(body),
        4 => decode::<PublishRequest>(body),
        5 => decode::<ClusterInitRequest>(body),
        6 => decode::<ClusterJoinRequest>(body),
        7 => decode::<ClusterLeaveRequest>(body),
        8 => decode::<ClusterRestoreRequest>(body),
        9 => decode::<JoinTokenRequest>(body),
        10 => decode::<NodeRemoveRequest>(body),
        11 => decode::<ServiceCreateRequest>(body),
        12 => decode::<ServiceUpdateRequest>(body),
        13 => decode::<AttachRequest>(body),
        14 => decode::<AttachmentRef>(body),
        15 => decode::<RuntimeGcRequest>(body),
        _ => decode::<GcRequest>(body),
    }
});

/// Decodes `body`; what decodes is written back and must decode to the same again.
fn decode<T: DeserializeOwned + Serialize>(body: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(body) else {
        return;
    };
    let written = serde_json::to_vec(&value).expect("a decoded request encodes");
    let again: T = serde_json::from_slice(&written).expect("what the CLI writes the API reads");
    assert_eq!(serde_json::to_vec(&again).unwrap(), written);
}
