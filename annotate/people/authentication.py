"""``Authorization: Token <key>`` for scoped API tokens (``ApiToken``), falling back to DRF's legacy tokens."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied

from annotate import joins
from annotate.labeling.models import AnnotatorProfile
from annotate.people.models import (
    PASSWORD_CHANGE_MESSAGE,
    PASSWORD_CHANGE_REQUIRED,
    SCOPED_KEY_PREFIX,
    ApiToken,
    ServiceAccount,
    token_digest,
)


class ScopedTokenAuthentication(TokenAuthentication):
    """A scoped token (``cmi_…``) authenticates as its account with ``request.auth`` set to the ``ApiToken``
    (scope checks read it); a revoked one is refused. Other keys go to DRF's ``Token`` table as before. Either
    way one query, which also loads whether the account is a service account (``is_service_account``) and whether
    staff chose its password (then every request is a 403 ``password_change_required`` until its owner changes it
    on the password change page)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        if not key.startswith(SCOPED_KEY_PREFIX):
            return self._legacy(key)
        token = ApiToken.objects.select_related("user", "user__annotator").filter(key_sha256=token_digest(key)).first()
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise AuthenticationFailed("This token was revoked.")
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        _refuse_until_password_changed(token.user)
        # At most one write per minute per token: enough for "last used" without a write per request.
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def _legacy(self, key: str) -> tuple[Any, Any]:
        token = _legacy_token(key)
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        _refuse_until_password_changed(token.user)
        return token.user, token


_LEGACY_TABLES = (
    joins.Table(Token, "t"),
    joins.Table(User, "u"),
    joins.Table(ServiceAccount, "s"),
    joins.Table(AnnotatorProfile, "f"),
)
_LEGACY_SQL = f"""
SELECT {joins.select_list(*_LEGACY_TABLES)}
FROM {Token._meta.db_table} t
JOIN {User._meta.db_table} u ON u.id = t.user_id
LEFT JOIN {ServiceAccount._meta.db_table} s ON s.user_id = u.id
LEFT JOIN {AnnotatorProfile._meta.db_table} f ON f.user_id = u.id
WHERE t.key = %s
"""


def _legacy_token(key: str) -> Token | None:
    """DRF's token with its user, service account and annotator profile: one query (``annotate.joins``; every
    API request makes it, and the ORM spent more CPU writing it than PostgreSQL running it)."""
    found = joins.first(_LEGACY_SQL, [key], *_LEGACY_TABLES)
    if found is None:
        return None
    (token, user, service_account, profile), _ = found
    assert isinstance(token, Token) and user is not None
    joins.link_reverse(user, "service_account", service_account)
    joins.link_reverse(user, "annotator", profile)
    joins.link(token, "user", user)
    return token


def _refuse_until_password_changed(user: Any) -> None:
    profile = getattr(user, "annotator", None)  # loaded with the token (None: no annotator profile), no query
    if profile is not None and profile.must_change_password:
        raise PermissionDenied(PASSWORD_CHANGE_MESSAGE, code=PASSWORD_CHANGE_REQUIRED)
