"""Staff pages for people: annotators and invitations, service accounts and tokens, campaign people and progress;
and the invitation page a new annotator opens."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from annotate.catalog.selectors import campaign_get_for_staff
from annotate.errors import ApplicationError
from annotate.people import middleware, selectors, services
from annotate.people.models import Scope
from annotate.permissions import request_user, staff_required


def invitation_url(request: HttpRequest, token: str) -> str:
    return request.build_absolute_uri(reverse("people:invitation", args=[token]))


@never_cache
@staff_required
@require_http_methods(["GET", "POST"])
def people_list(request: HttpRequest) -> HttpResponse:
    """Annotators with their totals; invite a new one (the one-time link is shown once, here)."""
    link = ""
    if request.method == "POST":
        try:
            _, token = services.invitation_create(
                username=request.POST.get("username", "").strip(),
                email=request.POST.get("email", "").strip(),
                created_by=request_user(request),  # type: ignore[arg-type]
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            link = invitation_url(request, token)
    context = {"people": selectors.people_overview(), "invite_link": link, "ttl_hours": _ttl()}
    return render(request, "people/people.html", context)


def _ttl() -> int:
    from django.conf import settings

    return int(settings.INVITATION_TTL_HOURS)


@never_cache
@staff_required
@require_POST
def person_action(request: HttpRequest, user_id: int, action: str) -> HttpResponse:
    """deactivate / activate an account, or issue a fresh invitation link."""
    user = selectors.user_get_for_staff(staff=request.user, user_id=user_id)  # type: ignore[arg-type]
    link = ""
    try:
        if action in ("deactivate", "activate"):
            services.annotator_set_active(user=user, active=action == "activate")
            messages.info(request, f"{user.username} is {'active' if user.is_active else 'deactivated'}.")
        elif action == "reinvite":
            _, token = services.invitation_renew(user=user, created_by=request_user(request))  # type: ignore[arg-type]
            link = invitation_url(request, token)
        else:
            messages.error(request, f"Unknown action {action!r}.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    if link:
        context = {"people": selectors.people_overview(), "invite_link": link, "ttl_hours": _ttl()}
        return render(request, "people/people.html", context)
    return redirect("people:list")


@never_cache
@staff_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """Service accounts and scoped tokens: create an account, issue a token (its key shown once), revoke."""
    new_key = ""
    if request.method == "POST":
        staff = request_user(request)  # type: ignore[arg-type]
        try:
            if request.POST.get("action") == "service_account":
                account = services.service_account_create(
                    username=request.POST.get("username", "").strip(),
                    description=request.POST.get("description", ""),
                    created_by=staff,
                )
                _, new_key = services.api_token_create(
                    user=account.user, scope=Scope.SCORING, name="first token", created_by=staff
                )
            else:
                user = selectors.user_get_for_staff(staff=staff, user_id=int(request.POST.get("user") or 0))
                _, new_key = services.api_token_create(
                    user=user, scope=request.POST.get("scope", ""), name=request.POST.get("name", ""), created_by=staff
                )
        except (ApplicationError, ValueError) as exc:
            messages.error(request, getattr(exc, "message", "Pick an account."))
    context = {
        "tokens": selectors.api_token_list(),
        "accounts": selectors.service_account_list(),
        "annotators": selectors.annotators().filter(is_active=True),
        "scopes": Scope.choices,
        "new_key": new_key,
    }
    return render(request, "people/tokens.html", context)


@staff_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = selectors.api_token_get_for_staff(staff=request.user, token_id=token_id)  # type: ignore[arg-type]
    services.api_token_revoke(token=token)
    messages.info(request, f"Token {token.prefix}… of {token.user.username} is revoked.")
    return redirect("people:tokens")


@never_cache
@staff_required
@require_http_methods(["GET", "POST"])
def campaign_people(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """A campaign's progress with its ETA, its annotators' progress, and its members (add or remove)."""
    campaign = campaign_get_for_staff(user=request.user, campaign_id=campaign_id)
    if request.method == "POST":
        staff = request_user(request)  # type: ignore[arg-type]
        try:
            user = selectors.user_get_for_staff(staff=staff, user_id=int(request.POST.get("user") or 0))
            if request.POST.get("action") == "remove":
                services.campaign_member_remove(campaign=campaign, user=user)
            else:
                services.campaign_member_add(campaign=campaign, user=user, added_by=staff)
        except (ApplicationError, ValueError) as exc:
            messages.error(request, getattr(exc, "message", "Pick an annotator."))
        return redirect("people:campaign", campaign_id=campaign.pk)
    context = {
        "campaign": campaign,
        "progress": selectors.campaign_progress(campaign=campaign),
        "rows": selectors.campaign_annotator_progress(campaign=campaign),
        "members": selectors.campaign_members(campaign=campaign),
        "candidates": selectors.annotators().filter(is_active=True),
    }
    return render(request, "people/campaign.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """The one-time link: set a password, which activates the account and logs in."""
    try:
        invite = services.invitation_get_open(token=token)
    except ApplicationError as exc:
        return render(request, "people/invitation_invalid.html", {"message": exc.message}, status=404)
    form = SetPasswordForm(invite.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_accept(token=token, password=form.cleaned_data["new_password1"])
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.info(request, "Welcome! Your password is set.")
            return redirect("home")
    return render(request, "people/invitation.html", {"form": form, "invited": invite.user})


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's page; changing the password here also lifts "must change password" (staff chose the old one)."""

    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        response = super().form_valid(form)
        services.password_change_complete(user=form.user)
        middleware.forget(self.request)
        return response

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["password_change_required"] = bool(self.request.session.get(middleware.SESSION_KEY))
        return context


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's page; a password set through a reset link is the owner's own, so the flag is lifted too."""

    def form_valid(self, form: SetPasswordForm[User]) -> HttpResponse:  # type: ignore[override]
        response = super().form_valid(form)
        services.password_change_complete(user=form.user)
        middleware.forget(self.request)
        return response
