"""The per-worker-process side of the reward model: device choice, the lazily loaded scorer, training.

Nothing here touches torch or CUDA at import time; the web process imports this module only for the
cheap helpers (``last_checkpoint``, ``checkpoint_info``). Inside an rm worker the model and its encoder
are loaded on first use, kept for the life of the process, and reloaded when a job names another
ModelVersion (which is what happens after a new version is activated).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from rm_service.models import ModelVersion, TrainingRun

logger = logging.getLogger(__name__)

# Training presets: "paper" is the core's defaults (d_model 768, ~30M parameters); "tiny" trains in seconds on
# CPU and is what the tests and the demo use; "small" sits between.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "model": {"d_model": 64, "n_heads": 2, "dim_head": 32, "prompt_depth": 1, "joint_depth": 1, "mlp_dim": 64},
        "batch_size": 8,
        "lr": 1e-3,
        "warmup_steps": 5,
        "stage1_steps": 20,
        "stage2_max_steps": 60,
        "eval_every": 10,
        "patience": 5,
        "checkpoint_every": 10,
    },
    "small": {
        "model": {"d_model": 256, "n_heads": 4, "dim_head": 64, "prompt_depth": 2, "joint_depth": 1, "mlp_dim": 256},
        "batch_size": 16,
        "lr": 3e-4,
        "warmup_steps": 20,
        "stage1_steps": 200,
        "stage2_max_steps": 400,
        "eval_every": 25,
        "checkpoint_every": 25,
    },
    "paper": {},
}


def device() -> str:
    """``RM_DEVICE`` if set, else CUDA when this process sees a GPU (``CUDA_VISIBLE_DEVICES``), else CPU."""
    forced = os.environ.get("RM_DEVICE", "")
    if forced:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# --- Checkpoints (cheap, no torch) ----------------------------------------------------------------------


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest resumable trainer state of a run directory (``state/LATEST``), if any."""
    pointer = run_dir / "state" / "LATEST"
    if not pointer.is_file():
        return None
    path = run_dir / "state" / pointer.read_text().strip()
    return path if (path / "model.safetensors").is_file() else None


def checkpoint_info(path: str | Path) -> dict[str, Any]:
    """Model config and encoder of a checkpoint directory, read from its ``config.json``."""
    config = json.loads((Path(path) / "config.json").read_text())
    encoder = config.get("encoder", {})
    return {
        "config": config.get("model", {}),
        "encoder": encoder.get("name", ""),
        "encoder_id": encoder.get("id", ""),
        "strategy": config.get("strategy", "first120"),
    }


# --- Scoring --------------------------------------------------------------------------------------------


_loaded: dict[str, Any] = {}
_lock = threading.Lock()


def load_scorer(checkpoint: str) -> Any:
    """The core's ``Scorer`` for a checkpoint, on this process's device, sharing the on-disk embedding cache."""
    from rm_service.score import load_scorer as core_load_scorer

    return core_load_scorer(checkpoint, device=device(), cache_dir=settings.RM_CACHE_DIR)


def scorer_for(version: ModelVersion) -> Any:
    """The process's scorer for ``version``: loaded once, replaced when another version is asked for.

    The returned object has ``score_batch(items, batch_size=, max_dur=) -> np.ndarray[N, 2]`` (column 0
    alignment, column 1 musicality) over items with ``audio``, ``text``, ``lyrics`` and ``ref_audio``.
    """
    key = f"{version.pk}:{version.checkpoint_path}"
    with _lock:
        if _loaded.get("key") != key:
            logger.info("loading model version %s from %s on %s", version.pk, version.checkpoint_path, device())
            _loaded.clear()
            _loaded.update(key=key, scorer=load_scorer(version.checkpoint_path))
        return _loaded["scorer"]


def loaded_version_key() -> str | None:
    return _loaded.get("key")


# --- Training -------------------------------------------------------------------------------------------


@dataclass
class TrainOutcome:
    checkpoint: str
    metrics: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False


ProgressFn = Callable[[int, int, "float | None", "dict[str, Any] | None"], bool]


