//! Binding the proxy's listeners: one `SO_REUSEPORT` socket per worker and
//! address, after checking that no other socket listens there.
//!
//! `SO_REUSEPORT` lets every socket of the same user that also sets it share
//! the port, so a second drover (or any server of that user setting the option)
//! would silently split the traffic. Before binding, each address is probed
//! with a plain bind (`SO_REUSEADDR`, no `SO_REUSEPORT`): on Linux that fails
//! with `EADDRINUSE` when any socket is listening on an overlapping address,
//! whatever its options, while `TIME_WAIT` leftovers do not count. The probe
//! is closed before the real sockets are bound; a server that starts in that
//! instant is not detected.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Listen backlog of every proxy socket: clients beyond `server.max_connections`
/// wait here (capped by the kernel's `net.core.somaxconn`). 4096.
pub const BACKLOG: i32 = 4096;

fn socket_for(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

/// Binds `addr` with `SO_REUSEPORT` (and `SO_REUSEADDR`), non-blocking, backlog [`BACKLOG`].
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = socket_for(addr)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Binds `addr` without `SO_REUSEPORT` and closes it again: `EADDRINUSE` when
/// another socket listens there. Returns the address with port 0 resolved.
pub fn probe_free(addr: SocketAddr) -> io::Result<SocketAddr> {
    let socket = socket_for(addr)?;
    socket.bind(&addr.into())?;
    socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound socket has no IP address"))
}

/// Whether `a` and `b` cannot both be bound without `SO_REUSEPORT`: same
/// family and port, and the same IP or either one unspecified.
pub fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Binds every address once per worker, after probing that nobody else
/// listens there (`ours`: addresses this process already listens on, which
/// a reload may overlap). Port 0 is resolved by the probe, so all workers
/// share the same port. Errors name the address.
pub fn bind_all(
    addrs: &[SocketAddr],
    workers: usize,
    ours: &[SocketAddr],
) -> anyhow::Result<(Vec<SocketAddr>, Vec<Vec<std::net::TcpListener>>)> {
    let mut per_worker: Vec<Vec<std::net::TcpListener>> =
        (0..workers.max(1)).map(|_| Vec::new()).collect();
    let mut bound = Vec::new();
    for addr in addrs {
        let actual = if ours.iter().any(|o| overlaps(*o, *addr)) {
            *addr
        } else {
            probe_free(*addr).map_err(|e| listen_error(*addr, e))?
        };
        for w in per_worker.iter_mut() {
            w.push(bind_reuseport(actual).map_err(|e| listen_error(actual, e))?);
        }
        bound.push(actual);
    }
    Ok((bound, per_worker))
}

/// "cannot listen on 127.0.0.1:8080: Address in use (os error 98) (is another server already listening there? change server.listen)"
pub fn listen_error(addr: SocketAddr, e: io::Error) -> anyhow::Error {
    let hint = match e.kind() {
        io::ErrorKind::AddrInUse => {
            " (is another server already listening there? change server.listen)"
        }
        io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
        io::ErrorKind::AddrNotAvailable => " (that address is not on this machine)",
        _ => "",
    };
    anyhow::anyhow!("cannot listen on {addr}: {e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn overlapping_addresses() {
        let any = SocketAddr::from(([0, 0, 0, 0], 80));
        assert!(overlaps(local(80), local(80)));
        assert!(overlaps(any, local(80)));
        assert!(overlaps(local(80), any));
        assert!(!overlaps(local(80), local(81)));
        assert!(!overlaps(local(80), SocketAddr::from(([127, 0, 0, 2], 80))));
        assert!(!overlaps("[::]:80".parse().unwrap(), any));
    }

    #[test]
    fn probe_fails_on_a_reuseport_listener_of_this_very_process() {
        let l = bind_reuseport(local(0)).unwrap();
        let addr = l.local_addr().unwrap();
        // Another SO_REUSEPORT socket would share the port...
        let shared = bind_reuseport(addr);
        assert!(shared.is_ok(), "{shared:?}");
        // ...the probe does not.
        let e = probe_free(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        let wildcard = SocketAddr::from(([0, 0, 0, 0], addr.port()));
        assert_eq!(
            probe_free(wildcard).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        let err = bind_all(&[addr], 2, &[]).unwrap_err().to_string();
        assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
        // A reload re-binding next to its own listener still works.
        let (bound, per_worker) = bind_all(&[addr], 2, &[addr]).unwrap();
        assert_eq!((bound, per_worker.len()), (vec![addr], 2));
    }

    #[test]
    fn probe_fails_on_a_plain_listener_and_passes_on_a_closed_one() {
        let l = std::net::TcpListener::bind(local(0)).unwrap();
        let addr = l.local_addr().unwrap();
        assert_eq!(
            probe_free(addr).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop(l);
        assert_eq!(probe_free(addr).unwrap(), addr);
    }

    #[test]
    fn port_zero_is_resolved_once_for_every_worker() {
        let (bound, per_worker) = bind_all(&[local(0)], 3, &[]).unwrap();
        assert_ne!(bound[0].port(), 0);
        for w in &per_worker {
            assert_eq!(w[0].local_addr().unwrap(), bound[0]);
        }
    }
}
