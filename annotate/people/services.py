"""Writes for people: service accounts and scoped tokens, invitations, passwords that must be changed, deactivation,
campaign membership."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from annotate.catalog.models import Campaign
from annotate.errors import ApplicationError, NotFoundError
from annotate.labeling.models import AnnotatorProfile
from annotate.people.models import (
    SCOPED_KEY_PREFIX,
    ApiToken,
    CampaignMembership,
    Invitation,
    Scope,
    ServiceAccount,
    token_digest,
)

_USERNAME = re.compile(r"^[\w.@+-]{1,150}$")


class PeopleError(ApplicationError):
    """A refused account, token, invitation or membership change (400 unless said otherwise)."""


class PeopleConflict(PeopleError):
    """Well-formed, but not allowed for this kind of account (scope vs account, superuser, yourself)."""

    status = 409
    code = "not_allowed_for_account"


class InvitationInvalid(PeopleError):
    status = 404
    code = "invitation_invalid"


def _check_new_username(username: object) -> str:
    if not isinstance(username, str) or not _USERNAME.match(username):
        raise PeopleError("username: 1-150 letters, digits or @.+-_ characters.", field="username")
    if User.objects.filter(username__iexact=username).exists():
        raise PeopleError(f"username {username!r} is taken.", code="username_taken", status=409, field="username")
    return username


@transaction.atomic
def service_account_create(*, username: str, description: str = "", created_by: User | None) -> ServiceAccount:
    """A pipeline account: active, never staff, no usable password (it can't log in to pages), never handed work."""
    user = User(username=_check_new_username(username), is_staff=False, is_active=True)
    user.set_unusable_password()
    user.save()
    return ServiceAccount.objects.create(user=user, description=description[:300], created_by=created_by)


def api_token_create(*, user: User, scope: str, name: str = "", created_by: User | None) -> tuple[ApiToken, str]:
    """A new token and its key (shown once). Scoring tokens belong to service accounts; annotating tokens to
    annotators (people who vote through the API), never to a service account."""
    if scope not in Scope.values:
        raise PeopleError(f"scope must be one of {', '.join(Scope.values)}.", field="scope")
    is_service = ServiceAccount.objects.filter(user=user).exists()
    if scope == Scope.SCORING and not is_service:
        raise PeopleConflict("Scoring tokens are for service accounts; create one first.", field="user")
    if scope == Scope.ANNOTATING and (is_service or user.is_staff or not user.is_active):
        raise PeopleConflict(
            "Annotating tokens are for active annotators (not service or staff accounts).", field="user"
        )
    key = SCOPED_KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, scope=scope, name=name[:200], key_sha256=token_digest(key), prefix=key[:12], created_by=created_by
    )
    return token, key


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    """Revoke at once; a revoked token authenticates nothing. Revoking twice is harmless."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db()
    return token


@transaction.atomic
def invitation_create(*, username: str, email: str = "", created_by: User | None) -> tuple[Invitation, str]:
    """Create an inactive annotator and a one-time link token (returned once) that lets them set a password."""
    user = User(username=_check_new_username(username), email=email[:254], is_active=False)
    user.set_unusable_password()
    user.save()
    AnnotatorProfile.objects.get_or_create(user=user)
    return _new_invitation(user, created_by)


def invitation_renew(*, user: User, created_by: User | None) -> tuple[Invitation, str]:
    """A fresh link for someone who hasn't accepted yet; older links stop working."""
    if user.has_usable_password():
        raise PeopleConflict(f"{user.username} already set a password; use password reset instead.")
    Invitation.objects.filter(user=user, accepted_at__isnull=True).update(expires_at=timezone.now())
    return _new_invitation(user, created_by)


def _new_invitation(user: User, created_by: User | None) -> tuple[Invitation, str]:
    token = secrets.token_urlsafe(32)
    expires = timezone.now() + timedelta(hours=settings.INVITATION_TTL_HOURS)
    invitation = Invitation.objects.create(
        user=user, token_sha256=token_digest(token), created_by=created_by, expires_at=expires
    )
    return invitation, token


def invitation_get_open(*, token: str) -> Invitation:
    """The unused, unexpired invitation of a link token. Unknown, used and expired links all look the same."""
    invitation = (
        Invitation.objects.select_related("user")
        .filter(token_sha256=token_digest(token), accepted_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if invitation is None:
        raise InvitationInvalid("This invitation link is unknown, used or expired; ask staff for a new one.")
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, password: str) -> User:
    """Use a link once: set the password (Django's validators) and activate the account."""
    invitation = invitation_get_open(token=token)
    # Claim the row first, so two submits of one link can't both succeed.
    claimed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(accepted_at=timezone.now())
    if not claimed:
        raise InvitationInvalid("This invitation link was just used.")
    user = invitation.user
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise PeopleError(" ".join(exc.messages), field="password") from exc
    user.set_password(password)
    user.is_active = True
    user.save(update_fields=["password", "is_active"])
    password_change_complete(user=user)  # they chose it themselves
    return user


def password_change_require(*, user: User) -> bool:
    """Staff chose this account's password (create_annotator, the Django admin): it must be changed at the next
    login. Only for annotators; staff, service accounts and accounts without a usable password are left alone.
    Returns whether the account is now flagged."""
    if user.is_staff or not user.has_usable_password() or ServiceAccount.objects.filter(user=user).exists():
        return False
    AnnotatorProfile.objects.update_or_create(user=user, defaults={"must_change_password": True})
    return True


def password_change_complete(*, user: User) -> None:
    """The account's owner set their own password (password change or reset page, invitation link)."""
    AnnotatorProfile.objects.filter(user=user, must_change_password=True).update(must_change_password=False)


def annotator_set_active(*, user: User, active: bool, by: User | None = None) -> User:
    """Deactivate (can't log in, tokens refused, nothing handed out; votes kept) or reactivate an account."""
    if not active and (user.is_superuser or (by is not None and by.pk == user.pk)):
        raise PeopleConflict("Superusers and your own account are deactivated in the Django admin, not here.")
    User.objects.filter(pk=user.pk).update(is_active=active)
    user.refresh_from_db()
    return user


def campaign_member_add(*, campaign: Campaign, user: User, added_by: User | None) -> CampaignMembership:
    if ServiceAccount.objects.filter(user=user).exists() or user.is_staff:
        raise PeopleConflict("Only annotators can be campaign members.", field="user")
    membership, _ = CampaignMembership.objects.get_or_create(
        campaign=campaign, user=user, defaults={"added_by": added_by}
    )
    return membership


def campaign_member_remove(*, campaign: Campaign, user: User) -> None:
    deleted, _ = CampaignMembership.objects.filter(campaign=campaign, user=user).delete()
    if not deleted:
        raise NotFoundError(f"{user.username} is not a member of {campaign.name}.")
