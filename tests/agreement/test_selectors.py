from __future__ import annotations

from typing import Any

import krippendorff
import numpy as np
import pytest
from django.utils import timezone

from annotate.agreement import metrics
from annotate.agreement.selectors import (
    agreement_summary,
    campaign_votes,
    comparison_labels,
    vote_patterns,
)
from tests import factories
from tests.agreement.conftest import vote_matrix

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example A: binary data,
# two observers, ten units, no missing data; published nominal alpha = 0.095 (exactly 2/21).
OBSERVER_A = "abaaaaaaba"
OBSERVER_B = "bbbaabaaaa"


def test_it_reproduces_krippendorffs_binary_worked_example(campaign, comparisons, annotators):
    items = comparisons(10)
    vote_matrix(items, annotators, [OBSERVER_A, OBSERVER_B])

    summary = agreement_summary(votes=campaign_votes(campaign_id=campaign.pk), bootstrap_samples=0)

    for question in ("alignment", "musicality"):
        block = summary[question]
        assert block["alpha"]["status"] == "ok"
        assert block["alpha"]["value"] == pytest.approx(2 / 21, abs=1e-12)
        assert round(block["alpha"]["value"], 3) == 0.095
        # Hand count: units 1, 3, 6 and 9 disagree, the other six agree.
        assert block["vote_pairs"] == 10
        assert block["agreeing_pairs"] == 6
        assert block["disagreeing_pairs"] == 4
        assert block["agreement_rate"] == pytest.approx(0.6)
    assert summary["vote_count"] == 20


def test_it_treats_no_preference_as_a_third_category(campaign, comparisons, annotators):
    # "t" is a tie ("no preference"): nominal alpha with three values, as the reference package computes it.
    rows = ["abtab.ta", "abtbb.tb", "attab.aa", "ab.ab.tb"]
    items = comparisons(8)
    vote_matrix(items, annotators, rows)
    reliability = np.array([[{"a": 0, "b": 1, "t": 2}.get(c, np.nan) for c in row] for row in rows], dtype=float)
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")

    summary = agreement_summary(votes=campaign_votes(campaign_id=campaign.pk), bootstrap_samples=0)

    assert summary["alignment"]["alpha"]["value"] == pytest.approx(expected, abs=1e-9)
    # Pairs agree only within one category: column 3 (t, t, t) gives 3 agreeing pairs, never a tie with a or b.
    labels = comparison_labels(votes=campaign_votes(campaign_id=campaign.pk))
    third = labels[items[2].pk].alignment
    assert (third.majority, third.votes_a, third.votes_b, third.votes_tie, third.soft_label) == ("tie", 0, 0, 3, 0.5)
    second = labels[items[1].pk].alignment
    assert (second.majority, second.votes_b, second.votes_tie) == ("b", 3, 1)


def test_it_matches_the_krippendorff_package_with_missing_data(campaign, comparisons, annotators):
    # Annotator sets differ per unit; the single-vote unit (column 8) must be ignored.
    rows = ["aab.bab.a", "abba.b.ab", "ab.abb..b", "bbaa.ab.."]
    items = comparisons(9)
    vote_matrix(items, annotators, rows)
    reliability = np.array([[{"a": 0, "b": 1}.get(c, np.nan) for c in row] for row in rows], dtype=float)
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")

    summary = agreement_summary(votes=campaign_votes(campaign_id=campaign.pk), bootstrap_samples=0)

    assert abs(summary["alignment"]["alpha"]["value"] - expected) < 1e-9
    # Hand count per column: 4, 4, 3, 3, 2, 4, 2, (1: ignored), 3.
    assert summary["alignment"]["comparisons_with_2plus_votes"] == 8
    assert summary["alignment"]["votes_on_those_comparisons"] == 25
    assert summary["vote_count"] == 26


