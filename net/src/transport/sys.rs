//! The few socket calls std does not offer: a non-blocking connect, and
//! socket addresses in the kernel's layout for io_uring's connect.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};

/// A socket address in the kernel's layout, kept alive for an in-flight connect.
pub(crate) struct RawAddress {
    storage: libc::sockaddr_storage,
    length: libc::socklen_t,
}

impl RawAddress {
    pub fn new(address: SocketAddr) -> RawAddress {
        // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let length = match address {
            SocketAddr::V4(v4) => {
                let raw = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(v4.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // sockaddr_in (the kernel's own contract for the type).
                unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in>(), raw) };
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(v6) => {
                let raw = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: v6.port().to_be(),
                    sin6_flowinfo: v6.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: v6.ip().octets(),
                    },
                    sin6_scope_id: v6.scope_id(),
                };
                // SAFETY: as above, for sockaddr_in6.
                unsafe { std::ptr::write((&raw mut storage).cast::<libc::sockaddr_in6>(), raw) };
                size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddress {
            storage,
            length: length as libc::socklen_t,
        }
    }

    pub fn as_ptr(&self) -> *const libc::sockaddr {
        (&raw const self.storage).cast()
    }

    pub fn length(&self) -> libc::socklen_t {
        self.length
    }

    pub fn family(&self) -> libc::c_int {
        libc::c_int::from(self.storage.ss_family)
    }
}

/// A new non-blocking TCP socket for `address`'s family, with `TCP_NODELAY`.
pub(crate) fn tcp_socket(address: &RawAddress) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) has no memory preconditions; the result is checked.
    let fd = unsafe {
        libc::socket(
            address.family(),
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket that nothing else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_nodelay(&owned)?;
    Ok(owned)
}

/// Sets `TCP_NODELAY`: frames leave when the loop turn sends them.
pub(crate) fn set_nodelay(fd: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: the option value points to a live c_int of the length given.
    let result = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Starts a non-blocking connect; the stream becomes writable once it is up.
pub(crate) fn connect_nonblocking(address: SocketAddr) -> io::Result<TcpStream> {
    let raw = RawAddress::new(address);
    let socket = tcp_socket(&raw)?;
    // SAFETY: the address points to a live sockaddr of the length given.
    let result = unsafe {
        libc::connect(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            raw.as_ptr(),
            raw.length(),
        )
    };
    if result < 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(error);
        }
    }
    Ok(TcpStream::from(socket))
}
