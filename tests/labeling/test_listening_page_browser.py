"""The listening page in headless Chromium with real playback: an honest listener is never refused.

Covers drafts across reloads and an expired session (log in again, everything restored), Back after a vote,
keyboard-only operation without shortcuts fighting form controls, continuing from the first unheard region,
the loop region and volume, axe-core, and a 375 px viewport. Every vote the page sends is recorded: the
refusal rate of the honest listener (votes answered 400 "listening requirement not met") must be 0.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session

from annotate.catalog.models import Campaign
from annotate.labeling.models import Assignment, Vote
from tests import factories
from tests.axe import ARTIFACTS, assert_no_horizontal_overflow, assert_no_serious_violations

LISTEN_URL = re.compile(r"/listen/[0-9a-f-]{36}/$")


def _audio(page: Any, side: str, prop: str) -> Any:  # noqa: ANN401
    return page.evaluate(f"document.querySelector('.player[data-side={side}] audio').{prop}")


def _heard(page: Any, side: str) -> float:  # noqa: ANN401
    return float(page.locator(f'[data-heard="{side}"] b').inner_text())


def _log_in(page: Any, base: str) -> None:  # noqa: ANN401
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "bob-pass-123")
    page.click("button[type=submit]")


def _campaign(n: int) -> Campaign:
    # 4 s clips, 75% to hear: 3 s each. Switching at 1.5 s leaves B 0.5 s short at its end.
    campaign = factories.make_campaign(name="Honest campaign", min_listen_seconds=None, min_listen_fraction=0.75)
    for _ in range(n):
        factories.make_comparison(campaign, seconds=4.0)
    return campaign


def _answer_with_mouse(page: Any, feedback: str = "A has the piano; B drifts at 0:02.") -> None:  # noqa: ANN401
    page.click("label:has(input[name=alignment][value=A])")
    page.click("label:has(input[name=alignment_confidence][value='4'])")
    page.click("label:has(input[name=musicality][value=B])")
    page.click("label:has(input[name=musicality_confidence][value='3'])")
    page.fill("textarea[name=feedback]", feedback)


def _tab_to(page: Any, selector: str, limit: int = 60) -> None:  # noqa: ANN401
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({json.dumps(selector)})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


def _wait_met(page: Any, side: str) -> None:  # noqa: ANN401
    page.wait_for_selector(f'[data-heard="{side}"].met', timeout=20_000)


class VoteLog:
    """Every vote request the page sends, with the server's answer."""

    def __init__(self, page: Any) -> None:  # noqa: ANN401
        self.answers: list[tuple[int, str]] = []
        page.on("response", self._record)

    def _record(self, response: Any) -> None:  # noqa: ANN401
        if response.request.method == "POST" and response.url.endswith("/vote"):
            try:
                code = (response.json().get("error") or {}).get("code", "")
            except Exception:
                code = ""
            self.answers.append((response.status, code))

    @property
    def refused(self) -> int:
        """Votes refused for their listening claims: unmet requirement, undelivered audio, overlapping time."""
        return sum(1 for status, code in self.answers if code.startswith("listening_"))


