"""Benchmark: agreement statistics on 1,000,000 votes over 300,000 comparisons.

Creates its own PostgreSQL database (dropped and recreated each run), migrates it, loads the
comparisons, annotators and votes with COPY (not the ORM), then times, through the platform's
own code:

* end to end, SQL -> alpha: ``vote_patterns`` (the GROUP BY aggregation) + ``alpha_nominal``
  (``krippendorff.alpha`` on the value_counts it builds), both questions;
* the full headline (``agreement_summary``: counts, pair agreement, alpha and the 1000-sample
  bootstrap CI), both questions;
* the reference: ``krippendorff.alpha`` alone on an in-memory value_counts of the same data.

Usage: .venv/bin/python bench/agreement.py [--votes 1000000] [--comparisons 300000] [--repeat 5]
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
        clips = io.StringIO(
            "".join(f"{i:064x}\tclips/{i}.wav\tWAV\t30\t44100\t2\tsys{i % 5}\tf\t\t{now}\n" for i in range(600))
        )
        copy_rows(
            cursor,
            "catalog_clip",
            "sha256, file, format, duration_s, sample_rate, channels, system, is_vocal, original_name, created_at",
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
                f"\t\t\tf\t{now}\n"
                for c in range(comparisons)
            )
        )
        copy_rows(
            cursor,
            "catalog_comparison",
            "campaign_id, instruction_id, clip_a_id, clip_b_id, gold_alignment, "
            "gold_musicality, is_attention_check, created_at",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--comparisons", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=5, help="Timed runs; the median is reported.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)

    started = time.perf_counter()
    recreate_database(url)
    setup_django(url)
    campaign_id, counts_al, counts_mu = load(args.votes, args.comparisons, args.seed)
    print(
        f"loaded {args.votes:,} votes over {args.comparisons:,} comparisons with COPY "
        f"into {urlparse(url).path.lstrip('/')} in {time.perf_counter() - started:.1f} s"
    )

    import krippendorff

    from annotate.agreement import metrics
    from annotate.agreement.selectors import agreement_summary, campaign_votes, vote_patterns

    votes = campaign_votes(campaign_id=campaign_id)

    def end_to_end() -> tuple[float | None, float | None]:
        patterns = vote_patterns(votes=votes)
        return metrics.alpha_nominal(*patterns.alignment), metrics.alpha_nominal(*patterns.musicality)

    def reference() -> tuple[float, float]:
        return (
            krippendorff.alpha(value_counts=counts_al, level_of_measurement="nominal"),
            krippendorff.alpha(value_counts=counts_mu, level_of_measurement="nominal"),
        )

    end_to_end()  # warm the buffer cache and the connection once, as a running server would be
    t_e2e, ours = timed(end_to_end, args.repeat)
    t_ref, theirs = timed(reference, args.repeat)
    t_full, summary = timed(lambda: agreement_summary(votes=votes), max(1, args.repeat // 2))
    assert isinstance(ours, tuple) and isinstance(theirs, tuple) and isinstance(summary, dict)
    difference = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))

    print(f"alpha alignment  {ours[0]:.12f} (krippendorff.alpha in memory {theirs[0]:.12f})")
    print(f"alpha musicality {ours[1]:.12f} (krippendorff.alpha in memory {theirs[1]:.12f})")
    print(f"max |difference| {difference:.3e}")
    print(f"end to end, SQL -> alpha (both questions), median of {args.repeat}: {t_e2e:.3f} s")
    print(f"krippendorff.alpha on in-memory value_counts (both questions), median of {args.repeat}: {t_ref:.3f} s")
    print(f"ratio end-to-end / in-memory: {t_e2e / t_ref:.2f}x")
    al = summary["alignment"]
    print(
        f"full agreement_summary (counts, pair agreement, alpha + 1000-sample bootstrap CI, both questions): "
        f"{t_full:.3f} s; alignment agreement {al['agreement_rate']:.4f}, alpha {al['alpha']['value']:.4f} "
        f"[{al['alpha']['ci95_low']:.4f}, {al['alpha']['ci95_high']:.4f}]"
    )
    print(f"target end-to-end < 2 s: {'met' if t_e2e < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
