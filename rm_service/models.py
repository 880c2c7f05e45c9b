"""Django models of the reward-model service: the model registry, training runs, scoring jobs, predictions.

The rows here are the source of truth for every piece of reward-model work. A Celery message only carries
a row id; the task claims the row with a conditional ``queued -> running`` update before doing anything, so
a redelivered or duplicated message is a no-op.

Activation is global: at most one ModelVersion is active at a time (a partial unique index enforces it).
The scoring API uses it; on activation its predictions are computed for every active campaign. A version
trained on one campaign's export still remembers that campaign (``campaign``) for the dashboard's default.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.catalog.models import Campaign, Comparison


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class ModelVersion(models.Model):
    name = models.CharField(max_length=200)
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="model_versions",
        help_text="The campaign whose export trained it (informational; activation is global).",
    )
    checkpoint_path = models.CharField(max_length=500, help_text="Checkpoint directory (safetensors + JSON).")
    config = models.JSONField(default=dict, help_text="RewardModelConfig as saved in the checkpoint.")
    encoder = models.CharField(max_length=40, default="builtin")
    encoder_id = models.CharField(max_length=200, blank=True)
    # {"export_id": 3} or {"jsonl": "/data/train.jsonl", "sha256": "..."}, plus pseudo-label data if any.
    training_data = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict, blank=True, help_text="Test metrics from rm_service evaluate.")
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_model_version"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (v{self.pk})"


class TrainingRun(models.Model):
    class Source(models.TextChoices):
        EXPORT = "export", "Campaign export"
        JSONL = "jsonl", "JSONL file"
        PRETRAIN = "pretrain", "Stage 1 on the platform's clips"

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    name = models.CharField(max_length=200, blank=True)
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_runs"
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    export_id = models.PositiveIntegerField(null=True, blank=True)
    train_jsonl = models.CharField(max_length=500)
    validation_jsonl = models.CharField(max_length=500, blank=True)
    test_jsonl = models.CharField(max_length=500, blank=True)
    pseudo_jsonl = models.CharField(max_length=500, blank=True, help_text="Optional stage-1 pseudo-label data.")
    dataset_root = models.CharField(max_length=500)
    data_sha256 = models.CharField(max_length=64, blank=True)
    encoder = models.CharField(max_length=40, default="builtin")
    preset = models.CharField(max_length=20, default="tiny")
    config = models.JSONField(default=dict, blank=True, help_text="Training/model overrides.")
    resume_from = models.CharField(max_length=500, blank=True, help_text="Checkpoint to continue from.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Live progress, written by the worker; "history" keeps (step, loss, val) points for the chart.
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    val_metrics = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True)
    # Crash safety: the worker refreshes heartbeat_at; a reaper fails runs whose worker stopped beating.
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    resumable = models.BooleanField(default=False)
    output_dir = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    model_version = models.OneToOneField(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="training_run"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES


class ScoringJob(models.Model):
    class Kind(models.TextChoices):
        SCORE = "score", "Score"
        RANK = "rank", "Rank"
        PREDICT = "predict", "Campaign predictions"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="scoring_jobs")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # Resolved items: [{"audio": path, "audio_sha256": ..., "text", "lyrics", "ref_audio": path|None}, ...]
    items = models.JSONField(default=list, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    progress = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    worker = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} job {self.public_id} ({self.status})"


class Prediction(models.Model):
    """The model's scores for both clips of a comparison and its predicted preference per question.

    ``*_prob_a`` is the Bradley-Terry probability that clip_a is preferred: sigmoid(score_a - score_b).
    """

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    alignment_a = models.FloatField()
    alignment_b = models.FloatField()
    musicality_a = models.FloatField()
    musicality_b = models.FloatField()
    alignment_choice = models.CharField(max_length=1, choices=Comparison.Side.choices)
    musicality_choice = models.CharField(max_length=1, choices=Comparison.Side.choices)
    alignment_prob_a = models.FloatField()
    musicality_prob_a = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comparison", "model_version"], name="prediction_once_per_version"),
            models.CheckConstraint(
                condition=Q(alignment_prob_a__gte=0)
                & Q(alignment_prob_a__lte=1)
                & Q(musicality_prob_a__gte=0)
                & Q(musicality_prob_a__lte=1),
                name="prediction_probabilities_0_1",
            ),
        ]

    def __str__(self) -> str:
        return f"prediction of v{self.model_version_id} on comparison {self.comparison_id}"

    def probability(self, question: str) -> float:
        """Probability of the predicted side for ``question`` ("alignment" or "musicality")."""
        prob_a = getattr(self, f"{question}_prob_a")
        return prob_a if getattr(self, f"{question}_choice") == "a" else 1.0 - prob_a
