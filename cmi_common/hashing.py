"""Content hashes of files, read in blocks so a large file never sits in memory whole."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

BLOCK = 1 << 20


def files_sha256(paths: Iterable[str | Path]) -> tuple[str, int]:
    """Hex sha256 over the bytes of ``paths`` read one after another, and the number of bytes read."""
    digest = hashlib.sha256()
    size = 0
    for path in paths:
        with open(path, "rb") as handle:
            while block := handle.read(BLOCK):
                digest.update(block)
                size += len(block)
    return digest.hexdigest(), size


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    return files_sha256([path])[0]
