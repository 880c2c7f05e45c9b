"""The batching scoring server (rm_service/scoring_server.py) and its web side (services/serving.py).

The server runs as a thread of this test process against the test Redis and a tiny trained checkpoint;
requests go through the real HTTP API with a token. Fault tests use their own redis-server.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.catalog.models import Clip
from rm_service.models import ModelVersion, ScoringJob
from rm_service.scoring_server import ScoringServer
from rm_service.services import serving
from rm_service.services.uploads import clip_path
from tests import factories
from tests.faults import own_redis


def _token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _start(
    *, wait_s: float = 0.005, max_items: int = 64, read_timeout_s: float = 5.0
) -> tuple[ScoringServer, threading.Thread]:
    client = serving.redis_client(read_timeout_s=read_timeout_s)
    server = ScoringServer(client=client, name="test-server", wait_s=wait_s, max_items=max_items)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.client.exists(serving.ALIVE_KEY):
        assert time.monotonic() < deadline, "the scoring server never said it is alive"
        time.sleep(0.01)
    return server, thread


def _stop(server: ScoringServer, thread: threading.Thread) -> None:
    server.stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.fixture
def clean_queue() -> Iterator[redis.Redis]:
    client = serving.redis_client()
    client.delete(serving.REQUESTS_KEY, serving.ALIVE_KEY)
    yield client
    client.delete(serving.REQUESTS_KEY, serving.ALIVE_KEY)


@pytest.fixture
def scoring_server(clean_queue: redis.Redis) -> Iterator[ScoringServer]:
    server, thread = _start(wait_s=0.2)  # a wide window, so concurrent test requests surely share a batch
    yield server
    _stop(server, thread)


@pytest.fixture
def tiny_version(db: None, tiny_checkpoint: Path) -> ModelVersion:
    return ModelVersion.objects.create(name="tiny", checkpoint_path=str(tiny_checkpoint), is_active=True)


def _item(clip: Clip) -> dict[str, Any]:
    """A stored job item, as the API resolves it."""
    return {"audio": str(clip_path(clip)), "audio_sha256": clip.sha256, "text": "", "lyrics": "", "ref_audio": None}


def _message(version: ModelVersion, items: list[dict[str, Any]], *, kind: str = "score") -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "kind": kind,
        "items": items,
        "params": {"batch_size": 16, "max_dur": None, "wait": True},
        "version": {"id": version.pk, "checkpoint_path": version.checkpoint_path},
        "deadline": time.time() + 60,
    }


def _serve_messages(messages: list[dict[str, Any]], *, max_items: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Queue every message first, then start a server: the replies and the request count of each batch."""
    client = serving.redis_client(read_timeout_s=90)
    client.delete(serving.REQUESTS_KEY)
    client.rpush(serving.REQUESTS_KEY, *[json.dumps(m) for m in messages])
    server, thread = _start(max_items=max_items)
    try:
        replies = []
        for m in messages:
            popped = client.blpop([serving.REPLY_KEY_PREFIX + m["id"]], timeout=60)
            assert popped is not None, "no reply"
            replies.append(json.loads(popped[1]))
    finally:
        _stop(server, thread)
    return replies, list(server.batch_sizes)


def _requests() -> list[list[dict[str, Any]]]:
    """Requests of one to three items with different clip lengths, texts, lyrics and references."""
    clips = [factories.make_clip(seconds=1.0 + 0.4 * i) for i in range(6)]
    return [
        [_item(clips[0]) | {"text": "calm piano"}],
        [_item(clips[1]) | {"text": "fast strings", "lyrics": "la la la"}, _item(clips[2])],
        [_item(clips[3]) | {"text": "a", "ref_audio": str(clip_path(clips[4]))}],
        [_item(clips[4]) | {"text": "dark ambient drone with a long description " * 4}],
        [_item(c) | {"text": "best of three"} for c in clips[3:6]],
        [_item(clips[5])],
    ]


@pytest.mark.django_db
def test_it_gives_a_request_the_same_scores_batched_as_alone(tiny_version: ModelVersion, clean_queue) -> None:  # type: ignore[no-untyped-def]
    requests = _requests()
    messages = [_message(tiny_version, items) for items in requests]
    alone, alone_batches = _serve_messages(messages, max_items=1)  # max 1 item: every request on its own
    for m in messages:
        m["id"] = uuid.uuid4().hex
    together, batches = _serve_messages(messages, max_items=64)
    assert alone_batches == [1] * len(messages)
    assert batches == [len(messages)], "the queued requests were not scored as one batch"
    worst = 0.0
    for single, batched in zip(alone, together, strict=True):
        assert single["ok"] and batched["ok"]
        a = np.array([[r["alignment"], r["musicality"]] for r in single["result"]["items"]])
        b = np.array([[r["alignment"], r["musicality"]] for r in batched["result"]["items"]])
        assert a.shape == b.shape
        worst = max(worst, float(np.abs(a - b).max()))
        # Padding changes the shapes of the matrix products, so float32 rounding may differ (as in the core's
        # batch-invariance tests); anything beyond rounding would mean rows leak into each other.
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=1e-5)
    print(f"largest batched-vs-alone difference: {worst:.2e}")


