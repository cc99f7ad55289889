"""Tasks for the example deployment's worker (docker-compose.yml)."""
import os

from celery import Celery

app = Celery("tasks", broker=os.environ.get("CELERY_BROKER_URL", "redis://redis:6379/0"))


@app.task
def add(x, y):
    return x + y


@app.task
def report():
    return "report done"
