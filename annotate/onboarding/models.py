"""Onboarding: what a campaign asks of an annotator before real work, what each annotator did, and withdrawal.

Every step is optional and set by staff per campaign (``CampaignOnboarding``); a campaign without that row asks
for nothing. The annotator's side is stored as evidence: the consent version and time, the practice answers and
score, the headphone-check trials, responses and score. Withdrawal keeps the votes but marks them out of every
statistic, export and model comparison until staff restore it.
"""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.catalog.models import Campaign, Clip

# The paper's protocol (appendix D.1), shown on the instructions page unless the campaign writes its own.
DEFAULT_CONSENT_TEXT = (
    "You are invited to judge pairs of generated music clips for a research dataset. For each pair you say which "
    "clip follows the instruction better and which sounds more like finished music, how confident you are, and "
    "why, in a sentence or two.\n\n"
    "We store your answers, your listening times and a pseudonymous annotator id; never your name or e-mail. "
    "The answers are released as a research dataset under a non-commercial licence.\n\n"
    "Taking part is voluntary. You can withdraw at any time from the campaign's onboarding page: your votes are "
    "then left out of every statistic, export and model comparison."
)


class CampaignOnboarding(models.Model):
    """Which onboarding steps a campaign requires. No row: the campaign asks for nothing."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="onboarding")
    consent_required = models.BooleanField(default=True)
    consent_text = models.TextField(default=DEFAULT_CONSENT_TEXT)
    # Staff bump the version when the text changes in substance: earlier acceptances then no longer count.
    consent_version = models.CharField(max_length=40, default="1")
    instructions_required = models.BooleanField(default=True)
    # Extra campaign-specific notes shown above the protocol and glossary.
    instructions_note = models.TextField(blank=True)
    headphone_check_required = models.BooleanField(default=False)
    headphone_trials = models.PositiveSmallIntegerField(default=6)
    # Milne et al. (2021) pass at 5 of 6 Huggins-pitch trials (chance is 1 in 3 per trial).
    headphone_pass_mark = models.PositiveSmallIntegerField(default=5)
    practice_required = models.BooleanField(default=False)
    # Fraction of practice answers (two per item) that must be right.
    practice_pass_fraction = models.FloatField(default=0.75)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(headphone_trials__gte=1) & Q(headphone_trials__lte=20), name="onboarding_headphone_trials"
            ),
            models.CheckConstraint(
                condition=Q(headphone_pass_mark__gte=1) & Q(headphone_pass_mark__lte=models.F("headphone_trials")),
                name="onboarding_headphone_pass_mark_within_trials",
            ),
            models.CheckConstraint(
                condition=Q(practice_pass_fraction__gte=0) & Q(practice_pass_fraction__lte=1),
                name="onboarding_practice_pass_fraction_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"onboarding of {self.campaign}"

    @property
    def consent_sha256(self) -> str:
        return hashlib.sha256(self.consent_text.encode()).hexdigest()


class PracticeItem(models.Model):
    """A practice comparison with known answers, as displayed (A left, B right), and why."""

    class Side(models.TextChoices):
        A = "A", "A"
        B = "B", "B"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="practice_items")
    position = models.PositiveSmallIntegerField(default=0)
    prompt = models.TextField()
    lyrics = models.TextField(blank=True)
    clip_a = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="+")
    clip_b = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="+")
    alignment_answer = models.CharField(max_length=1, choices=Side.choices)
    musicality_answer = models.CharField(max_length=1, choices=Side.choices)
    explanation = models.TextField(help_text="Shown after answering: the audible evidence for the known answers.")

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(condition=~Q(clip_a=models.F("clip_b")), name="practice_distinct_clips"),
            models.CheckConstraint(
                condition=Q(alignment_answer__in=["A", "B"]) & Q(musicality_answer__in=["A", "B"]),
                name="practice_answers_a_b",
            ),
        ]

    def __str__(self) -> str:
        return f"practice item {self.pk} of {self.campaign}"


class ConsentRecord(models.Model):
    """An annotator accepted one version of a campaign's consent text."""

    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consents")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="consents")
    version = models.CharField(max_length=40)
    # The exact text accepted, by hash, so a silent edit of the text is detectable.
    text_sha256 = models.CharField(max_length=64)
    accepted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "campaign", "version"], name="consent_once_per_version"),
        ]

    def __str__(self) -> str:
        return f"consent v{self.version} by {self.annotator_id} for {self.campaign_id}"


class InstructionsRead(models.Model):
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "campaign"], name="instructions_read_once"),
        ]

    def __str__(self) -> str:
        return f"instructions read by {self.annotator_id} for {self.campaign_id}"


class PracticeAttempt(models.Model):
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="practice_attempts")
    # {item_id: {"alignment": "A", "musicality": "B"}} as submitted.
    answers = models.JSONField()
    correct = models.PositiveSmallIntegerField()
    total = models.PositiveSmallIntegerField()
    passed = models.BooleanField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(correct__lte=models.F("total")), name="practice_correct_within_total"),
        ]

    def __str__(self) -> str:
        return f"practice attempt {self.pk}: {self.correct}/{self.total}"


class HeadphoneCheck(models.Model):
    """One headphone screening: Huggins-pitch trials generated from ``seed``; answers never leave the server."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="headphone_checks")
    seed = models.BigIntegerField()
    # [{"target": 1..3, "f0": Hz}, ...]: which interval of each trial carries the pitch.
    trials = models.JSONField()
    responses = models.JSONField(null=True, blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    passed = models.BooleanField(null=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"headphone check {self.public_id}"


class Withdrawal(models.Model):
    """An annotator withdrew from a campaign. Active while ``restored_at`` is null; votes are kept but not counted."""

    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="withdrawals")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="withdrawals")
    reason = models.TextField(blank=True)
    withdrawn_at = models.DateTimeField()
    restored_at = models.DateTimeField(null=True, blank=True)
    restored_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    restore_note = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "campaign"],
                condition=Q(restored_at__isnull=True),
                name="withdrawal_one_active_per_annotator_campaign",
            ),
        ]
        indexes = [models.Index(fields=["campaign", "restored_at"])]

    def __str__(self) -> str:
        return f"withdrawal of {self.annotator_id} from {self.campaign_id}"
