"""Labeling: annotator reservations (assignments), votes and skips.

Votes are stored in canonical orientation: choice "a" means the comparison's clip_a,
whichever side it was shown on; ``presented_swapped`` records the display order.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from annotate.catalog.models import ClipRendition, Comparison


def _new_pseudonym() -> str:
    return "ann-" + secrets.token_hex(6)


class AnnotatorProfile(models.Model):
    """Per-annotator data that is not Django auth's business."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotator")
    # Stable, pseudonymous id written into exports instead of the username.
    pseudonym = models.CharField(max_length=32, unique=True, default=_new_pseudonym, editable=False)
    # Set when staff (or create_annotator) chose the password; cleared when the annotator picks their own.
    must_change_password = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.pseudonym


class Assignment(models.Model):
    """A time-limited reservation of one comparison for one annotator."""

    class Status(models.TextChoices):
        LIVE = "live", "Live"
        VOTED = "voted", "Voted"
        SKIPPED = "skipped", "Skipped"
        EXPIRED = "expired", "Expired"

    # Public id used in URLs, so annotators can't enumerate other assignments.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    # True when clip_b is shown on the left as "A".
    swapped = models.BooleanField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LIVE, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "comparison"],
                condition=Q(status="live"),
                name="assignment_one_live_per_annotator_comparison",
            ),
        ]
        indexes = [models.Index(fields=["comparison", "status"])]

    def __str__(self) -> str:
        return f"assignment {self.public_id}"


class AudioDelivery(models.Model):
    """Audio the server delivered for one side of an assignment: the evidence a vote's listening claims must fit.

    One row per audio response. Django streams the bytes itself and advances ``bytes_delivered`` as each chunk
    is handed to the server, so an aborted download counts only what left; behind nginx
    (``X-Accel-Redirect``) Django can't see the stream and records the requested range when it answers.
    Rows of one (assignment, side) are merged into covered seconds when a vote arrives.
    """

    class Side(models.TextChoices):
        A = "A", "A (left)"
        B = "B", "B (right)"
        R = "R", "Reference"

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="deliveries")
    side = models.CharField(max_length=1, choices=Side.choices)
    rendition = models.ForeignKey(ClipRendition, on_delete=models.PROTECT, related_name="+")
    first_byte = models.BigIntegerField()
    bytes_delivered = models.BigIntegerField(default=0)
    # Seconds of the rendition covered by [first_byte, first_byte + bytes_delivered).
    start_s = models.FloatField()
    end_s = models.FloatField()
    via_accel_redirect = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["assignment", "side"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_s__gte=0) & Q(end_s__gte=F("start_s")), name="delivery_interval_ordered"
            ),
            models.CheckConstraint(
                condition=Q(first_byte__gte=0) & Q(bytes_delivered__gte=0), name="delivery_bytes_nonnegative"
            ),
            models.CheckConstraint(condition=Q(side__in=["A", "B", "R"]), name="delivery_side_valid"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.side} {self.start_s:.1f}-{self.end_s:.1f} s of {self.assignment}"


class Choice(models.TextChoices):
    A = "a", "clip_a"
    B = "b", "clip_b"
    # No preference (CMI-Pref's "both"/"neither"): only where the campaign allows it, or imported labels.
    TIE = "t", "no preference"


