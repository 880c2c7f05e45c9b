"""Reads for people: accounts, tokens, invitations, and progress per annotator and per campaign."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Exists, Max, OuterRef, QuerySet
from django.utils import timezone

from annotate.agreement.selectors import annotator_quality, campaign_votes
from annotate.catalog.models import Campaign
from annotate.errors import NotFoundError, PermissionDeniedError
from annotate.labeling.models import AnnotatorProfile, ExternalAnnotator, Skip, Vote
from annotate.people.models import ApiToken, CampaignMembership, Invitation, ServiceAccount
from annotate.permissions import user_is_staff

# Campaign ETA: the vote rate is measured over this window before now.
RATE_WINDOW = timedelta(days=7)


def _require_staff(user: object) -> None:
    if not user_is_staff(user):
        raise PermissionDeniedError("This is for staff only.")


def annotators() -> QuerySet[User]:
    """People who annotate: not staff, not service accounts, not imported (external) annotators."""
    return (
        User.objects.filter(is_staff=False)
        .exclude(Exists(ServiceAccount.objects.filter(user=OuterRef("pk"))))
        .exclude(Exists(ExternalAnnotator.objects.filter(user=OuterRef("pk"))))
        .order_by("username")
    )


def password_change_required(*, user: User) -> bool:
    """Whether staff chose this account's password and its owner hasn't changed it yet (read once, at login: the
    middleware keeps the answer in the session; token authentication reads the profile it joins)."""
    return AnnotatorProfile.objects.filter(user=user, must_change_password=True).exists()


def user_get_for_staff(*, staff: User, user_id: int) -> User:
    _require_staff(staff)
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFoundError(f"No account with id {user_id}.")
    return user


def api_token_get_for_staff(*, staff: User, token_id: int) -> ApiToken:
    _require_staff(staff)
    token = ApiToken.objects.select_related("user").filter(pk=token_id).first()
    if token is None:
        raise NotFoundError(f"No token with id {token_id}.")
    return token


def api_token_list() -> QuerySet[ApiToken]:
    return ApiToken.objects.select_related("user", "created_by").order_by("revoked_at", "-created_at")


def service_account_list() -> QuerySet[ServiceAccount]:
    return ServiceAccount.objects.select_related("user").order_by("user__username")


def people_overview() -> list[dict[str, Any]]:
    """Every annotator with totals across campaigns and their invitation state."""
    pending = Invitation.objects.filter(user=OuterRef("pk"), accepted_at__isnull=True, expires_at__gt=timezone.now())
    rows = annotators().annotate(
        n_votes=Count("votes", distinct=True),
        n_skips=Count("skips", distinct=True),
        last_vote=Max("votes__created_at"),
        invited=Exists(pending),
    )
    return [
        {
            "user": user,
            "votes": user.n_votes,
            "skips": user.n_skips,
            "last_active": max((d for d in (user.last_vote, user.last_login) if d), default=None),
            "invitation_pending": user.invited,
            "campaigns": list(user.memberships.values_list("campaign__name", flat=True)),
        }
        for user in rows.prefetch_related("memberships")
    ]


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def campaign_annotator_progress(*, campaign: Campaign) -> list[dict[str, Any]]:
    """Per annotator of a campaign (members, and anyone who voted or skipped): votes, skips, median time on task,
    quality-control flags, last active."""
    votes = Vote.objects.filter(comparison__campaign=campaign)
    times: dict[int, list[float]] = {}
    last: dict[int, datetime] = {}
    counts: dict[int, int] = {}
    for annotator_id, seconds, created in votes.values_list("annotator_id", "time_on_task_s", "created_at"):
        counts[annotator_id] = counts.get(annotator_id, 0) + 1
        if seconds is not None:
            times.setdefault(annotator_id, []).append(seconds)
        last[annotator_id] = max(created, last.get(annotator_id, created))
    skips = dict(
        Skip.objects.filter(comparison__campaign=campaign)
        .values("annotator_id")
        .annotate(n=Count("pk"))
        .values_list("annotator_id", "n")
    )
    flags = {
        q.annotator_id: q.flags
        for q in annotator_quality(votes=campaign_votes(campaign_id=campaign.pk), campaign_id=campaign.pk)
    }
    members = set(CampaignMembership.objects.filter(campaign=campaign).values_list("user_id", flat=True))
    ids = members | counts.keys() | skips.keys()
    users = User.objects.filter(pk__in=ids)
    return [
        {
            "user": user,
            "member": user.pk in members,
            "votes": counts.get(user.pk, 0),
            "skips": skips.get(user.pk, 0),
            "median_time_s": _median(times.get(user.pk, [])),
            "flags": flags.get(user.pk, []),
            "last_active": last.get(user.pk),
        }
        for user in users.order_by("username")
    ]


def campaign_progress(*, campaign: Campaign, now: datetime | None = None) -> dict[str, Any]:
    """How far the campaign is from its overlap target, and when it will get there at the recent vote rate.

    Votes beyond the target on a comparison don't count towards it. The rate is the counted votes of the last
    ``RATE_WINDOW`` (or since the first vote, if later) per hour; no recent vote means no estimate.
    """
    now = now or timezone.now()
    target = campaign.overlap_target
    per_comparison = campaign.comparisons.annotate(n=Count("votes"))
    comparisons = per_comparison.count()
    done = sum(min(n, target) for n in per_comparison.values_list("n", flat=True))
    complete = per_comparison.filter(n__gte=target).count()
    needed = comparisons * target
    votes = Vote.objects.filter(comparison__campaign=campaign)
    since = now - RATE_WINDOW
    first = votes.order_by("created_at").values_list("created_at", flat=True).first()
    start = max(since, first) if first else since
    recent = votes.filter(created_at__gte=start).count()
    hours = max((now - start).total_seconds() / 3600, 1.0)  # at least an hour, so one quick burst isn't a rate
    rate = recent / hours
    remaining = needed - done
    eta = None if remaining <= 0 or rate == 0 else now + timedelta(hours=remaining / rate)
    return {
        "comparisons": comparisons,
        "overlap_target": target,
        "votes_needed": needed,
        "votes_toward_target": done,
        "votes_total": votes.count(),
        "comparisons_complete": complete,
        "fraction": done / needed if needed else None,
        "votes_per_hour": round(rate, 3),
        "rate_window_start": start,
        "remaining": remaining,
        "eta": eta,
        "done": needed > 0 and remaining <= 0,
    }


def campaign_members(*, campaign: Campaign) -> QuerySet[User]:
    return User.objects.filter(memberships__campaign=campaign).order_by("username")
