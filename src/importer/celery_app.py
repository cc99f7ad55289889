"""Introspects a Celery app for `metronome import celery` (embedded in the binary).

Run by the user's Python as `python - MODULE[:ATTR]` with the working
directory on sys.path; finds the app the way `celery -A` does, and prints
one JSON object on stdout: the beat schedule (every key of every entry), the
time zone, task_routes in every form Celery accepts, the task_default_*
settings, and, per entry, what `app.amqp.router.route()` gives for it. It
judges nothing: metronome decides what converts and what does not.
"""
import datetime
import json
import os
import re
import sys


def find_app(spec):
    from celery.app.utils import find_app as celery_find_app

    return celery_find_app(spec)


def jsonable(v):
    """A JSON value for v; values JSON cannot carry become a marker."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {k: jsonable(x) for k, x in v.items()}
        return {"__python__": repr(v), "__type__": "dict with non-string keys"}
    if isinstance(v, datetime.datetime):
        return {"__datetime__": v.isoformat(), "__aware__": v.tzinfo is not None}
    if isinstance(v, datetime.timedelta):
        return {"__timedelta__": v.total_seconds()}
    return {"__python__": repr(v), "__type__": type(v).__module__ + "." + type(v).__qualname__}


def cronspec(v):
    """A crontab field as given (`_orig_*`): int and str verbatim, iterables as lists."""
    if isinstance(v, (int, str)):
        return v
    try:
        items = list(v)
    except TypeError:
        return jsonable(v)
    if isinstance(v, (set, frozenset)):
        items = sorted(items)
    return [jsonable(x) for x in items]


def zone_name(tz):
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if key:
        return str(key)
    if tz is datetime.timezone.utc:
        return "UTC"
    return None


def describe_schedule(s):
    from celery import schedules

    cls = type(s)
    name = cls.__module__ + "." + cls.__qualname__
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        return {"type": "interval", "seconds": float(s), "relative": False}
    if isinstance(s, datetime.timedelta):
        return {"type": "interval", "seconds": s.total_seconds(), "relative": False}
    if cls is schedules.schedule:
        out = {"type": "interval", "seconds": s.run_every.total_seconds(), "relative": bool(s.relative)}
        if s.nowfun is not None:
            out["nowfun"] = repr(s.nowfun)
        return out
    if isinstance(s, schedules.crontab):
        out = {"type": "crontab", "class": name}
        for f in ("minute", "hour", "day_of_week", "day_of_month", "month_of_year"):
            out[f] = cronspec(getattr(s, "_orig_" + f))
        if cls is not schedules.crontab:
            # django-celery-beat's TzAwareCrontab carries its own zone.
            tz = getattr(s, "tz", None)
            out["timezone"] = zone_name(tz) if tz is not None else None
        if s.nowfun is not None and cls is schedules.crontab:
            out["nowfun"] = repr(s.nowfun)
        return out
    if cls is schedules.solar:
        return {"type": "solar", "event": s.event, "latitude": float(s.lat), "longitude": float(s.lon)}
    if cls.__name__ == "clocked" and hasattr(s, "clocked_time"):
        return {"type": "clocked", "at": jsonable(s.clocked_time)}
    return {"type": "unsupported", "class": name}


def routers(app):
    """task_routes as a list of routers, each its (key, value) pairs or why it can't be read."""
    from collections.abc import Mapping

    routes = app.conf.task_routes
    if routes is None:
        return []
    if not isinstance(routes, (list, tuple)):
        routes = (routes,)
    out = []
    for i, r in enumerate(routes):
        if isinstance(r, Mapping):
            pairs = list(r.items())
        elif isinstance(r, (list, tuple)):
            pairs = list(r)
        else:
            kind = "an import path to a router" if isinstance(r, str) else "a router function"
            out.append({"router": i, "unsupported": "task_routes[%d] is %s (%r): a function decides per call, "
                        "so it has no static equivalent" % (i, kind, r)})
            continue
        exact, patterns = [], []
        for k, v in pairs:
            value = route_value(v)
            if isinstance(k, re.Pattern):
                patterns.append({"router": i, "kind": "regex", "pattern": k.pattern,
                                 "flags": int(k.flags), "value": value})
            elif "*" in k:
                patterns.append({"router": i, "kind": "glob", "pattern": k, "value": value})
            else:
                exact.append({"router": i, "kind": "exact", "pattern": k, "value": value})
        # MapRoute tries exact names before patterns.
        out.extend(exact + patterns)
    return out


