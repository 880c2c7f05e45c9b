"""Reads from the catalog beyond a single ``.get()``."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from annotate.catalog.models import Campaign


def campaign_list_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Campaign]:
    """Staff see every campaign; annotators see the active ones."""
    campaigns = Campaign.objects.order_by("-created_at")
    if getattr(user, "is_staff", False):
        return campaigns
    return campaigns.filter(status=Campaign.Status.ACTIVE)
