"""vote_submit: canonical orientation, listening enforcement, validation, double submit, expiry."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotate.labeling.models import AnnotatorProfile, Assignment, Vote
from annotate.labeling.selectors import AssignmentNotFound
from annotate.labeling.services import (
    AssignmentClosed,
    ComparisonFull,
    DuplicateVote,
    ListeningExceedsElapsedTime,
    ListeningNotDelivered,
    ListeningRequirementNotMet,
    VoteInvalid,
    merge_intervals,
    skip_submit,
    vote_submit,
)
from tests import factories
from tests.labeling.conftest import make_assignment, vote_kwargs


@pytest.fixture
def assignment(small_campaign, bob) -> Assignment:
    return make_assignment(factories.make_comparison(small_campaign), bob)


def test_it_stores_choices_as_displayed_when_not_swapped(assignment) -> None:
    vote = vote_submit(**vote_kwargs(assignment, alignment="A", musicality="B"))
    assert (vote.alignment_choice, vote.musicality_choice, vote.presented_swapped) == ("a", "b", False)
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.VOTED and assignment.closed_at is not None


def test_it_stores_choices_in_canonical_orientation_when_swapped(small_campaign, bob) -> None:
    comparison = factories.make_comparison(small_campaign, seconds=3.0)
    assignment = make_assignment(comparison, bob, swapped=True)
    # Displayed A is clip_b; the annotator heard 1.5 s of the left clip and all of the right one.
    vote = vote_submit(
        **vote_kwargs(assignment, alignment="A", musicality="B", listened={"A": [(0, 1.5)], "B": [(0, 3.0)]})
    )
    vote.refresh_from_db()
    assert vote.alignment_choice == "b"  # left was clip_b
    assert vote.musicality_choice == "a"  # right was clip_a
    assert vote.presented_swapped is True
    assert vote.listened_b_s == pytest.approx(1.5, abs=0.01)
    assert vote.listened_a_s == pytest.approx(3.0, abs=0.02)


def test_it_records_confidences_feedback_and_timing(assignment, bob) -> None:
    now = assignment.created_at + timedelta(seconds=75)
    vote = vote_submit(**vote_kwargs(assignment, feedback="  B clips at 0:01.  ", time_on_task_s=12.5), now=now)
    vote.refresh_from_db()
    assert (vote.alignment_confidence, vote.musicality_confidence) == (4, 2)
    assert vote.feedback == "B clips at 0:01."
    # Time on task is the server's (reservation to vote); the page's figure is only kept beside it.
    assert vote.time_on_task_s == pytest.approx(75.0)
    assert vote.client_time_on_task_s == 12.5
    assert vote.started_at == assignment.created_at
    assert AnnotatorProfile.objects.filter(user=bob).exists()


def test_it_merges_overlapping_intervals_and_ignores_gaps() -> None:
    assert merge_intervals([(0, 2), (1, 3), (5, 6)], duration_s=10) == pytest.approx(4.0)
    assert merge_intervals([(8, 14)], duration_s=10) == pytest.approx(2.0)
    assert merge_intervals([(3, 3), (4, 4)], duration_s=10) == 0.0


def test_it_accepts_when_the_requirement_is_met(assignment) -> None:
    vote = vote_submit(**vote_kwargs(assignment, listened={"A": [(0, 0.6), (0.5, 1.1)], "B": [(0.9, 2.0)]}))
    assert vote.listened_a_s == pytest.approx(1.1) and vote.listened_b_s == pytest.approx(1.1, abs=0.01)


def test_it_rejects_an_unmet_requirement_naming_the_clip(assignment) -> None:
    with pytest.raises(ListeningRequirementNotMet) as info:
        vote_submit(**vote_kwargs(assignment, listened={"A": [(0, 2.0)], "B": [(0, 0.4)]}))
    assert info.value.side == "B"
    assert "Clip B" in info.value.message
    assert Vote.objects.count() == 0


def test_it_does_not_count_seeks_as_listening(assignment) -> None:
    # Seek-only: the page reports instants (zero-length stretches) at the places the annotator jumped to.
    seeks = [(0.0, 0.0), (0.5, 0.5), (1.2, 1.2), (1.9, 1.9)]
    with pytest.raises(ListeningRequirementNotMet) as info:
        vote_submit(**vote_kwargs(assignment, listened={"A": seeks, "B": [(0, 2.0)]}))
    assert info.value.side == "A" and info.value.listened_s == 0.0


def test_it_rejects_more_listening_than_time_since_the_handout(small_campaign, bob) -> None:
    assignment = make_assignment(factories.make_comparison(small_campaign, seconds=8.0), bob)
    with pytest.raises(ListeningExceedsElapsedTime) as info:
        vote_submit(
            **vote_kwargs(assignment, listened={"A": [(0, 8.0)], "B": [(0, 8.0)]}),
            now=assignment.created_at + timedelta(seconds=10),
        )
    assert info.value.field == "listened" and info.value.claimed_s == pytest.approx(16.0)
    assert Vote.objects.count() == 0


def test_it_refuses_a_and_b_heard_at_the_same_time(small_campaign, bob) -> None:
    # 6.4 s of claims 5 s after the hand-out: each clip alone would fit, together they can't (one plays at a time).
    assignment = make_assignment(factories.make_comparison(small_campaign, seconds=4.0), bob)
    claims = {"A": [(0, 3.2)], "B": [(0, 3.2)]}
    with pytest.raises(ListeningExceedsElapsedTime) as info:
        vote_submit(**vote_kwargs(assignment, listened=claims), now=assignment.created_at + timedelta(seconds=5))
    assert "A 3.2 s + B 3.2 s" in info.value.message and "5.0 s ago" in info.value.message
    # Within the 1 s of slack: 5.9 s claimed at 5 s.
    vote = vote_submit(
        **vote_kwargs(assignment, listened={"A": [(0, 3.0)], "B": [(0, 2.9)]}),
        now=assignment.created_at + timedelta(seconds=5),
    )
    assert vote.listened_a_s == pytest.approx(3.0) and vote.listened_b_s == pytest.approx(2.9)


def test_it_refuses_listening_to_audio_the_server_never_delivered(small_campaign, bob) -> None:
    assignment = make_assignment(factories.make_comparison(small_campaign, modality="A"), bob, delivered=False)
    factories.deliver_audio(assignment, sides=("A", "R"))  # B was never fetched; a reference fetch is no B
    with pytest.raises(ListeningNotDelivered) as info:
        vote_submit(**vote_kwargs(assignment))
    assert info.value.side == "B" and info.value.missing == [(0.0, pytest.approx(2.0))]
    assert "Clip B" in info.value.message and "0.0–2.0 s" in info.value.message
    assert Vote.objects.count() == 0


def test_it_refuses_claims_beyond_the_delivered_part(small_campaign, bob) -> None:
    assignment = make_assignment(factories.make_comparison(small_campaign, seconds=6.0), bob, delivered=False)
    factories.deliver_audio(assignment, end_s=2.0)  # an aborted download: the first 2 s of each clip
    factories.deliver_audio(assignment, sides=("B",), start_s=4.0)  # and a range request for B's end
    with pytest.raises(ListeningNotDelivered) as info:
        vote_submit(**vote_kwargs(assignment, listened={"A": [(0, 1.5)], "B": [(0, 6.0)]}))
    assert info.value.side == "B" and info.value.missing == [(pytest.approx(2.0), pytest.approx(4.0))]
    # Up to 0.5 s outside the delivered audio is frame granularity, not cheating.
    vote = vote_submit(**vote_kwargs(assignment, listened={"A": [(0, 2.4)], "B": [(0, 2.0), (4.0, 6.0)]}))
    assert vote.listened_a_s == pytest.approx(2.4)


def test_it_does_not_count_audio_delivered_to_someone_elses_assignment(small_campaign, bob, charlie) -> None:
    comparison = factories.make_comparison(small_campaign)
    make_assignment(comparison, charlie)  # charlie's page fetched both clips
    assignment = make_assignment(comparison, bob, delivered=False)
    with pytest.raises(ListeningNotDelivered) as info:
        vote_submit(**vote_kwargs(assignment))
    assert info.value.side == "A"


def test_it_refuses_an_absurd_client_time_and_ignores_a_client_start(assignment) -> None:
    with pytest.raises(VoteInvalid) as info:
        vote_submit(**vote_kwargs(assignment, time_on_task_s=1e300))
    assert info.value.field == "time_on_task_s"
    with pytest.raises(TypeError):
        vote_submit(**vote_kwargs(assignment), started_at=timezone.now().replace(year=2099))  # type: ignore[call-arg]


def test_it_uses_the_campaign_requirement_whichever_is_less(bob) -> None:
    campaign = factories.make_campaign(min_listen_seconds=10.0, min_listen_fraction=0.5)
    assignment = make_assignment(factories.make_comparison(campaign, seconds=3.0), bob)
    # 50% of 3 s = 1.5 s is less than 10 s.
    with pytest.raises(ListeningRequirementNotMet):
        vote_submit(**vote_kwargs(assignment, listened={"A": [(0, 1.0)], "B": [(0, 3.0)]}))
    vote_submit(**vote_kwargs(assignment, listened={"A": [(0, 1.5)], "B": [(0, 3.0)]}))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alignment", "a"),
        ("alignment", "left"),
        ("musicality", None),
        ("alignment_confidence", 0),
        ("alignment_confidence", 6),
        ("musicality_confidence", "3"),
        ("musicality_confidence", True),
        ("listened", {"C": []}),
        ("listened", {"A": [(-1, 1)]}),
        ("listened", {"A": [(0, float("nan"))]}),
        ("listened", [[0, 1]]),
        ("time_on_task_s", -1),
        ("feedback", "   "),
        ("feedback", "x" * 5001),
    ],
)
def test_it_rejects_malformed_input_naming_the_field(assignment, field, value) -> None:
    with pytest.raises(VoteInvalid) as info:
        vote_submit(**vote_kwargs(assignment, **{field: value}))
    assert info.value.field == field
    assert Vote.objects.count() == 0


def test_it_accepts_empty_feedback_when_the_campaign_makes_it_optional(bob) -> None:
    campaign = factories.make_campaign(feedback_required=False, min_listen_seconds=1.0, min_listen_fraction=None)
    assignment = make_assignment(factories.make_comparison(campaign), bob)
    assert vote_submit(**vote_kwargs(assignment, feedback="")).feedback == ""


def test_it_keeps_exactly_one_vote_on_a_double_submit(assignment) -> None:
    vote_submit(**vote_kwargs(assignment))
    with pytest.raises(DuplicateVote):
        vote_submit(**vote_kwargs(assignment, alignment="B"))
    assert Vote.objects.get().alignment_choice == "a"


def test_it_refuses_a_second_vote_on_the_same_comparison_from_a_new_reservation(small_campaign, bob) -> None:
    comparison = factories.make_comparison(small_campaign)
    old = make_assignment(comparison, bob, status=Assignment.Status.EXPIRED)
    vote_submit(**vote_kwargs(old))
    Assignment.objects.filter(pk=old.pk).update(status=Assignment.Status.EXPIRED)
    with pytest.raises(DuplicateVote):
        vote_submit(**vote_kwargs(old))
    assert Vote.objects.count() == 1


def test_it_accepts_a_lapsed_reservation_while_the_comparison_has_room(assignment) -> None:
    later = timezone.now() + timedelta(minutes=30)
    vote = vote_submit(**vote_kwargs(assignment), now=later)
    assert vote.pk is not None


def test_it_refuses_a_lapsed_reservation_once_the_comparison_is_full(small_campaign, bob, charlie) -> None:
    comparison = factories.make_comparison(small_campaign)
    assignment = make_assignment(comparison, bob, expires_at=timezone.now() - timedelta(minutes=1))
    factories.make_vote(comparison, factories.make_annotator())
    make_assignment(comparison, charlie)  # the reclaimed slot went to charlie
    with pytest.raises(ComparisonFull) as info:
        vote_submit(**vote_kwargs(assignment))
    assert "expired" in info.value.message
    assert Vote.objects.filter(annotator=bob).count() == 0


def test_it_refuses_a_vote_after_a_skip(assignment, bob) -> None:
    skip_submit(annotator=bob, assignment_id=assignment.public_id, reason="broken_audio")
    with pytest.raises(AssignmentClosed):
        vote_submit(**vote_kwargs(assignment))


def test_charlie_cannot_vote_on_bobs_assignment(assignment, charlie) -> None:
    with pytest.raises(AssignmentNotFound):
        vote_submit(**vote_kwargs(assignment, annotator=charlie))
    assert Vote.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_it_keeps_one_vote_when_two_tabs_submit_at_once() -> None:
    campaign = factories.make_campaign(overlap_target=2, min_listen_seconds=1.0, min_listen_fraction=None)
    annotator = factories.make_annotator()
    assignment = make_assignment(factories.make_comparison(campaign), annotator)
    tabs = 6
    barrier = threading.Barrier(tabs)
    outcomes: list[str] = []

    def submit() -> None:
        try:
            barrier.wait()
            vote_submit(**vote_kwargs(assignment))
            outcomes.append("created")
        except DuplicateVote:
            outcomes.append("duplicate")
        except BaseException as exc:  # noqa: BLE001 - recorded and asserted below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(tabs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["created"] + ["duplicate"] * (tabs - 1)
    assert Vote.objects.filter(annotator=annotator).count() == 1


def test_it_schedules_an_agreement_snapshot_after_the_vote_commits(
    assignment, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    from annotate.agreement import services as agreement_services

    scheduled: list[int] = []
    monkeypatch.setattr(
        agreement_services, "agreement_snapshot_schedule", lambda *, campaign_id, **_: scheduled.append(campaign_id)
    )
    with django_capture_on_commit_callbacks(execute=True):
        vote_submit(**vote_kwargs(assignment))
    assert scheduled == [assignment.comparison.campaign_id]


def test_it_keeps_the_vote_when_scheduling_the_snapshot_fails(
    assignment, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    from annotate.agreement import services as agreement_services

    def broker_down(*, campaign_id: int, **_: object) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(agreement_services, "agreement_snapshot_schedule", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        vote = vote_submit(**vote_kwargs(assignment))
    assert Vote.objects.filter(pk=vote.pk).exists()


def test_it_reads_a_reversed_interval_as_the_same_seconds() -> None:
    from annotate.labeling.services import _parse_listened

    assert _parse_listened({"A": [[2, 1]], "B": [[0, 3]]}) == {"A": [(1.0, 2.0)], "B": [(0.0, 3.0)]}
