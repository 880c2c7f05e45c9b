"""Training runs: create (validated, queued), cancel, resume, and the worker's claim-and-execute.

Every state change is a conditional ``filter(status=old).update(...)`` whose row count is checked, so the
database row, not the Celery message, decides whether work happens. The training itself runs in
``rm_service.worker``, imported inside the functions that need it so the web process loads no torch with
the app.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import F, Q

from annotate.catalog.models import Campaign
from cmi_common.hashing import files_sha256
from rm_service.models import JobStatus, ModelVersion, TrainingRun
from rm_service.presets import ENCODERS, PRESETS
from rm_service.services.common import RmServiceError, now
from rm_service.services.common import enqueue as send_after_commit
from rm_service.services.registry import model_version_register

logger = logging.getLogger(__name__)

PROGRESS_WRITE_INTERVAL_S = 1.0


@dataclass
class TrainingData:
    """Where a run's splits are: JSONL paths ("" = none) relative to ``dataset_root``."""

    train_jsonl: str = ""
    validation_jsonl: str = ""
    test_jsonl: str = ""
    pseudo_jsonl: str = ""
    dataset_root: str = ""
    source: str = TrainingRun.Source.JSONL
    export_id: int | None = None
    campaign_id: int | None = None

    def run_fields(self) -> dict[str, Any]:
        """The TrainingRun columns this sets."""
        names = ("train_jsonl", "validation_jsonl", "test_jsonl", "pseudo_jsonl", "dataset_root", "source", "export_id")
        return {name: getattr(self, name) for name in names}

    def files(self) -> list[str]:
        return [p for p in (self.train_jsonl, self.validation_jsonl, self.test_jsonl, self.pseudo_jsonl) if p]


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
    _check_inside_roots(train=train_jsonl, validation=validation_jsonl, test=test_jsonl)
    _check_inside_roots(dataset_root=dataset_root, pseudo=pseudo_jsonl, resume_from=resume_from)
    _check_choices(encoder=encoder, preset=preset, resume_from=resume_from)
    if export_id is not None:
        data = _export_data(export_id, pseudo_jsonl=pseudo_jsonl)
    else:
        root = dataset_root or (str(Path(train_jsonl).parent) if train_jsonl else "")
        data = TrainingData(train_jsonl, validation_jsonl, test_jsonl, pseudo_jsonl, root)
    _check_splits(data)
    run = TrainingRun.objects.create(
        name=name or f"{preset} {encoder} model",
        campaign=campaign or (Campaign.objects.get(pk=data.campaign_id) if data.campaign_id else None),
        **data.run_fields(),
        encoder=encoder,
        preset=preset,
        config=config or {},
        resume_from=resume_from,
        created_by=user,
        data_sha256=files_sha256(data.files())[0],
    )
    run.output_dir = str(Path(settings.RM_ROOT) / "runs" / f"run-{run.pk}")
    run.save(update_fields=["output_dir"])
    if enqueue:
        _enqueue_training(run)
    return run


PRETRAIN_MAX_PAIRS = 5000
PRETRAIN_MAX_STEPS = 20000


def training_run_create_pretrain(
    *,
    user: User | None,
    campaign: Campaign,
    pairs: int = 300,
    steps: int = 600,
    name: str = "",
    enqueue: bool = True,
) -> TrainingRun:
    """Queue stage-1 pretraining on ``campaign``'s own clips (pairs constructed offline, no votes needed).

    The worker cuts ``pairs`` reference-alignment and ``pairs`` graded-defect pairs (and a third as many
    description pairs) from the campaign's evaluated and reference clips, trains the starter architecture for
    ``steps`` steps and evaluates it, with the panel, on pairs from held-out clips.

    Raises:
        RmServiceError: fewer than two clips with audio on disk, or a pair/step count out of range.
    """
    if not 1 <= pairs <= PRETRAIN_MAX_PAIRS:
        raise RmServiceError(f"pairs must be between 1 and {PRETRAIN_MAX_PAIRS}", field="pairs")
    if not 1 <= steps <= PRETRAIN_MAX_STEPS:
        raise RmServiceError(f"steps must be between 1 and {PRETRAIN_MAX_STEPS}", field="steps")
    clips = _campaign_clips(campaign)
    if len(clips) < 2:
        raise RmServiceError(
            f"campaign {campaign.pk} has {len(clips)} clip(s) with audio on disk; stage 1 needs at least two"
        )
    run = TrainingRun.objects.create(
        name=name or f"stage 1 on {campaign.name}",
        campaign=campaign,
        source=TrainingRun.Source.PRETRAIN,
        encoder="builtin",
        preset="starter",
        config={"pretrain": {"pairs": pairs, "steps": steps, "clips": [path for _, path in clips]}},
        created_by=user,
        data_sha256=hashlib.sha256("".join(sorted(sha for sha, _ in clips)).encode()).hexdigest(),
    )
    run.output_dir = str(Path(settings.RM_ROOT) / "runs" / f"run-{run.pk}")
    run.dataset_root = str(Path(run.output_dir) / "pairs")
    run.save(update_fields=["output_dir", "dataset_root"])
    if enqueue:
        _enqueue_training(run)
    return run


def _campaign_clips(campaign: Campaign) -> list[tuple[str, str]]:
    """(sha256, absolute path) of every evaluated and reference clip of ``campaign`` whose file exists."""
    from annotate.catalog.models import Clip
    from rm_service.services.uploads import clip_path

    comparisons = campaign.comparisons.all()
    clips = Clip.objects.filter(
        Q(pk__in=comparisons.values("clip_a"))
        | Q(pk__in=comparisons.values("clip_b"))
        | Q(pk__in=comparisons.values("instruction__reference_clip"))
    ).order_by("pk")
    found = [(clip.sha256, clip_path(clip)) for clip in clips]
    return [(sha, path) for sha, path in found if Path(path).is_file()]


