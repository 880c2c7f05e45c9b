"""Reading facts from audio files at import: hash, format, duration, peaks.

Files are decoded in blocks with soundfile (libsndfile), so a long clip never sits
in memory whole, and the sha256 is computed over the bytes as they are on disk.
"""

from __future__ import annotations

import hashlib
import io
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
# Peaks are stored as the listening page draws them, so a hand-out serves them without touching each value.
PEAK_DECIMALS = 3
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
    return [round(value / scale, PEAK_DECIMALS) for value in peaks], frames, peak


# --- presentation renditions -----------------------------------------------------------------
# Annotators hear one rendition per clip, never the imported file: the same codec, container, rate,
# channel layout and bitrate for every clip, so neither bytes nor headers reveal the generating system.
# MP3 plays in every current browser, and at a constant bitrate a byte offset maps linearly to time,
# which lets the server turn the byte ranges it delivered into seconds of audio (listening evidence).
PRESENTATION_SAMPLE_RATE = 44100
PRESENTATION_CHANNELS = 2
PRESENTATION_BITRATE_KBPS = 192
PRESENTATION_CONTENT_TYPE = "audio/mpeg"
PRESENTATION_EXTENSION = ".mp3"
PRESENTATION_PROFILE = f"mp3-cbr{PRESENTATION_BITRATE_KBPS}k-{PRESENTATION_SAMPLE_RATE}hz-{PRESENTATION_CHANNELS}ch"
# libsndfile maps its compression level onto LAME's CBR bitrates; 0.4 gives 192 kbit/s (checked after encoding).
_MP3_COMPRESSION_LEVEL = 0.4
_MPEG1_L3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_TRUE_PEAK_OVERSAMPLING = 4  # BS.1770-4 annex 2: 4x oversampling (soxr) for true peak at 44.1/48 kHz
_LIMITER_WINDOW_S = 0.05  # hold/attack of the look-ahead limiter; long enough not to distort bass
_LOUDNESS_TOLERANCE_LU = 0.2  # how close to the target the pre-encode loop must land
_MIN_LOUDNESS_BLOCK_S = 0.4  # BS.1770 gating block; shorter clips are padded with silence to measure


class RenditionError(AudioError):
    """The presentation rendition could not be made to specification."""


@dataclass(frozen=True)
class Rendition:
    data: bytes  # the complete MP3 file
    sha256: str
    duration_s: float
    audio_offset_bytes: int  # bytes before the first audio frame (the LAME "Info" frame)
    byte_rate: int  # bytes per second of audio at the constant bitrate
    loudness_lufs: float  # measured on the decoded MP3
    true_peak_dbtp: float  # measured on the decoded MP3
    gain_db: float
    limited: bool


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness (LUFS) of ``audio`` (frames, channels), via pyloudnorm."""
    import pyloudnorm

    minimum = int(np.ceil(_MIN_LOUDNESS_BLOCK_S * sample_rate))
    if audio.shape[0] < minimum:
        # Silence is gated out (absolute gate at -70 LUFS), so padding measures the clip itself.
        audio = np.pad(audio, ((0, minimum - audio.shape[0]), (0, 0)))
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(audio))


def true_peak_dbtp(audio: np.ndarray) -> float:
    """True peak in dBTP: the sample peak of ``audio`` (frames, channels) oversampled 4x."""
    return float(20 * np.log10(max(float(np.abs(_oversampled(audio)).max()), 1e-12)))


def _oversampled(audio: np.ndarray) -> np.ndarray:
    import soxr

    rate = PRESENTATION_SAMPLE_RATE
    return soxr.resample(audio.astype(np.float32), rate, rate * _TRUE_PEAK_OVERSAMPLING, quality="HQ")  # (4 frames, ch)


def _limit(audio: np.ndarray, ceiling_dbtp: float) -> np.ndarray:
    """Look-ahead peak limiter: a smooth gain that keeps the 4x-oversampled peak under the ceiling."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    ceiling = 10 ** (ceiling_dbtp / 20)
    frames = audio.shape[0]
    peaks = np.abs(_oversampled(audio)).max(axis=1)  # (~frames * 4,)
    peaks = np.pad(peaks, (0, max(0, frames * _TRUE_PEAK_OVERSAMPLING - peaks.shape[0])))
    peaks = peaks[: frames * _TRUE_PEAK_OVERSAMPLING].reshape(frames, _TRUE_PEAK_OVERSAMPLING).max(axis=1)  # (frames,)
    needed = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))  # (frames,)
    window = max(1, int(_LIMITER_WINDOW_S * PRESENTATION_SAMPLE_RATE))
    # Hold the minimum over 2W, then average over W: every averaged sample is <= the gain needed there.
    held = minimum_filter1d(needed, size=2 * window + 1, mode="nearest")
    gain = uniform_filter1d(held, size=window, mode="nearest")
    return audio * gain[:, None]


def _decode_for_presentation(path: Path) -> np.ndarray:
    import soxr

    audio, sample_rate = sf.read(str(path), dtype="float32", always_2d=True)  # (frames, channels)
    if audio.shape[1] == 1:
        audio = np.repeat(audio, 2, axis=1)
    elif audio.shape[1] > 2:
        audio = audio[:, :2]
    if sample_rate != PRESENTATION_SAMPLE_RATE:
        audio = soxr.resample(audio, sample_rate, PRESENTATION_SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float64)