def test_it_reports_not_enough_overlap_instead_of_nan(campaign, comparisons, annotators):
    items = comparisons(3)
    vote_matrix(items, annotators, ["aba", "ab."])

    summary = agreement_summary(votes=campaign_votes(campaign_id=campaign.pk))

    alpha = summary["alignment"]["alpha"]
    assert alpha["status"] == "not_enough_overlap"
    assert alpha["value"] is None and alpha["ci95_low"] is None
    assert "Not enough overlapping votes" in alpha["message"]
    assert summary["alignment"]["agreement_rate"] == 1.0


def test_it_reports_no_variation_when_every_vote_is_the_same(campaign, comparisons, annotators):
    items = comparisons(5)
    vote_matrix(items, annotators, ["aaaaa", "aaaaa"])

    alpha = agreement_summary(votes=campaign_votes(campaign_id=campaign.pk))["alignment"]["alpha"]

    assert alpha["status"] == "no_variation" and alpha["value"] is None


def test_it_handles_an_empty_campaign(campaign):
    summary = agreement_summary(votes=campaign_votes(campaign_id=campaign.pk))
    assert summary["vote_count"] == 0
    assert summary["alignment"]["agreement_rate"] is None
    assert summary["alignment"]["alpha"]["status"] == "not_enough_overlap"


def test_it_does_not_change_when_the_display_order_is_swapped(campaign, comparisons, annotators):
    rows = ["abab.a", "aabbba", "abb.ab"]
    items = comparisons(6)
    vote_matrix(items, annotators, rows, swapped=False)
    before = agreement_summary(votes=campaign_votes(campaign_id=campaign.pk), bootstrap_samples=200)

    campaign_votes(campaign_id=campaign.pk).update(presented_swapped=True)
    after = agreement_summary(votes=campaign_votes(campaign_id=campaign.pk), bootstrap_samples=200)

    assert before == after
    assert before["alignment"]["alpha"]["status"] == "ok"


def test_it_keeps_every_display_independent_number_when_order_is_swapped(campaign, comparisons, annotators):
    from annotate.agreement.selectors import agreement_report

    rows = ["abab.a", "aabbba", "abb.ab"]
    vote_matrix(comparisons(6), annotators, rows, swapped=False)
    votes = campaign_votes(campaign_id=campaign.pk)
    before = agreement_report(votes=votes, bootstrap_samples=100)

    # Flip every other vote's display order: canonical choices stay, only the left/right side changes.
    flip = [pk for index, pk in enumerate(votes.order_by("pk").values_list("pk", flat=True)) if index % 2]
    votes.filter(pk__in=flip).update(presented_swapped=True)
    after = agreement_report(votes=votes, bootstrap_samples=100)

    position = {"left_choices", "left_fraction", "position_bias_p", "position_bias_p_holm", "flags"}
    strip = [{k: v for k, v in row.items() if k not in position} for row in before["annotators"]]
    assert [{k: v for k, v in row.items() if k not in position} for row in after["annotators"]] == strip
    for key in ("summary", "cross_question", "confidence", "disputed"):
        assert before[key] == after[key]
    # ...while the position statistics do see the display order.
    assert [r["left_choices"] for r in before["annotators"]] != [r["left_choices"] for r in after["annotators"]]


def test_it_aggregates_labels_per_comparison(campaign, comparisons, annotators):
    first, second = comparisons(2)
    factories.make_vote(
        first, annotators[0], alignment="a", musicality="b", alignment_confidence=5, musicality_confidence=2
    )
    factories.make_vote(
        first, annotators[1], alignment="a", musicality="a", alignment_confidence=3, musicality_confidence=4
    )
    factories.make_vote(
        first, annotators[2], alignment="b", musicality="b", alignment_confidence=1, musicality_confidence=3
    )
    factories.make_vote(second, annotators[0], alignment="b", musicality="a")
    factories.make_vote(second, annotators[1], alignment="a", musicality="a")

    labels = comparison_labels(votes=campaign_votes(campaign_id=campaign.pk))

    one, two = labels[first.pk], labels[second.pk]
    assert one.vote_count == 3
    assert (one.alignment.majority, one.alignment.votes_a, one.alignment.votes_b) == ("a", 2, 1)
    assert one.alignment.soft_label == pytest.approx(2 / 3)
    assert one.alignment.mean_confidence == pytest.approx(3.0)
    assert (one.musicality.majority, one.musicality.soft_label) == ("b", pytest.approx(1 / 3))
    assert one.musicality.mean_confidence == pytest.approx(3.0)
    assert two.alignment.majority == "tie" and two.alignment.soft_label == 0.5
    assert two.musicality.majority == "a" and two.musicality.soft_label == 1.0


