import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from rm_service.core.synth import INSTRUMENTS, MusicSpec, describe, render, write_wav


def test_it_renders_mono_and_stereo_float32_with_bounded_peak() -> None:
    mono = render(MusicSpec(), duration_s=2.0, sr=16000, seed=1)
    stereo = render(MusicSpec(), duration_s=2.0, sr=16000, seed=1, stereo=True)
    assert mono.shape == (32000,) and mono.dtype == np.float32
    assert stereo.shape == (32000, 2) and stereo.dtype == np.float32
    assert 0.5 < np.abs(mono).max() <= 1.0
    assert not np.allclose(stereo[:, 0], stereo[:, 1])  # parts are panned apart


def test_it_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    spec = MusicSpec(vocal=True, tempo_jitter=0.5, noise_snr_db=20.0)
    a = render(spec, duration_s=3.0, seed=7)
    assert np.array_equal(a, render(spec, duration_s=3.0, seed=7))
    assert not np.allclose(a, render(spec, duration_s=3.0, seed=8))


@pytest.mark.parametrize(
    "degradation",
    [
        {"clipping": 0.7},
        {"noise_snr_db": 5.0},
        {"detune_cents": 40.0},
        {"tempo_jitter": 1.0},
        {"wrong_notes": 0.5},
    ],
)
def test_it_degrades_the_same_performance(degradation: dict[str, Any]) -> None:
    clean = render(MusicSpec(), duration_s=3.0, seed=3)
    bad = render(replace(MusicSpec(), **degradation), duration_s=3.0, seed=3)
    assert bad.shape == clean.shape
    assert not np.allclose(clean, bad, atol=1e-3)
    assert np.abs(bad).max() <= 1.0


def test_it_plays_in_the_requested_tempo() -> None:
    # The autocorrelation of the onset envelope must peak at the beat period.
    sr = 8000
    for bpm in (80.0, 140.0):
        audio = render(MusicSpec(tempo_bpm=bpm, instrument="organ"), duration_s=8.0, sr=sr, seed=0)
        frame = 80  # 10 ms
        energy = np.sqrt(np.add.reduceat(audio.astype(np.float64) ** 2, np.arange(0, len(audio), frame)))
        flux = np.maximum(np.diff(energy), 0.0)
        flux -= flux.mean()
        ac = np.correlate(flux, flux, mode="full")[len(flux) - 1 :]
        lags = np.arange(len(ac)) * frame / sr
        window = (lags > 0.3) & (lags < 1.0)
        period = lags[window][np.argmax(ac[window])]
        beat = 60.0 / bpm
        # Kick and snare alternate, so the strongest periodicity may be the beat or two beats.
        assert min(abs(period - beat), abs(period - 2 * beat)) < 0.03, (bpm, period)


def test_it_describes_the_audible_attributes() -> None:
    text = describe(MusicSpec(tempo_bpm=140, mode="minor", instrument="strings", register=1, vocal=True))
    assert text == "A fast, bright minor-key strings piece at 140 BPM with drums and a sung melody."
    assert "slow" in describe(MusicSpec(tempo_bpm=70, drums=False))
    assert "without drums" in describe(MusicSpec(drums=False))


def test_it_rejects_unknown_instruments_and_modes() -> None:
    with pytest.raises(ValueError, match="instrument"):
        MusicSpec(instrument="kazoo")
    with pytest.raises(ValueError, match="mode"):
        MusicSpec(mode="dorian")
    with pytest.raises(ValueError, match="clipping"):
        MusicSpec(clipping=2.0)


def test_it_renders_ten_seconds_quickly() -> None:
    for instrument in INSTRUMENTS:
        render(MusicSpec(instrument=instrument, vocal=True), duration_s=1.0, seed=0)  # warm caches
    start = time.perf_counter()
    for seed, instrument in enumerate(INSTRUMENTS):
        render(MusicSpec(instrument=instrument, vocal=seed % 2 == 0), duration_s=10.0, seed=seed)
    assert (time.perf_counter() - start) / len(INSTRUMENTS) < 0.1


def test_it_writes_a_readable_wav(tmp_path) -> None:
    import soundfile

    audio = render(MusicSpec(), duration_s=1.0, sr=24000, seed=0, stereo=True)
    write_wav(tmp_path / "x.wav", audio, 24000)
    back, sr = soundfile.read(tmp_path / "x.wav", dtype="float32")
    assert sr == 24000 and back.shape == audio.shape
    assert np.abs(back - audio).max() < 1e-3
