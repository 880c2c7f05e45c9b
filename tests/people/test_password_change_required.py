"""A password staff chose (create_annotator, the Django admin) must be changed at first login: until then pages
redirect to the password change page and the API answers 403 ``password_change_required``."""

from __future__ import annotations

import io
import re

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from annotate.labeling.models import AnnotatorProfile
from annotate.people.services import api_token_create, invitation_create
from tests import factories

NEW_PASSWORD = "Dana-own-pass-2026"


def _create_annotator(*args: str) -> str:
    """Run the command; return the one-time password it printed (asserting it says it must be changed)."""
    out = io.StringIO()
    call_command("create_annotator", *args, stdout=out)
    assert "must be changed at first login" in out.getvalue()
    match = re.search(r"one-time password: (\S+)", out.getvalue())
    assert match, out.getvalue()
    return match.group(1)


def _flagged(username: str) -> bool:
    return AnnotatorProfile.objects.get(user__username=username).must_change_password


def _login(username: str, password: str) -> Client:
    """Log in through the real login page, as a person would."""
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content
    return client


def _refused(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 403 and response.json()["error"]["code"] == "password_change_required"


@pytest.mark.django_db
def test_it_flags_the_password_create_annotator_prints(bob) -> None:  # type: ignore[no-untyped-def]
    _create_annotator("dana")
    assert _flagged("dana")
    AnnotatorProfile.objects.create(user=bob)
    _create_annotator("bob", "--reset")
    assert _flagged("bob")


@pytest.mark.django_db
def test_it_sends_a_flagged_annotator_to_the_password_change_page_until_changed(alice, campaign) -> None:  # type: ignore[no-untyped-def]
    factories.make_comparison(campaign)
    password = _create_annotator("dana")
    dana = User.objects.get(username="dana")
    _, key = api_token_create(user=dana, scope="annotating", created_by=alice)
    legacy_key = Token.objects.create(user=dana).key
    client = _login("dana", password)
    listen = f"/campaigns/{campaign.pk}/listen/"
    next_assignment = f"/api/v1/campaigns/{campaign.pk}/next-assignment"

    for page in ("/", listen):
        response = client.get(page)
        assert response.status_code == 302 and response["Location"] == "/accounts/password_change/", page
    assert _refused(client.get(next_assignment))
    assert _refused(client.get("/api/v1/campaigns"))
    assert _refused(Client().get(next_assignment, HTTP_AUTHORIZATION=f"Token {key}"))
    assert _refused(Client().get(next_assignment, HTTP_AUTHORIZATION=f"Token {legacy_key}"))
    change_page = client.get("/accounts/password_change/")
    assert change_page.status_code == 200 and b"Staff set your current password" in change_page.content

    changed = client.post(
        "/accounts/password_change/",
        {"old_password": password, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert changed.status_code == 302 and changed["Location"] == "/accounts/password_change/done/"
    assert not _flagged("dana")
    assert client.get("/").status_code == 200  # the same session, still logged in
    assert client.get(listen).status_code == 200
    assert client.get(next_assignment).status_code == 200
    assert Client().get(next_assignment, HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert Client().get(next_assignment, HTTP_AUTHORIZATION=f"Token {legacy_key}").status_code == 200
    assert _login("dana", NEW_PASSWORD).get("/").status_code == 200


@pytest.mark.django_db
def test_a_flagged_annotator_can_still_log_out(client: Client) -> None:
    password = _create_annotator("dana")
    client = _login("dana", password)
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/")["Location"].startswith("/accounts/login/")  # logged out, not sent to change a password


@pytest.mark.django_db
def test_a_wrong_old_password_changes_nothing(client: Client) -> None:
    password = _create_annotator("dana")
    client = _login("dana", password)
    response = client.post(
        "/accounts/password_change/",
        {"old_password": "not-it", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200 and _flagged("dana")
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_a_password_set_through_an_invitation_is_not_flagged() -> None:
    invitation, token = invitation_create(username="erin", created_by=None)
    client = Client()
    accepted = client.post(f"/invite/{token}/", {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert accepted.status_code == 302
    assert not _flagged("erin")
    assert client.get("/").status_code == 200
    assert _login("erin", NEW_PASSWORD).get("/").status_code == 200


@pytest.mark.django_db
def test_a_password_reset_link_lifts_the_flag() -> None:
    _create_annotator("dana", "--email", "dana@example.org")
    client = Client()
    assert client.post("/accounts/password_reset/", {"email": "dana@example.org"}).status_code == 302
    link = next(w for w in mail.outbox[0].body.split() if "/accounts/reset/" in w).split("testserver", 1)[1]
    form_url = client.get(link)["Location"]  # Django swaps the token for a session marker
    done = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    assert not _flagged("dana")
    assert _login("dana", NEW_PASSWORD).get("/").status_code == 200


@pytest.mark.django_db
def test_a_password_staff_set_in_the_django_admin_is_flagged(alice, bob) -> None:  # type: ignore[no-untyped-def]
    admin = Client()
    admin.force_login(alice)
    chosen = {"password1": "Staff-chosen-2026", "password2": "Staff-chosen-2026"}

    assert admin.post(f"/admin/auth/user/{bob.pk}/password/", chosen).status_code == 302
    assert _flagged("bob")
    added = admin.post("/admin/auth/user/add/", {"username": "fred", "usable_password": "true", **chosen})
    assert added.status_code == 302 and _flagged("fred")
    # Staff changing their own password in the admin are never flagged (nor given an annotator profile).
    assert admin.post(f"/admin/auth/user/{alice.pk}/password/", chosen).status_code == 302
    assert not AnnotatorProfile.objects.filter(user=alice).exists()
    assert _login("bob", "Staff-chosen-2026").get("/").status_code == 302


@pytest.mark.django_db
def test_it_costs_no_query_for_an_unflagged_annotator(bob) -> None:  # type: ignore[no-untyped-def]
    """The home page costs the same queries with and without the middleware."""
    client = _login("bob", "bob-pass-123")
    without = [m for m in settings.MIDDLEWARE if not m.endswith("PasswordChangeRequiredMiddleware")]
    assert len(without) == len(settings.MIDDLEWARE) - 1
    counts = []
    for middleware in (settings.MIDDLEWARE, without):
        with override_settings(MIDDLEWARE=middleware), CaptureQueriesContext(connection) as queries:
            assert client.get("/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
