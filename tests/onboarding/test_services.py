"""Onboarding services: what each step stores, the pass marks, and withdrawal with its restoration."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User

from annotate.catalog.models import Campaign
from annotate.labeling.models import Assignment
from annotate.labeling.services import LabelingError, assignment_next
from annotate.onboarding.models import ConsentRecord, HeadphoneCheck, Withdrawal
from annotate.onboarding.selectors import onboarding_status
from annotate.onboarding.services import (
    consent_accept,
    headphone_check_start,
    headphone_check_submit,
    instructions_acknowledge,
    practice_submit,
    withdrawal_create,
    withdrawal_restore,
)


def _answers(check: HeadphoneCheck, right: int) -> dict[str, int]:
    """The first ``right`` trials answered correctly, the rest wrongly."""
    return {str(n): t["target"] if n <= right else t["target"] % 3 + 1 for n, t in enumerate(check.trials, start=1)}


def _practice(campaign: Campaign, *, right: bool = True) -> dict[str, dict[str, str]]:
    flip = {"A": "B", "B": "A"}
    return {
        str(item.pk): {
            "alignment": item.alignment_answer if right else flip[item.alignment_answer],
            "musicality": item.musicality_answer,
        }
        for item in campaign.practice_items.all()
    }


def complete_onboarding(annotator: User, campaign: Campaign) -> None:
    consent_accept(annotator=annotator, campaign=campaign, version=campaign.onboarding.consent_version)
    instructions_acknowledge(annotator=annotator, campaign=campaign)
    check = headphone_check_start(annotator=annotator, campaign=campaign)
    headphone_check_submit(annotator=annotator, check_id=check.public_id, responses=_answers(check, 3))
    practice_submit(annotator=annotator, campaign=campaign, answers=_practice(campaign))


def test_it_stores_consent_with_its_version_and_time_and_refuses_a_stale_version(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LabelingError, match="consent text changed") as excinfo:
        consent_accept(annotator=bob, campaign=onboarded_campaign, version="1")
    assert excinfo.value.status == 409 and not ConsentRecord.objects.exists()
    record = consent_accept(annotator=bob, campaign=onboarded_campaign, version="2026-01")
    assert record.version == "2026-01" and record.accepted_at is not None
    assert record.text_sha256 == onboarded_campaign.onboarding.consent_sha256
    # A new version of the text makes the old acceptance insufficient.
    onboarded_campaign.onboarding.consent_version = "2026-02"
    onboarded_campaign.onboarding.save()
    assert onboarding_status(annotator=bob, campaign=onboarded_campaign).missing.name == "consent"  # type: ignore[union-attr]


def test_it_scores_the_headphone_check_against_its_pass_mark(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    check = headphone_check_start(annotator=bob, campaign=onboarded_campaign)
    assert headphone_check_start(annotator=bob, campaign=onboarded_campaign) == check  # unfinished: resumed
    with pytest.raises(LabelingError, match="Trial 3"):
        headphone_check_submit(annotator=bob, check_id=check.public_id, responses={"1": 1, "2": 1})
    failed = headphone_check_submit(annotator=bob, check_id=check.public_id, responses=_answers(check, 1))
    assert (failed.score, failed.passed, failed.responses is not None) == (1, False, True)
    with pytest.raises(LabelingError, match="already scored"):
        headphone_check_submit(annotator=bob, check_id=check.public_id, responses=_answers(check, 3))
    retry = headphone_check_start(annotator=bob, campaign=onboarded_campaign)
    assert retry != check
    passed = headphone_check_submit(annotator=bob, check_id=retry.public_id, responses=_answers(retry, 2))
    assert (passed.score, passed.passed) == (2, True)


def test_it_does_not_let_charlie_answer_bobs_headphone_check(bob, charlie, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    check = headphone_check_start(annotator=bob, campaign=onboarded_campaign)
    with pytest.raises(LabelingError) as excinfo:
        headphone_check_submit(annotator=charlie, check_id=check.public_id, responses=_answers(check, 3))
    assert excinfo.value.status == 404
    check.refresh_from_db()
    assert check.completed_at is None


def test_it_grades_practice_against_the_pass_mark(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LabelingError, match="Practice item 1"):
        practice_submit(annotator=bob, campaign=onboarded_campaign, answers={})
    failed = practice_submit(
        annotator=bob, campaign=onboarded_campaign, answers=_practice(onboarded_campaign, right=False)
    )
    assert (failed.correct, failed.total, failed.passed) == (2, 4, False)  # 50% < 75%
    passed = practice_submit(annotator=bob, campaign=onboarded_campaign, answers=_practice(onboarded_campaign))
    assert (passed.correct, passed.passed) == (4, True)


def test_it_hands_out_work_only_after_every_required_step(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    steps = []
    for action in ("consent", "instructions", "headphones", "practice"):
        with pytest.raises(LabelingError) as excinfo:
            assignment_next(annotator=bob, campaign=onboarded_campaign)
        steps.append(getattr(excinfo.value, "step", None))
        if action == "consent":
            consent_accept(annotator=bob, campaign=onboarded_campaign, version="2026-01")
        elif action == "instructions":
            instructions_acknowledge(annotator=bob, campaign=onboarded_campaign)
        elif action == "headphones":
            check = headphone_check_start(annotator=bob, campaign=onboarded_campaign)
            headphone_check_submit(annotator=bob, check_id=check.public_id, responses=_answers(check, 3))
        else:
            practice_submit(annotator=bob, campaign=onboarded_campaign, answers=_practice(onboarded_campaign))
    assert steps == ["consent", "instructions", "headphones", "practice"]
    assert not Assignment.objects.exists()
    assert assignment_next(annotator=bob, campaign=onboarded_campaign) is not None


def test_it_releases_reservations_on_withdrawal_and_lets_staff_restore(alice, bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    complete_onboarding(bob, onboarded_campaign)
    assignment = assignment_next(annotator=bob, campaign=onboarded_campaign)
    assert assignment is not None
    withdrawal = withdrawal_create(annotator=bob, campaign=onboarded_campaign, reason="No time")
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.EXPIRED
    with pytest.raises(LabelingError) as excinfo:
        assignment_next(annotator=bob, campaign=onboarded_campaign)
    assert (excinfo.value.status, excinfo.value.code) == (403, "withdrawn")
    with pytest.raises(LabelingError, match="already withdrawn"):
        withdrawal_create(annotator=bob, campaign=onboarded_campaign)
    with pytest.raises(LabelingError):
        withdrawal_restore(withdrawal_id=withdrawal.pk, staff=bob)  # an annotator can't restore
    restored = withdrawal_restore(withdrawal_id=withdrawal.pk, staff=alice, note="asked by e-mail")
    assert restored.restored_by == alice and restored.restored_at is not None
    assert assignment_next(annotator=bob, campaign=onboarded_campaign) is not None
    # Withdrawing again after a restoration is a new, separate record.
    withdrawal_create(annotator=bob, campaign=onboarded_campaign)
    assert Withdrawal.objects.filter(annotator=bob).count() == 2


def test_it_asks_nothing_of_a_campaign_without_onboarding(bob, campaign, comparison) -> None:  # type: ignore[no-untyped-def]
    assert onboarding_status(annotator=bob, campaign=campaign).steps == []
    assert assignment_next(annotator=bob, campaign=campaign) is not None


def test_it_takes_no_vote_on_a_reservation_released_by_a_withdrawal(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    from annotate.labeling.services import vote_submit
    from tests.labeling.conftest import vote_kwargs

    complete_onboarding(bob, onboarded_campaign)
    assignment = assignment_next(annotator=bob, campaign=onboarded_campaign)
    assert assignment is not None
    Assignment.objects.filter(pk=assignment.pk).update(created_at=assignment.created_at - timedelta(minutes=1))
    assignment.refresh_from_db()
    withdrawal_create(annotator=bob, campaign=onboarded_campaign)
    with pytest.raises(LabelingError) as excinfo:
        vote_submit(**vote_kwargs(assignment))
    assert (excinfo.value.status, excinfo.value.code) == (403, "withdrawn")
    assert not assignment.comparison.votes.exists()
