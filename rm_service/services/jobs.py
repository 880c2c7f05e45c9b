"""Scoring jobs: score, rank (best-of-N) and predict jobs, created by the API and run by an rm worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import User

from annotate.catalog.models import Campaign
from rm_service.models import FINISHED_STATUSES, JobStatus, ModelVersion, ScoringJob
from rm_service.services.common import enqueue as send_after_commit
from rm_service.services.common import now, without_paths
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
    interactive: bool = False,
) -> ScoringJob:
    job = ScoringJob.objects.create(
        kind=kind, items=items, params=params, model_version=version, campaign=campaign, created_by=user
    )
    if enqueue:
        from rm_service import tasks

        # The task id is the job's public id, so the API can wait on the result backend for this job.
        send_after_commit(
            tasks.scoring_job_execute,
            args=[job.pk],
            task_id=str(job.public_id),
            queue=scoring_queue(kind=kind, items=len(items), interactive=interactive),
            on_failure=lambda reason: scoring_job_fail(job=job, error=reason),
        )
    return job


def scoring_queue(*, kind: str, items: int, interactive: bool) -> str:
    """``rm`` for a small request a client waits on; ``rm-batch`` for everything else.

    Workers take ``rm`` first (queue_order_strategy "priority"), and production runs a worker on each
    queue, so a scoring request never waits behind a thousand-candidate ranking or a campaign's
    predictions.
    """
    small = items <= settings.RM_SCORE_SYNC_MAX_ITEMS
    return "rm" if interactive and small and kind != ScoringJob.Kind.PREDICT else "rm-batch"


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
            status=JobStatus.FAILED, error=without_paths(f"{type(exc).__name__}: {exc}")[:4000], finished_at=now()
        )
        return "failed"
    ScoringJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.SUCCEEDED, result=result, finished_at=now(), progress={"done": len(job.items)}
    )
    return "succeeded"


def score_inputs(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The scorer's inputs for a job's stored items (audio path, text, lyrics, reference path or None)."""
    return [
        {
            "audio": it["audio"],
            "text": it.get("text", ""),
            "lyrics": it.get("lyrics", ""),
            "ref_audio": it.get("ref_audio") or None,
        }
        for it in items
    ]


def _score_items(job: ScoringJob) -> np.ndarray:
    from rm_service import worker

    scorer = worker.scorer_for(job.model_version)
    with worker.scoring_lock:  # the batching scoring server shares this scorer from another thread
        return scorer.score_batch(
            score_inputs(job.items), batch_size=int(job.params.get("batch_size", 16)), max_dur=job.params.get("max_dur")
        )


def scoring_result(*, kind: str, params: dict[str, Any], version_id: int, scores: np.ndarray) -> dict[str, Any]:
    """The stored result of a score or rank job from its (N, 2) scores; the Celery path and the batching
    scoring server build it here, so both answer the same body. Runs where torch is importable (rm worker)."""
    if kind == ScoringJob.Kind.RANK:
        return _rank_result(params=params, version_id=version_id, scores=scores)
    return {
        "model_version": version_id,
        "items": [
            {"index": i, "alignment": float(row[0]), "musicality": float(row[1])} for i, row in enumerate(scores)
        ],
    }


def _rank_result(*, params: dict[str, Any], version_id: int, scores: np.ndarray) -> dict[str, Any]:
    from rm_service import worker

    w_align, w_music = params.get("weights", [0.5, 0.5])
    top_k = int(params.get("top_k", 1))
    ranked = worker.rank_scores(scores, top_k=top_k, weights=(w_align, w_music))
    rows = [
        {"index": c.index, "alignment": c.alignment, "musicality": c.musicality, "score": c.score}
        | {"rank": c.rank, "top_k": c.selected}
        for c in ranked
    ]
    return {"model_version": version_id, "weights": [w_align, w_music], "top_k": top_k, "candidates": rows}


def _run_score(job: ScoringJob) -> dict[str, Any]:
    return scoring_result(kind=job.kind, params=job.params, version_id=job.model_version_id, scores=_score_items(job))


def _run_predict(job: ScoringJob) -> dict[str, Any]:
    assert job.campaign is not None
    written = predictions_compute(version=job.model_version, campaign=job.campaign, job=job)
    return {"model_version": job.model_version_id, "campaign": job.campaign_id, "predictions": written}


_JOB_RUNNERS: dict[str, Callable[[ScoringJob], dict[str, Any]]] = {
    ScoringJob.Kind.SCORE: _run_score,
    ScoringJob.Kind.RANK: _run_score,
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
