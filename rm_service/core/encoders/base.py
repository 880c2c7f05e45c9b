"""The frozen-encoder protocol shared by every backend."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """A frozen encoder turning audio and text into token sequences.

    ``id`` must change whenever the outputs would change (weights, feature recipe, sample rate), because
    the embedding cache is keyed by it.
    """

    name: str  # backend name for get_encoder(): "builtin" | "muq"
    id: str
    sample_rate: int  # waveforms are resampled to this rate before encode_audio
    audio_dim: int  # D of encode_audio
    text_dim: int  # D of encode_text

    def encode_audio(self, waveform: np.ndarray, sr: int) -> np.ndarray:
        """Mono waveform (n,) at ``sr`` -> tokens (T, audio_dim), float32."""
        ...

    def encode_text(self, text: str) -> np.ndarray:
        """A non-empty string -> tokens (L, text_dim), float32, L >= 1."""
        ...

    def options(self) -> dict[str, object]:
        """JSON-serialisable constructor options; ``get_encoder(name, **options)`` rebuilds the encoder."""
        ...
