//! RabbitMQ for tests: the server's URL (`METRONOME_TEST_AMQP`, default
//! `amqp://guest:guest@127.0.0.1:5672`), `rabbitmqctl`, and a vhost made
//! per test. Invariant: a test's vhost is deleted when dropped, so tests
//! never see each other's queues.

use std::process::Command;

use super::process::run_ok;
use super::unique;

pub fn amqp_base() -> String {
    std::env::var("METRONOME_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672".into())
}

/// Runs `rabbitmqctl args`, which must succeed; returns its stdout.
pub fn rabbitmqctl(args: &[&str]) -> String {
    run_ok(Command::new("rabbitmqctl").args(args))
}

/// A RabbitMQ vhost made for one test (its name contains a `/`, to check
/// URL decoding), deleted on drop.
pub struct Vhost {
    pub name: String,
}

impl Vhost {
    pub fn new(what: &str) -> Vhost {
        let name = format!("metronome/{}", unique(what));
        rabbitmqctl(&["add_vhost", &name]);
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        Vhost { name }
    }

    /// The vhost's name as it stands in a URL path.
    pub fn encoded(&self) -> String {
        self.name.replace('/', "%2F")
    }

    /// The broker URL for this vhost, with `query` appended if not empty.
    pub fn url(&self, query: &str) -> String {
        let enc = self.encoded();
        if query.is_empty() {
            format!("{}/{enc}", amqp_base())
        } else {
            format!("{}/{enc}?{query}", amqp_base())
        }
    }

    /// Column `column` of `queue` as `rabbitmqctl list_queues` shows it
    /// (`None` while the queue does not exist).
    fn queue_column(&self, queue: &str, column: &str) -> Option<serde_json::Value> {
        let out = Command::new("rabbitmqctl")
            .args(["list_queues", "-p", &self.name, "name", column])
            .args(["--formatter", "json"])
            .output()
            .expect("rabbitmqctl runs");
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        rows.as_array()?
            .iter()
            .find(|r| r["name"] == queue)
            .map(|r| r[column].clone())
    }

    /// Messages waiting in `queue` (0 if it does not exist).
    pub fn queue_depth(&self, queue: &str) -> usize {
        self.queue_column(queue, "messages")
            .and_then(|m| m.as_u64())
            .unwrap_or(0) as usize
    }

    /// The arguments `queue` was declared with, as a JSON object of name →
    /// value (`None` while the queue does not exist).
    pub fn queue_arguments(&self, queue: &str) -> Option<serde_json::Value> {
        self.queue_column(queue, "arguments").map(|a| {
            // rabbitmqctl lists them as [name, type, value] triples.
            let pairs = a.as_array().cloned().unwrap_or_default();
            pairs
                .iter()
                .filter_map(|t| Some((t[0].as_str()?.to_string(), t[2].clone())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        })
    }

    /// Waits until `queue` exists; returns its arguments.
    pub fn wait_queue(&self, queue: &str) -> serde_json::Value {
        let start = std::time::Instant::now();
        loop {
            if let Some(a) = self.queue_arguments(queue) {
                return a;
            }
            assert!(
                start.elapsed() < super::PATIENCE,
                "queue {queue} never appeared in {}",
                self.name
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// Closes every connection to this vhost from the server side, as a
    /// broker restart or a network cut would; at least one must exist.
    pub fn close_connections(&self) {
        let text = rabbitmqctl(&[
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "vhost",
        ]);
        let mut closed = 0;
        for line in text.lines() {
            if let Some((pid, vhost)) = line.split_once('\t')
                && vhost.trim() == self.name
            {
                rabbitmqctl(&["close_connection", pid.trim(), "metronome test cut"]);
                closed += 1;
            }
        }
        assert!(
            closed > 0,
            "no connection to {} found in:\n{text}",
            self.name
        );
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.name])
            .output();
    }
}

/// The headers of every message in `queue` at `url`, as JSON, taking them
/// off the queue (strings, integers, booleans and null; other types as
/// their debug text).
pub async fn drain_headers(url: &str, queue: &str) -> Vec<serde_json::Value> {
    use lapin::options::BasicGetOptions;
    use lapin::types::AMQPValue;
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .expect("connect to RabbitMQ");
    let ch = conn.create_channel().await.unwrap();
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let mut h = serde_json::Map::new();
        if let Some(t) = m.delivery.properties.headers() {
            for (k, v) in t.inner() {
                let j = match v {
                    AMQPValue::LongString(s) => {
                        String::from_utf8_lossy(s.as_bytes()).into_owned().into()
                    }
                    AMQPValue::ShortString(s) => s.as_str().into(),
                    AMQPValue::LongInt(i) => (*i).into(),
                    AMQPValue::LongLongInt(i) => (*i).into(),
                    AMQPValue::Boolean(b) => (*b).into(),
                    AMQPValue::Void => serde_json::Value::Null,
                    other => format!("{other:?}").into(),
                };
                h.insert(k.to_string(), j);
            }
        }
        out.push(h.into());
    }
    let _ = conn.close(0, "done".into()).await;
    out
}
