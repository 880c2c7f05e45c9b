"""Writes of the agreement app: refreshing and scheduling stored snapshots."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from annotate.agreement.models import AgreementSnapshot
from annotate.agreement.selectors import agreement_report, campaign_votes, live_max_votes


def debounce_seconds() -> int:
    return int(getattr(settings, "AGREEMENT_SNAPSHOT_DEBOUNCE_SECONDS", 30))


def _debounce_key(campaign_id: int) -> str:
    return f"agreement:snapshot-scheduled:{campaign_id}"


def agreement_snapshot_refresh(*, campaign_id: int) -> AgreementSnapshot | None:
    """Recompute and store the campaign's full report. Returns None if another refresh holds the row.

    The debounce key is cleared *before* computing, so votes that land during the computation
    schedule a follow-up refresh instead of being silently missed.
    """
    cache.delete(_debounce_key(campaign_id))
    AgreementSnapshot.objects.get_or_create(campaign_id=campaign_id)
    with transaction.atomic():
        # Claim the row: a redelivered or concurrent task skips instead of computing twice.
        snapshot = AgreementSnapshot.objects.select_for_update(skip_locked=True).filter(campaign_id=campaign_id).first()
        if snapshot is None:
            return None
        started = time.perf_counter()
        computed_at = timezone.now()
        report = agreement_report(votes=campaign_votes(campaign_id=campaign_id))
        snapshot.report = report
        snapshot.vote_count = report["summary"]["vote_count"]
        snapshot.computed_at = computed_at
        snapshot.compute_seconds = time.perf_counter() - started
        snapshot.refresh_requested_at = None
        snapshot.save()
    return snapshot


def agreement_snapshot_schedule(*, campaign_id: int) -> bool:
    """Queue a debounced snapshot refresh after new votes; True when a refresh was queued.

    Meant for ``transaction.on_commit`` in the vote service. At most one refresh per campaign is
    queued per debounce window (a Redis/cache ``add``), and it runs at the end of the window so it
    sees every vote of the burst. Campaigns small enough to compute on request queue nothing.
    """
    from annotate.agreement.tasks import agreement_snapshot_refresh_task

    if not cache.add(_debounce_key(campaign_id), "1", timeout=debounce_seconds() * 4):
        return False
    if campaign_votes(campaign_id=campaign_id).count() <= live_max_votes():
        return False
    AgreementSnapshot.objects.update_or_create(
        campaign_id=campaign_id, defaults={"refresh_requested_at": timezone.now()}
    )
    agreement_snapshot_refresh_task.apply_async(args=[campaign_id], countdown=debounce_seconds(), queue="default")
    return True


def agreement_snapshot_request_refresh(*, campaign_id: int) -> AgreementSnapshot:
    """Queue an immediate snapshot refresh (the dashboard's button); bypasses the debounce."""
    from annotate.agreement.tasks import agreement_snapshot_refresh_task

    snapshot, _ = AgreementSnapshot.objects.update_or_create(
        campaign_id=campaign_id, defaults={"refresh_requested_at": timezone.now()}
    )
    agreement_snapshot_refresh_task.delay_on_commit(campaign_id)
    return snapshot