def _check_inside_roots(**paths: str) -> None:
    """Staff name server paths; only those under ``RM_DATA_ROOTS`` may be read (no /etc/passwd as a dataset)."""
    roots = [Path(root).resolve() for root in settings.RM_DATA_ROOTS]
    for name, path in paths.items():
        if path and not any(Path(path).resolve().is_relative_to(root) for root in roots):
            allowed = ", ".join(str(root) for root in roots)
            raise RmServiceError(f"{name} {path} is outside the data roots this server reads from ({allowed})")


def _check_choices(*, encoder: str, preset: str, resume_from: str) -> None:
    from rm_service import worker

    if encoder not in ENCODERS:
        raise RmServiceError(f"unknown encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    if preset not in PRESETS:
        raise RmServiceError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if resume_from and not worker.is_checkpoint(resume_from):
        raise RmServiceError(f"checkpoint {resume_from} does not exist (no model.safetensors there)")


def _check_splits(data: TrainingData) -> None:
    root = data.dataset_root
    _check_split(data.train_jsonl, dataset_root=root, name="training", required=True)
    _check_split(data.validation_jsonl, dataset_root=root, name="validation", required=False)
    _check_split(data.test_jsonl, dataset_root=root, name="test", required=False)
    _check_split(data.pseudo_jsonl, dataset_root=root, name="pseudo-label", required=False)


def _check_split(path: str, *, dataset_root: str, name: str, required: bool) -> None:
    from rm_service import worker

    if not path:
        if required:
            raise RmServiceError(f"the {name} split is required")
        return
    if not Path(path).is_file():
        raise RmServiceError(f"the {name} split {path} does not exist")
    try:
        rows = worker.labelled_rows(path, dataset_root=dataset_root)
    except worker.DataError as exc:
        raise RmServiceError(f"the {name} split is unusable: {exc}") from exc
    if name == "training" and not rows:
        raise RmServiceError(f"the training split {path} is empty: it has no labelled rows")


def _export_data(export_id: int, *, pseudo_jsonl: str) -> TrainingData:
    """The splits of a finished campaign export (train/validation/test.jsonl + audio/)."""
    from annotate.exports.models import Export
    from annotate.exports.selectors import export_dir_for

    export = Export.objects.filter(pk=export_id).first()
    if export is None:
        raise RmServiceError(f"export {export_id} does not exist")
    if export.status != Export.Status.SUCCEEDED:
        raise RmServiceError(f"export {export_id} is {export.status}, not finished; wait for it to succeed")
    root = Path(export_dir_for(export))
    train, validation, test = (root / f"{n}.jsonl" for n in ("train", "validation", "test"))
    return TrainingData(
        train_jsonl=str(train) if train.is_file() else "",
        validation_jsonl=str(validation) if validation.is_file() else "",
        test_jsonl=str(test) if test.is_file() else "",
        pseudo_jsonl=pseudo_jsonl,
        dataset_root=str(root),
        source=TrainingRun.Source.EXPORT,
        export_id=export_id,
        campaign_id=export.campaign_id,
    )


def _enqueue_training(run: TrainingRun) -> None:
    from rm_service import tasks

    def fail(reason: str) -> None:
        TrainingRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.FAILED, error=reason, finished_at=now()
        )

    send_after_commit(tasks.training_run_execute, args=[run.pk], queue="rm-batch", on_failure=fail)


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Cancel a queued run at once; ask a running one to stop at its next progress report."""
    if TrainingRun.objects.filter(pk=run.pk, status=JobStatus.QUEUED).update(
        status=JobStatus.CANCELLED, finished_at=now(), cancel_requested=True
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
    from rm_service import worker

    return worker.last_checkpoint(run.output_dir)


def training_run_claim(*, run_id: int, worker: str) -> TrainingRun | None:
    """queued -> running; None when another delivery (or a cancel) got there first."""
    claimed = TrainingRun.objects.filter(pk=run_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        worker=worker,
        heartbeat_at=now(),
        started_at=now(),
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
        from rm_service.worker import json_safe

        tick = time.monotonic()
        val = json_safe(val)
        if val:
            self.run.val_metrics = val
        point = {"step": step, "loss": _finite(loss), "attempt": self.run.attempts, **({"val": val} if val else {})}
        if val or step % 10 == 0 or self.first:  # the first point of an attempt shows where a resume started
            self.run.history = [*self.run.history[-499:], point]
            self.first = False
        if val or step >= total or tick - self.last_write >= PROGRESS_WRITE_INTERVAL_S:
            self.last_write = tick
            fields = {
                "step": step,
                "total_steps": total,
                "loss": _finite(loss),
                "val_metrics": self.run.val_metrics,
                "history": self.run.history,
                "heartbeat_at": now(),
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
    from rm_service import worker as rm_worker  # the parameter ``worker`` is this process's name

    progress = _ProgressWriter(run)
    outcome = rm_worker.train_run(run, on_progress=progress)
    if outcome.status == "failed":
        _finish_run(run, status=JobStatus.FAILED, error=outcome.error, resumable=outcome.resumable)
        return "failed"
    if outcome.status == "cancelled" or outcome.checkpoint is None or progress.cancelled:
        _finish_run(run, status=JobStatus.CANCELLED, resumable=outcome.resumable)
        return "cancelled"
    version = model_version_register(run=run, checkpoint=outcome.checkpoint, metrics=outcome.metrics)
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
        status=status, error=error[:4000], resumable=resumable, model_version=model_version, finished_at=now()
    )
    if not updated:
        logger.warning("training run %s was no longer running when it finished as %s", run.pk, status)
