//! DHCPv4 (RFC 2131): a client per endpoint, and the lease it holds.

mod client;
mod lease;

pub use client::{Client, Destination, Event, Identity};
pub use lease::Lease;

#[cfg(test)]
mod tests;
