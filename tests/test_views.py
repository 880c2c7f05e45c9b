"""/healthz: database and broker reported separately, quickly, as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults import dead_redis_url, free_port, own_redis

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_it_reports_healthy_dependencies(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"]["status"] == "ok" and body["broker"]["status"] == "ok"


@pytest.mark.django_db
def test_it_answers_503_quickly_when_the_broker_is_down(client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.REDIS_URL = settings.CELERY_BROKER_URL = dead_redis_url()
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 2.0
    assert response.status_code == 503 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["database"]["status"] == "ok" and body["broker"]["status"] == "down"


@pytest.mark.django_db
def test_it_answers_503_quickly_when_the_broker_is_frozen(client, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with own_redis(tmp_path) as redis_server:
        settings.REDIS_URL = settings.CELERY_BROKER_URL = redis_server.url
        redis_server.freeze()
        started = time.monotonic()
        response = client.get("/healthz")
        elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert response.status_code == 503 and response.json()["broker"]["status"] == "down"


def test_it_answers_503_json_quickly_when_the_database_is_unreachable() -> None:
    code = (
        "import django, json, time; django.setup();"
        "from django.test import Client; c = Client(); c.get('/healthz');"  # the first request imports the URLconf
        "t = time.monotonic(); r = c.get('/healthz');"
        "print(json.dumps({'status': r.status_code, 'type': r['Content-Type'], 'body': r.json(),"
        " 's': time.monotonic() - t}))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "annotate.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nowhere",
        "REDIS_URL": dead_redis_url(),
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "testserver",
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503 and answer["type"] == "application/json"
    assert answer["body"]["database"]["status"] == "down"
    assert answer["s"] < 2.0
