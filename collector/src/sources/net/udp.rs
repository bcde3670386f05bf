//! UDP listeners: one thread per socket (several with SO_REUSEPORT), datagrams taken in
//! batches with `recvmmsg`. A datagram may hold several newline-separated messages or one
//! without a newline. UDP cannot wait for the spool: while a chunk waits, the kernel's
//! socket buffer fills and then drops; those drops are counted from SO_RXQ_OVFL, never
//! hidden.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender};

use super::Listener;
use super::framing::Framer;
use super::rows::NetRows;
use crate::chunk::Chunk;
use crate::time::now_ns;

/// Datagrams per `recvmmsg` call.
const BATCH: usize = 32;
/// The largest UDP payload.
const DATAGRAM: usize = 65_535;
/// How long a receive waits, so that shutdown and old rows are noticed.
const POLL: Duration = Duration::from_millis(100);

/// Opens one socket of a UDP listener: SO_REUSEPORT when the listener has several, the
/// receive buffer asked for (warning when the kernel gives less), SO_RXQ_OVFL on.
pub fn bind(l: &Listener) -> io::Result<UdpSocket> {
    let addr = l.config.address;
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2); the descriptor is owned by the UdpSocket from here on.
    let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket that nothing else owns.
    let socket = unsafe { UdpSocket::from_raw_fd(fd) };
    if l.config.sockets > 1 {
        setsockopt(fd, libc::SO_REUSEPORT, 1)?;
    }
    setsockopt(fd, libc::SO_RXQ_OVFL, 1)?;
    let want = l.config.receive_buffer_bytes;
    if want > 0 {
        let v = want.min(i32::MAX as usize / 2) as i32;
        // As root the buffer may exceed net.core.rmem_max; otherwise the kernel caps it.
        if setsockopt(fd, libc::SO_RCVBUFFORCE, v).is_err() {
            setsockopt(fd, libc::SO_RCVBUF, v)?;
        }
        // Linux reports twice what it grants (it counts its bookkeeping).
        let got = getsockopt(fd, libc::SO_RCVBUF)? as usize / 2;
        if got < want {
            tracing::warn!(
                listener = %l.name,
                "UDP receive buffer is {got} bytes, not the {want} asked for \
                 (net.core.rmem_max caps it; raise it or run as root)"
            );
        }
    }
    let (sa, len) = sockaddr_of(addr);
    // SAFETY: sa is a valid sockaddr of length len.
    if unsafe { libc::bind(fd, (&raw const sa).cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    socket.set_read_timeout(Some(POLL))?;
    Ok(socket)
}

fn setsockopt(fd: i32, opt: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: v lives across the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&raw const v).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt(fd: i32, opt: libc::c_int) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid for writes of the sizes given.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, opt, (&raw mut v).cast(), &mut len) };
    if rc == 0 {
        Ok(v)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sockaddr_of(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let sin = unsafe { &mut *(&raw mut ss).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            (ss, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *(&raw mut ss).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            (ss, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

fn addr_of(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says this is a sockaddr_in.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                u32::from_be(sin.sin_addr.s_addr).into(),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this is a sockaddr_in6.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                sin6.sin6_addr.s6_addr.into(),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Room for one SO_RXQ_OVFL control message (a u32), aligned for cmsghdr.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; 64]);

/// Receives on one socket until shutdown.
pub fn run(
    socket: UdpSocket,
    listener: Arc<Listener>,
    chunks: Sender<Chunk>,
    chunk_rows: usize,
    chunk_max_age: Duration,
    shutdown: Arc<AtomicBool>,
) {
    let stats = listener.stats.clone();
    let mut rows = NetRows::new(
        listener.config.format,
        listener.utc_offset_secs,
        listener.max_message_bytes,
        stats.clone(),
    );
    let mut framer = Framer::new(listener.decoder());
    let mut bufs = vec![0u8; BATCH * DATAGRAM];
    // SAFETY: all-zero iovec, sockaddr_storage and mmsghdr are valid (null pointers are
    // set below before use).
    let mut iovs: Vec<libc::iovec> = vec![unsafe { zeroed() }; BATCH];
    let mut names: Vec<libc::sockaddr_storage> = vec![unsafe { zeroed() }; BATCH];
    let mut controls = vec![Control([0; 64]); BATCH];
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { zeroed() }; BATCH];
    let fd = socket.as_raw_fd();
    let mut last_peer: Option<SocketAddr> = None;
    let inode = socket_inode(fd);
    let mut drops = Drops {
        reported: 0,
        stats: stats.clone(),
    };
    let mut next_proc_check = Instant::now() + PROC_CHECK;
    let mut draining = false;
    loop {
        if shutdown.load(Ordering::Relaxed) && !draining {
            // What the kernel holds already was sent: take it before stopping.
            draining = true;
        }
        for i in 0..BATCH {
            iovs[i] = libc::iovec {
                iov_base: bufs[i * DATAGRAM..].as_mut_ptr().cast(),
                iov_len: DATAGRAM,
            };
            let h = &mut msgs[i].msg_hdr;
            h.msg_name = (&raw mut names[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &raw mut iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = (&raw mut controls[i]).cast();
            h.msg_controllen = size_of::<Control>() as _;
            h.msg_flags = 0;
            msgs[i].msg_len = 0;
        }
        let flags = if draining {
            libc::MSG_DONTWAIT
        } else {
            libc::MSG_WAITFORONE
        };
        // SAFETY: every header points at live buffers of the lengths it states.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            let quiet = matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            );
            if draining && e.kind() != io::ErrorKind::Interrupted {
                break;
            }
            if !quiet {
                tracing::warn!(listener = %listener.name, "UDP receive failed: {e}");
                std::thread::sleep(POLL);
            }
        }
        let now = now_ns();
        for i in 0..n.max(0) as usize {
            stats.datagrams.fetch_add(1, Ordering::Relaxed);
            if let Some(d) = rxq_ovfl(&msgs[i].msg_hdr) {
                drops.total(d as u64);
            }
            let peer = addr_of(&names[i]);
            if peer != last_peer {
                if let Some(p) = peer {
                    rows.set_peer(p);
                }
                last_peer = peer;
            }
            let len = (msgs[i].msg_len as usize).min(DATAGRAM);
            let data = &bufs[i * DATAGRAM..i * DATAGRAM + len];
            // Each datagram is a whole input: nothing carries over to the next.
            framer.drain(data, true, |m| rows.append(&m, now, false));
        }
        let old = rows.oldest.is_some_and(|t| t.elapsed() >= chunk_max_age);
        if rows.len() >= chunk_rows || old {
            send(&chunks, &mut rows, &shutdown);
        }
        if Instant::now() >= next_proc_check {
            next_proc_check = Instant::now() + PROC_CHECK;
            if let Some(d) = inode.and_then(proc_drops) {
                drops.total(d);
            }
        }
    }
    send(&chunks, &mut rows, &shutdown);
    if let Some(d) = inode.and_then(proc_drops) {
        drops.total(d);
    }
}

/// How often the socket's drop count is read from /proc/net/udp: SO_RXQ_OVFL reports
/// drops only with the next datagram received, so drops at the end of a burst would stay
/// unseen until more traffic came.
const PROC_CHECK: Duration = Duration::from_secs(1);

/// This socket's kernel drops, as reported so far (both sources give running totals).
struct Drops {
    reported: u64,
    stats: Arc<super::stats::ListenerStats>,
}

impl Drops {
    fn total(&mut self, total: u64) {
        if total > self.reported {
            self.stats
                .kernel_drops
                .fetch_add(total - self.reported, Ordering::Relaxed);
            self.reported = total;
        }
    }
}

fn socket_inode(fd: i32) -> Option<u64> {
    // SAFETY: fstat writes into st.
    let mut st: libc::stat = unsafe { zeroed() };
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st.st_ino)
}

/// The `drops` column of the socket with this inode in /proc/net/udp or udp6.
fn proc_drops(inode: u64) -> Option<u64> {
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            if f.len() >= 13 && f[9].parse() == Ok(inode) {
                return f[12].parse().ok();
            }
        }
    }
    None
}

/// The SO_RXQ_OVFL count carried by a received datagram, if any.
fn rxq_ovfl(h: &libc::msghdr) -> Option<u32> {
    // SAFETY: the kernel filled the control buffer and msg_controllen; the CMSG macros walk
    // it within those bounds.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_RXQ_OVFL {
                return Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<u32>()));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// Sends the rows, waiting for room in the spool (the socket buffer takes the traffic
/// meanwhile). At shutdown the wait is bounded: rows that still find no room are counted
/// as dropped.
fn send(chunks: &Sender<Chunk>, rows: &mut NetRows, shutdown: &AtomicBool) {
    let n = rows.len() as u64;
    let Some(batch) = rows.finish() else {
        return;
    };
    let mut chunk = Chunk {
        batch,
        checkpoint: None,
    };
    let mut deadline: Option<Instant> = None;
    loop {
        match chunks.send_timeout(chunk, POLL) {
            Ok(()) => return,
            Err(SendTimeoutError::Timeout(c)) => {
                chunk = c;
                if shutdown.load(Ordering::Relaxed) {
                    let d =
                        *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(30));
                    if Instant::now() >= d {
                        break;
                    }
                }
            }
            Err(SendTimeoutError::Disconnected(_)) => break,
        }
    }
    rows.stats().dropped.fetch_add(n, Ordering::Relaxed);
}
