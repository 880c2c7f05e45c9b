"""Writes of the reward-model service: training runs, the model registry, scoring jobs, predictions.

Every state change is a conditional ``filter(status=old).update(...)`` whose row count is checked, so the
database row, not the Celery message, decides whether work happens. Heavy work (torch) is delegated to
``rm_service.runtime`` and only ever runs inside a worker.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotate.catalog.models import Campaign, Clip, Comparison
from annotate.errors import ApplicationError
from rm_service.models import FINISHED_STATUSES, JobStatus, ModelVersion, Prediction, ScoringJob, TrainingRun

logger = logging.getLogger(__name__)

ENCODERS = ("builtin", "muq")
PRESETS = ("tiny", "small", "paper")
PROGRESS_WRITE_INTERVAL_S = 1.0


class RmServiceError(ApplicationError, ValueError):
    """A request the service refuses; the message says why (the API answers 400 with it)."""


class RmUnavailable(ApplicationError, RuntimeError):
    """The broker or the reward-model workers are down (the API answers 503 with the message)."""

    status = 503
    code = "rm_unavailable"


def _now() -> Any:
    return timezone.now()


def _enqueue(send: Callable[[], Any], *, on_failure: Callable[[str], None]) -> None:
    """Send a Celery message after the surrounding transaction commits (immediately in autocommit).

    If the broker refuses it, ``on_failure`` marks the row failed (it would otherwise wait forever) and
    RmUnavailable reaches the caller, which answers 503.
    """

    def send_or_fail() -> None:
        try:
            send()
        except Exception as exc:
            reason = f"The reward-model service is unavailable: the task broker refused the job ({exc})."
            on_failure(reason)
            raise RmUnavailable(reason) from exc

    transaction.on_commit(send_or_fail)


# --- Training runs -------------------------------------------------------------------------------------


def _file_sha256(paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path:
            digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def _check_split(path: str, *, dataset_root: str, name: str, required: bool) -> None:
    from rm_service.data import DataError, load_dataset

    if not path:
        if required:
            raise RmServiceError(f"the {name} split is required")
        return
    if not Path(path).is_file():
        raise RmServiceError(f"the {name} split {path} does not exist")
    try:
        dataset = load_dataset(path, dataset_root=dataset_root, check_files=True)
    except DataError as exc:
        raise RmServiceError(f"the {name} split is unusable: {exc}") from exc
    if name == "training" and not (len(dataset.pairs) + len(dataset.mos)):
        raise RmServiceError(f"the training split {path} is empty: it has no labelled rows")


def _export_paths(export_id: int) -> dict[str, Any]:
    """Split files of a finished campaign export (train/validation/test.jsonl + audio/, as exports write them)."""
    from annotate.exports.models import Export
    from annotate.exports.selectors import export_dir_for

    export = Export.objects.filter(pk=export_id).first()
    if export is None:
        raise RmServiceError(f"export {export_id} does not exist")
    if export.status != Export.Status.SUCCEEDED:
        raise RmServiceError(f"export {export_id} is {export.status}, not finished; wait for it to succeed")
    root = Path(export_dir_for(export))
    paths: dict[str, Any] = {"dataset_root": str(root), "campaign_id": export.campaign_id}
    for key, name in (("train_jsonl", "train"), ("validation_jsonl", "validation"), ("test_jsonl", "test")):
        candidate = root / f"{name}.jsonl"
        paths[key] = str(candidate) if candidate.is_file() else ""
    return paths


def training_run_create(
    *,
    user: User | None,
    campaign: Campaign | None = None,
    export_id: int | None = None,
    train_jsonl: str = "",
    validation_jsonl: str = "",
    test_jsonl: str = "",
    dataset_root: str = "",
    pseudo_jsonl: str = "",
    encoder: str = "builtin",
    preset: str = "tiny",
    config: dict[str, Any] | None = None,
    resume_from: str = "",
    name: str = "",
    enqueue: bool = True,
) -> TrainingRun:
    """Validate a training configuration, store the run (queued) and hand it to the rm queue.

    Raises:
        RmServiceError: empty training split, unknown encoder or preset, missing files or checkpoint.
    """
    if encoder not in ENCODERS:
        raise RmServiceError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    if preset not in PRESETS:
        raise RmServiceError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if resume_from and not (Path(resume_from) / "model.safetensors").is_file():
        raise RmServiceError(f"checkpoint {resume_from} does not exist (no model.safetensors there)")
    source = TrainingRun.Source.JSONL
    if export_id is not None:
        source = TrainingRun.Source.EXPORT
        paths = _export_paths(export_id)
        train_jsonl, validation_jsonl, test_jsonl = paths["train_jsonl"], paths["validation_jsonl"], paths["test_jsonl"]
        dataset_root = paths["dataset_root"]
        if campaign is None and paths["campaign_id"]:
            campaign = Campaign.objects.get(pk=paths["campaign_id"])
    dataset_root = dataset_root or (str(Path(train_jsonl).parent) if train_jsonl else "")
    _check_split(train_jsonl, dataset_root=dataset_root, name="training", required=True)
    _check_split(validation_jsonl, dataset_root=dataset_root, name="validation", required=False)
    _check_split(test_jsonl, dataset_root=dataset_root, name="test", required=False)
    _check_split(pseudo_jsonl, dataset_root=dataset_root, name="pseudo-label", required=False)
    run = TrainingRun.objects.create(
        name=name or f"{preset} {encoder} model",
        campaign=campaign,
        source=source,
        export_id=export_id,
        train_jsonl=train_jsonl,
        validation_jsonl=validation_jsonl,
        test_jsonl=test_jsonl,
        pseudo_jsonl=pseudo_jsonl,
        dataset_root=dataset_root,
        encoder=encoder,
        preset=preset,
        config=config or {},
        resume_from=resume_from,
        created_by=user,
        data_sha256=_file_sha256([train_jsonl, validation_jsonl, test_jsonl, pseudo_jsonl]),
    )
    run.output_dir = str(Path(settings.RM_ROOT) / "runs" / f"run-{run.pk}")
    run.save(update_fields=["output_dir"])
    if enqueue:
        _enqueue_training(run)
    return run


def _enqueue_training(run: TrainingRun) -> None:
    from rm_service import tasks

    def fail(reason: str) -> None:
        TrainingRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.FAILED, error=reason, finished_at=_now()
        )

    _enqueue(lambda: tasks.training_run_execute.delay(run.pk), on_failure=fail)


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Cancel a queued run at once; ask a running one to stop at its next progress report."""
    if TrainingRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=_now(), cancel_requested=True
    ):
        run.refresh_from_db()
        return run
    updated = TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(cancel_requested=True)
    run.refresh_from_db()
    if not updated:
        raise RmServiceError(f"training run {run.pk} is {run.status}; only queued or running runs can be cancelled")
    return run


