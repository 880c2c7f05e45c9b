"""Training and scoring feed the model identical inputs for the same item (no train/score skew)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from rm_service.core.batch import BatchBuilder
from rm_service.core.data import Instruction, MosExample, PairExample
from rm_service.core.encoders.cache import EmbeddingCache
from rm_service.core.features import Featurizer
from rm_service.core.model import RewardInputs
from rm_service.core.score import Scorer
from rm_service.core.synth import MusicSpec, render, write_wav
from rm_service.core.train import MosCalibration, TrainConfig, batch_loss

from .conftest import CountingEncoder

# Every combination of the optional prompt modalities: (text, lyrics, reference clip).
MODALITIES = list(itertools.product([True, False], repeat=3))


class RecordingModel(torch.nn.Module):
    """Stands in for the reward model and keeps every batch it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(2))
        self.seen: list[RewardInputs] = []

    def forward(self, inputs: RewardInputs) -> torch.Tensor:
        self.seen.append(inputs)
        return torch.zeros(inputs.batch_size, 2) + self.bias


Row = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # text, lyrics, reference, evaluated audio tokens


def rows(inputs: RewardInputs) -> list[Row]:
    """The unpadded token arrays of each row of a batch."""
    pairs = [
        (inputs.text, inputs.text_mask),
        (inputs.lyrics, inputs.lyrics_mask),
        (inputs.ref_audio, inputs.ref_audio_mask),
        (inputs.audio, inputs.audio_mask),
    ]
    return [
        tuple(tokens[i][mask[i]].numpy() for tokens, mask in pairs)  # type: ignore[misc]
        for i in range(inputs.batch_size)
    ]


def assert_same_row(a: Row, b: Row) -> None:
    for name, x, y in zip(("text", "lyrics", "reference", "audio"), a, b, strict=True):
        assert x.shape == y.shape, f"{name}: {x.shape} in training, {y.shape} at scoring"
        np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 12 s clip and a 12 s reference: longer than one 10 s window, so the strategies differ."""
    root = tmp_path_factory.mktemp("long-clips")
    clip, reference = root / "clip.wav", root / "reference.wav"
    write_wav(clip, render(MusicSpec(tempo_bpm=140), duration_s=12.0, seed=1), 24000)
    write_wav(reference, render(MusicSpec(mode="minor"), duration_s=12.0, seed=2), 24000)
    return clip, reference


def instructions(reference: Path) -> list[Instruction]:
    return [
        Instruction(
            "a fast bright piano piece" if text else "",
            "la la la\nsing along" if lyrics else "",
            reference if ref else None,
        )
        for text, lyrics, ref in MODALITIES
    ]


def training_rows(encoder: CountingEncoder, cache: Path, strategy: str, clip: Path, reference: Path) -> list[Row]:
    """The rows ``train`` feeds the model: its batch builder and its loss, one MOS item per instruction."""
    config = TrainConfig(strategy=strategy, max_dur=None)
    batches = BatchBuilder(Featurizer(encoder, EmbeddingCache(cache)), strategy=config.strategy, max_dur=config.max_dur)
    model = RecordingModel()
    items: list[PairExample | MosExample] = [
        MosExample(f"row:{i}", instr, clip, 3.0, 3.0, instr.modality, {})
        for i, instr in enumerate(instructions(reference))
    ]
    batch_loss(
        model,  # type: ignore[arg-type]  # a stand-in that records what the reward model would receive
        MosCalibration(1.0, 5.0),
        batches,
        items,
        smoothing=0.0,
        mos_weight=1.0,
        device=torch.device("cpu"),
    )
    (inputs,) = model.seen
    return rows(inputs)


def scoring_rows(encoder: CountingEncoder, cache: Path, strategy: str, clip: Path, reference: Path) -> list[Row]:
    """The rows ``Scorer.score_batch`` feeds the model for the same instructions and clip."""
    model = RecordingModel()
    scorer = Scorer(model, encoder, cache=EmbeddingCache(cache))  # type: ignore[arg-type]
    items = [
        {"audio": str(clip), "text": i.text, "lyrics": i.lyrics, "ref_audio": str(i.ref_audio) if i.ref_audio else None}
        for i in instructions(reference)
    ]
    scorer.score_batch(items, batch_size=64, strategy=strategy)
    (inputs,) = model.seen
    return rows(inputs)


@pytest.mark.parametrize("strategy", ["first120", "first10"])
def test_it_gives_the_model_the_same_inputs_in_training_and_scoring(
    strategy: str, hash_encoder: CountingEncoder, long_clips: tuple[Path, Path], tmp_path: Path
) -> None:
    clip, reference = long_clips
    trained = training_rows(hash_encoder, tmp_path / "cache", strategy, clip, reference)
    scored = scoring_rows(hash_encoder, tmp_path / "cache", strategy, clip, reference)
    assert len(trained) == len(scored) == len(MODALITIES)
    for (text, lyrics, ref), a, b in zip(MODALITIES, trained, scored, strict=True):
        assert (len(a[0]) > 0, len(a[1]) > 0, len(a[2]) > 0) == (text, lyrics, ref)
        assert_same_row(a, b)


def test_it_scores_each_mean10_window_as_a_first10_trained_model_saw_its_clip(
    hash_encoder: CountingEncoder, long_clips: tuple[Path, Path], tmp_path: Path
) -> None:
    clip, reference = long_clips
    trained = training_rows(hash_encoder, tmp_path / "cache", "first10", clip, reference)
    scored = scoring_rows(hash_encoder, tmp_path / "cache", "mean10", clip, reference)
    assert len(scored) == 2 * len(MODALITIES)  # a 10 s and a 2 s window per item
    for i, row in enumerate(trained):
        first, second = scored[2 * i], scored[2 * i + 1]
        assert_same_row(row, first)
        assert_same_row(row[:3] + (second[3],), second)  # the same prompt with the second window
        assert 0 < len(second[3]) < len(first[3])


def test_it_cuts_a_reference_clip_to_the_strategy_window(
    hash_encoder: CountingEncoder, long_clips: tuple[Path, Path]
) -> None:
    _, reference = long_clips
    featurizer = Featurizer(hash_encoder)
    lengths = {
        s: len(BatchBuilder(featurizer, strategy=s).prompt(text="", lyrics="", ref_audio=reference).ref_audio)
        for s in ("first120", "first10", "mean10")
    }
    assert lengths == {"first120": 301, "first10": 251, "mean10": 251}  # 25 tokens/s, plus one
