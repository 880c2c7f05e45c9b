"""The agreement report's shape: typed dataclasses, one per block of the JSON the dashboard, the API,
the ``agreement`` command and stored snapshots share.

``selectors`` fills them from SQL, ``metrics`` computes their numbers; ``as_dict()`` is the JSON.
Field order is the JSON key order, so adding a field here is adding it to the API.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

QUESTIONS = ("alignment", "musicality")
CONFIDENCE_LEVELS = (1, 2, 3, 4, 5)
CONFIDENCE_BINS = (("low", "mean confidence < 3"), ("medium", "3 <= mean < 4"), ("high", "mean confidence >= 4"))


class _Json:
    def as_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


# --- Label aggregation ----------------------------------------------------------


@dataclass(frozen=True)
class QuestionLabel:
    majority: str  # "a" | "b" | "tie"
    votes_a: int
    votes_b: int
    mean_confidence: float
    soft_label: float  # fraction of votes preferring clip_a, a "no preference" vote counting half
    votes_tie: int = 0  # "no preference" votes


@dataclass(frozen=True)
class ComparisonLabel:
    comparison_id: int
    vote_count: int
    alignment: QuestionLabel
    musicality: QuestionLabel


# --- Headline agreement ---------------------------------------------------------


@dataclass
class Alpha(_Json):
    """Nominal alpha; ``value`` is None unless ``status`` is "ok" (never NaN)."""

    status: str  # "ok" | "not_enough_overlap" | "no_variation"
    value: float | None
    ci95_low: float | None
    ci95_high: float | None
    paired_comparisons: int
    min_paired_comparisons: int
    bootstrap_samples: int
    message: str
    # alpha = (observed - expected) / (1 - expected), over the paired votes (Krippendorff's coincidences).
    observed_agreement: float | None = None
    expected_agreement: float | None = None  # what agreement chance alone gives, from how often each answer occurs
    majority_share: float | None = None  # share of paired votes on the most common answer (prevalence)
    prevalence_note: str = ""  # set when prevalence makes alpha low although votes mostly agree


@dataclass
class QuestionSummary(_Json):
    agreement_rate: float | None
    comparisons_with_2plus_votes: int
    votes_on_those_comparisons: int
    vote_pairs: int
    agreeing_pairs: int
    disagreeing_pairs: int
    alpha: Alpha


@dataclass
class AgreementSummary(_Json):
    vote_count: int
    comparison_count: int
    annotator_count: int
    alignment: QuestionSummary
    musicality: QuestionSummary


# --- Per-annotator quality --------------------------------------------------------


@dataclass(frozen=True)
class QualityThresholds(_Json):
    min_votes: int = 10  # side/confidence/speed flags need this many votes
    same_side_fraction: float = 0.95  # of choices on the same displayed side
    same_confidence_fraction: float = 0.95  # of confidences at one value
    fast_vote_seconds: float = 10.0  # a vote faster than this is implausible for two clips
    fast_vote_fraction: float = 0.5
    position_bias_p: float = 0.01  # Holm-adjusted, across the campaign's annotators
    min_gold_answers: int = 4
    min_gold_accuracy: float = 0.6


THRESHOLDS = QualityThresholds()


@dataclass
class AnnotatorQuality(_Json):
    annotator_id: int
    username: str
    votes: int
    median_time_on_task_s: float | None
    median_listened_fraction: float | None
    loo_shared_votes: int  # votes on comparisons that someone else voted on too
    loo_agreement: float | None  # agreement with the leave-one-out majority, both questions pooled
    loo_agreement_alignment: float | None
    loo_agreement_musicality: float | None
    gold_answers: int
    gold_accuracy: float | None
    left_choices: int
    choices: int
    left_fraction: float | None
    position_bias_p: float | None
    position_bias_p_holm: float | None
    modal_confidence_fraction: float | None
    fast_vote_fraction: float | None
    flags: list[str]


# --- Cross-question consistency and confidence -------------------------------------


@dataclass
class MeanConfidences(_Json):
    alignment_mean_confidence: float | None
    musicality_mean_confidence: float | None


@dataclass
class CrossQuestion(_Json):
    votes: int
    same_choice: int
    consistency_rate: float | None
    when_same: MeanConfidences
    when_different: MeanConfidences


@dataclass
class LevelAgreement(_Json):
    """Of the pairs the votes at this confidence level form with other votes on their comparison."""

    confidence: int
    paired_votes: int
    pairs: int
    agreeing_pairs: int
    agreement_rate: float | None


@dataclass
class ConfidenceBin(_Json):
    bin: str  # "low" | "medium" | "high" (see CONFIDENCE_BINS)
    description: str
    comparisons: int
    split: int
    split_rate: float | None
    agreement_rate: float | None


@dataclass
class SplitTest(_Json):
    """Fisher's exact test, one-sided: low-confidence comparisons are split more often than high ones."""

    odds_ratio: float | None = None
    p_value: float | None = None


@dataclass
class SplitByMeanConfidence(_Json):
    bins: list[ConfidenceBin]
    low_vs_high_split_test: SplitTest


@dataclass
class QuestionConfidence(_Json):
    distribution: dict[str, int]  # confidence level ("1".."5") -> votes
    agreement_by_confidence: list[LevelAgreement]
    split_by_mean_confidence: SplitByMeanConfidence


# --- Disputed comparisons and the whole report --------------------------------------


@dataclass
class DisputedComparison(_Json):
    comparison_id: int
    prompt_id: str
    modality: str
    votes: int
    alignment_a: int
    alignment_b: int
    musicality_a: int
    musicality_b: int
    dispute: float | None  # mean minority share over both questions (0.5 = even split)
    url: str  # the staff page that shows the votes and resolves the dispute


@dataclass
class AgreementReport(_Json):
    summary: AgreementSummary
    cross_question: CrossQuestion
    confidence: dict[str, QuestionConfidence]  # per question
    annotators: list[AnnotatorQuality]
    disputed: list[DisputedComparison]
    thresholds: QualityThresholds = field(default_factory=lambda: THRESHOLDS)
