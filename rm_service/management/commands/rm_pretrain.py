"""Stage-1 pretraining on the platform's own clips (pairs constructed offline), registered as a model version."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rm_service import services


class Command(BaseCommand):
    help = (
        "Construct reference-alignment, graded-defect and description pairs from every clip under MEDIA_ROOT/clips "
        "(or --audio-dir), train stage 1 on them and register the result as a model version (not activated)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--audio-dir", default="", help="default: MEDIA_ROOT/clips")
        parser.add_argument("--out", default="", help="default: RM_ROOT/pretrain-<timestamp>")
        parser.add_argument("--pairs", type=int, default=600, help="pairs of each kind (a third as many text pairs)")
        parser.add_argument("--steps", type=int, default=1000)

    def handle(self, *args: Any, **opts: Any) -> None:
        from rm_service import worker

        audio_dir = Path(opts["audio_dir"] or Path(settings.MEDIA_ROOT) / "clips")
        out = Path(opts["out"] or settings.RM_ROOT / f"pretrain-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            checkpoint, summary = worker.pretrain_on_folder(audio_dir, out, pairs=opts["pairs"], steps=opts["steps"])
            version = services.model_version_register_checkpoint(
                checkpoint_path=str(checkpoint),
                name=f"stage 1 on {audio_dir}",
                training_data={"pretrain": {"audio_dir": str(audio_dir), "rows": summary["rows"]}},
            )
        except (ValueError, FileNotFoundError, services.RmServiceError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"registered model version {version.pk}")
        self.stdout.write(str(checkpoint))
