"""Celery app for metronome's end-to-end tests.

An unmodified Celery 5.x worker runs these tasks; each records what it
received (args, kwargs, task id, message headers, delivery queue) as one JSON
line pushed to a Redis list, so the Rust tests can compare it with what
metronome published.

Configured through the environment:
  METRONOME_TEST_BROKER       broker URL the worker consumes from
  METRONOME_TEST_RECORD_URL   Redis URL of the record list
  METRONOME_TEST_RECORD_KEY   the record list's key
  METRONOME_TEST_MAX_PRIORITY task_queue_max_priority (optional)
  METRONOME_TEST_KEYPREFIX    kombu global_keyprefix for Redis (optional)
"""

import json
import os

import redis
from celery import Celery

env = os.environ
app = Celery("metronome_tests", broker=env["METRONOME_TEST_BROKER"])
transport = {}
if env.get("METRONOME_TEST_KEYPREFIX"):
    transport["global_keyprefix"] = env["METRONOME_TEST_KEYPREFIX"]
app.conf.update(
    broker_transport_options=transport,
    broker_connection_retry_on_startup=True,
    worker_prefetch_multiplier=1,
    worker_enable_remote_control=False,
    task_queue_max_priority=(
        int(env["METRONOME_TEST_MAX_PRIORITY"])
        if env.get("METRONOME_TEST_MAX_PRIORITY")
        else None
    ),
)

_record = redis.Redis.from_url(env.get("METRONOME_TEST_RECORD_URL", "redis://127.0.0.1:6379/0"))
_key = env.get("METRONOME_TEST_RECORD_KEY", "metronome-test-records")

HEADERS = (
    "periodic_task_name",
    "scheduled_at",
    "celery_beat_task",
    "expires",
    "timelimit",
    "origin",
    "argsrepr",
    "kwargsrepr",
    "root_id",
    "tenant",
)


@app.task(bind=True, name="tasks.record")
def record(self, *args, **kwargs):
    req = self.request
    info = req.delivery_info or {}
    row = {
        "id": req.id,
        "task": self.name,
        "args": list(args),
        "kwargs": kwargs,
        "queue": info.get("routing_key"),
        "exchange": info.get("exchange"),
        "priority": info.get("priority"),
        "headers": {h: getattr(req, h, None) for h in HEADERS},
    }
    _record.rpush(_key, json.dumps(row, default=str))
