"""Encoder + embedding cache: turns audio files, waveforms and texts into cached token arrays."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from .audio import (
    AudioError,
    file_sha256,
    load_audio,
    strategy_read_seconds,
    to_mono,
    waveform_sha256,
    window_key,
    windows_for,
)
from .encoders.base import Encoder
from .encoders.cache import CacheKey, EmbeddingCache, text_sha256

AudioSource = str | Path | np.ndarray


class Featurizer:
    """Encodes through ``encoder`` at most once per (encoder id, content, window strategy).

    Lookups go to a small in-process LRU, then the on-disk ``cache`` (if given), then the encoder.

    Args:
        encoder: the frozen encoder.
        cache: on-disk embedding cache shared across processes and runs; None = in-process only.
        memory_items: entries kept in the in-process LRU.
    """

    def __init__(self, encoder: Encoder, cache: EmbeddingCache | None = None, *, memory_items: int = 4096) -> None:
        self.encoder = encoder
        self.cache = cache
        self.memory_items = memory_items
        self._memory: OrderedDict[str, list[np.ndarray]] = OrderedDict()
        self.audio_encodes = 0  # encoder calls actually made (one per window)
        self.text_encodes = 0

    def _lookup(self, key: CacheKey) -> list[np.ndarray] | None:
        digest = key.digest()
        found = self._memory.get(digest)
        if found is not None:
            self._memory.move_to_end(digest)
            return found
        if self.cache is not None:
            found = self.cache.get(key)
            if found is not None:
                self._remember(digest, found)
        return found

    def _remember(self, digest: str, arrays: list[np.ndarray]) -> None:
        self._memory[digest] = arrays
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)

    def _store(self, key: CacheKey, arrays: list[np.ndarray]) -> None:
        if self.cache is not None:
            self.cache.put(key, arrays)
        self._remember(key.digest(), arrays)

    def audio(
        self, source: AudioSource, *, strategy: str = "first120", max_dur: float | None = None, sr: int | None = None
    ) -> list[np.ndarray]:
        """Token arrays [(T_w, audio_dim)] of the windows ``strategy`` scores (one for first120/first10).

        Args:
            source: a file path, or a waveform array ((n,) or (n, channels)) at ``sr``.
            strategy: "first120", "first10" or "mean10".
            max_dur: cap on the seconds of audio used.
            sr: sample rate of an array source (default: the encoder's rate).
        """
        window = window_key(strategy, max_dur)
        seconds = strategy_read_seconds(strategy, max_dur)
        target_sr = self.encoder.sample_rate
        wav: np.ndarray | None = None
        if isinstance(source, np.ndarray):
            src_sr = sr or target_sr
            wav = to_mono(source)[: int(round(seconds * src_sr))]
            content = waveform_sha256(wav, src_sr)
            if src_sr != target_sr:
                import soxr

                wav = np.asarray(soxr.resample(wav, src_sr, target_sr), dtype=np.float32)
        else:
            if not Path(source).is_file():
                raise AudioError(f"audio file not found: {source}")
            content = file_sha256(source)
        key = CacheKey(self.encoder.id, "audio", content, window)
        found = self._lookup(key)
        if found is not None:
            return found
        if wav is None:
            assert not isinstance(source, np.ndarray)  # arrays were decoded above
            wav = load_audio(source, sr=target_sr, max_dur=seconds)
        arrays = []
        for piece in windows_for(wav, target_sr, strategy, max_dur):
            arrays.append(np.asarray(self.encoder.encode_audio(piece, target_sr), dtype=np.float32))
            self.audio_encodes += 1
        self._store(key, arrays)
        return arrays

    def text(self, text: str | None) -> np.ndarray:
        """Token array (L, text_dim); an empty or blank text gives (0, text_dim) without encoding."""
        if text is None or not text.strip():
            return np.zeros((0, self.encoder.text_dim), dtype=np.float32)
        key = CacheKey(self.encoder.id, "text", text_sha256(text), "")
        found = self._lookup(key)
        if found is not None:
            return found[0]
        tokens = np.asarray(self.encoder.encode_text(text), dtype=np.float32)
        self.text_encodes += 1
        self._store(key, [tokens])
        return tokens