def training_run_resume(*, run: TrainingRun, enqueue: bool = True) -> TrainingRun:
    """Re-queue a failed or cancelled run; it continues from its last checkpoint."""
    checkpoint = _last_checkpoint(run)
    if checkpoint is None:
        raise RmServiceError(f"training run {run.pk} has no checkpoint to resume from")
    updated = TrainingRun.objects.filter(pk=run.pk, status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).update(
        status=JobStatus.QUEUED,
        resume_from=str(checkpoint),
        cancel_requested=False,
        error="",
        resumable=False,
        finished_at=None,
    )
    run.refresh_from_db()
    if not updated:
        raise RmServiceError(f"training run {run.pk} is {run.status}; only failed or cancelled runs can resume")
    if enqueue:
        _enqueue_training(run)
    return run


def _last_checkpoint(run: TrainingRun) -> Path | None:
    from rm_service import runtime

    return runtime.last_checkpoint(Path(run.output_dir)) if run.output_dir else None


def training_run_claim(*, run_id: int, worker: str) -> TrainingRun | None:
    """queued -> running; None when another delivery (or a cancel) got there first."""
    claimed = TrainingRun.objects.filter(pk=run_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        worker=worker,
        heartbeat_at=_now(),
        started_at=_now(),
        error="",
        attempts=F("attempts") + 1,
    )
    return TrainingRun.objects.get(pk=run_id) if claimed else None


