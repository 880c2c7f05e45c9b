from __future__ import annotations

import pytest
from scipy import stats

from annotate.agreement.selectors import annotator_quality, campaign_votes, flagged_annotator_ids
from tests import factories


def _by_name(campaign_id: int) -> dict:
    return {row.username: row for row in annotator_quality(votes=campaign_votes(campaign_id=campaign_id))}


def test_it_computes_leave_one_out_majority_agreement(campaign, comparisons, annotators):
    c1, c2, c3 = comparisons(3)
    r0, r1, r2 = annotators[:3]
    # c1: a a b -> r0 agrees with others' (a, b)? others of r0 are a,b: tie -> undecided.
    # c2: a a a -> everyone agrees with a strict majority of the others.
    # c3: b a a -> r0 disagrees (others a a), r1 and r2 are undecided (others b a).
    for comparison, choices in ((c1, "aab"), (c2, "aaa"), (c3, "baa")):
        for annotator, choice in zip((r0, r1, r2), choices, strict=True):
            factories.make_vote(comparison, annotator, alignment=choice, musicality="a")

    rows = _by_name(campaign.pk)

    # r0 alignment: c1 undecided, c2 agree, c3 disagree -> 1/2. Musicality: all 'a' -> 3/3.
    assert rows["rater0"].loo_agreement_alignment == pytest.approx(0.5)
    assert rows["rater0"].loo_agreement_musicality == pytest.approx(1.0)
    assert rows["rater0"].loo_agreement == pytest.approx(4 / 5)
    # r2 alignment: c1 others (a, a) vs b -> disagree; c2 agree; c3 undecided -> 1/2.
    assert rows["rater2"].loo_agreement_alignment == pytest.approx(0.5)
    assert rows["rater1"].loo_agreement_alignment == pytest.approx(1.0)  # c1 agree, c2 agree, c3 undecided
    assert rows["rater0"].loo_shared_votes == 3


def test_it_measures_gold_accuracy_only_on_gold_answers(campaign, comparisons, annotators):
    gold_a = comparisons(1, gold_alignment="a", gold_musicality="b")[0]
    gold_b = comparisons(1, gold_alignment="b")[0]
    plain = comparisons(1)[0]
    rater = annotators[0]
    factories.make_vote(gold_a, rater, alignment="a", musicality="a")  # 1 of 2 right
    factories.make_vote(gold_b, rater, alignment="b", musicality="a")  # 1 of 1 right (no musicality gold)
    factories.make_vote(plain, rater, alignment="b", musicality="b")  # not counted

    row = _by_name(campaign.pk)["rater0"]

    assert row.gold_answers == 3
    assert row.gold_accuracy == pytest.approx(2 / 3)


def test_it_measures_position_bias_on_the_displayed_side(campaign, comparisons, annotators):
    items = comparisons(12)
    rater = annotators[0]
    # Always the left clip: canonical 'a' when not swapped, 'b' when swapped.
    for index, comparison in enumerate(items):
        swapped = index % 2 == 1
        choice = "b" if swapped else "a"
        factories.make_vote(
            comparison,
            rater,
            alignment=choice,
            musicality=choice,
            swapped=swapped,
            alignment_confidence=1 + index % 5,
            musicality_confidence=1 + (index + 2) % 5,
        )

    row = _by_name(campaign.pk)["rater0"]

    assert (row.left_choices, row.choices, row.left_fraction) == (24, 24, 1.0)
    assert row.position_bias_p == pytest.approx(stats.binomtest(24, 24, 0.5).pvalue)
    assert "position_bias" in row.flags and "same_side" in row.flags
    assert "same_confidence" not in row.flags
    # Canonically the choices are balanced, which is exactly why the test uses the display side.
    assert flagged_annotator_ids(campaign_id=campaign.pk) == {rater.pk}