def test_it_builds_value_counts_patterns_in_sql(campaign, comparisons, annotators):
    items = comparisons(4)
    vote_matrix(items, annotators, ["aab.", "abb.", "a.ba"])

    result = vote_patterns(votes=campaign_votes(campaign_id=campaign.pk))

    matrix = sorted(map(tuple, metrics.expand_patterns(*result.alignment).tolist()))
    # Column 4 has one vote: it stays in the totals but is not a paired unit.
    # Columns: votes for a, for b, "no preference" (none here).
    assert matrix == [(0, 3, 0), (1, 0, 0), (1, 1, 0), (3, 0, 0)]
    assert (result.vote_count, result.comparison_count) == (9, 4)
    assert metrics.pair_counts(*result.alignment).paired_units == 3


def test_it_filters_by_modality_vocal_and_date(campaign, annotators):
    import datetime as dt

    from django.utils import timezone

    from annotate.agreement.selectors import AgreementFilters

    text = factories.make_comparison(campaign, modality="T", seconds=1.0)
    lyrics = factories.make_comparison(campaign, modality="L", seconds=1.0)
    lyrics.clip_a.is_vocal = True
    lyrics.clip_a.save()
    old = factories.make_vote(text, annotators[0])
    factories.make_vote(lyrics, annotators[0])
    type(old).objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=10))

    def count(**kwargs: Any) -> int:
        return campaign_votes(campaign_id=campaign.pk, filters=AgreementFilters(**kwargs)).count()

    assert count() == 2
    assert count(modalities=("L",)) == 1
    assert count(modalities=("T", "L")) == 2
    assert count(modalities=("A", "C")) == 0
    assert count(vocal=True) == 1
    assert count(vocal=False) == 1
    assert count(since=timezone.now() - dt.timedelta(days=1)) == 1
    assert count(until=timezone.now() - dt.timedelta(days=1)) == 1


def _sorted_patterns(patterns):  # type: ignore[no-untyped-def]
    return {
        question: sorted(map(tuple, metrics.expand_patterns(*getattr(patterns, question)).tolist()))
        for question in ("alignment", "musicality")
    }


def test_it_reads_the_same_value_counts_from_the_maintained_table(campaign, comparisons, annotators):
    """``campaign_patterns`` (kept by trigger with each vote) equals the scan of the counted votes, alpha to 1e-9."""
    from annotate.agreement.selectors import campaign_patterns
    from annotate.onboarding.models import Withdrawal

    rows = ["aab.bta.a", "abba.b.ab", "at.abb..b", "bbaa.ab..", "tabab.b.a"]
    items = comparisons(9)
    vote_matrix(items, annotators, rows)
    # Votes of an annotator with an active withdrawal don't count, in either path.
    Withdrawal.objects.create(annotator=annotators[4], campaign=campaign, withdrawn_at=timezone.now())
    counted = campaign_votes(campaign_id=campaign.pk)

    scanned, maintained = vote_patterns(votes=counted), campaign_patterns(campaign_id=campaign.pk)

    assert _sorted_patterns(maintained) == _sorted_patterns(scanned)
    assert (maintained.vote_count, maintained.comparison_count) == (scanned.vote_count, scanned.comparison_count)
    reliability = np.array([[{"a": 0, "b": 1, "t": 2}.get(c, np.nan) for c in row] for row in rows[:4]], dtype=float)
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    for question in ("alignment", "musicality"):
        assert abs(metrics.alpha_nominal(*getattr(maintained, question)) - expected) < 1e-9
    summary = agreement_summary(votes=counted, bootstrap_samples=0)
    assert abs(summary["alignment"]["alpha"]["value"] - metrics.alpha_nominal(*maintained.alignment)) < 1e-12
