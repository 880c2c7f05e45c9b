"""A password that staff chose must be changed before anything else is used.

The flag lives on the annotator profile (``must_change_password``). It is copied into the session at login, so a
request of an unflagged account costs no query here: the session is read anyway to find the user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from annotate.errors import error_body
from annotate.people import selectors
from annotate.people.models import PASSWORD_CHANGE_MESSAGE, PASSWORD_CHANGE_REQUIRED

SESSION_KEY = "password_change_required"
# Pages a flagged account may still open (URL names), beside static files.
ALLOWED_URL_NAMES = ("password_change", "password_change_done", "logout", "login")


def remember_at_login(sender: Any, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: one query per login, none per request afterwards."""
    if request is None or not hasattr(request, "session"):
        return
    if selectors.password_change_required(user=user):  # type: ignore[arg-type]
        request.session[SESSION_KEY] = True
    else:
        request.session.pop(SESSION_KEY, None)


def forget(request: HttpRequest) -> None:
    """The account's owner set a new password: let them through again."""
    request.session.pop(SESSION_KEY, None)


def _allowed(path: str) -> bool:
    if settings.STATIC_URL and path.startswith(settings.STATIC_URL):
        return True
    return path in {reverse(name) for name in ALLOWED_URL_NAMES}


class PasswordChangeRequiredMiddleware:
    """A flagged, logged-in account's page requests are redirected to the password change page; its API requests
    answer 403 ``password_change_required`` in the one error shape. (Token clients get the same answer from
    ``ScopedTokenAuthentication``.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.session.get(SESSION_KEY) and not _allowed(request.path_info):
            user: AbstractBaseUser | AnonymousUser = request.user
            if user.is_authenticated:
                if request.path_info.startswith("/api/"):
                    return JsonResponse(
                        error_body(code=PASSWORD_CHANGE_REQUIRED, message=PASSWORD_CHANGE_MESSAGE), status=403
                    )
                return HttpResponseRedirect(reverse("password_change"))
        return self.get_response(request)
