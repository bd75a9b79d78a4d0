//! DHCP clients for netctl's IPAM, without I/O: each is a state machine handed packets and
//! the time, answering with the packets to send and what became of its lease. The daemon
//! owns the sockets and the timers, one set for every endpoint it leases for.

mod lifetime;
mod retry;

pub use lifetime::Lifetimes;
pub mod v4;
pub mod v6;
