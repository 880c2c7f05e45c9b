"""MuQ-MuLan encoder backend (``pip install 'cmi-annotate[muq]'``; needs torchaudio).

Audio: resampled to 24 kHz, split into non-overlapping 30 s chunks, each chunk encoded by the MuLan audio
tower (MuQ + its transformer + projection, 768-d tokens at 25 Hz) and the chunk outputs concatenated.
Equal-length chunks are batched together and the short tail chunk is encoded on its own, so no chunk is
ever padded (the public audio tower takes no attention mask, and padding would leak into valid frames).

Text: the MuLan text tower (XLM-RoBERTa + transformer), called token-level with our own tokenisation so
that texts are truncated to ``max_text_tokens`` and padded batches carry attention masks through both the
pretrained model and the tower's transformer. Text and lyrics are encoded separately by the caller.

Weights load only from a local directory (``model_dir``) or from an existing Hugging Face hub cache; the
hub is never asked to download. Set ``HF_HUB_OFFLINE=1`` to stop the nested loaders from even checking
for updates. When something is missing, ``MuQUnavailable`` names every missing file or repository.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 24000
FRAME_RATE = 25
CHUNK_SECONDS = 30.0
DIM = 768
DEFAULT_REPO = "OpenMuQ/MuQ-MuLan-large"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class MuQUnavailable(RuntimeError):
    """The muq package or the MuQ-MuLan weights are not available locally; the message says what is missing."""


# ------------------------------------------------------------------------------------ pure helpers


def resample_to(waveform: np.ndarray, sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 waveform at ``target_sr`` (soxr, high quality)."""
    wav = np.asarray(waveform, dtype=np.float32)
    if sr == target_sr or len(wav) == 0:
        return wav
    import soxr

    return np.asarray(soxr.resample(wav, sr, target_sr, quality="HQ"), dtype=np.float32)


def split_chunks(waveform: np.ndarray, sr: int = SAMPLE_RATE, chunk_s: float = CHUNK_SECONDS) -> list[np.ndarray]:
    """Non-overlapping ``chunk_s`` chunks; a tail shorter than one token (40 ms) is dropped unless alone."""
    size = int(round(chunk_s * sr))
    min_tail = sr // FRAME_RATE
    chunks = [waveform[start : start + size] for start in range(0, max(len(waveform), 1), size)]
    kept = [c for c in chunks if len(c) >= min_tail]
    return kept or chunks[:1]


def equal_length_groups(lengths: list[int], max_batch: int) -> list[list[int]]:
    """Indices grouped so every group has one length and at most ``max_batch`` members (input order kept)."""
    groups: list[list[int]] = []
    by_length: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        group = by_length.get(length)
        if group is None or len(group) >= max_batch:
            group = []
            by_length[length] = group
            groups.append(group)
        group.append(index)
    return groups


