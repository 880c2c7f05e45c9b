"""Pluggable frozen encoders: ``builtin`` (default, offline CPU) and ``muq`` (MuQ-MuLan, optional extra)."""

from __future__ import annotations

from typing import Any

from .base import Encoder
from .cache import CacheKey, EmbeddingCache

BACKENDS = ("builtin", "muq")

__all__ = ["BACKENDS", "CacheKey", "EmbeddingCache", "Encoder", "get_encoder"]


def get_encoder(name: str = "builtin", **options: Any) -> Encoder:
    """Build an encoder backend by name.

    Args:
        name: "builtin" or "muq".
        **options: backend constructor options (``BuiltinEncoder(text_model=...)``,
            ``MuQEncoder(model_dir=..., repo_id=..., cache_dir=..., device=..., max_text_tokens=...)``).

    Returns:
        An object satisfying the ``Encoder`` protocol.

    Raises:
        ValueError: unknown backend name.
        MuQUnavailable: the muq backend's package or weights are missing.
    """
    if name == "builtin":
        from .builtin import BuiltinEncoder

        return BuiltinEncoder(**options)
    if name == "muq":
        from .muq import MuQEncoder

        return MuQEncoder(**options)
    raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(BACKENDS)}")
