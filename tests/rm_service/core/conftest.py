"""Shared fixtures for the reward-model core tests: tiny configs, a fast text tower, synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rm_service.core.encoders.builtin import BuiltinEncoder
from rm_service.core.model import RewardInputs, RewardModelConfig, pad_tokens

torch.set_num_threads(2)


class CountingEncoder:
    """Wraps an encoder and counts the calls that reach it (to prove cache hits)."""

    def __init__(self, inner: BuiltinEncoder) -> None:
        self.inner = inner
        self.name, self.id, self.sample_rate = inner.name, inner.id, inner.sample_rate
        self.audio_dim, self.text_dim = inner.audio_dim, inner.text_dim
        self.audio_calls = 0
        self.text_calls = 0

    def options(self) -> dict[str, object]:
        return self.inner.options()

    def encode_audio(self, waveform: np.ndarray, sr: int) -> np.ndarray:
        self.audio_calls += 1
        return self.inner.encode_audio(waveform, sr)

    def encode_text(self, text: str) -> np.ndarray:
        self.text_calls += 1
        return self.inner.encode_text(text)


@pytest.fixture
def hash_encoder() -> CountingEncoder:
    """The builtin backend with the hashed-word text tower (fast; MiniLM is tested on its own)."""
    return CountingEncoder(BuiltinEncoder(text_model="hash"))


def tiny_config(**overrides: object) -> RewardModelConfig:
    values: dict[str, object] = dict(
        d_model=32, n_heads=2, dim_head=16, prompt_depth=1, joint_depth=1, mlp_dim=16, audio_in_dim=10, text_in_dim=12
    )
    values.update(overrides)
    return RewardModelConfig(**values)  # type: ignore[arg-type]


def random_item(lt: int, ll: int, lr: int, t: int, *, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(lt, 12, generator=g),
        torch.randn(ll, 12, generator=g),
        torch.randn(lr, 10, generator=g),
        torch.randn(t, 10, generator=g),
    ]


def collate(items: list[list[torch.Tensor]]) -> RewardInputs:
    text, text_mask = pad_tokens([i[0] for i in items], 12)
    lyrics, lyrics_mask = pad_tokens([i[1] for i in items], 12)
    ref, ref_mask = pad_tokens([i[2] for i in items], 10)
    audio, audio_mask = pad_tokens([i[3] for i in items], 10)
    return RewardInputs(text, text_mask, lyrics, lyrics_mask, ref, ref_mask, audio, audio_mask)


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset (train/validation/test JSONL + WAVs), generated once per session."""
    from rm_service.core.synth import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(
        root,
        n_instructions=16,
        pairs_per_instruction=1,
        judged_per_instruction=2,
        duration_s=1.5,
        seed=3,
        split_fractions=(0.5, 0.25, 0.25),
    )
    return root


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the session, so the tiny dataset is encoded once."""
    return tmp_path_factory.mktemp("embedding-cache")


def tiny_train_config(**overrides: object):  # type: ignore[no-untyped-def]
    from rm_service.core.train import TrainConfig

    values: dict[str, object] = dict(
        model=tiny_config(),
        encoder_options={"text_model": "hash"},
        batch_size=4,
        lr=3e-3,
        warmup_steps=2,
        stage1_steps=4,
        stage2_max_steps=8,
        eval_every=4,
        patience=5,
        checkpoint_every=3,
    )
    values.update(overrides)
    return TrainConfig(**values)  # type: ignore[arg-type]
