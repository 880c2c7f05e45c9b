"""Pages and audio: who may fetch what, HTTP Range, path traversal, X-Accel-Redirect, no leaks."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import Resolver404, resolve

from annotate.catalog.models import Campaign, Clip, ClipRendition
from annotate.catalog.services import clip_rendition_ensure
from annotate.labeling.models import Assignment, AudioDelivery
from annotate.labeling.selectors import assignment_clip
from annotate.labeling.services import skip_submit, vote_submit
from annotate.labeling.views import parse_range
from tests import factories
from tests.labeling.conftest import make_assignment, vote_kwargs


@pytest.fixture
def held(small_campaign, bob) -> Assignment:
    comparison = factories.make_comparison(small_campaign, modality="C", systems=("secret-gen-x", "secret-gen-y"))
    return make_assignment(comparison, bob, swapped=True, delivered=False)


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def audio_url(assignment: Assignment, side: str) -> str:
    return f"/listen/{assignment.public_id}/audio/{side}"


def served_bytes(assignment: Assignment, side: str) -> bytes:
    """The presentation rendition annotators get for a displayed side (made on first request if missing)."""
    clip = assignment_clip(assignment=assignment, side=side)
    assert clip is not None
    rendition, _ = clip_rendition_ensure(clip=clip, campaign=assignment.comparison.campaign)
    return (Path(settings.MEDIA_ROOT) / str(rendition.file.name)).read_bytes()


def body(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_it_streams_the_rendition_of_the_displayed_side(held, bob) -> None:
    response = client_for(bob).get(audio_url(held, "A"))
    assert response.status_code == 200
    data = body(response)
    # Swapped: A on the page is clip_b, served as its MP3 rendition, never the imported WAV.
    rendition = ClipRendition.objects.get(clip=held.comparison.clip_b)
    assert data == (Path(settings.MEDIA_ROOT) / str(rendition.file.name)).read_bytes()
    assert data[:2] == b"\xff\xfb" and b"RIFF" not in data[:64]
    assert response["Content-Type"] == "audio/mpeg" and response["Accept-Ranges"] == "bytes"
    assert "Content-Disposition" not in response and "Last-Modified" not in response


def test_it_serves_the_reference_clip(held, bob) -> None:
    response = client_for(bob).get(audio_url(held, "R"))
    assert response.status_code == 200
    assert body(response) == served_bytes(held, "R")


def test_it_answers_a_range_with_206(held, bob) -> None:
    data = served_bytes(held, "B")
    client = client_for(bob)
    response = client.get(audio_url(held, "B"), HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert body(response) == data[100:200]
    assert response["Content-Range"] == f"bytes 100-199/{len(data)}" and response["Content-Length"] == "100"
    tail = client.get(audio_url(held, "B"), HTTP_RANGE="bytes=-50")
    assert tail.status_code == 206 and body(tail) == data[-50:]
    open_ended = client.get(audio_url(held, "B"), HTTP_RANGE=f"bytes={len(data) - 10}-")
    assert body(open_ended) == data[-10:]


def test_a_and_b_answer_with_the_same_headers_apart_from_length(held, bob) -> None:
    client = client_for(bob)
    responses = {side: client.get(audio_url(held, side)) for side in ("A", "B")}
    headers = {side: dict(response.headers) for side, response in responses.items()}
    for side_headers in headers.values():
        side_headers.pop("Content-Length")
    assert headers["A"] == headers["B"]
    ranged = {side: client.get(audio_url(held, side), HTTP_RANGE="bytes=0-99") for side in ("A", "B")}
    for response in ranged.values():
        response.headers.pop("Content-Range")
    assert dict(ranged["A"].headers) == dict(ranged["B"].headers)


def test_it_records_what_it_delivered_as_listening_evidence(held, bob) -> None:
    client = client_for(bob)
    full = body(client.get(audio_url(held, "A")))
    partial = client.get(audio_url(held, "B"), HTTP_RANGE="bytes=24626-48625")  # 1 s from second 1
    assert partial.status_code == 206 and len(body(partial)) == 24000
    deliveries = {d.side: d for d in AudioDelivery.objects.filter(assignment=held)}
    rendition_a = deliveries["A"].rendition
    assert deliveries["A"].bytes_delivered == len(full) and deliveries["A"].start_s == 0.0
    assert deliveries["A"].end_s == pytest.approx(rendition_a.duration_s)
    assert rendition_a.audio_offset_bytes == 626 and rendition_a.byte_rate == 24000
    assert (deliveries["B"].start_s, deliveries["B"].end_s) == (pytest.approx(1.0), pytest.approx(2.0))


def test_an_aborted_stream_counts_only_what_was_streamed(small_campaign, bob) -> None:
    comparison = factories.make_comparison(small_campaign, seconds=6.0)
    assignment = make_assignment(comparison, bob, delivered=False)
    response = client_for(bob).get(audio_url(assignment, "A"))
    stream = response._iterator  # type: ignore[attr-defined]  # the test client's closing wrapper around the view's stream
    first_chunk = next(stream)
    stream.close()  # the player went away after one chunk: the server closes the response
    delivery = AudioDelivery.objects.get(assignment=assignment)
    assert delivery.bytes_delivered == len(first_chunk) < 6 * 24000
    assert delivery.end_s == pytest.approx((len(first_chunk) - 626) / 24000)


def test_staff_previews_are_not_listening_evidence(held, alice) -> None:
    assert body(client_for(alice).get(audio_url(held, "A")))
    assert not AudioDelivery.objects.filter(assignment=held).exists()


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
    factories.deliver_audio(held)
    vote_submit(**vote_kwargs(held))
    assert client_for(bob).get(audio_url(held, "A")).status_code == 403


def test_audio_closes_once_the_annotator_skipped(held, bob) -> None:
    skip_submit(annotator=bob, assignment_id=held.public_id, reason="broken_audio")
    assert client_for(bob).get(audio_url(held, "B")).status_code == 403


def test_staff_can_fetch_any_assignments_audio(held, alice) -> None:
    factories.deliver_audio(held)
    vote_submit(**vote_kwargs(held))
    assert client_for(alice).get(audio_url(held, "A")).status_code == 200


def test_it_rejects_unknown_sides_and_ids(held, bob) -> None:
    client = client_for(bob)
    assert client.get(audio_url(held, "C")).status_code == 404
    assert client.get(audio_url(held, "..")).status_code == 404
    assert client.get("/listen/00000000-0000-0000-0000-000000000000/audio/A").status_code == 404


def test_it_never_serves_a_file_outside_media_root(held, bob, tmp_path) -> None:
    secret = tmp_path / "secret.wav"
    factories.write_tone(secret)
    outside = "../" * 12 + str(secret).lstrip("/")
    # Crafted (or corrupted) rows pointing out of MEDIA_ROOT: a rendition (A on the page is clip_b) ...
    served_bytes(held, "A")
    ClipRendition.objects.filter(clip=held.comparison.clip_b_id).update(file=outside)
    response = client_for(bob).get(audio_url(held, "A"))
    assert response.status_code == 404
    # ... and an original whose rendition does not exist yet: nothing outside is rendered either.
    Clip.objects.filter(pk=held.comparison.clip_a_id).update(file=outside)
    assert client_for(bob).get(audio_url(held, "B")).status_code == 404
    assert not ClipRendition.objects.filter(clip=held.comparison.clip_a_id).exists()


def test_it_hands_the_bytes_to_nginx_when_configured(held, bob, settings) -> None:
    settings.AUDIO_ACCEL_REDIRECT_PREFIX = "/protected-media/"
    response = client_for(bob).get(audio_url(held, "B"), HTTP_RANGE="bytes=626-24625")
    assert response.status_code == 200 and response.content == b""
    rendition = ClipRendition.objects.get(clip=held.comparison.clip_a)
    assert response["X-Accel-Redirect"] == "/protected-media/" + str(rendition.file.name)
    assert response["Content-Type"] == "audio/mpeg"
    # Django still saw the request and its Range: nginx will send that range, so it counts as delivered.
    delivery = AudioDelivery.objects.get(assignment=held)
    assert (delivery.side, delivery.via_accel_redirect, delivery.bytes_delivered) == ("B", True, 24000)
    assert (delivery.start_s, delivery.end_s) == (0.0, pytest.approx(1.0))


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


def test_the_campaign_link_reserves_only_on_post_and_a_get_resumes(small_campaign, bob) -> None:
    factories.make_comparison(small_campaign)
    client = client_for(bob)
    offer = client.get(f"/campaigns/{small_campaign.pk}/listen/")
    # A GET (which another site can trigger with a link) reserves nothing; it offers a CSRF-checked form.
    assert offer.status_code == 200 and not Assignment.objects.exists()
    assert 'method="post"' in offer.content.decode() and "Start listening" in offer.content.decode()
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(bob)
    assert csrf_client.post(f"/campaigns/{small_campaign.pk}/listen/").status_code == 403
    assert not Assignment.objects.exists()
    response = client.post(f"/campaigns/{small_campaign.pk}/listen/")
    assignment = Assignment.objects.get(annotator=bob)
    assert response.status_code == 302 and response["Location"] == f"/listen/{assignment.public_id}/"
    resumed = client.get(f"/campaigns/{small_campaign.pk}/listen/")
    assert resumed.status_code == 302 and resumed["Location"] == f"/listen/{assignment.public_id}/"
    assert Assignment.objects.count() == 1


def test_the_campaign_link_says_when_the_annotator_is_done(small_campaign, bob) -> None:
    for method in ("get", "post"):
        response = getattr(client_for(bob), method)(f"/campaigns/{small_campaign.pk}/listen/")
        assert response.status_code == 200 and "Nothing left for you" in response.content.decode()


def test_a_voted_assignment_page_moves_on(held, bob) -> None:
    factories.deliver_audio(held)
    vote_submit(**vote_kwargs(held))
    response = client_for(bob).get(f"/listen/{held.public_id}/")
    assert response.status_code == 302 and response["Location"].endswith("/listen/")


def test_the_listening_page_is_never_cached_and_links_back_after_a_login(held, bob) -> None:
    # Back after a vote must reach the server (which moves on), not show the stale voted page.
    response = client_for(bob).get(f"/listen/{held.public_id}/")
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    assert f'data-login-url="/accounts/login/?next=/listen/{held.public_id}/"' in html
    for control in ('id="volume"', 'id="loop-start"', 'id="loop-end"', 'id="loop-clear"', "<kbd>K</kbd>"):
        assert control in html


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
    assert clip.peaks == peaks  # stored as served: rounded to PEAK_DECIMALS
    assert all(round(value, 3) == value for value in peaks)


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


def test_every_clip_response_of_an_imported_campaign_has_one_content_type_and_codec(bob, tmp_path) -> None:
    """WAV, FLAC, OGG and MP3 from four "systems", at four rates and levels: the annotator can't tell them apart."""
    import json

    import numpy as np
    import soundfile as sf

    from annotate.catalog.services import campaign_import

    root = tmp_path / "audio"
    root.mkdir()
    sources = {"a.wav": (16000, 0.8), "b.flac": (48000, 0.05), "c.ogg": (32000, 0.3), "d.mp3": (22050, 0.5)}
    for name, (rate, level) in sources.items():
        t = np.arange(3 * rate) / rate
        samples = level * np.sin(2 * np.pi * 330 * t) * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))
        fmt = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}[name.split(".")[1]]
        with sf.SoundFile(str(root / name), "w", samplerate=rate, channels=1, format=fmt) as handle:
            handle.artist = "secret-gen-" + name[0]
            handle.write(samples.astype(np.float32))
    rows = [
        {"prompt": "one", "audio-path": "a.wav", "audio2": "b.flac", "model_a": "sa", "model_b": "sb"},
        {"prompt": "two", "audio-path": "c.ogg", "audio2": "d.mp3", "ref-audio-path": "a.wav"},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = campaign_import(manifest_path=manifest, audio_root=root, campaign_name="Mixed", activate=True)
    client = client_for(bob)
    seen = set()
    for comparison in report.campaign.comparisons.all():
        assignment = make_assignment(comparison, bob, delivered=False)
        for side in ("A", "B", "R") if comparison.instruction.reference_clip else ("A", "B"):
            response = client.get(audio_url(assignment, side))
            data = body(response)
            assert b"secret-gen" not in data
            frame = data[626:630]  # the first audio frame, after LAME's Info frame
            assert frame[0] == 0xFF
            # (content type, caching, MPEG-1 Layer III, bitrate index, sample-rate index, channel mode)
            seen.add(
                (
                    response["Content-Type"],
                    response["Cache-Control"],
                    frame[1] & 0xFE,
                    frame[2] >> 4,
                    (frame[2] >> 2) & 3,
                    frame[3] >> 6,
                )
            )
    assert seen == {("audio/mpeg", "private, max-age=3600", 0xFA, 11, 0, 1)}  # 192 kbit/s, 44.1 kHz, joint stereo


def test_the_listening_page_offers_no_preference_only_where_the_campaign_allows_it(held, bob) -> None:
    page = client_for(bob).get(f"/listen/{held.public_id}/").content.decode()
    assert 'value="tie"' not in page
    Campaign.objects.filter(pk=held.comparison.campaign_id).update(allow_no_preference=True)
    page = client_for(bob).get(f"/listen/{held.public_id}/").content.decode()
    assert page.count('value="tie"') == 2 and "No preference" in page
