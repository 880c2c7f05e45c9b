"""Agreement mathematics on aggregated counts; numpy only, no Django.

Everything here works on *unit patterns*: a unit (a comparison) is described only by how many
votes it got for each category, so a whole campaign collapses to a few distinct rows
(``patterns``, shape (K, C)) with a multiplicity each (``weights``, shape (K,)). Krippendorff's
alpha and the pairwise agreement rate depend only on these multisets, never on annotator
identity, which is what lets SQL do the heavy lifting.
"""

from __future__ import annotations

from dataclasses import dataclass

import krippendorff
import numpy as np

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
