"""The reward-model worker side of the Django app: the only edge module that imports ``rm_service.core``.

It runs training runs and scoring inside an rm worker process: device choice, the lazily loaded scorer
(kept for the life of the process, reloaded when a job names another ModelVersion, which is what happens
after a new version is activated), training a run to its checkpoint and evaluating it. It also answers the
few questions the services ask about run directories and checkpoints, through the core's ``layout``.

Other edge modules import this module inside the functions that need it, so loading the Django app (the
web process) does not import torch.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import torch
from django.conf import settings

from rm_service.core import (
    DataError,
    Scorer,
    TrainConfig,
    TrainingCancelled,
    TrainProgress,
    evaluate,
    load_dataset,
    rank_scores,
)
from rm_service.core import load_scorer as core_load_scorer
from rm_service.core import train as core_train
from rm_service.core.layout import CheckpointError, CheckpointInfo, RunLayout, is_checkpoint, read_checkpoint_info
from rm_service.presets import PRESETS

if TYPE_CHECKING:
    from rm_service.models import ModelVersion, TrainingRun

__all__ = [
    "CheckpointError",
    "CheckpointInfo",
    "DataError",
    "TrainOutcome",
    "checkpoint_info",
    "device",
    "is_checkpoint",
    "json_safe",
    "labelled_rows",
    "rank_scores",
    "last_checkpoint",
    "scorer_for",
    "pretrain_config",
    "scorer_for_checkpoint",
    "scoring_lock",
    "pretrain_on_folder",
    "starter_build",
    "starter_panel",
    "train_run",
]

logger = logging.getLogger(__name__)


def device() -> str:
    """``RM_DEVICE`` if set, else CUDA when this process sees a GPU (``CUDA_VISIBLE_DEVICES``), else CPU."""
    return os.environ.get("RM_DEVICE", "") or ("cuda" if torch.cuda.is_available() else "cpu")


# --- Run directories, checkpoints and datasets ----------------------------------------------------------


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest resumable trainer state of a run directory, if any."""
    return RunLayout(Path(run_dir)).latest_state() if str(run_dir) else None


def checkpoint_info(path: str | Path) -> CheckpointInfo:
    """Model config and encoder of a checkpoint directory (raises ``CheckpointError``)."""
    return read_checkpoint_info(path)


