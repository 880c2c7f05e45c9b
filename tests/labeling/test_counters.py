"""The database keeps slot state and campaign counters in step with every vote and reservation."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from django.db import connection
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from annotate.catalog.models import Campaign
from annotate.labeling.counters import rebuild
from annotate.labeling.models import Assignment, CampaignCounter, CampaignPattern, ComparisonSlot, Vote
from tests import factories

CHOICES = [f"{q}_{c}" for q in ("alignment", "musicality") for c in ("a", "b", "t")]


def recount(campaign: Campaign) -> dict[str, object]:
    """What the counters must say, recounted from the rows."""
    choices = {
        f"{q}_{c}": Count("votes", filter=Q(**{f"votes__{q}_choice": c}), distinct=True)
        for q in ("alignment", "musicality")
        for c in ("a", "b", "t")
    }
    comparisons = campaign.comparisons.annotate(
        **choices,
        n_votes=Count("votes", distinct=True),
        n_live=Count("assignments", filter=Q(assignments__status="live"), distinct=True),
        first_expiry=Min("assignments__expires_at", filter=Q(assignments__status="live")),
    )
    split_of = ("alignment_a", "alignment_t", "musicality_a", "musicality_t")
    splits = Counter((c.n_votes, *(getattr(c, k) for k in split_of)) for c in comparisons if c.n_votes)
    return {
        "patterns": dict(splits),
        "slots": {c.pk: (c.n_votes, c.n_live, c.first_expiry, *(getattr(c, k) for k in CHOICES)) for c in comparisons},
        "comparisons": len(comparisons),
        "votes": Vote.objects.filter(comparison__campaign=campaign).count(),
        "open": sum(1 for c in comparisons if c.n_votes < campaign.overlap_target),
    }


def stored(campaign: Campaign) -> dict[str, object]:
    totals = CampaignCounter.objects.filter(campaign=campaign).aggregate(
        comparisons=Sum("comparisons"), votes=Sum("votes"), open=Sum("open_comparisons")
    )
    slots = ComparisonSlot.objects.filter(campaign=campaign)
    patterns: Counter[tuple[int, ...]] = Counter()
    for row in CampaignPattern.objects.filter(campaign=campaign):
        patterns[row.votes, row.alignment_a, row.alignment_t, row.musicality_a, row.musicality_t] += row.comparisons
    return {
        "patterns": {key: n for key, n in patterns.items() if n},
        "slots": {s.comparison_id: (s.votes, s.live, s.next_expiry, *(getattr(s, k) for k in CHOICES)) for s in slots},
        "comparisons": totals["comparisons"] or 0,
        "votes": totals["votes"] or 0,
        "open": totals["open"] or 0,
    }


def test_counters_follow_votes_reservations_and_deletions(db: None) -> None:
    campaign = factories.make_campaign(overlap_target=2)
    other = factories.make_campaign(overlap_target=3)
    comparisons = [factories.make_comparison(campaign) for _ in range(4)]
    factories.make_comparison(other)
    assert CampaignCounter.objects.filter(campaign=campaign).count() == CampaignCounter.SHARDS
    assert stored(campaign) == recount(campaign)

    annotators = [factories.make_annotator() for _ in range(3)]
    now = timezone.now()
    live = [
        Assignment.objects.create(
            annotator=annotators[i], comparison=comparisons[0], swapped=False, expires_at=now + timedelta(minutes=i + 1)
        )
        for i in range(2)
    ]
    assert stored(campaign) == recount(campaign)
    factories.make_vote(comparisons[0], annotators[0])
    Assignment.objects.filter(pk=live[0].pk).update(status=Assignment.Status.VOTED)
    assert stored(campaign) == recount(campaign)
    factories.make_vote(comparisons[0], annotators[1], alignment="b", musicality="t")  # meets its target
    factories.make_vote(comparisons[1], annotators[2], alignment="t")
    assert stored(campaign) == recount(campaign)
    Vote.objects.filter(comparison=comparisons[1]).update(alignment_choice="b", musicality_choice="b")
    assert stored(campaign) == recount(campaign)
    assert stored(campaign)["open"] == 3

    Vote.objects.filter(comparison=comparisons[0], annotator=annotators[1]).delete()  # open again
    assert stored(campaign) == recount(campaign)
    Assignment.objects.filter(pk=live[1].pk).delete()
    campaign.overlap_target = 1
    campaign.save()
    assert stored(campaign) == recount(campaign)

    comparisons[1].delete()  # its vote and slot go with it
    assert stored(campaign) == recount(campaign)
    Vote.objects.filter(comparison=comparisons[2]).delete()
    assert stored(campaign) == recount(campaign)
    assert stored(campaign)["comparisons"] == 3

    # A bulk load that bypassed the triggers is repaired by a rebuild.
    rebuild(connection)
    assert stored(campaign) == recount(campaign)

    other_id = other.pk
    other.delete()
    assert not CampaignCounter.objects.filter(campaign_id=other_id).exists()
    assert not ComparisonSlot.objects.filter(campaign_id=other_id).exists()
