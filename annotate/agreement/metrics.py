"""Agreement statistics on aggregated counts: numpy and scipy, no Django, no SQL.

Everything here works on *unit patterns*: a unit (a comparison) is described only by how many
votes it got for each category, so a whole campaign collapses to a few distinct rows
(``patterns``, shape (K, C)) with a multiplicity each (``weights``, shape (K,)). Krippendorff's
alpha and the pairwise agreement rate depend only on these multisets, never on annotator
identity, which is what lets SQL do the heavy lifting.

The per-annotator and per-bin statistics (Holm adjustment, binomial and Fisher tests, flags) live
here too; ``selectors`` feeds them counts read in SQL and ``report`` declares what they fill in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import krippendorff
import numpy as np
from scipy import stats

from annotate.agreement.report import (
    Alpha,
    AnnotatorQuality,
    QualityThresholds,
    QuestionLabel,
    QuestionSummary,
    SplitTest,
)

# Below this many comparisons with two or more votes, alpha (and its CI) is reported as
# "not enough overlapping votes" rather than as a wildly uncertain number.
MIN_PAIRED_COMPARISONS = 5
BOOTSTRAP_SAMPLES = 1000


@dataclass(frozen=True)
class PairCounts:
    paired_units: int  # units with at least two values
    values_in_paired_units: int
    pairs: int  # unordered pairs of values within the same unit
    agreeing_pairs: int

    @property
    def disagreeing_pairs(self) -> int:
        return self.pairs - self.agreeing_pairs

    @property
    def agreement_rate(self) -> float | None:
        return self.agreeing_pairs / self.pairs if self.pairs else None


def expand_patterns(patterns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The (units x categories) ``value_counts`` matrix that ``krippendorff.alpha`` expects."""
    return np.repeat(np.asarray(patterns, dtype=np.int64), np.asarray(weights, dtype=np.int64), axis=0)


