"""The worker side of the edge: run configs, failure outcomes, JSON-safe metrics."""

from __future__ import annotations

import math
from pathlib import Path

from rm_service import worker
from rm_service.models import TrainingRun


def test_it_builds_a_run_config_from_its_preset_then_its_overrides() -> None:
    run = TrainingRun(preset="tiny", encoder="builtin", config={"lr": 0.5, "model": {"d_model": 32}})
    config = worker.train_config(run)
    assert (config.lr, config.batch_size, config.encoder) == (0.5, 8, "builtin")  # batch size from "tiny"
    assert (config.model.d_model, config.model.n_heads) == (32, 2)


def test_it_reports_a_failed_run_instead_of_raising(tmp_path: Path) -> None:
    run = TrainingRun(
        preset="tiny",
        encoder="builtin",
        train_jsonl=str(tmp_path / "missing.jsonl"),
        dataset_root=str(tmp_path),
        output_dir=str(tmp_path / "run"),
    )
    outcome = worker.train_run(run, on_progress=lambda *args: True)
    assert outcome.status == "failed" and "missing.jsonl" in outcome.error
    assert outcome.checkpoint is None and not outcome.resumable


def test_it_makes_metrics_json_safe() -> None:
    assert worker.json_safe({"a": [1.0, math.nan], "b": {"c": math.inf}, "d": "x"}) == {
        "a": [1.0, None],
        "b": {"c": None},
        "d": "x",
    }
    assert worker.last_checkpoint("") is None
