"""Scoring jobs: score, rank (best-of-N) and predict jobs, created by the API and run by an rm worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User

from annotate.catalog.models import Campaign
from rm_service.models import FINISHED_STATUSES, JobStatus, ModelVersion, ScoringJob
from rm_service.services.common import enqueue as send_after_commit
from rm_service.services.common import now
from rm_service.services.predictions import predictions_compute

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)


def scoring_job_create(
    *,
    user: User | None,
    kind: str,
    items: list[dict[str, Any]],
    params: dict[str, Any],
    version: ModelVersion,
    campaign: Campaign | None = None,
    enqueue: bool = True,
) -> ScoringJob:
    job = ScoringJob.objects.create(
        kind=kind, items=items, params=params, model_version=version, campaign=campaign, created_by=user
    )
    if enqueue:
        from rm_service import tasks

        # The task id is the job's public id, so the API can wait on the result backend for this job.
        send_after_commit(
            lambda: tasks.scoring_job_execute.apply_async(args=[job.pk], task_id=str(job.public_id)),
            on_failure=lambda reason: scoring_job_fail(job=job, error=reason),
        )
    return job


def scoring_job_fail(*, job: ScoringJob, error: str) -> None:
    ScoringJob.objects.filter(pk=job.pk).exclude(status__in=FINISHED_STATUSES).update(
        status=JobStatus.FAILED, error=error, finished_at=now()
    )


def scoring_job_execute(*, job_id: int, worker: str) -> str:
    """Claim and run one scoring, ranking or prediction job; the task body."""
    claimed = ScoringJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, worker=worker, heartbeat_at=now(), started_at=now()
    )
    if not claimed:
        return "skipped"
    job = ScoringJob.objects.select_related("model_version", "campaign").get(pk=job_id)
    try:
        result = _JOB_RUNNERS[job.kind](job)
    except Exception as exc:
        logger.exception("scoring job %s failed", job.public_id)
        ScoringJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000], finished_at=now()
        )
        return "failed"
    ScoringJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.SUCCEEDED, result=result, finished_at=now(), progress={"done": len(job.items)}
    )
    return "succeeded"


def _score_items(job: ScoringJob) -> np.ndarray:
    from rm_service import worker

    scorer = worker.scorer_for(job.model_version)
    inputs = [
        {
            "audio": it["audio"],
            "text": it.get("text", ""),
            "lyrics": it.get("lyrics", ""),
            "ref_audio": it.get("ref_audio") or None,
        }
        for it in job.items
    ]
    return scorer.score_batch(
        inputs, batch_size=int(job.params.get("batch_size", 16)), max_dur=job.params.get("max_dur")
    )


def _run_score(job: ScoringJob) -> dict[str, Any]:
    scores = _score_items(job)
    return {
        "model_version": job.model_version_id,
        "items": [
            {"index": i, "alignment": float(row[0]), "musicality": float(row[1])} for i, row in enumerate(scores)
        ],
    }


def _run_rank(job: ScoringJob) -> dict[str, Any]:
    from rm_service import worker

    scores = _score_items(job)
    w_align, w_music = job.params.get("weights", [0.5, 0.5])
    top_k = int(job.params.get("top_k", 1))
    ranked = worker.rank_scores(scores, top_k=top_k, weights=(w_align, w_music))
    rows = [
        {"index": c.index, "alignment": c.alignment, "musicality": c.musicality, "score": c.score}
        | {"rank": c.rank, "top_k": c.selected}
        for c in ranked
    ]
    return {"model_version": job.model_version_id, "weights": [w_align, w_music], "top_k": top_k, "candidates": rows}


def _run_predict(job: ScoringJob) -> dict[str, Any]:
    assert job.campaign is not None
    written = predictions_compute(version=job.model_version, campaign=job.campaign, job=job)
    return {"model_version": job.model_version_id, "campaign": job.campaign_id, "predictions": written}


_JOB_RUNNERS: dict[str, Callable[[ScoringJob], dict[str, Any]]] = {
    ScoringJob.Kind.SCORE: _run_score,
    ScoringJob.Kind.RANK: _run_rank,
    ScoringJob.Kind.PREDICT: _run_predict,
}


def predictions_request(*, version: ModelVersion, campaign: Campaign, enqueue: bool = True) -> ScoringJob:
    """Queue the scoring of every comparison of ``campaign`` with ``version``."""
    return scoring_job_create(
        user=None,
        kind=ScoringJob.Kind.PREDICT,
        items=[],
        params={},
        version=version,
        campaign=campaign,
        enqueue=enqueue,
    )
