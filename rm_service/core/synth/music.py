"""A small deterministic music synthesiser (pure numpy).

API
---
``MusicSpec``
    Frozen dataclass describing a piece: ``tempo_bpm``, ``mode`` ("major" | "minor"), ``root_midi``,
    ``instrument`` (one of ``INSTRUMENTS``), ``register`` (octave shift of the melody), ``drums``,
    ``vocal`` (a sung-like formant line carrying the melody), and degradations that are 0/None when
    clean: ``detune_cents``, ``clipping`` (0..1), ``noise_snr_db``, ``tempo_jitter`` (0..1),
    ``wrong_notes`` (0..1, fraction of melody notes replaced by out-of-key notes).
``render(spec, *, duration_s, sr=24000, seed=0, stereo=False) -> np.ndarray``
    float32 audio of shape ``(n,)`` or ``(n, 2)`` with peak <= 1. The same ``(spec, seed)`` always gives the
    same samples. The *content* (melody, chord voicing, drum noise) depends only on ``seed`` and the
    musical fields, so a degraded spec rendered with the same seed is the same performance made worse.
``describe(spec, *, bpm=True) -> str``
    A short English instruction that names the audible attributes (tempo, mode, instrument, register,
    drums, vocals), e.g. "A fast, bright major-key piano piece at 140 BPM with drums."; ``bpm=False``
    leaves out the number.
``write_wav(path, audio, sr)``
    16-bit PCM WAV through soundfile.

The music: a four-bar diatonic chord loop (I-V-vi-IV in major, i-VI-III-VII in minor) with a bass line,
a seeded random-walk melody on chord tones and scale steps, a kick/snare/hi-hat pattern, and optionally
a formant "voice" singing the melody on cycling vowels. Timbres are wavetables built from per-instrument
harmonic profiles, so rendering a 10 s clip costs a few tens of milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

INSTRUMENTS = ("piano", "organ", "pluck", "strings")
MODES = ("major", "minor")

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
# Scale degrees (0-based) of the chord roots of the four-bar loop.
_PROGRESSIONS = {"major": (0, 4, 5, 3), "minor": (0, 5, 2, 6)}
_TABLE_SIZE = 2048


@dataclass(frozen=True)
class _Timbre:
    harmonics: tuple[float, ...]  # amplitude of harmonic k+1
    attack_s: float
    decay_s: float  # time constant of the exponential decay towards `sustain`
    sustain: float  # 0 = percussive (piano, pluck), 1 = held (organ)
    vibrato_cents: float


_TIMBRES = {
    "piano": _Timbre((1.0, 0.5, 0.3, 0.2, 0.12, 0.08, 0.05, 0.03), 0.005, 0.6, 0.0, 0.0),
    "organ": _Timbre((1.0, 0.8, 0.0, 0.6, 0.0, 0.4, 0.0, 0.3), 0.02, 0.3, 1.0, 0.0),
    "pluck": _Timbre((1.0, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1, 0.08), 0.002, 0.18, 0.0, 0.0),
    "strings": _Timbre(tuple(1.0 / k for k in range(1, 13)), 0.15, 0.5, 0.85, 12.0),
}

# (F1, F2, F3) in Hz for a few vowels; the voice cycles through them syllable by syllable.
_VOWELS = ((800.0, 1150.0, 2900.0), (400.0, 1600.0, 2700.0), (350.0, 600.0, 2700.0), (450.0, 800.0, 2830.0))
_VOICE = _Timbre((1.0,), 0.04, 0.4, 0.8, 30.0)


@dataclass(frozen=True)
class MusicSpec:
    tempo_bpm: float = 100.0
    mode: str = "major"  # "major" | "minor"
    root_midi: int = 57  # A3; chords sit around the root, bass an octave below
    instrument: str = "piano"  # one of INSTRUMENTS; sets harmonics, envelope and vibrato
    register: int = 0  # octave shift of the melody (-1 low, 0 mid, +1 high)
    drums: bool = True
    vocal: bool = False  # a formant voice sings the melody; the instrument then plays it softly
    # Degradations (0 / None = clean).
    detune_cents: float = 0.0  # melody notes drift by up to this many cents, chords beat against themselves
    clipping: float = 0.0  # 0..1 drive into hard clipping
    noise_snr_db: float | None = None  # white noise at this SNR relative to the mix
    tempo_jitter: float = 0.0  # 0..1 random onset offsets (up to ~15% of a beat std at 1)
    wrong_notes: float = 0.0  # 0..1 fraction of melody notes moved a semitone out of key

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.instrument not in INSTRUMENTS:
            raise ValueError(f"instrument must be one of {INSTRUMENTS}, got {self.instrument!r}")
        if not 20.0 <= self.tempo_bpm <= 300.0:
            raise ValueError(f"tempo_bpm must be in [20, 300], got {self.tempo_bpm}")
        for name in ("clipping", "tempo_jitter", "wrong_notes"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


def _midi_hz(midi: np.ndarray | float) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def _wavetable(amplitudes: np.ndarray) -> np.ndarray:
    """One cycle of a waveform with the given harmonic amplitudes (sine phase), shape (TABLE_SIZE,)."""
    spectrum = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    spectrum[1 : len(amplitudes) + 1] = -0.5j * _TABLE_SIZE * np.asarray(amplitudes)
    table = np.fft.irfft(spectrum, n=_TABLE_SIZE)
    return table / max(np.abs(table).max(), 1e-9)


@lru_cache(maxsize=512)
def _voice_table(midi_tenths: int, vowel_index: int, sr: int) -> np.ndarray:
    """Wavetable of a sung vowel at pitch midi_tenths / 10; cached since melodies reuse pitches."""
    f0 = float(_midi_hz(midi_tenths / 10.0))
    return _wavetable(_formant_amplitudes(f0, _VOWELS[vowel_index], sr))


@lru_cache(maxsize=64)
def _vibrato_position(n: int, sr: int, cents: float) -> np.ndarray:
    """Cumulative phase increment (in units of the unmodulated step) of a 5.5 Hz vibrato, shape (n,)."""
    t = np.arange(n) / sr
    depth = np.clip(t / 0.3, 0.0, 1.0) * cents  # vibrato fades in like a player's
    position = np.cumsum(2.0 ** (depth * np.sin(2 * np.pi * 5.5 * t) / 1200.0))
    position.flags.writeable = False
    return position


def _formant_amplitudes(f0: float, vowel: tuple[float, float, float], sr: int) -> np.ndarray:
    n_harm = max(1, min(40, int((sr / 2 - 100) / f0)))
    freqs = f0 * np.arange(1, n_harm + 1)
    gain = np.zeros(n_harm)
    for formant, weight in zip(vowel, (1.0, 0.6, 0.25), strict=True):
        bandwidth = 80.0 + 0.05 * formant
        gain += weight / (1.0 + ((freqs - formant) / bandwidth) ** 2)
    return gain / np.sqrt(np.arange(1, n_harm + 1))  # glottal source tilt


@lru_cache(maxsize=256)
def _envelope(n: int, sr: int, timbre: _Timbre) -> np.ndarray:
    """Attack-decay-release gain curve, shape (n,); cached because notes repeat their lengths."""
    t = np.arange(n) / sr
    attack = np.clip(t / max(timbre.attack_s, 1e-4), 0.0, 1.0)
    decay = timbre.sustain + (1.0 - timbre.sustain) * np.exp(-t / timbre.decay_s)
    release = np.clip((n - np.arange(n)) / (0.02 * sr), 0.0, 1.0)  # 20 ms fade avoids clicks
    env = attack * decay * release
    env.flags.writeable = False
    return env


def _add_note(
    track: np.ndarray,
    *,
    sr: int,
    onset_s: float,
    length_s: float,
    midi: float,
    table: np.ndarray,
    timbre: _Timbre,
    gain: float,
) -> None:
    start = int(round(onset_s * sr))
    if start >= len(track):
        return
    start = max(start, 0)
    n = min(int(length_s * sr), len(track) - start)
    if n <= 0:
        return
    step = float(_midi_hz(midi)) * _TABLE_SIZE / sr  # table entries per sample
    position: np.ndarray  # (n,) fractional table index, unwrapped
    if timbre.vibrato_cents > 0:
        position = step * _vibrato_position(n, sr, timbre.vibrato_cents)
    else:
        position = np.arange(n) * step
    idx = position.astype(np.int64) & (_TABLE_SIZE - 1)  # table size is a power of two
    track[start : start + n] += gain * table[idx] * _envelope(n, sr, timbre)


def _singable(midi: float) -> float:
    """Move ``midi`` by octaves into a singable range (E3..E5) whatever the melody register."""
    while midi > 76:
        midi -= 12
    while midi < 52:
        midi += 12
    return midi


def _drum_samples(sr: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(int(0.35 * sr)) / sr
    kick_freq = 45.0 + 75.0 * np.exp(-t / 0.04)
    kick = np.sin(2 * np.pi * np.cumsum(kick_freq) / sr) * np.exp(-t / 0.12)
    ts = t[: int(0.2 * sr)]
    snare = 0.7 * rng.standard_normal(len(ts)) * np.exp(-ts / 0.06) + 0.4 * np.sin(2 * np.pi * 185.0 * ts) * np.exp(
        -ts / 0.05
    )
    th = t[: int(0.06 * sr)]
    hat = np.diff(rng.standard_normal(len(th) + 1)) * 0.25 * np.exp(-th / 0.015)
    return {"kick": kick, "snare": snare, "hat": hat}


def _place(track: np.ndarray, sample: np.ndarray, onset_s: float, sr: int, gain: float) -> None:
    start = max(int(round(onset_s * sr)), 0)
    if start >= len(track):
        return
    n = min(len(sample), len(track) - start)
    track[start : start + n] += gain * sample[:n]


def render(spec: MusicSpec, *, duration_s: float, sr: int = 24000, seed: int = 0, stereo: bool = False) -> np.ndarray:
    """Synthesise a clip.

    Args:
        spec: what to play and how badly.
        duration_s: length of the clip in seconds (> 0).
        sr: sample rate in Hz.
        seed: selects the melody, drum noise, timing and noise realisation.
        stereo: return (n, 2) with the parts panned apart instead of mono (n,).

    Returns:
        float32 waveform, peak <= 1.
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    n = int(round(duration_s * sr))
    content_rng = np.random.default_rng([seed, 0])
    timing_rng = np.random.default_rng([seed, 1])
    tuning_rng = np.random.default_rng([seed, 2])
    noise_rng = np.random.default_rng([seed, 3])

    beat = 60.0 / spec.tempo_bpm
    n_beats = int(np.ceil(duration_s / beat)) + 1
    scale = np.array(_SCALES[spec.mode])
    progression = _PROGRESSIONS[spec.mode]
    timbre = _TIMBRES[spec.instrument]
    table = _wavetable(np.array(timbre.harmonics))
    bass_table = _wavetable(np.array([1.0, 0.4, 0.15]))

    def jitter() -> float:
        return float(spec.tempo_jitter * 0.15 * beat * timing_rng.standard_normal())

    def degree_to_midi(degree: int, base: int) -> int:
        octave, step = divmod(degree, 7)
        return base + 12 * octave + int(scale[step])

    bass = np.zeros(n)
    chords = np.zeros(n)
    melody = np.zeros(n)
    voice = np.zeros(n)
    drums = np.zeros(n)

    # Chords and bass: one chord per bar of four beats.
    for bar in range(int(np.ceil(n_beats / 4))):
        root_degree = progression[bar % 4]
        onset = bar * 4 * beat
        for voice_idx, offset in enumerate((0, 2, 4)):
            chord_midi = degree_to_midi(root_degree + offset, spec.root_midi)
            detune = spec.detune_cents / 100.0 * (0.5 if voice_idx == 1 else 0.0)  # one voice sharp
            _add_note(
                chords,
                sr=sr,
                onset_s=onset + jitter(),
                length_s=4 * beat,
                midi=chord_midi + detune,
                table=table,
                timbre=timbre,
                gain=0.22,
            )
        for beat_in_bar in (0, 2):
            _add_note(
                bass,
                sr=sr,
                onset_s=onset + beat_in_bar * beat + jitter(),
                length_s=2 * beat,
                midi=degree_to_midi(root_degree, spec.root_midi - 12),
                table=bass_table,
                timbre=_TIMBRES["piano"],
                gain=0.4,
            )

    # Melody: a random walk over scale degrees that lands on chord tones on strong beats.
    melody_base = spec.root_midi + 12 + 12 * spec.register
    degree = 2
    syllable = 0
    for b in range(n_beats):
        chord_root = progression[(b // 4) % 4]
        subdivisions = 2 if content_rng.random() < 0.35 else 1
        for sub in range(subdivisions):
            if b % 2 == 0 and sub == 0:
                choices = [chord_root + o for o in (0, 2, 4, 7)]
                degree = min(choices, key=lambda d: abs(d - degree) + content_rng.random())
            else:
                degree = int(np.clip(degree + content_rng.integers(-2, 3), -3, 10))
            midi = float(degree_to_midi(degree, melody_base))
            wrong = content_rng.random() < spec.wrong_notes
            if wrong:
                midi += 1.0 if content_rng.random() < 0.5 else -1.0
            midi += spec.detune_cents / 100.0 * tuning_rng.uniform(-1.0, 1.0)
            onset = (b + sub / subdivisions) * beat + jitter()
            length = beat / subdivisions * 0.95
            _add_note(
                melody,
                sr=sr,
                onset_s=onset,
                length_s=length,
                midi=midi,
                table=table,
                timbre=timbre,
                gain=0.2 if spec.vocal else 0.5,
            )
            if spec.vocal:
                vowel_index = syllable % len(_VOWELS)
                syllable += 1
                sung = _singable(midi)
                voice_table = _voice_table(int(round(sung * 10)), vowel_index, sr)
                _add_note(
                    voice,
                    sr=sr,
                    onset_s=onset,
                    length_s=length,
                    midi=sung,
                    table=voice_table,
                    timbre=_VOICE,
                    gain=0.55,
                )

    if spec.drums:
        kit = _drum_samples(sr, content_rng)
        for b in range(n_beats):
            _place(drums, kit["kick" if b % 2 == 0 else "snare"], b * beat + jitter(), sr, 0.6)
            for half in (0.0, 0.5):
                _place(drums, kit["hat"], (b + half) * beat + jitter(), sr, 0.5)

    tracks = (bass, chords, melody, voice, drums)
    pans = (0.5, 0.3, 0.65, 0.5, 0.5)  # 0 = left, 1 = right
    stacked = np.stack(tracks)  # (tracks, n)
    if stereo:
        gains = np.sqrt(np.array([[1.0 - p, p] for p in pans]))  # (tracks, 2), equal-power panning
        mix = stacked.T @ gains  # (n, 2)
    else:
        mix = stacked.sum(axis=0)  # (n,)
    mix *= 0.8 / max(np.abs(mix).max(), 1e-9)

    if spec.clipping > 0:
        mix = np.clip(mix * (1.0 + 15.0 * spec.clipping), -0.8, 0.8)
    if spec.noise_snr_db is not None:
        rms = np.sqrt(np.mean(mix**2))
        mix = mix + noise_rng.standard_normal(mix.shape) * rms / 10.0 ** (spec.noise_snr_db / 20.0)
    peak = np.abs(mix).max()
    if peak > 0.99:
        mix *= 0.99 / peak
    return mix.astype(np.float32)


def describe(spec: MusicSpec, *, bpm: bool = True) -> str:
    """A short English instruction naming the audible attributes of ``spec`` (``bpm``: state the tempo number)."""
    speed = "slow" if spec.tempo_bpm < 90 else "fast" if spec.tempo_bpm >= 125 else "moderate"
    pitch = "low" if spec.register < 0 else "bright" if spec.register > 0 else "mid-range"
    parts = [f"A {speed}, {pitch} {spec.mode}-key {spec.instrument} piece"]
    if bpm:
        parts.append(f" at {round(spec.tempo_bpm)} BPM")
    extras = []
    if spec.drums:
        extras.append("drums")
    if spec.vocal:
        extras.append("a sung melody")
    if extras:
        parts.append(" with " + " and ".join(extras))
    else:
        parts.append(" without drums")
    return "".join(parts) + "."


def write_wav(path: str | Path, audio: np.ndarray, sr: int) -> None:
    """Write ``audio`` (float, (n,) or (n, channels)) as 16-bit PCM WAV."""
    import soundfile

    soundfile.write(str(path), audio, sr, subtype="PCM_16")
