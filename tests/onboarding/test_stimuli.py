"""The Huggins-pitch stimuli: the target differs between the ears only inside its narrow band."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from annotate.onboarding import stimuli


def _band_energy(signal: np.ndarray, low: float, high: float) -> tuple[float, float]:
    spectrum = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(signal.shape[0], d=1 / stimuli.SAMPLE_RATE)
    inside = (freqs >= low) & (freqs <= high)
    return float(spectrum[inside].sum()), float(spectrum[~inside].sum())


def test_it_inverts_one_ear_only_in_the_band_of_the_target() -> None:
    f0 = 600.0
    target = stimuli.interval_samples(seed=7, trial=1, interval=2, f0=f0, target=True).astype(np.float64)
    left, right = target[:, 0], target[:, 1]
    # The interaural difference (what headphones deliver separately to each ear) lives in the band ...
    inside, outside = _band_energy(left - right, f0 * 0.93, f0 * 1.07)
    assert inside > 50 * outside
    # ... and mixing both channels (loudspeakers) cancels the band: the tone disappears.
    mixed_in, mixed_out = _band_energy(left + right, f0 * 0.95, f0 * 1.05)
    plain_in, plain_out = _band_energy(2 * left, f0 * 0.95, f0 * 1.05)
    assert mixed_in / mixed_out < 0.05 * plain_in / plain_out


def test_it_plays_the_same_noise_in_both_ears_for_the_other_intervals() -> None:
    foil = stimuli.interval_samples(seed=7, trial=1, interval=1, f0=600.0, target=False)
    assert np.array_equal(foil[:, 0], foil[:, 1])
    assert not np.array_equal(foil, stimuli.interval_samples(seed=7, trial=1, interval=3, f0=600.0, target=False))


def test_it_writes_a_stereo_wav_and_plans_targets_from_the_seed() -> None:
    data, sr = sf.read(
        io.BytesIO(stimuli.wav_bytes(stimuli.interval_samples(seed=1, trial=1, interval=1, f0=500.0, target=True)))
    )
    assert sr == stimuli.SAMPLE_RATE and data.shape == (stimuli.SAMPLE_RATE, 2)
    assert np.abs(data).max() < 1.0
    plan = stimuli.trial_plan(seed=3, trials=6)
    assert plan == stimuli.trial_plan(seed=3, trials=6)
    assert all(t["target"] in (1, 2, 3) and t["f0"] in stimuli.F0_CHOICES_HZ for t in plan)
    assert {t["target"] for t in stimuli.trial_plan(seed=4, trials=60)} == {1, 2, 3}
