"""Onboarding and withdrawal end to end in headless Chromium, with axe-core on every page."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from annotate.labeling.models import Vote
from annotate.onboarding.models import ConsentRecord, HeadphoneCheck, InstructionsRead, PracticeAttempt, Withdrawal
from annotate.onboarding.selectors import counted_votes
from tests import factories
from tests.axe import assert_no_horizontal_overflow, assert_no_serious_violations
from tests.onboarding.conftest import make_onboarded_campaign


def _log_in(page, base: str, username: str, password: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def _answer_headphones(page, check: HeadphoneCheck, *, right: int) -> None:  # type: ignore[no-untyped-def]
    # The browser can't hear: the test answers from the stored plan, as a listener with headphones would.
    for number, trial in enumerate(check.trials, start=1):
        answer = trial["target"] if number <= right else trial["target"] % 3 + 1
        page.check(f"input[name=trial_{number}][value='{answer}']")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_annotator_onboards_works_and_withdraws_and_staff_restore(live_server, browser_page) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    base = live_server.url
    campaign = make_onboarded_campaign()
    User.objects.create_user("bob", "bob@example.org", "bob-pass-123")
    User.objects.create_user("alice", "alice@example.org", "alice-pass-123", is_staff=True, is_superuser=True)
    axe_counts = {}

    _log_in(page, base, "bob", "bob-pass-123")
    page.click("text=Start listening")
    # Real work is gated: the first missing step opens instead.
    page.wait_for_url(re.compile(r"/onboarding/consent/$"))
    axe_counts["consent"] = assert_no_serious_violations(page, "onboarding-consent")
    page.click("button:has-text('I agree')")  # box not ticked: the browser's own validation keeps us here
    assert "/consent/" in page.url and not ConsentRecord.objects.exists()
    page.keyboard.press("Tab")  # the consent page is operable from the keyboard
    page.check("input[name=agree]")
    page.click("button:has-text('I agree')")
    page.wait_for_url(re.compile(r"/onboarding/instructions/$"))
    record = ConsentRecord.objects.get(annotator__username="bob")
    assert record.version == "2026-01" and record.accepted_at is not None
    assert page.locator("table.data").inner_text().count("Off-beat") == 1  # the paper's glossary
    axe_counts["instructions"] = assert_no_serious_violations(page, "onboarding-instructions")
    page.click("text=I have read the instructions")
    page.wait_for_url(re.compile(r"/onboarding/headphones/$"))
    assert InstructionsRead.objects.filter(annotator__username="bob").exists()
    axe_counts["headphones"] = assert_no_serious_violations(page, "onboarding-headphones")

    # The stimuli are real WAVs generated on request.
    first_audio = page.locator("audio").first.get_attribute("src")
    response = page.request.get(f"{base}{first_audio}")
    assert response.status == 200 and response.body()[:4] == b"RIFF"
    check = HeadphoneCheck.objects.get(annotator__username="bob")
    _answer_headphones(page, check, right=1)
    page.click("text=Check my answers")
    page.wait_for_selector("[data-headphone-result=failed]")
    page.click("text=Try again")
    retry = HeadphoneCheck.objects.get(annotator__username="bob", completed_at__isnull=True)
    _answer_headphones(page, retry, right=3)
    page.click("text=Check my answers")
    page.wait_for_selector("[data-headphone-result=passed]")
    retry.refresh_from_db()
    assert (retry.score, retry.passed) == (3, True)
    page.click("text=Continue")
    page.click("text=Continue with: Practice comparisons")
    page.wait_for_url(re.compile(r"/onboarding/practice/$"))
    axe_counts["practice"] = assert_no_serious_violations(page, "onboarding-practice")
    items = list(campaign.practice_items.all())
    for item in items:  # wrong on alignment: 2 of 4 right, below the 75% pass mark
        page.check(f"input[name=alignment_{item.pk}][value={'B' if item.alignment_answer == 'A' else 'A'}]")
        page.check(f"input[name=musicality_{item.pk}][value={item.musicality_answer}]")
    page.click("text=Check my answers")
    page.wait_for_selector("[data-practice-result=failed]")
    assert "Explanation 0: only one clip has a piano." in page.content()
    axe_counts["practice-result"] = assert_no_serious_violations(page, "onboarding-practice-result")
    page.click("text=Try again")
    for item in items:
        page.check(f"input[name=alignment_{item.pk}][value={item.alignment_answer}]")
        page.check(f"input[name=musicality_{item.pk}][value={item.musicality_answer}]")
    page.click("text=Check my answers")
    page.wait_for_selector("[data-practice-result=passed]")
    assert list(PracticeAttempt.objects.order_by("created_at").values_list("passed", flat=True)) == [False, True]
    page.click("text=Continue")
    axe_counts["overview"] = assert_no_serious_violations(page, "onboarding-overview")
    page.set_viewport_size({"width": 375, "height": 800})
    assert_no_horizontal_overflow(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("text=Start listening")
    page.wait_for_url(re.compile(r"/listen/[0-9a-f-]{36}/$"))

    # Votes bob cast are counted until he withdraws from the browser.
    bob = User.objects.get(username="bob")
    comparison = campaign.comparisons.first()
    assert comparison is not None
    factories.make_vote(comparison, bob)
    factories.make_vote(comparison, factories.make_annotator())
    assert counted_votes(Vote.objects.filter(comparison__campaign=campaign)).count() == 2
    page.goto(f"{base}/campaigns/{campaign.pk}/onboarding/")
    page.click("text=Withdraw from this campaign")
    axe_counts["withdraw"] = assert_no_serious_violations(page, "onboarding-withdraw")
    page.fill("textarea[name=reason]", "No more time")
    page.click("button:has-text('Withdraw from')")
    page.wait_for_selector("[data-withdrawn=yes]")
    assert Withdrawal.objects.get(annotator=bob).reason == "No more time"
    assert counted_votes(Vote.objects.filter(comparison__campaign=campaign)).count() == 1
    page.goto(f"{base}/campaigns/{campaign.pk}/listen/")  # no more work after withdrawing
    page.wait_for_selector("[data-withdrawn=yes]")

    # Staff restore it in the admin.
    page.context.clear_cookies()
    _log_in(page, base, "alice", "alice-pass-123")
    page.goto(f"{base}/admin/onboarding/withdrawal/")
    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "restore")
    page.click("button[name=index]")
    page.wait_for_selector("text=Restored 1 withdrawal(s).")
    assert Withdrawal.objects.get(annotator=bob).restored_by.username == "alice"  # type: ignore[union-attr]
    assert counted_votes(Vote.objects.filter(comparison__campaign=campaign)).count() == 2
    # Every onboarding page fits a phone.
    page.set_viewport_size({"width": 375, "height": 800})
    _log_in(page, base, "bob", "bob-pass-123")
    for step in (
        "onboarding/consent",
        "onboarding/instructions",
        "onboarding/headphones",
        "onboarding/practice",
        "withdraw",
    ):
        page.goto(f"{base}/campaigns/{campaign.pk}/{step}/")
        assert_no_horizontal_overflow(page)
    print("axe counts by page:", axe_counts)
