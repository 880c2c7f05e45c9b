"""Agreement and quality statistics, read from votes in canonical orientation.

All counting happens in SQL (GROUP BY comparison, window functions per vote); Python only
receives per-comparison *patterns* (a few dozen distinct rows) or per-annotator rows, so the
cost of a report is dominated by one or two scans of the vote table.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connections
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    F,
    FloatField,
    Q,
    QuerySet,
    Value,
    Window,
)
from django.db.models.functions import Cast, Least
from django.utils import timezone
from scipy import stats

from annotate.agreement import metrics
from annotate.agreement.models import AgreementSnapshot
from annotate.catalog.models import Campaign
from annotate.labeling.models import Vote
from annotate.onboarding.selectors import counted_votes

QUESTIONS = ("alignment", "musicality")
CONFIDENCE_LEVELS = (1, 2, 3, 4, 5)
DISPUTED_LIMIT = 20


# --- Filters ------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementFilters:
    """Subsets of a campaign's votes. ``vocal``: True vocal only, False instrumental only, None both."""

    modalities: tuple[str, ...] = ()
    vocal: bool | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @property
    def is_empty(self) -> bool:
        return not self.modalities and self.vocal is None and self.since is None and self.until is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "modalities": list(self.modalities),
            "vocal": self.vocal,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


def campaign_votes(*, campaign_id: int, filters: AgreementFilters | None = None) -> QuerySet[Vote]:
    """The votes of one campaign, narrowed by modality, vocal/instrumental and a date range."""
    votes = counted_votes(Vote.objects.filter(comparison__campaign_id=campaign_id))
    filters = filters or AgreementFilters()
    if filters.modalities:
        votes = votes.filter(comparison__instruction__modality__in=filters.modalities)
    if filters.vocal is True:
        # A comparison counts as vocal when either clip has vocals.
        votes = votes.filter(Q(comparison__clip_a__is_vocal=True) | Q(comparison__clip_b__is_vocal=True))
    elif filters.vocal is False:
        votes = votes.filter(comparison__clip_a__is_vocal=False, comparison__clip_b__is_vocal=False)
    if filters.since is not None:
        votes = votes.filter(created_at__gte=filters.since)
    if filters.until is not None:
        votes = votes.filter(created_at__lt=filters.until)
    return votes


# --- SQL helpers --------------------------------------------------------------


