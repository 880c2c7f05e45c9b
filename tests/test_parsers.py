"""Hostile JSON bodies through the real API with a token: a 400 with a JSON body, never a 500."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.labeling.models import Vote
from annotate.parsers import json_depth_exceeds
from rm_service.models import ModelVersion
from tests import factories

DEEP = "[" * 3000 + "]" * 3000
DEEP_OBJECT = '{"a":' * 40 + "1" + "}" * 40


def _token_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_it_measures_depth_without_recursion() -> None:
    assert json_depth_exceeds(json.loads('{"a": [1, {"b": 2}]}'), 3) is False
    assert json_depth_exceeds(json.loads('{"a": [1, {"b": [2]}]}'), 3) is True
    deep: list = []
    for _ in range(100_000):  # far deeper than Python's recursion limit
        deep = [deep]
    assert json_depth_exceeds(deep, 32) is True


@pytest.mark.django_db
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, '{"alignment": "A"', "\x00\xff"])
def test_it_refuses_hostile_vote_and_skip_bodies(bob, body: str) -> None:  # type: ignore[no-untyped-def]
    campaign = factories.make_campaign(name="Hostile", min_listen_seconds=1.0, min_listen_fraction=None)
    factories.make_comparison(campaign)
    api = _token_client(bob)
    assignment = api.get(f"/api/v1/campaigns/{campaign.pk}/next-assignment").json()["assignment"]
    for action in ("vote", "skip"):
        response = api.post(
            f"/api/v1/assignments/{assignment['id']}/{action}", data=body, content_type="application/json"
        )
        assert response.status_code == 400, (action, response.content[:200])
        assert response["Content-Type"] == "application/json"
    assert not Vote.objects.exists()


@pytest.mark.django_db
def test_it_refuses_hostile_scoring_bodies(alice) -> None:  # type: ignore[no-untyped-def]
    from rm_service.tasks import WORKER_TTL_S, rm_worker_heartbeat_key

    ModelVersion.objects.create(name="active", checkpoint_path="/not/needed", is_active=True)
    cache.set(rm_worker_heartbeat_key(), {"worker": "test"}, timeout=WORKER_TTL_S)
    api = _token_client(alice)
    response = api.post("/api/v1/score", data=DEEP, content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    multipart = api.post("/api/v1/score", data={"payload": DEEP}, format="multipart")
    assert multipart.status_code == 400 and "payload" in json.dumps(multipart.json())
