"""A bad day for the broker: Redis frozen (SIGSTOP) mid-service. Every request answers within 2 s, never
with a 5xx; votes are stored, and work that can't be queued is marked failed instead of left queued.

Each test freezes its own redis-server (tests/faults.py), never the shared one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.exports.models import Export
from annotate.labeling.models import Vote
from rm_service.models import ModelVersion, ScoringJob, TrainingRun
from tests import factories
from tests.faults import OwnRedis, own_redis

LIMIT_S = 2.0


def _token_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def frozen_redis(settings, tmp_path: Path) -> Iterator[OwnRedis]:  # type: ignore[no-untyped-def]
    """Cache, broker and result backend all on a private Redis that the test then freezes."""
    with own_redis(tmp_path) as server:
        settings.REDIS_URL = settings.CELERY_BROKER_URL = server.url
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": server.url,
                "OPTIONS": {"socket_timeout": settings.REDIS_TIMEOUT_S, "socket_connect_timeout": 1.0},
            }
        }
        server.freeze()
        yield server


def _timed(call):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_a_vote_is_stored_quickly_while_the_broker_is_frozen(bob, frozen_redis) -> None:  # type: ignore[no-untyped-def]
    campaign = factories.make_campaign(name="Frozen", min_listen_seconds=1.0, min_listen_fraction=None)
    factories.make_comparison(campaign, seconds=1.5)
    api = _token_client(bob)
    assignment = api.get(f"/api/v1/campaigns/{campaign.pk}/next-assignment").json()["assignment"]
    for side in ("A", "B"):
        b"".join(api.get(assignment["clips"][side]["audio_url"]).streaming_content)  # type: ignore[attr-defined]
    time.sleep(2.1)  # A then B, one at a time
    body = {
        "alignment": "A",
        "alignment_confidence": 4,
        "musicality": "B",
        "musicality_confidence": 3,
        "feedback": "A follows the prompt.",
        "listened": {"A": [[0, 1.0]], "B": [[0, 1.0]]},
    }
    response, elapsed = _timed(lambda: api.post(assignment["vote_url"], body, format="json"))
    assert response.status_code == 201, response.content
    assert elapsed < LIMIT_S
    assert Vote.objects.filter(annotator=bob).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_export_request_answers_503_and_is_marked_failed(alice, frozen_redis) -> None:  # type: ignore[no-untyped-def]
    campaign = factories.make_campaign(name="Export under a frozen broker")
    comparison = factories.make_comparison(campaign)
    factories.make_vote(comparison, factories.make_annotator("voter"))
    api = _token_client(alice)
    response, elapsed = _timed(lambda: api.post(f"/api/v1/campaigns/{campaign.pk}/exports", {}, format="json"))
    assert elapsed < LIMIT_S
    assert response.status_code == 503 and response.json()["error"]["code"] == "broker_unavailable"
    export = Export.objects.get(campaign=campaign)
    assert export.status == Export.Status.FAILED and "task queue is unavailable" in export.error


@pytest.mark.django_db(transaction=True)
def test_scoring_and_training_answer_503_quickly(alice, frozen_redis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ModelVersion.objects.create(name="active", checkpoint_path="/not/needed", is_active=True)
    api = _token_client(alice)
    clip = factories.make_clip()
    for path, body in (
        ("/api/v1/score", {"items": [{"clip_id": clip.pk}]}),
        ("/api/v1/rank", {"instruction": {"text": "x"}, "candidates": [{"clip_id": clip.pk}]}),
        ("/api/v1/training-runs", {"train_jsonl": str(tmp_path / "t.jsonl")}),
    ):
        response, elapsed = _timed(lambda path=path, body=body: api.post(path, body, format="json"))
        assert elapsed < LIMIT_S, path
        assert response.status_code == 503, (path, response.content)
        assert response["Content-Type"] == "application/json"
    assert not ScoringJob.objects.filter(status="queued").exists()
    assert not TrainingRun.objects.filter(status="queued").exists()


@pytest.mark.django_db(transaction=True)
def test_health_reports_the_frozen_broker(client, frozen_redis) -> None:  # type: ignore[no-untyped-def]
    response, elapsed = _timed(lambda: client.get("/healthz"))
    assert elapsed < LIMIT_S
    assert response.status_code == 503 and response.json()["broker"]["status"] == "down"