def _normalise(audio: np.ndarray, *, target_lufs: float, ceiling_dbtp: float) -> tuple[np.ndarray, float, bool]:
    """Gain to the target loudness, limiting only where that gain pushes the true peak over the ceiling."""
    measured = integrated_loudness(audio, PRESENTATION_SAMPLE_RATE)
    if not np.isfinite(measured):
        raise RenditionError("audio has no measurable loudness (silent after gating)")
    gain_db = target_lufs - measured
    out = audio * 10 ** (gain_db / 20)
    limited = False
    for _ in range(5):
        if true_peak_dbtp(out) <= ceiling_dbtp:
            if not limited:
                break  # a plain gain lands exactly on the target
            level = integrated_loudness(out, PRESENTATION_SAMPLE_RATE)
        else:
            out = _limit(out, ceiling_dbtp)
            limited = True
            level = integrated_loudness(out, PRESENTATION_SAMPLE_RATE)
        if abs(level - target_lufs) <= _LOUDNESS_TOLERANCE_LU:
            break
        # Limiting lowers the loudness: make it up, then check the peak again.
        gain_db += target_lufs - level
        out = out * 10 ** ((target_lufs - level) / 20)
    if true_peak_dbtp(out) > ceiling_dbtp:
        # The last make-up gain went over the ceiling again: the peak wins over the last fraction of a LU.
        out = _limit(out, ceiling_dbtp)
        limited = True
    return out, gain_db, limited


def render_presentation(path: Path, *, target_lufs: float, ceiling_dbtp: float) -> Rendition:
    """The presentation rendition of ``path``: 44.1 kHz stereo MP3 at 192 kbit/s CBR, loudness-matched.

    Integrated loudness (BS.1770-4, pyloudnorm) is brought to ``target_lufs`` and the true peak held at or
    under ``ceiling_dbtp``; both are re-measured on the decoded MP3, and the codec's overshoot is taken off
    the limiter's ceiling for another pass. The file carries no tags: only audio frames and LAME's Info frame.

    Raises:
        RenditionError: undecodable or silent source, or the encoder did not produce the expected stream.
    """
    try:
        audio = _decode_for_presentation(path)
    except (sf.LibsndfileError, RuntimeError, EOFError) as exc:
        raise RenditionError(f"audio does not decode ({exc})") from None
    ceiling = ceiling_dbtp
    for _ in range(4):
        shaped, gain_db, limited = _normalise(audio, target_lufs=target_lufs, ceiling_dbtp=ceiling)
        data = _encode_mp3(shaped)
        decoded, _ = sf.read(io.BytesIO(data), dtype="float64", always_2d=True)  # (frames, 2)
        peak = true_peak_dbtp(decoded)
        if peak <= ceiling_dbtp + 0.05:
            break
        ceiling -= peak - ceiling_dbtp + 0.05
    else:
        raise RenditionError(f"true peak {peak:.2f} dBTP stays above the {ceiling_dbtp} dBTP ceiling after encoding")
    loudness = integrated_loudness(decoded, PRESENTATION_SAMPLE_RATE)
    if abs(loudness - target_lufs) > 1.0:
        raise RenditionError(f"loudness {loudness:.1f} LUFS misses the {target_lufs} LUFS target by more than 1 LU")
    offset, byte_rate = _mp3_layout(data)
    return Rendition(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        duration_s=decoded.shape[0] / PRESENTATION_SAMPLE_RATE,
        audio_offset_bytes=offset,
        byte_rate=byte_rate,
        loudness_lufs=loudness,
        true_peak_dbtp=peak,
        gain_db=gain_db,
        limited=limited or ceiling < ceiling_dbtp,
    )


def _encode_mp3(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(
        buffer,
        np.clip(audio, -1.0, 1.0).astype(np.float32),
        PRESENTATION_SAMPLE_RATE,
        format="MP3",
        subtype="MPEG_LAYER_III",
        bitrate_mode="CONSTANT",
        compression_level=_MP3_COMPRESSION_LEVEL,
    )
    return buffer.getvalue()


def _mp3_layout(data: bytes) -> tuple[int, int]:
    """(bytes before the first audio frame, bytes per second), checking the stream is the profile's CBR MP3."""
    if data[:3] == b"ID3" or data[-128:-125] == b"TAG":
        raise RenditionError("the encoder wrote an ID3 tag")
    first = _frame_header(data, 0)
    # LAME's first frame is a silent "Info" frame (frame count, encoder delay); audio starts after it.
    if data[36:40] not in (b"Info", b"Xing"):
        raise RenditionError("the encoder wrote no Info frame")
    second = _frame_header(data, first[2])
    for kbps, sample_rate, _ in (first, second):
        if kbps != PRESENTATION_BITRATE_KBPS or sample_rate != PRESENTATION_SAMPLE_RATE:
            raise RenditionError(
                f"expected {PRESENTATION_PROFILE}, the encoder wrote {kbps} kbit/s at {sample_rate} Hz"
            )
    return first[2], PRESENTATION_BITRATE_KBPS * 1000 // 8


def _frame_header(data: bytes, offset: int) -> tuple[int, int, int]:
    """(kbit/s, sample rate, frame length in bytes) of the MPEG-1 Layer III frame at ``offset``."""
    header = data[offset : offset + 4]
    if len(header) < 4 or header[0] != 0xFF or (header[1] & 0xFE) != 0xFA:
        raise RenditionError(f"no MPEG-1 Layer III frame at byte {offset}")
    kbps = _MPEG1_L3_KBPS[header[2] >> 4]
    sample_rate = (44100, 48000, 32000, 0)[(header[2] >> 2) & 0x3]
    padding = (header[2] >> 1) & 0x1
    if not kbps or not sample_rate:
        raise RenditionError(f"bad MPEG frame header at byte {offset}")
    return kbps, sample_rate, 144 * kbps * 1000 // sample_rate + padding