def _submit_and_advance(page: Any) -> str:  # noqa: ANN401
    before = page.url
    page.wait_for_function("!document.querySelector('#submit-vote').disabled")
    page.click("#submit-vote")
    page.wait_for_url(lambda url: url != before and ("/listen/" in url or url.endswith("/listen/")))
    return before


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_honest_listener_is_never_refused(live_server, browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    base = live_server.url
    campaign = _campaign(5)
    User.objects.create_user("bob", "bob@example.org", "bob-pass-123")
    votes = VoteLog(page)
    _log_in(page, base)
    page.goto(f"{base}/campaigns/{campaign.pk}/listen/")
    page.click("text=Start listening")  # a GET reserves nothing; the button POSTs
    page.wait_for_url(LISTEN_URL)

    # 1. Switching keeps the position; B ends short of its requirement and continues from its first unheard part.
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('.player[data-side=A] audio').currentTime > 1.5")
    page.keyboard.press("2")
    assert _audio(page, "B", "currentTime") >= 1.4
    page.wait_for_function("document.querySelector('#player-status').textContent.includes('continuing from 0:00')")
    _wait_met(page, "B")
    assert _heard(page, "B") >= 3.0
    page.keyboard.press("1")  # A: carries on from B's position, then from A's first unheard part if needed
    _wait_met(page, "A")
    _answer_with_mouse(page)
    first = _submit_and_advance(page)

    # 2. Back after a vote goes to the next task, never to the stale voted page.
    second = page.url
    page.go_back()
    page.wait_for_url(LISTEN_URL)
    assert page.url == second and page.url != first
    assert "failed to load" not in page.content()
    assert Assignment.objects.get(public_id=first.rstrip("/").split("/")[-1]).status == Assignment.Status.VOTED

    # 3. Seeks forward and back: the skipped part is not heard, and the page still gets an honest listener there.
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('.player[data-side=A] audio').currentTime > 0.5")
    page.keyboard.press("l")  # +5 s: past the end of the 4 s clip, clamped
    page.wait_for_function("document.querySelector('.player[data-side=A] audio').currentTime > 3.5")
    _wait_met(page, "A")  # the end came before the requirement: the page went back to the first unheard part
    page.keyboard.press("2")
    page.keyboard.press("j")  # back 5 s: to the start
    _wait_met(page, "B")
    _answer_with_mouse(page)
    _submit_and_advance(page)

    # 4. A reload mid-listening keeps what was heard, the answers and the feedback.
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('.player[data-side=A] audio').currentTime > 1.2")
    page.keyboard.press("k")
    _answer_with_mouse(page, feedback="Reload survivor: A keeps the tempo.")
    heard_before = _heard(page, "A")
    assert heard_before >= 1.0
    third = page.url
    page.wait_for_timeout(600)  # the draft is written within 0.4 s of a change
    page.reload()
    assert page.url == third
    page.wait_for_selector("#draft-status:has-text('Restored')")
    assert _heard(page, "A") >= heard_before - 0.01
    assert page.locator("textarea[name=feedback]").input_value() == "Reload survivor: A keeps the tempo."
    assert page.locator("input[name=alignment_confidence][value='4']").is_checked()
    page.keyboard.press("1")
    _wait_met(page, "A")
    page.keyboard.press("2")
    _wait_met(page, "B")
    _submit_and_advance(page)
    assert "Reload survivor" in Vote.objects.get(assignment__public_id=third.rstrip("/").split("/")[-1]).feedback

    # 5. The session expires before the vote: a login link brings the annotator back with everything restored.
    fourth = page.url
    page.keyboard.press("1")
    _wait_met(page, "A")
    page.keyboard.press("2")
    _wait_met(page, "B")
    _answer_with_mouse(page, feedback="Written before my session expired.")
    page.wait_for_timeout(600)
    Session.objects.all().delete()
    page.click("#submit-vote")
    page.wait_for_selector("#login-again")
    assert "session has ended" in page.locator("#vote-status").inner_text()
    assert_no_serious_violations(page, "listening-page-session-ended")
    page.click("#login-again")
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "bob-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(fourth)
    page.wait_for_selector("#draft-status:has-text('Restored')")
    assert page.locator("textarea[name=feedback]").input_value() == "Written before my session expired."
    assert page.locator('[data-heard="A"].met').count() == 1 and page.locator('[data-heard="B"].met').count() == 1
    _submit_and_advance(page)

    # 6. Keyboard only, and the shortcuts never fight the form controls.
    page.keyboard.press("1")
    _wait_met(page, "A")
    page.keyboard.press("2")
    _wait_met(page, "B")
    page.keyboard.press("k")
    assert _audio(page, "B", "paused")
    _tab_to(page, "input[name=alignment]")
    page.keyboard.press("Space")  # selects the radio; must not start playback
    page.keyboard.press("ArrowRight")  # moves within the group; must not seek
    assert page.locator("input[name=alignment][value=B]").is_checked()
    assert _audio(page, "B", "paused") and _audio(page, "A", "paused")
    _tab_to(page, "input[name=alignment_confidence]")
    page.keyboard.press("Space")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert page.locator("input[name=alignment_confidence][value='4']").is_checked()
    _tab_to(page, "input[name=musicality]")
    page.keyboard.press("Space")
    _tab_to(page, "input[name=musicality_confidence]")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    _tab_to(page, "textarea[name=feedback]")
    page.keyboard.type("Typing 1 2 k j l r [ ] and spaces never triggers playback.")
    assert _audio(page, "A", "paused") and _audio(page, "B", "paused")
    assert page.evaluate("document.querySelector('#loop-status').textContent") == "No loop"
    _tab_to(page, "#submit-vote")
    before = page.url
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url != before)
    last = Vote.objects.get(assignment__public_id=before.rstrip("/").split("/")[-1])
    assert last.alignment_confidence == 4 and last.musicality_confidence == 2
    assert "never triggers playback" in last.feedback

    statuses = [status for status, _ in votes.answers]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "honest-listener.json").write_text(
        json.dumps(
            {
                "votes_accepted": statuses.count(201),
                "refused_listening": votes.refused,
                "refused_session_expired": statuses.count(403),
                "statuses": statuses,
            }
        )
    )
    # The one 403 is the vote sent after the session was deleted; the same vote then went through.
    assert statuses == [201, 201, 201, 403, 201, 201], votes.answers
    assert votes.refused == 0
    assert Vote.objects.filter(annotator__username="bob").count() == 5


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_page_passes_axe_loops_sets_volume_and_fits_a_phone(live_server, browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    base = live_server.url
    campaign = factories.make_campaign(
        name="A campaign with a long enough name to wrap on phones", min_listen_seconds=1.0
    )
    factories.make_comparison(campaign, modality="C", seconds=4.0)
    User.objects.create_user("bob", "bob@example.org", "bob-pass-123")
    _log_in(page, base)
    page.goto(f"{base}/campaigns/{campaign.pk}/listen/")
    page.click("text=Start listening")  # a GET reserves nothing; the button POSTs
    page.wait_for_url(LISTEN_URL)
    counts = {"desktop": assert_no_serious_violations(page, "listening-page")}

    # Loop region: set from the keyboard, playback wraps from its end to its start.
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('.player[data-side=A] audio').currentTime > 0.5")
    page.keyboard.press("[")
    page.wait_for_function("document.querySelector('.player[data-side=A] audio').currentTime > 1.6")
    page.keyboard.press("]")
    status = page.locator("#loop-status").inner_text()
    assert status.startswith("Loop 0:00–0:01"), status
    page.wait_for_function(
        "(() => { const a = document.querySelector('.player[data-side=A] audio');"
        " window.__seen = window.__seen || []; window.__seen.push(a.currentTime);"
        " return window.__seen.length > 2 && a.currentTime < 1.0 && !a.paused; })()",
        polling=100,
    )
    assert _audio(page, "A", "currentTime") < 1.6
    page.keyboard.press("\\")
    assert page.locator("#loop-status").inner_text() == "No loop"
    page.keyboard.press("k")

    # Volume: a labelled slider, operable with the keyboard, applied to every player and remembered.
    page.focus("#volume")
    for _ in range(5):
        page.keyboard.press("ArrowLeft")
    volume = page.evaluate("document.querySelector('#volume').value")
    assert int(volume) == 95
    assert _audio(page, "A", "volume") == pytest.approx(0.95)
    assert _audio(page, "R", "volume") == pytest.approx(0.95)
    page.reload()
    assert _audio(page, "B", "volume") == pytest.approx(0.95)

    page.set_viewport_size({"width": 375, "height": 800})
    page.wait_for_timeout(200)
    assert_no_horizontal_overflow(page)
    counts["phone"] = assert_no_serious_violations(page, "listening-page-375px")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "listening-page-375px.png"), full_page=True)
    print("axe counts on the listening page:", counts)
