"""skip_submit: a reason is required, the reservation is released and the skip recorded."""

from __future__ import annotations

import pytest

from annotate.labeling.models import Assignment, Skip
from annotate.labeling.selectors import AssignmentNotFound
from annotate.labeling.services import AssignmentClosed, VoteInvalid, assignment_next, skip_submit
from tests import factories
from tests.labeling.conftest import make_assignment


def test_it_records_the_skip_and_releases_the_reservation(small_campaign, bob, charlie) -> None:
    small_campaign.overlap_target = 1
    small_campaign.save()
    comparison = factories.make_comparison(small_campaign)
    assignment = assignment_next(annotator=bob, campaign=small_campaign)
    assert assignment is not None
    assert assignment_next(annotator=charlie, campaign=small_campaign) is None
    skip = skip_submit(annotator=bob, assignment_id=assignment.public_id, reason="cant_judge", note=" too quiet ")
    assert (skip.reason, skip.note, skip.comparison) == ("cant_judge", "too quiet", comparison)
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SKIPPED
    # The slot is free for charlie; bob never sees the comparison again.
    freed = assignment_next(annotator=charlie, campaign=small_campaign)
    assert freed is not None and freed.comparison == comparison
    assert assignment_next(annotator=bob, campaign=small_campaign) is None


@pytest.mark.parametrize(("reason", "note", "field"), [("bored", "", "reason"), ("other", "x" * 5001, "note")])
def test_it_rejects_a_bad_reason(small_campaign, bob, reason, note, field) -> None:
    assignment = make_assignment(factories.make_comparison(small_campaign), bob)
    with pytest.raises(VoteInvalid) as info:
        skip_submit(annotator=bob, assignment_id=assignment.public_id, reason=reason, note=note)
    assert info.value.field == field
    assert Skip.objects.count() == 0


def test_it_refuses_to_skip_twice(small_campaign, bob) -> None:
    assignment = make_assignment(factories.make_comparison(small_campaign), bob)
    skip_submit(annotator=bob, assignment_id=assignment.public_id, reason="broken_audio")
    with pytest.raises(AssignmentClosed):
        skip_submit(annotator=bob, assignment_id=assignment.public_id, reason="broken_audio")
    assert Skip.objects.count() == 1


def test_charlie_cannot_skip_bobs_assignment(small_campaign, bob, charlie) -> None:
    assignment = make_assignment(factories.make_comparison(small_campaign), bob)
    with pytest.raises(AssignmentNotFound):
        skip_submit(annotator=charlie, assignment_id=assignment.public_id, reason="broken_audio")


def test_it_records_other_without_a_note(small_campaign, bob) -> None:
    assignment = make_assignment(factories.make_comparison(small_campaign), bob)
    skip = skip_submit(annotator=bob, assignment_id=assignment.public_id, reason="other", note="")
    assert (skip.reason, skip.note) == ("other", "")
