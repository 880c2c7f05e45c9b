"""Reads from the catalog beyond a single ``.get()``."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from annotate.catalog.audio import PRESENTATION_PROFILE
from annotate.catalog.models import Campaign, Clip, ClipRendition, Comparison


def campaign_list_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Campaign]:
    """Staff see every campaign; annotators see the active ones."""
    campaigns = Campaign.objects.order_by("-created_at")
    if getattr(user, "is_staff", False):
        return campaigns
    return campaigns.filter(status=Campaign.Status.ACTIVE)


def clip_rendition_for(*, clip: Clip, campaign: Campaign) -> ClipRendition | None:
    """The rendition annotators of ``campaign`` hear for ``clip``, if it has been made."""
    return ClipRendition.objects.filter(
        clip=clip,
        profile=PRESENTATION_PROFILE,
        target_lufs=campaign.presentation_loudness_lufs,
        ceiling_dbtp=campaign.presentation_true_peak_dbtp,
    ).first()


def campaign_clips(*, campaign: Campaign) -> QuerySet[Clip]:
    """Every clip an annotator of ``campaign`` can hear: both sides of each comparison and the references."""
    comparisons = Comparison.objects.filter(campaign=campaign)
    return Clip.objects.filter(
        Q(pk__in=comparisons.values("clip_a"))
        | Q(pk__in=comparisons.values("clip_b"))
        | Q(pk__in=comparisons.values("instruction__reference_clip"))
    ).order_by("pk")
