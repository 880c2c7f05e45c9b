"""Reads from the catalog beyond a single ``.get()``.

``campaign_get_for_staff`` and ``campaign_get_for_annotator`` are the only ways a view or an API
gets a campaign: every page and endpoint that takes a campaign id goes through one of them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Exists, OuterRef, Q, QuerySet

from annotate.catalog.audio import PRESENTATION_PROFILE
from annotate.catalog.models import Campaign, Clip, ClipRendition, Comparison
from annotate.errors import NotFoundError, PermissionDeniedError
from annotate.permissions import user_is_staff

User = AbstractBaseUser | AnonymousUser


def _open_to(user: User) -> Any:
    """Campaigns without members are open to every annotator; a campaign with members only to them."""
    from annotate.people.models import CampaignMembership

    members = CampaignMembership.objects.filter(campaign=OuterRef("pk"))
    return ~Exists(members) | Exists(members.filter(user_id=getattr(user, "pk", None) or 0))


def campaign_list_for_user(*, user: User) -> QuerySet[Campaign]:
    """Staff see every campaign; annotators see the active ones open to them (no members, or they are one)."""
    campaigns = Campaign.objects.order_by("-created_at")
    if user_is_staff(user):
        return campaigns
    return campaigns.filter(_open_to(user), status=Campaign.Status.ACTIVE)


def campaign_get_for_staff(*, user: User, campaign_id: int) -> Campaign:
    """Any campaign, whatever its status, for staff.

    Raises:
        PermissionDeniedError: the user is not staff (checked first, so annotators can't probe ids).
        NotFoundError: no campaign has this id.
    """
    if not user_is_staff(user):
        raise PermissionDeniedError("This is for staff only.")
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFoundError(f"No campaign with id {campaign_id}.")
    return campaign


def campaign_get_for_annotator(*, user: User, campaign_id: int) -> Campaign:
    """An active campaign open to this account (no members, or the account is one; staff always).

    Raises:
        NotFoundError: draft, closed, unknown, not open to the account, or an anonymous user; all look the same.
    """
    campaigns = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.ACTIVE)
    campaign = (campaigns if user_is_staff(user) else campaigns.filter(_open_to(user))).first()
    if campaign is None or not getattr(user, "is_authenticated", False):
        raise NotFoundError("No such campaign open for listening.")
    return campaign


def comparison_get_for_staff(*, user: User, comparison_id: int) -> Comparison:
    """Any comparison with its instruction and clips, for staff (403 for others, checked first; 404 unknown)."""
    if not user_is_staff(user):
        raise PermissionDeniedError("This is for staff only.")
    comparison = (
        Comparison.objects.select_related("campaign", "instruction__reference_clip", "clip_a", "clip_b")
        .filter(pk=comparison_id)
        .first()
    )
    if comparison is None:
        raise NotFoundError(f"No comparison with id {comparison_id}.")
    return comparison


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
