"""Live model-vs-human predictions: the active model's verdict on every comparison of a campaign."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from annotate.catalog.models import Campaign, Comparison
from rm_service.models import ModelVersion, Prediction, ScoringJob
from rm_service.services.uploads import clip_path

if TYPE_CHECKING:
    import numpy as np

SCORED_FIELDS = ["alignment_a", "alignment_b", "musicality_a", "musicality_b"]
VERDICT_FIELDS = ["alignment_choice", "musicality_choice", "alignment_prob_a", "musicality_prob_a"]


def predictions_compute(*, version: ModelVersion, campaign: Campaign, job: ScoringJob | None = None) -> int:
    """Score both clips of every comparison of ``campaign`` and upsert one Prediction per comparison."""
    from rm_service import worker

    comparisons = list(
        Comparison.objects.filter(campaign=campaign).select_related("instruction__reference_clip", "clip_a", "clip_b")
    )
    if not comparisons:
        return 0
    inputs = [item for comparison in comparisons for item in _clip_items(comparison)]
    scores = worker.scorer_for(version).score_batch(inputs, batch_size=16, max_dur=None)
    rows = [
        _prediction(comparison, version, scores[2 * i], scores[2 * i + 1]) for i, comparison in enumerate(comparisons)
    ]
    Prediction.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["comparison", "model_version"],
        update_fields=[*SCORED_FIELDS, *VERDICT_FIELDS],
    )
    return len(rows)


def _clip_items(comparison: Comparison) -> list[dict[str, Any]]:
    """The scorer's items for clip A and clip B of a comparison."""
    instruction = comparison.instruction
    ref = clip_path(instruction.reference_clip) if instruction.reference_clip else None
    return [
        {"audio": clip_path(clip), "text": instruction.text, "lyrics": instruction.lyrics, "ref_audio": ref}
        for clip in (comparison.clip_a, comparison.clip_b)
    ]


def _prediction(comparison: Comparison, version: ModelVersion, a: np.ndarray, b: np.ndarray) -> Prediction:
    """P(A preferred) per head is the Bradley-Terry probability of the score difference."""
    p_align, p_music = _sigmoid(float(a[0] - b[0])), _sigmoid(float(a[1] - b[1]))
    return Prediction(
        comparison=comparison,
        model_version=version,
        alignment_a=float(a[0]),
        alignment_b=float(b[0]),
        musicality_a=float(a[1]),
        musicality_b=float(b[1]),
        alignment_prob_a=p_align,
        musicality_prob_a=p_music,
        alignment_choice="a" if p_align >= 0.5 else "b",
        musicality_choice="a" if p_music >= 0.5 else "b",
    )


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
