from pathlib import Path

import numpy as np
import pytest
import torch

from rm_service.core.checkpoint import CheckpointError, save_checkpoint
from rm_service.core.encoders.builtin import AUDIO_DIM
from rm_service.core.model import RewardModel
from rm_service.core.score import CMIRewardBenchAdapter, Scorer, load_scorer, rank_scores
from rm_service.core.synth import MusicSpec, render, write_wav

from .conftest import CountingEncoder, tiny_config


@pytest.fixture
def model() -> RewardModel:
    torch.manual_seed(0)
    return RewardModel(tiny_config(audio_in_dim=AUDIO_DIM, text_in_dim=384))


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    paths = []
    for i, spec in enumerate([MusicSpec(), MusicSpec(tempo_bpm=140, mode="minor"), MusicSpec(clipping=0.8)]):
        path = tmp_path / f"c{i}.wav"
        write_wav(path, render(spec, duration_s=3.0 + i, seed=i), 24000)
        paths.append(path)
    return paths


def test_it_scores_alignment_and_musicality_independently_of_batching(
    model: RewardModel, hash_encoder: CountingEncoder, clips: list[Path]
) -> None:
    scorer = Scorer(model, hash_encoder)
    items = [
        {"audio": clips[0], "text": "a calm piano piece"},
        {"audio": clips[1], "text": "fast minor strings", "lyrics": "la la la", "ref_audio": clips[2]},
        {"audio": clips[2]},
    ]
    one_batch = scorer.score_batch(items, batch_size=8)
    singles = scorer.score_batch(items, batch_size=1)
    assert one_batch.shape == (3, 2) and one_batch.dtype == np.float32
    np.testing.assert_allclose(one_batch, singles, atol=1e-5)
    np.testing.assert_allclose(scorer.score_batch(items[::-1], batch_size=2)[::-1], one_batch, atol=1e-5)


def test_it_never_re_encodes_a_clip_it_has_scored(
    model: RewardModel, hash_encoder: CountingEncoder, clips: list[Path], tmp_path: Path
) -> None:
    from rm_service.core.encoders.cache import EmbeddingCache

    items = [{"audio": c, "text": "a piece"} for c in clips]
    Scorer(model, hash_encoder, cache=EmbeddingCache(tmp_path / "cache")).score_batch(items)
    assert (hash_encoder.audio_calls, hash_encoder.text_calls) == (3, 1)
    again = Scorer(model, hash_encoder, cache=EmbeddingCache(tmp_path / "cache"))
    again.score_batch(items)
    again.score_batch(items)
    assert (hash_encoder.audio_calls, hash_encoder.text_calls) == (3, 1)


def test_it_averages_window_scores_for_mean10(
    model: RewardModel, hash_encoder: CountingEncoder, tmp_path: Path
) -> None:
    wav = render(MusicSpec(), duration_s=25.0, seed=4)
    path = tmp_path / "long.wav"
    write_wav(path, wav, 24000)
    scorer = Scorer(model, hash_encoder)
    mean10 = scorer.score_batch([{"audio": path, "text": "x"}], strategy="mean10")
    # The same 10 s + 10 s + 5 s windows scored as separate clips, then averaged by hand.
    pieces = [wav[:240000], wav[240000:480000], wav[480000:]]
    windows = scorer.score_batch([{"audio": p, "text": "x"} for p in pieces], strategy="first120")
    np.testing.assert_allclose(mean10[0], windows.mean(axis=0), atol=2e-3)  # 16-bit WAV vs float pieces
    first10 = scorer.score_batch([{"audio": path, "text": "x"}], strategy="first10")
    np.testing.assert_allclose(first10[0], windows[0], atol=2e-3)
    assert not np.allclose(mean10, first10)


def test_it_ranks_candidates_by_the_weighted_score(
    model: RewardModel, hash_encoder: CountingEncoder, clips: list[Path]
) -> None:
    scorer = Scorer(model, hash_encoder)
    instruction = {"text": "a calm piano piece", "lyrics": "", "ref_audio": None}
    scores = scorer.score_batch([{**instruction, "audio": c} for c in clips])
    ranked = scorer.rank(instruction, clips, top_k=2)
    mean = scores.mean(axis=1)
    assert [r.index for r in ranked] == list(np.argsort(-mean, kind="stable"))
    assert [r.rank for r in ranked] == [1, 2, 3] and [r.selected for r in ranked] == [True, True, False]
    assert ranked[0].score == pytest.approx(float(mean[ranked[0].index]), abs=1e-6)
    by_alignment = scorer.rank(instruction, clips, weights=(1.0, 0.0))
    assert [r.index for r in by_alignment] == list(np.argsort(-scores[:, 0], kind="stable"))
    with pytest.raises(ValueError, match="top_k"):
        scorer.rank(instruction, clips, top_k=0)