class Median(Aggregate):
    """PostgreSQL's exact median; other backends fall back to numpy (see ``_medians``)."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _wrap(outer_sql: str, inner: QuerySet[Any]) -> list[tuple[Any, ...]]:
    """Run ``outer_sql`` with ``{inner}`` replaced by the ORM-compiled SQL of ``inner``.

    Lets the ORM express the filters and window functions while the second level of
    aggregation (which Django can't nest) stays in SQL.
    """
    sql, params = inner.query.sql_with_params()
    with connections[inner.db].cursor() as cursor:
        cursor.execute(outer_sql.replace("{inner}", sql), params)
        return list(cursor.fetchall())


def _per_comparison(votes: QuerySet[Vote]) -> QuerySet[Any]:
    return (
        votes.order_by()
        .values("comparison_id")
        .annotate(
            m=Count("id"),
            al_a=Count("id", filter=Q(alignment_choice="a")),
            mu_a=Count("id", filter=Q(musicality_choice="a")),
        )
    )


def _per_vote(votes: QuerySet[Vote]) -> QuerySet[Any]:
    """Each vote with m (votes on its comparison) and how many of them share its choice (itself included)."""
    by_comparison = [F("comparison_id")]
    return (
        votes.order_by()
        .annotate(
            m=Window(Count("id"), partition_by=by_comparison),
            al_same=Window(Count("id"), partition_by=[*by_comparison, F("alignment_choice")]),
            mu_same=Window(Count("id"), partition_by=[*by_comparison, F("musicality_choice")]),
        )
        .values("annotator_id", "alignment_confidence", "musicality_confidence", "m", "al_same", "mu_same")
    )


@dataclass(frozen=True)
class Patterns:
    """Distinct per-comparison vote splits with their multiplicities (all comparisons with a vote).

    Units with a single vote are kept so the totals come from the same scan; every metric
    ignores them (they form no pair), exactly as Krippendorff's alpha does.
    """

    alignment: tuple[np.ndarray, np.ndarray]  # (patterns (K, 2) = [votes a, votes b], weights (K,))
    musicality: tuple[np.ndarray, np.ndarray]

    @property
    def vote_count(self) -> int:
        patterns, weights = self.alignment
        return int((patterns.sum(axis=1) * weights).sum())

    @property
    def comparison_count(self) -> int:
        return int(self.alignment[1].sum())


def vote_patterns(*, votes: QuerySet[Vote]) -> Patterns:
    """The ``value_counts`` of both questions, collapsed to distinct rows by a second GROUP BY."""
    inner = _per_comparison(votes)
    rows = _wrap("SELECT t.m, t.al_a, t.mu_a, COUNT(*) FROM ({inner}) t GROUP BY t.m, t.al_a, t.mu_a", inner)
    table = np.array(rows, dtype=np.int64).reshape(-1, 4)
    m, al_a, mu_a, weight = table.T
    return Patterns(
        alignment=(np.stack([al_a, m - al_a], axis=1), weight),
        musicality=(np.stack([mu_a, m - mu_a], axis=1), weight),
    )


# --- Label aggregation ----------------------------------------------------------


@dataclass(frozen=True)
class QuestionLabel:
    majority: str  # "a" | "b" | "tie"
    votes_a: int
    votes_b: int
    mean_confidence: float
    soft_label: float  # fraction of votes preferring clip_a


@dataclass(frozen=True)
class ComparisonLabel:
    comparison_id: int
    vote_count: int
    alignment: QuestionLabel
    musicality: QuestionLabel


def _question_label(votes_a: int, total: int, mean_confidence: float | None) -> QuestionLabel:
    votes_b = total - votes_a
    majority = "a" if votes_a > votes_b else "b" if votes_b > votes_a else "tie"
    return QuestionLabel(
        majority=majority,
        votes_a=votes_a,
        votes_b=votes_b,
        mean_confidence=float(mean_confidence or 0.0),
        soft_label=votes_a / total,
    )


def comparison_labels(*, votes: QuerySet[Vote]) -> dict[int, ComparisonLabel]:
    """Majority, split, mean confidence and soft label per comparison (one GROUP BY comparison)."""
    rows = _per_comparison(votes).annotate(al_conf=Avg("alignment_confidence"), mu_conf=Avg("musicality_confidence"))
    return {
        row["comparison_id"]: ComparisonLabel(
            comparison_id=row["comparison_id"],
            vote_count=row["m"],
            alignment=_question_label(row["al_a"], row["m"], row["al_conf"]),
            musicality=_question_label(row["mu_a"], row["m"], row["mu_conf"]),
        )
        for row in rows
    }


# --- Headline agreement ---------------------------------------------------------


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _alpha_block(patterns: np.ndarray, weights: np.ndarray, *, bootstrap_samples: int) -> dict[str, Any]:
    paired = int(weights[patterns.sum(axis=1) >= 2].sum()) if weights.size else 0
    block: dict[str, Any] = {
        "status": "ok",
        "value": None,
        "ci95_low": None,
        "ci95_high": None,
        "paired_comparisons": paired,
        "min_paired_comparisons": metrics.MIN_PAIRED_COMPARISONS,
        "bootstrap_samples": bootstrap_samples,
        "message": "",
    }
    if paired < metrics.MIN_PAIRED_COMPARISONS:
        block["status"] = "not_enough_overlap"
        block["message"] = (
            f"Not enough overlapping votes: {paired} comparison(s) have two or more votes, "
            f"alpha needs at least {metrics.MIN_PAIRED_COMPARISONS}."
        )
        return block
    value = metrics.alpha_nominal(patterns, weights)
    if value is None:
        block["status"] = "no_variation"
        block["message"] = "Every paired vote chose the same clip, so alpha is undefined (no expected disagreement)."
        return block
    block["value"] = value
    ci = metrics.bootstrap_alpha_ci(patterns, weights, samples=bootstrap_samples) if bootstrap_samples else None
    if ci is not None:
        block["ci95_low"], block["ci95_high"] = ci
    return block


def _question_summary(patterns: np.ndarray, weights: np.ndarray, *, bootstrap_samples: int) -> dict[str, Any]:
    counts = metrics.pair_counts(patterns, weights)
    return {
        "agreement_rate": counts.agreement_rate,
        "comparisons_with_2plus_votes": counts.paired_units,
        "votes_on_those_comparisons": counts.values_in_paired_units,
        "vote_pairs": counts.pairs,
        "agreeing_pairs": counts.agreeing_pairs,
        "disagreeing_pairs": counts.disagreeing_pairs,
        "alpha": _alpha_block(patterns, weights, bootstrap_samples=bootstrap_samples),
    }


def agreement_summary(*, votes: QuerySet[Vote], bootstrap_samples: int = metrics.BOOTSTRAP_SAMPLES) -> dict[str, Any]:
    """Headline numbers per question: pairwise agreement rate with its counts, nominal alpha and its 95% CI.

    JSON-serialisable. Alpha has ``status`` "ok", "not_enough_overlap" or "no_variation" and is
    None unless "ok", so callers never see NaN or an exception for small or unanimous data.
    """
    patterns = vote_patterns(votes=votes)
    return {
        "vote_count": patterns.vote_count,
        "comparison_count": patterns.comparison_count,
        # A DISTINCT subquery (hash aggregate) rather than COUNT(DISTINCT), which sorts.
        "annotator_count": votes.order_by().values("annotator_id").distinct().count(),
        "alignment": _question_summary(*patterns.alignment, bootstrap_samples=bootstrap_samples),
        "musicality": _question_summary(*patterns.musicality, bootstrap_samples=bootstrap_samples),
    }


# --- Per-annotator quality --------------------------------------------------------


@dataclass(frozen=True)
class QualityThresholds:
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
class AnnotatorQuality:
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _left(question: str) -> Q:
    # The left clip is clip_a unless the display was swapped.
    choice = f"{question}_choice"
    return Q(presented_swapped=False, **{choice: "a"}) | Q(presented_swapped=True, **{choice: "b"})


def _listened_fraction() -> Any:
    def part(side: str) -> Any:
        ratio = Cast(F(f"listened_{side}_s"), FloatField()) / F(f"comparison__clip_{side}__duration_s")
        return Least(ratio, Value(1.0))

    return (part("a") + part("b")) / Value(2.0)


def _annotator_rows(votes: QuerySet[Vote]) -> list[dict[str, Any]]:
    gold_al, gold_mu = ~Q(comparison__gold_alignment=""), ~Q(comparison__gold_musicality="")
    aggregates: dict[str, Any] = {
        "votes": Count("id"),
        "left_al": Count("id", filter=_left("alignment")),
        "left_mu": Count("id", filter=_left("musicality")),
        "gold_n": Count("id", filter=gold_al) + Count("id", filter=gold_mu),
        "gold_ok": Count("id", filter=gold_al & Q(alignment_choice=F("comparison__gold_alignment")))
        + Count("id", filter=gold_mu & Q(musicality_choice=F("comparison__gold_musicality"))),
        "fast": Count("id", filter=Q(time_on_task_s__lt=THRESHOLDS.fast_vote_seconds)),
        "timed": Count("time_on_task_s"),
    }
    for level in CONFIDENCE_LEVELS:
        aggregates[f"conf{level}"] = Count("id", filter=Q(alignment_confidence=level)) + Count(
            "id", filter=Q(musicality_confidence=level)
        )
    if votes.db and connections[votes.db].vendor == "postgresql":
        aggregates["median_time"] = Median("time_on_task_s")
        aggregates["median_listened"] = Median(_listened_fraction())
    rows = votes.order_by().values("annotator_id", "annotator__username").annotate(**aggregates)
    return [dict(row) for row in rows]


def _medians(votes: QuerySet[Vote]) -> dict[int, tuple[float | None, float | None]]:
    """Median time and listened fraction per annotator, in numpy, for backends without percentile_cont."""
    values = (
        votes.order_by()
        .annotate(listened=_listened_fraction())
        .values_list("annotator_id", "time_on_task_s", "listened")
    )
    grouped: dict[int, tuple[list[float], list[float]]] = {}
    for annotator_id, time_s, listened in values:
        times, fractions = grouped.setdefault(annotator_id, ([], []))
        if time_s is not None:
            times.append(time_s)
        fractions.append(listened)
    return {
        key: (float(np.median(t)) if t else None, float(np.median(f)) if f else None) for key, (t, f) in grouped.items()
    }


def _leave_one_out(votes: QuerySet[Vote]) -> dict[int, tuple[int, ...]]:
    """Per annotator: shared votes, then (agree, decided) per question against the strict majority of the others.

    A vote agrees when the other votes on its comparison have a strict majority for its choice
    (same - 1 > m - same); it is undecided, and left out, when the others are tied.
    """
    rows = _wrap(
        """SELECT t.annotator_id, COUNT(*),
           SUM(CASE WHEN t.al_same - 1 > t.m - t.al_same THEN 1 ELSE 0 END),
           SUM(CASE WHEN t.al_same - 1 <> t.m - t.al_same THEN 1 ELSE 0 END),
           SUM(CASE WHEN t.mu_same - 1 > t.m - t.mu_same THEN 1 ELSE 0 END),
           SUM(CASE WHEN t.mu_same - 1 <> t.m - t.mu_same THEN 1 ELSE 0 END)
           FROM ({inner}) t WHERE t.m >= 2 GROUP BY t.annotator_id""",
        _per_vote(votes),
    )
    return {row[0]: tuple(int(value) for value in row[1:]) for row in rows}


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _holm(p_values: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _flags(row: AnnotatorQuality) -> list[str]:
    t = THRESHOLDS
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


def annotator_quality(*, votes: QuerySet[Vote]) -> list[AnnotatorQuality]:
    """Quality-control numbers and flags per annotator, sorted by username."""
    rows = _annotator_rows(votes)
    medians = {} if rows and "median_time" in rows[0] else _medians(votes)
    loo = _leave_one_out(votes)
    result = []
    for row in rows:
        key = row["annotator_id"]
        median_time, median_listened = medians.get(key) or (row.get("median_time"), row.get("median_listened"))
        shared, al_ok, al_n, mu_ok, mu_n = loo.get(key, (0, 0, 0, 0, 0))
        choices, left = 2 * row["votes"], row["left_al"] + row["left_mu"]
        conf_counts = [row[f"conf{level}"] for level in CONFIDENCE_LEVELS]
        result.append(
            AnnotatorQuality(
                annotator_id=key,
                username=row["annotator__username"],
                votes=row["votes"],
                median_time_on_task_s=median_time,
                median_listened_fraction=median_listened,
                loo_shared_votes=shared,
                loo_agreement=_ratio(al_ok + mu_ok, al_n + mu_n),
                loo_agreement_alignment=_ratio(al_ok, al_n),
                loo_agreement_musicality=_ratio(mu_ok, mu_n),
                gold_answers=row["gold_n"],
                gold_accuracy=_ratio(row["gold_ok"], row["gold_n"]),
                left_choices=left,
                choices=choices,
                left_fraction=_ratio(left, choices),
                position_bias_p=stats.binomtest(left, choices, 0.5).pvalue if choices else None,
                position_bias_p_holm=None,
                modal_confidence_fraction=_ratio(max(conf_counts), choices),
                fast_vote_fraction=_ratio(row["fast"], row["timed"]),
                flags=[],
            )
        )
    tested = [r for r in result if r.position_bias_p is not None]
    for r, adjusted in zip(tested, _holm([r.position_bias_p or 1.0 for r in tested]), strict=True):
        r.position_bias_p_holm = adjusted
    for r in result:
        r.flags = _flags(r)
    return sorted(result, key=lambda r: r.username)


def flagged_annotator_ids(*, campaign_id: int) -> set[int]:
    """Annotators of a campaign flagged by quality control (straight-lining, too fast, position bias, low gold)."""
    return {r.annotator_id for r in annotator_quality(votes=campaign_votes(campaign_id=campaign_id)) if r.flags}


# --- Cross-question consistency and confidence -------------------------------------


def cross_question_consistency(*, votes: QuerySet[Vote]) -> dict[str, Any]:
    """How often a vote's alignment choice equals its musicality choice (paper table 7), with mean confidences."""
    same = Q(alignment_choice=F("musicality_choice"))
    row = votes.order_by().aggregate(
        votes=Count("id"),
        same=Count("id", filter=same),
        al_conf_same=Avg("alignment_confidence", filter=same),
        mu_conf_same=Avg("musicality_confidence", filter=same),
        al_conf_diff=Avg("alignment_confidence", filter=~same),
        mu_conf_diff=Avg("musicality_confidence", filter=~same),
    )
    return {
        "votes": row["votes"],
        "same_choice": row["same"],
        "consistency_rate": _ratio(row["same"], row["votes"]),
        "when_same": {
            "alignment_mean_confidence": row["al_conf_same"],
            "musicality_mean_confidence": row["mu_conf_same"],
        },
        "when_different": {
            "alignment_mean_confidence": row["al_conf_diff"],
            "musicality_mean_confidence": row["mu_conf_diff"],
        },
    }


def _by_confidence_level(votes: QuerySet[Vote]) -> dict[str, dict[int, tuple[int, int, int, int]]]:
    """One window scan for both questions: per confidence level, (votes, paired votes, agreeing pairs, pairs).

    The pairs are those a vote forms with the other votes on its comparison, so each pair is
    counted once from each end. Grouped by both confidences at once, then summed per question.
    """
    rows = _wrap(
        """SELECT t.alignment_confidence, t.musicality_confidence, COUNT(*),
                  SUM(CASE WHEN t.m >= 2 THEN 1 ELSE 0 END), SUM(t.al_same - 1), SUM(t.mu_same - 1), SUM(t.m - 1)
           FROM ({inner}) t GROUP BY t.alignment_confidence, t.musicality_confidence""",
        _per_vote(votes),
    )
    result: dict[str, dict[int, tuple[int, int, int, int]]] = {q: {} for q in QUESTIONS}
    for al_level, mu_level, n, paired, al_agree, mu_agree, pairs in rows:
        for question, level, agree in (("alignment", al_level, al_agree), ("musicality", mu_level, mu_agree)):
            old = result[question].get(int(level), (0, 0, 0, 0))
            result[question][int(level)] = (
                old[0] + int(n),
                old[1] + int(paired),
                old[2] + int(agree),
                old[3] + int(pairs),
            )
    return result


def _confidence_levels(found: dict[int, tuple[int, int, int, int]]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    distribution, agreement = {}, []
    for level in CONFIDENCE_LEVELS:
        n, paired, agree, pairs = found.get(level, (0, 0, 0, 0))
        distribution[str(level)] = n
        agreement.append(
            {
                "confidence": level,
                "paired_votes": paired,
                "pairs": pairs,
                "agreeing_pairs": agree,
                "agreement_rate": _ratio(agree, pairs),
            }
        )
    return distribution, agreement


CONFIDENCE_BINS = (("low", "mean confidence < 3"), ("medium", "3 <= mean < 4"), ("high", "mean confidence >= 4"))


def _bin_sql(column: str) -> str:
    return f"CASE WHEN {column} < 3 THEN 'low' WHEN {column} < 4 THEN 'medium' ELSE 'high' END"


def _splits_by_mean_confidence(votes: QuerySet[Vote]) -> dict[str, dict[str, tuple[int, int, int, int]]]:
    """Per question and mean-confidence bin: (comparisons, split ones, pairs, agreeing pairs), in one scan."""
    inner = (
        _per_comparison(votes)
        .annotate(al_conf=Avg("alignment_confidence"), mu_conf=Avg("musicality_confidence"))
        .filter(m__gte=2)
    )
    rows = _wrap(
        f"""SELECT {_bin_sql("t.al_conf")}, {_bin_sql("t.mu_conf")}, COUNT(*),
                   SUM(CASE WHEN t.al_a > 0 AND t.al_a < t.m THEN 1 ELSE 0 END),
                   SUM(CASE WHEN t.mu_a > 0 AND t.mu_a < t.m THEN 1 ELSE 0 END),
                   SUM(t.m * (t.m - 1) / 2),
                   SUM(t.al_a * (t.al_a - 1) / 2 + (t.m - t.al_a) * (t.m - t.al_a - 1) / 2),
                   SUM(t.mu_a * (t.mu_a - 1) / 2 + (t.m - t.mu_a) * (t.m - t.mu_a - 1) / 2)
            FROM ({{inner}}) t GROUP BY 1, 2""",
        inner,
    )
    result: dict[str, dict[str, tuple[int, int, int, int]]] = {q: {} for q in QUESTIONS}
    for al_bin, mu_bin, n, al_split, mu_split, pairs, al_agree, mu_agree in rows:
        for question, name, split, agree in (
            ("alignment", al_bin, al_split, al_agree),
            ("musicality", mu_bin, mu_split, mu_agree),
        ):
            old = result[question].get(name, (0, 0, 0, 0))
            result[question][name] = (old[0] + int(n), old[1] + int(split), old[2] + int(pairs), old[3] + int(agree))
    return result


def _split_block(found: dict[str, tuple[int, int, int, int]]) -> dict[str, Any]:
    """Are comparisons decided with low mean confidence more often split? Bins plus Fisher's exact test low vs high."""
    bins: list[dict[str, Any]] = []
    for name, description in CONFIDENCE_BINS:
        n, split, pairs, agree = found.get(name, (0, 0, 0, 0))
        bins.append(
            {
                "bin": name,
                "description": description,
                "comparisons": n,
                "split": split,
                "split_rate": _ratio(split, n),
                "agreement_rate": _ratio(agree, pairs),
            }
        )
    low, high = bins[0], bins[2]
    test: dict[str, Any] = {"odds_ratio": None, "p_value": None}
    if low["comparisons"] and high["comparisons"]:
        table = [
            [low["split"], low["comparisons"] - low["split"]],
            [high["split"], high["comparisons"] - high["split"]],
        ]
        result = stats.fisher_exact(table, alternative="greater")
        test = {"odds_ratio": _round(float(result.statistic)), "p_value": float(result.pvalue)}
    return {"bins": bins, "low_vs_high_split_test": test}


def confidence_analysis(*, votes: QuerySet[Vote]) -> dict[str, Any]:
    """Per question: the confidence distribution, agreement per confidence level, and splits by mean confidence."""
    levels = _by_confidence_level(votes)
    splits = _splits_by_mean_confidence(votes)
    result = {}
    for question in QUESTIONS:
        distribution, agreement = _confidence_levels(levels[question])
        result[question] = {
            "distribution": distribution,
            "agreement_by_confidence": agreement,
            "split_by_mean_confidence": _split_block(splits[question]),
        }
    return result


# --- Disputed comparisons and the full report ---------------------------------------


def disputed_comparisons(*, votes: QuerySet[Vote], limit: int = DISPUTED_LIMIT) -> list[dict[str, Any]]:
    """Comparisons closest to an even split over both questions, most votes first among equals."""
    rows = (
        _per_comparison(votes)
        .filter(m__gte=2)
        .annotate(
            dispute=(Least(F("al_a"), F("m") - F("al_a")) + Least(F("mu_a"), F("m") - F("mu_a"))) * Value(1.0) / F("m"),
            prompt_id=F("comparison__instruction__prompt_id"),
            modality=F("comparison__instruction__modality"),
        )
        .filter(dispute__gt=0)
        .order_by("-dispute", "-m", "comparison_id")[:limit]
    )
    return [
        {
            "comparison_id": row["comparison_id"],
            "prompt_id": row["prompt_id"],
            "modality": row["modality"],
            "votes": row["m"],
            "alignment_a": row["al_a"],
            "alignment_b": row["m"] - row["al_a"],
            "musicality_a": row["mu_a"],
            "musicality_b": row["m"] - row["mu_a"],
            "dispute": _round(float(row["dispute"]) / 2, 4),
            "admin_url": f"/admin/catalog/comparison/{row['comparison_id']}/change/",
        }
        for row in rows
    ]


def agreement_report(*, votes: QuerySet[Vote], bootstrap_samples: int = metrics.BOOTSTRAP_SAMPLES) -> dict[str, Any]:
    """Everything the dashboard, the API and the command show, as one JSON-serialisable dict."""
    return {
        "summary": agreement_summary(votes=votes, bootstrap_samples=bootstrap_samples),
        "cross_question": cross_question_consistency(votes=votes),
        "confidence": confidence_analysis(votes=votes),
        "annotators": [row.as_dict() for row in annotator_quality(votes=votes)],
        "disputed": disputed_comparisons(votes=votes),
        "thresholds": asdict(THRESHOLDS),
    }


# --- Campaign-level entry point (live or snapshot) -----------------------------------


def _snapshot_freshness(campaign: Campaign, snapshot: AgreementSnapshot) -> dict[str, Any]:
    computed_at = snapshot.computed_at
    newer = campaign_votes(campaign_id=campaign.pk).filter(created_at__gt=computed_at).count() if computed_at else 0
    return {
        "source": "snapshot",
        "computed_at": computed_at.isoformat() if computed_at else None,
        "compute_seconds": snapshot.compute_seconds,
        "votes_since": newer,
        "refresh_pending": snapshot.refresh_requested_at is not None,
    }


def live_max_votes() -> int:
    """Campaigns with more votes than this are served from a stored snapshot (unfiltered view)."""
    return settings.AGREEMENT_LIVE_MAX_VOTES


def campaign_agreement(*, campaign: Campaign, filters: AgreementFilters | None = None) -> dict[str, Any]:
    """The report for one campaign, with ``freshness`` saying whether it was computed now or stored.

    Filtered views, and campaigns up to ``live_max_votes()`` votes, are computed on request. The
    unfiltered view of a larger campaign is served from its snapshot when one has been computed.
    """
    filters = filters or AgreementFilters()
    votes = campaign_votes(campaign_id=campaign.pk, filters=filters)
    snapshot = AgreementSnapshot.objects.filter(campaign=campaign, computed_at__isnull=False).first()
    header = {"campaign": {"id": campaign.pk, "name": campaign.name}, "filters": filters.as_dict()}
    if filters.is_empty and snapshot is not None and votes.count() > live_max_votes():
        return {**header, **snapshot.report, "freshness": _snapshot_freshness(campaign, snapshot)}
    started = time.perf_counter()
    computed_at = timezone.now()
    report = agreement_report(votes=votes)
    freshness = {
        "source": "live",
        "computed_at": computed_at.isoformat(),
        "compute_seconds": time.perf_counter() - started,
        "votes_since": 0,
        "refresh_pending": False,
    }
    return {**header, **report, "freshness": freshness}
