"""Fixed overhead and concurrent throughput of POST /api/v1/score against calling ``score_batch`` directly.

What runs: gunicorn (gthread) serving the platform, one warm Celery worker on the ``rm`` queues (solo pool)
whose batching scoring server answers small requests, Redis and PostgreSQL, and a tiny reward model (random
weights: speed does not depend on them). Every clip is scored once before timing, so the embedding cache is
warm everywhere. Requests carry ``--items`` clips given by clip id, over keep-alive HTTP with a token.

Measured in one run:
- sequential: ``--requests`` times, a direct warm ``score_batch`` call in this process on a request's items,
  then that request over HTTP by one client (interleaved, so both see the same load);
  fixed overhead = API p50 - direct p50; and the CPU the web and worker processes spend per request
  (Redis and PostgreSQL not counted) against the direct call's, which other users' load does not inflate;
- throughput with 1, 4 and 16 concurrent clients for ``--seconds`` each, and its ratio to sequential (1);
- the same through the Celery path (a second gunicorn with RM_SCORE_BATCHING=0), unless --no-celery.

Usage:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cmi_bench REDIS_URL=redis://127.0.0.1:6379/7 \\
        nice -n 5 .venv/bin/python bench/score_api.py [--requests 200] [--items 1] [--seconds 10] [--ports 8180,8181]

The database is created if missing and migrated; the bench makes the model version it registers active.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

print = functools.partial(print, flush=True)  # noqa: A001 - progress shows when the output is a file
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Same model shape as rm_service.presets.PRESETS["tiny"].
TINY: dict[str, Any] = {"d_model": 64, "n_heads": 2, "dim_head": 32, "prompt_depth": 1, "joint_depth": 1, "mlp_dim": 64}
CLIENTS = (1, 4, 16)


def _ensure_database(url: str) -> None:
    import psycopg
    from dj_database_url import parse

    db = parse(url)
    admin = f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def _write_clips(root: Path, n: int, seconds: float) -> list[Path]:
    import numpy as np
    import soundfile as sf

    paths = []
    for i in range(n):
        rng = np.random.default_rng(i)
        t = np.arange(int(seconds * 24000)) / 24000
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 800) * t) + 0.05 * rng.standard_normal(t.shape[0])
        path = root / "clips" / "bench" / f"clip-{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), wave.astype(np.float32), 24000)
        paths.append(path)
    return paths


def _register_clips(paths: list[Path], media: Path) -> list[int]:
    from annotate.catalog.audio import probe_audio
    from annotate.catalog.models import Clip

    ids = []
    for path in paths:
        info = probe_audio(path)
        clip, _ = Clip.objects.get_or_create(
            sha256=info.sha256,
            defaults=dict(
                file=str(path.relative_to(media)),
                format=info.format,
                duration_s=info.duration_s,
                sample_rate=info.sample_rate,
                channels=info.channels,
                peaks=info.peaks,
            ),
        )
        ids.append(clip.pk)
    return ids


def _make_checkpoint(out: Path) -> Path:
    import torch

    from rm_service.core.checkpoint import save_checkpoint
    from rm_service.core.encoders import get_encoder
    from rm_service.core.model import RewardModel, RewardModelConfig, count_parameters

    encoder = get_encoder("builtin", text_model="hash")
    torch.manual_seed(0)
    config = RewardModelConfig(**TINY, audio_in_dim=encoder.audio_dim, text_in_dim=encoder.text_dim)
    model = RewardModel(config)
    print(f"tiny model: {count_parameters(model) / 1e6:.2f} M trainable parameters, encoder {encoder.id}")
    return save_checkpoint(
        out / "tiny", model=model, encoder_name=encoder.name, encoder_options=encoder.options(), encoder_id=encoder.id
    )


class Client:
    """One keep-alive HTTP connection posting score requests."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def post(self, body: dict[str, Any]) -> float:
        start = time.perf_counter()
        self.conn.request("POST", "/api/v1/score", body=json.dumps(body), headers=self.headers)
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {payload[:500]!r}")
        return elapsed


def _p50_ms(latencies: list[float]) -> float:
    return statistics.median(latencies) * 1000


