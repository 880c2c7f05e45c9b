"""Celery tasks of the reward-model service, routed to the ``rm`` queue (see CELERY_TASK_ROUTES).

Tasks are thin: they take a row id, and the service claims the row (``queued -> running``) before any work,
so a duplicated or redelivered message does nothing. Messages are acked early (CELERY_TASK_ACKS_LATE=False)
with prefetch 1: a training run that outlives Redis' visibility timeout is never handed to a second worker;
a worker that dies mid-run is detected by its stale heartbeat instead (``stale_work_reap``).

A worker on the ``rm`` queue also runs the batching scoring server (``rm_service/scoring_server.py``), a
thread answering small score/rank requests that the web process pushes to Redis, without Celery.

An rm worker also keeps a liveness key in the cache (``rm_worker_heartbeat_key``) that the web process
reads to answer 503 when no reward-model worker is up, and reaps stale work when it starts and every minute.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections

from rm_service import services

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 10.0
WORKER_TTL_S = 45  # the web side considers the rm workers gone this long after the last heartbeat
REAP_INTERVAL_S = 60.0


def rm_worker_heartbeat_key() -> str:
    return settings.RM_WORKER_HEARTBEAT_KEY


def stale_after_s() -> float:
    """Running rows whose heartbeat is older than this belong to a dead worker (the heartbeat thread beats
    every 10 s even while a training step runs, so this is generous)."""
    return settings.RM_STALE_AFTER_S


def _worker_name() -> str:
    return _state.get("hostname") or f"{socket.gethostname()}-{os.getpid()}"


_state: dict[str, Any] = {}


@shared_task(name="rm_service.tasks.training_run_execute", ignore_result=False)
def training_run_execute(run_id: int) -> str:
    return services.training_run_execute(run_id=run_id, worker=_worker_name())


@shared_task(name="rm_service.tasks.scoring_job_execute", ignore_result=False)
def scoring_job_execute(job_id: int) -> str:
    return services.scoring_job_execute(job_id=job_id, worker=_worker_name())


@shared_task(name="rm_service.tasks.stale_work_reap")
def stale_work_reap() -> int:
    return services.stale_work_reap(stale_after_s=stale_after_s())


# --- Worker lifecycle -----------------------------------------------------------------------------------


def _consumes_rm(consumer: Any) -> bool:
    try:
        # "rm" or a dedicated variant of it ("rm-gpu1", ...) routed with apply_async(queue=...)
        return any(q.name == "rm" or q.name.startswith("rm-") for q in consumer.task_consumer.queues)
    except AttributeError:
        return True


def _consumes_interactive_rm(consumer: Any) -> bool:
    """Whether this worker takes the ``rm`` queue itself (interactive scoring), not only ``rm-batch``."""
    try:
        return any(q.name == "rm" for q in consumer.task_consumer.queues)
    except AttributeError:
        return True


def _beat(stop: threading.Event) -> None:
    """Liveness for the web side, row heartbeats for running work, periodic reaping of dead workers' rows."""
    from django.utils import timezone

    from rm_service.models import JobStatus, ScoringJob, TrainingRun

    last_reap = 0.0
    while not stop.is_set():
        try:
            close_old_connections()
            cache.set(rm_worker_heartbeat_key(), {"worker": _worker_name(), "at": time.time()}, timeout=WORKER_TTL_S)
            now = timezone.now()
            for model in (TrainingRun, ScoringJob):
                model.objects.filter(status=JobStatus.RUNNING, worker=_worker_name()).update(heartbeat_at=now)
            if time.monotonic() - last_reap > REAP_INTERVAL_S:
                last_reap = time.monotonic()
                services.stale_work_reap(stale_after_s=stale_after_s())
        except Exception:  # a broker/database hiccup must not kill the heartbeat
            logger.exception("rm worker heartbeat failed")
        stop.wait(HEARTBEAT_INTERVAL_S)


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    _state["hostname"] = getattr(sender, "hostname", "") or socket.gethostname()
    if not _consumes_rm(sender):
        return
    # Whatever this hostname was running before it (re)started is dead: fail it now (resumable if it can).
    reaped = services.stale_work_reap(stale_after_s=stale_after_s(), worker=_worker_name())
    if reaped:
        logger.warning("marked %d running rows of dead workers as failed", reaped)
    stop = threading.Event()
    _state["stop"] = stop
    threading.Thread(target=_beat, args=(stop,), name="rm-heartbeat", daemon=True).start()
    if _consumes_interactive_rm(sender):
        from rm_service.scoring_server import scoring_server_start

        # Small waited-on score/rank requests come straight from the web process, batched (needs Redis).
        _state["scoring_server"] = scoring_server_start(name=_worker_name(), stop=stop)


@worker_shutdown.connect
def _on_worker_shutdown(**kwargs: Any) -> None:
    # The liveness key is left to expire (WORKER_TTL_S): other rm workers may share it.
    stop = _state.get("stop")
    if stop is not None:
        stop.set()