class ExternalAnnotator(models.Model):
    """An annotator whose labels were imported (CMI-Pref rows): one account per (source, user id).

    The account is pseudonymous, inactive and has an unusable password: it can't log in and is never
    offered work. Its votes count in agreement, exports and model-vs-human comparisons like any other.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="external_annotator")
    source = models.CharField(max_length=200, help_text="The dataset's `source`, e.g. cmi-arena-annotation.")
    external_id = models.CharField(max_length=200, help_text="The dataset's `user id`.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="external_annotator_once_per_source_id"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class Vote(models.Model):
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="votes")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="votes")
    assignment = models.OneToOneField(Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="vote")
    alignment_choice = models.CharField(max_length=1, choices=Choice.choices)
    alignment_confidence = models.PositiveSmallIntegerField()
    musicality_choice = models.CharField(max_length=1, choices=Choice.choices)
    musicality_confidence = models.PositiveSmallIntegerField()
    feedback = models.TextField(blank=True)
    presented_swapped = models.BooleanField()
    # Merged play intervals, in seconds of each canonical clip (seeks don't count).
    listened_a_s = models.FloatField(default=0)
    listened_b_s = models.FloatField(default=0)
    # Measured by the server, reservation to vote; analytics, QC flags and exports read this one.
    time_on_task_s = models.FloatField(null=True, blank=True)
    # What the page reported, kept for comparison only.
    client_time_on_task_s = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When the reservation was handed out.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "comparison"], name="vote_once_per_annotator_comparison"),
            models.CheckConstraint(
                condition=Q(alignment_confidence__gte=1) & Q(alignment_confidence__lte=5),
                name="vote_alignment_confidence_1_5",
            ),
            models.CheckConstraint(
                condition=Q(musicality_confidence__gte=1) & Q(musicality_confidence__lte=5),
                name="vote_musicality_confidence_1_5",
            ),
            models.CheckConstraint(
                condition=Q(alignment_choice__in=["a", "b", "t"]) & Q(musicality_choice__in=["a", "b", "t"]),
                name="vote_choices_a_b_tie",
            ),
            models.CheckConstraint(
                condition=Q(listened_a_s__gte=0) & Q(listened_b_s__gte=0), name="vote_listened_nonnegative"
            ),
        ]

    def __str__(self) -> str:
        return f"vote {self.pk} on comparison {self.comparison_id}"


class Skip(models.Model):
    class Reason(models.TextChoices):
        BROKEN_AUDIO = "broken_audio", "Broken audio"
        CANT_JUDGE = "cant_judge", "Can't judge"
        OTHER = "other", "Other"

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="skips")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skips")
    assignment = models.OneToOneField(Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="skip")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "comparison"], name="skip_once_per_annotator_comparison"),
        ]

    def __str__(self) -> str:
        return f"skip {self.pk} ({self.reason})"


class Adjudication(models.Model):
    """Staff's resolution of a disputed comparison: the label exports and the model-vs-human view use for it.

    One per comparison; the votes stay as cast. Choices are canonical (clip_a / clip_b / no preference).
    """

    comparison = models.OneToOneField(Comparison, on_delete=models.CASCADE, related_name="adjudication")
    alignment_choice = models.CharField(max_length=1, choices=Choice.choices)
    musicality_choice = models.CharField(max_length=1, choices=Choice.choices)
    note = models.TextField(blank=True, help_text="Why staff decided so (kept with the label).")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    decided_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(alignment_choice__in=["a", "b", "t"]) & Q(musicality_choice__in=["a", "b", "t"]),
                name="adjudication_choices_a_b_tie",
            ),
        ]

    def __str__(self) -> str:
        return f"adjudication of comparison {self.comparison_id}"


class ComparisonSlot(models.Model):
    """The assignment queue's view of one comparison: its votes and live reservations, kept by the database.

    Triggers (``annotate/labeling/counters.py``) update this row in the same transaction as every vote,
    reservation, release and deletion, whichever code path writes them (services, imports, admin,
    fixtures). ``live`` counts reservations with status "live", lapsed or not; ``next_expiry`` is the
    earliest of their deadlines, so the queue can tell a comparison whose room is only held by a lapsed
    reservation (reclaimed by the caller that needs the slot, or by the periodic reclaim task).
    """

    comparison = models.OneToOneField(Comparison, primary_key=True, on_delete=models.CASCADE, related_name="slot")
    campaign = models.ForeignKey("catalog.Campaign", on_delete=models.CASCADE, related_name="+", db_index=False)
    votes = models.IntegerField(default=0)
    live = models.IntegerField(default=0)
    next_expiry = models.DateTimeField(null=True, blank=True)
    # Fixed random order among comparisons with as many votes: spreads the queue over instructions.
    tiebreak = models.IntegerField(default=0)
    # Votes per question and canonical choice (a = clip_a, b = clip_b, t = no preference): the
    # ``value_counts`` rows agreement statistics read instead of scanning the votes.
    alignment_a = models.IntegerField(default=0)
    alignment_b = models.IntegerField(default=0)
    alignment_t = models.IntegerField(default=0)
    musicality_a = models.IntegerField(default=0)
    musicality_b = models.IntegerField(default=0)
    musicality_t = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["campaign", "votes", "live", "tiebreak"], name="slot_queue_order")]

    def __str__(self) -> str:
        return f"slot of comparison {self.comparison_id}: {self.votes} votes, {self.live} live"


class CampaignCounter(models.Model):
    """Per-campaign totals, kept by the same triggers; summed over a few shards so votes don't queue on one row."""

    SHARDS = 8

    campaign = models.ForeignKey("catalog.Campaign", on_delete=models.CASCADE, related_name="+")
    shard = models.PositiveSmallIntegerField()
    comparisons = models.IntegerField(default=0)
    votes = models.IntegerField(default=0)
    # Comparisons with fewer votes than the campaign's overlap target.
    open_comparisons = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "shard"], name="campaign_counter_shard_once")]

    def __str__(self) -> str:
        return f"counters of campaign {self.campaign_id} (shard {self.shard})"


class CampaignPattern(models.Model):
    """How many of a campaign's comparisons have each vote split: the histogram agreement statistics need.

    A row per (votes, alignment a / tie, musicality a / tie) split present in the campaign (b = votes - a - tie),
    sharded like ``CampaignCounter``. Kept by the vote triggers: a vote moves its comparison from its old
    split to its new one. Comparisons without votes are not counted. Krippendorff's alpha, pairwise
    agreement and their bootstrap need exactly this (``agreement.selectors.campaign_patterns``), so they
    cost the same at any campaign size.
    """

    # No database constraint: a vote deleted while its campaign is deleted may re-add a row the cascade has
    # already removed; it is then an orphan no campaign reads, instead of a failed delete.
    campaign = models.ForeignKey("catalog.Campaign", on_delete=models.CASCADE, related_name="+", db_constraint=False)
    shard = models.PositiveSmallIntegerField()
    votes = models.IntegerField()
    alignment_a = models.IntegerField()
    alignment_t = models.IntegerField()
    musicality_a = models.IntegerField()
    musicality_t = models.IntegerField()
    comparisons = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "shard", "votes", "alignment_a", "alignment_t", "musicality_a", "musicality_t"],
                name="campaign_pattern_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.comparisons} comparisons with {self.votes} votes in campaign {self.campaign_id}"