def pair_counts(patterns: np.ndarray, weights: np.ndarray) -> PairCounts:
    """Agreement over all unordered pairs of values within each unit (the paper's A.2 protocol)."""
    patterns = np.asarray(patterns, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    m = patterns.sum(axis=1)
    paired = m >= 2
    pairs = m * (m - 1) // 2
    same = (patterns * (patterns - 1) // 2).sum(axis=1)
    return PairCounts(
        paired_units=int(weights[paired].sum()),
        values_in_paired_units=int((weights * m)[paired].sum()),
        pairs=int((weights * pairs).sum()),
        agreeing_pairs=int((weights * same).sum()),
    )


def unit_coincidences(patterns: np.ndarray) -> np.ndarray:
    """Per-pattern coincidence matrices (K, C, C); units with fewer than two values contribute zero."""
    patterns = np.asarray(patterns, dtype=np.float64)
    m = patterns.sum(axis=1)
    outer = patterns[:, :, None] * patterns[:, None, :]  # (K, C, C)
    outer -= np.einsum("kc,cd->kcd", patterns, np.eye(patterns.shape[1]))
    scale = np.where(m >= 2, 1.0 / np.maximum(m - 1, 1), 0.0)
    return outer * scale[:, None, None]


def alpha_from_coincidences(o: np.ndarray) -> np.ndarray:
    """Nominal alpha from coincidence matrices (..., C, C); NaN where expected disagreement is zero."""
    n_c = o.sum(axis=-1)  # (..., C)
    n = n_c.sum(axis=-1)
    observed_off = o.sum(axis=(-2, -1)) - np.trace(o, axis1=-2, axis2=-1)
    expected_off = n**2 - (n_c**2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected_off > 0, 1.0 - (n - 1) * observed_off / expected_off, np.nan)


def alpha_nominal(patterns: np.ndarray, weights: np.ndarray) -> float | None:
    """Krippendorff's alpha (nominal) computed by the reference ``krippendorff`` package.

    Returns None when alpha is undefined: no unit has two values, or all pairable values are
    the same category (zero expected disagreement).
    """
    patterns = np.asarray(patterns, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    # Single-value units contribute nothing to alpha; dropping them first only saves memory.
    keep = (patterns.sum(axis=1) >= 2) & (weights > 0) if patterns.size else np.zeros(0, dtype=bool)
    value_counts = expand_patterns(patterns[keep], weights[keep])
    if value_counts.size == 0 or np.count_nonzero(value_counts.sum(axis=0)) < 2:
        return None
    return float(krippendorff.alpha(value_counts=value_counts, level_of_measurement="nominal"))


def bootstrap_alpha_ci(
    patterns: np.ndarray, weights: np.ndarray, *, samples: int = BOOTSTRAP_SAMPLES, level: float = 0.95, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap CI for nominal alpha, resampling paired units (comparisons) with replacement.

    Resampling n units with replacement from K patterns of known frequency is a multinomial draw
    over the patterns, so each replicate costs O(K) instead of O(n). Replicates where alpha is
    undefined (every resampled value identical) are dropped; None when none survive.
    """
    patterns = np.asarray(patterns, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.int64)
    keep = (patterns.sum(axis=1) >= 2) & (weights > 0)
    patterns, weights = patterns[keep], weights[keep]
    n_units = int(weights.sum())
    if n_units == 0:
        return None
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n_units, weights / n_units, size=samples)  # (B, K)
    per_pattern = unit_coincidences(patterns)  # (K, C, C)
    o = np.einsum("bk,kcd->bcd", draws.astype(np.float64), per_pattern)
    alphas = alpha_from_coincidences(o)
    alphas = alphas[np.isfinite(alphas)]
    if alphas.size == 0:
        return None
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(alphas, [tail, 100 - tail])
    return float(low), float(high)


# --- Small numeric helpers ----------------------------------------------------------


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def round_finite(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


# --- Labels and headline agreement ---------------------------------------------------


def question_label(votes_a: int, total: int, mean_confidence: float | None, *, votes_tie: int = 0) -> QuestionLabel:
    """Majority (ties kept as "tie"), split and soft label of one question on one comparison.

    A "no preference" vote (``votes_tie``) counts for neither clip in the majority and half for each in the
    soft label.
    """
    votes_b = total - votes_a - votes_tie
    majority = "a" if votes_a > votes_b else "b" if votes_b > votes_a else "tie"
    return QuestionLabel(
        majority=majority,
        votes_a=votes_a,
        votes_b=votes_b,
        mean_confidence=float(mean_confidence or 0.0),
        soft_label=(votes_a + 0.5 * votes_tie) / total,
        votes_tie=votes_tie,
    )


ANSWERS = ("clip_a", "clip_b", "no preference")  # the pattern columns
# The prevalence note appears when alpha is below this although observed agreement is at least HIGH_AGREEMENT ...
LOW_ALPHA = 0.4
HIGH_AGREEMENT = 0.6
# ... and one answer holds at least this share of the paired votes.
PREVALENT_SHARE = 0.6


def observed_expected(patterns: np.ndarray, weights: np.ndarray) -> tuple[float, float, float, int] | None:
    """Observed and chance-expected agreement of the paired votes, the most common answer's share and column.

    Both come from the coincidence matrix alpha uses, so alpha = (observed - expected) / (1 - expected).
    None when no comparison has two votes.
    """
    if not weights.size:
        return None
    o = np.einsum("k,kcd->cd", np.asarray(weights, dtype=np.float64), unit_coincidences(patterns))  # (C, C)
    n_c = o.sum(axis=1)  # (C,)
    n = float(n_c.sum())
    if n < 2:
        return None
    observed = float(np.trace(o)) / n
    expected = float((n_c * (n_c - 1)).sum()) / (n * (n - 1))
    top = int(np.argmax(n_c))
    return observed, expected, float(n_c[top]) / n, top


def _prevalence_note(value: float, observed: float, expected: float, share: float, top: int) -> str:
    if value >= LOW_ALPHA or observed < HIGH_AGREEMENT or share < PREVALENT_SHARE:
        return ""
    return (
        f"{share:.0%} of paired votes chose {ANSWERS[top]}, so chance alone would already agree {expected:.0%} of "
        f"the time; alpha counts only agreement beyond that, hence low alpha despite {observed:.0%} observed agreement."
    )


def alpha(patterns: np.ndarray, weights: np.ndarray, *, bootstrap_samples: int) -> Alpha:
    """Alpha with its status: too few paired comparisons and unanimous data are statuses, not NaN."""
    paired = int(weights[patterns.sum(axis=1) >= 2].sum()) if weights.size else 0
    result = Alpha("ok", None, None, None, paired, MIN_PAIRED_COMPARISONS, bootstrap_samples, "")
    agreement = observed_expected(patterns, weights) if paired else None
    if agreement is not None:
        result.observed_agreement, result.expected_agreement, result.majority_share = (
            round_finite(x, 6) for x in agreement[:3]
        )
    if paired < MIN_PAIRED_COMPARISONS:
        result.status = "not_enough_overlap"
        result.message = (
            f"Not enough overlapping votes: {paired} comparison(s) have two or more votes, "
            f"alpha needs at least {MIN_PAIRED_COMPARISONS}."
        )
        return result
    value = alpha_nominal(patterns, weights)
    if value is None:
        result.status = "no_variation"
        result.message = "Every paired vote chose the same clip, so alpha is undefined (no expected disagreement)."
        return result
    result.value = value
    if agreement is not None:
        result.prevalence_note = _prevalence_note(value, *agreement)
    ci = bootstrap_alpha_ci(patterns, weights, samples=bootstrap_samples) if bootstrap_samples else None
    if ci is not None:
        result.ci95_low, result.ci95_high = ci
    return result


def question_summary(patterns: np.ndarray, weights: np.ndarray, *, bootstrap_samples: int) -> QuestionSummary:
    counts = pair_counts(patterns, weights)
    return QuestionSummary(
        agreement_rate=counts.agreement_rate,
        comparisons_with_2plus_votes=counts.paired_units,
        votes_on_those_comparisons=counts.values_in_paired_units,
        vote_pairs=counts.pairs,
        agreeing_pairs=counts.agreeing_pairs,
        disagreeing_pairs=counts.disagreeing_pairs,
        alpha=alpha(patterns, weights, bootstrap_samples=bootstrap_samples),
    )


# --- Per-annotator quality -------------------------------------------------------------


def position_bias_p(left: int, choices: int) -> float | None:
    """Two-sided binomial test of the share of left-side choices against 0.5."""
    return float(stats.binomtest(left, choices, 0.5).pvalue) if choices else None


def holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def annotator_flags(row: AnnotatorQuality, t: QualityThresholds) -> list[str]:
    flags = []
    if row.votes >= t.min_votes:
        if row.left_fraction is not None and max(row.left_fraction, 1 - row.left_fraction) >= t.same_side_fraction:
            flags.append("same_side")
        if (row.modal_confidence_fraction or 0) >= t.same_confidence_fraction:
            flags.append("same_confidence")
        if (row.fast_vote_fraction or 0) >= t.fast_vote_fraction:
            flags.append("too_fast")
    if row.position_bias_p_holm is not None and row.position_bias_p_holm < t.position_bias_p:
        flags.append("position_bias")
    if row.gold_answers >= t.min_gold_answers and (row.gold_accuracy or 0) < t.min_gold_accuracy:
        flags.append("low_gold_accuracy")
    return flags


def adjust_and_flag(rows: list[AnnotatorQuality], thresholds: QualityThresholds) -> None:
    """Holm-adjust the position-bias p-values across the campaign's annotators, then set each row's flags."""
    tested = [r for r in rows if r.position_bias_p is not None]
    for r, adjusted in zip(tested, holm([r.position_bias_p or 1.0 for r in tested]), strict=True):
        r.position_bias_p_holm = adjusted
    for r in rows:
        r.flags = annotator_flags(r, thresholds)


# --- Confidence ------------------------------------------------------------------------


def low_vs_high_split_test(low: tuple[int, int], high: tuple[int, int]) -> SplitTest:
    """Fisher's exact test on (split, comparisons) of the low and high mean-confidence bins."""
    (low_split, low_n), (high_split, high_n) = low, high
    if not (low_n and high_n):
        return SplitTest()
    result = stats.fisher_exact(
        [[low_split, low_n - low_split], [high_split, high_n - high_split]], alternative="greater"
    )
    return SplitTest(odds_ratio=round_finite(float(result.statistic)), p_value=float(result.pvalue))
