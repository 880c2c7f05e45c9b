"""Shared access rules: staff pages answer 403 to annotators, never crash or leak.

``user_is_staff`` is the one staff check; the page decorator, the DRF permission and the
permission-checked fetches (``annotate.catalog.selectors``) all call it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

View = Callable[..., HttpResponse]


def user_is_staff(user: object) -> bool:
    """A logged-in staff account (session or token). Anonymous users and annotators are not."""
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False))


def staff_required(view: View) -> View:
    """Anonymous users go to the login page; logged-in non-staff get a 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not user_is_staff(request.user):
            raise PermissionDenied("This page is for staff only.")
        return view(request, *args, **kwargs)

    return wrapper


class IsStaff(BasePermission):
    """Staff users, by session or by API token."""

    message = "This endpoint is for staff only."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return user_is_staff(request.user)


def request_user(request: Request) -> User:
    """The logged-in account of an API request (its permission classes have already required one)."""
    if not isinstance(request.user, User) or not request.user.is_authenticated:
        raise NotAuthenticated()
    return request.user


def token_scope(request: object) -> str | None:
    """The scope of the scoped API token a request authenticated with; None for sessions and legacy tokens."""
    from annotate.people.models import ApiToken

    auth = getattr(request, "auth", None)
    return auth.scope if isinstance(auth, ApiToken) else None


def is_service_account(user: object) -> bool:
    """Whether ``user`` is a pipeline's service account (no query when token authentication loaded it)."""
    if not getattr(user, "is_authenticated", False):
        return False
    try:
        return user.service_account is not None  # type: ignore[attr-defined]
    except ObjectDoesNotExist:
        return False


class CanAnnotate(BasePermission):
    """People who annotate: never a service account, and a scoped token only with the ``annotating`` scope."""

    message = "This account or token can't annotate (a scoring token or a service account)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        scope = token_scope(request)
        if scope is not None:
            return scope == "annotating"  # never a service account's: refused when the token is made
        return bool(request.user and request.user.is_authenticated) and not is_service_account(request.user)
