"""Agreement reads: the SQL behind the agreement report, over votes in canonical orientation.

All counting happens in SQL (GROUP BY comparison, window functions per vote); Python only
receives per-comparison *patterns* (a few dozen distinct rows) or per-annotator rows, so the
cost of a report is dominated by one or two scans of the vote table. The statistics computed
from those counts are in ``metrics``; the shape of the report is declared in ``report``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
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
from django.urls import reverse
from django.utils import timezone

from annotate.agreement import metrics
from annotate.agreement.models import AgreementSnapshot
from annotate.agreement.report import (
    CONFIDENCE_BINS,
    CONFIDENCE_LEVELS,
    QUESTIONS,
    THRESHOLDS,
    AgreementReport,
    AgreementSummary,
    AnnotatorQuality,
    ComparisonLabel,
    ConfidenceBin,
    CrossQuestion,
    DisputedComparison,
    LevelAgreement,
    MeanConfidences,
    QuestionConfidence,
    SplitByMeanConfidence,
)
from annotate.catalog.models import Campaign
from annotate.labeling.models import CampaignPattern, ComparisonSlot, Vote
from annotate.onboarding.models import Withdrawal
from annotate.onboarding.selectors import campaign_counted_votes

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
    return filter_votes(campaign_counted_votes(campaign_id=campaign_id), filters)


def filter_votes(votes: QuerySet[Vote], filters: AgreementFilters | None = None) -> QuerySet[Vote]:
    """``votes`` narrowed by modality, vocal/instrumental and a date range."""
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
            # "No preference" is a third category (Choice.TIE), not a vote for either clip.
            al_t=Count("id", filter=Q(alignment_choice="t")),
            mu_t=Count("id", filter=Q(musicality_choice="t")),
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
    rows = _wrap(
        "SELECT t.m, t.al_a, t.al_t, t.mu_a, t.mu_t, COUNT(*) FROM ({inner}) t "
        "GROUP BY t.m, t.al_a, t.al_t, t.mu_a, t.mu_t",
        inner,
    )
    return _patterns_from_rows(rows)


def _patterns_from_rows(rows: list[tuple[Any, ...]]) -> Patterns:
    """Rows of (m, alignment a, alignment tie, musicality a, musicality tie, how many comparisons)."""
    table = np.array(rows, dtype=np.int64).reshape(-1, 6)
    m, al_a, al_t, mu_a, mu_t, weight = table.T
    return Patterns(  # categories: a, b, no preference (nominal alpha with three values)
        alignment=(np.stack([al_a, m - al_a - al_t, al_t], axis=1), weight),
        musicality=(np.stack([mu_a, m - mu_a - mu_t, mu_t], axis=1), weight),
    )


def campaign_patterns(*, campaign_id: int) -> Patterns:
    """``vote_patterns`` of the campaign's counted votes, from the split histogram the database keeps.

    ``CampaignPattern`` counts the campaign's comparisons per vote split, moved by trigger with each vote,
    so this reads a few hundred rows whatever the campaign's size. Votes of annotators with an active
    withdrawal (which ``counted_votes`` leaves out) are found from the withdrawals, not a scan of the
    votes: each comparison they touch moves from its stored split to the split without them.
    Same numbers as ``vote_patterns(votes=campaign_votes(campaign_id=...))``.
    """
    splits: Counter[tuple[int, int, int, int, int]] = Counter()
    for *key, comparisons in CampaignPattern.objects.filter(campaign_id=campaign_id).values_list(
        "votes", "alignment_a", "alignment_t", "musicality_a", "musicality_t", "comparisons"
    ):
        splits[tuple(key)] += comparisons  # type: ignore[index]
    withdrawn = Withdrawal.objects.filter(campaign_id=campaign_id, restored_at__isnull=True).values("annotator_id")
    left_out = _per_comparison(
        Vote.objects.filter(comparison__campaign_id=campaign_id, annotator_id__in=withdrawn)
    ).values_list("comparison_id", "m", "al_a", "al_t", "mu_a", "mu_t")
    if withdrawn.exists():
        gone = {row[0]: row[1:] for row in left_out}
        slots = ComparisonSlot.objects.filter(comparison_id__in=list(gone)).values_list(
            "comparison_id", "votes", "alignment_a", "alignment_t", "musicality_a", "musicality_t"
        )
        for comparison_id, *stored in slots:
            splits[tuple(stored)] -= 1  # type: ignore[index]
            kept = tuple(a - b for a, b in zip(stored, gone[comparison_id], strict=True))
            if kept[0] > 0:
                splits[kept] += 1  # type: ignore[index]
    rows = [(*key, n) for key, n in sorted(splits.items()) if n > 0]
    return _patterns_from_rows(rows)


# --- Label aggregation ----------------------------------------------------------


def comparison_labels(*, votes: QuerySet[Vote]) -> dict[int, ComparisonLabel]:
    """Majority, split, mean confidence and soft label per comparison (one GROUP BY comparison)."""
    rows = _per_comparison(votes).annotate(al_conf=Avg("alignment_confidence"), mu_conf=Avg("musicality_confidence"))
    return {
        row["comparison_id"]: ComparisonLabel(
            comparison_id=row["comparison_id"],
            vote_count=row["m"],
            alignment=metrics.question_label(row["al_a"], row["m"], row["al_conf"], votes_tie=row["al_t"]),
            musicality=metrics.question_label(row["mu_a"], row["m"], row["mu_conf"], votes_tie=row["mu_t"]),
        )
        for row in rows
    }


# --- Headline agreement ---------------------------------------------------------


def _agreement_summary(
    votes: QuerySet[Vote], *, bootstrap_samples: int, patterns: Patterns | None = None
) -> AgreementSummary:
    """``patterns``, when given, must be those of ``votes`` (e.g. ``campaign_patterns`` of an unfiltered campaign)."""
    return _summary_of(
        patterns if patterns is not None else vote_patterns(votes=votes),
        # A DISTINCT subquery (hash aggregate) rather than COUNT(DISTINCT), which sorts.
        annotator_count=votes.order_by().values("annotator_id").distinct().count(),
        bootstrap_samples=bootstrap_samples,
    )


def _summary_of(patterns: Patterns, *, annotator_count: int, bootstrap_samples: int) -> AgreementSummary:
    return AgreementSummary(
        vote_count=patterns.vote_count,
        comparison_count=patterns.comparison_count,
        annotator_count=annotator_count,
        alignment=metrics.question_summary(*patterns.alignment, bootstrap_samples=bootstrap_samples),
        musicality=metrics.question_summary(*patterns.musicality, bootstrap_samples=bootstrap_samples),
    )


def agreement_summary(*, votes: QuerySet[Vote], bootstrap_samples: int = metrics.BOOTSTRAP_SAMPLES) -> dict[str, Any]:
    """Headline numbers per question: pairwise agreement rate with its counts, nominal alpha and its 95% CI.

    JSON-serialisable (``report.AgreementSummary``). Alpha has ``status`` "ok", "not_enough_overlap"
    or "no_variation" and is None unless "ok", so callers never see NaN or an exception for small
    or unanimous data.
    """
    return _agreement_summary(votes, bootstrap_samples=bootstrap_samples).as_dict()


def agreement_summary_of_splits(
    *,
    splits: Mapping[tuple[int, int, int, int, int], int],
    annotator_count: int,
    bootstrap_samples: int = metrics.BOOTSTRAP_SAMPLES,
) -> dict[str, Any]:
    """``agreement_summary`` of votes their reader already counted, with no second pass over them.

    ``splits`` maps (votes, alignment "a", alignment "no preference", musicality "a", musicality "no
    preference") to how many comparisons had that split; an export counts them while it writes the rows.
    """
    rows = [(*key, n) for key, n in sorted(splits.items()) if n > 0]
    patterns = _patterns_from_rows(rows)
    return _summary_of(patterns, annotator_count=annotator_count, bootstrap_samples=bootstrap_samples).as_dict()


# --- Per-annotator quality --------------------------------------------------------


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
        "ties": Count("id", filter=Q(alignment_choice="t")) + Count("id", filter=Q(musicality_choice="t")),
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


def _leave_one_out_of_campaign(campaign_id: int) -> dict[int, tuple[int, ...]] | None:
    """``_leave_one_out`` of all of a campaign's counted votes, from the choice counts per comparison that the
    database keeps (``ComparisonSlot``) joined to each vote, instead of three window sorts of the votes.

    None when an annotator has an active withdrawal from the campaign: the slots count their votes, and
    ``counted_votes`` leaves them out.
    """
    if Withdrawal.objects.filter(campaign_id=campaign_id, restored_at__isnull=True).exists():
        return None

    def same(question: str) -> str:
        return (
            f"CASE v.{question}_choice WHEN 'a' THEN s.{question}_a WHEN 'b' THEN s.{question}_b "
            f"ELSE s.{question}_t END"
        )

    sql = f"""SELECT t.annotator_id, COUNT(*),
           SUM(CASE WHEN t.al_same - 1 > t.m - t.al_same THEN 1 ELSE 0 END),
           SUM(CASE WHEN t.al_same - 1 <> t.m - t.al_same THEN 1 ELSE 0 END),
           SUM(CASE WHEN t.mu_same - 1 > t.m - t.mu_same THEN 1 ELSE 0 END),
           SUM(CASE WHEN t.mu_same - 1 <> t.m - t.mu_same THEN 1 ELSE 0 END)
           FROM (SELECT v.annotator_id, s.votes AS m, {same("alignment")} AS al_same, {same("musicality")} AS mu_same
                 FROM {Vote._meta.db_table} v JOIN {ComparisonSlot._meta.db_table} s
                 ON s.comparison_id = v.comparison_id WHERE s.campaign_id = %s AND s.votes >= 2) t
           GROUP BY t.annotator_id"""
    with connections[Vote.objects.db].cursor() as cursor:
        cursor.execute(sql, [campaign_id])
        return {row[0]: tuple(int(value) for value in row[1:]) for row in cursor.fetchall()}


def _annotator_row(row: dict[str, Any], medians: tuple[Any, Any], loo: tuple[int, ...]) -> AnnotatorQuality:
    shared, al_ok, al_n, mu_ok, mu_n = loo
    # Position bias is over the choices of a side; "no preference" answers have none.
    choices, left = 2 * row["votes"] - row["ties"], row["left_al"] + row["left_mu"]
    conf_counts = [row[f"conf{level}"] for level in CONFIDENCE_LEVELS]
    ratio = metrics.ratio
    return AnnotatorQuality(
        annotator_id=row["annotator_id"],
        username=row["annotator__username"],
        votes=row["votes"],
        median_time_on_task_s=medians[0],
        median_listened_fraction=medians[1],
        loo_shared_votes=shared,
        loo_agreement=ratio(al_ok + mu_ok, al_n + mu_n),
        loo_agreement_alignment=ratio(al_ok, al_n),
        loo_agreement_musicality=ratio(mu_ok, mu_n),
        gold_answers=row["gold_n"],
        gold_accuracy=ratio(row["gold_ok"], row["gold_n"]),
        left_choices=left,
        choices=choices,
        left_fraction=ratio(left, choices),
        position_bias_p=metrics.position_bias_p(left, choices),
        position_bias_p_holm=None,
        modal_confidence_fraction=ratio(max(conf_counts), 2 * row["votes"]),
        fast_vote_fraction=ratio(row["fast"], row["timed"]),
        flags=[],
    )


def annotator_quality(*, votes: QuerySet[Vote], campaign_id: int | None = None) -> list[AnnotatorQuality]:
    """Quality-control numbers and flags per annotator, sorted by username.

    ``campaign_id``, when given, says that ``votes`` are all of that campaign's counted votes
    (``campaign_votes`` unfiltered), so the agreement with the others can be read from the kept counts.
    """
    rows = _annotator_rows(votes)
    medians = {} if rows and "median_time" in rows[0] else _medians(votes)
    loo = _leave_one_out_of_campaign(campaign_id) if campaign_id is not None else None
    if loo is None:
        loo = _leave_one_out(votes)
    result = [
        _annotator_row(
            row,
            medians.get(row["annotator_id"]) or (row.get("median_time"), row.get("median_listened")),
            loo.get(row["annotator_id"], (0, 0, 0, 0, 0)),
        )
        for row in rows
    ]
    metrics.adjust_and_flag(result, THRESHOLDS)
    return sorted(result, key=lambda r: r.username)


def flagged_annotator_ids(*, campaign_id: int) -> set[int]:
    """Annotators of a campaign flagged by quality control (straight-lining, too fast, position bias, low gold)."""
    quality = annotator_quality(votes=campaign_votes(campaign_id=campaign_id), campaign_id=campaign_id)
    return {r.annotator_id for r in quality if r.flags}


# --- Cross-question consistency and confidence -------------------------------------


def _cross_question(votes: QuerySet[Vote]) -> CrossQuestion:
    same = Q(alignment_choice=F("musicality_choice"))
    row = votes.order_by().aggregate(
        votes=Count("id"),
        same=Count("id", filter=same),
        al_conf_same=Avg("alignment_confidence", filter=same),
        mu_conf_same=Avg("musicality_confidence", filter=same),
        al_conf_diff=Avg("alignment_confidence", filter=~same),
        mu_conf_diff=Avg("musicality_confidence", filter=~same),
    )
    return CrossQuestion(
        votes=row["votes"],
        same_choice=row["same"],
        consistency_rate=metrics.ratio(row["same"], row["votes"]),
        when_same=MeanConfidences(row["al_conf_same"], row["mu_conf_same"]),
        when_different=MeanConfidences(row["al_conf_diff"], row["mu_conf_diff"]),
    )


def cross_question_consistency(*, votes: QuerySet[Vote]) -> dict[str, Any]:
    """How often a vote's alignment choice equals its musicality choice (paper table 7), with mean confidences."""
    return _cross_question(votes).as_dict()


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


def _level_agreement(found: dict[int, tuple[int, int, int, int]]) -> tuple[dict[str, int], list[LevelAgreement]]:
    distribution, agreement = {}, []
    for level in CONFIDENCE_LEVELS:
        n, paired, agree, pairs = found.get(level, (0, 0, 0, 0))
        distribution[str(level)] = n
        agreement.append(LevelAgreement(level, paired, pairs, agree, metrics.ratio(agree, pairs)))
    return distribution, agreement


def _bin_sql(column: str) -> str:
    return f"CASE WHEN {column} < 3 THEN 'low' WHEN {column} < 4 THEN 'medium' ELSE 'high' END"


def _unanimous_sql(q: str) -> str:
    """Every vote of the comparison in one category (a, b or no preference)."""
    return f"(t.{q}_a = t.m OR t.{q}_t = t.m OR t.{q}_a + t.{q}_t = 0)"


def _same_pairs_sql(q: str) -> str:
    """Agreeing pairs of votes: pairs within each of the three categories."""
    b = f"(t.m - t.{q}_a - t.{q}_t)"
    return f"t.{q}_a * (t.{q}_a - 1) / 2 + {b} * ({b} - 1) / 2 + t.{q}_t * (t.{q}_t - 1) / 2"


def _splits_by_mean_confidence(votes: QuerySet[Vote]) -> dict[str, dict[str, tuple[int, int, int, int]]]:
    """Per question and mean-confidence bin: (comparisons, split ones, pairs, agreeing pairs), in one scan."""
    inner = (
        _per_comparison(votes)
        .annotate(al_conf=Avg("alignment_confidence"), mu_conf=Avg("musicality_confidence"))
        .filter(m__gte=2)
    )
    rows = _wrap(
        f"""SELECT {_bin_sql("t.al_conf")}, {_bin_sql("t.mu_conf")}, COUNT(*),
                   SUM(CASE WHEN {_unanimous_sql("al")} THEN 0 ELSE 1 END),
                   SUM(CASE WHEN {_unanimous_sql("mu")} THEN 0 ELSE 1 END),
                   SUM(t.m * (t.m - 1) / 2),
                   SUM({_same_pairs_sql("al")}),
                   SUM({_same_pairs_sql("mu")})
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


def _split_by_mean_confidence(found: dict[str, tuple[int, int, int, int]]) -> SplitByMeanConfidence:
    """Are comparisons decided with low mean confidence more often split? Bins plus Fisher's exact test low vs high."""
    bins = []
    for name, description in CONFIDENCE_BINS:
        n, split, pairs, agree = found.get(name, (0, 0, 0, 0))
        bins.append(ConfidenceBin(name, description, n, split, metrics.ratio(split, n), metrics.ratio(agree, pairs)))
    low, high = bins[0], bins[2]
    test = metrics.low_vs_high_split_test((low.split, low.comparisons), (high.split, high.comparisons))
    return SplitByMeanConfidence(bins=bins, low_vs_high_split_test=test)


def _confidence(votes: QuerySet[Vote]) -> dict[str, QuestionConfidence]:
    levels = _by_confidence_level(votes)
    splits = _splits_by_mean_confidence(votes)
    result = {}
    for question in QUESTIONS:
        distribution, agreement = _level_agreement(levels[question])
        result[question] = QuestionConfidence(distribution, agreement, _split_by_mean_confidence(splits[question]))
    return result


def confidence_analysis(*, votes: QuerySet[Vote]) -> dict[str, Any]:
    """Per question: the confidence distribution, agreement per confidence level, and splits by mean confidence."""
    return {question: block.as_dict() for question, block in _confidence(votes).items()}


# --- Disputed comparisons and the full report ---------------------------------------


def _disputed(votes: QuerySet[Vote], limit: int) -> list[DisputedComparison]:
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
        DisputedComparison(
            comparison_id=row["comparison_id"],
            prompt_id=row["prompt_id"],
            modality=row["modality"],
            votes=row["m"],
            alignment_a=row["al_a"],
            alignment_b=row["m"] - row["al_a"] - row["al_t"],
            musicality_a=row["mu_a"],
            musicality_b=row["m"] - row["mu_a"] - row["mu_t"],
            dispute=metrics.round_finite(float(row["dispute"]) / 2, 4),
            url=reverse("labeling:adjudicate", args=[row["comparison_id"]]),
        )
        for row in rows
    ]


def disputed_comparisons(*, votes: QuerySet[Vote], limit: int = DISPUTED_LIMIT) -> list[dict[str, Any]]:
    """Comparisons closest to an even split over both questions, most votes first among equals."""
    return [row.as_dict() for row in _disputed(votes, limit)]


def agreement_report(
    *,
    votes: QuerySet[Vote],
    bootstrap_samples: int = metrics.BOOTSTRAP_SAMPLES,
    patterns: Patterns | None = None,
    campaign_id: int | None = None,
) -> dict[str, Any]:
    """Everything the dashboard, the API and the command show, as one JSON-serialisable dict.

    ``patterns``: those of ``votes``, when already known (``campaign_patterns`` for a whole campaign).
    ``campaign_id``: when ``votes`` are all of that campaign's counted votes (see ``annotator_quality``).
    """
    return AgreementReport(
        summary=_agreement_summary(votes, bootstrap_samples=bootstrap_samples, patterns=patterns),
        cross_question=_cross_question(votes),
        confidence=_confidence(votes),
        annotators=annotator_quality(votes=votes, campaign_id=campaign_id),
        disputed=_disputed(votes, DISPUTED_LIMIT),
        thresholds=THRESHOLDS,
    ).as_dict()


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
    whole = campaign.pk if filters.is_empty else None
    patterns = campaign_patterns(campaign_id=campaign.pk) if whole else None
    report = agreement_report(votes=votes, patterns=patterns, campaign_id=whole)
    freshness = {
        "source": "live",
        "computed_at": computed_at.isoformat(),
        "compute_seconds": time.perf_counter() - started,
        "votes_since": 0,
        "refresh_pending": False,
    }
    return {**header, **report, "freshness": freshness}


def simulated_vote_count(*, campaign_id: int) -> int:
    """Votes of a campaign written by ``seed_votes`` / ``manage.py demo`` personas, not by people."""
    from annotate.agreement.services import SYNTHETIC_PREFIX

    return Vote.objects.filter(
        comparison__campaign_id=campaign_id, annotator__username__startswith=SYNTHETIC_PREFIX
    ).count()
