"""assignment_next: order, overlap, reservations, expiry and the concurrency of the last slot."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.catalog.models import Campaign
from annotate.labeling.models import Assignment, Skip
from annotate.labeling.services import CampaignNotActive, assignment_next, assignment_reclaim_expired
from tests import factories
from tests.labeling.conftest import ask_at_once


def test_it_hands_out_the_comparison_with_fewest_votes_first(small_campaign, bob) -> None:
    busy = factories.make_comparison(small_campaign)
    quiet = factories.make_comparison(small_campaign)
    factories.make_vote(busy, factories.make_annotator())
    assignment = assignment_next(annotator=bob, campaign=small_campaign, rng_seed=1)
    assert assignment is not None
    assert assignment.comparison == quiet
    assert assignment.status == Assignment.Status.LIVE
    assert assignment.expires_at > timezone.now() + timedelta(minutes=19)


def test_it_breaks_ties_with_a_seeded_random_order(small_campaign) -> None:
    comparisons = {factories.make_comparison(small_campaign).pk for _ in range(6)}

    def pick(seed: int) -> int:
        assignment = assignment_next(annotator=factories.make_annotator(), campaign=small_campaign, rng_seed=seed)
        assert assignment is not None
        Assignment.objects.filter(pk=assignment.pk).delete()  # back to the same state for the next pick
        return assignment.comparison_id

    picks = {seed: pick(seed) for seed in range(8)}
    assert all(pick(seed) == picks[seed] for seed in range(8)), "the same seed must give the same order"
    assert len(set(picks.values())) > 1, "different seeds should not always pick the same comparison"
    assert set(picks.values()) <= comparisons


def test_it_spreads_concurrent_annotators_over_tied_comparisons(small_campaign) -> None:
    first, second = factories.make_comparison(small_campaign), factories.make_comparison(small_campaign)
    got = [assignment_next(annotator=factories.make_annotator(), campaign=small_campaign, rng_seed=7) for _ in range(2)]
    assert {assignment.comparison_id for assignment in got if assignment is not None} == {first.pk, second.pk}


def test_it_never_exceeds_the_overlap_target(small_campaign) -> None:
    comparison = factories.make_comparison(small_campaign)
    first = assignment_next(annotator=factories.make_annotator(), campaign=small_campaign)
    factories.make_vote(comparison, factories.make_annotator())
    assert first is not None
    # One live reservation + one vote = overlap 2: nothing left.
    assert assignment_next(annotator=factories.make_annotator(), campaign=small_campaign) is None


def test_it_skips_comparisons_the_annotator_voted_on_or_skipped(small_campaign, bob) -> None:
    voted = factories.make_comparison(small_campaign)
    skipped = factories.make_comparison(small_campaign)
    fresh = factories.make_comparison(small_campaign)
    factories.make_vote(voted, bob)
    Skip.objects.create(comparison=skipped, annotator=bob, reason=Skip.Reason.CANT_JUDGE)
    assignment = assignment_next(annotator=bob, campaign=small_campaign)
    assert assignment is not None and assignment.comparison == fresh


def test_it_resumes_the_live_reservation_instead_of_taking_another_slot(small_campaign, bob) -> None:
    factories.make_comparison(small_campaign)
    factories.make_comparison(small_campaign)
    first = assignment_next(annotator=bob, campaign=small_campaign)
    assert assignment_next(annotator=bob, campaign=small_campaign) == first
    assert Assignment.objects.count() == 1


def test_it_reclaims_expired_reservations(small_campaign, bob, charlie) -> None:
    small_campaign.overlap_target = 1
    small_campaign.save()
    factories.make_comparison(small_campaign)
    held = assignment_next(annotator=bob, campaign=small_campaign)
    assert held is not None
    assert assignment_next(annotator=charlie, campaign=small_campaign) is None
    later = timezone.now() + timedelta(minutes=21)
    reclaimed = assignment_next(annotator=charlie, campaign=small_campaign, now=later)
    assert reclaimed is not None and reclaimed.comparison_id == held.comparison_id
    held.refresh_from_db()
    assert held.status == Assignment.Status.EXPIRED and held.closed_at == later


def test_it_reclaims_only_lapsed_reservations(small_campaign, bob) -> None:
    factories.make_comparison(small_campaign)
    assignment_next(annotator=bob, campaign=small_campaign)
    assert assignment_reclaim_expired(now=timezone.now()) == 0
    assert assignment_reclaim_expired(now=timezone.now() + timedelta(hours=1)) == 1


def test_it_randomises_and_records_the_display_order(small_campaign) -> None:
    for _ in range(12):
        factories.make_comparison(small_campaign)
    swaps = set()
    for seed in range(12):
        assignment = assignment_next(annotator=factories.make_annotator(), campaign=small_campaign, rng_seed=seed)
        assert assignment is not None
        assignment.refresh_from_db()
        swaps.add(assignment.swapped)
    assert swaps == {True, False}


def test_it_refuses_inactive_campaigns(bob) -> None:
    draft = factories.make_campaign(status=Campaign.Status.DRAFT)
    factories.make_comparison(draft)
    with pytest.raises(CampaignNotActive):
        assignment_next(annotator=bob, campaign=draft)


@pytest.mark.django_db(transaction=True)
def test_it_never_gives_the_last_slot_twice_under_concurrency() -> None:
    """Many annotators ask at the same instant, each on its own PostgreSQL connection; one slot is left."""
    callers = 8
    for round_number in range(4):
        campaign = factories.make_campaign(overlap_target=2)
        last_slot = factories.make_comparison(campaign)
        factories.make_vote(last_slot, factories.make_annotator())
        annotators = [factories.make_annotator() for _ in range(callers)]
        results, errors = ask_at_once(campaign, annotators)
        assert not errors, errors
        granted = [r for r in results if r is not None]
        assert len(results) == callers
        assert len(granted) == 1, f"round {round_number}: {len(granted)} annotators got the last slot"
        assert Assignment.objects.filter(comparison=last_slot, status=Assignment.Status.LIVE).count() == 1


def test_the_periodic_task_frees_lapsed_slots(small_campaign, bob) -> None:
    from annotate.labeling.models import ComparisonSlot
    from annotate.labeling.tasks import assignment_reclaim_expired_task

    comparison = factories.make_comparison(small_campaign)
    held = assignment_next(annotator=bob, campaign=small_campaign)
    assert held is not None
    Assignment.objects.filter(pk=held.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert ComparisonSlot.objects.get(pk=comparison.pk).live == 1
    assert assignment_reclaim_expired_task() == 1
    assert ComparisonSlot.objects.get(pk=comparison.pk).live == 0
