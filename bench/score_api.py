"""Time POST /api/v1/score end to end against calling ``score_batch`` directly.

What runs: gunicorn serving the platform, one warm Celery worker on the ``rm`` queue (solo pool), Redis and
PostgreSQL, for a tiny and a paper-sized reward model (random weights: throughput does not depend on them).
Requests are sent one after another over HTTP with a token; each scores ``--items`` clips given by clip id.

- cold cache: every request names clips (and prompts) never seen before, so the worker encodes them;
- warm cache: the same requests again, so the embeddings come from the cache.

The direct baseline loads the same checkpoint in this process and calls ``score_batch`` on the same kind of
items (fresh clips for cold, repeated for warm). ratio = API latency / direct latency (p50).

Usage:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cmi_bench REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python bench/score_api.py [--requests 20] [--items 4] [--seconds 10] [--configs tiny,paper]

The database is created if missing and migrated; the bench makes the model versions it registers active.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CONFIGS: dict[str, dict[str, Any]] = {
    # Same model shapes as rm_service.presets.PRESETS; "paper" is the core default (d_model 768, 4 + 1 layers).
    "tiny": {"d_model": 64, "n_heads": 2, "dim_head": 32, "prompt_depth": 1, "joint_depth": 1, "mlp_dim": 64},
    "paper": {},
}


def _ensure_database(url: str) -> None:
    import psycopg
    from dj_database_url import parse

    db = parse(url)
    admin = f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_clips(root: Path, tag: str, n: int, seconds: float) -> list[Path]:
    import numpy as np
    import soundfile as sf

    paths = []
    for i in range(n):
        rng = np.random.default_rng(abs(hash((tag, i))) % (1 << 32))
        t = np.arange(int(seconds * 24000)) / 24000
        wave = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 800) * t) + 0.05 * rng.standard_normal(t.shape[0])
        path = root / "clips" / "bench" / f"{tag}-{i}.wav"
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


def _make_checkpoint(name: str, out: Path) -> Path:
    import torch

    from rm_service.core.checkpoint import save_checkpoint
    from rm_service.core.encoders import get_encoder
    from rm_service.core.model import RewardModel, RewardModelConfig, count_parameters

    encoder = get_encoder("builtin")
    torch.manual_seed(0)
    config = RewardModelConfig(**CONFIGS[name], audio_in_dim=encoder.audio_dim, text_in_dim=encoder.text_dim)
    model = RewardModel(config)
    print(f"[{name}] {count_parameters(model) / 1e6:.2f} M trainable parameters, encoder {encoder.id}")
    return save_checkpoint(
        out / name, model=model, encoder_name=encoder.name, encoder_options=encoder.options(), encoder_id=encoder.id
    )


def _post(url: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        payload = json.loads(response.read())
        status = response.status
    return status, payload, time.perf_counter() - start


def _stats(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    total = sum(latencies)
    return (
        f"{len(latencies) / total:7.2f} req/s  p50 {statistics.median(latencies) * 1000:8.1f} ms  "
        f"p99 {p99 * 1000:8.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20, help="requests per measurement")
    parser.add_argument("--items", type=int, default=4, help="clips per request")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length")
    parser.add_argument("--configs", default="tiny,paper")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL: the bench runs the real web + worker stack")

    work = Path(tempfile.mkdtemp(prefix="score-api-bench-"))
    media = work / "media"
    env = dict(
        os.environ,
        MEDIA_ROOT=str(media),
        RM_ROOT=str(work / "rm"),
        RM_CACHE_DIR=str(work / "cache"),
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret"),
        DEBUG="0",
        STATIC_MANIFEST="0",
        SCORE_RATE_LIMIT="1000000/min",
        API_RATE_LIMIT="1000000/min",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        DJANGO_SETTINGS_MODULE="annotate.settings",
        PYTHONPATH=str(REPO),
    )
    os.environ.update(env)
    _ensure_database(env["DATABASE_URL"])
    import django

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
    app.control.purge()
    port = _free_port()
    logs = (work / "worker.log").open("wb"), (work / "web.log").open("wb")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "annotate",
            "worker",
            "-Q",
            "rm,rm-batch",
            "--pool=solo",
            "--prefetch-multiplier=1",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
            f"--hostname=bench-{os.getpid()}@%h",
        ],
        cwd=REPO,
        env=env,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "annotate.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--timeout", "600"],
        cwd=REPO,
        env=env,
        stdout=logs[1],
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api/v1/score"
    try:
        time.sleep(3)
        print(
            f"clips of {args.seconds:g} s, {args.items} per request, {args.requests} sequential requests; "
            f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}, {os.cpu_count()} CPUs"
        )
        for name in args.configs.split(","):
            _bench_config(name, args, work, media, url, token, services, ModelVersion, load_scorer)
    finally:
        for proc in (web, worker):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _bench_config(
    name: str,
    args: argparse.Namespace,
    work: Path,
    media: Path,
    url: str,
    token: str,
    services: Any,
    ModelVersion: Any,
    load_scorer: Any,
) -> None:  # noqa: N803
    checkpoint = _make_checkpoint(name, work / "checkpoints")
    version = ModelVersion.objects.create(name=f"bench-{name}", checkpoint_path=str(checkpoint))
    services.model_version_activate(version=version, predict=False)
    n = args.requests * args.items
    warmup = _register_clips(_write_clips(media, f"{name}-warmup", args.items, args.seconds), media)
    cold = _register_clips(_write_clips(media, f"{name}-cold", n, args.seconds), media)

    def body(ids: list[int], tag: str) -> dict[str, Any]:
        return {"items": [{"clip_id": c, "text": f"a {tag} piano piece number {c}"} for c in ids]}

    deadline = time.monotonic() + 120
    while True:  # the first request also waits for the worker heartbeat and loads the model (not timed)
        try:
            status, payload, _ = _post(url, token, body(warmup, "warmup"))
            if status == 200:
                break
        except Exception as exc:
            payload = {"error": str(exc)}
        if time.monotonic() > deadline:
            raise SystemExit(f"the API never answered 200: {payload}")
        time.sleep(1)
    batches = [cold[i : i + args.items] for i in range(0, n, args.items)]
    api: dict[str, list[float]] = {"cold": [], "warm": []}
    for phase in ("cold", "warm"):
        for batch in batches:
            status, payload, seconds = _post(url, token, body(batch, "cold"))
            assert status == 200, payload
            api[phase].append(seconds)

    scorer = load_scorer(checkpoint, cache_dir=work / f"direct-cache-{name}")
    direct_paths = _write_clips(media, f"{name}-direct", n, args.seconds)
    spare = _write_clips(media, f"{name}-direct-warmup", args.items, args.seconds)
    scorer.score_batch([{"audio": str(p), "text": "warm up"} for p in spare], batch_size=16)  # lazy inits, untimed
    direct: dict[str, list[float]] = {"cold": [], "warm": []}
    for phase in ("cold", "warm"):  # warm repeats the cold items exactly, so every embedding is cached
        for i in range(0, n, args.items):
            items = [
                {"audio": str(p), "text": f"a cold piano piece number {i + k}"}
                for k, p in enumerate(direct_paths[i : i + args.items])
            ]
            start = time.perf_counter()
            scorer.score_batch(items, batch_size=16)
            direct[phase].append(time.perf_counter() - start)
    print(
        f"[{name}] load average during the run: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} CPUs; "
        "other processes on the machine skew every figure)"
    )
    for phase in ("cold", "warm"):
        ratio = statistics.median(api[phase]) / statistics.median(direct[phase])
        print(f"[{name}] {phase:4s} API    {_stats(api[phase])}")
        print(f"[{name}] {phase:4s} direct {_stats(direct[phase])}   API/direct p50 ratio {ratio:6.2f}")


if __name__ == "__main__":
    main()
