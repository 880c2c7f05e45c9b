"""Celery tasks of the agreement app (``default`` queue)."""

from __future__ import annotations

from celery import shared_task

from annotate.agreement import services


@shared_task(name="annotate.agreement.snapshot_refresh", ignore_result=True)
def agreement_snapshot_refresh_task(campaign_id: int) -> None:
    """Thin wrapper: the service claims the snapshot row, so a redelivery is harmless."""
    services.agreement_snapshot_refresh(campaign_id=campaign_id)
