"""Reward-model checkpoints: ``model.safetensors`` + ``config.json`` + ``metadata.json`` in one directory.

The file names and the ``config.json`` format belong to ``layout``; this module adds the torch side: saving
the weights and rebuilding the model. ``config.json`` holds everything needed to rebuild and feed the model
(the ``RewardModelConfig``, the encoder backend name, options and id, the default long-audio strategy);
``metadata.json`` holds the training record (training config, data hashes, metrics, step, library versions).
Files are written to a temporary directory that is renamed into place, so a reader never sees a half-written
checkpoint.
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

from .layout import CONFIG, METADATA, WEIGHTS, CheckpointError, checkpoint_config, read_checkpoint_info, read_metadata
from .model import RewardModel, RewardModelConfig

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]


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
        config = checkpoint_config(
            model=model.config.to_dict(),
            encoder_name=encoder_name,
            encoder_options=encoder_options,
            encoder_id=encoder_id,
            strategy=strategy,
        )
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

    info = read_checkpoint_info(path)
    try:
        model = RewardModel(RewardModelConfig.from_dict(info.model))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {info.path} has a malformed {CONFIG}: {exc}") from exc
    model.load_state_dict(load_file(str(info.path / WEIGHTS)))
    model.to(device).eval()
    return Checkpoint(
        model=model,
        path=info.path,
        encoder_name=info.encoder_name,
        encoder_options=info.encoder_options,
        encoder_id=info.encoder_id,
        strategy=info.strategy,
        metadata=read_metadata(info.path),
    )
