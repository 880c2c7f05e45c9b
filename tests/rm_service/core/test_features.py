"""Embedding cache and featurizer: hits, misses, no re-encoding, concurrent writers, window strategies."""

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from rm_service.core.encoders.cache import CacheKey, EmbeddingCache
from rm_service.core.features import Featurizer
from rm_service.core.synth import MusicSpec, render, write_wav

from .conftest import CountingEncoder


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "clip.wav"
    write_wav(path, render(MusicSpec(), duration_s=25.0, sr=24000, seed=0), 24000)
    return path


def test_it_encodes_a_clip_once_then_hits_the_cache(clip: Path, tmp_path: Path, hash_encoder: CountingEncoder) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    first = Featurizer(hash_encoder, cache).audio(clip)
    assert hash_encoder.audio_calls == 1 and cache.misses == 1
    # A new featurizer (a new process, say) finds it on disk; the encoder is not called again.
    again = Featurizer(hash_encoder, cache).audio(clip)
    assert hash_encoder.audio_calls == 1 and cache.hits == 1
    np.testing.assert_array_equal(first[0], again[0])
    # A copy of the file has the same content hash: still no encoder call.
    copy = tmp_path / "copy.wav"
    copy.write_bytes(clip.read_bytes())
    Featurizer(hash_encoder, cache).audio(copy)
    assert hash_encoder.audio_calls == 1


def test_it_keys_texts_by_content_and_skips_empty_ones(tmp_path: Path, hash_encoder: CountingEncoder) -> None:
    featurizer = Featurizer(hash_encoder, EmbeddingCache(tmp_path))
    assert featurizer.text("").shape == (0, 384) and featurizer.text("   ").shape == (0, 384)
    assert hash_encoder.text_calls == 0
    featurizer.text("a fast organ piece")
    featurizer.text("a fast organ piece")
    Featurizer(hash_encoder, EmbeddingCache(tmp_path)).text("a fast organ piece")
    assert hash_encoder.text_calls == 1
    featurizer.text("a slow organ piece")
    assert hash_encoder.text_calls == 2


def test_it_keys_by_encoder_id_and_window(clip: Path, tmp_path: Path, hash_encoder: CountingEncoder) -> None:
    cache = EmbeddingCache(tmp_path)
    featurizer = Featurizer(hash_encoder, cache)
    featurizer.audio(clip, strategy="first120")
    featurizer.audio(clip, strategy="first10")
    featurizer.audio(clip, strategy="first120", max_dur=5.0)
    assert hash_encoder.audio_calls == 3
    hash_encoder.id = "another-encoder"
    Featurizer(hash_encoder, cache).audio(clip, strategy="first120")
    assert hash_encoder.audio_calls == 4


def test_it_applies_the_long_audio_strategies(clip: Path, hash_encoder: CountingEncoder) -> None:
    featurizer = Featurizer(hash_encoder)
    first120 = featurizer.audio(clip, strategy="first120")
    first10 = featurizer.audio(clip, strategy="first10")
    mean10 = featurizer.audio(clip, strategy="mean10")
    assert [w.shape[0] for w in first120] == [626]  # all 25 s at 25 frames/s
    assert [w.shape[0] for w in first10] == [251]
    assert [w.shape[0] for w in mean10] == [251, 251, 126]  # 10 s + 10 s + 5 s windows
    np.testing.assert_array_equal(first10[0], mean10[0])
    assert [w.shape[0] for w in featurizer.audio(clip, strategy="mean10", max_dur=12.0)] == [251, 51]
    assert [w.shape[0] for w in featurizer.audio(clip, strategy="first120", max_dur=4.0)] == [101]
    with pytest.raises(ValueError, match="unknown long-audio strategy"):
        featurizer.audio(clip, strategy="last30")


def test_it_accepts_waveforms_and_caches_them_by_content(hash_encoder: CountingEncoder, tmp_path: Path) -> None:
    featurizer = Featurizer(hash_encoder, EmbeddingCache(tmp_path))
    wav = render(MusicSpec(), duration_s=2.0, sr=16000, seed=1)
    tokens = featurizer.audio(wav, sr=16000)[0]
    assert tokens.shape[0] == 51  # resampled to 24 kHz before encoding
    featurizer.audio(wav.copy(), sr=16000)
    assert hash_encoder.audio_calls == 1
    featurizer.audio(np.stack([wav, wav], axis=1), sr=16000)  # stereo downmix is the same mono content
    assert hash_encoder.audio_calls == 1


def test_it_recomputes_a_corrupted_entry(clip: Path, tmp_path: Path, hash_encoder: CountingEncoder) -> None:
    cache = EmbeddingCache(tmp_path)
    Featurizer(hash_encoder, cache).audio(clip)
    [entry] = list(tmp_path.rglob("*.safetensors"))
    entry.write_bytes(b"not a safetensors file")
    tokens = Featurizer(hash_encoder, cache).audio(clip)
    assert hash_encoder.audio_calls == 2 and tokens[0].shape[0] == 626


def _write_many(root: str, worker: int) -> None:
    cache = EmbeddingCache(root)
    key = CacheKey("enc", "audio", "same-clip", "first120@120")
    for i in range(30):
        cache.put(key, [np.full((200, 64), worker * 1000 + i, dtype=np.float32)])


def test_it_never_exposes_a_partial_entry_to_concurrent_writers_and_readers(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_write_many, args=(str(tmp_path), w)) for w in range(3)]
    for p in writers:
        p.start()
    cache = EmbeddingCache(tmp_path)
    key = CacheKey("enc", "audio", "same-clip", "first120@120")
    seen = 0
    while any(p.is_alive() for p in writers):
        arrays = cache.get(key)
        if arrays is not None:
            seen += 1
            assert arrays[0].shape == (200, 64) and len(np.unique(arrays[0])) == 1  # one whole write
    for p in writers:
        p.join()
        assert p.exitcode == 0
    final = cache.get(key)
    assert final is not None and len(np.unique(final[0])) == 1
    assert not list(tmp_path.rglob(".tmp-*"))  # no temporary files left behind