@pytest.mark.django_db
def test_it_fails_only_the_bad_request_of_a_batch(tiny_version: ModelVersion, clean_queue) -> None:  # type: ignore[no-untyped-def]
    good = factories.make_clip()
    gone = factories.make_clip()
    bad_item = _item(gone)
    Path(clip_path(gone)).unlink()  # deleted after the API resolved it
    messages = [_message(tiny_version, [_item(good)]), _message(tiny_version, [bad_item])]
    replies, batches = _serve_messages(messages, max_items=64)
    assert batches == [2]
    assert replies[0]["ok"] and len(replies[0]["result"]["items"]) == 1
    assert not replies[1]["ok"] and "not found" in replies[1]["error"]
    assert str(clip_path(gone)) not in replies[1]["error"], "a server path leaked into the error"


@pytest.mark.django_db
def test_it_scores_and_ranks_over_rest_without_celery(alice, tiny_version, rm_worker_alive, scoring_server) -> None:  # type: ignore[no-untyped-def]
    clips = [factories.make_clip(seconds=1.5) for _ in range(3)]
    api = _token_client(alice)
    items = [{"clip_id": clips[0].pk, "text": "calm piano"}, {"clip_id": clips[1].pk, "lyrics": "la"}]
    response = api.post("/api/v1/score", {"items": items}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "succeeded" and body["model_version"]["id"] == tiny_version.pk
    assert [sorted(item) for item in body["items"]] == [["alignment", "index", "musicality"]] * 2
    job = ScoringJob.objects.get(public_id=body["job"])  # recorded like a Celery job, pollable the same way
    assert job.status == "succeeded" and job.worker == "test-server" and job.created_by == alice
    assert api.get(body["status_url"]).json()["items"] == body["items"]

    ranked = api.post(
        "/api/v1/rank",
        {
            "instruction": {"text": "calm"},
            "weights": [1, 0],
            "top_k": 2,
            "candidates": [{"clip_id": c.pk} for c in clips],
        },
        format="json",
    )
    assert ranked.status_code == 200, ranked.json()
    candidates = ranked.json()["candidates"]
    assert [c["score"] for c in candidates] == sorted((c["alignment"] for c in candidates), reverse=True)
    assert [c["top_k"] for c in candidates] == [True, True, False]
    assert scoring_server.batch_sizes == [1, 1]


@pytest.mark.django_db(transaction=True)
def test_it_batches_concurrent_api_requests(alice, tiny_checkpoint, rm_worker_alive, scoring_server) -> None:  # type: ignore[no-untyped-def]
    ModelVersion.objects.create(name="tiny", checkpoint_path=str(tiny_checkpoint), is_active=True)
    clips = [factories.make_clip(seconds=1.0) for _ in range(6)]
    token = Token.objects.get_or_create(user=alice)[0].key

    def post(clip: Clip) -> tuple[int, dict[str, Any]]:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = api.post("/api/v1/score", {"items": [{"clip_id": clip.pk, "text": "x"}]}, format="json")
        return response.status_code, response.json()

    # Thread start-up in one test process is uneven on a busy machine: up to three bursts, and at least one
    # of them must share a forward pass; every request of every burst is answered.
    for burst in range(1, 4):
        with ThreadPoolExecutor(len(clips)) as pool:
            answers = list(pool.map(post, clips))
        assert all(code == 200 and body["status"] == "succeeded" for code, body in answers), answers
        # A real rm worker (rm_worker_alive) runs its own scoring thread and may take some requests.
        assert sum(scoring_server.batch_sizes) <= burst * len(clips)
        if max(scoring_server.batch_sizes) > 1:
            break
    assert max(scoring_server.batch_sizes) > 1, scoring_server.batch_sizes


@pytest.mark.django_db
def test_it_uses_the_celery_path_when_no_scoring_server_is_alive(
    alice, tiny_version, rm_worker_alive, clean_queue, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.RM_SCORE_SYNC_TIMEOUT_S = 0.2
    response = _token_client(alice).post(
        "/api/v1/score", {"items": [{"clip_id": factories.make_clip().pk}]}, format="json"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "queued"
    assert clean_queue.llen(serving.REQUESTS_KEY) == 0


@pytest.mark.django_db
def test_it_uses_the_celery_path_without_redis(alice, tiny_version, scoring_server, settings) -> None:  # type: ignore[no-untyped-def]
    settings.REDIS_URL = ""  # the embedded defaults of scripts/dev.sh: filesystem broker, no Redis
    job = serving.scoring_serve(user=alice, kind="score", items=[], params={}, version=tiny_version)
    assert job is None
    assert scoring_server.batch_sizes == []


@pytest.mark.django_db
def test_it_uses_the_celery_path_when_batching_is_off(
    alice, tiny_version, rm_worker_alive, scoring_server, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.RM_SCORE_BATCHING = False
    settings.RM_SCORE_SYNC_TIMEOUT_S = 0.2
    response = _token_client(alice).post(
        "/api/v1/score", {"items": [{"clip_id": factories.make_clip().pk}]}, format="json"
    )
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert scoring_server.batch_sizes == []


@pytest.mark.django_db
def test_it_sends_big_and_unwaited_requests_through_the_job_queue(
    alice, tiny_version, rm_worker_alive, scoring_server, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.RM_SCORE_SYNC_MAX_ITEMS = 1
    clip = factories.make_clip()
    api = _token_client(alice)
    big = api.post("/api/v1/score", {"items": [{"clip_id": clip.pk}] * 2}, format="json")
    unwaited = api.post("/api/v1/score", {"items": [{"clip_id": clip.pk}], "wait": False}, format="json")
    assert big.status_code == 202 and big.json()["status"] == "queued"
    assert unwaited.status_code == 202 and unwaited.json()["status"] == "queued"
    assert scoring_server.batch_sizes == []


@pytest.mark.django_db
def test_it_answers_503_when_the_scoring_server_stops_before_answering(
    alice, tiny_version, rm_worker_alive, clean_queue
) -> None:  # type: ignore[no-untyped-def]
    clean_queue.set(serving.ALIVE_KEY, "vanishing", ex=1)  # a server that says it is alive, then dies
    started = time.monotonic()
    response = _token_client(alice).post(
        "/api/v1/score", {"items": [{"clip_id": factories.make_clip().pk}]}, format="json"
    )
    assert time.monotonic() - started < 8
    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert error["code"] == "rm_unavailable" and "scoring server stopped" in error["message"]
    assert not ScoringJob.objects.exists()


@pytest.mark.django_db
def test_it_answers_504_when_the_scoring_server_is_too_slow(
    alice, tiny_version, rm_worker_alive, clean_queue, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.RM_SCORE_SYNC_TIMEOUT_S = 0.5
    clean_queue.set(serving.ALIVE_KEY, "stuck", ex=30)  # alive, but it never pops
    response = _token_client(alice).post(
        "/api/v1/score", {"items": [{"clip_id": factories.make_clip().pk}]}, format="json"
    )
    assert response.status_code == 504, response.content
    error = response.json()["error"]
    assert error["code"] == "rm_timeout" and "did not answer within 0.5 s" in error["message"]
    assert set(error) == {"code", "message", "field", "details"}


@pytest.fixture
def private_redis(settings, tmp_path: Path) -> Iterator[Any]:
    """Cache, broker and the scoring server's lists on a redis-server of this test's own."""
    with own_redis(tmp_path) as server:
        settings.REDIS_URL = settings.CELERY_BROKER_URL = server.url
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": server.url,
                "OPTIONS": {"socket_timeout": settings.REDIS_TIMEOUT_S, "socket_connect_timeout": 1.0},
            }
        }
        yield server


@pytest.mark.django_db
def test_it_answers_503_when_redis_freezes_mid_request(alice, tiny_version, private_redis) -> None:  # type: ignore[no-untyped-def]
    from django.core.cache import cache

    from rm_service.tasks import rm_worker_heartbeat_key

    cache.set(rm_worker_heartbeat_key(), {"worker": "test"}, timeout=60)
    serving.redis_client().set(serving.ALIVE_KEY, "stuck", ex=60)
    threading.Timer(0.3, private_redis.freeze).start()  # while the request waits for its reply
    started = time.monotonic()
    response = _token_client(alice).post(
        "/api/v1/score", {"items": [{"clip_id": factories.make_clip().pk}]}, format="json"
    )
    assert time.monotonic() - started < 5
    assert response.status_code == 503, response.content
    assert "broker cannot be reached" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_it_keeps_serving_after_redis_comes_back(tiny_version: ModelVersion, private_redis) -> None:
    server, thread = _start(read_timeout_s=2.0)
    try:
        private_redis.freeze()
        time.sleep(3.5)  # the server's pops time out; it must retry, not die
        private_redis.thaw()
        assert thread.is_alive()
        message = _message(tiny_version, [_item(factories.make_clip())])
        client = serving.redis_client(read_timeout_s=90)
        client.rpush(serving.REQUESTS_KEY, json.dumps(message))
        reply = client.blpop([serving.REPLY_KEY_PREFIX + message["id"]], timeout=30)
        assert reply is not None and json.loads(reply[1])["ok"]
    finally:
        _stop(server, thread)
