"""Celery interface of the catalog: thin, takes an id, calls the service (which claims the row first)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from annotate.catalog.services import campaign_import_run, campaign_import_stale_reap

logger = logging.getLogger(__name__)


@shared_task(name="annotate.catalog.tasks.campaign_import_run_task", ignore_result=True)
def campaign_import_run_task(campaign_import_id: int) -> None:
    # A redelivered message finds the row already claimed and does nothing.
    campaign_import_run(campaign_import_id=campaign_import_id)


@worker_ready.connect
def _fail_imports_of_dead_workers(sender: Any = None, **kwargs: Any) -> None:
    # A worker killed mid-import leaves its row "running"; whoever starts next marks it failed.
    try:
        failed = campaign_import_stale_reap(stale_after_s=settings.IMPORT_STALE_AFTER_S)
    except Exception:  # the database may be unreachable at start; the next import's creation reaps too
        logger.exception("could not reap stale imports")
        return
    if failed:
        logger.warning("marked %d imports of dead workers as failed", failed)
