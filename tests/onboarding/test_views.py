"""Onboarding pages through the Django test client: the gate's redirect, form errors and stimulus access."""

from __future__ import annotations

import pytest
from django.test import Client

from annotate.onboarding.models import ConsentRecord, HeadphoneCheck
from tests.onboarding.test_services import complete_onboarding


def _client(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_it_redirects_the_listening_entry_to_the_first_missing_step(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    response = _client(bob).get(f"/campaigns/{onboarded_campaign.pk}/listen/")
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/{onboarded_campaign.pk}/onboarding/consent/"
    complete_onboarding(bob, onboarded_campaign)
    assert "/listen/" in _client(bob).post(f"/campaigns/{onboarded_campaign.pk}/listen/")["Location"]


@pytest.mark.django_db
def test_it_asks_again_when_consent_is_not_ticked(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    url = f"/campaigns/{onboarded_campaign.pk}/onboarding/consent/"
    page = _client(bob).get(url)
    assert page.status_code == 200 and b"version 2026-01" in page.content
    refused = _client(bob).post(url, {"version": "2026-01"})
    assert refused.status_code == 400 and b"Tick the box" in refused.content
    assert not ConsentRecord.objects.exists()
    accepted = _client(bob).post(url, {"version": "2026-01", "agree": "yes"})
    assert accepted.status_code == 302 and accepted["Location"].endswith("/onboarding/instructions/")
    assert ConsentRecord.objects.get(annotator=bob).version == "2026-01"


@pytest.mark.django_db
def test_it_serves_headphone_stimuli_only_to_their_annotator(bob, charlie, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    page = _client(bob).get(f"/campaigns/{onboarded_campaign.pk}/onboarding/headphones/")
    assert page.status_code == 200
    check = HeadphoneCheck.objects.get(annotator=bob)
    # The answers never reach the page.
    assert b'"target"' not in page.content and b"target" not in page.content
    url = f"/onboarding/headphones/{check.public_id}/1/2.wav"
    audio = _client(bob).get(url)
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/wav" and audio.content[:4] == b"RIFF"
    assert _client(charlie).get(url).status_code == 404
    assert _client(bob).get(f"/onboarding/headphones/{check.public_id}/9/1.wav").status_code == 404
    missing = _client(bob).post(
        f"/campaigns/{onboarded_campaign.pk}/onboarding/headphones/", {"check": str(check.public_id), "trial_1": "1"}
    )
    assert missing.status_code == 400 and b"Trial 2" in missing.content


@pytest.mark.django_db
def test_it_serves_practice_clips_and_reports_missing_answers(bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    item = onboarded_campaign.practice_items.first()
    audio = _client(bob).get(f"/campaigns/{onboarded_campaign.pk}/onboarding/practice/{item.pk}/A")
    wav = b"".join(audio.streaming_content)  # type: ignore[attr-defined]
    assert audio.status_code == 200 and wav[:4] == b"RIFF"
    assert _client(bob).get(f"/campaigns/{onboarded_campaign.pk}/onboarding/practice/{item.pk}/C").status_code == 404
    response = _client(bob).post(f"/campaigns/{onboarded_campaign.pk}/onboarding/practice/", {})
    assert response.status_code == 400 and b"Practice item 1" in response.content


@pytest.mark.django_db
def test_it_marks_withdrawn_votes_in_the_admin_and_closes_old_listening_pages(alice, bob, onboarded_campaign) -> None:  # type: ignore[no-untyped-def]
    from annotate.labeling.services import assignment_next
    from annotate.onboarding.services import withdrawal_create
    from tests import factories

    complete_onboarding(bob, onboarded_campaign)
    assignment = assignment_next(annotator=bob, campaign=onboarded_campaign)
    assert assignment is not None
    other = factories.make_comparison(onboarded_campaign)
    factories.make_vote(other, bob)
    factories.make_vote(other, alice)
    withdrawal_create(annotator=bob, campaign=onboarded_campaign)
    page = _client(bob).get(f"/listen/{assignment.public_id}/")
    assert page.status_code == 302 and page["Location"] == f"/campaigns/{onboarded_campaign.pk}/withdraw/"
    withdrawn = _client(alice).get("/admin/labeling/vote/?withdrawn=yes")
    assert withdrawn.status_code == 200
    assert withdrawn.context["cl"].result_count == 1
    assert list(withdrawn.context["cl"].result_list)[0].annotator == bob
    assert _client(alice).get("/admin/labeling/vote/?withdrawn=no").context["cl"].result_count == 1
