from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from annotate.catalog.demo import ACCOUNTS, demo_campaign_create
from annotate.catalog.management.commands.import_campaign import format_report


class Command(BaseCommand):
    help = "Create the deterministic, offline demo campaign (synthesised audio) and the demo accounts."

    def handle(self, *args: Any, **options: Any) -> None:
        report = demo_campaign_create()
        self.stdout.write(format_report(report))
        self.stdout.write("\nDemo accounts:")
        for account in ACCOUNTS:
            role = "admin" if account.is_staff else "annotator"
            self.stdout.write(f"  {role:<10} {account.username:<12} password: {account.password}")
