"""Catalog: campaigns, instructions, clips and the comparisons annotators judge."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Greatest, Least


class AssignmentStrategy(models.TextChoices):
    BALANCED = "balanced", "Balanced: fewest votes first"
    UNCERTAIN = "uncertain", "Uncertain: small model margin or split votes first"
    INFORMATIVE = "informative", "Informative: pairs that most narrow the leaderboard's intervals"


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    overlap_target = models.PositiveSmallIntegerField(default=3, help_text="Votes wanted per comparison.")
    # The listening requirement per clip is the smaller of the two when both are set
    # (e.g. "10 s or 50% of the clip, whichever is less"); null disables that half.
    min_listen_seconds = models.FloatField(null=True, blank=True, default=10.0)
    min_listen_fraction = models.FloatField(null=True, blank=True, default=0.5)
    feedback_required = models.BooleanField(default=True)
    # Offer "no preference" beside A and B on the listening page; stored as a tie, a third category in agreement.
    allow_no_preference = models.BooleanField(
        default=False, help_text='Annotators may answer "no preference" (stored as a tie).'
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    # Which comparison an annotator gets next among those with room (annotate.labeling.strategies).
    assignment_strategy = models.CharField(
        max_length=12,
        choices=AssignmentStrategy.choices,
        default=AssignmentStrategy.BALANCED,
        help_text="Which comparison with room is handed out next; the overlap target holds under every strategy.",
    )
    license = models.CharField(
        max_length=100, default="CC-BY-NC-SA-4.0", help_text="Licence written into exported data cards."
    )
    # Annotators hear loudness-matched renditions: louder usually wins a preference test.
    presentation_loudness_lufs = models.FloatField(
        default=-18.0, help_text="Integrated loudness (ITU-R BS.1770, LUFS) every clip is presented at."
    )
    presentation_true_peak_dbtp = models.FloatField(
        default=-1.0, help_text="True-peak ceiling (dBTP) of the presented clips; louder peaks are limited."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(presentation_loudness_lufs__gte=-40) & Q(presentation_loudness_lufs__lte=-8),
                name="campaign_presentation_loudness_range",
            ),
            models.CheckConstraint(
                condition=Q(presentation_true_peak_dbtp__gte=-12) & Q(presentation_true_peak_dbtp__lte=0),
                name="campaign_presentation_true_peak_range",
            ),
            models.CheckConstraint(condition=Q(overlap_target__gte=1), name="campaign_overlap_target_positive"),
            models.CheckConstraint(
                condition=Q(assignment_strategy__in=AssignmentStrategy.values),
                name="campaign_assignment_strategy_valid",
            ),
            models.CheckConstraint(
                condition=Q(min_listen_seconds__isnull=True) | Q(min_listen_seconds__gte=0),
                name="campaign_min_listen_seconds_nonnegative",
            ),
            models.CheckConstraint(
                condition=Q(min_listen_fraction__isnull=True)
                | (Q(min_listen_fraction__gte=0) & Q(min_listen_fraction__lte=1)),
                name="campaign_min_listen_fraction_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def required_listen_seconds(self, clip_duration: float) -> float:
        """Seconds of a clip that must be heard before a vote is accepted."""
        candidates = []
        if self.min_listen_seconds is not None:
            candidates.append(self.min_listen_seconds)
        if self.min_listen_fraction is not None:
            candidates.append(self.min_listen_fraction * clip_duration)
        if not candidates:
            return 0.0
        return min(min(candidates), clip_duration)


class Clip(models.Model):
    """An audio file, stored once under MEDIA_ROOT and identified by its content hash."""

    sha256 = models.CharField(max_length=64, unique=True)
    file = models.FileField(upload_to="clips/", max_length=300)
    format = models.CharField(max_length=10, help_text="Container format, e.g. WAV, FLAC, OGG, MP3.")
    duration_s = models.FloatField()
    sample_rate = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField()
    # The generating system is not here: it belongs to where the clip is used (Comparison.system_a/_b), so
    # the same audio can serve several campaigns under each one's naming.
    is_vocal = models.BooleanField(null=True, help_text="Vocal (true), instrumental (false) or unknown.")
    original_name = models.CharField(max_length=500, blank=True)
    # Waveform peaks for the listening page, computed at import: a list of max-abs values in [0, 1].
    peaks = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(duration_s__gt=0), name="clip_duration_positive"),
            models.CheckConstraint(condition=Q(channels__gte=1), name="clip_channels_positive"),
        ]

    def __str__(self) -> str:
        return f"clip {self.sha256[:12]}"


class ClipRendition(models.Model):
    """What annotators hear instead of the imported file: one codec profile, loudness-matched, no tags.

    Stored content-addressed under ``MEDIA_ROOT/renditions/``. Exports and the reward model keep using
    ``Clip.file``, the original.
    """

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="renditions")
    # Codec, container, sample rate, channels and bitrate in one key, e.g. "mp3-cbr192k-44100hz-2ch".
    profile = models.CharField(max_length=64)
    target_lufs = models.FloatField()
    ceiling_dbtp = models.FloatField()
    file = models.FileField(upload_to="renditions/", max_length=300)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    duration_s = models.FloatField()
    # Constant bitrate: second t of audio starts at byte audio_offset_bytes + t * byte_rate.
    audio_offset_bytes = models.PositiveIntegerField()
    byte_rate = models.PositiveIntegerField()
    loudness_lufs = models.FloatField(help_text="Measured on the encoded rendition.")
    true_peak_dbtp = models.FloatField(help_text="Measured on the encoded rendition (4x oversampled).")
    gain_db = models.FloatField()
    limited = models.BooleanField(help_text="The true-peak limiter engaged.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "profile", "target_lufs", "ceiling_dbtp"], name="rendition_once_per_clip_and_profile"
            ),
            models.CheckConstraint(condition=Q(byte_rate__gt=0), name="rendition_byte_rate_positive"),
        ]

    def __str__(self) -> str:
        return f"rendition {self.profile} {self.target_lufs:g} LUFS of {self.clip}"

    def seconds_at(self, byte: int) -> float:
        """Seconds of audio that precede ``byte`` (clamped to the rendition)."""
        return min(self.duration_s, max(0.0, (byte - self.audio_offset_bytes) / self.byte_rate))


class Instruction(models.Model):
    """Prompt text, optional lyrics and an optional reference clip. Modality is derived."""

    class Modality(models.TextChoices):
        TEXT = "T", "Text"
        LYRICS = "L", "Text + lyrics"
        AUDIO = "A", "Text + reference audio"
        COMBINED = "C", "Text + lyrics + reference audio"

    prompt_id = models.CharField(max_length=200, blank=True, db_index=True, help_text="External 'prompt id'.")
    text = models.TextField()
    lyrics = models.TextField(blank=True)
    reference_clip = models.ForeignKey(
        Clip, null=True, blank=True, on_delete=models.PROTECT, related_name="referenced_by"
    )
    # sha256 over (text, lyrics, reference sha): one row per distinct instruction.
    content_hash = models.CharField(max_length=64, unique=True)
    modality = models.GeneratedField(
        expression=Case(
            When(Q(reference_clip__isnull=False) & ~Q(lyrics=""), then=Value("C")),
            When(Q(reference_clip__isnull=False), then=Value("A")),
            When(~Q(lyrics=""), then=Value("L")),
            default=Value("T"),
        ),
        output_field=models.CharField(max_length=1, choices=Modality.choices),
        db_persist=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        head = self.text[:60] + ("…" if len(self.text) > 60 else "")
        return f"[{self.prompt_id or self.pk}] {head}"


class Comparison(models.Model):
    """Two clips generated for the same instruction, judged within a campaign."""

    class Side(models.TextChoices):
        A = "a", "A (clip_a)"
        B = "b", "B (clip_b)"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="comparisons")
    instruction = models.ForeignKey(Instruction, on_delete=models.PROTECT, related_name="comparisons")
    clip_a = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="+")
    clip_b = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="+")
    # The systems that generated clip_a and clip_b, as this campaign names them (``model_a``/``model_b``).
    # Never shown to annotators.
    system_a = models.CharField(max_length=200, blank=True, db_index=True, help_text="System of clip_a.")
    system_b = models.CharField(max_length=200, blank=True, db_index=True, help_text="System of clip_b.")
    gold_alignment = models.CharField(max_length=1, choices=Side.choices, blank=True)
    gold_musicality = models.CharField(max_length=1, choices=Side.choices, blank=True)
    is_attention_check = models.BooleanField(default=False)
    # The dataset split an imported row carried (train/validation/test), kept for reference; "" when not imported.
    source_split = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(clip_a=F("clip_b")), name="comparison_distinct_clips"),
            models.UniqueConstraint(
                F("campaign"),
                F("instruction"),
                Least("clip_a", "clip_b"),
                Greatest("clip_a", "clip_b"),
                name="comparison_unordered_pair_once",
            ),
            models.CheckConstraint(
                condition=Q(gold_alignment__in=["", "a", "b"]) & Q(gold_musicality__in=["", "a", "b"]),
                name="comparison_gold_values",
            ),
        ]

    def __str__(self) -> str:
        return f"comparison {self.pk}"

    @property
    def is_gold(self) -> bool:
        return bool(self.gold_alignment or self.gold_musicality)


class CampaignImport(models.Model):
    """One import started from the browser or the API: a manifest plus its audio (an archive or a server folder).

    A worker claims the row, unpacks the archive safely and runs ``campaign_import`` (all or nothing); every
    problem of the manifest is kept with its line number.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="imports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    manifest_name = models.CharField(max_length=255, help_text="The uploaded manifest's file name.")
    archive_name = models.CharField(max_length=255, blank=True, help_text="The uploaded archive's file name.")
    # A folder under one of IMPORT_SERVER_ROOTS (absolute, resolved), when the audio is on the server.
    server_folder = models.CharField(max_length=1000, blank=True)
    progress = models.FloatField(default=0.0, help_text="Fraction done, 0 to 1.")
    progress_message = models.CharField(max_length=200, blank=True)
    # [{"line": n, "message": "..."}] from ImportValidationError: why nothing was imported.
    problems = models.JSONField(default=list, blank=True)
    # Counts of a successful import (comparisons, clips, votes...).
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Touched with every progress update; a running import whose heartbeat is old lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="campaign_import_progress_0_1"
            ),
            # The audio comes from exactly one place.
            models.CheckConstraint(
                condition=(Q(archive_name="") & ~Q(server_folder="")) | (~Q(archive_name="") & Q(server_folder="")),
                name="campaign_import_one_audio_source",
            ),
        ]

    def __str__(self) -> str:
        return f"import {self.pk} into campaign {self.campaign_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)
