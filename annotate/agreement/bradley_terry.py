"""Bradley–Terry strengths of generating systems from pairwise outcomes, with bootstrap intervals.

Pure numpy/scipy (no Django), shared by the leaderboard, the ``informative`` assignment strategy and
``bench/strategies.py``.

An outcome row is ``(i, j, y)``: systems ``i`` and ``j`` were compared and ``y`` is the share of the win
that went to ``i`` (1 win, 0 loss, 0.5 tie, the convention Music Arena uses, or a model's probability).
The model is ``P(i beats j) = sigmoid(theta_i - theta_j)``; strengths are on the logit scale and centred
(mean 0). A small ridge keeps the fit finite when a system won or lost everything or the comparison
graph is disconnected; it also pins the otherwise free overall level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from scipy.stats import kendalltau, norm
from threadpoolctl import threadpool_limits

__all__ = [
    "Fit",
    "Leaderboard",
    "bootstrap",
    "fisher_covariance",
    "fit",
    "kendall_tau",
    "leaderboard",
    "pair_information_gain",
    "rank_ranges",
]

# Penalty 0.5 * RIDGE * ||theta||^2: worth about one hundredth of a vote per system, negligible against data.
RIDGE = 0.01
CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 200


@dataclass(frozen=True)
class Fit:
    strengths: np.ndarray  # (K,) centred logit strengths
    converged: bool


def _pair_totals(
    i: np.ndarray, j: np.ndarray, y: np.ndarray, weights: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Collapse rows into one per unordered pair: (lo, hi, wins of lo, comparisons)."""
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    win_lo = np.where(i == lo, y, 1.0 - y)
    key = lo * k + hi
    keys, inverse = np.unique(key, return_inverse=True)
    wins = np.bincount(inverse, weights=win_lo * weights, minlength=len(keys))
    total = np.bincount(inverse, weights=weights, minlength=len(keys))
    return keys // k, keys % k, wins, total


def fit(
    i: np.ndarray,
    j: np.ndarray,
    y: np.ndarray,
    k: int,
    *,
    weights: np.ndarray | None = None,
    ridge: float = RIDGE,
    start: np.ndarray | None = None,
) -> Fit:
    """Maximum penalised likelihood strengths of ``k`` systems (L-BFGS-B on the log-likelihood)."""
    i, j, y = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64), np.asarray(y, dtype=float)
    w = np.ones(len(i)) if weights is None else np.asarray(weights, dtype=float)
    a, b, wins, total = _pair_totals(i, j, y, w, k)
    losses = total - wins

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[a] - theta[b]  # (P,)
        nll = -(wins * log_expit(d) + losses * log_expit(-d)).sum() + 0.5 * ridge * theta @ theta
        r = total * expit(d) - wins  # d nll / d d, (P,)
        grad = np.bincount(a, weights=r, minlength=k) - np.bincount(b, weights=r, minlength=k) + ridge * theta
        return float(nll), grad

    x0 = np.zeros(k) if start is None else np.asarray(start, dtype=float)
    result = minimize(objective, x0, jac=True, method="L-BFGS-B", options={"maxiter": 500, "gtol": 1e-8})
    theta = result.x - result.x.mean()
    return Fit(strengths=theta, converged=bool(result.success))


def fisher_covariance(
    theta: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    k: int,
    *,
    weights: np.ndarray | None = None,
    ridge: float = RIDGE,
) -> np.ndarray:
    """Asymptotic covariance of the strengths (inverse Fisher information plus the ridge), (K, K)."""
    p = expit(theta[i] - theta[j])
    w = p * (1.0 - p) * (1.0 if weights is None else np.asarray(weights, dtype=float))
    info = np.zeros((k, k))
    np.add.at(info, (i, i), w)
    np.add.at(info, (j, j), w)
    np.add.at(info, (i, j), -w)
    np.add.at(info, (j, i), -w)
    info += ridge * np.eye(k)
    return np.linalg.inv(info)


