//! End-to-end over RabbitMQ: metronome publishes with confirms, an
//! unmodified Celery 5.x worker (py-amqp) executes. Each test works in a
//! vhost of its own (whose name contains `/`, so the URL decoding is
//! exercised by both sides). Also the declaration modes and their errors.

use jiff::Timestamp;
use metronome::broker::PublishError;

use crate::util::amqp::Vhost;
use crate::util::celery::{
    Target, entries, message, scenario_binary_exactly_once, scenario_expired, scenario_priorities,
    scenario_roundtrip,
};
use crate::util::port::free_port;

fn target(vh: &Vhost, query: &str, max_priority: Option<u8>) -> Target {
    Target {
        url: vh.url(query),
        worker_url: vh.url(""),
        key_prefix: None,
        max_priority,
    }
}

#[tokio::test]
async fn roundtrip_args_kwargs_headers_and_second_queue() {
    let vh = Vhost::new("rt");
    scenario_roundtrip(&target(&vh, "", None)).await;
}

#[tokio::test]
async fn priorities_with_x_max_priority() {
    // On RabbitMQ higher numbers are served first.
    let vh = Vhost::new("prio");
    scenario_priorities(
        &target(&vh, "x-max-priority=10", Some(10)),
        &[1, 9, 5, 0],
        &[9, 5, 1, 0],
    )
    .await;
}

#[tokio::test]
async fn expired_run_is_discarded() {
    let vh = Vhost::new("exp");
    scenario_expired(&target(&vh, "", None)).await;
}

#[tokio::test]
async fn binary_runs_each_scheduled_time_once() {
    let vh = Vhost::new("bin");
    scenario_binary_exactly_once(&target(&vh, "", None), None).await;
}

fn msg_to(queue: &str) -> metronome::celery::message::Message {
    let es = entries(&format!(
        "schedules:\n  a:\n    task: tasks.record\n    every: 1h\n    options: {{queue: {queue}}}\n"
    ));
    message(&es, "a", Timestamp::now())
}

