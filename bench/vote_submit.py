"""Benchmark: concurrent annotators going next-assignment → audio A, B → vote against gunicorn + PostgreSQL.

    .venv/bin/python bench/vote_submit.py [--comparisons 1000 100000] [--annotators 1 32] [--votes 400]

It (re)creates its own PostgreSQL database (``--db``, default ``cmi_bench_vote``), migrates it, seeds one
campaign per ``--comparisons`` size (a third of its comparisons already hold 1, a third 2 votes, so the
queue has history to skip), starts gunicorn with ``deploy/gunicorn.conf.py`` (gthread) and drives N
threads, each an annotator with its own API token: ``GET /api/v1/campaigns/<id>/next-assignment``, then
both clips' ``audio_url`` (the server only accepts listening it delivered), then
``POST /api/v1/assignments/<uuid>/vote``, until ``--votes`` votes are in.

The floor: right before each measured run, the same N threads POST a trivial DRF view
(``bench/floor_urls.py``: same gunicorn, middleware, token authentication and throttling, constant answer)
as many times as the run makes next + vote requests. Every figure is printed beside its floor and the
ratio; at the end, the growth from the smallest to the largest campaign. Every figure printed is measured.

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
CLIP_POOL = 400  # clips shared by all comparisons (pairs differ per instruction), so seeding stays small
SEED_BATCH = 5000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comparisons", type=int, nargs="+", default=[1000, 100_000], help="campaign sizes")
    parser.add_argument("--annotators", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--votes", type=int, default=400, help="votes per concurrent run (each vote = 4 requests)")
    parser.add_argument("--single-votes", type=int, default=100, help="votes of a 1-annotator run")
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
    """A campaign of ``comparisons`` pairs drawn from a pool of 2 s clips, some votes already in, and
    ``annotators`` users with API tokens."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from annotate.catalog.models import Campaign, Clip, Comparison, Instruction
    from annotate.labeling.models import AnnotatorProfile, Vote

    campaign = Campaign.objects.create(
        name=name,
        status=Campaign.Status.ACTIVE,
        overlap_target=overlap,
        min_listen_seconds=LISTEN_REQUIRED_S,
        min_listen_fraction=None,
    )
    peaks = [round(0.5 + 0.4 * ((i * 37) % 11) / 11, 3) for i in range(600)]
    pool = min(2 * comparisons, CLIP_POOL)
    clips = Clip.objects.bulk_create(
        Clip(
            sha256=secrets.token_hex(32),
            file=f"clips/bench/{name}-{i}.wav",
            format="WAV",
            duration_s=CLIP_SECONDS,
            sample_rate=24000,
            channels=1,
            is_vocal=False,
            peaks=peaks,
        )
        for i in range(pool)
    )
    for start in range(0, comparisons, SEED_BATCH):
        stop = min(comparisons, start + SEED_BATCH)
        instructions = Instruction.objects.bulk_create(
            Instruction(
                prompt_id=f"{name}-{i}", text=f"A calm piano piece, take {i}", content_hash=secrets.token_hex(32)
            )
            for i in range(start, stop)
        )
        Comparison.objects.bulk_create(
            Comparison(
                campaign=campaign,
                instruction=instruction,
                clip_a=clips[(2 * i) % pool],
                clip_b=clips[(2 * i + 1) % pool],
                system_a=f"sys-{2 * i % 4}",
                system_b=f"sys-{(2 * i + 1) % 4}",
            )
            for i, instruction in zip(range(start, stop), instructions, strict=True)
        )
    _shared_rendition(campaign, clips)
    # History: comparison i already holds i % overlap votes from earlier annotators (below the target).
    earlier = [User.objects.create(username=f"{name}-earlier-{i}") for i in range(overlap)]
    ids = Comparison.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True)
    batch: list[Vote] = []
    for i, comparison_id in enumerate(ids.iterator(chunk_size=SEED_BATCH)):
        for k in range(i % overlap):
            batch.append(
                Vote(
                    comparison_id=comparison_id,
                    annotator=earlier[k],
                    alignment_choice="ab"[(i + k) % 2],
                    alignment_confidence=3,
                    musicality_choice="ba"[(i * k) % 2],
                    musicality_confidence=3,
                    presented_swapped=False,
                )
            )
        if len(batch) >= SEED_BATCH:
            Vote.objects.bulk_create(batch)
            batch = []
    Vote.objects.bulk_create(batch)
    tokens = []
    for i in range(annotators):
        user = User.objects.create(username=f"{name}-annotator-{i}")
        AnnotatorProfile.objects.create(user=user)
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
    cycle_ms: list[float] = field(default_factory=list)  # next-assignment + vote of one comparison
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
        status, body, next_ms = request(port, "GET", f"/api/v1/campaigns/{campaign_id}/next-assignment", token)
        run.next_ms.append(next_ms)
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
        run.cycle_ms.append(next_ms + ms)
        if status != 201:
            run.errors.append(f"vote {status}: {str(body)[:200]}")


def floor_loop(run: Run, port: int, token: str) -> None:
    while True:
        with run.lock:
            if run.votes_left <= 0:
                return
            run.votes_left -= 1
        status, body, ms = request(port, "POST", "/bench/floor", token, {"ping": 1})
        run.vote_ms.append(ms)
        if status != 201:
            run.errors.append(f"floor {status}: {str(body)[:200]}")


