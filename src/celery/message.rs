//! A Celery task message, protocol v2, as `celery beat` 5.7 sends it, and
//! kombu's Redis envelope around it.
//!
//! Headers carry the metadata (task name, id, expiry, time limits, reprs),
//! the body is `[args, kwargs, embed]` as JSON. We add `periodic_task_name`
//! (as django-celery-beat does) and `scheduled_at`, and a deterministic task
//! id for scheduled runs so consumers can de-duplicate.

use std::sync::Arc;

use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::entry::{Entry, Expires};

use super::repr::repr;

/// The queue Celery workers consume by default.
pub const DEFAULT_QUEUE: &str = "celery";

/// Namespace for scheduled-run task ids (UUIDv5 of the URL namespace and
/// `metronome`), fixed forever so ids stay stable across versions.
fn namespace() -> Uuid {
    static NS: std::sync::LazyLock<Uuid> =
        std::sync::LazyLock::new(|| Uuid::new_v5(&Uuid::NAMESPACE_URL, b"metronome"));
    *NS
}

/// The task id of a scheduled run: UUIDv5 over `"<entry>\n<scheduled>"`,
/// the time in RFC 3339 UTC. The same run always gets the same id, on any
/// instance.
pub fn task_id(entry: &str, scheduled: Timestamp) -> Uuid {
    use std::fmt::Write;
    let mut name = String::with_capacity(entry.len() + 32);
    name.push_str(entry);
    name.push('\n');
    let _ = write!(name, "{scheduled}");
    Uuid::new_v5(&namespace(), name.as_bytes())
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The queue to declare/push to.
    pub queue: String,
    /// `""` for the default exchange.
    pub exchange: String,
    pub routing_key: String,
}

/// Per-publisher facts that go into every message.
#[derive(Debug, Clone, Default)]
pub struct Publisher {
    /// Celery's `origin` header, `gen<pid>@<hostname>`.
    pub origin: String,
    /// Extra headers identifying the dispatcher (instance id, fencing).
    pub headers: Map<String, Json>,
}

impl Publisher {
    /// The `origin` Celery would send from this process.
    pub fn for_this_process() -> Publisher {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".into());
        Publisher {
            origin: format!("gen{}@{host}", std::process::id()),
            headers: Map::new(),
        }
    }
}

/// A task message ready for a transport.
///
/// Only what differs per run is computed when it is built; the headers and
/// the body are rendered from the entry when a transport asks for them
/// ([`Message::headers`], [`Message::body`]), and the Redis envelope is
/// written in one pass without building them ([`redis_envelope`]): a burst
/// of many runs pays a few hundred nanoseconds per message, not a JSON tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub task_id: Uuid,
    /// The entry the run belongs to (args, kwargs, options, names).
    pub entry: Arc<Entry>,
    /// The run's scheduled time; `None` for a run-now.
    pub scheduled: Option<Timestamp>,
    /// Celery's `origin` header.
    pub origin: String,
    /// The publisher's extra headers (instance id, fencing).
    pub extra_headers: Map<String, Json>,
    pub priority: u8,
    /// Absolute expiry, if any.
    pub expires: Option<Timestamp>,
    /// Milliseconds from publishing until expiry (AMQP `expiration`).
    pub expiration_ms: Option<u64>,
    pub route: Route,
    /// AMQP `reply_to` / envelope `reply_to`.
    pub reply_to: String,
}

/// Builds the message for one run of `entry`.
///
/// `scheduled` is the run's scheduled time (`None` for a manual run-now,
/// which gets a fresh random id); `now` is the publish time.
pub fn build(
    entry: &Arc<Entry>,
    scheduled: Option<Timestamp>,
    now: Timestamp,
    publisher: &Publisher,
) -> Message {
    let o = &entry.options;
    let task_id = match scheduled {
        Some(s) => task_id(&entry.name, s),
        None => Uuid::new_v4(),
    };
    let base = scheduled.unwrap_or(now);
    let expires = o.expires.map(|e| match e {
        Expires::After(d) => base.checked_add(d).unwrap_or(Timestamp::MAX),
        Expires::At(t) => t,
    });
    let expiration_ms = expires.map(|e| {
        let ms = now.duration_until(e).as_millis();
        ms.max(0) as u64
    });
    Message {
        task_id,
        entry: entry.clone(),
        scheduled,
        origin: publisher.origin.clone(),
        extra_headers: publisher.headers.clone(),
        priority: o.priority.unwrap_or(0),
        expires,
        expiration_ms,
        route: route(entry),
        reply_to: String::new(),
    }
}

