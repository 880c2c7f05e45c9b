"""On-disk embedding cache: encoder outputs keyed by (encoder id, content hash, window strategy).

Each entry is one safetensors file holding the token arrays of one clip (``w0``, ``w1``, ... for the
windows of a strategy) or one text (``w0``), with the key in the file's metadata. Writers go through a
temporary file in the same directory and ``os.replace``, so concurrent writers of the same key never
expose a partial file: the last complete write wins and every reader sees a whole entry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheKey:
    encoder_id: str
    kind: str  # "audio" | "text"
    content_hash: str  # sha256 of the audio file bytes / of the utf-8 text
    window: str  # e.g. "first120@120", "mean10@30"; "" for text

    def digest(self) -> str:
        raw = "\x1f".join((self.encoder_id, self.kind, self.content_hash, self.window))
        return hashlib.sha256(raw.encode()).hexdigest()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """A directory of cached encoder outputs; safe to share between processes.

    Args:
        root: cache directory (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def path_for(self, key: CacheKey) -> Path:
        digest = key.digest()
        return self.root / key.kind / digest[:2] / f"{digest}.safetensors"

    def get(self, key: CacheKey) -> list[np.ndarray] | None:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = self.path_for(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            logger.warning("unreadable cache entry %s (%s); recomputing", path, exc)
            self.misses += 1
            return None
        self.hits += 1
        return [tensors[f"w{i}"] for i in range(len(tensors))]

    def put(self, key: CacheKey, arrays: list[np.ndarray]) -> None:
        from safetensors.numpy import save_file

        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"w{i}": np.ascontiguousarray(a, dtype=np.float32) for i, a in enumerate(arrays)}
        metadata = {"encoder_id": key.encoder_id, "kind": key.kind, "hash": key.content_hash, "window": key.window}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".safetensors")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=metadata)
            os.replace(tmp, path)  # atomic on POSIX: readers see the old entry or the new one, never half
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
