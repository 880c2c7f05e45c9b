"""Stored agreement snapshots, for campaigns too large to recompute on every page view."""

from __future__ import annotations

from django.db import models

from annotate.catalog.models import Campaign


class AgreementSnapshot(models.Model):
    """The latest full agreement report of a campaign (unfiltered), refreshed by a debounced Celery task."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="agreement_snapshot")
    # The JSON of ``selectors.agreement_report``, exactly what the API returns.
    report = models.JSONField(default=dict)
    vote_count = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(null=True, blank=True)
    compute_seconds = models.FloatField(null=True, blank=True)
    # Set when a refresh is queued, cleared when one finishes; tells the dashboard one is on its way.
    refresh_requested_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"agreement snapshot of {self.campaign}"
