"""People: invitations, campaign membership, service accounts and their scoped API tokens.

Secrets (invitation links, token keys) are shown once and stored only as their sha256.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.catalog.models import Campaign

# Scoped keys start with this, so authentication knows which table to look in (one query per request).
SCOPED_KEY_PREFIX = "cmi_"

# The error code (and message) of a request refused because staff chose the account's password and its owner hasn't
# changed it yet (``AnnotatorProfile.must_change_password``; annotate/people/middleware.py).
PASSWORD_CHANGE_REQUIRED = "password_change_required"
PASSWORD_CHANGE_MESSAGE = "Staff set this account's password: change it at /accounts/password_change/ to continue."


def token_digest(key: str) -> str:
    """What is stored of a token key or an invitation link token."""
    return hashlib.sha256(key.encode()).hexdigest()


class Scope(models.TextChoices):
    SCORING = "scoring", "Scoring (reward-model API)"
    ANNOTATING = "annotating", "Annotating (hand-out, vote, skip)"


class ServiceAccount(models.Model):
    """An account for a pipeline: it authenticates only by token, is never staff and never an annotator."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_account")
    description = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"service account {self.user_id}"


class ApiToken(models.Model):
    """A revocable API key with one scope. Sent as ``Authorization: Token <key>``; only its sha256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    scope = models.CharField(max_length=20, choices=Scope.choices)
    name = models.CharField(max_length=200, blank=True)
    key_sha256 = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="The key's first characters, to recognise it in lists.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=["scoring", "annotating"]), name="api_token_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} token {self.prefix}…"


class Invitation(models.Model):
    """A one-time link that lets a new annotator set their password; it expires after INVITATION_TTL_HOURS."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations")
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"invitation of user {self.user_id}"


class CampaignMembership(models.Model):
    """An annotator's place in a campaign. A campaign with members is visible and handed out to them only."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "user"], name="membership_once_per_campaign_user")]

    def __str__(self) -> str:
        return f"user {self.user_id} in campaign {self.campaign_id}"
