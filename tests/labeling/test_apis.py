"""REST for annotators: next assignment, vote, skip; status codes, JSON and database state."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.catalog.models import Campaign
from annotate.labeling.models import Assignment, AudioDelivery, Skip, Vote
from tests import factories

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse


def login(client: Client, user) -> Client:  # type: ignore[no-untyped-def]
    client.force_login(user)
    return client


def next_url(campaign: Campaign) -> str:
    return f"/api/v1/campaigns/{campaign.pk}/next-assignment"


def post(client: Client, url: str, body: dict) -> _MonkeyPatchedWSGIResponse:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def vote_body(**overrides: object) -> dict:
    body: dict = {
        "alignment": "B",
        "alignment_confidence": 5,
        "musicality": "A",
        "musicality_confidence": 3,
        "feedback": "B has the requested piano.",
        "listened": {"A": [[0, 2]], "B": [[0, 2]]},
        "time_on_task_s": 30.5,
    }
    body.update(overrides)
    return body


def fetch_audio(client: Client | APIClient, assignment: dict, side: str) -> bytes:
    response = client.get(assignment["clips"][side]["audio_url"])
    assert response.status_code == 200, response
    return b"".join(response.streaming_content)  # type: ignore[union-attr]


@pytest.fixture
def served(small_campaign, bob, client) -> dict:
    """bob, logged in, holding an assignment handed out a minute ago whose two clips his page has fetched."""
    comparison = factories.make_comparison(small_campaign, systems=("secret-gen-x", "secret-gen-y"))
    login(client, bob)
    body = client.get(next_url(small_campaign)).json()
    for side in ("A", "B"):
        fetch_audio(client, body["assignment"], side)
    Assignment.objects.filter(public_id=body["assignment"]["id"]).update(
        created_at=Assignment.objects.get(public_id=body["assignment"]["id"]).created_at - timedelta(minutes=1)
    )
    return {"body": body, "comparison": comparison, "client": client}


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_it_returns_the_next_assignment_without_revealing_systems_or_files(served) -> None:
    body, comparison = served["body"], served["comparison"]
    assignment = body["assignment"]
    text = json.dumps(body)
    for secret in (
        "secret-gen",
        comparison.clip_a.sha256,
        comparison.clip_a.original_name,
        comparison.clip_b.original_name,
        "clips/",
        '"clip_id"',
    ):
        assert secret not in text
    assert set(assignment["clips"]) == {"A", "B"}
    assert assignment["clips"]["A"]["audio_url"] == f"/listen/{assignment['id']}/audio/A"
    assert assignment["clips"]["A"]["required_listen_s"] == 1.0
    assert len(assignment["clips"]["B"]["peaks"]) > 100
    assert assignment["instruction"]["prompt"] == comparison.instruction.text
    assert body["progress"] == {
        "done": 0,
        "skipped": 0,
        "remaining": 1,
        "total": 1,
        "campaign_votes": 0,
        "campaign_votes_target": 2,
    }


def test_it_says_when_nothing_is_left(small_campaign, bob, client) -> None:
    login(client, bob)
    response = client.get(next_url(small_campaign))
    assert response.status_code == 200 and response.json()["assignment"] is None


def test_it_hides_draft_and_unknown_campaigns(bob, client) -> None:
    draft = factories.make_campaign(status=Campaign.Status.DRAFT)
    login(client, bob)
    assert client.get(next_url(draft)).status_code == 404
    assert client.get("/api/v1/campaigns/999999/next-assignment").status_code == 404


def test_it_requires_authentication(small_campaign, client) -> None:
    assert client.get(next_url(small_campaign)).status_code in (401, 403)


def test_it_records_a_vote_in_canonical_orientation(served, bob) -> None:
    assignment = Assignment.objects.get(public_id=served["body"]["assignment"]["id"])
    response = post(served["client"], served["body"]["assignment"]["vote_url"], vote_body())
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["alignment"], data["musicality"]) == ("B", "A")
    assert data["next_url"] == f"/campaigns/{served['comparison'].campaign_id}/listen/"
    vote = Vote.objects.get(annotator=bob)
    expected_alignment = "a" if assignment.swapped else "b"
    assert vote.alignment_choice == expected_alignment and vote.presented_swapped == assignment.swapped
    # The server's time on task (reservation a minute ago → now); the page's 30.5 s is kept beside it.
    assert vote.time_on_task_s is not None and vote.client_time_on_task_s is not None
    assert 60 <= vote.time_on_task_s < 120 and data["time_on_task_s"] == pytest.approx(vote.time_on_task_s, abs=0.01)
    assert vote.client_time_on_task_s == 30.5


def test_it_ignores_a_client_start_time_and_refuses_an_absurd_client_duration(served, bob) -> None:
    url = served["body"]["assignment"]["vote_url"]
    absurd = post(served["client"], url, vote_body(time_on_task_s=1e300))
    assert absurd.status_code == 400 and absurd.json()["error"]["field"] == "time_on_task_s"
    response = post(served["client"], url, vote_body(started_at="2099-01-01T00:00:00Z"))
    assert response.status_code == 201
    vote = Vote.objects.get(annotator=bob)
    assert vote.started_at == Assignment.objects.get(public_id=served["body"]["assignment"]["id"]).created_at


# --- token clients: the same rules as the page -------------------------------------------------------


@pytest.fixture
def tiny_campaign(db: None) -> Campaign:
    """1.5 s clips, 1 s of listening each: an honest client can wait for real."""
    campaign = factories.make_campaign(name="Tiny", overlap_target=2, min_listen_seconds=1.0, min_listen_fraction=None)
    factories.make_comparison(campaign, seconds=1.5)
    return campaign


def test_a_token_client_can_fetch_its_own_assignments_audio_but_not_bobs(tiny_campaign, bob, charlie) -> None:
    api = token_client(bob)
    assignment = api.get(next_url(tiny_campaign)).json()["assignment"]
    data = fetch_audio(api, assignment, "A")
    assert data[:2] == b"\xff\xfb"  # the MP3 rendition, not a 302 to the login page
    assert token_client(charlie).get(assignment["clips"]["A"]["audio_url"]).status_code == 404
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad.get(assignment["clips"]["A"]["audio_url"]).status_code == 401
    assert APIClient().get(assignment["clips"]["A"]["audio_url"]).status_code == 302


def test_a_token_client_that_never_fetches_audio_is_refused(tiny_campaign, bob) -> None:
    api = token_client(bob)
    assignment = api.get(next_url(tiny_campaign)).json()["assignment"]
    time.sleep(3.2)  # waiting is not enough
    response = api.post(assignment["vote_url"], vote_body(listened={"A": [[0, 1.5]], "B": [[0, 1.5]]}), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "listening_not_delivered" and error["field"] == "listened"
    assert error["details"] == {"clip": "A", "missing": [[0.0, 1.5]]} and "Clip A" in error["message"]
    assert Vote.objects.count() == 0


def test_a_token_client_claiming_both_clips_at_once_is_refused(tiny_campaign, bob) -> None:
    api = token_client(bob)
    assignment = api.get(next_url(tiny_campaign)).json()["assignment"]
    fetch_audio(api, assignment, "A")
    fetch_audio(api, assignment, "B")
    claims = {"A": [[0, 1.5]], "B": [[0, 1.5]]}
    # 3 s of claims right after the hand-out: only possible if A and B played at the same time.
    response = api.post(assignment["vote_url"], vote_body(listened=claims), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "listening_exceeds_elapsed_time" and error["details"]["claimed_s"] == 3.0
    assert error["details"]["elapsed_s"] < 2.0 and "one at a time" in error["message"]
    assert Vote.objects.count() == 0


def test_an_honest_token_client_that_fetches_both_clips_and_waits_is_accepted(tiny_campaign, bob) -> None:
    api = token_client(bob)
    started = time.monotonic()
    assignment = api.get(next_url(tiny_campaign)).json()["assignment"]
    fetch_audio(api, assignment, "A")
    fetch_audio(api, assignment, "B")
    time.sleep(max(0.0, 2.1 - (time.monotonic() - started)))  # as long as playing A then B takes, less the slack
    claims = {"A": [[0, 1.5]], "B": [[0, 1.5]]}
    response = api.post(assignment["vote_url"], vote_body(listened=claims, time_on_task_s=1e5), format="json")
    assert response.status_code == 201, response.json()
    vote = Vote.objects.get(annotator=bob)
    assert (vote.listened_a_s, vote.listened_b_s) == (pytest.approx(1.5), pytest.approx(1.5))
    assert vote.time_on_task_s is not None
    assert 2.0 <= vote.time_on_task_s < 30 and vote.client_time_on_task_s == 1e5
    assert AudioDelivery.objects.filter(assignment=vote.assignment, via_accel_redirect=False).count() == 2


def test_it_answers_409_to_a_double_submit(served) -> None:
    url = served["body"]["assignment"]["vote_url"]
    assert post(served["client"], url, vote_body()).status_code == 201
    second = post(served["client"], url, vote_body(alignment="A"))
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "duplicate_vote"
    assert Vote.objects.count() == 1


def test_it_answers_400_naming_the_clip_that_needs_listening(served) -> None:
    response = post(
        served["client"],
        served["body"]["assignment"]["vote_url"],
        vote_body(listened={"A": [[0, 2]], "B": [[0.2, 0.3]]}),
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "listening_requirement_not_met" and error["field"] == "listened"
    assert error["details"]["clip"] == "B" and error["details"]["listened_s"] < error["details"]["required_s"]
    assert "Clip B" in error["message"]
    assert Vote.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alignment", "C"),
        ("alignment_confidence", 9),
        ("musicality_confidence", None),
        ("listened", {"A": [[1]]}),
        ("feedback", ""),
    ],
)
def test_it_answers_400_naming_the_malformed_field(served, field, value) -> None:
    response = post(served["client"], served["body"]["assignment"]["vote_url"], vote_body(**{field: value}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["field"] == field and field in error["message"]
    assert any(path.split(".")[0] == field for path in error["details"]), error
    assert Vote.objects.count() == 0


@pytest.mark.parametrize(
    ("listened", "path"),
    [
        ({"A": [[0, 2]], "B": [[0, 2], [-1, 3]]}, "listened.B.1"),
        ({"A": [[0, "2"]], "B": [[0, 2]]}, "listened.A.0"),
        ({"A": [[0, 2, 3]], "B": [[0, 2]]}, "listened.A.0"),
        ({"A": "0-2", "B": [[0, 2]]}, "listened.A"),
        (["A", "B"], "listened"),
    ],
)
def test_a_malformed_listening_claim_names_the_interval(served, listened, path) -> None:
    response = post(served["client"], served["body"]["assignment"]["vote_url"], vote_body(listened=listened))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["field"] == "listened" and path in error["details"], error
    assert Vote.objects.count() == 0


def test_unknown_sides_in_a_listening_claim_are_ignored(served) -> None:
    fetch_audio(served["client"], served["body"]["assignment"], "A")
    fetch_audio(served["client"], served["body"]["assignment"], "B")
    claims = {"A": [[0, 2]], "B": [[0, 2]], "C": "anything"}
    response = post(served["client"], served["body"]["assignment"]["vote_url"], vote_body(listened=claims))
    assert response.status_code == 201, response.json()


def test_it_records_a_skip(served, bob) -> None:
    response = post(served["client"], served["body"]["assignment"]["skip_url"], {"reason": "broken_audio"})
    assert response.status_code == 201
    assert Skip.objects.get(annotator=bob).reason == "broken_audio"
    assert post(served["client"], served["body"]["assignment"]["vote_url"], vote_body()).status_code == 409


def test_charlie_cannot_vote_or_skip_on_bobs_assignment(served, charlie) -> None:
    other = login(Client(), charlie)
    assignment = served["body"]["assignment"]
    assert post(other, assignment["vote_url"], vote_body()).status_code == 404
    assert post(other, assignment["skip_url"], {"reason": "other", "note": "x"}).status_code == 404
    assert Vote.objects.count() == 0 and Skip.objects.count() == 0


def test_session_posts_need_a_csrf_token(served, bob) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(bob)
    response = post(strict, served["body"]["assignment"]["vote_url"], vote_body())
    assert response.status_code == 403
    assert Vote.objects.count() == 0


def test_the_schema_documents_the_annotator_endpoints(alice, client) -> None:
    login(client, alice)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    paths = schema["paths"]
    assert "/api/v1/campaigns/{campaign_id}/next-assignment" in paths
    vote = paths["/api/v1/assignments/{assignment_id}/vote"]["post"]
    assert {"201", "400", "404", "409"} <= set(vote["responses"])
    assert "/api/v1/assignments/{assignment_id}/skip" in paths


def test_it_answers_409_when_a_lapsed_reservation_finds_the_comparison_full(served, alice, charlie) -> None:
    assignment = Assignment.objects.get(public_id=served["body"]["assignment"]["id"])
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.EXPIRED)
    factories.make_vote(served["comparison"], alice)
    factories.make_vote(served["comparison"], charlie)
    response = post(served["client"], served["body"]["assignment"]["vote_url"], vote_body())
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "comparison_full" and "continue" in error["message"]
    assert Vote.objects.filter(annotator__username="bob").count() == 0


def test_it_refuses_no_preference_where_the_campaign_asks_for_a_or_b(served, bob) -> None:
    response = post(served["client"], served["body"]["assignment"]["vote_url"], vote_body(alignment="tie"))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "alignment" and not Vote.objects.filter(annotator=bob).exists()


def test_it_stores_no_preference_as_a_tie_where_the_campaign_offers_it(served, bob) -> None:
    Campaign.objects.filter(pk=served["comparison"].campaign_id).update(allow_no_preference=True)
    response = post(served["client"], served["body"]["assignment"]["vote_url"], vote_body(musicality="tie"))
    assert response.status_code == 201, response.content
    assert response.json()["musicality"] == "tie"
    vote = Vote.objects.get(annotator=bob)
    assert vote.musicality_choice == "t" and vote.alignment_choice in ("a", "b")
