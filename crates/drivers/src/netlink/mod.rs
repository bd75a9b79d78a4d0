//! The netlink calls netctl makes, one file per object kind, each with its `ip` equivalent.

mod address;
mod link;
mod route;

pub use link::Link;

/// A netlink connection bound to the namespace it was opened in.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: rtnetlink::Handle,
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace. Must run inside a tokio
    /// runtime context; the connection is driven by a task of that runtime.
    pub fn connect() -> std::io::Result<Self> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }
}

const ENODEV: i32 = 19;

/// The errno carried by a netlink error, if any.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}
