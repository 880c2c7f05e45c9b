"""Assignment strategies: which comparison with room an annotator gets next.

``order_candidates(campaign, annotator, candidate_ids) -> list[int]`` reorders the hand-out's candidates
(comparisons with room that the annotator has not voted on or skipped, fewest votes first); the caller
tries them in the returned order. A strategy only reorders: it never adds a comparison, so the overlap
target (checked again under the row lock when reserving), the listening rules (checked at the vote) and
the annotator's own exclusions hold under every strategy. Gold and attention-check comparisons keep the
place the balanced order gave them, so quality control keeps its pace whatever the strategy.

* ``balanced`` (default): the order as given, fewest votes first.
* ``uncertain``: comparisons whose outcome is least settled first: the expected share of votes for clip_a
  blends the active reward model's probability (worth ``MODEL_PRIOR_VOTES`` votes) with the votes so far,
  and the closer it is to one half, the sooner the comparison comes.
* ``informative``: comparisons of the system pairs whose next vote most shrinks the leaderboard's
  uncertainty about the order of systems (``bradley_terry.pair_information_gain`` on the campaign's
  current Bradley–Terry fit, both questions), recomputed at most every ``INFORMATIVE_CACHE_SECONDS``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import Count, Q
from threadpoolctl import threadpool_limits

from annotate.agreement import bradley_terry as bt
from annotate.catalog.models import AssignmentStrategy, Campaign, Comparison
from annotate.labeling.models import Vote
from annotate.onboarding.selectors import counted_votes
from rm_service.models import ModelVersion, Prediction

logger = logging.getLogger(__name__)

QUESTIONS = ("alignment", "musicality")
# How many of the fewest-votes candidates a non-balanced strategy chooses among.
POOL_SIZE = 400
# The reward model's probability counts like this many votes against the humans' so far.
MODEL_PRIOR_VOTES = 2.0
INFORMATIVE_CACHE_SECONDS = 10

Strategy = Callable[[Campaign, User, list[int]], list[int]]


def outcome_uncertainty(prob_a: np.ndarray, wins_a: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """1 when the expected share of votes for clip_a is one half, 0 when it is 0 or 1.

    ``prob_a`` is the model's probability (0.5 where there is none), ``wins_a`` the votes for clip_a so far
    (a tie counts half) and ``votes`` how many there are.
    """
    expected = (MODEL_PRIOR_VOTES * prob_a + wins_a) / (MODEL_PRIOR_VOTES + votes)
    return 1.0 - np.abs(2.0 * expected - 1.0)


def order_by_priority(candidate_ids: Sequence[int], priority: Sequence[float], protected: set[int]) -> list[int]:
    """Highest priority first (ties keep their given order); ``protected`` ids keep their positions."""
    movable = [(cid, p) for cid, p in zip(candidate_ids, priority, strict=True) if cid not in protected]
    ordered = iter(cid for cid, _ in sorted(movable, key=lambda pair: -pair[1]))
    return [cid if cid in protected else next(ordered) for cid in candidate_ids]


def _quality_items(candidate_ids: list[int]) -> set[int]:
    gold = Q(is_attention_check=True) | ~Q(gold_alignment="") | ~Q(gold_musicality="")
    return set(Comparison.objects.filter(gold, pk__in=candidate_ids).values_list("pk", flat=True))


def balanced(campaign: Campaign, annotator: User, candidate_ids: list[int]) -> list[int]:
    return list(candidate_ids)


def uncertain(campaign: Campaign, annotator: User, candidate_ids: list[int]) -> list[int]:
    version = ModelVersion.objects.filter(is_active=True).first()
    probs: dict[int, tuple[float, float]] = {}
    if version is not None:
        rows = Prediction.objects.filter(model_version=version, comparison_id__in=candidate_ids)
        probs = {cid: (a, m) for cid, a, m in rows.values_list("comparison_id", *(f"{q}_prob_a" for q in QUESTIONS))}
    tallies: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])  # wins_a per question, votes
    votes = counted_votes(Vote.objects.filter(comparison_id__in=candidate_ids))
    for cid, alignment, musicality in votes.values_list("comparison_id", *(f"{q}_choice" for q in QUESTIONS)):
        tally = tallies[cid]
        tally[0] += {"a": 1.0, "t": 0.5}.get(alignment, 0.0)
        tally[1] += {"a": 1.0, "t": 0.5}.get(musicality, 0.0)
        tally[2] += 1
    priority = []
    for cid in candidate_ids:
        prob = np.array(probs.get(cid, (0.5, 0.5)))
        wins_a, wins_m, n = tallies[cid]
        priority.append(float(outcome_uncertainty(prob, np.array([wins_a, wins_m]), np.array([n, n])).mean()))
    return order_by_priority(candidate_ids, priority, _quality_items(candidate_ids))


Outcomes = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # (i, j, share of the win for i, count)


def pair_gains(k: int, questions: Sequence[Outcomes]) -> np.ndarray:
    """(K, K) information gain of one more vote per system pair, summed over the questions' current fits."""
    gain = np.zeros((k, k))
    with threadpool_limits(limits=1):  # a tiny fit: BLAS threads only contend
        for i, j, y, counts in questions:
            theta = bt.fit(i, j, y, k, weights=counts).strengths
            gain += bt.pair_information_gain(theta, bt.fisher_covariance(theta, i, j, k, weights=counts))
    return gain


