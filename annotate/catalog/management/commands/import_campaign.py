from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotate.catalog.services import ImportReport, ImportValidationError, campaign_import


class Command(BaseCommand):
    help = "Import a JSONL manifest (CMI-RewardBench field names) into a campaign, all or nothing."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("manifest", type=Path, help="JSONL file, one comparison per line.")
        parser.add_argument("--audio-root", type=Path, required=True, help="Directory the audio paths are relative to.")
        parser.add_argument("--campaign", required=True, help="Campaign name (created as a draft if new).")
        parser.add_argument("--activate", action="store_true", help="Set the campaign active after importing.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = campaign_import(
                manifest_path=options["manifest"],
                audio_root=options["audio_root"],
                campaign_name=options["campaign"],
                activate=options["activate"],
            )
        except ImportValidationError as exc:
            for problem in exc.problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(str(exc)) from None
        self.stdout.write(format_report(report))


def format_report(report: ImportReport) -> str:
    minutes, seconds = divmod(round(report.total_audio_s), 60)
    modality = ", ".join(f"{key}={report.by_modality.get(key, 0)}" for key in "TLAC")
    systems = ", ".join(f"{name} ({count})" for name, count in sorted(report.systems.items())) or "none"
    ignored = [
        f"    {len(lines)} row(s): {why} (lines {', '.join(map(str, lines[:10]))}{', ...' if len(lines) > 10 else ''})"
        for why, lines in sorted(report.labels_ignored.items())
    ]
    return "\n".join(
        [
            f"Campaign {report.campaign.name!r} ({'created' if report.campaign_created else 'existing'}, "
            f"{report.campaign.status})",
            f"  rows read:            {report.rows}",
            f"  comparisons imported: {report.comparisons_created} (already present: {report.comparisons_existing})",
            f"  by modality:          {modality}",
            f"  clips:                {report.clips_created} new, {report.clips_existing} already stored",
            f"  renditions made:      {report.renditions_created} (loudness-matched MP3 that annotators hear)",
            f"  systems:              {systems}",
            f"  audio in new pairs:   {minutes} min {seconds} s",
            f"  votes imported:       {report.votes_created} ({report.ties} with a tie; already present: "
            f"{report.votes_existing}) from {report.external_annotators_created} new external annotator(s)",
            f"  labels ignored:       {report.labels_ignored_count} row(s)",
            *ignored,
        ]
    )
