"""The Celery application, wired as in the official Django guide."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")

app = Celery("annotate")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("rm"))
app.autodiscover_tasks()


@app.task(name="annotate.health.ping")
def ping(payload: str = "pong") -> dict[str, str]:
    """A trivial task that proves the broker, a worker and the result backend are wired."""
    return {"reply": payload, "worker_pid": str(os.getpid())}
