"""Celery interface of the catalog: thin, takes an id, calls the service (which claims the row first)."""

from __future__ import annotations

from celery import shared_task

from annotate.catalog.services import campaign_import_run


@shared_task(name="annotate.catalog.tasks.campaign_import_run_task", ignore_result=True)
def campaign_import_run_task(campaign_import_id: int) -> None:
    # A redelivered message finds the row already claimed and does nothing.
    campaign_import_run(campaign_import_id=campaign_import_id)
