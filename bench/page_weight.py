"""Benchmark: audio bytes of one comparison page, originals versus presentation renditions.

    .venv/bin/python bench/page_weight.py [--manifest m.jsonl --audio-root DIR] [--db cmi_bench_page_weight]

It (re)creates its own PostgreSQL database and a temporary MEDIA_ROOT, imports a campaign (the demo campaign,
synthesised offline, unless ``--manifest`` is given), which makes the renditions, and times that import. For every
comparison it adds up the bytes an annotator's page loads: clip A, clip B and the reference if any, once as the
imported originals (what was served before) and once as the renditions (what is served now). Every figure printed
is measured on the files the import wrote.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, help="JSONL manifest (default: the demo campaign)")
    parser.add_argument("--audio-root", type=Path)
    parser.add_argument("--db", default="cmi_bench_page_weight")
    return parser.parse_args()


def setup(db: str, media: Path) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    os.environ.update(
        DATABASE_URL=f"{PG}/{db}", MEDIA_ROOT=str(media), DEBUG="1", DJANGO_SETTINGS_MODULE="annotate.settings"
    )
    os.environ.pop("REDIS_URL", None)
    sys.path.insert(0, str(REPO))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def size(name: str) -> int:
    from django.conf import settings

    return (Path(settings.MEDIA_ROOT) / name).stat().st_size


def main() -> None:
    args = parse_args()
    media = Path(tempfile.mkdtemp(prefix="bench-page-weight-"))
    setup(args.db, media)
    from annotate.catalog.demo import demo_files_write
    from annotate.catalog.models import ClipRendition, Comparison
    from annotate.catalog.services import campaign_import

    manifest, root = args.manifest, args.audio_root
    if manifest is None:
        root = media / "demo-source"
        manifest = demo_files_write(out_dir=root)
    started = time.perf_counter()
    report = campaign_import(manifest_path=manifest, audio_root=root, campaign_name="page weight")
    import_s = time.perf_counter() - started
    campaign = report.campaign
    renditions = {
        r.clip_id: r
        for r in ClipRendition.objects.filter(
            target_lufs=campaign.presentation_loudness_lufs, ceiling_dbtp=campaign.presentation_true_peak_dbtp
        )
    }
    before, after = [], []
    for comparison in Comparison.objects.filter(campaign=campaign).select_related(
        "clip_a", "clip_b", "instruction__reference_clip"
    ):
        candidates = [comparison.clip_a, comparison.clip_b, comparison.instruction.reference_clip]
        clips = [clip for clip in candidates if clip is not None]
        before.append(sum(size(str(clip.file.name)) for clip in clips))
        after.append(sum(size(str(renditions[clip.pk].file.name)) for clip in clips))
    audio_s = sum(r.duration_s for r in renditions.values())
    formats = sorted({f"{c.format} {c.sample_rate} Hz {c.channels} ch" for c in campaign_clips(campaign)})
    print(f"campaign: {len(before)} comparisons, {len(renditions)} clips, {audio_s:.0f} s of audio; sources: {formats}")
    print(f"import incl. renditions: {import_s:.1f} s ({audio_s / import_s:.1f} s of audio per second)")
    for label, values in (("originals", before), ("renditions", after)):
        print(
            f"page weight, {label:<10}: mean {statistics.fmean(values) / 1024:8.1f} KiB  median "
            f"{statistics.median(values) / 1024:8.1f} KiB  max {max(values) / 1024:8.1f} KiB  "
            f"total {sum(values) / 1024 / 1024:6.2f} MiB"
        )
    print(f"renditions / originals: {sum(after) / sum(before):.3f}")
    loudness = [r.loudness_lufs for r in renditions.values()]
    peaks = [r.true_peak_dbtp for r in renditions.values()]
    print(
        f"rendition loudness {min(loudness):.2f} .. {max(loudness):.2f} LUFS (target "
        f"{campaign.presentation_loudness_lufs:g}), true peak max {max(peaks):.2f} dBTP, "
        f"limited {sum(r.limited for r in renditions.values())}/{len(renditions)}"
    )


def campaign_clips(campaign: object) -> list:  # type: ignore[type-arg]
    from annotate.catalog.selectors import campaign_clips as select

    return list(select(campaign=campaign))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
