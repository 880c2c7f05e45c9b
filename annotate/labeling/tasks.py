"""Celery tasks of the labeling app (``default`` queue)."""

from __future__ import annotations

from celery import shared_task

from annotate.labeling import services


@shared_task(name="annotate.labeling.reclaim_expired", ignore_result=True)
def assignment_reclaim_expired_task() -> int:
    """Periodic (``CELERY_BEAT_SCHEDULE``): mark lapsed reservations expired, so their slots show as free.

    The queue also reclaims a lapsed reservation itself when it needs that slot; this sweep keeps the
    slot counters and the progress figures current between hand-outs.
    """
    return services.assignment_reclaim_expired()
