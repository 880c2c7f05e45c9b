"""Huggins-pitch headphone screening stimuli (Milne et al. 2021), generated in code.

Each trial has three one-second intervals of white noise. In the target interval one channel's noise is
phase-inverted in a narrow band around ``f0`` (F0 ± 6%); over headphones the two ears' noise then differs only in
that band, and the brain hears a faint tone there (the Huggins pitch). Over loudspeakers the channels mix in the
air and the tone disappears, so a listener without headphones scores at chance (1 in 3). The other two intervals
are diotic: the same noise in both ears.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

SAMPLE_RATE = 22050
INTERVAL_S = 1.0
BANDWIDTH = 0.06  # half-width of the inverted band, as a fraction of f0
RAMP_S = 0.02
RMS = 0.1  # about -20 dBFS: comfortable after the annotator sets a normal volume
F0_CHOICES_HZ = (500.0, 550.0, 600.0, 650.0, 700.0)


def trial_plan(*, seed: int, trials: int) -> list[dict[str, float | int]]:
    """Target interval (1-3) and f0 per trial; stored server-side, never sent to the page."""
    rng = np.random.default_rng(seed)
    return [{"target": int(rng.integers(1, 4)), "f0": float(rng.choice(F0_CHOICES_HZ))} for _ in range(trials)]


def interval_samples(*, seed: int, trial: int, interval: int, f0: float, target: bool) -> np.ndarray:
    """One interval as float32 stereo samples, shape (N, 2)."""
    n = int(SAMPLE_RATE * INTERVAL_S)
    rng = np.random.default_rng([seed, trial, interval])
    noise = rng.standard_normal(n)  # (N,)
    left = noise
    right = noise.copy()
    if target:
        spectrum = np.fft.rfft(noise)  # (N//2 + 1,)
        freqs = np.fft.rfftfreq(n, d=1 / SAMPLE_RATE)
        band = (freqs >= f0 * (1 - BANDWIDTH)) & (freqs <= f0 * (1 + BANDWIDTH))
        spectrum[band] *= -1
        right = np.fft.irfft(spectrum, n=n)
    stereo = np.stack([left, right], axis=1)  # (N, 2)
    stereo *= RMS / np.sqrt(np.mean(stereo**2))
    ramp = int(RAMP_S * SAMPLE_RATE)
    envelope = np.ones(n)
    envelope[:ramp] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    envelope[-ramp:] = envelope[:ramp][::-1]
    return (stereo * envelope[:, None]).astype(np.float32)


def wav_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
