"""Pages and audio: who may fetch what, HTTP Range, path traversal, X-Accel-Redirect, no leaks."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import Resolver404, resolve

from annotate.catalog.models import Campaign, Clip
from annotate.labeling.models import Assignment
from annotate.labeling.services import skip_submit, vote_submit
from annotate.labeling.views import parse_range
from tests import factories
from tests.labeling.conftest import make_assignment, vote_kwargs


@pytest.fixture
def held(small_campaign, bob) -> Assignment:
    comparison = factories.make_comparison(small_campaign, modality="C", systems=("secret-gen-x", "secret-gen-y"))
    return make_assignment(comparison, bob, swapped=True)


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def audio_url(assignment: Assignment, side: str) -> str:
    return f"/listen/{assignment.public_id}/audio/{side}"


def clip_bytes(clip: Clip) -> bytes:
    assert clip.file.name
    return (Path(settings.MEDIA_ROOT) / clip.file.name).read_bytes()


def body(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_it_streams_the_displayed_side(held, bob) -> None:
    response = client_for(bob).get(audio_url(held, "A"))
    assert response.status_code == 200
    # Swapped: A on the page is clip_b.
    assert body(response) == clip_bytes(held.comparison.clip_b)
    assert response["Content-Type"] == "audio/wav" and response["Accept-Ranges"] == "bytes"
    assert "Content-Disposition" not in response


def test_it_serves_the_reference_clip(held, bob) -> None:
    response = client_for(bob).get(audio_url(held, "R"))
    assert response.status_code == 200
    assert body(response) == clip_bytes(held.comparison.instruction.reference_clip)


def test_it_answers_a_range_with_206(held, bob) -> None:
    data = clip_bytes(held.comparison.clip_a)
    client = client_for(bob)
    response = client.get(audio_url(held, "B"), HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert body(response) == data[100:200]
    assert response["Content-Range"] == f"bytes 100-199/{len(data)}" and response["Content-Length"] == "100"
    tail = client.get(audio_url(held, "B"), HTTP_RANGE="bytes=-50")
    assert tail.status_code == 206 and body(tail) == data[-50:]
    open_ended = client.get(audio_url(held, "B"), HTTP_RANGE=f"bytes={len(data) - 10}-")
    assert body(open_ended) == data[-10:]


@pytest.mark.parametrize(
    "header", ["bytes=999999999-", "bytes=50-10", "bytes=abc", "items=0-1", "bytes=0-1,5-6", "bytes=-0", "bytes=-"]
)
def test_it_answers_416_to_a_bad_range(held, bob, header) -> None:
    response = client_for(bob).get(audio_url(held, "A"), HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"].startswith("bytes */")


def test_it_parses_ranges() -> None:
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range("bytes=5-100", 10) == (5, 9)
    assert parse_range("bytes=-100", 10) == (0, 9)
    assert parse_range("bytes=10-", 10) is None


def test_charlie_cannot_fetch_bobs_audio(held, charlie) -> None:
    client = client_for(charlie)
    for side in ("A", "B", "R"):
        assert client.get(audio_url(held, side)).status_code == 404


def test_charlie_cannot_open_bobs_listening_page(held, charlie) -> None:
    assert client_for(charlie).get(f"/listen/{held.public_id}/").status_code == 404


def test_anonymous_users_are_sent_to_log_in(held) -> None:
    response = Client().get(audio_url(held, "A"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_audio_closes_once_the_annotator_voted(held, bob) -> None:
    vote_submit(**vote_kwargs(held))
    assert client_for(bob).get(audio_url(held, "A")).status_code == 403


def test_audio_closes_once_the_annotator_skipped(held, bob) -> None:
    skip_submit(annotator=bob, assignment_id=held.public_id, reason="broken_audio")
    assert client_for(bob).get(audio_url(held, "B")).status_code == 403


def test_staff_can_fetch_any_assignments_audio(held, alice) -> None:
    vote_submit(**vote_kwargs(held))
    assert client_for(alice).get(audio_url(held, "A")).status_code == 200


def test_it_rejects_unknown_sides_and_ids(held, bob) -> None:
    client = client_for(bob)
    assert client.get(audio_url(held, "C")).status_code == 404
    assert client.get(audio_url(held, "..")).status_code == 404
    assert client.get("/listen/00000000-0000-0000-0000-000000000000/audio/A").status_code == 404


def test_it_never_serves_a_file_outside_media_root(held, bob, tmp_path) -> None:
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF-not-for-you")
    # A crafted (or corrupted) row pointing out of MEDIA_ROOT; A on the page is clip_b.
    Clip.objects.filter(pk=held.comparison.clip_b_id).update(file="../" * 12 + str(secret).lstrip("/"))
    response = client_for(bob).get(audio_url(held, "A"))
    assert response.status_code == 404
    assert b"not-for-you" not in body(response)


def test_it_hands_the_bytes_to_nginx_when_configured(held, bob, settings) -> None:
    settings.AUDIO_ACCEL_REDIRECT_PREFIX = "/protected-media/"
    response = client_for(bob).get(audio_url(held, "B"))
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == "/protected-media/" + held.comparison.clip_a.file.name
    assert response.content == b""


def test_the_listening_page_shows_the_instruction_and_hides_systems(held, bob) -> None:
    response = client_for(bob).get(f"/listen/{held.public_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    instruction = held.comparison.instruction
    assert instruction.text in html and "la la la\nsecond line" in html
    assert html.index("Read the instruction first") < html.index("Listen to both clips")
    for secret in (
        "secret-gen",
        held.comparison.clip_a.sha256,
        held.comparison.clip_a.original_name,
        held.comparison.clip_b.original_name,
        "clips/test",
    ):
        assert secret not in html
    for shortcut in (
        "<kbd>1</kbd>",
        "<kbd>2</kbd>",
        "<kbd>Space</kbd>",
        "<kbd>←</kbd>",
        "<kbd>→</kbd>",
        "<kbd>R</kbd>",
    ):
        assert shortcut in html
    assert "Very certain" in html and "Moderate" in html and "Uncertain" in html
    assert "rhythmic instability at 0:20" in html
    assert f"/listen/{held.public_id}/audio/A" in html


def test_the_campaign_link_reserves_and_opens_the_next_comparison(small_campaign, bob) -> None:
    factories.make_comparison(small_campaign)
    client = client_for(bob)
    response = client.get(f"/campaigns/{small_campaign.pk}/listen/")
    assignment = Assignment.objects.get(annotator=bob)
    assert response.status_code == 302 and response["Location"] == f"/listen/{assignment.public_id}/"


def test_the_campaign_link_says_when_the_annotator_is_done(small_campaign, bob) -> None:
    response = client_for(bob).get(f"/campaigns/{small_campaign.pk}/listen/")
    assert response.status_code == 200 and "Nothing left for you" in response.content.decode()


def test_a_voted_assignment_page_moves_on(held, bob) -> None:
    vote_submit(**vote_kwargs(held))
    response = client_for(bob).get(f"/listen/{held.public_id}/")
    assert response.status_code == 302 and response["Location"].endswith("/listen/")


def test_draft_campaigns_are_not_listenable(bob) -> None:
    draft = factories.make_campaign(status=Campaign.Status.DRAFT)
    assert client_for(bob).get(f"/campaigns/{draft.pk}/listen/").status_code == 404


def test_the_home_page_links_to_listening_with_progress(small_campaign, bob) -> None:
    factories.make_comparison(small_campaign)
    html = client_for(bob).get("/").content.decode()
    assert f"/campaigns/{small_campaign.pk}/listen/" in html and "Start listening" in html
    assert "0 done · 1 left of 1" in html


def test_annotators_get_403_on_staff_pages(bob, small_campaign) -> None:
    """The staff pages next to the listening link on the home page answer bob with 403, not a crash."""
    client = client_for(bob)
    candidates = [f"/campaigns/{small_campaign.pk}/agreement/", f"/campaigns/{small_campaign.pk}/exports/", "/rm/"]
    present = []
    for url in candidates:
        try:
            resolve(url)
        except Resolver404:
            continue
        present.append(url)
        assert client.get(url).status_code == 403, url
    assert present, "no staff page is routed yet"


def test_audio_stays_available_while_a_lapsed_reservation_can_still_vote(held, bob) -> None:
    Assignment.objects.filter(pk=held.pk).update(status=Assignment.Status.EXPIRED)
    assert client_for(bob).get(audio_url(held, "A")).status_code == 200


def test_it_computes_missing_peaks_on_first_request_and_caches_them(held, bob) -> None:
    clip = held.comparison.clip_b  # displayed as A
    Clip.objects.filter(pk=clip.pk).update(peaks=None)
    response = client_for(bob).get(f"/api/v1/campaigns/{held.comparison.campaign_id}/next-assignment")
    peaks = response.json()["assignment"]["clips"]["A"]["peaks"]
    assert len(peaks) > 100 and max(peaks) > 0.1
    clip.refresh_from_db()
    assert clip.peaks is not None and len(clip.peaks) == len(peaks)


def test_a_lapsed_page_whose_comparison_filled_up_moves_on_with_a_message(held, bob, alice, charlie) -> None:
    Assignment.objects.filter(pk=held.pk).update(status=Assignment.Status.EXPIRED)
    factories.make_vote(held.comparison, alice)
    factories.make_vote(held.comparison, charlie)
    client = client_for(bob)
    response = client.get(f"/listen/{held.public_id}/", follow=True)
    assert response.redirect_chain[0][0] == f"/campaigns/{held.comparison.campaign_id}/listen/"
    assert "received all the votes it needs" in response.content.decode()


def test_a_lapsed_page_with_room_still_opens(held, bob) -> None:
    Assignment.objects.filter(pk=held.pk).update(status=Assignment.Status.EXPIRED)
    assert client_for(bob).get(f"/listen/{held.public_id}/").status_code == 200
