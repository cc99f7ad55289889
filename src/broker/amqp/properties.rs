//! A Celery task message in AMQP terms: the basic properties Celery sets
//! ([`properties`]) and its headers as a field table typed as py-amqp
//! encodes them ([`field_table`]).
//!
//! Owns the JSON-to-AMQP value mapping.
//!
//! Invariant: pure; a worker decodes the headers to the same JSON values
//! Celery's own publisher would have sent.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use serde_json::{Map, Value as Json};

use crate::celery::message::Message;

/// Celery's headers as an AMQP field table, typed as py-amqp encodes them:
/// strings as long strings, null as void, lists as arrays, objects as
/// tables, booleans, integers as signed 32-bit (64-bit when larger), floats
/// as doubles.
pub fn field_table(map: &Map<String, Json>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in map {
        t.insert(ShortString::from(k.as_str()), amqp_value(v));
    }
    t
}

fn amqp_value(v: &Json) -> AMQPValue {
    match v {
        Json::Null => AMQPValue::Void,
        Json::Bool(b) => AMQPValue::Boolean(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                match i32::try_from(i) {
                    Ok(i) => AMQPValue::LongInt(i),
                    Err(_) => AMQPValue::LongLongInt(i),
                }
            } else {
                // u64 beyond i64, or a float.
                AMQPValue::Double(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Json::Array(a) => AMQPValue::FieldArray(FieldArray::from(
            a.iter().map(amqp_value).collect::<Vec<_>>(),
        )),
        Json::Object(o) => AMQPValue::FieldTable(field_table(o)),
    }
}

/// The AMQP properties Celery sets on a task message.
pub fn properties(m: &Message) -> BasicProperties {
    let mut p = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_delivery_mode(2)
        .with_priority(m.priority)
        .with_correlation_id(m.task_id.to_string().into())
        .with_headers(field_table(&m.headers()));
    if !m.reply_to.is_empty() {
        p = p.with_reply_to(m.reply_to.as_str().into());
    }
    if let Some(ms) = m.expiration_ms {
        p = p.with_expiration(ms.to_string().into());
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn headers_are_typed_like_py_amqp() {
        let h = json!({
            "task": "t", "eta": null, "retries": 0, "big": 5_000_000_000_i64,
            "f": 1.5, "ok": true, "timelimit": [null, 30], "stamps": {"a": "b"}
        });
        let t = field_table(h.as_object().unwrap());
        let get = |k: &str| t.inner().get(&ShortString::from(k)).unwrap().clone();
        assert_eq!(get("task"), AMQPValue::LongString("t".into()));
        assert_eq!(get("eta"), AMQPValue::Void);
        assert_eq!(get("retries"), AMQPValue::LongInt(0));
        assert_eq!(get("big"), AMQPValue::LongLongInt(5_000_000_000));
        assert_eq!(get("f"), AMQPValue::Double(1.5));
        assert_eq!(get("ok"), AMQPValue::Boolean(true));
        assert_eq!(
            get("timelimit"),
            AMQPValue::FieldArray(vec![AMQPValue::Void, AMQPValue::LongInt(30)].into())
        );
        let AMQPValue::FieldTable(st) = get("stamps") else {
            panic!("stamps is a table")
        };
        assert_eq!(
            st.inner().get(&ShortString::from("a")),
            Some(&AMQPValue::LongString("b".into()))
        );
    }
}
