//! Loopback ports: a free one to hand to a server, and waiting until a
//! server listens on one. Invariant: the only place tests pick ports.

use std::net::{TcpListener, TcpStream};

use super::wait_until;

/// A port nothing listens on right now (the OS picks it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `127.0.0.1:port`.
pub fn wait_listening(port: u16, what: &str) {
    wait_until(
        &format!("{what} to listen on {port}"),
        || TcpStream::connect(("127.0.0.1", port)).is_ok(),
        String::new,
    );
}
