from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from annotate.agreement.services import SYNTHETIC_PREFIX, synthetic_votes_seed
from annotate.catalog.demo import ACCOUNTS, demo_campaign_create
from annotate.catalog.management.commands.import_campaign import format_report


class Command(BaseCommand):
    help = (
        "Create the deterministic, offline demo campaign (synthesised audio), the demo accounts and SIMULATED "
        "votes from several annotator personas (so the staff pages have something to show)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-votes", action="store_true", help="skip the simulated votes")

    def handle(self, *args: Any, **options: Any) -> None:
        report = demo_campaign_create()
        self.stdout.write(format_report(report))
        if not options["no_votes"]:
            # Eight personas (careful raters, a straight-liner, a position-biased rater, a rusher), six votes
            # per comparison: enough for alpha, QC flags, exports and a tiny model. Re-running adds nothing.
            added = synthetic_votes_seed(campaign_id=report.campaign.pk, annotators=8, overlap=6, seed=0)
            self.stdout.write(
                f"\nSimulated votes: {added} added from 8 personas ({SYNTHETIC_PREFIX}1..8); staff pages mark "
                "them as simulated. They are not human judgements."
            )
        self.stdout.write("\nDemo accounts:")
        for account in ACCOUNTS:
            role = "admin" if account.is_staff else "annotator"
            self.stdout.write(f"  {role:<10} {account.username:<12} password: {account.password}")
