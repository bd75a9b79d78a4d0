//! The sockets a DHCP client talks through, one per interface, opened in the calling
//! thread's network namespace (a thread that has entered the endpoint's). Plain UDP sockets
//! tied to the interface: the interface's own MAC goes out with each packet, so no raw
//! socket is needed, and the kernel accepts a broadcast from 0.0.0.0 on a device socket.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::OwnedFd;

use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6,
};

/// DHCPv4's client and server ports.
pub const CLIENT_PORT_V4: u16 = 68;
pub const SERVER_PORT_V4: u16 = 67;
/// DHCPv6's client and server ports, and All_DHCP_Relay_Agents_and_Servers.
pub const CLIENT_PORT_V6: u16 = 546;
pub const SERVER_PORT_V6: u16 = 547;
pub const ALL_SERVERS_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// `0.0.0.0:68` on `ifname` only, broadcasts allowed (what `udhcpc -i IFNAME` listens on).
pub fn socket_v4(ifname: &str) -> std::io::Result<UdpSocket> {
    let fd = device_socket(AddressFamily::Inet, ifname)?;
    setsockopt(&fd, sockopt::Broadcast, &true)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, CLIENT_PORT_V4)),
    )?;
    Ok(UdpSocket::from(fd))
}

/// `[::]:546` on `ifname` only; send to [`all_servers_v6`] through it.
pub fn socket_v6(ifname: &str) -> std::io::Result<UdpSocket> {
    let fd = device_socket(AddressFamily::Inet6, ifname)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn6::from(SocketAddrV6::new(
            Ipv6Addr::UNSPECIFIED,
            CLIENT_PORT_V6,
            0,
            0,
        )),
    )?;
    Ok(UdpSocket::from(fd))
}

/// `255.255.255.255:67`.
pub fn all_servers_v4() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT_V4))
}

/// `[ff02::1:2%IFINDEX]:547`.
pub fn all_servers_v6(ifindex: u32) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(
        ALL_SERVERS_V6,
        SERVER_PORT_V6,
        0,
        ifindex,
    ))
}

fn device_socket(family: AddressFamily, ifname: &str) -> std::io::Result<OwnedFd> {
    let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)?;
    // Many endpoints' clients share port 68 (546), each on its own device.
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    setsockopt(
        &fd,
        sockopt::BindToDevice,
        &std::ffi::OsString::from(ifname),
    )?;
    Ok(fd)
}
