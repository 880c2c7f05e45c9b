"""Next assignment, vote and progress cost the same few queries in a campaign of 20 comparisons or of 3,000.

Transactional tests, so the count is what production sees: no test-wrapping savepoints.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.catalog.models import Campaign, Comparison, Instruction
from annotate.labeling.models import AnnotatorProfile, Assignment, Vote
from annotate.labeling.selectors import annotator_progress
from annotate.labeling.services import assignment_next, vote_submit
from tests import factories
from tests.labeling.conftest import vote_kwargs

SIZES = [20, 3000]
# The counts are PostgreSQL's (production): on SQLite (scripts/dev.sh) a reservation is a lock-free transaction.
pytestmark = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql", reason="counts PostgreSQL round trips"
)


def _campaign_of(size: int) -> Campaign:
    """``size`` comparisons (two real clips, one instruction each), a third of them already voted on."""
    campaign = factories.make_campaign(overlap_target=3, min_listen_seconds=1.0, min_listen_fraction=None)
    clip_a, clip_b = factories.make_clip(), factories.make_clip()
    tag = f"{campaign.pk}-{size}"
    instructions = Instruction.objects.bulk_create(
        Instruction(
            prompt_id=f"q{tag}-{i}",
            text=f"prompt {tag} {i}",
            content_hash=hashlib.sha256(f"{tag}-{i}".encode()).hexdigest(),
        )
        for i in range(size)
    )
    comparisons = Comparison.objects.bulk_create(
        Comparison(campaign=campaign, instruction=ins, clip_a=clip_a, clip_b=clip_b, system_a="sys-a", system_b="sys-b")
        for ins in instructions
    )
    others = [factories.make_annotator() for _ in range(2)]
    Vote.objects.bulk_create(
        Vote(
            comparison=comparison,
            annotator=others[i % 2],
            alignment_choice="a",
            alignment_confidence=3,
            musicality_choice="b",
            musicality_confidence=3,
            presented_swapped=False,
        )
        for i, comparison in enumerate(comparisons[: size // 3])
    )
    return campaign


def _annotator():  # type: ignore[no-untyped-def]
    annotator = factories.make_annotator()
    AnnotatorProfile.objects.create(user=annotator)  # as create_annotator does
    return annotator


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("size", SIZES)
def test_services_cost_at_most_five_queries_at_any_campaign_size(size, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    campaign = _campaign_of(size)
    annotator = _annotator()
    with django_assert_max_num_queries(5):
        assignment = assignment_next(annotator=annotator, campaign=campaign)
    assert assignment is not None and assignment.status == Assignment.Status.LIVE
    with django_assert_max_num_queries(2):
        assert assignment_next(annotator=annotator, campaign=campaign) == assignment  # resumed
    Assignment.objects.filter(pk=assignment.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    assignment.refresh_from_db()
    factories.deliver_audio(assignment)
    kwargs = vote_kwargs(assignment)
    with django_assert_max_num_queries(5):
        vote_submit(**kwargs)
    with django_assert_max_num_queries(1):
        progress = annotator_progress(annotator=annotator, campaign=campaign)
    assert (progress.done, progress.total, progress.campaign_votes) == (1, size, size // 3 + 1)
    assert progress.remaining == size - 1


@pytest.mark.django_db(transaction=True)
def test_the_api_costs_the_same_queries_at_both_sizes() -> None:
    """Through the REST API (token auth, progress, payload): the same count for 20 and 3,000 comparisons."""
    counts = []
    for size in SIZES:
        campaign = _campaign_of(size)
        annotator = _annotator()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=annotator).key}")
        with CaptureQueriesContext(connection) as next_queries:
            response = client.get(reverse("labeling:api-next", args=[campaign.pk]))
        assert response.status_code == 200, response.content
        assignment = Assignment.objects.get(public_id=response.json()["assignment"]["id"])
        Assignment.objects.filter(pk=assignment.pk).update(created_at=timezone.now() - timedelta(minutes=1))
        assignment.refresh_from_db()
        factories.deliver_audio(assignment)
        body = {k: v for k, v in vote_kwargs(assignment).items() if k not in ("annotator", "assignment_id")}
        with CaptureQueriesContext(connection) as vote_queries:
            response = client.post(reverse("labeling:api-vote", args=[assignment.public_id]), body, format="json")
        assert response.status_code == 201, response.content
        counts.append((len(next_queries), len(vote_queries)))
    assert counts[0] == counts[1], counts
    next_count, vote_count = counts[0]
    # On top of the services: the token lookup (both), the campaign read and the progress (next).
    assert next_count <= 7 and vote_count <= 6, counts
