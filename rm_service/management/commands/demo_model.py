"""Train, register and activate a tiny reward model on the demo campaign's (simulated) votes, in this process."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from annotate.catalog.demo import DEMO_CAMPAIGN
from annotate.catalog.models import Campaign
from annotate.exports.models import Export
from annotate.exports.services import export_create, export_run
from rm_service import services
from rm_service.models import ModelVersion
from rm_service.services.predictions import predictions_compute

DEMO_MODEL_NAME = "demo: tiny model on simulated votes"


class Command(BaseCommand):
    help = (
        "For the demo: export the demo campaign, train a tiny model on its (simulated) votes, activate it and "
        "store its predictions, all in this process (no worker needed). Does nothing once the demo model exists."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        campaign = Campaign.objects.filter(name=DEMO_CAMPAIGN).first()
        if campaign is None:
            raise CommandError("No demo campaign: run `manage.py demo` first.")
        version = ModelVersion.objects.filter(name=DEMO_MODEL_NAME, campaign=campaign).first()
        if version is None:
            version = self._train(campaign)
        services.model_version_activate(version=version, predict=False)
        predicted = predictions_compute(version=version, campaign=campaign)
        self.stdout.write(
            f"demo model: version {version.pk} active, {predicted} predictions for {campaign.name!r} "
            f"in {time.monotonic() - started:.1f} s"
        )

    def _train(self, campaign: Campaign) -> ModelVersion:
        export = export_create(
            campaign=campaign, requested_by=None, parameters={"exclude_flagged_annotators": True}, enqueue=False
        )
        export = export_run(export_id=export.pk)
        if export.status != Export.Status.SUCCEEDED:
            raise CommandError(f"demo export failed: {export.error}")
        self.stdout.write(f"exported the demo campaign (export {export.pk}); training a tiny model …")
        try:
            run = services.training_run_create(
                user=None, campaign=campaign, export_id=export.pk, preset="tiny", name=DEMO_MODEL_NAME, enqueue=False
            )
        except services.RmServiceError as exc:
            raise CommandError(str(exc)) from exc
        outcome = services.training_run_execute(run_id=run.pk, worker="demo_model")
        run.refresh_from_db()
        if outcome != "succeeded" or run.model_version is None:
            raise CommandError(f"demo training run {run.pk} {outcome}: {run.error}")
        return run.model_version
