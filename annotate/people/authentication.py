"""``Authorization: Token <key>`` for scoped API tokens (``ApiToken``), falling back to DRF's legacy tokens."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied

from annotate.people.models import (
    PASSWORD_CHANGE_MESSAGE,
    PASSWORD_CHANGE_REQUIRED,
    SCOPED_KEY_PREFIX,
    ApiToken,
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
        token = Token.objects.select_related("user", "user__service_account", "user__annotator").filter(key=key).first()
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        _refuse_until_password_changed(token.user)
        return token.user, token


def _refuse_until_password_changed(user: Any) -> None:
    profile = getattr(user, "annotator", None)  # loaded with the token (None: no annotator profile), no query
    if profile is not None and profile.must_change_password:
        raise PermissionDenied(PASSWORD_CHANGE_MESSAGE, code=PASSWORD_CHANGE_REQUIRED)