class _ProgressWriter:
    """Writes progress to the run row at most once a second and reports whether a cancel was requested."""

    def __init__(self, run: TrainingRun) -> None:
        self.run = run
        self.last_write = 0.0
        self.cancelled = False
        self.first = True

    def __call__(self, step: int, total: int, loss: float | None, val: dict[str, Any] | None) -> bool:
        from rm_service.runtime import json_safe

        now = time.monotonic()
        val = json_safe(val)
        if val:
            self.run.val_metrics = val
        point = {"step": step, "loss": _finite(loss), "attempt": self.run.attempts, **({"val": val} if val else {})}
        if val or step % 10 == 0 or self.first:  # the first point of an attempt shows where a resume started
            self.run.history = [*self.run.history[-499:], point]
            self.first = False
        if val or step >= total or now - self.last_write >= PROGRESS_WRITE_INTERVAL_S:
            self.last_write = now
            fields = {
                "step": step,
                "total_steps": total,
                "loss": _finite(loss),
                "val_metrics": self.run.val_metrics,
                "history": self.run.history,
                "heartbeat_at": _now(),
            }
            TrainingRun.objects.filter(pk=self.run.pk, status=JobStatus.RUNNING).update(**fields)
            self.cancelled = (
                TrainingRun.objects.filter(pk=self.run.pk)
                .exclude(status=JobStatus.RUNNING, cancel_requested=False)
                .exists()
            )
        return not self.cancelled


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def training_run_execute(*, run_id: int, worker: str) -> str:
    """Claim and run one training run to its end; the task body. Returns what happened."""
    run = training_run_claim(run_id=run_id, worker=worker)
    if run is None:
        logger.info("training run %s was already claimed or cancelled; nothing to do", run_id)
        return "skipped"
    from rm_service import runtime

    progress = _ProgressWriter(run)
    try:
        outcome = runtime.train_run(run, on_progress=progress)
    except Exception as exc:
        logger.exception("training run %s failed", run_id)
        _finish_run(
            run,
            status=JobStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            resumable=_last_checkpoint(run) is not None,
        )
        return "failed"
    if outcome.cancelled or progress.cancelled:
        _finish_run(run, status=JobStatus.CANCELLED, resumable=_last_checkpoint(run) is not None)
        return "cancelled"
    version = model_version_register(run=run, checkpoint_path=outcome.checkpoint, metrics=outcome.metrics)
    _finish_run(run, status=JobStatus.SUCCEEDED, model_version=version)
    return "succeeded"


def _finish_run(
    run: TrainingRun,
    *,
    status: str,
    error: str = "",
    resumable: bool = False,
    model_version: ModelVersion | None = None,
) -> None:
    # Conditional on still running: a reaper may have failed this run meanwhile (then its verdict stands).
    updated = TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING).update(
        status=status, error=error[:4000], resumable=resumable, model_version=model_version, finished_at=_now()
    )
    if not updated:
        logger.warning("training run %s was no longer running when it finished as %s", run.pk, status)


def stale_work_reap(*, stale_after_s: float, worker: str = "") -> int:
    """Fail running rows whose worker stopped beating (or, at worker start, rows that worker had).

    A training run with a checkpoint becomes resumable. Returns the number of rows changed.
    """
    cutoff = _now() - timedelta(seconds=stale_after_s)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    if worker:
        stale |= Q(worker=worker)
    changed = 0
    for run in TrainingRun.objects.filter(stale, status=JobStatus.RUNNING):
        same = TrainingRun.objects.filter(pk=run.pk, status=JobStatus.RUNNING, heartbeat_at=run.heartbeat_at)
        changed += same.update(
            status=JobStatus.FAILED,
            resumable=_last_checkpoint(run) is not None,
            finished_at=_now(),
            error=f"worker {run.worker or '?'} stopped while running this (last heartbeat {run.heartbeat_at})",
        )
    changed += ScoringJob.objects.filter(stale, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED, finished_at=_now(), error="the worker stopped while running this job"
    )
    return changed


# --- Model registry ------------------------------------------------------------------------------------


def model_version_register(*, run: TrainingRun, checkpoint_path: str, metrics: dict[str, Any]) -> ModelVersion:
    from rm_service import runtime

    info = runtime.checkpoint_info(checkpoint_path)
    data: dict[str, Any] = (
        {"export_id": run.export_id} if run.export_id else {"jsonl": run.train_jsonl, "dataset_root": run.dataset_root}
    )
    data.update({"sha256": run.data_sha256, "validation": run.validation_jsonl, "test": run.test_jsonl})
    if run.pseudo_jsonl:
        data["pseudo_jsonl"] = run.pseudo_jsonl
    return ModelVersion.objects.create(
        name=run.name or f"run {run.pk}",
        campaign=run.campaign,
        checkpoint_path=checkpoint_path,
        config=info["config"],
        encoder=info["encoder"],
        encoder_id=info["encoder_id"],
        training_data=data,
        metrics=metrics,
    )


