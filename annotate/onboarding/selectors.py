"""Reads for onboarding, and the one rule for which votes count.

``counted_votes`` is the only place that decides which votes enter statistics, exports and model
comparisons: votes of annotators who withdrew from the vote's campaign (and were not restored) are kept in
the database but left out everywhere. Agreement, exports and the model-vs-human view call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.urls import reverse

from annotate.catalog.models import Campaign
from annotate.errors import NotFoundError
from annotate.labeling.models import Vote
from annotate.onboarding.models import (
    CampaignOnboarding,
    ConsentRecord,
    HeadphoneCheck,
    InstructionsRead,
    PracticeAttempt,
    PracticeItem,
    Withdrawal,
)

STEPS = ("consent", "instructions", "headphones", "practice")
STEP_TITLES = {
    "consent": "Consent",
    "instructions": "Instructions and glossary",
    "headphones": "Headphone check",
    "practice": "Practice comparisons",
}
# The paper's glossary for annotators (appendix D.1.6): dimension, positive and negative descriptors.
GLOSSARY = (
    ("Melody", "Catchy, memorable, distinct", "Repetitive, generic, wandering"),
    ("Structure", "Coherent, progression, build-up", "Disjointed, abrupt, random loops"),
    ("Rhythm", "Groovy, steady, driving", "Off-beat, unstable, chaotic"),
    ("Audio quality", "Clean mix, balanced, high-fidelity", "Harsh, muddy, distorted / clipping"),
    ("Vocals", "Natural, clear articulation", "Robotic, slurred, artifacts"),
)
WITHDRAWAL_REASON = "the annotator withdrew from the campaign (consent withdrawn); votes kept but not counted"


def vote_withdrawn() -> Exists:
    """True for a vote whose annotator has an active withdrawal from the vote's campaign (for ``Vote`` querysets)."""
    return Exists(
        Withdrawal.objects.filter(
            annotator_id=OuterRef("annotator_id"),
            campaign_id=OuterRef("comparison__campaign_id"),
            restored_at__isnull=True,
        )
    )


def counted_votes(votes: QuerySet[Vote]) -> QuerySet[Vote]:
    """``votes`` without those whose annotator has an active withdrawal from the vote's campaign."""
    return votes.exclude(vote_withdrawn())


def campaign_counted_votes(*, campaign_id: int) -> QuerySet[Vote]:
    """``counted_votes`` of one campaign's votes, written for a scan of them all.

    The campaign's few active withdrawals become a hashed ``NOT IN`` list, probed once per vote, where
    the correlated ``EXISTS`` of ``counted_votes`` runs a subquery per vote (a second per scan at 1M votes).
    """
    withdrawn = Withdrawal.objects.filter(campaign_id=campaign_id, restored_at__isnull=True).values("annotator_id")
    return Vote.objects.filter(comparison__campaign_id=campaign_id).exclude(annotator_id__in=withdrawn)


def withdrawn_votes_summary(*, campaign_id: int) -> dict[str, Any]:
    """How many of a campaign's votes are left out because their annotators withdrew, and why."""
    # The complement of ``counted_votes`` written as the EXISTS itself: a ``NOT IN`` over every counted id
    # becomes a per-row scan once the ids outgrow work_mem (minutes at 1M votes after ANALYZE).
    row = (
        Vote.objects.filter(comparison__campaign_id=campaign_id)
        .filter(vote_withdrawn())
        .aggregate(votes=Count("pk"), annotators=Count("annotator_id", distinct=True))
    )
    return {"votes": row["votes"], "annotators": row["annotators"], "reason": WITHDRAWAL_REASON}


def campaign_get_for_withdrawal(*, user: User | AnonymousUser, campaign_id: int) -> Campaign:
    """An active or closed campaign: withdrawal must stay possible after a campaign stops collecting votes."""
    campaign = Campaign.objects.exclude(status=Campaign.Status.DRAFT).filter(pk=campaign_id).first()
    if campaign is None or not getattr(user, "is_authenticated", False):
        raise NotFoundError("No such campaign for you.")
    return campaign


def withdrawal_active(*, annotator: User, campaign: Campaign) -> Withdrawal | None:
    return Withdrawal.objects.filter(annotator=annotator, campaign=campaign, restored_at__isnull=True).first()


def onboarding_for(*, campaign: Campaign) -> CampaignOnboarding | None:
    return CampaignOnboarding.objects.filter(campaign=campaign).first()


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    done: bool
    url: str
    detail: str = ""


