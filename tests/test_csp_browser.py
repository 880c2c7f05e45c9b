"""The pages work under their own Content-Security-Policy in a real browser: no violation is reported."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User

from tests import factories


def _log_in(page, base: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_pages_run_under_the_csp(live_server, csp_browser_page) -> None:  # type: ignore[no-untyped-def]
    page, base = csp_browser_page, live_server.url
    violations: list[str] = []

    def record(message) -> None:  # type: ignore[no-untyped-def]
        if "Content Security Policy" in message.text:
            violations.append(f"{page.url}: {message.text}")

    page.on("console", record)
    campaign = factories.make_campaign(name="CSP", min_listen_seconds=1.0, min_listen_fraction=None)
    factories.make_comparison(campaign, modality="A", seconds=3.0)
    User.objects.create_user("bob", "bob@example.org", "bob-pass-123")
    User.objects.create_user("alice", "alice@example.org", "alice-pass-123", is_staff=True, is_superuser=True)

    _log_in(page, base, "bob", "bob-pass-123")
    page.click("text=Start listening")
    page.wait_for_url(lambda url: "/listen/" in url and url.count("/") > 4)
    page.keyboard.press("1")  # listen.js (a module) must run: playback starts and the heard counter moves
    deadline = time.monotonic() + 15
    while float(page.locator('[data-heard="A"] b').inner_text()) < 0.5:
        assert time.monotonic() < deadline, "playback never started under the CSP"
        page.wait_for_timeout(200)
    page.context.clear_cookies()

    _log_in(page, base, "alice", "alice-pass-123")
    for path in (
        f"/campaigns/{campaign.pk}/agreement/",
        f"/campaigns/{campaign.pk}/leaderboard/?min_votes=1&bootstrap_samples=20",
        "/leaderboard/?min_votes=1&bootstrap_samples=20",
        f"/campaigns/{campaign.pk}/exports/",
        f"/rm/campaigns/{campaign.pk}/",
        f"/rm/campaigns/{campaign.pk}/agreement/",
        "/rm/",
        f"/campaigns/{campaign.pk}/people/",
        f"/comparisons/{campaign.comparisons.get().pk}/adjudicate/",
        "/people/",
        "/people/tokens/",
        "/accounts/password_change/",
        "/api/docs/",
    ):
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
    assert page.locator(".swagger-ui").count() == 1  # Swagger UI rendered from local files, under the CSP
    assert violations == []
