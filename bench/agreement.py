"""Benchmark: agreement statistics on 1,000,000 votes over 300,000 comparisons.

Creates its own PostgreSQL database (dropped and recreated each run), migrates it, loads the
comparisons, annotators and votes with COPY (not the ORM), then times, through the platform's
own code:

* end to end from the maintained counts: ``campaign_patterns`` (the campaign's split histogram, moved by
  trigger with each vote: a few hundred rows) + ``alpha_nominal``, both questions: what the dashboard
  and snapshots now run;
* end to end from a scan of the votes: ``vote_patterns`` (GROUP BY over every vote) + ``alpha_nominal``,
  the path filtered views still take;
* the full headline (``agreement_summary`` on the maintained counts: counts, pair agreement, alpha and
  the 1000-sample bootstrap CI), both questions;
* the reference: ``krippendorff.alpha`` alone on an in-memory value_counts of the same data.

Each ``--votes`` size gets its own database and campaign (0.3 comparisons per vote unless
``--comparisons``), and the sizes are printed side by side. COPY with ``session_replication_role =
replica`` bypasses triggers, so after loading, the maintained counts are rebuilt once
(``counters.rebuild``, what the migration does for existing rows; timed and printed).

Usage: .venv/bin/python bench/agreement.py [--votes 100000 1000000] [--repeat 5]
Database: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cmi_bench_agreement).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/cmi_bench_agreement"
ANNOTATORS = 2000
INSTRUCTIONS = 1000


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    from django.apps import apps

    if apps.ready:
        from django.core.management import call_command
        from django.db import connection

        connection.close()  # a later size: same settings, its own database
        connection.settings_dict["NAME"] = urlparse(url).path.lstrip("/")
        call_command("migrate", verbosity=0)
        return
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def vote_counts_per_comparison(votes: int, comparisons: int, rng: np.random.Generator) -> np.ndarray:
    """Votes per comparison, 1..6 (some single-vote units, which alpha must ignore), summing to ``votes``."""
    m = rng.choice([1, 2, 3, 4, 5, 6], size=comparisons, p=[0.07, 0.2, 0.33, 0.27, 0.08, 0.05])
    diff = votes - int(m.sum())
    step = 1 if diff > 0 else -1
    while diff:
        index = rng.integers(comparisons, size=abs(diff))
        ok = (m[index] + step >= 1) & (m[index] + step <= 6)
        np.add.at(m, index[ok], step)
        diff = votes - int(m.sum())
        step = 1 if diff > 0 else -1
    return m


def copy_rows(cursor: object, table: str, columns: str, lines: io.StringIO) -> None:
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
        copy.write(lines.getvalue())


def load(votes: int, comparisons: int, seed: int) -> tuple[int, np.ndarray, np.ndarray]:
    """COPY the synthetic campaign; returns (campaign id, alignment value_counts, musicality value_counts)."""
    from django.db import connection

    from annotate.catalog.models import Campaign

    rng = np.random.default_rng(seed)
    campaign = Campaign.objects.create(name="bench", status="active")
    m = vote_counts_per_comparison(votes, comparisons, rng)
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # the raw psycopg cursor, for COPY
        # Skip per-row foreign-key triggers while loading; the generated ids are consistent by construction.
        cursor.execute("SET session_replication_role = replica")
        now = "2026-01-01 00:00:00+00"
        users = io.StringIO("".join(f"bench{i}\t!\tf\tf\tt\t\t\t\t{now}\n" for i in range(ANNOTATORS)))
        copy_rows(
            cursor,
            "auth_user",
            "username, password, is_superuser, is_staff, is_active, first_name, last_name, email, date_joined",
            users,
        )
        clips = io.StringIO("".join(f"{i:064x}\tclips/{i}.wav\tWAV\t30\t44100\t2\tf\t\t{now}\n" for i in range(600)))
        copy_rows(
            cursor,
            "catalog_clip",
            "sha256, file, format, duration_s, sample_rate, channels, is_vocal, original_name, created_at",
            clips,
        )
        instructions = io.StringIO("".join(f"p{i}\tprompt {i}\t\t{i:064x}\t{now}\n" for i in range(INSTRUCTIONS)))
        copy_rows(cursor, "catalog_instruction", "prompt_id, text, lyrics, content_hash, created_at", instructions)
        cursor.execute("SELECT min(id) FROM catalog_clip")
        clip0 = cursor.fetchone()[0]
        cursor.execute("SELECT min(id) FROM catalog_instruction")
        instruction0 = cursor.fetchone()[0]
        cursor.execute("SELECT min(id) FROM auth_user")
        user0 = cursor.fetchone()[0]
        pairs = 600 // 2
        rows = io.StringIO(
            "".join(
                f"{campaign.pk}\t{instruction0 + c // pairs}\t{clip0 + 2 * (c % pairs)}\t{clip0 + 2 * (c % pairs) + 1}"
                f"\t\t\tf\t{now}\tsys{(2 * c) % 5}\tsys{(2 * c + 1) % 5}\t\n"
                for c in range(comparisons)
            )
        )
        copy_rows(
            cursor,
            "catalog_comparison",
            "campaign_id, instruction_id, clip_a_id, clip_b_id, gold_alignment, "
            "gold_musicality, is_attention_check, created_at, system_a, system_b, source_split",
            rows,
        )
        cursor.execute("SELECT min(id) FROM catalog_comparison WHERE campaign_id = %s", [campaign.pk])
        comparison0 = cursor.fetchone()[0]

        # Each comparison has a latent preference strength; votes follow it, so alpha is realistic (~0.3-0.5).
        p_al = rng.beta(0.8, 0.8, size=comparisons)
        p_mu = np.clip(p_al + rng.normal(0, 0.25, size=comparisons), 0, 1)
        unit = np.repeat(np.arange(comparisons), m)
        rank = np.arange(votes) - np.repeat(np.cumsum(m) - m, m)  # 0..m-1 within the comparison
        annotator = (unit * 7 + rank * 13) % ANNOTATORS  # distinct within a comparison
        al_a = rng.random(votes) < p_al[unit]
        mu_a = rng.random(votes) < p_mu[unit]
        al_conf = rng.integers(1, 6, size=votes)
        mu_conf = rng.integers(1, 6, size=votes)
        swapped = rng.random(votes) < 0.5
        buffer = io.StringIO()
        for u, a, ala, mua, alc, muc, sw in zip(
            unit.tolist(),
            annotator.tolist(),
            al_a.tolist(),
            mu_a.tolist(),
            al_conf.tolist(),
            mu_conf.tolist(),
            swapped.tolist(),
            strict=True,
        ):
            buffer.write(
                f"{comparison0 + u}\t{user0 + a}\t{'a' if ala else 'b'}\t{alc}\t{'a' if mua else 'b'}\t{muc}"
                f"\t\t{'t' if sw else 'f'}\t30\t30\t60\t{now}\n"
            )
        copy_rows(
            cursor,
            "labeling_vote",
            "comparison_id, annotator_id, alignment_choice, alignment_confidence, "
            "musicality_choice, musicality_confidence, feedback, presented_swapped, listened_a_s, "
            "listened_b_s, time_on_task_s, created_at",
            buffer,
        )
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("ANALYZE")
    value_counts_al = np.zeros((comparisons, 2), dtype=np.int64)
    value_counts_mu = np.zeros((comparisons, 2), dtype=np.int64)
    np.add.at(value_counts_al, (unit, np.where(al_a, 0, 1)), 1)
    np.add.at(value_counts_mu, (unit, np.where(mu_a, 0, 1)), 1)
    return campaign.pk, value_counts_al, value_counts_mu


def timed(fn: object, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure(url: str, votes_n: int, comparisons_n: int, args: argparse.Namespace) -> dict[str, float]:
    started = time.perf_counter()
    recreate_database(url)
    setup_django(url)
    campaign_id, counts_al, counts_mu = load(votes_n, comparisons_n, args.seed)
    loaded = time.perf_counter() - started
    from django.db import connection

    from annotate.labeling import counters

    started = time.perf_counter()
    counters.rebuild(connection)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    rebuilt = time.perf_counter() - started
    print(
        f"\n{votes_n:,} votes over {comparisons_n:,} comparisons: COPY into {urlparse(url).path.lstrip('/')} "
        f"{loaded:.1f} s, maintained counts rebuilt in {rebuilt:.1f} s; {loadavg()}"
    )

    import krippendorff

    from annotate.agreement import metrics
    from annotate.agreement.selectors import campaign_patterns, campaign_votes, vote_patterns

    votes = campaign_votes(campaign_id=campaign_id)

    def maintained() -> tuple[float | None, float | None]:
        patterns = campaign_patterns(campaign_id=campaign_id)
        return metrics.alpha_nominal(*patterns.alignment), metrics.alpha_nominal(*patterns.musicality)

    def scanned() -> tuple[float | None, float | None]:
        patterns = vote_patterns(votes=votes)
        return metrics.alpha_nominal(*patterns.alignment), metrics.alpha_nominal(*patterns.musicality)

    def reference() -> tuple[float, float]:
        return (
            krippendorff.alpha(value_counts=counts_al, level_of_measurement="nominal"),
            krippendorff.alpha(value_counts=counts_mu, level_of_measurement="nominal"),
        )

    maintained()  # warm the buffer cache and the connection once, as a running server would be
    scanned()
    t_maintained, ours = timed(maintained, args.repeat)
    t_scan, ours_scan = timed(scanned, args.repeat)
    t_ref, theirs = timed(reference, args.repeat)
    t_full, summary = timed(lambda: _summary(votes, campaign_id), max(1, args.repeat // 2))
    assert isinstance(ours, tuple) and isinstance(theirs, tuple) and isinstance(ours_scan, tuple)
    assert isinstance(summary, dict)
    difference = max(abs(a - b) for a, b in zip(ours + ours_scan, theirs + theirs, strict=True))
    print(f"  alpha alignment  {ours[0]:.12f} (krippendorff.alpha in memory {theirs[0]:.12f})")
    print(f"  alpha musicality {ours[1]:.12f} (krippendorff.alpha in memory {theirs[1]:.12f})")
    print(f"  max |difference| (both paths, both questions) {difference:.3e}")
    al = summary["alignment"]
    print(
        f"  agreement_summary (maintained counts): alignment agreement {al['agreement_rate']:.4f}, alpha "
        f"{al['alpha']['value']:.4f} [{al['alpha']['ci95_low']:.4f}, {al['alpha']['ci95_high']:.4f}]"
    )
    return {"maintained": t_maintained, "scan": t_scan, "reference": t_ref, "summary": t_full}


def _summary(votes: object, campaign_id: int) -> dict[str, object]:
    from annotate.agreement.selectors import _agreement_summary, campaign_patterns

    patterns = campaign_patterns(campaign_id=campaign_id)
    return _agreement_summary(votes, bootstrap_samples=1000, patterns=patterns).as_dict()  # type: ignore[arg-type]


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--comparisons", type=int, nargs="+", help="per --votes size; default 0.3 x votes")
    parser.add_argument("--repeat", type=int, default=5, help="Timed runs; the median is reported.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    base = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    sizes = list(zip(args.votes, args.comparisons or [int(0.3 * v) for v in args.votes], strict=True))
    results = {}
    for votes_n, comparisons_n in sizes:
        results[votes_n] = measure(f"{base}_{votes_n}", votes_n, comparisons_n, args)

    print(f"\nmedian of {args.repeat} runs, seconds, both questions ({loadavg()})")
    print(
        f"{'votes':>12} {'maintained':>11} {'vote scan':>10} {'bare kripp.':>11} {'maint./bare':>12} "
        f"{'scan/bare':>10} {'summary':>8}"
    )
    for votes_n, r in results.items():
        print(
            f"{votes_n:>12,} {r['maintained']:>11.3f} {r['scan']:>10.3f} {r['reference']:>11.3f} "
            f"{r['maintained'] / r['reference']:>11.2f}x {r['scan'] / r['reference']:>9.2f}x {r['summary']:>8.3f}"
        )
    largest = max(results)
    ratio = results[largest]["maintained"] / results[largest]["reference"]
    print(
        f"target: end to end (maintained counts) within 2x of krippendorff.alpha at {largest:,} votes: "
        f"{ratio:.2f}x -> {'met' if ratio <= 2 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
