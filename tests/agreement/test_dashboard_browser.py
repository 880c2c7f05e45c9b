"""In headless Chromium: the dashboard renders its charts and the annotator table sorts by a clicked column."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests import factories


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
