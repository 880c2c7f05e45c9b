"""Helpers of the service tests."""

from __future__ import annotations

from pathlib import Path

from rm_service import services
from rm_service.models import TrainingRun
from tests.rm_service.conftest import FAST_CONFIG


def create_run(synthetic_data: Path, **overrides: object) -> TrainingRun:
    args: dict[str, object] = dict(
        user=None,
        train_jsonl=str(synthetic_data / "train.jsonl"),
        validation_jsonl=str(synthetic_data / "validation.jsonl"),
        test_jsonl=str(synthetic_data / "test.jsonl"),
        dataset_root=str(synthetic_data),
        preset="tiny",
        config=dict(FAST_CONFIG),
        enqueue=False,
    )
    args.update(overrides)
    return services.training_run_create(**args)  # type: ignore[arg-type]
