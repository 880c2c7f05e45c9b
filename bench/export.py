"""Benchmark: export of 100,000 and 1,000,000 votes side by side, in votes per second and peak memory.

Usage::

    .venv/bin/python bench/export.py [--votes 100000 1000000] [--database cmi_bench_export] [--archive none]

For each ``--votes`` size it (re)creates its own PostgreSQL database ``<database>_<votes>`` (never the
one in DATABASE_URL), fills it with
clips, instructions, comparisons and annotators through ``bulk_create`` and the votes through
``COPY``, then runs ``export_create`` + ``export_run`` (the same services as the API) in a fresh
subprocess, twice: once timed, once under tracemalloc for the Python heap peak. Each run prints
what it measured: wall time, votes/s, ru_maxrss of the export process before and after, and
whether both runs wrote byte-identical votes.jsonl; then a table of the sizes side by side with the
growth of the export process's peak RSS from the smallest to the largest, and the load average.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"


def _django(database: str, media: Path, exports: Path) -> None:
    os.environ["DATABASE_URL"] = f"{PG}/{database}"
    os.environ["MEDIA_ROOT"] = str(media)
    os.environ["EXPORT_ROOT"] = str(exports)
    # DEBUG off: Django would otherwise keep every query of the run in memory.
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def _recreate_database(database: str) -> None:
    import psycopg

    if not database.startswith("cmi_bench"):
        raise SystemExit("refusing to drop a database whose name does not start with cmi_bench")
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        conn.execute(f'CREATE DATABASE "{database}"')


def _tiny_wav(path: Path, seed: int) -> str:
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    sf.write(str(path), (0.1 * rng.standard_normal(800)).astype(np.float32), 8000)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seed(*, votes: int, per_comparison: int, media: Path) -> None:
    """Create the catalog with bulk_create and the votes with COPY; one comparison gets ``per_comparison`` votes."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from annotate.catalog.models import Campaign, Clip, Comparison, Instruction
    from annotate.labeling.models import AnnotatorProfile

    rng = random.Random(0)
    n_comparisons = votes // per_comparison
    n_instructions = n_comparisons // 4
    clip_dir = media / "clips" / "bench"
    clip_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(1500):
        sha = _tiny_wav(clip_dir / f"{i}.wav", i)
        clips.append(
            Clip(
                sha256=sha,
                file=f"clips/bench/{i}.wav",
                format="WAV",
                duration_s=0.1,
                sample_rate=8000,
                channels=1,
                is_vocal=i % 2 == 0,
                original_name=f"{i}.wav",
            )
        )
    with transaction.atomic():
        campaign = Campaign.objects.create(name="Bench export", status="active")
        clips = Clip.objects.bulk_create(clips, batch_size=1000)
        generated, references = clips[:1200], clips[1200:]
        instructions = Instruction.objects.bulk_create(
            [
                Instruction(
                    prompt_id=f"bench-{i}",
                    text=f"benchmark prompt {i}: warm synth pop, 120 bpm",
                    lyrics="la la la\nsecond line" if i % 4 in (1, 3) else "",
                    reference_clip=references[i % len(references)] if i % 4 >= 2 else None,
                    content_hash=hashlib.sha256(f"bench-{i}".encode()).hexdigest(),
                )
                for i in range(n_instructions)
            ],
            batch_size=2000,
        )
        comparisons = []
        # A clip pair appears at most once per instruction (``comparison_unordered_pair_once``): redraw repeats.
        used: set[tuple[int, int, int]] = set()
        for i in range(n_comparisons):
            while True:
                a, b = rng.sample(range(len(generated)), 2)
                key = (i % n_instructions, min(a, b), max(a, b))
                if key not in used:
                    used.add(key)
                    break
            comparisons.append(
                Comparison(
                    campaign=campaign,
                    instruction=instructions[i % n_instructions],
                    clip_a=generated[a],
                    clip_b=generated[b],
                    system_a=f"sys-{a % 12}",
                    system_b=f"sys-{b % 12}",
                )
            )
        comparisons = Comparison.objects.bulk_create(comparisons, batch_size=2000, ignore_conflicts=False)
        users = User.objects.bulk_create([User(username=f"bench-annotator-{i}", password="!") for i in range(200)])
        AnnotatorProfile.objects.bulk_create(
            [AnnotatorProfile(user=u, pseudonym=f"ann-bench{u.pk:05d}") for u in users]
        )
        _copy_votes(connection, comparisons, users, per_comparison, rng)


