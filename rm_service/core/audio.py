"""Audio loading, content hashing and long-audio window strategies (numpy, soundfile, soxr)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from cmi_common import hashing

STRATEGIES = ("first120", "first10", "mean10", "whole10")
WHOLE_MAX_SECONDS = 1800.0  # whole10 reads at most 30 min (decoding is linear in length; encoding is not)
WHOLE_WINDOWS = 12  # whole10 encodes at most 12 windows of 10 s, however long the track
DEFAULT_STRATEGY = "first120"


class AudioError(ValueError):
    """An audio file is missing or cannot be decoded; the message names the file."""


def load_audio(path: str | Path, *, sr: int, max_dur: float | None = None) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sr``, reading at most ``max_dur`` seconds.

    Args:
        path: any format libsndfile reads (wav, flac, ogg, mp3).
        sr: target sample rate; resampled with soxr when the file differs.
        max_dur: read only the first ``max_dur`` seconds (None = whole file).

    Returns:
        Waveform of shape (n,), float32.

    Raises:
        AudioError: the file does not exist or cannot be decoded.
    """
    import soundfile
    import soxr

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        with soundfile.SoundFile(str(path)) as f:
            file_sr = f.samplerate
            frames = -1 if max_dur is None else int(round(max_dur * file_sr))
            data = f.read(frames=frames, dtype="float32", always_2d=True)  # (n, channels)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise AudioError(f"cannot decode audio file {path}: {exc}") from exc
    mono = data.mean(axis=1)  # (n,)
    if file_sr != sr and len(mono) > 0:
        mono = soxr.resample(mono, file_sr, sr, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def to_mono(waveform: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) or (channels, n) with channels <= 8 -> (n,) float32."""
    wav = np.asarray(waveform, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.mean(axis=0) if wav.shape[0] <= 8 < wav.shape[1] else wav.mean(axis=1)
    if wav.ndim != 1:
        raise AudioError(f"expected a 1-D or 2-D waveform, got shape {wav.shape}")
    return wav


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, memoised per (path, size, mtime) for this process."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    cached = _SHA_MEMO.get(key)
    if cached is None:
        cached = _SHA_MEMO[key] = hashing.file_sha256(path)
    return cached


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def waveform_sha256(waveform: np.ndarray, sr: int) -> str:
    """Content hash of an in-memory waveform (for items given as arrays rather than files)."""
    wav = np.ascontiguousarray(waveform, dtype=np.float32)
    digest = hashlib.sha256(f"waveform:{sr}:{wav.shape}".encode())
    digest.update(wav.tobytes())
    return digest.hexdigest()


def strategy_read_seconds(strategy: str, max_dur: float | None) -> float:
    """How many seconds of audio a strategy needs (the crop applied before encoding)."""
    check_strategy(strategy)
    limit = {"first10": 10.0, "whole10": WHOLE_MAX_SECONDS}.get(strategy, 120.0)
    return limit if max_dur is None else min(limit, float(max_dur))


def windows_for(waveform: np.ndarray, sr: int, strategy: str, max_dur: float | None) -> list[np.ndarray]:
    """Split an already-cropped waveform into the windows a strategy scores.

    ``first120`` / ``first10`` give one window (the first 120 s / 10 s, capped by ``max_dur``).
    ``mean10`` gives non-overlapping 10 s windows over the first ``min(120, max_dur)`` seconds; a trailing
    piece shorter than 1 s is dropped unless it is the only one (it would be scored on almost nothing).
    ``whole10`` gives ``ceil(duration / 10)`` windows of 10 s, at most ``WHOLE_WINDOWS``, at evenly spaced
    offsets from the start to the end of the track: the whole track is heard at a bounded encoding cost.
    """
    seconds = strategy_read_seconds(strategy, max_dur)
    wav = waveform[: int(round(seconds * sr))]
    if strategy == "whole10":
        hop = 10 * sr
        if len(wav) <= hop:
            return [wav]
        count = min(WHOLE_WINDOWS, -(-len(wav) // hop))
        starts = np.linspace(0, len(wav) - hop, count).round().astype(int)
        return [wav[start : start + hop] for start in starts]
    if strategy != "mean10":
        return [wav]
    hop = 10 * sr
    pieces = [wav[start : start + hop] for start in range(0, max(len(wav), 1), hop)]
    kept = [p for p in pieces if len(p) >= sr]
    return kept or pieces[:1]


def window_key(strategy: str, max_dur: float | None) -> str:
    """The cache-key component naming how a clip was cropped and windowed, e.g. ``first120@30``."""
    seconds = strategy_read_seconds(strategy, max_dur)
    return f"{strategy}@{seconds:g}"


def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown long-audio strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