def train_config(run: TrainingRun) -> Any:
    """The core ``TrainConfig`` for a run: its preset, then the run's overrides (``model`` merged)."""
    from rm_service.train import TrainConfig

    preset = PRESETS.get(run.preset, {})
    overrides = dict(run.config or {})
    model = {**TrainConfig().model.to_dict(), **preset.get("model", {}), **overrides.pop("model", {})}
    data = {**TrainConfig().to_dict(), **{k: v for k, v in preset.items() if k != "model"}, **overrides}
    data.update(model=model, encoder=run.encoder)
    return TrainConfig.from_dict(data)


def train_run(run: TrainingRun, *, on_progress: ProgressFn) -> TrainOutcome:
    """Train (or continue) ``run`` in its output directory and evaluate the result on its test split."""
    from rm_service.train import TrainingCancelled, train

    config = train_config(run)
    out_dir = Path(run.output_dir)
    resume = _prepare_resume(run, out_dir)
    has_stage1 = bool(run.pseudo_jsonl)
    total = (config.stage1_steps if has_stage1 else 0) + config.stage2_max_steps

    def progress(p: Any) -> None:
        if not on_progress(p.step, total if p.stage != "done" else p.step, p.loss, p.val):
            raise TrainingCancelled()

    result = train(
        train_jsonl=run.train_jsonl,
        dataset_root=run.dataset_root,
        out_dir=out_dir,
        config=config,
        val_jsonl=run.validation_jsonl or None,
        pseudo_jsonl=run.pseudo_jsonl or None,
        device=device(),
        cache_dir=settings.RM_CACHE_DIR,
        progress=progress,
        resume=resume,
    )
    if result.status == "cancelled" or result.checkpoint is None:
        return TrainOutcome(checkpoint="", cancelled=True)
    metrics: dict[str, Any] = {"validation": json_safe(result.metrics.get("best_val")), "steps": result.steps}
    test = run.test_jsonl or run.validation_jsonl
    if test:
        metrics["test"] = evaluate(str(result.checkpoint), test, run.dataset_root, out_dir / "eval")
        metrics["test"]["split"] = "test" if run.test_jsonl else "validation"
    return TrainOutcome(checkpoint=str(result.checkpoint), metrics=metrics)


def _prepare_resume(run: TrainingRun, out_dir: Path) -> bool:
    """Resume when the run directory has a state; seed it from ``resume_from`` when that is elsewhere."""
    import shutil

    if run.resume_from and not str(Path(run.resume_from)).startswith(str(out_dir)) and last_checkpoint(out_dir) is None:
        source = Path(run.resume_from)
        (out_dir / "state").mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, out_dir / "state" / source.name, dirs_exist_ok=True)
        (out_dir / "state" / "LATEST").write_text(source.name)
    return last_checkpoint(out_dir) is not None


def evaluate(checkpoint: str, jsonl: str, dataset_root: str, out_dir: Path) -> dict[str, Any]:
    """Test metrics of a checkpoint through the core's ``evaluate`` (CMI-RewardBench semantics).

    Returns per head (``alignment``, ``musicality``) ``{group: {"accuracy", "n"}}`` with groups ``overall``,
    ``modality:T|L|A|C``, ``confidence:<3|=3|>3`` and ``vocal:instru|vocal``, plus the core's raw summary rows
    (which also hold LCC/SRCC/KTAU for MOS rows) under ``summary``.
    """
    from rm_service.evaluate import evaluate as core_evaluate

    report = core_evaluate(jsonl=jsonl, dataset_root=dataset_root, scorer=load_scorer(checkpoint), out_dir=out_dir)
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
    return out


def _detail_group(row: dict[str, Any]) -> str | None:
    key, value = row.get("group_key"), row.get("group_value")
    if key == "modality":
        return f"modality:{value}"
    if key == "confidence" and row.get("ref_category") == "all":
        return f"confidence:{value}"
    if key == "modality_type":
        return f"vocal:{value}"
    return None


def json_safe(value: Any) -> Any:
    """NaN and infinities become None (PostgreSQL's jsonb rejects them)."""
    import math

    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