def _copy_votes(connection, comparisons, users, per_comparison: int, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    from annotate.labeling import counters

    buffer = io.StringIO()
    for comparison in comparisons:
        for user in rng.sample(users, per_comparison):
            buffer.write(
                "\t".join(
                    [
                        str(comparison.pk),
                        str(user.pk),
                        rng.choice("ab"),
                        str(rng.randint(1, 5)),
                        rng.choice("ab"),
                        str(rng.randint(1, 5)),
                        "sounds fine, the second half drags",
                        rng.choice(["t", "f"]),
                        f"{rng.uniform(5, 30):.2f}",
                        f"{rng.uniform(5, 30):.2f}",
                        f"{rng.uniform(20, 90):.1f}",
                        f"2026-03-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:00:00+00",
                    ]
                )
                + "\n"
            )
    buffer.seek(0)
    columns = (
        "comparison_id, annotator_id, alignment_choice, alignment_confidence, musicality_choice, "
        "musicality_confidence, feedback, presented_swapped, listened_a_s, listened_b_s, time_on_task_s, "
        "created_at"
    )
    with connection.cursor() as cursor:
        # The slot and counter triggers fire once per row (over 10 minutes for 1M votes on a loaded 2-core
        # box): load without them, then rebuild the counters once, as after any bulk load.
        cursor.execute("ALTER TABLE labeling_vote DISABLE TRIGGER USER")
        with cursor.cursor.copy(f"COPY labeling_vote ({columns}) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # check the deferred foreign keys now, so ALTER may run
        cursor.execute("ALTER TABLE labeling_vote ENABLE TRIGGER USER")
        # rebuild() recomputes every counter itself; the slot table's per-row delete trigger would only
        # update the same counter row 200k times first.
        cursor.execute("ALTER TABLE labeling_comparisonslot DISABLE TRIGGER USER")
        counters.rebuild(connection)
        cursor.execute("ALTER TABLE labeling_comparisonslot ENABLE TRIGGER USER")


def run_export(trace: bool, archive: str) -> dict[str, object]:
    """One export of the benchmark campaign in this (fresh) process; returns what was measured."""
    import tracemalloc

    from annotate.catalog.models import Campaign
    from annotate.exports.selectors import export_dir_for
    from annotate.exports.services import export_create, export_run

    campaign = Campaign.objects.get(name="Bench export")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    export = export_create(
        campaign=campaign,
        requested_by=None,
        parameters={"test_size": 500, "seed": 1, "archive": archive},
        enqueue=False,
    )
    export = export_run(export_id=export.pk)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    if export.status != "succeeded":
        raise SystemExit(f"export failed: {export.error}")
    root = export_dir_for(export)
    lines = sum(1 for _ in (root / "votes.jsonl").open("rb"))
    return {
        "votes": lines,
        "seconds": elapsed,
        "votes_per_s": lines / elapsed,
        "maxrss_before_mib": rss_before / 1024,
        "maxrss_after_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tracemalloc_peak_mib": peak / 2**20 if peak is not None else None,
        "votes_sha256": hashlib.sha256((root / "votes.jsonl").read_bytes()).hexdigest(),
        "test_split": export.summary["test_split"],
        "audio_files": len(list((root / "audio").iterdir())),
        "bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
    }


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def measure(votes: int, args: argparse.Namespace) -> list[dict[str, object]]:
    database = f"{args.database}_{votes}"
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="cmi-bench-export-"))) / str(votes)
    command = [sys.executable, __file__, "--seed-only", "--votes", str(votes), "--database", database]
    command += ["--per-comparison", str(args.per_comparison), "--workdir", str(workdir)]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    print(
        f"\nseeded {votes} votes on {votes // args.per_comparison} comparisons "
        f"in {time.perf_counter() - started:.1f} s (database {database}, files under {workdir}); {loadavg()}"
    )
    results = []
    for trace in (False, True):
        command = [sys.executable, __file__, "--export-only", "--database", database, "--workdir", str(workdir)]
        command += ["--archive", args.archive]
        output = subprocess.run(command + (["--trace"] if trace else []), check=True, capture_output=True, text=True)
        result = json.loads(output.stdout.strip().splitlines()[-1])
        results.append(result)
        label = "with tracemalloc" if trace else "timed run      "
        print(
            f"{label}: {result['votes']} votes in {result['seconds']:.2f} s = {result['votes_per_s']:,.0f} votes/s; "
            f"ru_maxrss {result['maxrss_before_mib']:.0f} MiB after Django setup -> "
            f"{result['maxrss_after_mib']:.0f} MiB after export"
            + (f"; Python heap peak {result['tracemalloc_peak_mib']:.1f} MiB" if trace else "")
            + f"; {loadavg()}"
        )
    first = results[0]
    print(
        f"export: {first['audio_files']} audio files, {first['bytes'] / 2**20:.1f} MiB on disk; "
        f"test split {first['test_split']['selected']} of {first['test_split']['requested']} requested"
    )
    print(f"byte-identical votes.jsonl across the two runs: {results[0]['votes_sha256'] == results[1]['votes_sha256']}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--votes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--per-comparison", type=int, default=5)
    parser.add_argument("--database", default="cmi_bench_export")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--export-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--archive",
        default="tar.gz",
        choices=["tar.gz", "zip", "none"],
        help="the export's archive parameter (default tar.gz, the export default; 'none' times the files alone)",
    )
    args = parser.parse_args()
    if args.seed_only or args.export_only:
        workdir = args.workdir
        media, exports = workdir / "media", workdir / "exports"
        if args.export_only:
            _django(args.database, media, exports)
            print(json.dumps(run_export(args.trace, args.archive)))
            return
        _recreate_database(args.database)
        _django(args.database, media, exports)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        seed(votes=args.votes[0], per_comparison=args.per_comparison, media=media)
        return
    table = {votes: measure(votes, args) for votes in args.votes}
    print(f"\n{'votes':>10} {'votes/s':>9} {'RSS before':>11} {'RSS after':>10} {'growth':>8} {'heap peak':>10}")
    for votes, (timed, traced) in table.items():
        growth = float(timed["maxrss_after_mib"]) - float(timed["maxrss_before_mib"])  # type: ignore[arg-type]
        print(
            f"{votes:>10,} {timed['votes_per_s']:>9,.0f} {timed['maxrss_before_mib']:>8.0f} MiB "
            f"{timed['maxrss_after_mib']:>6.0f} MiB {growth:>4.0f} MiB {traced['tracemalloc_peak_mib']:>6.1f} MiB"
        )
    if len(table) > 1:
        small, large = table[min(table)][0], table[max(table)][0]
        growth = float(large["maxrss_after_mib"]) - float(small["maxrss_after_mib"])  # type: ignore[arg-type]
        print(
            f"peak RSS growth {min(table):,} -> {max(table):,} votes: {growth:.0f} MiB (target < 50 MiB); "
            f"throughput at {max(table):,}: {large['votes_per_s']:,.0f} votes/s (target >= 20,000); {loadavg()}"
        )


if __name__ == "__main__":
    main()
