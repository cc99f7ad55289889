//! TLS: `rediss://` for the broker and the lease against a TLS-only
//! redis-server, and `amqps://` through a TLS terminator (socat) in front of
//! the local RabbitMQ, both with a certificate authority the test makes
//! itself (openssl). The CA is trusted through `SSL_CERT_FILE`, as an
//! operator would do; without it the server's certificate must be refused.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::amqp::Vhost;
use crate::util::port::{free_port, wait_listening};
use crate::util::process::{Guard, Metronome, metronome, run_ok, write_file};
use crate::util::redis::RedisServer;
use crate::util::{ci, unique};

fn sh(dir: &Path, args: &[&str]) {
    run_ok(Command::new(args[0]).args(&args[1..]).current_dir(dir));
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
    let sched = write_file(
        dir,
        "s.yaml",
        "schedules:\n  tick:\n    task: app.tick\n    every: 1s\n",
    );
    let mut cmd = metronome();
    cmd.arg("run").arg("--schedule").arg(&sched).args(args);
    cmd.args(["--http", "off", "--log-format", "json", "--state-file"]);
    cmd.arg(dir.join(format!("state-{}.json", unique("s"))));
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    if trust_ca {
        cmd.env("SSL_CERT_FILE", dir.join("ca.crt"));
    } else {
        // An empty trust store: the server's certificate must be refused.
        let empty = write_file(dir, "empty.pem", "");
        cmd.env("SSL_CERT_FILE", empty);
    }
    let mut m = Metronome::spawn(cmd);
    std::thread::sleep(Duration::from_secs(secs));
    m.terminate();
    m.logs().lines().map(String::from).collect()
}

fn list(dir: &Path, port: u16) -> Vec<String> {
    let out = run_ok(
        Command::new("redis-cli")
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
            .current_dir(dir),
    );
    out.lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn rediss_broker_and_lease_verify_the_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let server = RedisServer::tls(dir.path());
    let port = server.port;

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

#[test]
fn amqps_verifies_the_server_certificate() {
    if Command::new("socat").arg("-V").output().is_err() {
        assert!(!ci(), "socat is required in CI (.ci/run installs it)");
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
    let _proxy = Guard::spawn(
        Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert=server.pem,verify=0"
            ))
            .arg("TCP:127.0.0.1:5672")
            .current_dir(dir.path()),
        "socat",
    );
    wait_listening(port, "the TLS proxy");
    let vhost = Vhost::new("amqps");
    let url = format!("amqps://guest:guest@127.0.0.1:{port}/{}", vhost.encoded());

    let logs = run_with(dir.path(), &["--broker", &url, "--no-lock"], false, 3);
    assert_eq!(
        vhost.queue_depth("celery"),
        0,
        "published over an untrusted TLS connection"
    );
    let text = logs.join("\n");
    assert!(
        text.to_lowercase().contains("certificate"),
        "the refusal names the certificate problem:\n{text}"
    );

    let logs = run_with(dir.path(), &["--broker", &url, "--no-lock"], true, 4);
    let n = vhost.queue_depth("celery");
    assert!(
        n >= 2,
        "expected runs over TLS, got {n}:\n{}",
        logs.join("\n")
    );
}
