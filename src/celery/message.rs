//! A Celery task message, protocol v2, as `celery beat` 5.7 sends it, and
//! kombu's Redis envelope around it.
//!
//! Headers carry the metadata (task name, id, expiry, time limits, reprs),
//! the body is `[args, kwargs, embed]` as JSON. We add `periodic_task_name`
//! (as django-celery-beat does) and `scheduled_at`, and a deterministic task
//! id for scheduled runs so consumers can de-duplicate.

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
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"metronome")
}

/// The task id of a scheduled run: UUIDv5 over `"<entry>\n<scheduled>"`,
/// the time in RFC 3339 UTC. The same run always gets the same id, on any
/// instance.
pub fn task_id(entry: &str, scheduled: Timestamp) -> Uuid {
    let name = format!("{entry}\n{scheduled}");
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
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub task_id: Uuid,
    pub headers: Map<String, Json>,
    /// The JSON body `[args, kwargs, embed]`.
    pub body: Vec<u8>,
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
    entry: &Entry,
    scheduled: Option<Timestamp>,
    now: Timestamp,
    publisher: &Publisher,
) -> Message {
    let o = &entry.options;
    let task_id = match scheduled {
        Some(s) => task_id(&entry.name, s),
        None => Uuid::new_v4(),
    };
    let id = task_id.to_string();
    let base = scheduled.unwrap_or(now);
    let expires = o.expires.map(|e| match e {
        Expires::After(d) => base.checked_add(d).unwrap_or(Timestamp::MAX),
        Expires::At(t) => t,
    });
    let expiration_ms = expires.map(|e| {
        let ms = now.duration_until(e).as_millis();
        ms.max(0) as u64
    });
    let zoned = |t: Timestamp| {
        t.to_zoned(entry.timezone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%.f%:z")
            .to_string()
    };
    let args = Json::Array(entry.args.clone());
    let kwargs = Json::Object(entry.kwargs.clone());
    let mut h = Map::new();
    h.insert("lang".into(), json!("py"));
    h.insert("task".into(), json!(entry.task));
    h.insert("id".into(), json!(id));
    h.insert("shadow".into(), Json::Null);
    h.insert("eta".into(), Json::Null);
    h.insert(
        "expires".into(),
        expires.map(|e| json!(zoned(e))).unwrap_or(Json::Null),
    );
    h.insert("group".into(), Json::Null);
    h.insert("group_index".into(), Json::Null);
    h.insert("retries".into(), json!(0));
    h.insert("timelimit".into(), json!([o.time_limit, o.soft_time_limit]));
    h.insert("root_id".into(), json!(id));
    h.insert("parent_id".into(), Json::Null);
    h.insert("argsrepr".into(), json!(repr(&args)));
    h.insert("kwargsrepr".into(), json!(repr(&kwargs)));
    h.insert("origin".into(), json!(publisher.origin));
    h.insert("ignore_result".into(), Json::Null);
    h.insert("replaced_task_nesting".into(), json!(0));
    h.insert("stamped_headers".into(), Json::Null);
    h.insert("stamps".into(), json!({}));
    h.insert("celery_beat_task".into(), json!(true));
    h.insert("periodic_task_name".into(), json!(entry.name));
    h.insert(
        "scheduled_at".into(),
        scheduled
            .map(|s| json!(s.to_string()))
            .unwrap_or(Json::Null),
    );
    h.extend(
        publisher
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    h.extend(o.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    let body =
        json!([args, kwargs, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]);
    Message {
        task_id,
        headers: h,
        body: serde_json::to_vec(&body).expect("JSON values serialize"),
        priority: o.priority.unwrap_or(0),
        expires,
        expiration_ms,
        route: route(entry),
        reply_to: String::new(),
    }
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
    // Serialized from borrowed fields (no copy of the headers): this runs
    // once per message in a burst.
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
        delivery_tag: String,
    }
    #[derive(serde::Serialize)]
    struct DeliveryInfo<'a> {
        exchange: &'a str,
        routing_key: &'a str,
    }
    let env = Envelope {
        body: base64::engine::general_purpose::STANDARD.encode(&m.body),
        content_encoding: "utf-8",
        content_type: "application/json",
        headers: &m.headers,
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
            delivery_tag: Uuid::new_v4().to_string(),
        },
    };
    serde_json::to_string(&env).expect("JSON values serialize")
}

/// Lateness of a publish: how long after the run was due it went out.
pub fn lateness(due: Timestamp, now: Timestamp) -> SignedDuration {
    due.duration_until(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Options;

    fn entry() -> Entry {
        let mut e = crate::entry::tests::sample();
        e.name = "nightly".into();
        e.task = "tasks.add".into();
        e.args = vec![json!(2), json!(3)];
        e.kwargs.insert("z".into(), json!(1));
        e.options = Options {
            expires: Some(Expires::After(SignedDuration::from_secs(30))),
            ..Default::default()
        };
        e
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
        let h = &m.headers;
        assert_eq!(h["task"], "tasks.add");
        assert_eq!(h["id"], h["root_id"]);
        assert_eq!(h["argsrepr"], "[2, 3]");
        assert_eq!(h["kwargsrepr"], "{'z': 1}");
        assert_eq!(h["expires"], "2026-11-21T18:39:05+00:00");
        assert_eq!(h["timelimit"], json!([null, null]));
        assert_eq!(h["periodic_task_name"], "nightly");
        assert_eq!(h["scheduled_at"], "2026-11-21T18:38:35Z");
        assert_eq!(m.expiration_ms, Some(29_995));
        let body: Json = serde_json::from_slice(&m.body).unwrap();
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
        assert_eq!(body, m.body);
    }

    #[test]
    fn routing_and_priority_lists() {
        let mut e = entry();
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
        assert_eq!(a.headers["scheduled_at"], Json::Null);
    }
}