/// The standard headers, in the order Celery sends them; the publisher's
/// and the entry's own headers follow.
const STANDARD_HEADERS: [&str; 22] = [
    "lang",
    "task",
    "id",
    "shadow",
    "eta",
    "expires",
    "group",
    "group_index",
    "retries",
    "timelimit",
    "root_id",
    "parent_id",
    "argsrepr",
    "kwargsrepr",
    "origin",
    "ignore_result",
    "replaced_task_nesting",
    "stamped_headers",
    "stamps",
    "celery_beat_task",
    "periodic_task_name",
    "scheduled_at",
];

impl Message {
    /// `expires` in the entry's zone, as Celery writes it.
    fn expires_text(&self) -> Option<String> {
        self.expires.map(|t| {
            t.to_zoned(self.entry.timezone.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
                .to_string()
        })
    }

    fn argsrepr(&self) -> String {
        if self.entry.args.is_empty() {
            return "[]".into();
        }
        repr(&Json::Array(self.entry.args.clone()))
    }

    fn kwargsrepr(&self) -> String {
        if self.entry.kwargs.is_empty() {
            return "{}".into();
        }
        repr(&Json::Object((*self.entry.kwargs).clone()))
    }

    /// The Celery protocol v2 headers.
    pub fn headers(&self) -> Map<String, Json> {
        let entry = &self.entry;
        let o = &entry.options;
        let id = self.task_id.to_string();
        let mut h = Map::new();
        h.insert("lang".into(), json!("py"));
        h.insert("task".into(), json!(entry.task));
        h.insert("id".into(), json!(id));
        h.insert("shadow".into(), Json::Null);
        h.insert("eta".into(), Json::Null);
        h.insert(
            "expires".into(),
            self.expires_text().map(Json::String).unwrap_or(Json::Null),
        );
        h.insert("group".into(), Json::Null);
        h.insert("group_index".into(), Json::Null);
        h.insert("retries".into(), json!(0));
        h.insert("timelimit".into(), json!([o.time_limit, o.soft_time_limit]));
        h.insert("root_id".into(), json!(id));
        h.insert("parent_id".into(), Json::Null);
        h.insert("argsrepr".into(), json!(self.argsrepr()));
        h.insert("kwargsrepr".into(), json!(self.kwargsrepr()));
        h.insert("origin".into(), json!(self.origin));
        h.insert("ignore_result".into(), Json::Null);
        h.insert("replaced_task_nesting".into(), json!(0));
        h.insert("stamped_headers".into(), Json::Null);
        h.insert("stamps".into(), json!({}));
        h.insert("celery_beat_task".into(), json!(true));
        h.insert("periodic_task_name".into(), json!(entry.name));
        h.insert(
            "scheduled_at".into(),
            self.scheduled
                .map(|s| json!(s.to_string()))
                .unwrap_or(Json::Null),
        );
        h.extend(
            self.extra_headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        h.extend(o.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        h
    }

    /// The JSON body `[args, kwargs, embed]`.
    pub fn body(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(96);
        write_body(&mut b, &self.entry);
        b
    }

    /// True if no extra header replaces a standard one and the publisher's
    /// and the entry's headers are disjoint: then the headers are the
    /// standard ones followed by both sets, and can be written directly.
    fn headers_are_plain(&self) -> bool {
        let own = &self.entry.options.headers;
        let standard = |k: &String| STANDARD_HEADERS.contains(&k.as_str());
        !self
            .extra_headers
            .keys()
            .any(|k| standard(k) || own.contains_key(k))
            && !own.keys().any(standard)
    }
}

fn write_body(b: &mut Vec<u8>, entry: &Entry) {
    b.push(b'[');
    serde_json::to_writer(&mut *b, &entry.args).expect("JSON values serialize");
    b.push(b',');
    serde_json::to_writer(&mut *b, &entry.kwargs).expect("JSON values serialize");
    b.extend_from_slice(br#",{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]"#);
}

/// Celery's routing for a message sent by name: exchange and routing key are
/// used only when both are set; otherwise the default exchange with the
/// queue name as routing key.
pub fn route(entry: &Entry) -> Route {
    let o = &entry.options;
    let queue = o
        .queue
        .clone()
        .filter(|q| !q.is_empty())
        .unwrap_or_else(|| DEFAULT_QUEUE.to_string());
    match (&o.exchange, &o.routing_key) {
        (Some(ex), Some(rk)) if !ex.is_empty() && !rk.is_empty() => Route {
            queue,
            exchange: ex.clone(),
            routing_key: rk.clone(),
        },
        _ => Route {
            routing_key: queue.clone(),
            queue,
            exchange: String::new(),
        },
    }
}

/// kombu's Redis list for `queue` at `priority`: priorities 0–2 use the
/// queue itself, 3–5, 6–8 and 9+ use `queue\x06\x163`, `…6`, `…9`.
pub fn redis_queue_key(queue: &str, priority: u8) -> String {
    match priority.min(9) {
        0..=2 => queue.to_string(),
        3..=5 => format!("{queue}\x06\x163"),
        6..=8 => format!("{queue}\x06\x166"),
        _ => format!("{queue}\x06\x169"),
    }
}

/// The JSON kombu's Redis transport stores in the list: the body base64
/// encoded, a fresh `delivery_tag`.
pub fn redis_envelope(m: &Message) -> String {
    String::from_utf8(redis_envelope_bytes(m)).expect("JSON is UTF-8")
}

/// [`redis_envelope`] as bytes, for transports that take bytes (no UTF-8
/// check of a string we wrote ourselves).
pub fn redis_envelope_bytes(m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    write_redis_envelope(m, &mut out);
    out
}

/// Appends [`redis_envelope`] to `out`: a burst encodes every envelope
/// into one reused buffer instead of allocating one per message.
pub fn write_redis_envelope(m: &Message, out: &mut Vec<u8>) {
    let mut tag = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let tag = delivery_tag().hyphenated().encode_lower(&mut tag);
    if m.headers_are_plain() {
        envelope_direct(m, tag, out)
    } else {
        out.extend_from_slice(envelope_serde(m, tag).as_bytes())
    }
}

/// A random (version 4) UUID for a delivery tag. Tags only need to be
/// unique, so they come from a per-thread SplitMix64 sequence seeded once
/// from the OS (a bijection of a counter: no repeat within a process),
/// not from a system call per message.
fn delivery_tag() -> Uuid {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(u64::from_le_bytes(
            Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes"),
        ));
    }
    fn next(s: &Cell<u64>) -> u64 {
        let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    STATE.with(|s| {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&next(s).to_le_bytes());
        b[8..].copy_from_slice(&next(s).to_le_bytes());
        uuid::Builder::from_random_bytes(b).into_uuid()
    })
}

/// The envelope through serde, from the rendered headers: the reference
/// form, used when extra headers replace standard ones.
fn envelope_serde(m: &Message, delivery_tag: &str) -> String {
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        body: String,
        #[serde(rename = "content-encoding")]
        content_encoding: &'static str,
        #[serde(rename = "content-type")]
        content_type: &'static str,
        headers: &'a Map<String, Json>,
        properties: Properties<'a>,
    }
    #[derive(serde::Serialize)]
    struct Properties<'a> {
        correlation_id: String,
        reply_to: &'a str,
        delivery_mode: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        expiration: Option<String>,
        delivery_info: DeliveryInfo<'a>,
        priority: u8,
        body_encoding: &'static str,
        delivery_tag: &'a str,
    }
    #[derive(serde::Serialize)]
    struct DeliveryInfo<'a> {
        exchange: &'a str,
        routing_key: &'a str,
    }
    let headers = m.headers();
    let env = Envelope {
        body: base64::engine::general_purpose::STANDARD.encode(m.body()),
        content_encoding: "utf-8",
        content_type: "application/json",
        headers: &headers,
        properties: Properties {
            correlation_id: m.task_id.to_string(),
            reply_to: &m.reply_to,
            delivery_mode: 2,
            expiration: m.expiration_ms.map(|ms| ms.to_string()),
            delivery_info: DeliveryInfo {
                exchange: &m.route.exchange,
                routing_key: &m.route.routing_key,
            },
            priority: m.priority,
            body_encoding: "base64",
            delivery_tag,
        },
    };
    serde_json::to_string(&env).expect("JSON values serialize")
}

