"""The run-directory and checkpoint format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rm_service.core.layout import (
    CONFIG,
    TRAINER_STATE,
    WEIGHTS,
    CheckpointError,
    RunLayout,
    checkpoint_config,
    is_checkpoint,
    read_checkpoint_info,
)


def _state(layout: RunLayout, step: int, *, trainer: bool = True) -> Path:
    path = layout.state(step)
    path.mkdir(parents=True)
    (path / WEIGHTS).write_bytes(b"w")
    if trainer:
        (path / TRAINER_STATE).write_bytes(b"t")
    return path


def test_it_points_latest_at_the_newest_complete_state_and_prunes_old_ones(tmp_path: Path) -> None:
    layout = RunLayout(tmp_path / "run")
    assert layout.latest_state() is None
    for step in (3, 6, 9):
        layout.point_latest(_state(layout, step))
    assert layout.latest_state() == tmp_path / "run" / "state" / "step-000009"
    assert (layout.states / "LATEST").read_text() == "step-000009"
    layout.prune_states(keep=2)
    assert sorted(p.name for p in layout.states.glob("step-*")) == ["step-000006", "step-000009"]
    layout.point_latest(_state(layout, 12, trainer=False))  # weights without a trainer state cannot resume
    assert layout.latest_state() is None


def test_it_adopts_a_state_from_another_run(tmp_path: Path) -> None:
    source = _state(RunLayout(tmp_path / "old"), 4)
    layout = RunLayout(tmp_path / "new")
    layout.adopt_state(source)
    assert layout.latest_state() == layout.state(4) and (layout.state(4) / TRAINER_STATE).read_bytes() == b"t"


def test_it_reads_a_checkpoint_config_and_names_what_is_missing(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint_info(ckpt)
    ckpt.mkdir()
    (ckpt / WEIGHTS).write_bytes(b"w")
    assert is_checkpoint(ckpt) and is_checkpoint(ckpt / WEIGHTS) and not is_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=f"missing {CONFIG}"):
        read_checkpoint_info(ckpt)
    (ckpt / CONFIG).write_text("{}")
    with pytest.raises(CheckpointError, match="malformed"):
        read_checkpoint_info(ckpt)
    config = checkpoint_config(
        model={"d_model": 8},
        encoder_name="builtin",
        encoder_options={"text_model": "hash"},
        encoder_id="e1",
        strategy="first10",
    )
    (ckpt / CONFIG).write_text(json.dumps(config))
    info = read_checkpoint_info(ckpt / WEIGHTS)
    assert (info.path, info.model, info.encoder_name, info.encoder_id, info.strategy) == (
        ckpt,
        {"d_model": 8},
        "builtin",
        "e1",
        "first10",
    )
    assert info.encoder_options == {"text_model": "hash"}