fn unavailable(r: &Result<(), PublishError>) -> &str {
    match r {
        Err(PublishError::Unavailable(e)) => e,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// An unmodified worker with `task_queue_max_priority=10` declares
/// `celery` with `x-max-priority=10`; metronome with a plain `amqp://` URL
/// uses the queue as it is (no 406, no option set): every run reaches the
/// queue, its arguments stay the worker's, and a worker started after the
/// runs were queued executes them highest priority first.
#[tokio::test]
async fn queue_made_by_a_priority_worker_is_used_as_it_is() {
    let vh = Vhost::new("asis");
    let Some(celery) = crate::util::python::celery() else {
        return;
    };
    let first = target(&vh, "", Some(10)).worker(&celery, "celery", &crate::util::unique("w0"));
    let args = vh.wait_queue("celery");
    assert_eq!(args["x-max-priority"], 10, "{args}");
    drop(first);
    scenario_priorities(&target(&vh, "", Some(10)), &[1, 9, 5, 0], &[9, 5, 1, 0]).await;
    let after = vh.queue_arguments("celery").unwrap();
    assert_eq!(after, args, "metronome changed the workers' queue");
}

/// A quorum queue (as workers with `task_default_queue_type="quorum"`
/// make it) is used as it is by a plain URL; a missing queue is declared
/// with the configured arguments.
#[tokio::test]
async fn quorum_queue_used_as_it_is_and_missing_queue_declared() {
    let vh = Vhost::new("quorum");
    let mut quorum = metronome::broker::connect(&vh.url("x-queue-type=quorum"), None)
        .await
        .unwrap();
    assert_eq!(quorum.publish(&[msg_to("qq")]).await, vec![Ok(())]);
    assert_eq!(vh.queue_arguments("qq").unwrap()["x-queue-type"], "quorum");
    let mut plain = metronome::broker::connect(&vh.url(""), None).await.unwrap();
    let r = plain
        .publish(&[msg_to("qq"), msg_to("fresh"), msg_to("qq")])
        .await;
    assert_eq!(r, vec![Ok(()), Ok(()), Ok(())]);
    // Queue statistics lag behind the confirms; wait for them.
    let start = std::time::Instant::now();
    while (vh.queue_depth("qq"), vh.queue_depth("fresh")) != (3, 1) {
        assert!(start.elapsed() < crate::util::PATIENCE, "runs missing");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let mut prio = metronome::broker::connect(&vh.url("x-max-priority=7"), None)
        .await
        .unwrap();
    assert_eq!(prio.publish(&[msg_to("made")]).await, vec![Ok(())]);
    assert_eq!(vh.queue_arguments("made").unwrap()["x-max-priority"], 7);
}

/// With `queue_declare=declare`, a queue declared with x-max-priority (as
/// by workers with task_queue_max_priority) makes a plain declaration fail
/// with a 406; the error names the mismatch and the options, the channel
/// recovers for the rest of the batch, and `queue_declare=passive`
/// publishes fine.
#[tokio::test]
async fn declaration_mismatch_is_reported_and_passive_works() {
    let vh = Vhost::new("decl");
    let mut prio = metronome::broker::connect(&vh.url("x-max-priority=10"), None)
        .await
        .unwrap();
    assert_eq!(prio.publish(&[msg_to("celery")]).await, vec![Ok(())]);

    let mut plain = metronome::broker::connect(&vh.url("queue_declare=declare"), None)
        .await
        .unwrap();
    let r = plain.publish(&[msg_to("celery"), msg_to("other")]).await;
    let e = unavailable(&r[0]);
    assert!(e.contains("x-max-priority"), "{e}");
    assert!(e.contains("406") || e.contains("PRECONDITION"), "{e}");
    assert!(e.contains("queue_declare=passive"), "{e}");
    assert_eq!(r[1], Ok(()), "the channel is reopened after a 406");

    let mut passive = metronome::broker::connect(&vh.url("queue_declare=passive"), None)
        .await
        .unwrap();
    assert_eq!(passive.publish(&[msg_to("celery")]).await, vec![Ok(())]);
    let r = passive.publish(&[msg_to("missing")]).await;
    let e = unavailable(&r[0]);
    assert!(e.contains("does not exist"), "{e}");
}

/// With `queue_declare=none` a message no queue receives comes back from
/// RabbitMQ and is reported, not lost silently; a named exchange that does
/// not exist is reported too.
#[tokio::test]
async fn unroutable_and_missing_exchange_are_errors() {
    let vh = Vhost::new("route");
    let mut none = metronome::broker::connect(&vh.url("queue_declare=none"), None)
        .await
        .unwrap();
    let r = none.publish(&[msg_to("nowhere")]).await;
    let e = unavailable(&r[0]);
    assert!(e.contains("unroutable"), "{e}");

    let es = entries(
        "schedules:\n  a:\n    task: tasks.record\n    every: 1h\n    options: {queue: q, exchange: nosuch, routing_key: k}\n",
    );
    let m = message(&es, "a", Timestamp::now());
    let mut b = metronome::broker::connect(&vh.url(""), None).await.unwrap();
    let r = b.publish(&[m, msg_to("celery")]).await;
    let e = unavailable(&r[0]);
    assert!(e.contains("nosuch") && e.contains("does not exist"), "{e}");
    assert_eq!(r[1], Ok(()));
}

/// An unreachable RabbitMQ is Unavailable, with the password masked.
#[tokio::test]
async fn refused_connection_is_unavailable() {
    let port = free_port();
    let url = format!("amqp://guest:hunter2@127.0.0.1:{port}//");
    let mut b = metronome::broker::connect(&url, None).await.unwrap();
    let r = b.publish(&[msg_to("celery")]).await;
    let e = unavailable(&r[0]);
    assert!(!e.contains("hunter2"), "{e}");
}

/// RabbitMQ closes metronome's connection while `metronome run` dispatches
/// every second: it reconnects, and each scheduled time still executes
/// exactly once.
#[tokio::test]
async fn binary_reconnects_after_connection_loss() {
    let vh = Vhost::new("cut");
    let cut = || vh.close_connections();
    if let Some(m) = scenario_binary_exactly_once(&target(&vh, "", None), Some(&cut)).await {
        let log = m.logs();
        assert!(
            log.contains("AMQP connection lost; reconnecting"),
            "no reconnect seen:\n{log}"
        );
    }
}