def trim_by_mask(hidden: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """(B, L, D) hidden states and (B, L) validity mask -> the valid tokens of each item, [(L_i, D)]."""
    return [hidden[i][mask[i].astype(bool)] for i in range(hidden.shape[0])]


# ------------------------------------------------------------------------------------- weights


def _hub_cached_file(repo_id: str, filename: str, cache_dir: str | None) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    return found if isinstance(found, str) else None


def locate_weights(*, model_dir: str | None, repo_id: str, cache_dir: str | None) -> tuple[str, Path]:
    """Find MuQ-MuLan's config and weights locally, or raise MuQUnavailable naming what is missing.

    Returns:
        (source for ``MuQMuLan.from_pretrained``, path of its config.json).
    """
    missing: list[str] = []
    if model_dir is not None:
        root = Path(model_dir)
        config = root / "config.json"
        if not config.is_file():
            missing.append(str(config))
        if not any((root / w).is_file() for w in WEIGHT_FILES):
            missing.append(f"{root}/{{{','.join(WEIGHT_FILES)}}}")
        source = str(root)
    else:
        cached = _hub_cached_file(repo_id, "config.json", cache_dir)
        config = Path(cached) if cached else Path()
        if cached is None:
            missing.append(f"{repo_id}/config.json in the hub cache")
        if not any(_hub_cached_file(repo_id, w, cache_dir) for w in WEIGHT_FILES):
            missing.append(f"{repo_id}/{{{','.join(WEIGHT_FILES)}}} in the hub cache")
        source = repo_id
    if not missing:
        # MuQ-MuLan builds its towers from two more hub repositories named in its config.
        spec = json.loads(config.read_text())
        for section in ("audio_model", "text_model"):
            name = spec.get(section, {}).get("name")
            if name and not Path(name).is_dir() and _hub_cached_file(name, "config.json", cache_dir) is None:
                missing.append(f"{name}/config.json in the hub cache (the {section.replace('_', ' ')})")
    if missing:
        where = cache_dir or os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
        raise MuQUnavailable(
            "MuQ-MuLan weights are not available locally; missing: "
            + "; ".join(missing)
            + f". Hub cache searched: {where}. Download them on a connected machine "
            f"(huggingface-cli download {repo_id}, plus the two tower repositories) and copy the cache, "
            "or pass model_dir= a directory holding config.json and the weights."
        )
    return source, config


# ------------------------------------------------------------------------------------- encoder


class MuQEncoder:
    """MuQ-MuLan audio and text towers as a frozen token encoder.

    Args:
        model_dir: local directory with the MuQ-MuLan config and weights (else the hub cache is used).
        repo_id: hub repository to look up in the cache when ``model_dir`` is None.
        cache_dir: hub cache directory (default: the huggingface_hub default).
        device: torch device for the towers, e.g. "cpu" or "cuda:0".
        max_text_tokens: truncation length of text and lyrics.
        chunk_batch: at most this many 30 s chunks per forward pass.
    """

    name = "muq"
    sample_rate = SAMPLE_RATE
    audio_dim = DIM
    text_dim = DIM

    def __init__(
        self,
        *,
        model_dir: str | None = None,
        repo_id: str = DEFAULT_REPO,
        cache_dir: str | None = None,
        device: str = "cpu",
        max_text_tokens: int = 512,
        chunk_batch: int = 4,
    ) -> None:
        try:
            import muq  # noqa: F401
        except ImportError as exc:
            raise MuQUnavailable(
                f"the muq package is not importable ({exc}); install the extra: pip install 'cmi-annotate[muq]' "
                "(it needs torchaudio)"
            ) from exc
        self._source, config_path = locate_weights(model_dir=model_dir, repo_id=repo_id, cache_dir=cache_dir)
        self._model_dir, self._repo_id, self._cache_dir = model_dir, repo_id, cache_dir
        self.device = device
        self.max_text_tokens = max_text_tokens
        self.chunk_batch = chunk_batch
        fingerprint = hashlib.sha256(config_path.read_bytes()).hexdigest()[:12]
        self.id = f"muq-mulan/{fingerprint}/chunk{CHUNK_SECONDS:g}s-tok{max_text_tokens}"
        self._lock = threading.Lock()
        self._mulan: Any = None

    def options(self) -> dict[str, object]:
        return {
            "model_dir": self._model_dir,
            "repo_id": self._repo_id,
            "cache_dir": self._cache_dir,
            "max_text_tokens": self.max_text_tokens,
        }

    def _towers(self) -> Any:
        with self._lock:
            if self._mulan is None:
                from muq import MuQMuLan

                mulan = MuQMuLan.from_pretrained(self._source, cache_dir=self._cache_dir, local_files_only=True)
                self._mulan = mulan.to(self.device).eval()
        return self._mulan.mulan_module

    def encode_audio(self, waveform: np.ndarray, sr: int) -> np.ndarray:
        import torch

        audio_tower = self._towers().audio
        chunks = split_chunks(resample_to(waveform, sr), SAMPLE_RATE)
        outputs: list[np.ndarray | None] = [None] * len(chunks)
        for group in equal_length_groups([len(c) for c in chunks], self.chunk_batch):
            batch = torch.from_numpy(np.stack([chunks[i] for i in group])).to(self.device)  # (G, n)
            with torch.inference_mode():
                tokens = audio_tower(batch, return_mean=False)  # (G, T, 768)
            for row, index in enumerate(group):
                outputs[index] = tokens[row].float().cpu().numpy()
        return np.concatenate([o for o in outputs if o is not None], axis=0)  # (sum T, 768)

    def encode_texts(self, texts: list[str]) -> list[np.ndarray]:
        """Encode several texts in one padded batch; masks keep padding out of every token."""
        import torch

        text_tower = self._towers().text
        enc = text_tower.tokenizer(
            texts, truncation=True, max_length=self.max_text_tokens, padding=True, return_tensors="pt"
        ).to(self.device)
        mask = enc["attention_mask"].bool()  # (B, L)
        with torch.inference_mode():
            hidden = text_tower.model(**enc).last_hidden_state  # (B, L, model_dim)
            hidden = text_tower.proj(hidden)  # (B, L, 768)
            hidden = text_tower.transformer(hidden, mask=mask)  # (B, L, 768)
        return trim_by_mask(hidden.float().cpu().numpy(), mask.cpu().numpy())

    def encode_text(self, text: str) -> np.ndarray:
        return self.encode_texts([text])[0]