def bootstrap(
    i: np.ndarray,
    j: np.ndarray,
    ys: list[np.ndarray],
    k: int,
    *,
    counts: np.ndarray | None = None,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    starts: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Strengths refitted on ``samples`` resamples of the comparisons, one (samples, K) array per outcome.

    ``counts`` are row multiplicities (identical votes grouped into one row); a resample draws as many
    comparisons as there are, with replacement. Several outcome vectors (``ys``: human votes, a model's
    probabilities) are resampled *together*, so a statistic relating them (Kendall's tau between the two
    rankings) gets a paired interval.
    """
    rng = np.random.default_rng(seed)
    counts = np.ones(len(i), dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    out = [np.empty((samples, k)) for _ in ys]
    with threadpool_limits(limits=1):  # many tiny fits: BLAS threads only contend
        for s in range(samples):
            drawn = rng.multinomial(total, counts / total).astype(float)  # (N,) multiplicity of each row
            for index, y in enumerate(ys):
                start = starts[index] if starts else None
                out[index][s] = fit(i, j, y, k, weights=drawn, start=start).strengths
    return out


def rank_ranges(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chatbot Arena's rank ranges: best = 1 + #systems surely better, worst = K - #systems surely worse."""
    surely_better = (lower[None, :] > upper[:, None]).sum(axis=1)  # [s]: systems whose interval is above s's
    surely_worse = (upper[None, :] < lower[:, None]).sum(axis=1)
    return 1 + surely_better, len(lower) - surely_worse


def point_ranks(strengths: np.ndarray) -> np.ndarray:
    """1 for the strongest system; ties share the better rank."""
    return 1 + (strengths[None, :] > strengths[:, None]).sum(axis=1)


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2:
        return None
    tau = kendalltau(x, y).statistic
    return None if np.isnan(tau) else float(tau)


@dataclass(frozen=True)
class Leaderboard:
    strengths: np.ndarray  # (K,)
    lower: np.ndarray  # (K,) bootstrap percentile interval
    upper: np.ndarray
    rank: np.ndarray  # (K,) point rank
    rank_best: np.ndarray
    rank_worst: np.ndarray
    samples: np.ndarray  # (B, K) bootstrap strengths


def leaderboard(strengths: np.ndarray, samples: np.ndarray, *, confidence: float = CONFIDENCE) -> Leaderboard:
    """Percentile intervals and rank ranges from a point fit and its bootstrap refits."""
    tail = (1.0 - confidence) / 2 * 100
    lower, upper = np.percentile(samples, [tail, 100 - tail], axis=0)
    best, worst = rank_ranges(lower, upper)
    return Leaderboard(
        strengths=strengths,
        lower=lower,
        upper=upper,
        rank=point_ranks(strengths),
        rank_best=best,
        rank_worst=worst,
        samples=samples,
    )


def wald_intervals(
    theta: np.ndarray, covariance: np.ndarray, *, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    half = norm.ppf(0.5 + confidence / 2) * np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    return theta - half, theta + half


def pair_information_gain(theta: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """(K, K): how much one more comparison of systems (a, b) shrinks the uncertainty that matters for ranking.

    The contrasts that matter are every pair of systems (k, l) whose order is in doubt, weighted by the
    probability of misordering them, ``Phi(-|theta_k - theta_l| / sd(theta_k - theta_l))``. One observation
    of (a, b) with Fisher weight ``w = p(1 - p)`` is a rank-one update of the information, so (Sherman–
    Morrison) the variance of contrast ``c`` falls by ``w (c' S v)^2 / (1 + w v' S v)`` with ``v = e_a - e_b``.
    The gain is the weighted sum of those reductions (an A-optimal design on the doubtful contrasts).
    """
    k = len(theta)
    diff = theta[:, None] - theta[None, :]
    var_diff = np.diag(covariance)[:, None] + np.diag(covariance)[None, :] - 2 * covariance
    doubt = norm.cdf(-np.abs(diff) / np.sqrt(np.clip(var_diff, 1e-12, None)))  # (K, K)
    np.fill_diagonal(doubt, 0.0)
    ks, ls = np.triu_indices(k, 1)
    weight = doubt[ks, ls]  # (C,) one per contrast k<l
    # S v for v = e_a - e_b is column a minus column b; c' S v for c = e_k - e_l follows by indexing.
    gain = np.zeros((k, k))
    p = expit(diff)
    for a in range(k):
        for b in range(a + 1, k):
            sv = covariance[:, a] - covariance[:, b]  # (K,)
            w = p[a, b] * (1 - p[a, b])
            reduction = w * (sv[ks] - sv[ls]) ** 2 / (1 + w * (sv[a] - sv[b]))  # (C,)
            gain[a, b] = gain[b, a] = float(weight @ reduction)
    return gain
