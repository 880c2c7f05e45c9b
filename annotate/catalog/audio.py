"""Reading facts from audio files at import: hash, format, duration, peaks.

Files are decoded in blocks with soundfile (libsndfile), so a long clip never sits
in memory whole, and the sha256 is computed over the bytes as they are on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from cmi_common.hashing import file_sha256

SUPPORTED_EXTENSIONS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG", ".mp3": "MP3"}
# Peak amplitude below -80 dBFS counts as silence.
# libsndfile's names for the containers behind each extension.
_CONTAINER_NAMES = {"WAV": {"WAV", "WAVEX", "RF64"}, "FLAC": {"FLAC"}, "OGG": {"OGG"}, "MP3": {"MPEG", "MP3"}}
SILENCE_PEAK = 1e-4
PEAK_BINS = 600
_BLOCK_FRAMES = 65536


class AudioError(ValueError):
    """An audio file that can't be imported; the message says why."""


@dataclass(frozen=True)
class AudioInfo:
    sha256: str
    format: str
    duration_s: float
    sample_rate: int
    channels: int
    peaks: list[float]


def probe_audio(path: Path) -> AudioInfo:
    """Decode ``path`` fully and describe it.

    Raises:
        AudioError: unsupported extension, undecodable data, no frames, or silence.
    """
    expected_format = SUPPORTED_EXTENSIONS.get(path.suffix.lower())
    if expected_format is None:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise AudioError(f"unsupported audio format {path.suffix or '(no extension)'!r}; supported: {supported}")
    try:
        with sf.SoundFile(str(path)) as handle:
            sample_rate = int(handle.samplerate)
            channels = int(handle.channels)
            actual_format = str(handle.format)
            peaks, frames, peak = _scan(handle)
    except (sf.LibsndfileError, RuntimeError, EOFError) as exc:
        raise AudioError(f"audio does not decode ({exc})") from None
    if actual_format not in _CONTAINER_NAMES[expected_format]:
        raise AudioError(f"file extension says {expected_format} but the data is {actual_format}")
    if frames == 0 or sample_rate <= 0:
        raise AudioError("audio is empty (0 frames)")
    if peak < SILENCE_PEAK:
        raise AudioError("audio is silent (peak below -80 dBFS)")
    return AudioInfo(
        sha256=file_sha256(path),
        format=expected_format,
        duration_s=frames / sample_rate,
        sample_rate=sample_rate,
        channels=channels,
        peaks=peaks,
    )


def _scan(handle: sf.SoundFile) -> tuple[list[float], int, float]:
    """Read every block; return waveform peaks, the frame count and the absolute peak."""
    block_maxima: list[np.ndarray] = []
    frames = 0
    for block in handle.blocks(blocksize=_BLOCK_FRAMES, dtype="float32", always_2d=True):
        if not np.all(np.isfinite(block)):
            raise AudioError("audio contains NaN or infinite samples")
        mono = np.abs(block).max(axis=1)  # (n,)
        frames += mono.shape[0]
        # Keep a fine-grained envelope (256-sample maxima) and reduce to PEAK_BINS at the end.
        pad = (-mono.shape[0]) % 256
        block_maxima.append(np.pad(mono, (0, pad)).reshape(-1, 256).max(axis=1))
    if frames == 0:
        return [], 0, 0.0
    envelope = np.concatenate(block_maxima)  # (frames / 256,)
    peak = float(envelope.max())
    edges = np.linspace(0, envelope.shape[0], num=min(PEAK_BINS, envelope.shape[0]) + 1).astype(int)
    peaks = [float(envelope[lo : max(hi, lo + 1)].max()) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    scale = peak if peak > 0 else 1.0
    return [round(value / scale, 4) for value in peaks], frames, peak