def model_version_activate(*, version: ModelVersion, predict: bool = True) -> ModelVersion:
    """Make ``version`` the one active model and queue its predictions for every active campaign."""
    if not (Path(version.checkpoint_path) / "model.safetensors").is_file():
        raise RmServiceError(f"checkpoint {version.checkpoint_path} does not exist")
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=_now())
        version.refresh_from_db()
        if predict:
            for campaign in Campaign.objects.filter(status=Campaign.Status.ACTIVE):
                predictions_request(version=version, campaign=campaign)
    return version


def model_version_deactivate(*, version: ModelVersion) -> ModelVersion:
    ModelVersion.objects.filter(pk=version.pk).update(is_active=False)
    version.refresh_from_db()
    return version


# --- Scoring jobs --------------------------------------------------------------------------------------


@dataclass
class ItemSpec:
    """One item as the API received it (before resolution to a file)."""

    clip_id: int | None = None
    url: str = ""
    upload: UploadedFile | None = None


def scoring_audio_resolve(*, spec: ItemSpec, label: str) -> dict[str, str]:
    """Turn a clip id, a platform URL or an upload into {"audio": path, "sha256": ...}.

    Raises:
        RmServiceError: naming ``label`` (e.g. "item 3 audio") with what is wrong.
    """
    if spec.upload is not None:
        return _store_upload(spec.upload, label=label)
    clip_id = spec.clip_id if spec.clip_id is not None else _clip_id_from_url(spec.url, label=label)
    clip = Clip.objects.filter(pk=clip_id).first()
    if clip is None:
        raise RmServiceError(f"{label}: clip {clip_id} does not exist")
    return {"audio": clip_path(clip), "sha256": clip.sha256}


def clip_path(clip: Clip) -> str:
    """Absolute path of a clip's audio under MEDIA_ROOT."""
    return str(Path(settings.MEDIA_ROOT) / str(clip.file.name))


def _clip_id_from_url(url: str, *, label: str) -> int:
    from urllib.parse import urlsplit

    from django.urls import Resolver404, resolve

    parts = urlsplit(url)
    allowed = {urlsplit(settings.SITE_URL).hostname, *settings.ALLOWED_HOSTS, "testserver"}
    if parts.scheme not in ("http", "https", "") or (parts.hostname and parts.hostname not in allowed):
        raise RmServiceError(f"{label}: {url!r} is not a URL of this platform")
    try:
        match = resolve(parts.path)
    except Resolver404:
        raise RmServiceError(f"{label}: {url!r} does not name a clip of this platform") from None
    clip_id = match.kwargs.get("clip_id")
    if clip_id is None:
        raise RmServiceError(f"{label}: {url!r} does not name a clip of this platform")
    return int(clip_id)


def _store_upload(upload: UploadedFile, *, label: str) -> dict[str, str]:
    """Validate size, decodability and duration, then store content-addressed (so the cache can hit)."""
    import soundfile

    if upload.size is not None and upload.size > settings.UPLOAD_MAX_BYTES:
        raise RmServiceError(f"{label}: upload is {upload.size} bytes, over the {settings.UPLOAD_MAX_BYTES} limit")
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(delete=False, dir=_uploads_dir(), suffix=".part") as tmp:
        for chunk in upload.chunks():
            digest.update(chunk)
            tmp.write(chunk)
    tmp_path = Path(tmp.name)
    try:
        info = soundfile.info(str(tmp_path))
    except (RuntimeError, soundfile.LibsndfileError):
        tmp_path.unlink(missing_ok=True)
        raise RmServiceError(f"{label}: {upload.name!r} is not decodable audio (WAV, FLAC, OGG or MP3)") from None
    if info.frames <= 0 or info.duration > settings.UPLOAD_MAX_SECONDS:
        tmp_path.unlink(missing_ok=True)
        raise RmServiceError(
            f"{label}: duration {info.duration:.1f} s is outside (0, {settings.UPLOAD_MAX_SECONDS:g}] s"
        )
    final = _uploads_dir() / f"{digest.hexdigest()}.{info.format.lower()}"
    shutil.move(str(tmp_path), final)
    return {"audio": str(final), "sha256": digest.hexdigest()}


