"""The Celery application, wired as in the official Django guide."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")

app = Celery("annotate")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue has its own exchange and routing key, so a task routed to "rm" can never also
# land on "default" (a shared direct exchange with one key would deliver it to both).
app.conf.task_queues = (
    Queue("default", Exchange("default", type="direct"), routing_key="default"),
    Queue("rm", Exchange("rm", type="direct"), routing_key="rm"),
    # Long reward-model work (training, predictions, large scoring batches), so it never holds up "rm".
    Queue("rm-batch", Exchange("rm-batch", type="direct"), routing_key="rm-batch"),
)
app.conf.task_default_exchange = "default"
app.conf.task_default_routing_key = "default"
app.autodiscover_tasks()


@app.task(name="annotate.health.ping")
def ping(payload: str = "pong") -> dict[str, str]:
    """A trivial task that proves the broker, a worker and the result backend are wired."""
    return {"reply": payload, "worker_pid": str(os.getpid())}
