"""Exports: one row per requested dataset export of a campaign; the files live under EXPORT_ROOT."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.catalog.models import Campaign


class Export(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="exports")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # Normalised ExportParameters.to_dict(): what was asked for, seed included, so a run can be repeated.
    parameters = models.JSONField(default=dict)
    progress = models.FloatField(default=0.0, help_text="Fraction done, 0 to 1.")
    progress_message = models.CharField(max_length=200, blank=True)
    # Both relative to EXPORT_ROOT; set only when the export succeeded.
    result_path = models.CharField(max_length=300, blank=True)
    archive_path = models.CharField(max_length=300, blank=True)
    # Counts per split, test-split shortfall and similar facts shown in the UI and the API.
    summary = models.JSONField(default=dict, blank=True)
    # Annotators flagged by quality control when the export was requested, whose votes it leaves out:
    # the set the requester saw, fixed then (None: decided when the build starts, as for older rows).
    excluded_annotator_ids = models.JSONField(null=True, blank=True, default=None)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Touched with every progress update; a running export whose heartbeat is old lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__gte=0) & Q(progress__lte=1), name="export_progress_0_1"),
            # A complete export always says where its files are.
            models.CheckConstraint(
                condition=~Q(status="succeeded") | ~Q(result_path=""), name="export_succeeded_has_result"
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} of campaign {self.campaign_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)
