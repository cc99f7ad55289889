//! `metronome healthcheck`: one HTTP/1.1 GET to a local instance, for
//! container health checks (the final image has no shell or curl).
//!
//! Plain `std::net::TcpStream` with timeouts on connect, write and read; an
//! unspecified listen address (`0.0.0.0`, `[::]`) is probed on loopback.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    #[error("the HTTP API is disabled (`{0}`): nothing to probe")]
    Disabled(String),
    #[error("cannot resolve `{addr}`: {source}")]
    Resolve {
        addr: String,
        source: std::io::Error,
    },
    #[error("`{0}` resolves to no address")]
    NoAddress(String),
    #[error("{addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{addr}: not an HTTP answer: {line:?}")]
    BadAnswer { addr: SocketAddr, line: String },
}

/// The address to probe for a listen address: loopback for an
/// unspecified IP.
pub fn probe_addr(listen: &str) -> Result<SocketAddr, HealthcheckError> {
    let listen = listen.trim();
    if listen.is_empty() || listen == "off" {
        return Err(HealthcheckError::Disabled(listen.to_string()));
    }
    let mut addr = listen
        .to_socket_addrs()
        .map_err(|source| HealthcheckError::Resolve {
            addr: listen.to_string(),
            source,
        })?
        .next()
        .ok_or_else(|| HealthcheckError::NoAddress(listen.to_string()))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    Ok(addr)
}

/// GETs `path` from `addr`; returns the status code and the body.
pub fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String), HealthcheckError> {
    let io = |source| HealthcheckError::Io { addr, source };
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: metronome-healthcheck\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(io)?;
    // Read until the body announced by Content-Length is in (or the peer
    // closes); small answers only: at most 1 MiB.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = complete(&buf) {
            buf.truncate(end);
            break;
        }
        let n = s.read(&mut chunk).map_err(io)?;
        if n == 0 || buf.len() > 1 << 20 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text.lines().next().unwrap_or_default();
    let code = line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| HealthcheckError::BadAnswer {
            addr,
            line: line.to_string(),
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// The length of a complete answer in `buf`, if it has a header with
/// Content-Length and that much body.
fn complete(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let len: usize = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })?;
    (buf.len() >= head_end + len).then_some(head_end + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_are_probed_on_loopback() {
        assert_eq!(
            probe_addr("0.0.0.0:8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(probe_addr("[::]:9").unwrap(), "[::1]:9".parse().unwrap());
        assert!(matches!(
            probe_addr("off"),
            Err(HealthcheckError::Disabled(_))
        ));
    }
}
