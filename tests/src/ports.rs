//! Fresh ports for tests running in parallel: the workspace's test kit's pickers, under the
//! names this crate's tests use.

/// A UDP port free on loopback, for one test's discovery broadcasts.
pub fn broadcast_port() -> u16 {
    testkit::free_udp_port()
}

/// A TCP port free on 127.0.0.1 right now, for one node's peer listener.
pub fn tcp_port() -> u16 {
    testkit::free_tcp_port()
}
