"""Resolve a campaign given by name or id on the command line."""

from __future__ import annotations

from django.core.management.base import CommandError

from annotate.catalog.models import Campaign


def campaign_from_arg(value: str) -> Campaign:
    campaign = Campaign.objects.filter(name=value).first()
    if campaign is None and value.isdigit():
        campaign = Campaign.objects.filter(pk=int(value)).first()
    if campaign is None:
        known = ", ".join(f"{c.pk}: {c.name}" for c in Campaign.objects.order_by("pk")[:10]) or "none"
        raise CommandError(f"No campaign named or numbered {value!r}. Known campaigns: {known}.")
    return campaign
