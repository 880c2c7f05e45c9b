"""Benchmark: concurrent annotators going next-assignment → audio A, B → vote against gunicorn + PostgreSQL.

    .venv/bin/python bench/vote_submit.py [--annotators 8 32] [--votes 400] [--workers 3]

It (re)creates its own PostgreSQL database (``--db``, default ``cmi_bench_vote``), migrates it, seeds one
campaign per run, starts gunicorn with ``deploy/gunicorn.conf.py`` (gthread) and drives N threads, each an
annotator with its own API token: ``GET /api/v1/campaigns/<id>/next-assignment``, then both clips'
``audio_url`` (the server only accepts listening it delivered), then ``POST /api/v1/assignments/<uuid>/vote``,
until ``--votes`` votes are in. Every figure printed is measured.

The listening requirement stays on: the campaign asks for 0.25 s per clip and each vote reports a 0.3 s
play interval per side. The server refuses claims whose A plus B exceed the time since the hand-out plus 1 s
of slack, which is what lets a bench client report 0.6 s in all without sleeping; no think time is simulated,
so this measures the server, not annotators. Every clip row shares one real 2 s presentation rendition.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
LISTEN_REQUIRED_S = 0.25
LISTEN_REPORTED_S = 0.3
CLIP_SECONDS = 2.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--annotators", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--votes", type=int, default=400, help="votes per run (each vote = 4 requests)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (gthread, 4 threads each)")
    parser.add_argument("--overlap", type=int, default=3, help="campaign overlap target")
    parser.add_argument("--db", default="cmi_bench_vote")
    parser.add_argument("--port", type=int, default=8765)
    return parser.parse_args()


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def server_env(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DATABASE_URL": f"{PG}/{args.db}",
            "SECRET_KEY": "bench-" + secrets.token_hex(8),
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "STATIC_MANIFEST": "0",
            "SECURE_COOKIES": "0",
            "VAR_DIR": str(var_dir),
            "MEDIA_ROOT": str(var_dir / "media"),
            "LOG_LEVEL": "WARNING",
            "GUNICORN_BIND": f"127.0.0.1:{args.port}",
            "GUNICORN_WORKERS": str(args.workers),
            "GUNICORN_ACCESSLOG": "/dev/null",
            "API_RATE_LIMIT": "1000000/min",
            "PYTHONPATH": str(REPO),
            "DJANGO_SETTINGS_MODULE": "annotate.settings",
        }
    )
    return env


def seed(*, name: str, comparisons: int, annotators: int, overlap: int) -> tuple[int, list[str]]:
    """A campaign with ``comparisons`` pairs of 2 s clips and ``annotators`` users with API tokens."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from annotate.catalog.models import Campaign, Clip, Comparison, Instruction

    campaign = Campaign.objects.create(
        name=name,
        status=Campaign.Status.ACTIVE,
        overlap_target=overlap,
        min_listen_seconds=LISTEN_REQUIRED_S,
        min_listen_fraction=None,
    )
    peaks = [round(0.5 + 0.4 * ((i * 37) % 11) / 11, 3) for i in range(600)]
    clips = Clip.objects.bulk_create(
        Clip(
            sha256=secrets.token_hex(32),
            file=f"clips/bench/{i}.wav",
            format="WAV",
            duration_s=CLIP_SECONDS,
            sample_rate=24000,
            channels=1,
            is_vocal=False,
            peaks=peaks,
        )
        for i in range(2 * comparisons)
    )
    instructions = Instruction.objects.bulk_create(
        Instruction(prompt_id=f"{name}-{i}", text=f"A calm piano piece, take {i}", content_hash=secrets.token_hex(32))
        for i in range(comparisons)
    )
    Comparison.objects.bulk_create(
        Comparison(
            campaign=campaign,
            instruction=instructions[i],
            clip_a=clips[2 * i],
            clip_b=clips[2 * i + 1],
            system_a=f"sys-{2 * i % 4}",
            system_b=f"sys-{(2 * i + 1) % 4}",
        )
        for i in range(comparisons)
    )
    _shared_rendition(campaign, clips)
    tokens = []
    for i in range(annotators):
        user = User.objects.create(username=f"{name}-annotator-{i}")
        tokens.append(Token.objects.create(user=user).key)
    return campaign.pk, tokens


