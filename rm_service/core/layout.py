"""The on-disk format of a training run and of a checkpoint: file names, the LATEST pointer, ``config.json``.

Torch-free, so that anything which only inspects runs and checkpoints (the Django edge, scripts) can use it
without loading the model code. It is the single owner of these names; ``checkpoint`` and ``train`` write
through it.

A run directory holds ``state/step-NNNNNN/`` (resumable trainer states; ``state/LATEST`` names the newest),
``best/`` (the best validation checkpoint), ``model/`` (the final checkpoint, written last) and ``eval/``
(test-split predictions). A checkpoint directory holds ``model.safetensors``, ``config.json``,
``metadata.json`` and, for a trainer state, ``trainer.pt``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METADATA = "metadata.json"
TRAINER_STATE = "trainer.pt"
DEFAULT_STRATEGY = "first120"


class CheckpointError(FileNotFoundError):
    """A checkpoint directory is missing or incomplete; the message names the missing file."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What ``config.json`` says: how to rebuild the model and the encoder that feeds it."""

    path: Path
    model: dict[str, Any]  # RewardModelConfig.to_dict()
    encoder_name: str
    encoder_options: dict[str, Any]
    encoder_id: str
    strategy: str  # default long-audio strategy for scoring (the training window)


def checkpoint_dir(path: str | Path) -> Path:
    """The checkpoint directory of ``path`` (a directory, or the path of its ``model.safetensors``)."""
    path = Path(path)
    return path.parent if path.name == WEIGHTS and path.is_file() else path


def is_checkpoint(path: str | Path) -> bool:
    return (checkpoint_dir(path) / WEIGHTS).is_file()


def checkpoint_config(
    *, model: dict[str, Any], encoder_name: str, encoder_options: dict[str, Any], encoder_id: str, strategy: str
) -> dict[str, Any]:
    """The content of ``config.json``."""
    return {
        "format": FORMAT_VERSION,
        "model": model,
        "encoder": {"name": encoder_name, "options": encoder_options, "id": encoder_id},
        "strategy": strategy,
    }


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """Read a checkpoint's ``config.json``.

    Raises:
        CheckpointError: the directory, its weights or its config are missing, or the config is malformed.
    """
    path = checkpoint_dir(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint not found: {path}")
    for name in (WEIGHTS, CONFIG):
        if not (path / name).is_file():
            raise CheckpointError(f"checkpoint {path} is missing {name}")
    try:
        config = json.loads((path / CONFIG).read_text())
        encoder = config["encoder"]
        return CheckpointInfo(
            path=path,
            model=dict(config["model"]),
            encoder_name=encoder["name"],
            encoder_options=dict(encoder.get("options") or {}),
            encoder_id=encoder["id"],
            strategy=config.get("strategy", DEFAULT_STRATEGY),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has a malformed {CONFIG}: {exc}") from exc


def read_metadata(path: str | Path) -> dict[str, Any]:
    """A checkpoint's ``metadata.json`` (the training record); empty when it has none."""
    metadata = checkpoint_dir(path) / METADATA
    return json.loads(metadata.read_text()) if metadata.is_file() else {}


@dataclass(frozen=True)
class RunLayout:
    """The paths of one training run directory."""

    root: Path

    @property
    def states(self) -> Path:
        return self.root / "state"

    @property
    def best(self) -> Path:
        return self.root / "best"

    @property
    def final(self) -> Path:
        return self.root / "model"

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    def state(self, step: int) -> Path:
        return self.states / f"step-{step:06d}"

    def latest_state(self) -> Path | None:
        """The newest resumable trainer state (named by ``state/LATEST``), if there is a complete one."""
        pointer = self.states / "LATEST"
        if not pointer.is_file():
            return None
        path = self.states / pointer.read_text().strip()
        return path if (path / WEIGHTS).is_file() and (path / TRAINER_STATE).is_file() else None

    def point_latest(self, state: Path) -> None:
        """Make ``state`` (a directory under ``state/``) the newest; atomic, so a reader never sees half a name."""
        pointer = self.states / "LATEST"
        tmp = pointer.with_suffix(".tmp")
        tmp.write_text(state.name)
        tmp.replace(pointer)

    def prune_states(self, *, keep: int) -> None:
        """Delete all but the newest ``keep`` trainer states."""
        for old in sorted(self.states.glob("step-*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)

    def adopt_state(self, source: Path) -> None:
        """Copy a trainer state from elsewhere into this run and make it the newest (to resume from it)."""
        self.states.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, self.states / source.name, dirs_exist_ok=True)
        self.point_latest(self.states / source.name)
