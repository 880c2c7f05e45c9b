from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotate.catalog.models import Campaign, ClipRendition
from annotate.catalog.services import campaign_renditions_make


class Command(BaseCommand):
    help = (
        "Make the loudness-matched presentation rendition (what annotators hear) for every clip of the given "
        "campaigns, or of all campaigns. Idempotent: clips that already have theirs are skipped."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("campaigns", nargs="*", help="Campaign names or ids (default: every campaign).")

    def handle(self, *args: Any, **options: Any) -> None:
        campaigns = [_campaign(ref) for ref in options["campaigns"]] or list(Campaign.objects.order_by("pk"))
        made = existing = failed = 0
        for campaign in campaigns:
            self.stdout.write(
                f"Campaign {campaign.name!r}: target {campaign.presentation_loudness_lufs:g} LUFS, "
                f"ceiling {campaign.presentation_true_peak_dbtp:g} dBTP"
            )
            for index, total, clip, result, created in campaign_renditions_make(campaign=campaign):
                prefix = f"  [{index}/{total}] {clip}"
                if isinstance(result, ClipRendition):
                    made, existing = made + created, existing + (not created)
                    state = "made" if created else "exists"
                    self.stdout.write(
                        f"{prefix}: {state} ({result.loudness_lufs:.1f} LUFS, {result.true_peak_dbtp:.1f} dBTP"
                        f"{', limited' if result.limited else ''})"
                    )
                else:
                    failed += 1
                    self.stderr.write(f"{prefix}: FAILED ({result})")
        self.stdout.write(f"renditions: {made} made, {existing} already present, {failed} failed")
        if failed:
            raise CommandError(f"{failed} clip(s) have no rendition; annotators can't hear them until fixed")


def _campaign(ref: str) -> Campaign:
    campaign = Campaign.objects.filter(name=ref).first()
    if campaign is None and ref.isdigit():
        campaign = Campaign.objects.filter(pk=int(ref)).first()
    if campaign is None:
        raise CommandError(f"no campaign named or numbered {ref!r}")
    return campaign
