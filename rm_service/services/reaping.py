"""Work left behind by dead rm workers: running rows whose worker stopped beating are failed."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q

from rm_service.models import JobStatus, ScoringJob, TrainingRun
from rm_service.services.common import now


def stale_work_reap(*, stale_after_s: float, worker: str = "") -> int:
    """Fail running rows whose worker stopped beating (or, at worker start, rows that worker had).

    A training run with a checkpoint becomes resumable. Returns the number of rows changed.
    """
    cutoff = now() - timedelta(seconds=stale_after_s)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    if worker:
        stale |= Q(worker=worker)
    changed = 0
    for run in TrainingRun.objects.filter(stale, status=JobStatus.RUNNING):
        same = TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING, heartbeat_at=run.heartbeat_at)
        changed += same.update(
            status=JobStatus.FAILED,
            resumable=_resumable(run),
            finished_at=now(),
            error=f"worker {run.worker or '?'} stopped while running this (last heartbeat {run.heartbeat_at})",
        )
    changed += ScoringJob.objects.filter(stale, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, finished_at=now(), error="the worker stopped while running this job"
    )
    return changed


def _resumable(run: TrainingRun) -> bool:
    from rm_service import worker

    return worker.last_checkpoint(run.output_dir) is not None
