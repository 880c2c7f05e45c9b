from __future__ import annotations

import datetime as dt
import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotate.broker import BrokerUnavailable
from annotate.catalog.models import Campaign
from annotate.exports.models import Export
from annotate.exports.params import ARCHIVE_FORMATS, AUDIO_MODES, ExportParameterError
from annotate.exports.selectors import export_dir_for
from annotate.exports.services import export_create, export_run


class Command(BaseCommand):
    help = (
        "Export a campaign's votes as CMI-Pref-style train/validation/test splits (CMI-RewardBench JSONL). "
        "Runs here and now unless --queue is given."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("campaign", help="Campaign id or exact name.")
        parser.add_argument("--seed", type=int)
        parser.add_argument("--test-size", type=int, help="Test split size in comparisons (wins over --test-fraction).")
        parser.add_argument("--test-fraction", type=float)
        parser.add_argument("--validation-fraction", type=float)
        parser.add_argument(
            "--no-balance-test",
            dest="balance_test",
            action="store_false",
            default=None,
            help="Draw the test split at random instead of balancing modality and vocal.",
        )
        parser.add_argument("--group-by-reference", action="store_true", default=None)
        parser.add_argument("--min-votes", dest="min_votes_per_comparison", type=int)
        parser.add_argument("--min-confidence", type=int)
        parser.add_argument("--include-gold", dest="exclude_gold", action="store_false", default=None)
        parser.add_argument(
            "--include-attention-checks", dest="exclude_attention_checks", action="store_false", default=None
        )
        parser.add_argument(
            "--include-flagged",
            dest="exclude_flagged_annotators",
            action="store_false",
            default=None,
            help="Keep annotators flagged by quality control.",
        )
        parser.add_argument("--date-from", type=dt.date.fromisoformat, help="YYYY-MM-DD, inclusive (UTC).")
        parser.add_argument("--date-to", type=dt.date.fromisoformat, help="YYYY-MM-DD, inclusive (UTC).")
        parser.add_argument("--audio", choices=AUDIO_MODES)
        parser.add_argument("--archive", choices=ARCHIVE_FORMATS)
        parser.add_argument("--queue", action="store_true", help="Hand the export to the Celery worker instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        campaign = _campaign(options["campaign"])
        names = (
            "seed",
            "test_size",
            "test_fraction",
            "validation_fraction",
            "balance_test",
            "group_by_reference",
            "min_votes_per_comparison",
            "min_confidence",
            "exclude_gold",
            "exclude_attention_checks",
            "exclude_flagged_annotators",
            "date_from",
            "date_to",
            "audio",
            "archive",
        )
        parameters = {name: options[name] for name in names if options.get(name) is not None}
        try:
            export = export_create(
                campaign=campaign, requested_by=None, parameters=parameters, enqueue=options["queue"]
            )
        except ExportParameterError as exc:
            raise CommandError(f"impossible parameters: {exc}") from None
        except BrokerUnavailable as exc:
            raise CommandError(f"{exc} Run without --queue to export in the foreground.") from None
        if options["queue"]:
            self.stdout.write(f"Export {export.pk} queued; follow it at /api/v1/exports/{export.pk}")
            return
        export = export_run(export_id=export.pk)
        if export.status != Export.Status.SUCCEEDED:
            raise CommandError(f"export {export.pk} failed: {export.error}")
        self.stdout.write(f"Export {export.pk} written to {export_dir_for(export)}")
        self.stdout.write(json.dumps({"votes": export.summary["votes"], "comparisons": export.summary["comparisons"]}))
        for message in (export.summary["test_split"]["shortfall"] or {}).get("messages", []):
            self.stdout.write(f"  shortfall: {message}")


def _campaign(key: str) -> Campaign:
    campaign = Campaign.objects.filter(pk=int(key)).first() if key.isdigit() else None
    campaign = campaign or Campaign.objects.filter(name=key).first()
    if campaign is None:
        raise CommandError(f"no campaign with id or name {key!r}")
    return campaign
