"""Fixtures of the reward-model edge tests: a tiny synthetic dataset, a tiny trained checkpoint, fast presets.

RM_ROOT points at a per-session temporary directory for this process *and* for the Celery worker subprocess
(the worker's environment is copied from os.environ when it starts).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from rm_service.presets import PRESETS

_RM_ROOT = Path(tempfile.mkdtemp(prefix="rm-edge-"))
os.environ["RM_ROOT"] = str(_RM_ROOT)
os.environ["RM_CACHE_DIR"] = str(_RM_ROOT / "embeddings")
os.environ.setdefault("RM_DEVICE", "cpu")

# Tests train for a handful of steps on the builtin encoder with its hashed text embedding (no MiniLM load).
FAST_CONFIG: dict[str, Any] = {
    "stage2_max_steps": 8,
    "eval_every": 4,
    "checkpoint_every": 4,
    "batch_size": 8,
    "encoder_options": {"text_model": "hash"},
}


@pytest.fixture(autouse=True)
def _rm_root(settings) -> Path:  # type: ignore[no-untyped-def]
    settings.RM_ROOT = _RM_ROOT
    settings.RM_CACHE_DIR = _RM_ROOT / "embeddings"
    return _RM_ROOT


@pytest.fixture(scope="session")
def synthetic_data() -> Path:
    """A small labelled dataset (train/validation/test JSONL + audio/) from the core's generator."""
    from rm_service.core.synth import make_synthetic_dataset

    out = _RM_ROOT / "synthetic"
    make_synthetic_dataset(
        out,
        n_instructions=12,
        pairs_per_instruction=2,
        mos_per_instruction=0,
        judged_per_instruction=0,
        duration_s=2.0,
        sr=16000,
        seed=7,
    )
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(synthetic_data: Path) -> Path:
    """A tiny model trained once per session with the core's ``train`` (no database involved)."""
    from rm_service.core.train import TrainConfig, train

    preset = PRESETS["tiny"]
    config = TrainConfig.from_dict(
        {
            **TrainConfig().to_dict(),
            **{k: v for k, v in preset.items() if k != "model"},
            **FAST_CONFIG,
            "model": {**TrainConfig().model.to_dict(), **preset["model"]},
        }
    )
    result = train(
        train_jsonl=synthetic_data / "train.jsonl",
        val_jsonl=synthetic_data / "validation.jsonl",
        dataset_root=synthetic_data,
        out_dir=_RM_ROOT / "session-model",
        config=config,
        cache_dir=_RM_ROOT / "embeddings",
    )
    assert result.checkpoint is not None
    return Path(result.checkpoint)


@pytest.fixture
def staff_browser(alice) -> Client:  # type: ignore[no-untyped-def]
    """A logged-in staff browser session (alice)."""
    browser = Client()
    browser.force_login(alice)
    return browser


@pytest.fixture
def rm_worker_alive() -> Iterator[None]:
    """Mark an rm worker as alive (the key a real worker's heartbeat writes), for API tests without a worker;
    the mark goes when the test ends, so no later test sees a worker that isn't there."""
    from rm_service.tasks import WORKER_TTL_S, rm_worker_heartbeat_key

    cache.set(rm_worker_heartbeat_key(), {"worker": "test"}, timeout=WORKER_TTL_S)
    yield
    cache.delete(rm_worker_heartbeat_key())


def empty_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    return path