def _throughput(
    port: int, token: str, bodies: list[dict[str, Any]], clients: int, seconds: float
) -> tuple[float, float]:
    """(requests per second, p50 latency ms) with ``clients`` concurrent clients for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    start_line = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def run(k: int) -> None:
        client = Client(port, token)
        client.post(bodies[k % len(bodies)])  # connect and warm this connection, untimed
        start_line.wait()
        i = k
        try:
            while time.perf_counter() < stop_at[0]:
                latencies[k].append(client.post(bodies[i % len(bodies)]))
                i += clients
        except Exception as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600
    start_line.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    if errors:
        raise SystemExit(f"{len(errors)} client errors, first: {errors[0]}")
    done = [x for per in latencies for x in per]
    return len(done) / wall, _p50_ms(done)


def _start_web(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "annotate.wsgi", "-b", f"127.0.0.1:{port}", "-k", "gthread"]
        + ["-w", "4", "--threads", "4", "--timeout", "600", "--keep-alive", "30"],  # deploy/gunicorn.conf.py's shape
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "annotate", "worker", "-Q", "rm,rm-batch", "--pool=solo"]
        + ["--prefetch-multiplier=1", "--without-gossip", "--without-mingle", "--loglevel=WARNING"]
        + [f"--hostname=bench-{os.getpid()}@%h"],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_ready(port: int, token: str, body: dict[str, Any]) -> None:
    deadline = time.monotonic() + 120
    while True:  # also waits for the worker heartbeat, the scoring server and the model load (untimed)
        try:
            Client(port, token).post(body)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"the API on port {port} never answered 200: {exc}") from exc
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="sequential requests for the p50s")
    parser.add_argument("--items", type=int, default=1, help="clips per request")
    parser.add_argument("--clips", type=int, default=32, help="distinct clips the requests cycle through")
    parser.add_argument("--clip-seconds", type=float, default=10.0, help="clip length")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each throughput measurement")
    parser.add_argument("--ports", default="8180,8181", help="gunicorn ports: batching, Celery path")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of the worker and of the direct baseline (OMP_NUM_THREADS)",
    )
    parser.add_argument("--no-celery", action="store_true", help="skip the Celery-path comparison")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL: the bench runs the real web + worker stack")
    port_fast, port_celery = (int(p) for p in args.ports.split(","))

    work = Path(tempfile.mkdtemp(prefix="score-api-bench-"))
    media = work / "media"
    env = dict(
        os.environ,
        MEDIA_ROOT=str(media),
        RM_ROOT=str(work / "rm"),
        RM_CACHE_DIR=str(work / "cache"),
        RM_DEVICE="cpu",
        OMP_NUM_THREADS=str(args.threads),
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret"),
        DEBUG="0",
        STATIC_MANIFEST="0",
        SCORE_RATE_LIMIT="1000000/min",
        API_RATE_LIMIT="1000000/min",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        DJANGO_SETTINGS_MODULE="annotate.settings",
        PYTHONPATH=str(REPO),
    )
    os.environ.update(env)
    _ensure_database(env["DATABASE_URL"])
    import django
    import torch

    torch.set_num_threads(args.threads)  # the direct baseline runs with the worker's thread count
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from annotate.celery import app
    from rm_service import services
    from rm_service.core.score import load_scorer
    from rm_service.models import ModelVersion

    user, _ = User.objects.get_or_create(username="bench-pipeline", defaults={"is_staff": True})
    token = Token.objects.get_or_create(user=user)[0].key
    checkpoint = _make_checkpoint(work / "checkpoints")
    version = ModelVersion.objects.create(name="bench-tiny", checkpoint_path=str(checkpoint))
    services.model_version_activate(version=version, predict=False)
    paths = _write_clips(media, args.clips, args.clip_seconds)
    ids = _register_clips(paths, media)
    app.control.purge()

    bodies = [
        {
            "items": [
                {"clip_id": ids[(r + k) % len(ids)], "text": f"a piano piece number {r % 8}"} for k in range(args.items)
            ]
        }
        for r in range(len(ids))
    ]
    procs = [_start_worker(env, work / "worker.log"), _start_web(port_fast, env, work / "web.log")]
    if not args.no_celery:
        procs.append(_start_web(port_celery, {**env, "RM_SCORE_BATCHING": "0"}, work / "web-celery.log"))
    try:
        _wait_ready(port_fast, token, bodies[0])
        for body in bodies:  # every clip and text encoded once: the cache is warm from here on
            Client(port_fast, token).post(body)
        print(f"load average before: {_load()}  ({os.cpu_count()} CPUs, shared machine)")
        print(
            f"{args.items} clip(s) of {args.clip_seconds:g} s per request; warm embedding cache everywhere; "
            f"{args.threads} torch thread(s) in the worker and for the direct baseline"
        )
        scorer = load_scorer(checkpoint, cache_dir=work / "cache")
        items = _direct_items(dict(zip(ids, paths, strict=True)), bodies)
        for batch in items:
            scorer.score_batch(batch, batch_size=16)  # this process's cache warm too, untimed
        direct = (scorer, items, [procs[0].pid, procs[1].pid])
        _measure("batching server", port_fast, token, bodies, direct, args)
        if not args.no_celery:
            _wait_ready(port_celery, token, bodies[0])
            celery_direct = (scorer, items, [procs[0].pid, procs[2].pid])
            _measure("Celery path (RM_SCORE_BATCHING=0)", port_celery, token, bodies, celery_direct, args)
        print(f"load average after:  {_load()}")
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their children (gunicorn workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _direct_items(clips: dict[int, Path], bodies: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The requests' own items (same clips, same texts) as direct ``score_batch`` inputs."""
    return [[{"audio": str(clips[it["clip_id"]]), "text": it["text"]} for it in b["items"]] for b in bodies]


