"""The REST API and pages without a worker: permissions, token auth, validation, and the 503 guard."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from rm_service.models import ModelVersion, ScoringJob, TrainingRun
from tests import factories
from tests.rm_service.conftest import empty_jsonl


def _token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _wav_bytes(seconds: float) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(16000 * seconds), dtype=np.float32) + 0.1, 16000, format="WAV")
    return buffer.getvalue()


def _truncated_flac() -> bytes:
    """A FLAC whose header promises 2 s but whose frames stop a third of the way in: the header reads fine."""
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 32000).astype(np.float32)
    sf.write(buffer, noise, 16000, format="FLAC")
    data = buffer.getvalue()
    return data[: len(data) // 3]


@pytest.fixture
def active_version(db: None) -> ModelVersion:
    return ModelVersion.objects.create(name="active", checkpoint_path="/not/needed/for/validation", is_active=True)


@pytest.mark.django_db
def test_it_blocks_annotators_everywhere(bob, campaign) -> None:  # type: ignore[no-untyped-def]
    version = ModelVersion.objects.create(name="v", checkpoint_path="/x")
    run = TrainingRun.objects.create(source="jsonl", train_jsonl="/x", dataset_root="/x")
    api = _token_client(bob)
    for method, url in [
        ("post", "/api/v1/score"),
        ("post", "/api/v1/rank"),
        ("post", "/api/v1/training-runs"),
        ("get", f"/api/v1/training-runs/{run.pk}"),
        ("post", f"/api/v1/training-runs/{run.pk}/cancel"),
        ("get", "/api/v1/model-versions"),
        ("post", f"/api/v1/model-versions/{version.pk}/activate"),
        ("get", f"/api/v1/campaigns/{campaign.pk}/model-agreement"),
        ("get", f"/api/v1/jobs/{ScoringJob.objects.create(kind='score', model_version=version).public_id}"),
    ]:
        assert getattr(api, method)(url, {}, format="json").status_code == 403, url
    browser = Client()
    browser.force_login(bob)
    for url in [
        "/rm/",
        f"/rm/campaigns/{campaign.pk}/",
        f"/rm/campaigns/{campaign.pk}/agreement/",
        f"/rm/runs/{run.pk}/",
        f"/api/v1/clips/{factories.make_clip().pk}/audio",
    ]:
        assert browser.get(url).status_code == 403, url
    assert b"Model vs human" not in browser.get("/").content


@pytest.mark.django_db
def test_it_requires_a_token_for_the_scoring_api(alice) -> None:  # type: ignore[no-untyped-def]
    browser = APIClient()
    browser.force_login(alice)  # a staff session is not enough: pipelines authenticate with a token
    assert browser.post("/api/v1/score", {"items": []}, format="json").status_code in (401, 403)
    assert APIClient().post("/api/v1/rank", {}, format="json").status_code == 401


@pytest.mark.django_db
def test_it_answers_503_when_no_rm_worker_is_alive(alice, active_version, settings) -> None:  # type: ignore[no-untyped-def]
    settings.RM_WORKER_HEARTBEAT_KEY = "rm_service:test:no-worker-writes-this"
    response = _token_client(alice).post("/api/v1/score", {"items": [{"clip_id": 1}]}, format="json")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "rm_unavailable"
    assert "no reward-model worker is running" in response.json()["error"]["message"]
    assert not ScoringJob.objects.exists()


@pytest.mark.django_db
def test_it_explains_bad_training_configurations(
    alice,
    rm_worker_alive,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    synthetic_data: Path,
) -> None:
    api = _token_client(alice)
    good = {"train_jsonl": str(synthetic_data / "train.jsonl"), "dataset_root": str(synthetic_data)}
    cases = [
        ({**good, "train_jsonl": str(empty_jsonl(tmp_path))}, "is empty"),
        ({**good, "encoder": "clap"}, 'encoder: "clap" is not a valid choice'),
        ({**good, "resume_from": str(tmp_path / "missing-ckpt")}, "missing-ckpt does not exist"),
        ({**good, "train_jsonl": str(tmp_path / "nope.jsonl")}, "does not exist"),
        ({**good, "train_jsonl": "/etc/passwd"}, "train /etc/passwd is outside the data roots"),
        ({**good, "dataset_root": "/"}, "dataset_root / is outside the data roots"),
        ({**good, "resume_from": "/etc"}, "resume_from /etc is outside the data roots"),
    ]
    for body, reason in cases:
        response = api.post("/api/v1/training-runs", body, format="json")
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "invalid" and reason in response.json()["error"]["message"]
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_it_names_the_bad_item_of_a_score_request(alice, active_version, rm_worker_alive, settings) -> None:  # type: ignore[no-untyped-def]
    api = _token_client(alice)
    clip = factories.make_clip()
    settings.UPLOAD_MAX_SECONDS = 3.0
    cases = [
        ({"items": [{"clip_id": clip.pk}, {"clip_id": 999999}]}, {}, "item 1 audio: clip 999999 does not exist"),
        ({"items": [{"clip_id": clip.pk, "url": "http://x"}]}, {}, "item 0 audio: give exactly one of"),
        ({"items": [{"url": "https://elsewhere.example/a.wav"}]}, {}, "is not a URL of this platform"),
        (
            {"items": [{"clip_id": clip.pk}, {"upload": "f"}]},
            {"f": b"definitely not audio"},
            "item 1 audio: 'f.wav' is not decodable audio",
        ),
        ({"items": [{"upload": "f"}]}, {"f": _wav_bytes(5.0)}, "item 0 audio: duration 5.000 s is outside"),
        ({"items": [{"upload": "f"}]}, {"f": _wav_bytes(0.0005)}, "item 0 audio: duration 0.001 s is outside [1, 3] s"),
        (
            {"items": [{"upload": "f"}]},
            {"f": _truncated_flac()},
            "item 0 audio: 'f.wav' is not decodable audio",
        ),
        (
            {"items": [{"upload": "f", "reference_upload": "g"}]},
            {"f": _wav_bytes(1.0)},
            "item 0 reference audio: no uploaded file named 'g'",
        ),
    ]
    for payload, files, reason in cases:
        if files:
            import json

            from django.core.files.uploadedfile import SimpleUploadedFile

            data = {"payload": json.dumps(payload), **{k: SimpleUploadedFile(f"{k}.wav", v) for k, v in files.items()}}
            response = api.post("/api/v1/score", data, format="multipart")
        else:
            response = api.post("/api/v1/score", payload, format="json")
        assert response.status_code == 400, payload
        assert reason in response.json()["error"]["message"], response.json()
        message = response.json()["error"]["message"]
        assert str(settings.RM_ROOT) not in message and ".part" not in message, "no server path in the message"
    settings.UPLOAD_MAX_BYTES = 100
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api.post(
        "/api/v1/score",
        {"payload": '{"items": [{"upload": "f"}]}', "f": SimpleUploadedFile("f.wav", _wav_bytes(1.0))},
        format="multipart",
    )
    assert response.status_code == 400 and "over the 100 limit" in response.json()["error"]["message"]
    assert not ScoringJob.objects.exists()


@pytest.mark.django_db
def test_it_throttles_scoring_per_token(alice, active_version, rm_worker_alive) -> None:  # type: ignore[no-untyped-def]
    from django.core.cache import cache
    from rest_framework.throttling import ScopedRateThrottle

    original_rates = ScopedRateThrottle.THROTTLE_RATES  # a class attribute read at import: restore it ourselves
    ScopedRateThrottle.THROTTLE_RATES = {"score": "2/min", "user": None}
    cache.delete(f"throttle_score_{alice.pk}")
    try:
        api = _token_client(alice)
        codes = [
            api.post("/api/v1/score", {"items": [{"clip_id": 999999}]}, format="json").status_code for _ in range(3)
        ]
        assert codes == [400, 400, 429]
        # The budget is counted in items: one request for three items is over a 2-item budget.
        other = _token_client(factories.make_annotator("pipeline2", is_staff=True))
        three = {"items": [{"clip_id": 999999}] * 3}
        assert other.post("/api/v1/score", three, format="json").status_code == 429
        assert other.post("/api/v1/score", {"items": [{"clip_id": 999999}]}, format="json").status_code == 400
        assert other.post("/api/v1/score", {"items": [{"clip_id": 999999}] * 2}, format="json").status_code == 429
    finally:
        ScopedRateThrottle.THROTTLE_RATES = original_rates