def _uploads_dir() -> Path:
    path = Path(settings.RM_ROOT) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


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
        _enqueue(
            lambda: tasks.scoring_job_execute.apply_async(args=[job.pk], task_id=str(job.public_id)),
            on_failure=lambda reason: scoring_job_fail(job=job, error=reason),
        )
    return job


def scoring_job_fail(*, job: ScoringJob, error: str) -> None:
    ScoringJob.objects.filter(pk=job.pk).exclude(status__in=FINISHED_STATUSES).update(
        status=JobStatus.FAILED, error=error, finished_at=_now()
    )


def scoring_job_execute(*, job_id: int, worker: str) -> str:
    """Claim and run one scoring, ranking or prediction job; the task body."""
    claimed = ScoringJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, worker=worker, heartbeat_at=_now(), started_at=_now()
    )
    if not claimed:
        return "skipped"
    job = ScoringJob.objects.select_related("model_version", "campaign").get(pk=job_id)
    try:
        result = _JOB_RUNNERS[job.kind](job)
    except Exception as exc:
        logger.exception("scoring job %s failed", job.public_id)
        ScoringJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
            status=JobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:4000], finished_at=_now()
        )
        return "failed"
    ScoringJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=JobStatus.SUCCEEDED, result=result, finished_at=_now(), progress={"done": len(job.items)}
    )
    return "succeeded"


def _score_items(job: ScoringJob) -> Any:
    from rm_service import runtime

    scorer = runtime.scorer_for(job.model_version)
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
    scores = _score_items(job)
    w_align, w_music = job.params.get("weights", [0.5, 0.5])
    top_k = int(job.params.get("top_k", 1))
    rows = [
        {
            "index": i,
            "alignment": float(r[0]),
            "musicality": float(r[1]),
            "score": (w_align * float(r[0]) + w_music * float(r[1])) / (w_align + w_music),
        }
        for i, r in enumerate(scores)
    ]
    rows.sort(key=lambda r: -r["score"])
    for rank, row in enumerate(rows, start=1):
        row.update(rank=rank, top_k=rank <= top_k)
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


# --- Predictions (live model vs human) -----------------------------------------------------------------


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


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def predictions_compute(*, version: ModelVersion, campaign: Campaign, job: ScoringJob | None = None) -> int:
    """Score both clips of every comparison of ``campaign`` and upsert one Prediction per comparison."""
    from rm_service import runtime

    comparisons = list(
        Comparison.objects.filter(campaign=campaign).select_related("instruction__reference_clip", "clip_a", "clip_b")
    )
    inputs = []
    for comparison in comparisons:
        instruction = comparison.instruction
        ref = clip_path(instruction.reference_clip) if instruction.reference_clip else None
        for clip in (comparison.clip_a, comparison.clip_b):
            inputs.append(
                {"audio": clip_path(clip), "text": instruction.text, "lyrics": instruction.lyrics, "ref_audio": ref}
            )
    scores = runtime.scorer_for(version).score_batch(inputs, batch_size=16, max_dur=None) if inputs else []
    rows = []
    for i, comparison in enumerate(comparisons):
        a, b = scores[2 * i], scores[2 * i + 1]
        p_align, p_music = _sigmoid(float(a[0] - b[0])), _sigmoid(float(a[1] - b[1]))
        rows.append(
            Prediction(
                comparison=comparison,
                model_version=version,
                alignment_a=float(a[0]),
                alignment_b=float(b[0]),
                musicality_a=float(a[1]),
                musicality_b=float(b[1]),
                alignment_prob_a=p_align,
                musicality_prob_a=p_music,
                alignment_choice="a" if p_align >= 0.5 else "b",
                musicality_choice="a" if p_music >= 0.5 else "b",
            )
        )
    Prediction.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["comparison", "model_version"],
        update_fields=[
            "alignment_a",
            "alignment_b",
            "musicality_a",
            "musicality_b",
            "alignment_choice",
            "musicality_choice",
            "alignment_prob_a",
            "musicality_prob_a",
        ],
    )
    return len(rows)