def _campaign_pair_gains(campaign: Campaign) -> dict[tuple[str, str], float]:
    key = f"labeling:strategy:informative:{campaign.pk}"
    try:
        cached = cache.get(key)
    except Exception:  # an unreachable cache only costs the recomputation
        cached = None
    if cached is not None:
        return cached
    comparisons = Comparison.objects.filter(campaign=campaign).exclude(system_a="").exclude(system_b="")
    names = sorted(
        set(comparisons.values_list("system_a", flat=True)) | set(comparisons.values_list("system_b", flat=True))
    )
    index = {name: n for n, name in enumerate(names)}
    grouped = (
        counted_votes(Vote.objects.filter(comparison__in=comparisons, comparison__is_attention_check=False))
        .values_list("comparison__system_a", "comparison__system_b", *(f"{q}_choice" for q in QUESTIONS))
        .annotate(n=Count("pk"))
        .order_by()
    )
    rows = [(a, b, q1, q2, n) for a, b, q1, q2, n in grouped if a != b]
    i = np.array([index[row[0]] for row in rows], dtype=np.int64)
    j = np.array([index[row[1]] for row in rows], dtype=np.int64)
    counts = np.array([row[4] for row in rows], dtype=float)
    share = {"a": 1.0, "b": 0.0, "t": 0.5}
    outcomes = [(i, j, np.array([share[row[2 + q]] for row in rows]), counts) for q in range(len(QUESTIONS))]
    matrix = pair_gains(len(names), outcomes)
    gains = {(a, b): float(matrix[index[a], index[b]]) for a in names for b in names if a != b}
    try:
        cache.set(key, gains, INFORMATIVE_CACHE_SECONDS)
    except Exception:
        logger.warning("informative strategy: cache unavailable, recomputing on every hand-out")
    return gains


def informative(campaign: Campaign, annotator: User, candidate_ids: list[int]) -> list[int]:
    gains = _campaign_pair_gains(campaign)
    systems = dict(
        (cid, (a, b))
        for cid, a, b in Comparison.objects.filter(pk__in=candidate_ids).values_list("pk", "system_a", "system_b")
    )
    priority = [gains.get(systems.get(cid, ("", "")), 0.0) for cid in candidate_ids]
    return order_by_priority(candidate_ids, priority, _quality_items(candidate_ids))


STRATEGIES: dict[str, Strategy] = {
    AssignmentStrategy.BALANCED: balanced,
    AssignmentStrategy.UNCERTAIN: uncertain,
    AssignmentStrategy.INFORMATIVE: informative,
}


def candidate_pool_size(campaign: Campaign, default: int) -> int:
    """How many fewest-votes candidates the hand-out should fetch for this campaign's strategy."""
    return default if campaign.assignment_strategy == AssignmentStrategy.BALANCED else max(default, POOL_SIZE)


def order_candidates(campaign: Campaign, annotator: User, candidate_ids: list[int]) -> list[int]:
    """``candidate_ids`` in the order the campaign's strategy hands them out (a permutation of them)."""
    strategy = STRATEGIES.get(campaign.assignment_strategy, balanced)
    return strategy(campaign, annotator, list(candidate_ids)) if candidate_ids else []
