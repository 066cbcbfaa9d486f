//! Fresh ports for tests running in parallel (in one process and across processes).
//!
//! Broadcast ports come from 20000..32000 (below Linux's ephemeral range, so no outgoing
//! connection takes them), checked free with a plain UDP bind (which fails if any daemon holds
//! the port, even with `SO_REUSEADDR`) and never handed out twice by this process. TCP ports are
//! chosen by the kernel (bind to port 0), also never handed out twice.

use std::collections::HashSet;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::Mutex;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Records `port` as used; false if this process already handed it out.
fn claim(port: u16) -> bool {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    guard.get_or_insert_with(HashSet::new).insert(port)
}

/// A random number (std's per-process random hash keys, mixed with time and pid).
fn random() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A UDP port free on loopback, for one test's discovery broadcasts.
pub fn broadcast_port() -> u16 {
    for _ in 0..1000 {
        let port = 20000 + (random() % 12000) as u16;
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
            && claim(port)
        {
            return port;
        }
    }
    panic!("no free UDP port found in 20000..32000 after 1000 tries");
}

/// A TCP port free on 127.0.0.1 right now, for one node's peer listener.
pub fn tcp_port() -> u16 {
    for _ in 0..1000 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("binding a TCP port on loopback");
        // The next port up must be free too: "port in use" tests move a node there.
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port.wrapping_add(1))).is_ok() && claim(port) {
            return port;
        }
    }
    panic!("no free TCP port found after 1000 tries");
}