def _overhead(
    scorer: Any,
    items: list[list[dict[str, Any]]],
    client: Client,
    bodies: list[dict[str, Any]],
    n: int,
    server_pids: list[int],
) -> tuple[float, float, float, float]:
    """(direct p50 ms, API p50 ms, direct CPU ms, server CPU ms) per request: one direct call then one API
    request on the same items, ``n`` times, interleaved so both see the same machine load. Server CPU is
    what the web and worker processes (and their children) burnt during the request: unlike wall time,
    it does not grow with other users' load on the machine (only /proc's 10 ms tick makes it coarse,
    averaged out over ``n``)."""
    direct, api = [], []
    direct_cpu = api_cpu = 0.0
    for i in range(n):
        start, cpu = time.perf_counter(), time.process_time()
        scorer.score_batch(items[i % len(items)], batch_size=16)
        direct.append(time.perf_counter() - start)
        direct_cpu += time.process_time() - cpu
        cpu = _cpu_s(server_pids)
        api.append(client.post(bodies[i % len(bodies)]))
        api_cpu += _cpu_s(server_pids) - cpu
    return _p50_ms(direct), _p50_ms(api), direct_cpu / n * 1000, api_cpu / n * 1000


def _measure(
    name: str,
    port: int,
    token: str,
    bodies: list[dict[str, Any]],
    direct: tuple[Any, list[Any], list[int]],
    args: argparse.Namespace,
) -> None:
    scorer, items, pids = direct
    direct_ms, api_ms, direct_cpu, api_cpu = _overhead(scorer, items, Client(port, token), bodies, args.requests, pids)
    print(
        f"[{name}] sequential, interleaved: direct p50 {direct_ms:6.2f} ms, API p50 {api_ms:6.2f} ms, "
        f"fixed overhead (API p50 - direct p50) {api_ms - direct_ms:6.2f} ms   (load {_load()})"
    )
    print(
        f"[{name}] CPU per request: direct {direct_cpu:6.2f} ms, web + worker {api_cpu:6.2f} ms, "
        f"CPU overhead {api_cpu - direct_cpu:6.2f} ms"
    )
    base = None
    for clients in CLIENTS:
        rate, p50 = _throughput(port, token, bodies, clients, args.seconds)
        base = base or rate
        print(
            f"[{name}] {clients:2d} concurrent clients: {rate:7.1f} req/s  p50 {p50:7.1f} ms  "
            f"x{rate / base:5.2f} vs sequential   (load {_load()})"
        )


if __name__ == "__main__":
    main()