def pretrain_config(steps: int) -> TrainConfig:
    """Stage-1 training of the starter architecture for ``steps`` steps (CPU-friendly defaults)."""
    from rm_service.core.model import RewardModelConfig
    from rm_service.core.starter import STARTER_MODEL

    return TrainConfig(
        model=RewardModelConfig(**STARTER_MODEL),  # type: ignore[arg-type]
        batch_size=32,
        lr=1e-3,
        warmup_steps=min(100, max(1, steps // 10)),
        stage1_steps=steps,
        stage1_label_smoothing=0.05,
        checkpoint_every=max(100, steps // 4),
        max_dur=30.0,
    )


def pretrain_spec(pairs: int) -> Any:
    """``pairs`` alignment and graded-defect pairs and a third as many description pairs."""
    from rm_service.core.pretrain import PretrainSpec

    return PretrainSpec(n_alignment=pairs, n_musicality=pairs, n_text=pairs // 3)


def pretrain_on_folder(
    audio_dir: str | Path, out_dir: str | Path, *, pairs: int = 600, steps: int = 1000
) -> tuple[Path, dict[str, Any]]:
    """Stage 1 on pairs constructed from every audio file under ``audio_dir``; the checkpoint and pair counts."""
    import json

    from rm_service.core.starter import pretrain_model

    checkpoint = pretrain_model(
        audio_dirs=[audio_dir],
        out_dir=out_dir,
        spec=pretrain_spec(pairs),
        config=pretrain_config(steps),
        cache_dir=settings.RM_CACHE_DIR,
        device=device(),
    )
    return checkpoint, json.loads((Path(out_dir) / "pairs" / "summary.json").read_text())


def starter_build(out_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """Build (or reuse) the offline starter model in ``out_dir``; its checkpoint and its build record."""
    import json

    from rm_service.core.starter import build_starter

    checkpoint = build_starter(out_dir, cache_dir=settings.RM_CACHE_DIR)
    return checkpoint, json.loads((Path(out_dir) / "starter.json").read_text())


def starter_panel(out_dir: str | Path) -> dict[str, Any]:
    """The evaluation panel of the starter in ``out_dir`` on held-out tracks (computed once per build)."""
    from rm_service.core.starter import starter_panel as core_starter_panel

    return json_safe(core_starter_panel(out_dir, cache_dir=settings.RM_CACHE_DIR))


def labelled_rows(path: str | Path, *, dataset_root: str | Path) -> int:
    """Pairs plus MOS rows of a JSONL split whose audio files all exist (raises ``DataError``)."""
    dataset = load_dataset(path, dataset_root=dataset_root, check_files=True)
    return len(dataset.pairs) + len(dataset.mos)


# --- Scoring --------------------------------------------------------------------------------------------


_loaded: dict[str, Scorer] = {}
_lock = threading.Lock()
# Held around every ``score_batch`` of the shared scorer: the Celery task thread and the batching scoring
# server's thread (rm_service/serving.py) use the same scorer, whose featurizer LRU is not thread-safe.
scoring_lock = threading.Lock()


def scorer_for(version: ModelVersion) -> Scorer:
    """The process's scorer for ``version``: loaded once, replaced when another version is asked for.

    ``score_batch(items, batch_size=, max_dur=) -> np.ndarray[N, 2]`` (column 0 alignment, column 1
    musicality) scores items with ``audio``, ``text``, ``lyrics`` and ``ref_audio``.
    """
    return scorer_for_checkpoint(version_id=version.pk, checkpoint_path=version.checkpoint_path)


def scorer_for_checkpoint(*, version_id: int, checkpoint_path: str) -> Scorer:
    """``scorer_for`` by the version's id and checkpoint path (what a scoring-server request carries)."""
    key = f"{version_id}:{checkpoint_path}"
    with _lock:
        if key not in _loaded:
            logger.info("loading model version %s from %s on %s", version_id, checkpoint_path, device())
            _loaded.clear()
            _loaded[key] = _load_scorer(checkpoint_path)
        return _loaded[key]


def _load_scorer(checkpoint: str | Path) -> Scorer:
    """The core's scorer for a checkpoint, on this process's device, sharing the on-disk embedding cache."""
    return core_load_scorer(checkpoint, device=device(), cache_dir=settings.RM_CACHE_DIR)


# --- Training -------------------------------------------------------------------------------------------


@dataclass
class TrainOutcome:
    """How a training run ended; ``resumable`` says whether a trainer state is left to continue from."""

    status: str  # "succeeded" | "cancelled" | "failed"
    checkpoint: CheckpointInfo | None = None  # the final checkpoint when succeeded
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    resumable: bool = False


ProgressFn = Callable[[int, int, "float | None", "dict[str, Any] | None"], bool]


def train_config(run: TrainingRun) -> TrainConfig:
    """The core ``TrainConfig`` for a run: its preset, then the run's overrides (``model`` merged)."""
    preset = PRESETS.get(run.preset, {})
    overrides = dict(run.config or {})
    model = {**TrainConfig().model.to_dict(), **preset.get("model", {}), **overrides.pop("model", {})}
    data = {**TrainConfig().to_dict(), **{k: v for k, v in preset.items() if k != "model"}, **overrides}
    data.update(model=model, encoder=run.encoder)
    return TrainConfig.from_dict(data)


def train_run(run: TrainingRun, *, on_progress: ProgressFn) -> TrainOutcome:
    """Train (or continue) ``run`` in its output directory and evaluate the result on its test split.

    Never raises for a failed run: the outcome carries the error, and whether the run can resume.
    """
    layout = RunLayout(Path(run.output_dir))
    try:
        return _train_and_evaluate(run, layout, on_progress=on_progress)
    except Exception as exc:
        logger.exception("training run %s failed", run.pk)
        return TrainOutcome("failed", error=f"{type(exc).__name__}: {exc}", resumable=_resumable(layout))


def _train_and_evaluate(run: TrainingRun, layout: RunLayout, *, on_progress: ProgressFn) -> TrainOutcome:
    if run.source == "pretrain":
        return _pretrain_and_evaluate(run, layout, on_progress=on_progress)
    config = train_config(run)
    total = (config.stage1_steps if run.pseudo_jsonl else 0) + config.stage2_max_steps

    def progress(p: TrainProgress) -> None:
        if not on_progress(p.step, total if p.stage != "done" else p.step, p.loss, p.val):
            raise TrainingCancelled()

    result = core_train.train(
        train_jsonl=run.train_jsonl,
        dataset_root=run.dataset_root,
        out_dir=layout.root,
        config=config,
        val_jsonl=run.validation_jsonl or None,
        pseudo_jsonl=run.pseudo_jsonl or None,
        device=device(),
        cache_dir=settings.RM_CACHE_DIR,
        progress=progress,
        resume=_prepare_resume(run, layout),
    )
    if result.status == "cancelled" or result.checkpoint is None:
        return TrainOutcome("cancelled", resumable=_resumable(layout))
    metrics: dict[str, Any] = {"validation": json_safe(result.metrics.get("best_val")), "steps": result.steps}
    test = run.test_jsonl or run.validation_jsonl
    if test:
        metrics["test"] = evaluate_checkpoint(result.checkpoint, test, run.dataset_root, layout.eval)
        metrics["test"]["split"] = "test" if run.test_jsonl else "validation"
    return TrainOutcome(
        "succeeded", checkpoint=read_checkpoint_info(result.checkpoint), metrics=metrics, resumable=_resumable(layout)
    )


def _pretrain_and_evaluate(run: TrainingRun, layout: RunLayout, *, on_progress: ProgressFn) -> TrainOutcome:
    """Stage 1 on pairs cut from the run's clips (built once, kept for a resume), then the panel on held-out clips.

    The clips are split by file (``PretrainSpec.validation_fraction``): the validation pairs, which also
    drive the test metrics and the panel, come from clips no training pair was cut from.
    """
    from rm_service.core.pretrain import build_pretrain_pairs

    options = dict((run.config or {}).get("pretrain", {}))
    pairs_dir = Path(run.dataset_root)
    if not (pairs_dir / "summary.json").is_file():
        build_pretrain_pairs(
            options.get("clips", []), pairs_dir, spec=pretrain_spec(int(options["pairs"])), use_split="all"
        )
    config = pretrain_config(int(options["steps"]))
    validation = pairs_dir / "validation.jsonl"
    has_validation = validation.is_file() and validation.stat().st_size > 0

    def progress(p: TrainProgress) -> None:
        if not on_progress(p.step, config.stage1_steps if p.stage != "done" else p.step, p.loss, p.val):
            raise TrainingCancelled()

    result = core_train.train(
        train_jsonl=None,
        dataset_root=pairs_dir,
        out_dir=layout.root,
        config=config,
        val_jsonl=validation if has_validation else None,
        pseudo_jsonl=pairs_dir / "train.jsonl",
        pseudo_root=pairs_dir,
        device=device(),
        cache_dir=settings.RM_CACHE_DIR,
        progress=progress,
        resume=_prepare_resume(run, layout),
    )
    if result.status == "cancelled" or result.checkpoint is None:
        return TrainOutcome("cancelled", resumable=_resumable(layout))
    metrics: dict[str, Any] = {"validation": json_safe(result.metrics.get("best_val")), "steps": result.steps}
    if has_validation:
        metrics["test"] = evaluate_checkpoint(result.checkpoint, str(validation), str(pairs_dir), layout.eval)
        metrics["test"]["split"] = "held-out clips"
    return TrainOutcome(
        "succeeded", checkpoint=read_checkpoint_info(result.checkpoint), metrics=metrics, resumable=_resumable(layout)
    )


def _resumable(layout: RunLayout) -> bool:
    return layout.latest_state() is not None


def _prepare_resume(run: TrainingRun, layout: RunLayout) -> bool:
    """Resume when the run directory has a state; seed it from ``resume_from`` when that is elsewhere."""
    source = Path(run.resume_from) if run.resume_from else None
    if source is not None and not str(source).startswith(str(layout.root)) and layout.latest_state() is None:
        layout.adopt_state(source)
    return layout.latest_state() is not None


def evaluate_checkpoint(checkpoint: str | Path, jsonl: str, dataset_root: str, out_dir: Path) -> dict[str, Any]:
    """Test metrics of a checkpoint through the core's ``evaluate`` (CMI-RewardBench semantics).

    Returns per head (``alignment``, ``musicality``) ``{group: {"accuracy", "n"}}`` with groups ``overall``,
    ``modality:T|L|A|C``, ``confidence:<3|=3|>3`` and ``vocal:instru|vocal``, plus the core's raw summary rows
    (which also hold LCC/SRCC/KTAU for MOS rows) under ``summary``, and the evaluation panel (untrained
    seeds, feature baselines, gain probe, verdict) under ``panel``.
    """
    scorer = _load_scorer(checkpoint)
    report = evaluate.evaluate(jsonl=jsonl, dataset_root=dataset_root, scorer=scorer, out_dir=out_dir)
    out: dict[str, Any] = {"summary": json_safe(report.summary)}
    for task in ("alignment", "musicality"):
        groups: dict[str, list[tuple[float, int]]] = {}
        for row in report.summary:
            if row["task"] == task and row.get("ACC") is not None:
                groups.setdefault("overall", []).append((row["ACC"], row["n"]))
        for row in report.detail:
            key = _detail_group(row)
            if row["task"] == task and key and row.get("ACC") is not None:
                groups.setdefault(key, []).append((row["ACC"], row["n"]))
        out[task] = {
            g: {"accuracy": sum(a * n for a, n in v) / max(1, sum(n for _, n in v)), "n": sum(n for _, n in v)}
            for g, v in groups.items()
        }
    out["panel"] = _panel(scorer, jsonl, dataset_root)
    return out


def _panel(scorer: Any, jsonl: str, dataset_root: str) -> dict[str, Any] | None:
    """The model beside untrained seeds and one-feature baselines on the same pairs (None without pairs)."""
    from rm_service.core.panel import run_panel

    try:
        return json_safe(run_panel(jsonl=jsonl, dataset_root=dataset_root, scorer=scorer, gain_pairs=20))
    except ValueError:  # no labelled pairs (MOS rows only)
        return None


def _detail_group(row: dict[str, Any]) -> str | None:
    key, value = row.get("group_key"), row.get("group_value")
    if key == "modality":
        return f"modality:{value}"
    if key == "confidence" and row.get("ref_category") == "all":
        return f"confidence:{value}"
    if key == "modality_type":
        return f"vocal:{value}"
    return None


@overload
def json_safe(value: dict[str, Any]) -> dict[str, Any]: ...
@overload
def json_safe(value: list[Any] | tuple[Any, ...]) -> list[Any]: ...
@overload
def json_safe(value: float) -> float | None: ...
@overload
def json_safe(value: None) -> None: ...
def json_safe(value: object) -> object:
    """NaN and infinities become None (PostgreSQL's jsonb rejects them), in containers too."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
