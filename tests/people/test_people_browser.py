"""End to end in headless Chromium, as staff with no shell: invite an annotator, who sets a password through the
link and votes; then resolve a disputed comparison and find the adjudicated label in the next export."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import User

from annotate.exports.models import Export
from annotate.labeling.models import Adjudication, Vote
from tests import factories


def _log_in(page, base: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click(".login button[type=submit]")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_invite_vote_resolve_and_export(live_server, browser_page, celery_worker_process) -> None:  # type: ignore[no-untyped-def]
    page, base = browser_page, live_server.url
    campaign = factories.make_campaign(
        name="People campaign",
        overlap_target=3,
        min_listen_seconds=1.0,
        min_listen_fraction=None,
        feedback_required=False,
    )
    disputed = factories.make_comparison(campaign, modality="A", seconds=2.0)
    fresh = factories.make_comparison(campaign, seconds=2.0)
    factories.make_vote(disputed, factories.make_annotator("rater1"), alignment="a", musicality="a", feedback="A fits")
    factories.make_vote(disputed, factories.make_annotator("rater2"), alignment="b", musicality="b", feedback="B fits")
    User.objects.create_user("alice", "alice@example.org", "alice-pass-123", is_staff=True)

    # Staff invite an annotator on the People page; the one-time link is shown once.
    _log_in(page, base, "alice", "alice-pass-123")
    page.click("nav >> text=People")
    page.fill("input[name=username]", "newbie")
    page.click("text=Create invitation link")
    link = page.input_value("#invite-link")
    assert "/invite/" in link
    page.click("nav >> text=Log out")

    # The annotator opens it, sets a password (logged in) and votes on the listening page.
    page.goto(link)
    page.fill("input[name=new_password1]", "Newbie-pass-2026")
    page.fill("input[name=new_password2]", "Newbie-pass-2026")
    page.click("text=Set password")
    page.wait_for_selector("text=Welcome! Your password is set.")
    page.locator(f'li[data-campaign="{campaign.pk}"]').locator("text=Start listening").click()
    page.wait_for_url(re.compile(r"/listen/[0-9a-f-]{36}/$"))
    page.keyboard.press("1")
    page.wait_for_selector('[data-heard="A"].met', timeout=15_000)
    page.keyboard.press("2")
    page.wait_for_selector('[data-heard="B"].met', timeout=15_000)
    page.click("label:has(input[name=alignment][value=A])")
    page.click("label:has(input[name=alignment_confidence][value='4'])")
    page.click("label:has(input[name=musicality][value=A])")
    page.click("label:has(input[name=musicality_confidence][value='3'])")
    page.wait_for_function("!document.querySelector('#submit-vote').disabled")
    page.click("#submit-vote")
    page.wait_for_function("document.querySelector('[data-progress=\"done\"]')?.innerText === '1'")
    assert Vote.objects.get(annotator__username="newbie").comparison_id == fresh.pk  # fewest votes first
    page.click("nav >> text=Log out")

    # Staff open the disputed comparison from the agreement page and resolve it.
    _log_in(page, base, "alice", "alice-pass-123")
    page.goto(f"{base}/campaigns/{campaign.pk}/agreement/")
    page.click(f"#disputed-table >> text=#{disputed.pk}")
    page.wait_for_url(re.compile(rf"/comparisons/{disputed.pk}/adjudicate/$"))
    assert page.locator("#votes-table tbody tr").count() == 2 and "B fits" in page.inner_text("#votes-table")
    assert page.locator("#clip-a audio").get_attribute("src") == f"/api/v1/clips/{disputed.clip_a_id}/audio"
    page.check("input[name=alignment][value=b]")
    page.check("input[name=musicality][value=a]")
    page.fill("textarea[name=note]", "B follows the reference")
    page.click("text=Save resolution")
    assert "Adjudicated label: alignment b, musicality a" in page.inner_text("#current-resolution")
    assert Adjudication.objects.filter(comparison=disputed, decided_by__username="alice").exists()

    # The next export carries it as the comparison's label.
    page.goto(f"{base}/campaigns/{campaign.pk}/exports/")
    page.fill("input[name=test_fraction]", "0")
    page.fill("input[name=validation_fraction]", "0")
    page.click("#export-form button[type=submit]")
    page.wait_for_selector("tr[data-export]")
    export = Export.objects.get()
    done = f'tr[data-export="{export.pk}"]:is([data-status="succeeded"], [data-status="failed"])'
    page.wait_for_selector(done, timeout=90_000)
    export.refresh_from_db()
    assert export.status == Export.Status.SUCCEEDED, export.error
    body = page.request.get(f"{base}/api/v1/exports/{export.pk}/files/comparisons.jsonl").text()
    rows = [json.loads(line) for line in body.splitlines()]
    resolved = [r for r in rows if r["label_source"] == "adjudicated"]
    assert len(rows) == 2 and len(resolved) == 1
    assert (resolved[0]["preference-alignment"], resolved[0]["preference-musicality"]) == ("model_b", "model_a")
    assert (resolved[0]["votes_a-alignment"], resolved[0]["votes_b-alignment"]) == (1, 1)
