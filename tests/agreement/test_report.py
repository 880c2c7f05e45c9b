from __future__ import annotations

import json

import pytest

from annotate.agreement.selectors import (
    agreement_report,
    campaign_votes,
    confidence_analysis,
    cross_question_consistency,
    disputed_comparisons,
)
from tests import factories


def test_it_measures_cross_question_consistency(campaign, comparisons, annotators):
    c1, c2 = comparisons(2)
    r0, r1 = annotators[:2]
    factories.make_vote(c1, r0, alignment="a", musicality="a", alignment_confidence=5, musicality_confidence=4)
    factories.make_vote(c1, r1, alignment="a", musicality="b", alignment_confidence=2, musicality_confidence=1)
    factories.make_vote(c2, r0, alignment="b", musicality="b", alignment_confidence=3, musicality_confidence=2)

    result = cross_question_consistency(votes=campaign_votes(campaign_id=campaign.pk))

    assert (result["votes"], result["same_choice"]) == (3, 2)
    assert result["consistency_rate"] == pytest.approx(2 / 3)
    assert result["when_same"]["alignment_mean_confidence"] == pytest.approx(4.0)
    assert result["when_same"]["musicality_mean_confidence"] == pytest.approx(3.0)
    assert result["when_different"]["alignment_mean_confidence"] == pytest.approx(2.0)
    assert result["when_different"]["musicality_mean_confidence"] == pytest.approx(1.0)


def test_it_computes_agreement_per_confidence_level_and_split_bins(campaign, comparisons, annotators):
    c1, c2, c3 = comparisons(3)
    r0, r1, r2 = annotators[:3]
    for annotator, choice, confidence in ((r0, "a", 5), (r1, "a", 5), (r2, "b", 1)):
        factories.make_vote(c1, annotator, alignment=choice, alignment_confidence=confidence)
    for annotator in (r0, r1):
        factories.make_vote(c2, annotator, alignment="a", alignment_confidence=5)
    factories.make_vote(c3, r0, alignment="a", alignment_confidence=1)
    factories.make_vote(c3, r1, alignment="b", alignment_confidence=2)

    result = confidence_analysis(votes=campaign_votes(campaign_id=campaign.pk))["alignment"]

    assert result["distribution"] == {"1": 2, "2": 1, "3": 0, "4": 0, "5": 4}
    by_level = {row["confidence"]: row for row in result["agreement_by_confidence"]}
    # Level 5: c1 gives each 'a' vote 1 agreeing of 2 pairs, c2 gives 1 of 1 each: 4 of 6.
    assert (by_level[5]["agreeing_pairs"], by_level[5]["pairs"]) == (4, 6)
    assert by_level[5]["agreement_rate"] == pytest.approx(2 / 3)
    # Level 1: c1's 'b' vote (0 of 2) and c3's 'a' vote (0 of 1).
    assert (by_level[1]["agreeing_pairs"], by_level[1]["pairs"]) == (0, 3)
    assert by_level[3]["agreement_rate"] is None
    bins = {row["bin"]: row for row in result["split_by_mean_confidence"]["bins"]}
    # Means: c1 11/3 (medium, split), c2 5 (high, unanimous), c3 1.5 (low, split).
    assert (bins["low"]["comparisons"], bins["low"]["split"]) == (1, 1)
    assert (bins["medium"]["comparisons"], bins["medium"]["split"]) == (1, 1)
    assert (bins["high"]["comparisons"], bins["high"]["split"], bins["high"]["split_rate"]) == (1, 0, 0.0)
    assert bins["medium"]["agreement_rate"] == pytest.approx(1 / 3)
    assert result["split_by_mean_confidence"]["low_vs_high_split_test"]["p_value"] == pytest.approx(0.5)


def test_it_lists_the_most_disputed_comparisons_with_admin_links(campaign, comparisons, annotators):
    even, lopsided, unanimous = comparisons(3)
    r0, r1, r2, r3 = annotators[:4]
    for annotator, choice in zip((r0, r1, r2, r3), "aabb", strict=True):
        factories.make_vote(even, annotator, alignment=choice, musicality=choice)
    for annotator, choice in zip((r0, r1, r2), "aab", strict=True):
        factories.make_vote(lopsided, annotator, alignment=choice, musicality="a")
    for annotator in (r0, r1):
        factories.make_vote(unanimous, annotator)

    rows = disputed_comparisons(votes=campaign_votes(campaign_id=campaign.pk))

    assert [row["comparison_id"] for row in rows] == [even.pk, lopsided.pk]
    assert rows[0]["dispute"] == pytest.approx(0.5)
    assert rows[1]["dispute"] == pytest.approx(1 / 6, abs=1e-4)
    assert rows[0]["url"] == f"/comparisons/{even.pk}/adjudicate/"


def test_it_builds_a_json_serialisable_report(campaign, comparisons, annotators):
    items = comparisons(6)
    for index, comparison in enumerate(items):
        for offset, annotator in enumerate(annotators[:3]):
            choice = "a" if (index + offset) % 3 else "b"
            factories.make_vote(
                comparison,
                annotator,
                alignment=choice,
                musicality=choice,
                alignment_confidence=1 + (index + offset) % 5,
            )

    report = agreement_report(votes=campaign_votes(campaign_id=campaign.pk), bootstrap_samples=100)

    assert json.loads(json.dumps(report)) == report
    assert report["summary"]["alignment"]["alpha"]["status"] == "ok"
    alpha = report["summary"]["alignment"]["alpha"]
    assert alpha["ci95_low"] <= alpha["value"] <= alpha["ci95_high"]
    assert len(report["annotators"]) == 3
