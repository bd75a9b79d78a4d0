//! DHCPv6 (RFC 8415), stateful: one non-temporary address (IA_NA) per endpoint. The default
//! route comes from router advertisements, as on any IPv6 host, not from DHCPv6.

mod client;
mod lease;

pub use client::{Client, Event, Identity};
pub use lease::Lease;

#[cfg(test)]
mod tests;
