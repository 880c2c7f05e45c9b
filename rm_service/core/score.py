"""Scoring, best-of-N ranking and the CMI-RewardBench adapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audio import check_strategy
from .batch import BatchBuilder, Prompt, ScoreInput
from .checkpoint import load_checkpoint
from .encoders import EmbeddingCache, get_encoder
from .encoders.base import Encoder
from .features import AudioSource, Featurizer
from .model import RewardModel


@dataclass(frozen=True)
class RankedCandidate:
    index: int  # position in the candidates given to ``rank``
    alignment: float
    musicality: float
    score: float  # the selection score: the weighted mean of the two heads
    rank: int  # 1 = best
    selected: bool  # within the top-k


def rank_scores(scores: np.ndarray, *, top_k: int, weights: tuple[float, float]) -> list[RankedCandidate]:
    """Best-of-N selection over (N, 2) scores: sort by the weighted mean of the heads, best first.

    Args:
        scores: (N, 2) alignment and musicality scores.
        top_k: how many candidates to mark ``selected``.
        weights: (alignment, musicality) weights, not both zero; the paper selects by their mean, (0.5, 0.5).

    Returns:
        Candidates sorted best first (ties keep input order).
    """
    if top_k < 1:
        raise ValueError("top_k must be >= 1")
    w_align, w_music = (float(w) for w in weights)
    if w_align + w_music <= 0:
        raise ValueError("the weights must have a positive sum")
    rows = [(float(a), float(m)) for a, m in np.asarray(scores).reshape(-1, 2).tolist()]
    combined = [(w_align * a + w_music * m) / (w_align + w_music) for a, m in rows]
    order = sorted(range(len(rows)), key=lambda i: (-combined[i], i))
    return [
        RankedCandidate(i, rows[i][0], rows[i][1], combined[i], rank, rank <= top_k)
        for rank, i in enumerate(order, start=1)
    ]


class Scorer:
    """A reward model plus its encoder and embedding cache, ready to score.

    Args:
        model: the reward model (moved to ``device`` and put in eval mode).
        encoder: the encoder the model was trained with.
        device: torch device; bf16 autocast is used on CUDA.
        cache: on-disk embedding cache (None = in-process only).
        strategy: default long-audio strategy ("first120", "first10", "mean10" or "whole10").
    """

    def __init__(
        self,
        model: RewardModel,
        encoder: Encoder,
        *,
        device: str | torch.device = "cpu",
        cache: EmbeddingCache | None = None,
        strategy: str = "first120",
    ) -> None:
        check_strategy(strategy)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.featurizer = Featurizer(encoder, cache)
        self.strategy = strategy

    @property
    def sr(self) -> int:
        """Sample rate expected for waveform (array) inputs."""
        return self.featurizer.encoder.sample_rate

    def batch_builder(self, *, strategy: str | None = None, max_dur: float | None = None) -> BatchBuilder:
        """The builder of this scorer's model inputs (the same one training uses)."""
        return BatchBuilder(self.featurizer, strategy=strategy or self.strategy, max_dur=max_dur, sr=self.sr)

    def score_batch(
        self,
        items: Sequence[ScoreInput],
        *,
        batch_size: int = 8,
        max_dur: float | None = None,
        strategy: str | None = None,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Score clips against their instructions.

        Args:
            items: each with ``audio`` (path, or waveform at ``self.sr``), and optional ``text``, ``lyrics``,
                ``ref_audio`` (path/waveform or None).
            batch_size: model forward batch size (scores do not depend on it).
            max_dur: cap on the seconds of each clip used (None = the strategy's limit, 120 s).
            strategy: long-audio strategy; ``mean10`` averages the scores of the first 12 10 s windows,
                ``whole10`` those of up to 12 10 s windows spread over the whole track.
            show_progress: draw a tqdm bar.

        Returns:
            float32 array (N, 2): column 0 alignment, column 1 musicality.
        """
        from tqdm import tqdm

        builder = self.batch_builder(strategy=strategy, max_dur=max_dur)
        out = np.zeros((len(items), 2), dtype=np.float32)
        # Items are featurised one batch at a time so memory stays bounded for long lists.
        for first in tqdm(range(0, len(items), batch_size), desc="score", disable=not show_progress, leave=False):
            chunk = list(range(first, min(first + batch_size, len(items))))
            units = [(i, window) for i in chunk for window in builder.item_windows(items[i], i)]
            prompts = {i: builder.item_prompt(items[i]) for i in chunk}
            totals = np.zeros((len(items), 2), dtype=np.float64)
            counts = np.zeros(len(items), dtype=np.int64)
            for start in range(0, len(units), batch_size):
                part = units[start : start + batch_size]
                scores = self._forward(builder, [prompts[i] for i, _ in part], [w for _, w in part])  # (b, 2)
                for (index, _), row in zip(part, scores, strict=True):
                    totals[index] += row
                    counts[index] += 1
            out[chunk] = totals[chunk] / counts[chunk, None]  # mean over windows (mean10, whole10)
        return out

    @torch.inference_mode()
    def _forward(self, builder: BatchBuilder, prompts: list[Prompt], audio: list[np.ndarray]) -> np.ndarray:
        inputs = builder.inputs(prompts, audio)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            scores = self.model(inputs.to(self.device))  # (b, 2)
        return scores.float().cpu().numpy()

    def rank(
        self,
        instruction: Mapping[str, Any],
        candidates: Sequence[AudioSource],
        *,
        top_k: int = 1,
        weights: tuple[float, float] = (0.5, 0.5),
        batch_size: int = 8,
        max_dur: float | None = None,
        strategy: str | None = None,
    ) -> list[RankedCandidate]:
        """Best-of-N: score every candidate for one instruction and rank them with ``rank_scores``.

        Args:
            instruction: ``text``, optional ``lyrics`` and ``ref_audio``.
            candidates: clips (paths or waveforms at ``self.sr``).
            top_k, weights: as ``rank_scores``.
            batch_size, max_dur, strategy: as ``score_batch``.
        """
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        items = [{**instruction, "audio": c} for c in candidates]
        scores = self.score_batch(items, batch_size=batch_size, max_dur=max_dur, strategy=strategy)
        return rank_scores(scores, top_k=top_k, weights=weights)


def load_scorer(
    checkpoint: str | Path,
    *,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    encoder: Encoder | None = None,
    strategy: str | None = None,
) -> Scorer:
    """Load a checkpoint and the encoder it was trained with.

    Args:
        checkpoint: checkpoint directory (or its ``model.safetensors``).
        device: torch device for the model (and the muq encoder).
        cache_dir: embedding cache directory (None = in-process only).
        encoder: a ready encoder instead of rebuilding the checkpoint's; its id must match.
        strategy: default long-audio strategy (None = the checkpoint's).

    Returns:
        A ``Scorer``.

    Raises:
        CheckpointError: missing or malformed checkpoint.
        ValueError: the encoder's id differs from the one the model was trained on.
    """
    ckpt = load_checkpoint(checkpoint, device=device)
    if encoder is None:
        options = dict(ckpt.encoder_options)
        if ckpt.encoder_name == "muq":
            options["device"] = str(device)
        encoder = get_encoder(ckpt.encoder_name, **options)
    if encoder.id != ckpt.encoder_id:
        raise ValueError(
            f"checkpoint {ckpt.path} was trained on encoder {ckpt.encoder_id!r}, but the available encoder is "
            f"{encoder.id!r}; its tokens would not match"
        )
    return Scorer(
        ckpt.model,
        encoder,
        device=device,
        cache=EmbeddingCache(cache_dir) if cache_dir else None,
        strategy=strategy or ckpt.strategy,
    )


class CMIRewardBenchAdapter:
    """The model class for the CMI-RewardBench harness: ``--model_class_path rm_service.core:CMIRewardBenchAdapter``.

    Args:
        checkpoint: checkpoint directory (or its ``model.safetensors``).
        device: torch device.
        cache_dir: embedding cache directory (None = in-process only).
        strategy: long-audio strategy (default: the checkpoint's).
    """

    def __init__(
        self,
        checkpoint: str,
        device: str = "cpu",
        cache_dir: str | None = None,
        strategy: str | None = None,
        **_: Any,
    ) -> None:
        self.scorer = load_scorer(checkpoint, device=device, cache_dir=cache_dir, strategy=strategy)

    @property
    def sr(self) -> int:
        return self.scorer.sr

    def score_batch(
        self, inputs: Sequence[ScoreInput], batch_size: int = 4, max_dur: float = 30.0, **kwargs: Any
    ) -> np.ndarray:
        """(N, 2) scores, column 0 alignment, column 1 musicality; ``inputs`` have audio/text/lyrics/ref_audio."""
        return self.scorer.score_batch(inputs, batch_size=batch_size, max_dur=max_dur, strategy=kwargs.get("strategy"))
