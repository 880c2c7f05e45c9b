"""Reads for the system leaderboard: Bradley–Terry strengths of generating systems from canonical votes.

Per question (alignment, musicality), for one campaign or pooled across campaigns (systems are matched by
the name the campaigns give them), narrowed by the agreement filters (modality, vocal/instrumental, dates).
Counting happens in SQL: identical (comparison, answer) votes arrive as one row with a count, so a campaign
of a million votes is a few thousand rows. The statistics are in ``bradley_terry``.

Beside the human leaderboard stands the active reward model's, fitted on the same comparisons with the
model's probability that clip_a wins as a soft outcome (one row per human vote, so both boards weigh
comparisons alike), and Kendall's tau between the two rankings with a paired bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Count, F, Q, QuerySet

from annotate.agreement import bradley_terry as bt
from annotate.agreement.selectors import AgreementFilters, filter_votes
from annotate.labeling.models import Vote
from annotate.onboarding.selectors import counted_votes
from rm_service.models import ModelVersion, Prediction

QUESTIONS = ("alignment", "musicality")
MIN_VOTES = 20
DISAGREEMENTS_SHOWN = 5
_WIN = {"a": 1.0, "b": 0.0, "t": 0.5}


@dataclass(frozen=True)
class LeaderboardQuery:
    """``campaign_ids`` None pools every campaign."""

    campaign_ids: tuple[int, ...] | None
    filters: AgreementFilters = AgreementFilters()
    min_votes: int = MIN_VOTES
    bootstrap_samples: int = bt.BOOTSTRAP_SAMPLES
    seed: int = 0


@dataclass
class _Rows:
    """Grouped vote rows of one question: system indices, outcome for system i, count, model prob or nan."""

    names: list[str]
    i: np.ndarray
    j: np.ndarray
    y: np.ndarray
    counts: np.ndarray
    model: np.ndarray


def _votes(query: LeaderboardQuery) -> QuerySet[Vote]:
    votes = counted_votes(Vote.objects.all())
    if query.campaign_ids is not None:
        votes = votes.filter(comparison__campaign_id__in=query.campaign_ids)
    votes = filter_votes(votes, query.filters)
    # Attention checks are not generator output; a comparison needs two named, different systems.
    return votes.filter(comparison__is_attention_check=False).exclude(
        Q(comparison__system_a="") | Q(comparison__system_b="") | Q(comparison__system_a=F("comparison__system_b"))
    )


def _rows(votes: QuerySet[Vote], question: str, version: ModelVersion | None) -> _Rows:
    grouped = list(
        votes.values_list("comparison_id", "comparison__system_a", "comparison__system_b", f"{question}_choice")
        .annotate(n=Count("pk"))
        .order_by()
    )
    probs: dict[int, float] = {}
    if version is not None and grouped:
        ids = {row[0] for row in grouped}
        probs = dict(
            Prediction.objects.filter(model_version=version, comparison_id__in=ids).values_list(
                "comparison_id", f"{question}_prob_a"
            )
        )
    names = sorted({row[1] for row in grouped} | {row[2] for row in grouped})
    index = {name: k for k, name in enumerate(names)}
    return _Rows(
        names=names,
        i=np.array([index[row[1]] for row in grouped], dtype=np.int64),
        j=np.array([index[row[2]] for row in grouped], dtype=np.int64),
        y=np.array([_WIN[row[3]] for row in grouped], dtype=float),
        counts=np.array([row[4] for row in grouped], dtype=np.int64),
        model=np.array([probs.get(row[0], np.nan) for row in grouped], dtype=float),
    )


def _system_counts(rows: _Rows) -> list[dict[str, Any]]:
    out = []
    for k, name in enumerate(rows.names):
        as_i, as_j = rows.i == k, rows.j == k
        wins = float((rows.y * rows.counts)[as_i].sum() + ((1 - rows.y) * rows.counts)[as_j].sum())
        ties = int(rows.counts[(as_i | as_j) & (rows.y == 0.5)].sum())
        out.append({"system": name, "votes": int(rows.counts[as_i | as_j].sum()), "wins": wins, "ties": ties})
    return out


def _board(
    i: np.ndarray, j: np.ndarray, ys: list[np.ndarray], counts: np.ndarray, k: int, query: LeaderboardQuery
) -> list[bt.Leaderboard]:
    fits = [bt.fit(i, j, y, k, weights=counts).strengths for y in ys]
    samples = bt.bootstrap(i, j, ys, k, counts=counts, samples=query.bootstrap_samples, seed=query.seed, starts=fits)
    return [bt.leaderboard(theta, s) for theta, s in zip(fits, samples, strict=True)]


def _entry(board: bt.Leaderboard, k: int) -> dict[str, Any]:
    return {
        "strength": float(board.strengths[k]),
        "lower": float(board.lower[k]),
        "upper": float(board.upper[k]),
        "rank": int(board.rank[k]),
        "rank_best": int(board.rank_best[k]),
        "rank_worst": int(board.rank_worst[k]),
    }


def _question(
    votes: QuerySet[Vote], question: str, version: ModelVersion | None, query: LeaderboardQuery
) -> dict[str, Any]:
    rows = _rows(votes, question, version)
    systems = _system_counts(rows)
    ranked = [k for k, row in enumerate(systems) if row["votes"] >= query.min_votes]
    position = {k: n for n, k in enumerate(ranked)}
    keep = np.isin(rows.i, ranked) & np.isin(rows.j, ranked)
    i = np.array([position[k] for k in rows.i[keep]], dtype=np.int64)
    j = np.array([position[k] for k in rows.j[keep]], dtype=np.int64)
    y, counts, model = rows.y[keep], rows.counts[keep], rows.model[keep]
    result: dict[str, Any] = {"votes": int(rows.counts.sum()), "ranked_votes": int(counts.sum()), "model": None}
    for row in systems:
        row.update(ranked=False, human=None, model=None)
    if len(ranked) < 2 or not len(i):
        result["systems"] = sorted(systems, key=lambda row: -row["votes"])
        return result
    (human,) = _board(i, j, [y], counts, len(ranked), query)
    for k in ranked:
        systems[k].update(ranked=True, human=_entry(human, position[k]))
    paired = ~np.isnan(model)
    if version is not None and paired.any():
        result["model"] = _model_side(
            i[paired], j[paired], y[paired], model[paired], counts[paired], ranked, systems, query
        )
    result["systems"] = sorted(systems, key=lambda row: (not row["ranked"], -(row["human"] or {}).get("strength", 0)))
    return result


def _model_side(
    i: np.ndarray,
    j: np.ndarray,
    y: np.ndarray,
    model: np.ndarray,
    counts: np.ndarray,
    ranked: list[int],
    systems: list[dict[str, Any]],
    query: LeaderboardQuery,
) -> dict[str, Any]:
    """The model's board on the comparisons it scored, and its agreement with the humans' on the same ones."""
    human, machine = _board(i, j, [y, model], counts, len(ranked), query)
    for n, k in enumerate(ranked):
        systems[k]["model"] = _entry(machine, n)
    taus = [bt.kendall_tau(h, m) for h, m in zip(human.samples, machine.samples, strict=True)]
    finite = np.array([t for t in taus if t is not None])
    lower, upper = np.percentile(finite, [2.5, 97.5]) if len(finite) else (np.nan, np.nan)
    shifts = [
        {
            "system": systems[k]["system"],
            "human_rank": int(human.rank[n]),
            "model_rank": int(machine.rank[n]),
            "rank_shift": int(machine.rank[n] - human.rank[n]),
        }
        for n, k in enumerate(ranked)
    ]
    shifts.sort(key=lambda row: (-abs(row["rank_shift"]), row["human_rank"]))
    return {
        "comparisons_scored": int(counts.sum()),
        "kendall_tau": bt.kendall_tau(human.strengths, machine.strengths),
        "kendall_tau_lower": None if np.isnan(lower) else float(lower),
        "kendall_tau_upper": None if np.isnan(upper) else float(upper),
        "disagreements": [row for row in shifts if row["rank_shift"]][:DISAGREEMENTS_SHOWN],
    }


def system_leaderboard(*, query: LeaderboardQuery) -> dict[str, Any]:
    """Both questions' leaderboards (human and, where the active model scored the comparisons, model)."""
    version = ModelVersion.objects.filter(is_active=True).first()
    votes = _votes(query)
    return {
        "campaigns": None if query.campaign_ids is None else list(query.campaign_ids),
        "filters": query.filters.as_dict(),
        "min_votes": query.min_votes,
        "confidence": bt.CONFIDENCE,
        "bootstrap_samples": query.bootstrap_samples,
        "model_version": None if version is None else {"id": version.pk, "name": version.name},
        "questions": {question: _question(votes, question, version, query) for question in QUESTIONS},
    }