@dataclass(frozen=True)
class OnboardingStatus:
    steps: list[Step] = field(default_factory=list)
    withdrawn: bool = False

    @property
    def missing(self) -> Step | None:
        """The first required step not done yet, in the order the pages lead through them."""
        return next((step for step in self.steps if not step.done), None)

    def as_dict(self) -> dict[str, Any]:
        missing = self.missing
        return {
            "withdrawn": self.withdrawn,
            "complete": missing is None and not self.withdrawn,
            "missing_step": missing.name if missing else None,
            "steps": [
                {"name": s.name, "title": s.title, "done": s.done, "url": s.url, "detail": s.detail} for s in self.steps
            ],
        }


def _latest_headphone_check(annotator: User, campaign: Campaign) -> HeadphoneCheck | None:
    return (
        HeadphoneCheck.objects.filter(annotator=annotator, campaign=campaign, completed_at__isnull=False)
        .order_by("-passed", "-completed_at")
        .first()
    )


def _step_state(name: str, config: CampaignOnboarding, annotator: User, campaign: Campaign) -> tuple[bool, str]:
    if name == "consent":
        record = ConsentRecord.objects.filter(
            annotator=annotator, campaign=campaign, version=config.consent_version
        ).first()
        return record is not None, f"version {config.consent_version}" + (
            f", accepted {record.accepted_at:%Y-%m-%d %H:%M} UTC" if record else ""
        )
    if name == "instructions":
        return InstructionsRead.objects.filter(annotator=annotator, campaign=campaign).exists(), ""
    if name == "headphones":
        check = _latest_headphone_check(annotator, campaign)
        if check is None:
            return False, ""
        return bool(
            check.passed
        ), f"best result {check.score} of {len(check.trials)} (pass mark {config.headphone_pass_mark})"
    attempt = (
        PracticeAttempt.objects.filter(annotator=annotator, campaign=campaign)
        .order_by("-passed", "-created_at")
        .first()
    )
    if attempt is None:
        return False, ""
    return attempt.passed, f"best result {attempt.correct} of {attempt.total} answers right"


def onboarding_status(*, annotator: User, campaign: Campaign) -> OnboardingStatus:
    """The campaign's required steps with the annotator's state; no steps when the campaign asks for none."""
    withdrawn = withdrawal_active(annotator=annotator, campaign=campaign) is not None
    config = onboarding_for(campaign=campaign)
    if config is None:
        return OnboardingStatus(steps=[], withdrawn=withdrawn)
    required = {
        "consent": config.consent_required,
        "instructions": config.instructions_required,
        "headphones": config.headphone_check_required,
        "practice": config.practice_required and campaign.practice_items.exists(),
    }
    steps = []
    for name in STEPS:
        if not required[name]:
            continue
        done, detail = _step_state(name, config, annotator, campaign)
        url = reverse(f"onboarding:{name}", args=[campaign.pk])
        steps.append(Step(name=name, title=STEP_TITLES[name], done=done, url=url, detail=detail))
    return OnboardingStatus(steps=steps, withdrawn=withdrawn)


def practice_items(*, campaign: Campaign) -> QuerySet[PracticeItem]:
    return PracticeItem.objects.filter(campaign=campaign).select_related("clip_a", "clip_b")


def practice_item_get(*, campaign: Campaign, item_id: int) -> PracticeItem | None:
    return practice_items(campaign=campaign).filter(pk=item_id).first()


def practice_feedback(*, attempt: PracticeAttempt) -> list[dict[str, Any]]:
    """Per item: the annotator's answers, the known answers and the explanation, for the results page."""
    items = {str(item.pk): item for item in practice_items(campaign=attempt.campaign)}
    rows = []
    for item_id, item in items.items():
        given = attempt.answers.get(item_id, {})
        rows.append(
            {
                "item": item,
                "alignment": given.get("alignment"),
                "musicality": given.get("musicality"),
                "alignment_ok": given.get("alignment") == item.alignment_answer,
                "musicality_ok": given.get("musicality") == item.musicality_answer,
            }
        )
    return rows


def headphone_check_get_for_annotator(
    *, annotator: User | AnonymousUser, check_id: UUID | str
) -> HeadphoneCheck | None:
    """The annotator's own headphone check by public id; anyone else's looks like a missing one."""
    if not isinstance(annotator, User):
        return None
    try:
        public_id = check_id if isinstance(check_id, UUID) else UUID(str(check_id))
    except ValueError:
        return None
    return HeadphoneCheck.objects.filter(annotator=annotator, public_id=public_id).select_related("campaign").first()
