"""Reads from the catalog beyond a single ``.get()``.

``campaign_get_for_staff`` and ``campaign_get_for_annotator`` are the only ways a view or an API
gets a campaign: every page and endpoint that takes a campaign id goes through one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from annotate import joins
from annotate.catalog.audio import PRESENTATION_PROFILE
from annotate.catalog.models import Campaign, CampaignImport, Clip, ClipRendition, Comparison
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


_CAMPAIGN_TABLE = joins.Table(Campaign, "p")


def campaign_get_for_annotator(*, user: User, campaign_id: int) -> Campaign:
    """An active campaign open to this account (no members, or the account is one; staff always).

    Every hand-out starts here, so it is plain SQL (``annotate.joins``) with ``_open_to``'s rule written out.

    Raises:
        NotFoundError: draft, closed, unknown, not open to the account, or an anonymous user; all look the same.
    """
    from annotate.people.models import CampaignMembership

    if not getattr(user, "is_authenticated", False):
        raise NotFoundError("No such campaign open for listening.")
    members = CampaignMembership._meta.db_table
    sql = (
        f"SELECT {joins.select_list(_CAMPAIGN_TABLE)} FROM {Campaign._meta.db_table} p "
        "WHERE p.id = %(campaign)s AND p.status = %(active)s AND (%(staff)s "
        f"OR NOT EXISTS (SELECT 1 FROM {members} m WHERE m.campaign_id = p.id) "
        f"OR EXISTS (SELECT 1 FROM {members} m WHERE m.campaign_id = p.id AND m.user_id = %(user)s))"
    )
    params = {
        "campaign": campaign_id,
        "active": Campaign.Status.ACTIVE,
        "staff": user_is_staff(user),
        "user": getattr(user, "pk", None),
    }
    found = joins.first(sql, params, _CAMPAIGN_TABLE)
    if found is None:
        raise NotFoundError("No such campaign open for listening.")
    (campaign,), _ = found
    assert isinstance(campaign, Campaign)
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


@dataclass(frozen=True)
class CampaignProgress:
    comparisons: int
    votes: int
    # Comparisons that have reached the campaign's overlap target.
    complete: int
    overlap_target: int
    # Votes counted toward the target: a comparison counts at most ``overlap_target`` of its votes.
    capped_votes: int

    @property
    def fraction(self) -> float:
        """Votes toward the target over the votes the target asks for (a comparison counts up to the target)."""
        wanted = self.comparisons * self.overlap_target
        return 0.0 if wanted == 0 else self.capped_votes / wanted


def campaign_progress(*, campaigns: list[Campaign]) -> dict[int, CampaignProgress]:
    """Comparisons, votes (all voters, imported labels included) and completion per campaign, in one query."""
    targets = {campaign.pk: campaign.overlap_target for campaign in campaigns}
    rows = (
        Comparison.objects.filter(campaign_id__in=targets)
        .annotate(n_votes=Count("votes"))
        .values_list("campaign_id", "n_votes")
    )
    totals: dict[int, list[int]] = {pk: [0, 0, 0, 0] for pk in targets}
    for campaign_id, n_votes in rows:
        total = totals[campaign_id]
        target = targets[campaign_id]
        total[0] += 1
        total[1] += n_votes
        total[2] += n_votes >= target
        total[3] += min(n_votes, target)
    return {
        pk: CampaignProgress(comparisons=t[0], votes=t[1], complete=t[2], overlap_target=targets[pk], capped_votes=t[3])
        for pk, t in totals.items()
    }


def comparison_list_for_campaign(*, campaign: Campaign, gold: bool | None = None) -> QuerySet[Comparison]:
    """A campaign's comparisons in id order, with their instruction and vote count; ``gold`` filters on gold items."""
    comparisons = Comparison.objects.filter(campaign=campaign)
    if gold is not None:
        is_gold = ~Q(gold_alignment="") | ~Q(gold_musicality="")
        comparisons = comparisons.filter(is_gold) if gold else comparisons.exclude(is_gold)
    return comparisons.select_related("instruction").annotate(n_votes=Count("votes")).order_by("pk")


def campaign_import_get_for_staff(*, user: User, campaign_import_id: int) -> CampaignImport:
    """One import, for staff.

    Raises:
        PermissionDeniedError: the user is not staff (checked first). NotFoundError: no such import.
    """
    if not user_is_staff(user):
        raise PermissionDeniedError("This is for staff only.")
    found = CampaignImport.objects.select_related("campaign").filter(pk=campaign_import_id).first()
    if found is None:
        raise NotFoundError(f"No import with id {campaign_import_id}.")
    return found


def campaign_import_list(*, campaign: Campaign) -> QuerySet[CampaignImport]:
    return CampaignImport.objects.filter(campaign=campaign).select_related("requested_by")
