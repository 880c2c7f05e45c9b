"""End to end through a real Celery worker, Redis and PostgreSQL (tiny model, CPU)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.catalog.models import Campaign
from annotate.labeling import services as labeling
from annotate.labeling.models import Vote
from rm_service import services, tasks
from rm_service.models import JobStatus, ModelVersion, Prediction, ScoringJob, TrainingRun
from tests import factories
from tests.conftest import REPO_ROOT, worker_env
from tests.rm_service.conftest import FAST_CONFIG

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker_process")]


def _token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _wait(predicate: Callable[[], Any], *, timeout: float = 120, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _wait_rm_worker() -> None:
    from django.core.cache import cache

    _wait(lambda: cache.get(tasks.rm_worker_heartbeat_key()), timeout=30, what="the rm worker heartbeat")


def _vote(user: User, campaign: Campaign, *, alignment: str = "A") -> Vote:
    assignment = labeling.assignment_next(annotator=user, campaign=campaign)
    assert assignment is not None
    duration = max(assignment.comparison.clip_a.duration_s, assignment.comparison.clip_b.duration_s)
    factories.deliver_audio(assignment)  # the evidence the audio view records when a page plays both clips
    return labeling.vote_submit(
        annotator=user,
        assignment_id=assignment.public_id,
        alignment=alignment,
        alignment_confidence=4,
        musicality="A",
        musicality_confidence=3,
        feedback="Clip A follows the prompt more closely.",
        listened={"A": [[0, duration]], "B": [[0, duration]]},
        time_on_task_s=40.0,
        now=assignment.created_at + timedelta(seconds=30),
    )


def _train_body(data: Path, **config: Any) -> dict[str, Any]:
    return {
        "train_jsonl": str(data / "train.jsonl"),
        "validation_jsonl": str(data / "validation.jsonl"),
        "test_jsonl": str(data / "test.jsonl"),
        "dataset_root": str(data),
        "preset": "tiny",
        "config": {**FAST_CONFIG, **config},
        "name": "e2e",
    }


def test_it_trains_activates_predicts_and_compares_new_votes(alice, bob, synthetic_data: Path) -> None:  # type: ignore[no-untyped-def]
    _wait_rm_worker()
    campaign = factories.make_campaign()
    for modality in ("T", "L", "A"):
        factories.make_comparison(campaign, modality=modality)
    api = _token_client(alice)

    created = api.post("/api/v1/training-runs", _train_body(synthetic_data), format="json")
    assert created.status_code == 201, created.json()
    run_url = f"/api/v1/training-runs/{created.json()['id']}"
    run = _wait(lambda: (r := api.get(run_url).json())["status"] in ("succeeded", "failed") and r, what="training")
    assert run["status"] == "succeeded", run["error"]
    assert run["step"] == FAST_CONFIG["stage2_max_steps"] and run["history"] and run["val_metrics"]
    version = ModelVersion.objects.get(pk=run["model_version"])
    assert version.metrics["test"]["alignment"]["overall"]["n"] > 0

    assert api.post(f"/api/v1/model-versions/{version.pk}/activate").status_code == 200
    _wait(
        lambda: Prediction.objects.filter(model_version=version, comparison__campaign=campaign).count() == 3,
        what="predictions of the activated version",
    )
    agreement_url = f"/api/v1/campaigns/{campaign.pk}/model-agreement"
    assert api.get(agreement_url).json()["votes"] == 0

    vote = _vote(bob, campaign)
    live = api.get(agreement_url).json()
    prediction = Prediction.objects.get(model_version=version, comparison=vote.comparison)
    expected = float(vote.alignment_choice == prediction.alignment_choice)
    assert live["votes"] == 1 and live["model_version"] == version.pk
    assert live["questions"]["alignment"]["single_votes"] == {"accuracy": expected, "n": 1}


def _cache_files() -> int:
    return sum(1 for _ in Path(os.environ["RM_CACHE_DIR"]).rglob("*.safetensors"))


def test_it_scores_and_ranks_over_rest(alice, tiny_checkpoint: Path) -> None:  # type: ignore[no-untyped-def]
    _wait_rm_worker()
    version = ModelVersion.objects.create(name="tiny", checkpoint_path=str(tiny_checkpoint), is_active=True)
    clips = [factories.make_clip(seconds=2.0) for _ in range(3)]
    api = _token_client(alice)
    items = [
        {"clip_id": clips[0].pk, "text": "calm piano"},
        {"url": f"http://testserver/api/v1/clips/{clips[1].pk}/audio", "text": "calm piano", "lyrics": "la la"},
    ]

    first = api.post("/api/v1/score", {"items": items}, format="json")
    assert first.status_code == 200, first.json()
    body = first.json()
    assert body["status"] == "succeeded" and body["model_version"]["id"] == version.pk
    assert [sorted(item) for item in body["items"]] == [["alignment", "index", "musicality"]] * 2
    cached = _cache_files()
    again = api.post("/api/v1/score", {"items": items}, format="json").json()
    assert again["items"] == body["items"]
    assert _cache_files() == cached, "a second scoring of the same clips encoded them again"

    ranked = api.post(
        "/api/v1/rank",
        {
            "instruction": {"text": "calm piano"},
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
    assert sorted(c["index"] for c in candidates) == [0, 1, 2]

    queued = api.post("/api/v1/score", {"items": items[:1], "wait": False}, format="json")
    assert queued.status_code == 202
    job = _wait(
        lambda: (j := api.get(queued.json()["status_url"]).json())["status"] == "succeeded" and j, what="the async job"
    )
    # A batch of one pads differently from a batch of two: equal up to float32 rounding.
    assert job["items"][0] == pytest.approx(body["items"][0], abs=1e-5)


def test_it_answers_small_requests_from_the_workers_batching_scoring_server(alice, tiny_checkpoint: Path) -> None:  # type: ignore[no-untyped-def]
    from rm_service.services import serving

    _wait_rm_worker()
    _wait(lambda: serving.redis_client().exists(serving.ALIVE_KEY), timeout=30, what="the scoring server")
    ModelVersion.objects.create(name="tiny", checkpoint_path=str(tiny_checkpoint), is_active=True)
    clip = factories.make_clip(seconds=2.0)
    response = _token_client(alice).post("/api/v1/score", {"items": [{"clip_id": clip.pk}]}, format="json")
    assert response.status_code == 200, response.json()
    job = ScoringJob.objects.get(public_id=response.json()["job"])
    # Never queued through Celery: no claim, no row heartbeat; answered by the worker's server thread.
    assert job.status == "succeeded" and job.heartbeat_at is None and job.worker.startswith("test-")


def test_it_runs_a_redelivered_training_task_once(synthetic_data: Path) -> None:
    _wait_rm_worker()
    run = services.training_run_create(
        user=None, enqueue=False, **{k: v for k, v in _train_body(synthetic_data).items() if k != "name"}
    )
    deliveries = [tasks.training_run_execute.delay(run.pk) for _ in range(2)]
    outcomes = sorted(d.get(timeout=180) for d in deliveries)
    run.refresh_from_db()
    assert outcomes == ["skipped", "succeeded"]
    assert (run.status, run.attempts) == (JobStatus.SUCCEEDED, 1)
    assert ModelVersion.objects.filter(training_run=run).count() == 1


def _start_worker(queue: str, hostname: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "annotate",
            "worker",
            "-Q",
            queue,
            "--pool=solo",
            "--prefetch-multiplier=1",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
            f"--hostname={hostname}",
        ],
        cwd=REPO_ROOT,
        env=worker_env(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def test_it_fails_a_killed_workers_run_and_resumes_it(alice, synthetic_data: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _wait_rm_worker()
    hostname = f"crash-{os.getpid()}@{socket.gethostname()}"
    worker = _start_worker("rm-crash", hostname, tmp_path / "crash.log")
    try:
        body = _train_body(synthetic_data, stage2_max_steps=24, checkpoint_every=3, eval_every=12)
        run = services.training_run_create(user=alice, enqueue=False, **{k: v for k, v in body.items()})
        tasks.training_run_execute.apply_async(args=[run.pk], queue="rm-crash")
        _wait(lambda: TrainingRun.objects.get(pk=run.pk).step >= 7, timeout=150, what="training progress")
        worker.send_signal(signal.SIGKILL)  # no shutdown handler runs: the row is left "running"
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    run.refresh_from_db()
    assert run.status == JobStatus.RUNNING
    # What the restarted worker does first (worker_ready): fail whatever its hostname was running.
    assert services.stale_work_reap(stale_after_s=3600, worker=hostname) == 1
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED and run.resumable and hostname in run.error
    checkpoint_step = int(Path(TrainingRun.objects.get(pk=run.pk).output_dir, "state", "LATEST").read_text()[5:])

    resumed = _token_client(alice).post(f"/api/v1/training-runs/{run.pk}/resume")
    assert resumed.status_code == 200, resumed.json()
    _wait(lambda: TrainingRun.objects.get(pk=run.pk).status == JobStatus.SUCCEEDED, timeout=180, what="the resume")
    run.refresh_from_db()
    first_resumed_step = next(p["step"] for p in run.history if p["attempt"] == 2)
    assert checkpoint_step >= 3 and first_resumed_step == checkpoint_step + 1
    assert run.model_version is not None and run.step == 24


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_it_answers_503_while_redis_is_down_and_voting_still_works(
    alice,
    bob,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    tiny_checkpoint: Path,
) -> None:
    ModelVersion.objects.create(name="tiny", checkpoint_path=str(tiny_checkpoint), is_active=True)
    campaign = factories.make_campaign()
    factories.make_comparison(campaign)
    token = Token.objects.create(user=alice).key
    script = tmp_path / "redis_down.py"
    script.write_text(f"""
import json, django
from datetime import timedelta
django.setup()
from django.contrib.auth.models import User
from rest_framework.test import APIClient
from annotate.catalog.models import Campaign
from tests.rm_service.test_e2e import _vote
api = APIClient()
api.credentials(HTTP_AUTHORIZATION="Token {token}")
score = api.post("/api/v1/score", {{"items": [{{"clip_id": 1}}]}}, format="json")
train = api.post("/api/v1/training-runs", {{"train_jsonl": "/x"}}, format="json")
vote = _vote(User.objects.get(username="bob"), Campaign.objects.get(pk={campaign.pk}))
print(json.dumps({{"score": [score.status_code, score.json()], "train": [train.status_code, train.json()],
                  "vote": vote.pk}}))
""")
    env = worker_env(
        {"REDIS_URL": f"redis://127.0.0.1:{_free_port()}/7", "DJANGO_SETTINGS_MODULE": "annotate.settings"}
    )
    done = subprocess.run([sys.executable, str(script)], cwd=REPO_ROOT, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    out = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert out["score"][0] == 503 and "broker cannot be reached" in out["score"][1]["error"]["message"]
    assert out["train"][0] == 503
    assert Vote.objects.filter(pk=out["vote"], annotator=bob).exists()
