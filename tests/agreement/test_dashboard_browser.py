"""In headless Chromium: the dashboard renders its charts and the annotator table sorts by a clicked column."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User

from tests import factories

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)
        yield page
        browser.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_sorts_the_annotator_table(live_server, browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    campaign = factories.make_campaign(name="Dashboard campaign")
    raters = [factories.make_annotator(name) for name in ("ann-c", "ann-a", "ann-b")]
    items = [factories.make_comparison(campaign, seconds=1.0) for _ in range(3)]
    # Votes per rater: ann-c 1, ann-a 3, ann-b 2.
    for rater, count in zip(raters, (1, 3, 2), strict=True):
        for comparison in items[:count]:
            factories.make_vote(comparison, rater)
    User.objects.create_user("alice", "alice@example.org", "alice-pass-123", is_staff=True)

    page.goto(f"{live_server.url}/accounts/login/")  # type: ignore[attr-defined]
    page.fill("input[name=username]", "alice")  # type: ignore[attr-defined]
    page.fill("input[name=password]", "alice-pass-123")  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.click("a.agreement-link")  # type: ignore[attr-defined]

    names = page.locator("#annotator-table tbody td:first-child")  # type: ignore[attr-defined]
    assert names.all_inner_texts() == ["ann-a", "ann-b", "ann-c"]
    assert page.locator("svg.chart").count() == 4  # type: ignore[attr-defined]
    votes_header = page.locator("#annotator-table th", has_text="Votes")  # type: ignore[attr-defined]
    votes_header.click()
    assert names.all_inner_texts() == ["ann-c", "ann-b", "ann-a"]
    votes_header.click()
    assert names.all_inner_texts() == ["ann-a", "ann-b", "ann-c"]
    assert votes_header.get_attribute("aria-sort") == "descending"