/// The same bytes as [`envelope_serde`], written in one pass (no header
/// map, no intermediate strings but the body).
fn envelope_direct(m: &Message, delivery_tag: &str, out: &mut Vec<u8>) {
    use std::io::Write;
    let e = &m.entry;
    let o = &e.options;
    let mut id = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = m.task_id.hyphenated().encode_lower(&mut id);
    let mut body = Vec::with_capacity(96);
    write_body(&mut body, e);
    out.reserve(1024 + body.len() * 2);
    out.extend_from_slice(br#"{"body":""#);
    write_base64(out, &body);
    out.extend_from_slice(
        br#"","content-encoding":"utf-8","content-type":"application/json","headers":{"lang":"py","task":"#,
    );
    write_json_str(out, &e.task);
    out.extend_from_slice(br#","id":""#);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(br#"","shadow":null,"eta":null,"expires":"#);
    match m.expires_text() {
        Some(t) => write_json_str(out, &t),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(br#","group":null,"group_index":null,"retries":0,"timelimit":["#);
    write_json(out, &o.time_limit);
    out.push(b',');
    write_json(out, &o.soft_time_limit);
    out.extend_from_slice(br#"],"root_id":""#);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(br#"","parent_id":null,"argsrepr":"#);
    write_json_str(out, &m.argsrepr());
    out.extend_from_slice(br#","kwargsrepr":"#);
    write_json_str(out, &m.kwargsrepr());
    out.extend_from_slice(br#","origin":"#);
    write_json_str(out, &m.origin);
    out.extend_from_slice(
        br#","ignore_result":null,"replaced_task_nesting":0,"stamped_headers":null,"stamps":{},"celery_beat_task":true,"periodic_task_name":"#,
    );
    write_json_str(out, &e.name);
    out.extend_from_slice(br#","scheduled_at":"#);
    match m.scheduled {
        Some(t) => {
            let _ = write!(out, "\"{t}\"");
        }
        None => out.extend_from_slice(b"null"),
    }
    for (k, v) in m.extra_headers.iter().chain(o.headers.iter()) {
        out.push(b',');
        write_json_str(out, k);
        out.push(b':');
        write_json(out, v);
    }
    out.extend_from_slice(b"},");
    write_properties(m, id, delivery_tag, out);
}

/// The envelope's `"properties":{…}` (kombu's, for the Redis transport),
/// written as [`envelope_serde`] writes them; closes the envelope.
fn write_properties(m: &Message, id: &str, delivery_tag: &str, out: &mut Vec<u8>) {
    use std::io::Write;
    out.extend_from_slice(br#""properties":{"correlation_id":""#);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(br#"","reply_to":"#);
    write_json_str(out, &m.reply_to);
    out.extend_from_slice(br#","delivery_mode":2"#);
    if let Some(ms) = m.expiration_ms {
        let _ = write!(out, r#","expiration":"{ms}""#);
    }
    out.extend_from_slice(br#","delivery_info":{"exchange":"#);
    write_json_str(out, &m.route.exchange);
    out.extend_from_slice(br#","routing_key":"#);
    write_json_str(out, &m.route.routing_key);
    let _ = write!(
        out,
        r#"}},"priority":{},"body_encoding":"base64","delivery_tag":"{delivery_tag}"}}}}"#,
        m.priority
    );
}

/// `v` as a JSON string.
fn write_json_str(out: &mut Vec<u8>, v: &str) {
    serde_json::to_writer(&mut *out, v).expect("strings serialize");
}

/// `v` as JSON.
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(&mut *out, v).expect("JSON values serialize");
}

/// `bytes` in standard base64 (padded), encoded straight into `out`.
fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let at = out.len();
    out.resize(
        at + base64::encoded_len(bytes.len(), true).expect("small body"),
        0,
    );
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[at..])
        .expect("sized above");
    out.truncate(at + n);
}

/// Lateness of a publish: how long after the run was due it went out.
pub fn lateness(due: Timestamp, now: Timestamp) -> SignedDuration {
    due.duration_until(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Options;

    fn entry() -> Arc<Entry> {
        let mut e = crate::entry::tests::sample();
        e.name = "nightly".into();
        e.task = "tasks.add".into();
        e.args = vec![json!(2), json!(3)];
        e.kwargs.insert("z".into(), json!(1));
        e.options = Options {
            expires: Some(Expires::After(SignedDuration::from_secs(30))),
            ..Default::default()
        }
        .into();
        Arc::new(e)
    }

    #[test]
    fn task_ids_are_deterministic_per_run() {
        let t: Timestamp = "2026-03-08T07:00:00Z".parse().unwrap();
        assert_eq!(task_id("a", t), task_id("a", t));
        assert_ne!(task_id("a", t), task_id("b", t));
        assert_ne!(
            task_id("a", t),
            task_id("a", t.checked_add(SignedDuration::from_secs(1)).unwrap())
        );
        assert_eq!(task_id("a", t).get_version_num(), 5);
    }

    #[test]
    fn builds_celery_headers_and_body() {
        let s: Timestamp = "2026-11-21T18:38:35Z".parse().unwrap();
        let now = s.checked_add(SignedDuration::from_millis(5)).unwrap();
        let p = Publisher {
            origin: "gen1@h".into(),
            headers: Map::new(),
        };
        let m = build(&entry(), Some(s), now, &p);
        let h = &m.headers();
        assert_eq!(h["task"], "tasks.add");
        assert_eq!(h["id"], h["root_id"]);
        assert_eq!(h["argsrepr"], "[2, 3]");
        assert_eq!(h["kwargsrepr"], "{'z': 1}");
        assert_eq!(h["expires"], "2026-11-21T18:39:05+00:00");
        assert_eq!(h["timelimit"], json!([null, null]));
        assert_eq!(h["periodic_task_name"], "nightly");
        assert_eq!(h["scheduled_at"], "2026-11-21T18:38:35Z");
        assert_eq!(m.expiration_ms, Some(29_995));
        let body: Json = serde_json::from_slice(&m.body()).unwrap();
        assert_eq!(
            body,
            json!([[2, 3], {"z": 1}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}])
        );
        assert_eq!(
            m.route,
            Route {
                queue: "celery".into(),
                exchange: "".into(),
                routing_key: "celery".into()
            }
        );
    }

    #[test]
    fn envelope_matches_kombu() {
        let s: Timestamp = "2026-11-21T18:38:35Z".parse().unwrap();
        let m = build(&entry(), Some(s), s, &Publisher::default());
        let env: Json = serde_json::from_str(&redis_envelope(&m)).unwrap();
        assert_eq!(env["content-type"], "application/json");
        assert_eq!(env["properties"]["body_encoding"], "base64");
        assert_eq!(env["properties"]["delivery_info"]["routing_key"], "celery");
        assert_eq!(env["properties"]["expiration"], "30000");
        let body = base64::engine::general_purpose::STANDARD
            .decode(env["body"].as_str().unwrap())
            .unwrap();
        assert_eq!(body, m.body());
    }

    #[test]
    fn routing_and_priority_lists() {
        let mut e = (*entry()).clone();
        e.options.queue = Some("reports".into());
        e.options.routing_key = Some("rk".into());
        assert_eq!(
            route(&e).exchange,
            "",
            "routing_key alone is ignored, as in Celery"
        );
        e.options.exchange = Some("media".into());
        assert_eq!(
            route(&e),
            Route {
                queue: "reports".into(),
                exchange: "media".into(),
                routing_key: "rk".into()
            }
        );
        assert_eq!(redis_queue_key("q", 0), "q");
        assert_eq!(redis_queue_key("q", 2), "q");
        assert_eq!(redis_queue_key("q", 3), "q\x06\x163");
        assert_eq!(redis_queue_key("q", 8), "q\x06\x166");
        assert_eq!(redis_queue_key("q", 200), "q\x06\x169");
    }

    #[test]
    fn run_now_gets_a_random_id() {
        let now: Timestamp = "2026-11-21T18:38:35Z".parse().unwrap();
        let a = build(&entry(), None, now, &Publisher::default());
        let b = build(&entry(), None, now, &Publisher::default());
        assert_ne!(a.task_id, b.task_id);
        assert_eq!(a.task_id.get_version_num(), 4);
        assert_eq!(a.headers()["scheduled_at"], Json::Null);
    }

    /// The one-pass envelope is byte for byte the serde one, whatever the
    /// entry carries; overlapping headers take the serde path.
    #[test]
    fn direct_envelope_equals_serde_envelope() {
        let s: Timestamp = "2026-11-21T18:38:35.25Z".parse().unwrap();
        let mut p = Publisher {
            origin: "gen1@h\"x".into(),
            headers: Map::new(),
        };
        let mut variants: Vec<Entry> = Vec::new();
        let mut e = (*entry()).clone();
        variants.push(e.clone());
        e.args = vec![];
        e.kwargs = Map::new().into();
        e.options.expires = None;
        variants.push(e.clone());
        e.name = "ünï\"code\n".into();
        e.task = "a\\b".into();
        e.args = vec![json!("x'y"), json!(1.5), json!(null), json!({"k": [1, 2]})];
        e.kwargs.insert("b".into(), json!(false));
        e.kwargs.insert("a".into(), json!("é"));
        e.options.expires = Some(Expires::At("2027-01-01T00:00:00Z".parse().unwrap()));
        e.options.time_limit = Some(30.0);
        e.options.soft_time_limit = Some(12.5);
        e.options.priority = Some(7);
        e.options.queue = Some("q\u{1}".into());
        e.options.exchange = Some("ex".into());
        e.options.routing_key = Some("rk".into());
        e.timezone = jiff::tz::TimeZone::get("Asia/Kolkata").unwrap();
        e.options.headers.insert("x-own".into(), json!({"n": 1}));
        variants.push(e.clone());
        for (i, e) in variants.into_iter().enumerate() {
            let e = Arc::new(e);
            for extra in [false, true] {
                p.headers.clear();
                if extra {
                    p.headers.insert("metronome_instance".into(), json!("tok"));
                    p.headers.insert("metronome_fence".into(), json!(42));
                }
                for sched in [Some(s), None] {
                    let m = build(&e, sched, s, &p);
                    assert!(m.headers_are_plain());
                    assert_eq!(
                        {
                            let mut out = b"prefix".to_vec();
                            envelope_direct(&m, "tag", &mut out);
                            String::from_utf8(out).unwrap().split_off(6)
                        },
                        envelope_serde(&m, "tag"),
                        "variant {i}, extra {extra}, scheduled {sched:?}"
                    );
                }
            }
        }
        // A header replacing a standard one keeps its place (serde path).
        let mut e = (*entry()).clone();
        e.options.headers.insert("task".into(), json!("other"));
        let m = build(&Arc::new(e), Some(s), s, &p);
        assert!(!m.headers_are_plain());
        let env: Json = serde_json::from_str(&redis_envelope(&m)).unwrap();
        assert_eq!(env["headers"]["task"], "other");
        assert_eq!(
            env["headers"].as_object().unwrap().keys().nth(1).unwrap(),
            "task"
        );
    }

    #[test]
    fn empty_reprs() {
        assert_eq!(repr(&json!([])), "[]");
        assert_eq!(repr(&json!({})), "{}");
    }

    #[test]
    fn delivery_tags_are_distinct_v4() {
        let a = delivery_tag();
        let b = delivery_tag();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
    }
}
