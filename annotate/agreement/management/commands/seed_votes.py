from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.agreement.management.commands._campaign import campaign_from_arg
from annotate.agreement.services import SYNTHETIC_PREFIX, synthetic_votes_seed


class Command(BaseCommand):
    help = (
        "Write SYNTHETIC votes (users synthetic-annotator-N) on a campaign, to demo the agreement "
        "dashboard. Never use on a campaign whose labels you will train on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("campaign", help="Campaign name or id.")
        parser.add_argument("--annotators", type=int, default=8)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--overlap", type=int, default=None, help="Votes per comparison (default: max(3, target)).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["annotators"] < 2:
            raise CommandError("--annotators must be at least 2 for votes to overlap.")
        campaign = campaign_from_arg(options["campaign"])
        added = synthetic_votes_seed(
            campaign_id=campaign.pk, annotators=options["annotators"], seed=options["seed"], overlap=options["overlap"]
        )
        self.stdout.write(
            f"Added {added} synthetic votes to {campaign.name!r} from {options['annotators']} "
            f"{SYNTHETIC_PREFIX}N users (marked synthetic in their feedback)."
        )