def test_it_flags_straight_lining_confidence_and_speed(campaign, comparisons, annotators):
    items = comparisons(10)
    steady, careful = annotators[:2]
    for index, comparison in enumerate(items):
        swapped = index % 2 == 0
        factories.make_vote(
            comparison,
            steady,
            alignment="a",
            musicality="b",
            swapped=swapped,
            alignment_confidence=4,
            musicality_confidence=4,
            time_on_task_s=3.0,
        )
        factories.make_vote(
            comparison,
            careful,
            alignment="a",
            musicality="b",
            swapped=swapped,
            alignment_confidence=1 + index % 5,
            musicality_confidence=5 - index % 5,
            time_on_task_s=45.0,
        )

    rows = _by_name(campaign.pk)

    assert rows["rater0"].flags == ["same_confidence", "too_fast"]
    assert rows["rater0"].median_time_on_task_s == pytest.approx(3.0)
    assert rows["rater1"].flags == []
    assert flagged_annotator_ids(campaign_id=campaign.pk) == {steady.pk}


def test_it_reports_median_time_and_listened_fraction(campaign, comparisons, annotators):
    items = comparisons(3)
    rater = annotators[0]
    for comparison, (time_s, listened) in zip(items, [(10.0, 0.2), (20.0, 0.5), (90.0, 2.0)], strict=True):
        factories.make_vote(
            comparison, rater, time_on_task_s=time_s, listened_a_s=listened * 1.0, listened_b_s=listened * 1.0
        )

    row = _by_name(campaign.pk)["rater0"]

    assert row.median_time_on_task_s == pytest.approx(20.0)
    # Clips are 1 s long; a fraction above 1 (replays) is capped.
    assert row.median_listened_fraction == pytest.approx(0.5)


def test_it_computes_the_same_medians_without_percentile_cont(campaign, comparisons, annotators):
    """The numpy fallback (SQLite, the embedded demo) must match PostgreSQL's percentile_cont."""
    from annotate.agreement.selectors import _medians

    items = comparisons(4)
    for index, comparison in enumerate(items):
        for offset, annotator in enumerate(annotators[:2]):
            factories.make_vote(
                comparison,
                annotator,
                time_on_task_s=10.0 + 7 * index + offset,
                listened_a_s=0.25 * index,
                listened_b_s=0.5,
            )
    votes = campaign_votes(campaign_id=campaign.pk)

    fallback = _medians(votes)

    for row in annotator_quality(votes=votes):
        assert fallback[row.annotator_id] == pytest.approx((row.median_time_on_task_s, row.median_listened_fraction))
    assert fallback[annotators[0].pk][0] == pytest.approx(20.5)  # median of 10, 17, 24, 31


def test_the_campaign_path_reads_leave_one_out_from_the_kept_counts(campaign, comparisons, annotators):
    """The slot counts give the same leave-one-out numbers as the window scan, and step aside for withdrawals."""
    from django.utils import timezone

    from annotate.agreement.selectors import _leave_one_out, _leave_one_out_of_campaign
    from annotate.onboarding.models import Withdrawal
    from tests.agreement.conftest import vote_matrix

    items = comparisons(9)
    vote_matrix(items[:5], annotators, ["aab.b", "abba.", "at.ab", "bbaa.", "tabab"])
    vote_matrix(items[5:], annotators, ["atb.", "bt.a", "b.ba", ".aab"], question="alignment")
    counted = campaign_votes(campaign_id=campaign.pk)

    kept = _leave_one_out_of_campaign(campaign.pk)
    assert kept == _leave_one_out(counted) and len(kept) == 5
    assert annotator_quality(votes=counted, campaign_id=campaign.pk) == annotator_quality(votes=counted)

    Withdrawal.objects.create(annotator=annotators[4], campaign=campaign, withdrawn_at=timezone.now())
    assert _leave_one_out_of_campaign(campaign.pk) is None  # the slots still count the withdrawn votes
    counted = campaign_votes(campaign_id=campaign.pk)
    assert annotator_quality(votes=counted, campaign_id=campaign.pk) == annotator_quality(votes=counted)
    assert annotators[4].username not in {row.username for row in annotator_quality(votes=counted)}
