"""An honest annotator in real Chromium, with real MP3 playback, is never refused by the listening evidence.

Each comparison is listened to differently (straight through, switching A↔B, seeking by keys and by clicking
the waveform), over a fast and over a throttled connection where seeks make Chromium fetch new byte ranges.
Every vote POST the page makes is counted; a refusal is any answer but 201.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.db.models import Sum

from annotate.labeling.models import Assignment, AudioDelivery, Vote
from tests import factories

CLIP_SECONDS = 20.0
REQUIRED_S = 2.5


def _current(page, side: str) -> float:  # type: ignore[no-untyped-def]
    return float(page.evaluate(f"document.querySelector('.player[data-side={side}] audio').currentTime"))


def _wait_heard(page, side: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_selector(f'[data-heard="{side}"].met', timeout=30_000)


def _straight(page) -> None:  # type: ignore[no-untyped-def]
    page.keyboard.press("1")
    _wait_heard(page, "A")
    page.keyboard.press("2")
    _wait_heard(page, "B")


def _switching(page) -> None:  # type: ignore[no-untyped-def]
    # Synchronised switching, several times: B takes over at A's position and back.
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('.player[data-side=A] audio').currentTime > 0.8")
    for _ in range(3):
        page.keyboard.press("2")
        page.wait_for_timeout(700)
        page.keyboard.press("1")
        page.wait_for_timeout(700)
    page.keyboard.press("2")
    _wait_heard(page, "B")
    page.keyboard.press("1")
    _wait_heard(page, "A")


def _seeking(page) -> None:  # type: ignore[no-untyped-def]
    page.keyboard.press("1")
    page.wait_for_function("document.querySelector('.player[data-side=A] audio').currentTime > 0.5")
    page.keyboard.press("ArrowRight")  # +5 s
    page.keyboard.press("ArrowRight")  # +5 s: far ahead of what a slow connection has buffered
    page.wait_for_timeout(1200)
    page.keyboard.press("ArrowLeft")
    _wait_heard(page, "A")
    page.keyboard.press(" ")  # pause A, so B starts where it is clicked rather than at A's position
    # Click three quarters into B's waveform, then play it from there.
    box = page.locator(".player[data-side=B] canvas.wave").bounding_box()
    page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + box["height"] / 2)
    page.keyboard.press("2")
    page.wait_for_timeout(800)
    assert _current(page, "B") > 0.6 * CLIP_SECONDS
    _wait_heard(page, "B")


def _answer_and_submit(page) -> None:  # type: ignore[no-untyped-def]
    page.click("label:has(input[name=alignment][value=A])")
    page.click("label:has(input[name=alignment_confidence][value='4'])")
    page.click("label:has(input[name=musicality][value=B])")
    page.click("label:has(input[name=musicality_confidence][value='3'])")
    page.fill("textarea[name=feedback]", "A follows the prompt; B is steadier.")
    page.wait_for_function("!document.querySelector('#submit-vote').disabled")
    first_url = page.url
    page.click("#submit-vote")
    page.wait_for_url(lambda url: url != first_url)


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("throttled", [False, True], ids=["fast", "throttled"])
def test_an_honest_annotator_is_never_refused(live_server, browser_page, throttled: bool) -> None:
    page = browser_page
    patterns: list[Callable[..., None]] = [_straight, _switching, _seeking]
    campaign = factories.make_campaign(
        name="Evidence campaign", overlap_target=1, min_listen_seconds=REQUIRED_S, min_listen_fraction=None
    )
    for _ in patterns:
        factories.make_comparison(campaign, seconds=CLIP_SECONDS)
    User.objects.create_user("bob", "bob@example.org", "bob-pass-123")
    vote_answers: list[int] = []
    page.on("response", lambda r: vote_answers.append(r.status) if r.url.endswith("/vote") else None)

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "bob-pass-123")
    page.click("button[type=submit]")
    if throttled:
        # 40 kB/s: a 20 s clip at 192 kbit/s (480 kB) takes 12 s to arrive, so seeks ahead need new ranges.
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        conditions = {"offline": False, "latency": 40, "downloadThroughput": 40_000, "uploadThroughput": 40_000}
        cdp.send("Network.emulateNetworkConditions", conditions)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/listen/")
    page.click("text=Start listening")  # a GET reserves nothing; the button POSTs
    page.wait_for_url(re.compile(r"/listen/[0-9a-f-]{36}/$"))
    for pattern in patterns:
        page.wait_for_url(re.compile(r"/listen/[0-9a-f-]{36}/$"))
        pattern(page)
        _answer_and_submit(page)
    page.wait_for_selector("text=Nothing left for you")

    refusals = [status for status in vote_answers if status != 201]
    assert vote_answers and not refusals, f"an honest annotator was refused: {vote_answers}"
    votes = list(Vote.objects.filter(annotator__username="bob").select_related("assignment"))
    assert len(votes) == len(patterns)
    ranges = AudioDelivery.objects.filter(assignment__annotator__username="bob", first_byte__gt=0).count()
    delivered = AudioDelivery.objects.filter(assignment__annotator__username="bob").aggregate(b=Sum("bytes_delivered"))
    for vote in votes:
        assert vote.listened_a_s >= REQUIRED_S - 0.25 and vote.listened_b_s >= REQUIRED_S - 0.25
        assert vote.assignment is not None and vote.assignment.status == Assignment.Status.VOTED
    if throttled:
        assert ranges >= 1, "seeking ahead on a slow connection should have fetched a new byte range"
    print(
        f"\n[evidence-browser {'throttled' if throttled else 'fast'}] votes={len(vote_answers)} "
        f"refused={len(refusals)} range_requests={ranges} audio_bytes_delivered={delivered['b']} "
        f"listened_s={[(round(v.listened_a_s, 1), round(v.listened_b_s, 1)) for v in votes]} "
        f"time_on_task_s={[round(v.time_on_task_s or 0, 1) for v in votes]}"
    )
