"""Build (or reuse) the offline starter model, register it as a model version and activate it if none is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rm_service import services
from rm_service.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Build the stage-1 starter model from the installed Debian music corpus and synthesised music (minutes "
        "on CPU; reused when already built), register it, and activate it when no model version is active."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", default="", help="starter directory (default: RM_ROOT/starter)")
        parser.add_argument("--no-activate", action="store_true", help="register only")
        parser.add_argument(
            "--no-panel", action="store_true", help="skip the evaluation panel on held-out tracks (CPU minutes)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from rm_service import worker

        out = Path(opts["out"] or settings.RM_ROOT / "starter")
        checkpoint, record = worker.starter_build(out)
        packages = record.get("debian_packages") or []
        metrics = {}
        if not opts["no_panel"]:
            panel = worker.starter_panel(out)
            metrics = {"test": {"panel": panel, "split": panel.get("source", "held-out tracks")}}
        try:
            version = services.model_version_register_checkpoint(
                checkpoint_path=str(checkpoint),
                name="starter (stage 1, " + (", ".join(packages) if packages else "synthesised music only") + ")",
                training_data={"starter": record},
                metrics=metrics,
            )
        except services.RmServiceError as exc:
            raise CommandError(str(exc)) from exc
        if not opts["no_activate"] and not ModelVersion.objects.filter(is_active=True).exists():
            services.model_version_activate(version=version)
            self.stdout.write(f"activated model version {version.pk}")
        self.stdout.write(str(checkpoint))