def _shared_rendition(campaign: Any, clips: list[Any]) -> None:
    """Render one real 2 s clip and give every clip row a rendition row pointing at that file."""
    import numpy as np
    import soundfile as sf
    from django.conf import settings

    from annotate.catalog.audio import render_presentation
    from annotate.catalog.models import ClipRendition
    from annotate.catalog.services import _rendition_file_write, clip_rendition_row

    source = Path(settings.MEDIA_ROOT) / "bench-source.wav"
    source.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(CLIP_SECONDS * 24000)) / 24000
    sf.write(str(source), (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 24000)
    target, ceiling = campaign.presentation_loudness_lufs, campaign.presentation_true_peak_dbtp
    rendition = render_presentation(source, target_lufs=target, ceiling_dbtp=ceiling)
    relative, _ = _rendition_file_write(rendition)
    ClipRendition.objects.bulk_create(
        clip_rendition_row(clip, relative, rendition, target_lufs=target, ceiling_dbtp=ceiling) for clip in clips
    )


@dataclass
class Run:
    next_ms: list[float] = field(default_factory=list)
    vote_ms: list[float] = field(default_factory=list)
    audio_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    votes_left: int = 0


def request(port: int, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    started = time.perf_counter()
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    if response.getheader("Content-Type", "").startswith("audio/"):
        return response.status, {"bytes": len(data)}, elapsed
    return response.status, (json.loads(data) if data else {}), elapsed


def annotator_loop(run: Run, port: int, campaign_id: int, token: str) -> None:
    while True:
        with run.lock:
            if run.votes_left <= 0:
                return
            run.votes_left -= 1
        status, body, ms = request(port, "GET", f"/api/v1/campaigns/{campaign_id}/next-assignment", token)
        run.next_ms.append(ms)
        if status != 200 or body.get("assignment") is None:
            run.errors.append(f"next-assignment {status}: {str(body)[:200]}")
            return
        for side in ("A", "B"):
            status, audio, ms = request(port, "GET", body["assignment"]["clips"][side]["audio_url"], token)
            run.audio_ms.append(ms)
            if status != 200:
                run.errors.append(f"audio {side} {status}")
        vote = {
            "alignment": "A",
            "alignment_confidence": 4,
            "musicality": "B",
            "musicality_confidence": 3,
            "feedback": "B is steadier; A follows the prompt.",
            "time_on_task_s": 1.0,
            "listened": {"A": [[0, LISTEN_REPORTED_S]], "B": [[0, LISTEN_REPORTED_S]]},
        }
        status, body, ms = request(port, "POST", urlsplit(body["assignment"]["vote_url"]).path, token, vote)
        run.vote_ms.append(ms)
        if status != 201:
            run.errors.append(f"vote {status}: {str(body)[:200]}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def report(label: str, values: list[float]) -> str:
    return (
        f"{label:<16} n={len(values):<5} p50={percentile(values, 50):7.1f} ms  p95={percentile(values, 95):7.1f} ms"
        f"  p99={percentile(values, 99):7.1f} ms  mean={statistics.fmean(values):7.1f} ms"
    )


def wait_for_server(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


def check_database(campaign_id: int, overlap: int, expected_votes: int) -> str:
    from django.db.models import Count

    from annotate.catalog.models import Comparison
    from annotate.labeling.models import Vote

    votes = Vote.objects.filter(comparison__campaign_id=campaign_id).count()
    worst = (
        Comparison.objects.filter(campaign_id=campaign_id)
        .annotate(n=Count("votes"))
        .order_by("-n")
        .values_list("n", flat=True)
        .first()
    )
    ok = votes == expected_votes and (worst or 0) <= overlap
    return (
        f"db check: {votes} votes stored (expected {expected_votes}), max votes per comparison {worst} "
        f"(overlap target {overlap}) -> {'OK' if ok else 'MISMATCH'}"
    )


def main() -> None:
    args = parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-vote-"))
    env = server_env(args, var_dir)
    os.environ.update(
        {
            k: env[k]
            for k in (
                "DATABASE_URL",
                "SECRET_KEY",
                "DEBUG",
                "ALLOWED_HOSTS",
                "VAR_DIR",
                "STATIC_MANIFEST",
                "MEDIA_ROOT",
                "DJANGO_SETTINGS_MODULE",
            )
        }
    )
    os.environ.pop("REDIS_URL", None)
    recreate_database(args.db)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "annotate.wsgi"]
    proc = subprocess.Popen(gunicorn, cwd=REPO, env=env)
    try:
        wait_for_server(args.port, proc)
        print(
            f"gunicorn: {args.workers} gthread workers x 4 threads on {os.cpu_count()} CPUs; PostgreSQL db "
            f"{args.db}; {args.votes} votes per run (4 requests each); overlap {args.overlap}"
        )
        for annotators in args.annotators:
            comparisons = args.votes  # plenty: the campaign never runs dry mid-run
            campaign_id, tokens = seed(
                name=f"bench-{annotators}-{secrets.token_hex(3)}",
                comparisons=comparisons,
                annotators=annotators,
                overlap=args.overlap,
            )
            run = Run(votes_left=args.votes)
            threads = [threading.Thread(target=annotator_loop, args=(run, args.port, campaign_id, t)) for t in tokens]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            votes = len(run.vote_ms) - sum(e.startswith("vote") for e in run.errors)
            print(f"\n== {annotators} concurrent annotators ==")
            print(
                f"wall {wall:.2f} s  throughput {votes / wall:.1f} votes/s  "
                f"{(len(run.next_ms) + len(run.vote_ms) + len(run.audio_ms)) / wall:.1f} requests/s  "
                f"errors {len(run.errors)}"
            )
            print(report("next-assignment", run.next_ms))
            print(report("audio (A, B)", run.audio_ms))
            print(report("vote", run.vote_ms))
            print(report("both", run.next_ms + run.vote_ms))
            print(check_database(campaign_id, args.overlap, votes))
            for error in run.errors[:5]:
                print("  error:", error)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