def route_value(v):
    from kombu import Queue

    if isinstance(v, str):
        return {"queue": v}
    if isinstance(v, Queue):
        return queue_value(v)
    try:
        d = dict(v)
    except (TypeError, ValueError):
        return {"__python__": repr(v), "__type__": type(v).__qualname__}
    if isinstance(d.get("queue"), Queue):
        q = queue_value(d.pop("queue"))
        q.update(d)
        d = q
    return jsonable(d)


def queue_value(q):
    out = {"queue": q.name}
    if q.exchange is not None and q.exchange.type != "direct":
        out["exchange"] = q.exchange.name
        out["routing_key"] = q.routing_key
    return out


def exec_options(task):
    """What a registered task adds to every call (`@app.task(queue=...)`, task_default_priority)."""
    if task is None:
        return {}
    opts = {k: v for k, v in task._get_exec_options().items() if v is not None}
    if opts.get("serializer") == "json":
        del opts["serializer"]
    return opts


def wire_route(app, routed):
    """queue, exchange, routing key and priority as send_task_message picks them."""
    queue = routed.get("queue")
    exchange = routed.get("exchange")
    routing_key = routed.get("routing_key")
    qname = queue.name
    exchange_type = routed.get("exchange_type") or queue.exchange.type or "direct"
    if (not exchange or not routing_key) and exchange_type == "direct":
        exchange, routing_key = "", qname
    elif exchange is None:
        exchange = queue.exchange.name or app.conf.task_default_exchange
        routing_key = routing_key or queue.routing_key or app.conf.task_default_routing_key
    if hasattr(exchange, "name"):
        exchange = exchange.name
    priority = routed.get("priority")
    return {"queue": qname, "exchange": exchange, "routing_key": routing_key,
            "priority": 0 if priority is None else priority}


def entry(app, name, e):
    task_name = e.get("task")
    registered = app.tasks.get(task_name) if task_name else None
    own = dict(e.get("options") or {})
    merged = dict(exec_options(registered), **own)
    out = {
        "name": name,
        "keys": sorted(e.keys()),
        "task": task_name,
        "schedule": describe_schedule(e.get("schedule")),
        "args": jsonable(list(e.get("args") or ())),
        "kwargs": jsonable(dict(e.get("kwargs") or {})),
        "options": jsonable(own),
        "task_options": jsonable(exec_options(registered)),
        "relative": bool(e.get("relative", False)),
    }
    try:
        routed = app.amqp.router.route(dict(merged), task_name, out["args"], out["kwargs"], registered)
        out["route"] = wire_route(app, routed)
        q = routed.get("queue")
        if q is not None and q.exchange is not None and q.exchange.type != "direct":
            out["queue_exchange"] = {"exchange": out["route"]["exchange"],
                                     "routing_key": out["route"]["routing_key"]}
    except Exception as exc:  # a router function may raise; say so per entry
        out["route_error"] = "%s: %s" % (type(exc).__name__, exc)
    return out


def main():
    spec = sys.argv[1]
    sys.path.insert(0, os.getcwd())
    app = find_app(spec)
    app.loader.import_default_modules()
    app.finalize(auto=True)
    conf = app.conf
    tz = app.timezone
    print(json.dumps({
        "app": spec,
        "main": app.main,
        "celery_version": __import__("celery").__version__,
        "timezone_setting": conf.timezone,
        "enable_utc": bool(conf.enable_utc),
        "timezone": zone_name(tz),
        "timezone_repr": repr(tz),
        "default_queue": conf.task_default_queue,
        "default_exchange": conf.task_default_exchange,
        "default_exchange_type": conf.task_default_exchange_type,
        "default_routing_key": conf.task_default_routing_key,
        "default_priority": conf.task_default_priority,
        "queue_max_priority": conf.task_queue_max_priority,
        "cron_starting_deadline": conf.beat_cron_starting_deadline,
        "default_queue_exchange": queue_value(app.amqp.queues[conf.task_default_queue])
        if conf.task_default_queue in app.amqp.queues else None,
        "routes": routers(app),
        "entries": [entry(app, n, e) for n, e in (conf.beat_schedule or {}).items()],
    }))


if __name__ == "__main__":
    main()
