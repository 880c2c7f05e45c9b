"""Celery interface of exports: thin, takes an id, calls the service (which claims the row first)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from annotate.exports.services import export_run, export_stale_reap

logger = logging.getLogger(__name__)


@shared_task(name="annotate.exports.tasks.export_run_task", ignore_result=True)
def export_run_task(export_id: int) -> None:
    # A redelivered message finds the row already claimed and does nothing.
    export_run(export_id=export_id)


@worker_ready.connect
def _fail_exports_of_dead_workers(sender: Any = None, **kwargs: Any) -> None:
    # A worker killed mid-export leaves its row "running"; whoever starts next marks it failed.
    try:
        failed = export_stale_reap(stale_after_s=settings.EXPORT_STALE_AFTER_S)
    except Exception:  # the database may be unreachable at start; the next export_create reaps too
        logger.exception("could not reap stale exports")
        return
    if failed:
        logger.warning("marked %d exports of dead workers as failed", failed)
