"""End to end in headless Chromium: log in, listen to both clips for real, answer, submit, advance."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from annotate.labeling.models import Assignment, Skip, Vote
from tests import factories

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def heard(page, side: str) -> float:  # type: ignore[no-untyped-def]
    return float(page.locator(f'[data-heard="{side}"] b').inner_text())


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_annotator_listens_votes_and_moves_on(live_server, browser_page) -> None:
    page = browser_page
    campaign = factories.make_campaign(
        name="Browser campaign",
        overlap_target=2,
        min_listen_seconds=1.5,
        min_listen_fraction=None,
        description="Two short pairs.",
    )
    factories.make_comparison(campaign, modality="C", seconds=4.0, systems=("secret-gen-x", "secret-gen-y"))
    factories.make_comparison(campaign, modality="C", seconds=4.0)  # both have a reference: the screenshot shows it
    User.objects.create_user("bob", "bob@example.org", "bob-pass-123")

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "bob-pass-123")
    page.click("button[type=submit]")
    page.click("text=Start listening")
    page.wait_for_url(re.compile(r"/listen/[0-9a-f-]{36}/$"))
    first_url = page.url
    assert "secret-gen" not in page.content()
    submit = page.locator("#submit-vote")
    assert submit.is_disabled()

    # Real playback through the page's players, driven by the documented shortcuts.
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('.player[data-side=A] audio').currentTime > 0.8")
    page.keyboard.press("2")  # synchronised switch: B takes over at A's position
    b_start = page.evaluate("document.querySelector('.player[data-side=B] audio').currentTime")
    assert b_start >= 0.7
    page.wait_for_selector('[data-heard="B"].met', timeout=15_000)
    page.keyboard.press("1")
    page.wait_for_selector('[data-heard="A"].met', timeout=15_000)
    was_paused = page.evaluate("document.querySelector('.player[data-side=A] audio').paused")
    page.keyboard.press(" ")
    assert page.evaluate("document.querySelector('.player[data-side=A] audio').paused") != was_paused
    if was_paused:
        page.keyboard.press(" ")
    assert heard(page, "A") >= 1.5 and heard(page, "B") >= 1.5
    assert submit.is_disabled()  # still needs the answers

    page.click("label:has(input[name=alignment][value=A])")
    page.click("label:has(input[name=alignment_confidence][value='4'])")
    page.click("label:has(input[name=musicality][value=B])")
    page.click("label:has(input[name=musicality_confidence][value='5'])")
    assert submit.is_disabled()  # feedback is required in this campaign
    page.fill("textarea[name=feedback]", "A has the requested piano; B is steadier but ignores the lyrics.")
    page.wait_for_function("!document.querySelector('#submit-vote').disabled")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "listening-page.png"), full_page=True)

    submit.click()
    page.wait_for_url(lambda url: url != first_url and "/listen/" in url)

    vote = Vote.objects.get(annotator__username="bob")
    first = Assignment.objects.get(public_id=first_url.rstrip("/").split("/")[-1])
    assert vote.assignment == first and first.status == Assignment.Status.VOTED
    # Displayed A was clip_b when the order was swapped.
    assert vote.alignment_choice == ("b" if first.swapped else "a")
    assert vote.musicality_choice == ("a" if first.swapped else "b")
    assert (vote.alignment_confidence, vote.musicality_confidence) == (4, 5)
    assert vote.listened_a_s >= 1.5 and vote.listened_b_s >= 1.5
    assert vote.time_on_task_s and vote.time_on_task_s > 2
    assert "requested piano" in vote.feedback
    # The page advanced to the other comparison, and the progress counts the vote.
    assert page.locator('[data-progress="done"]').inner_text() == "1"
    second = Assignment.objects.get(public_id=page.url.rstrip("/").split("/")[-1])
    assert second.comparison_id != first.comparison_id and second.status == Assignment.Status.LIVE


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_seeking_does_not_count_and_skip_moves_on(live_server, browser_page) -> None:
    page = browser_page
    campaign = factories.make_campaign(name="Seek campaign", min_listen_seconds=3.0, min_listen_fraction=None)
    factories.make_comparison(campaign, seconds=8.0)
    bob = User.objects.create_user("bob", "bob@example.org", "bob-pass-123")

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "bob-pass-123")
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/listen/")
    page.click("text=Start listening")  # a GET reserves nothing; the button POSTs
    page.wait_for_url(re.compile(r"/listen/[0-9a-f-]{36}/$"))
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('.player[data-side=A] audio').currentTime > 0.5")
    page.keyboard.press("ArrowRight")  # jump 5 s ahead: those 5 s were never heard
    page.wait_for_function("document.querySelector('.player[data-side=A] audio').currentTime > 6.0")
    page.keyboard.press(" ")
    position = page.evaluate("document.querySelector('.player[data-side=A] audio').currentTime")
    assert position > 5.5
    assert heard(page, "A") < 2.5, "the seek must not count as listening"
    assert page.locator("#submit-vote").is_disabled()
    assert "Listen to" in page.locator("#vote-status").inner_text()

    page.click("text=Can't judge this pair? Skip it")
    page.check("input[name=reason][value=broken_audio]")
    page.click("text=Skip this comparison")
    page.wait_for_selector("text=Nothing left for you")
    skip = Skip.objects.get(annotator=bob)
    assert skip.assignment is not None
    assert skip.reason == "broken_audio" and skip.assignment.status == Assignment.Status.SKIPPED
