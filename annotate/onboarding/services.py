"""Writes for onboarding: consent, instructions read, headphone check, practice, withdrawal and its restoration.

The onboarding pages, the REST API and the admin call these. Errors are ``LabelingError`` subclasses (status,
stable code, message, field), the labeling app's one error model; nothing is written when one is raised.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate.catalog.models import Campaign
from annotate.labeling.models import Assignment
from annotate.labeling.services import LabelingError, VoteInvalid
from annotate.onboarding import stimuli
from annotate.onboarding.models import (
    CampaignOnboarding,
    ConsentRecord,
    HeadphoneCheck,
    InstructionsRead,
    PracticeAttempt,
    Withdrawal,
)
from annotate.onboarding.selectors import headphone_check_get_for_annotator, practice_items

logger = logging.getLogger(__name__)


class OnboardingStepInvalid(LabelingError):
    status = 409
    code = "onboarding_conflict"


class NotFound(LabelingError):
    status = 404
    code = "not_found"


def _config(campaign: Campaign) -> CampaignOnboarding:
    config = CampaignOnboarding.objects.filter(campaign=campaign).first()
    if config is None:
        raise OnboardingStepInvalid("This campaign has no onboarding steps.")
    return config


def consent_accept(*, annotator: User, campaign: Campaign, version: str, now: datetime | None = None) -> ConsentRecord:
    """Record that the annotator accepted the consent text of ``version``; accepting twice keeps the first time."""
    config = _config(campaign)
    if version != config.consent_version:
        raise OnboardingStepInvalid(
            f"The consent text changed (now version {config.consent_version}); please read it again.", field="version"
        )
    record, _ = ConsentRecord.objects.get_or_create(
        annotator=annotator,
        campaign=campaign,
        version=version,
        defaults={"text_sha256": config.consent_sha256, "accepted_at": now or timezone.now()},
    )
    return record


def instructions_acknowledge(*, annotator: User, campaign: Campaign, now: datetime | None = None) -> InstructionsRead:
    record, _ = InstructionsRead.objects.get_or_create(
        annotator=annotator, campaign=campaign, defaults={"read_at": now or timezone.now()}
    )
    return record


def headphone_check_start(*, annotator: User, campaign: Campaign, now: datetime | None = None) -> HeadphoneCheck:
    """A fresh screening with a random seed; an unfinished one of the same campaign is resumed instead."""
    config = _config(campaign)
    open_check = HeadphoneCheck.objects.filter(
        annotator=annotator, campaign=campaign, completed_at__isnull=True
    ).first()
    if open_check is not None:
        return open_check
    seed = secrets.randbits(48)
    return HeadphoneCheck.objects.create(
        annotator=annotator,
        campaign=campaign,
        seed=seed,
        trials=stimuli.trial_plan(seed=seed, trials=config.headphone_trials),
        created_at=now or timezone.now(),
    )


def headphone_check_submit(
    *, annotator: User, check_id: UUID | str, responses: Mapping[str, object], now: datetime | None = None
) -> HeadphoneCheck:
    """Score the answers (trial number → interval 1-3); every trial needs an answer."""
    with transaction.atomic():
        check = headphone_check_get_for_annotator(annotator=annotator, check_id=check_id)
        if check is None:
            raise NotFound("No such headphone check for you.")
        check = HeadphoneCheck.objects.select_for_update().get(pk=check.pk)
        if check.completed_at is not None:
            raise OnboardingStepInvalid("This headphone check is already scored; start a new one to try again.")
        answers: list[int] = []
        for number in range(1, len(check.trials) + 1):
            value = responses.get(str(number))
            if str(value) not in ("1", "2", "3"):
                raise VoteInvalid(f"Trial {number}: choose interval 1, 2 or 3.", field=f"trial_{number}")
            answers.append(int(str(value)))
        score = sum(answer == trial["target"] for answer, trial in zip(answers, check.trials, strict=True))
        config = _config(check.campaign)
        check.responses = answers
        check.score = score
        check.passed = score >= config.headphone_pass_mark
        check.completed_at = now or timezone.now()
        check.save(update_fields=["responses", "score", "passed", "completed_at"])
    return check


def practice_submit(
    *, annotator: User, campaign: Campaign, answers: Mapping[str, Mapping[str, object]], now: datetime | None = None
) -> PracticeAttempt:
    """Grade one pass through the practice items: two answers (Q1, Q2) per item, all required."""
    config = _config(campaign)
    items = list(practice_items(campaign=campaign))
    if not items:
        raise OnboardingStepInvalid("This campaign has no practice items.")
    stored: dict[str, dict[str, str]] = {}
    correct = 0
    for number, item in enumerate(items, start=1):
        given = answers.get(str(item.pk)) or {}
        row = {}
        for question, known in (("alignment", item.alignment_answer), ("musicality", item.musicality_answer)):
            value = given.get(question)
            if value not in ("A", "B"):
                raise VoteInvalid(
                    f"Practice item {number}: answer {question} with A or B.", field=f"{question}_{item.pk}"
                )
            row[question] = str(value)
            correct += value == known
        stored[str(item.pk)] = row
    total = 2 * len(items)
    return PracticeAttempt.objects.create(
        annotator=annotator,
        campaign=campaign,
        answers=stored,
        correct=correct,
        total=total,
        passed=correct >= config.practice_pass_fraction * total - 1e-9,
        created_at=now or timezone.now(),
    )


def withdrawal_create(
    *, annotator: User, campaign: Campaign, reason: str = "", now: datetime | None = None
) -> Withdrawal:
    """Withdraw from a campaign: open reservations are released; votes stay but stop counting everywhere."""
    now = now or timezone.now()
    if not isinstance(reason, str) or len(reason) > 2000:
        raise VoteInvalid("reason must be text of at most 2000 characters.", field="reason")
    try:
        with transaction.atomic():
            withdrawal = Withdrawal.objects.create(
                annotator=annotator, campaign=campaign, reason=reason.strip(), withdrawn_at=now
            )
            Assignment.objects.filter(
                annotator=annotator, comparison__campaign=campaign, status=Assignment.Status.LIVE
            ).update(status=Assignment.Status.EXPIRED, closed_at=now)
    except IntegrityError:
        raise OnboardingStepInvalid("You have already withdrawn from this campaign.") from None
    from annotate.agreement.services import agreement_snapshot_schedule_on_commit

    agreement_snapshot_schedule_on_commit(campaign_id=campaign.pk)
    return withdrawal


def withdrawal_restore(*, withdrawal_id: int, staff: User, note: str = "", now: datetime | None = None) -> Withdrawal:
    """Staff only: count the annotator's votes again and let them back into the campaign."""
    if not staff.is_staff:
        raise NotFound("No such withdrawal.")
    with transaction.atomic():
        withdrawal = Withdrawal.objects.select_for_update().filter(pk=withdrawal_id).first()
        if withdrawal is None:
            raise NotFound("No such withdrawal.")
        if withdrawal.restored_at is not None:
            raise OnboardingStepInvalid("This withdrawal was already restored.")
        withdrawal.restored_at = now or timezone.now()
        withdrawal.restored_by = staff
        withdrawal.restore_note = note
        withdrawal.save(update_fields=["restored_at", "restored_by", "restore_note"])
    campaign_id = withdrawal.campaign_id
    from annotate.agreement.services import agreement_snapshot_schedule_on_commit

    agreement_snapshot_schedule_on_commit(campaign_id=campaign_id)
    return withdrawal


ONBOARDING_STEPS = ("consent_required", "instructions_required", "headphone_check_required", "practice_required")


def campaign_onboarding_update(*, campaign: Campaign, steps: Mapping[str, bool]) -> CampaignOnboarding:
    """Set which onboarding steps the campaign requires (keys of ``ONBOARDING_STEPS``; others stay as they are).

    The first call creates the campaign's onboarding row with the model's defaults for the steps not given.

    Raises:
        OnboardingStepInvalid: an unknown step, or practice required while the campaign has no practice items.
    """
    unknown = sorted(set(steps) - set(ONBOARDING_STEPS))
    if unknown:
        raise OnboardingStepInvalid(f"{unknown[0]!r} is not an onboarding step.", field=unknown[0])
    if steps.get("practice_required") and not practice_items(campaign=campaign).exists():
        raise OnboardingStepInvalid(
            "The campaign has no practice items yet; add them before requiring practice.", field="practice_required"
        )
    with transaction.atomic():
        config, _ = CampaignOnboarding.objects.select_for_update().get_or_create(campaign=campaign)
        for name, value in steps.items():
            setattr(config, name, bool(value))
        config.save()
    return config