def drive(target: Any, count: int, port: int, tokens: list[str], *extra: Any) -> tuple[Run, float]:
    run = Run(votes_left=count)
    threads = [threading.Thread(target=target, args=(run, port, *extra, token)) for token in tokens]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return run, time.perf_counter() - started


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def report(label: str, values: list[float], floor: list[float] | None = None) -> str:
    line = (
        f"{label:<16} n={len(values):<5} p50={percentile(values, 50):7.1f} ms  p95={percentile(values, 95):7.1f} ms"
        f"  p99={percentile(values, 99):7.1f} ms  mean={statistics.fmean(values):7.1f} ms"
    )
    if floor:
        line += (
            f"   = {percentile(values, 50) / percentile(floor, 50):5.2f}x / "
            f"{percentile(values, 99) / percentile(floor, 99):5.2f}x floor p50 / p99"
        )
    return line


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
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "bench.floor_wsgi"]
    proc = subprocess.Popen(gunicorn, cwd=REPO, env=env)
    results: dict[tuple[int, int], tuple[Run, float, Run, float]] = {}
    try:
        wait_for_server(args.port, proc)
        print(
            f"gunicorn: {args.workers} gthread workers x 4 threads on {os.cpu_count()} CPUs; PostgreSQL db "
            f"{args.db}; {args.votes} votes per concurrent run, {args.single_votes} per 1-annotator run "
            f"(4 requests each); overlap {args.overlap}"
        )
        for comparisons in args.comparisons:
            seeding = time.perf_counter()
            campaign_id, tokens = seed(
                name=f"bench-{comparisons}-{secrets.token_hex(3)}",
                comparisons=comparisons,
                annotators=max(args.annotators),
                overlap=args.overlap,
            )
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")  # what autovacuum does after a bulk load; the planner needs the row counts
            print(f"\nseeded {comparisons} comparisons in {time.perf_counter() - seeding:.0f} s; {loadavg()}")
            stored = _prior_votes(comparisons, args.overlap)
            for annotators in args.annotators:
                count = args.single_votes if annotators == 1 else args.votes
                floor, floor_wall = drive(floor_loop, 2 * count, args.port, tokens[:annotators])
                run, wall = drive(annotator_loop, count, args.port, tokens[:annotators], campaign_id)
                results[(comparisons, annotators)] = (run, wall, floor, floor_wall)
                votes = len(run.vote_ms) - sum(e.startswith("vote") for e in run.errors)
                print(f"\n== {comparisons} comparisons, {annotators} concurrent annotators ({loadavg()}) ==")
                print(
                    f"wall {wall:.2f} s  throughput {votes / wall:.1f} votes/s  "
                    f"{(len(run.next_ms) + len(run.vote_ms) + len(run.audio_ms)) / wall:.1f} requests/s  "
                    f"errors {len(run.errors) + len(floor.errors)}; floor {len(floor.vote_ms) / floor_wall:.1f} "
                    f"requests/s"
                )
                print(report("floor (DRF)", floor.vote_ms))
                print(report("next-assignment", run.next_ms, floor.vote_ms))
                print(report("audio (A, B)", run.audio_ms, floor.vote_ms))
                print(report("vote", run.vote_ms, floor.vote_ms))
                print(report("cycle next+vote", run.cycle_ms, floor.vote_ms))
                stored += votes
                print(check_database(campaign_id, args.overlap, stored))
                for error in (run.errors + floor.errors)[:5]:
                    print("  error:", error)
        summarize(args, results)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _prior_votes(comparisons: int, overlap: int) -> int:
    return sum(i % overlap for i in range(comparisons))


def summarize(args: argparse.Namespace, results: dict[tuple[int, int], tuple[Run, float, Run, float]]) -> None:
    print(f"\n== summary ({loadavg()}) ==")
    small, large = min(args.comparisons), max(args.comparisons)
    for annotators in args.annotators:
        if (small, annotators) in results and (large, annotators) in results and small != large:
            a, b = results[(small, annotators)][0], results[(large, annotators)][0]
            print(
                f"{annotators} annotator(s): next-assignment p50 {percentile(b.next_ms, 50):.1f} ms at {large} vs "
                f"{percentile(a.next_ms, 50):.1f} ms at {small} comparisons = "
                f"{percentile(b.next_ms, 50) / percentile(a.next_ms, 50):.2f}x (target <= 1.5x)"
            )
    for comparisons in args.comparisons:
        annotators = max(args.annotators)
        if (comparisons, annotators) not in results:
            continue
        run, wall, floor, floor_wall = results[(comparisons, annotators)]
        per_request = max(percentile(run.next_ms, 99), percentile(run.vote_ms, 99))
        cycle_p99 = percentile(run.cycle_ms, 99)
        print(
            f"{comparisons} comparisons, {annotators} annotators: cycle (next+vote) p99 "
            f"{cycle_p99:.1f} ms = {cycle_p99 / percentile(floor.vote_ms, 99):.2f}x"
            f" the floor's p99 {percentile(floor.vote_ms, 99):.1f} ms (target <= 3x); slowest single request p99 "
            f"{per_request:.1f} ms = {per_request / percentile(floor.vote_ms, 99):.2f}x; throughput "
            f"{len(run.vote_ms) / wall:.1f} votes/s vs floor {len(floor.vote_ms) / floor_wall:.1f} requests/s"
        )


if __name__ == "__main__":
    main()
