"""People API and pages: scoped tokens, service accounts, invitations, deactivation, membership, progress."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import requests
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone

from annotate.people.models import ApiToken, CampaignMembership, Invitation, ServiceAccount
from annotate.people.services import api_token_create, service_account_create
from tests import factories


def _json(client: Client, method: str, url: str, body: dict | None = None):  # type: ignore[no-untyped-def]
    if method in ("get", "delete") and body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, data=json.dumps(body or {}), content_type="application/json")


# --- Service accounts and tokens -------------------------------------------------------------


@pytest.mark.django_db
def test_it_creates_lists_and_revokes_tokens(client: Client, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)

    account = _json(client, "post", "/api/v1/service-accounts", {"username": "ranker", "description": "nightly"})
    created = _json(client, "post", "/api/v1/tokens", {"user": account.json()["id"], "scope": "scoring", "name": "n"})

    assert account.status_code == 201 and created.status_code == 201
    key = created.json()["key"]
    token = ApiToken.objects.get(pk=created.json()["id"])
    assert (
        token.key_sha256 != key and key not in token.key_sha256 and token.prefix == key[:12] and key.startswith("cmi_")
    )  # only a hash stored
    user = User.objects.get(username="ranker")
    assert not user.is_staff and not user.has_usable_password() and ServiceAccount.objects.filter(user=user).exists()
    assert [t["prefix"] for t in client.get("/api/v1/tokens").json()] == [key[:12]]
    assert "key" not in client.get("/api/v1/tokens").json()[0]
    revoked = client.delete(f"/api/v1/tokens/{token.pk}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert client.delete("/api/v1/tokens/999999").status_code == 404


@pytest.mark.django_db
def test_it_keeps_scopes_to_their_accounts(client: Client, alice, bob) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    account = service_account_create(username="pipe", created_by=alice)

    scoring_for_bob = _json(client, "post", "/api/v1/tokens", {"user": bob.pk, "scope": "scoring"})
    annotating_for_pipe = _json(client, "post", "/api/v1/tokens", {"user": account.user_id, "scope": "annotating"})
    taken = _json(client, "post", "/api/v1/service-accounts", {"username": "pipe"})

    assert scoring_for_bob.status_code == 409 and annotating_for_pipe.status_code == 409
    assert scoring_for_bob.json()["error"]["code"] == "not_allowed_for_account"
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "username_taken"
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
def test_people_operations_are_staff_only(client: Client, bob, charlie, campaign) -> None:  # type: ignore[no-untyped-def]
    client.force_login(charlie)
    calls = [
        ("get", "/api/v1/tokens", None),
        ("post", "/api/v1/tokens", {"user": bob.pk, "scope": "annotating"}),
        ("delete", "/api/v1/tokens/1", None),
        ("post", "/api/v1/service-accounts", {"username": "x"}),
        ("post", "/api/v1/invitations", {"username": "newbie"}),
        ("patch", f"/api/v1/users/{bob.pk}", {"is_active": False}),
        ("get", f"/api/v1/campaigns/{campaign.pk}/members", None),
        ("post", f"/api/v1/campaigns/{campaign.pk}/members", {"user": charlie.pk}),
        ("delete", f"/api/v1/campaigns/{campaign.pk}/members/{bob.pk}", None),
        ("get", f"/api/v1/campaigns/{campaign.pk}/progress", None),
    ]
    for method, url, body in calls:
        assert _json(client, method, url, body).status_code == 403, url
    for page in ("/people/", "/people/tokens/", f"/campaigns/{campaign.pk}/people/"):
        assert client.get(page).status_code == 403, page
    assert client.post(f"/people/{bob.pk}/deactivate").status_code == 403
    assert bob.__class__.objects.get(pk=bob.pk).is_active and not ApiToken.objects.exists()
    assert not CampaignMembership.objects.exists() and not Invitation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_token_scopes_are_enforced_over_http(live_server, alice, bob) -> None:  # type: ignore[no-untyped-def]
    campaign = factories.make_campaign()
    comparison = factories.make_comparison(campaign)
    pipe = service_account_create(username="pipe", created_by=alice).user
    scoring_token, scoring = api_token_create(user=pipe, scope="scoring", created_by=alice)
    _, annotating = api_token_create(user=bob, scope="annotating", created_by=alice)
    base = live_server.url

    def call(method: str, path: str, key: str) -> int:
        response = requests.request(method, base + path, headers={"Authorization": f"Token {key}"}, timeout=30)
        return response.status_code

    audio = f"/api/v1/clips/{comparison.clip_a_id}/audio"
    hand_out = f"/api/v1/campaigns/{campaign.pk}/next-assignment"
    assert call("GET", audio, scoring) == 200
    assert call("GET", audio, annotating) == 403  # an annotating token can't use the reward model
    assert call("POST", "/api/v1/score", annotating) == 403
    assert call("GET", hand_out, scoring) == 403  # a scoring token can't annotate
    assert call("GET", hand_out, annotating) == 200
    assert call("GET", "/api/v1/tokens", scoring) == 403  # nor manage people
    ApiToken.objects.filter(pk=scoring_token.pk).update(revoked_at=timezone.now())
    assert call("GET", audio, scoring) == 401


@pytest.mark.django_db
def test_a_service_account_is_never_handed_work(alice) -> None:  # type: ignore[no-untyped-def]
    from annotate.errors import PermissionDeniedError
    from annotate.labeling.services import assignment_next

    campaign = factories.make_campaign()
    factories.make_comparison(campaign)
    pipe = service_account_create(username="pipe", created_by=alice).user

    with pytest.raises(PermissionDeniedError):
        assignment_next(annotator=pipe, campaign=campaign)


# --- Invitations, passwords, deactivation ----------------------------------------------------


@pytest.mark.django_db
def test_an_invitation_sets_the_password_once(client: Client, alice) -> None:  # type: ignore[no-untyped-def]
    client.force_login(alice)
    created = _json(client, "post", "/api/v1/invitations", {"username": "newbie", "email": "n@example.org"})
    assert created.status_code == 201
    link = created.json()["url"]
    path = link.split("testserver", 1)[1]
    newbie = User.objects.get(username="newbie")
    assert not newbie.is_active and not newbie.has_usable_password()
    assert path.rstrip("/").split("/")[-1] not in Invitation.objects.get().token_sha256
    client.logout()

    assert client.get(path).status_code == 200
    weak = client.post(path, {"new_password1": "abc", "new_password2": "abc"})
    assert weak.status_code == 200 and not User.objects.get(username="newbie").is_active
    done = client.post(path, {"new_password1": "A-long-pass-2026", "new_password2": "A-long-pass-2026"})

    assert done.status_code == 302
    newbie.refresh_from_db()
    assert newbie.is_active and newbie.check_password("A-long-pass-2026")
    assert client.get("/").wsgi_request.user == newbie  # logged in
    client.logout()
    assert client.get(path).status_code == 404  # used
    assert (
        client.post(path, {"new_password1": "Other-pass-2026", "new_password2": "Other-pass-2026"}).status_code == 404
    )
    assert User.objects.get(username="newbie").check_password("A-long-pass-2026")


@pytest.mark.django_db
def test_an_invitation_expires(client: Client, alice, settings) -> None:  # type: ignore[no-untyped-def]
    settings.INVITATION_TTL_HOURS = 2
    client.force_login(alice)
    path = _json(client, "post", "/api/v1/invitations", {"username": "late"}).json()["url"].split("testserver", 1)[1]
    invitation = Invitation.objects.get()
    assert invitation.expires_at - invitation.created_at == pytest.approx(timedelta(hours=2), abs=timedelta(seconds=5))
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    client.logout()

    assert client.get(path).status_code == 404
    assert (
        client.post(path, {"new_password1": "A-long-pass-2026", "new_password2": "A-long-pass-2026"}).status_code == 404
    )
    assert not User.objects.get(username="late").is_active
    assert client.get("/invite/not-a-token/").status_code == 404


@pytest.mark.django_db
def test_password_change_and_reset_pages(client: Client, bob) -> None:  # type: ignore[no-untyped-def]
    bob.email = "bob@example.org"
    bob.save()
    client.force_login(bob)
    assert client.get("/accounts/password_change/").status_code == 200
    changed = client.post(
        "/accounts/password_change/",
        {"old_password": "bob-pass-123", "new_password1": "Bob-new-pass-2026", "new_password2": "Bob-new-pass-2026"},
    )
    assert changed.status_code == 302
    bob.refresh_from_db()
    assert bob.check_password("Bob-new-pass-2026")
    client.logout()

    assert client.post("/accounts/password_reset/", {"email": "bob@example.org"}).status_code == 302
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body
    link = next(w for w in mail.outbox[0].body.split() if "/accounts/reset/" in w)
    form = client.get(link.split("testserver", 1)[1], follow=True)
    assert form.status_code == 200 and b"Choose a new password" in form.content


@pytest.mark.django_db
def test_deactivation_stops_login_and_tokens(client: Client, alice, bob, campaign) -> None:  # type: ignore[no-untyped-def]
    _, key = api_token_create(user=bob, scope="annotating", created_by=alice)
    client.force_login(alice)

    response = _json(client, "patch", f"/api/v1/users/{bob.pk}", {"is_active": False})

    assert response.status_code == 200 and response.json()["is_active"] is False
    assert not Client().login(username="bob", password="bob-pass-123")
    refused = Client().get(f"/api/v1/campaigns/{campaign.pk}/next-assignment", HTTP_AUTHORIZATION=f"Token {key}")
    # Session authentication comes first on this endpoint, so DRF answers a failed token with 403, not 401.
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "authentication_failed"
    assert _json(client, "patch", f"/api/v1/users/{bob.pk}", {"is_active": True}).json()["is_active"] is True


# --- Membership and progress -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_campaign_with_members_is_theirs_only(client: Client, alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign = factories.make_campaign(name="Members only")
    factories.make_comparison(campaign)
    client.force_login(alice)
    assert _json(client, "post", f"/api/v1/campaigns/{campaign.pk}/members", {"user": bob.pk}).status_code == 201
    assert [u["username"] for u in client.get(f"/api/v1/campaigns/{campaign.pk}/members").json()] == ["bob"]

    as_charlie, as_bob = Client(), Client()
    as_charlie.force_login(charlie)
    as_bob.force_login(bob)
    assert b"Members only" not in as_charlie.get("/").content
    assert as_charlie.get(f"/api/v1/campaigns/{campaign.pk}/next-assignment").status_code == 404
    assert b"Members only" in as_bob.get("/").content
    assert as_bob.get(f"/api/v1/campaigns/{campaign.pk}/next-assignment").status_code == 200

    assert client.delete(f"/api/v1/campaigns/{campaign.pk}/members/{bob.pk}").status_code == 204
    assert as_charlie.get(f"/api/v1/campaigns/{campaign.pk}/next-assignment").status_code == 200  # open again


@pytest.mark.django_db
def test_it_reports_progress_per_annotator_and_an_eta(client: Client, alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign = factories.make_campaign(overlap_target=2)
    items = [factories.make_comparison(campaign) for _ in range(4)]
    for item in items[:3]:
        factories.make_vote(item, bob, time_on_task_s=20.0)
    factories.make_vote(items[0], charlie, time_on_task_s=40.0)
    # Spread the votes over the last 4 hours: 4 votes / 4 h = 1 vote per hour; 4 of 8 needed remain.
    from annotate.labeling.models import Vote

    Vote.objects.filter(annotator=bob).update(created_at=timezone.now() - timedelta(hours=4))
    client.force_login(alice)

    body = client.get(f"/api/v1/campaigns/{campaign.pk}/progress").json()

    assert (body["votes_needed"], body["votes_toward_target"], body["comparisons_complete"]) == (8, 4, 1)
    assert body["votes_per_hour"] == pytest.approx(1.0, rel=0.01)
    eta = datetime.fromisoformat(body["eta"].replace("Z", "+00:00"))
    assert eta - timezone.now() == pytest.approx(timedelta(hours=4), abs=timedelta(minutes=2))
    rows = {r["username"]: r for r in body["annotators"]}
    assert (rows["bob"]["votes"], rows["bob"]["median_time_s"], rows["charlie"]["votes"]) == (3, 20.0, 1)
    page = client.get(f"/campaigns/{campaign.pk}/people/").content.decode()
    assert "4</strong> of 8 votes" in page and "the target is reached around" in page


@pytest.mark.django_db
def test_a_scoring_token_cannot_fetch_assignment_audio(alice, bob) -> None:  # type: ignore[no-untyped-def]
    from annotate.labeling.services import assignment_next

    campaign = factories.make_campaign()
    factories.make_comparison(campaign)
    assignment = assignment_next(annotator=bob, campaign=campaign)
    assert assignment is not None
    pipe = service_account_create(username="pipe", created_by=alice).user
    _, scoring = api_token_create(user=pipe, scope="scoring", created_by=alice)
    _, annotating = api_token_create(user=bob, scope="annotating", created_by=alice)
    url = f"/listen/{assignment.public_id}/audio/A"

    assert Client().get(url, HTTP_AUTHORIZATION=f"Token {scoring}").status_code == 403
    assert Client().get(url, HTTP_AUTHORIZATION=f"Token {annotating}").status_code == 200