def test_it_ranks_by_the_weighted_mean_of_the_heads_keeping_input_order_on_ties() -> None:
    scores = np.array([[1.0, 3.0], [4.0, 0.0], [3.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    ranked = rank_scores(scores, top_k=1, weights=(3.0, 1.0))
    assert [(r.index, r.rank, r.selected) for r in ranked] == [
        (1, 1, True),
        (2, 2, False),
        (0, 3, False),
        (3, 4, False),
    ]
    assert [r.score for r in ranked] == [3.0, 2.5, 1.5, 0.0]  # (3 a + m) / 4
    tied = rank_scores(np.array([[1.0, 1.0], [2.0, 0.0], [0.0, 2.0]]), top_k=2, weights=(0.5, 0.5))
    assert [r.index for r in tied] == [0, 1, 2] and [r.selected for r in tied] == [True, True, False]
    with pytest.raises(ValueError, match="positive sum"):
        rank_scores(scores, top_k=1, weights=(0.0, 0.0))


def test_it_serves_the_cmi_rewardbench_adapter_contract(
    model: RewardModel, hash_encoder: CountingEncoder, clips: list[Path], tmp_path: Path
) -> None:
    ckpt = save_checkpoint(
        tmp_path / "ckpt",
        model=model,
        encoder_name="builtin",
        encoder_options={"text_model": "hash"},
        encoder_id=hash_encoder.id,
    )
    adapter = CMIRewardBenchAdapter(checkpoint=str(ckpt), device="cpu")
    assert adapter.sr == 24000

    class BenchmarkBatchInput:  # the harness passes objects with these attributes; missing audio is a tensor
        def __init__(self, audio: object, text: str, lyrics: str, ref_audio: object) -> None:
            self.audio, self.text, self.lyrics, self.ref_audio = audio, text, lyrics, ref_audio

    inputs = [
        BenchmarkBatchInput(str(clips[0]), "calm piano", "", None),
        BenchmarkBatchInput(torch.zeros(adapter.sr), "calm piano", "la", str(clips[1])),
    ]
    out = adapter.score_batch(inputs=inputs, batch_size=2, max_dur=30.0)
    assert out.shape == (2, 2) and np.isfinite(out).all()
    expected = Scorer(model, hash_encoder).score_batch([{"audio": clips[0], "text": "calm piano"}], max_dur=30.0)
    np.testing.assert_allclose(out[:1], expected, atol=1e-6)


def test_it_refuses_a_checkpoint_trained_on_another_encoder(
    model: RewardModel, hash_encoder: CountingEncoder, tmp_path: Path
) -> None:
    ckpt = save_checkpoint(
        tmp_path / "ckpt",
        model=model,
        encoder_name="builtin",
        encoder_options={"text_model": "hash"},
        encoder_id="builtin/dsp-v0-old",
    )
    with pytest.raises(ValueError, match="dsp-v0-old"):
        load_scorer(ckpt)
    with pytest.raises(CheckpointError, match="not found"):
        load_scorer(tmp_path / "missing")
    (tmp_path / "ckpt" / "config.json").unlink()
    with pytest.raises(CheckpointError, match="missing config.json"):
        load_scorer(ckpt)


def test_it_names_an_item_without_audio_or_with_a_missing_file(
    model: RewardModel, hash_encoder: CountingEncoder, tmp_path: Path
) -> None:
    from rm_service.core.audio import AudioError

    with pytest.raises(ValueError, match="item 1 has no audio"):
        Scorer(model, hash_encoder).score_batch([{"audio": np.zeros(24000, np.float32)}, {"text": "x"}])
    with pytest.raises(AudioError, match="audio file not found: .*gone.wav"):
        Scorer(model, hash_encoder).score_batch([{"audio": tmp_path / "gone.wav"}])
