"""Start a training run from the command line (same service as the UI and POST /api/v1/training-runs)."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.catalog.models import Campaign
from rm_service import services
from rm_service.models import TrainingRun


class Command(BaseCommand):
    help = "Queue a reward-model training run on the rm queue (from an export id or JSONL files)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--export", type=int, help="campaign export id")
        parser.add_argument("--train", default="", help="training JSONL (CMI-RewardBench schema)")
        parser.add_argument("--validation", default="")
        parser.add_argument("--test", default="")
        parser.add_argument("--dataset-root", default="", help="directory audio paths are relative to")
        parser.add_argument("--pseudo", default="", help="optional stage-1 pseudo-label JSONL")
        parser.add_argument("--campaign", type=int, help="campaign id the run belongs to")
        parser.add_argument("--encoder", default="builtin")
        parser.add_argument("--preset", default="tiny")
        parser.add_argument("--config", default="{}", help="JSON overrides of the training config")
        parser.add_argument("--name", default="")
        parser.add_argument("--wait", action="store_true", help="wait for the run to finish, printing progress")

    def handle(self, *args: Any, **opts: Any) -> None:
        campaign = Campaign.objects.filter(pk=opts["campaign"]).first() if opts["campaign"] else None
        try:
            run = services.training_run_create(
                user=None,
                campaign=campaign,
                export_id=opts["export"],
                train_jsonl=opts["train"],
                validation_jsonl=opts["validation"],
                test_jsonl=opts["test"],
                dataset_root=opts["dataset_root"],
                pseudo_jsonl=opts["pseudo"],
                encoder=opts["encoder"],
                preset=opts["preset"],
                config=json.loads(opts["config"]),
                name=opts["name"],
            )
        except (services.RmServiceError, json.JSONDecodeError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"training run {run.pk} queued (output {run.output_dir})")
        while opts["wait"] and not run.is_finished:
            time.sleep(2)
            run = TrainingRun.objects.get(pk=run.pk)
            self.stdout.write(f"  {run.status} step {run.step}/{run.total_steps} loss {run.loss}")
        if opts["wait"]:
            self.stdout.write(f"training run {run.pk}: {run.status} {run.error}")
