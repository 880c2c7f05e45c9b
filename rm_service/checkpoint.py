"""Reward-model checkpoints: ``model.safetensors`` + ``config.json`` + ``metadata.json`` in one directory.

``config.json`` holds everything needed to rebuild and feed the model: the ``RewardModelConfig``, the
encoder backend name, options and id, and the default long-audio strategy. ``metadata.json`` holds the
training record (training config, data hashes, metrics, step, library versions). Files are written to a
temporary directory that is renamed into place, so a reader never sees a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .model import RewardModel, RewardModelConfig

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METADATA = "metadata.json"


class CheckpointError(FileNotFoundError):
    """A checkpoint directory is missing or incomplete; the message names the missing file."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (in eval mode, on its device) and its records."""

    model: RewardModel
    path: Path
    encoder_name: str
    encoder_options: dict[str, Any]
    encoder_id: str
    strategy: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> RewardModelConfig:
        return self.model.config


def save_checkpoint(
    path: str | Path,
    *,
    model: RewardModel,
    encoder_name: str,
    encoder_options: dict[str, Any],
    encoder_id: str,
    strategy: str = "first120",
    metadata: dict[str, Any] | None = None,
    extra_files: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory atomically (replacing an existing one).

    Args:
        path: target directory.
        model: the reward model; its weights are stored as float32 safetensors.
        encoder_name, encoder_options, encoder_id: how to rebuild the encoder the model was trained on.
        strategy: default long-audio strategy for scoring.
        metadata: training record (JSON-serialisable).
        extra_files: name -> torch-serialisable object saved with ``torch.save`` (trainer state for resume).

    Returns:
        The checkpoint directory.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        weights = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(tmp / WEIGHTS))
        config = {
            "format": FORMAT_VERSION,
            "model": model.config.to_dict(),
            "encoder": {"name": encoder_name, "options": encoder_options, "id": encoder_id},
            "strategy": strategy,
        }
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
        (tmp / METADATA).write_text(json.dumps(metadata or {}, indent=2, sort_keys=True, default=str))
        for name, obj in (extra_files or {}).items():
            torch.save(obj, tmp / name)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild a reward model from a checkpoint directory (or its ``model.safetensors`` file).

    Args:
        path: checkpoint directory, or the path of its ``model.safetensors``.
        device: where to put the model.

    Returns:
        The ``Checkpoint`` with the model in eval mode.

    Raises:
        CheckpointError: the directory or one of its files is missing or malformed.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_file() and path.name == WEIGHTS:
        path = path.parent
    if not path.is_dir():
        raise CheckpointError(f"checkpoint not found: {path}")
    for name in (WEIGHTS, CONFIG):
        if not (path / name).is_file():
            raise CheckpointError(f"checkpoint {path} is missing {name}")
    try:
        config = json.loads((path / CONFIG).read_text())
        model_config = RewardModelConfig.from_dict(config["model"])
        encoder = config["encoder"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has a malformed {CONFIG}: {exc}") from exc
    model = RewardModel(model_config)
    model.load_state_dict(load_file(str(path / WEIGHTS)))
    model.to(device).eval()
    metadata_path = path / METADATA
    metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
    return Checkpoint(
        model=model,
        path=path,
        encoder_name=encoder["name"],
        encoder_options=dict(encoder.get("options") or {}),
        encoder_id=encoder["id"],
        strategy=config.get("strategy", "first120"),
        metadata=metadata,
    )
