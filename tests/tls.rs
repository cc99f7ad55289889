//! TLS: `rediss://` for the broker and the lease against a TLS-only
//! redis-server, and `amqps://` through a TLS terminator (socat) in front of
//! the local RabbitMQ, both with a certificate authority the test makes
//! itself (openssl). The CA is trusted through `SSL_CERT_FILE`, as an
//! operator would do; without it the server's certificate must be refused.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sh(dir: &Path, args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .expect("command runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 / localhost.
fn make_certs(dir: &Path) {
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    sh(
        dir,
        &[
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=metronome test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ],
    );
    sh(
        dir,
        &[
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    sh(
        dir,
        &[
            "openssl",
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_tls_redis(dir: &Path, port: u16) -> Server {
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
        ])
        .args([
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs");
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "TLS redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Server(child)
}

/// Runs metronome for `secs` against the TLS Redis; returns its log lines.
fn run_metronome(dir: &Path, port: u16, trust_ca: bool, secs: u64) -> Vec<String> {
    let url = format!("rediss://127.0.0.1:{port}/0");
    run_with(
        dir,
        &["--broker", &url, "--lock", &url, "--lock-ttl", "2s"],
        trust_ca,
        secs,
    )
}

/// Runs metronome with `args` for `secs`; returns its log lines.
fn run_with(dir: &Path, args: &[&str], trust_ca: bool, secs: u64) -> Vec<String> {
    let sched = dir.join("s.yaml");
    std::fs::write(
        &sched,
        "schedules:\n  tick:\n    task: app.tick\n    every: 1s\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metronome"));
    cmd.arg("run").arg("--schedule").arg(&sched).args(args);
    cmd.args(["--http", "off", "--log-format", "json", "--state-file"]);
    cmd.arg(dir.join(format!("state-{}.json", common::unique("s"))));
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    if trust_ca {
        cmd.env("SSL_CERT_FILE", dir.join("ca.crt"));
    } else {
        // An empty trust store: the server's certificate must be refused.
        std::fs::write(dir.join("empty.pem"), "").unwrap();
        cmd.env("SSL_CERT_FILE", dir.join("empty.pem"));
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    std::thread::sleep(Duration::from_secs(secs));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    logs.join().unwrap()
}

fn list(dir: &Path, port: u16) -> Vec<String> {
    let out = Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            "ca.crt",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "LRANGE",
            "celery",
            "0",
            "-1",
        ])
        .current_dir(dir)
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn rediss_broker_and_lease_verify_the_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let port = free_port();
    let _server = start_tls_redis(dir.path(), port);

    // Not trusted: nothing may be published.
    let logs = run_metronome(dir.path(), port, false, 3);
    assert!(
        list(dir.path(), port).is_empty(),
        "published over an untrusted TLS connection"
    );
    let text = logs.join("\n");
    assert!(
        text.to_lowercase().contains("certificate"),
        "the refusal names the certificate problem:\n{text}"
    );

    // Trusted through SSL_CERT_FILE: runs are published over TLS by the leader.
    let logs = run_metronome(dir.path(), port, true, 4);
    let msgs = list(dir.path(), port);
    assert!(
        msgs.len() >= 2,
        "expected runs over TLS, got {}:\n{}",
        msgs.len(),
        logs.join("\n")
    );
    let first: serde_json::Value = serde_json::from_str(&msgs[0]).unwrap();
    assert_eq!(first["headers"]["task"], "app.tick");
    assert!(
        first["headers"]["metronome_fence"].as_u64().is_some(),
        "published under the lease"
    );
}

/// Messages waiting in `queue` of `vhost`.
fn queue_depth(vhost: &str, queue: &str) -> usize {
    let out = Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "-p",
            vhost,
            "name",
            "messages",
            "--formatter",
            "json",
        ])
        .output()
        .expect("rabbitmqctl runs");
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    rows.as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == queue)
        .and_then(|r| r["messages"].as_u64())
        .unwrap_or(0) as usize
}

#[test]
fn amqps_verifies_the_server_certificate() {
    if Command::new("socat").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "socat is required in CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: socat is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let pem = [
        std::fs::read(dir.path().join("server.crt")).unwrap(),
        std::fs::read(dir.path().join("server.key")).unwrap(),
    ]
    .concat();
    std::fs::write(dir.path().join("server.pem"), pem).unwrap();
    let port = free_port();
    let _proxy = Server(
        Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert=server.pem,verify=0"
            ))
            .arg("TCP:127.0.0.1:5672")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat runs"),
    );
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "TLS proxy did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let vhost = common::Vhost::new("amqps");
    let url = format!(
        "amqps://guest:guest@127.0.0.1:{port}/{}",
        vhost.name.replace('/', "%2F")
    );

    let logs = run_with(dir.path(), &["--broker", &url, "--no-lock"], false, 3);
    assert_eq!(
        queue_depth(&vhost.name, "celery"),
        0,
        "published over an untrusted TLS connection"
    );
    let text = logs.join("\n");
    assert!(
        text.to_lowercase().contains("certificate"),
        "the refusal names the certificate problem:\n{text}"
    );

    let logs = run_with(dir.path(), &["--broker", &url, "--no-lock"], true, 4);
    let n = queue_depth(&vhost.name, "celery");
    assert!(
        n >= 2,
        "expected runs over TLS, got {n}:\n{}",
        logs.join("\n")
    );
}
