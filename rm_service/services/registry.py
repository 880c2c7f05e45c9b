"""The model registry: versions registered from finished training runs, and the one active version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from annotate.catalog.models import Campaign
from rm_service.models import ModelVersion, TrainingRun
from rm_service.services.common import RmServiceError, now
from rm_service.services.jobs import predictions_request

if TYPE_CHECKING:
    from rm_service.worker import CheckpointInfo


def model_version_register(*, run: TrainingRun, checkpoint: CheckpointInfo, metrics: dict[str, Any]) -> ModelVersion:
    """Record a finished run's checkpoint, with the data it was trained on and its metrics, as a version."""
    data: dict[str, Any]
    if run.source == TrainingRun.Source.PRETRAIN:
        options = (run.config or {}).get("pretrain", {})
        data = {
            "pretrain": {
                "campaign_id": run.campaign_id,
                "clips": len(options.get("clips", [])),
                "pairs": options.get("pairs"),
                "steps": options.get("steps"),
                "pairs_dir": run.dataset_root,
            },
            "sha256": run.data_sha256,
        }
    else:
        data = (
            {"export_id": run.export_id}
            if run.export_id
            else {"jsonl": run.train_jsonl, "dataset_root": run.dataset_root}
        )
        data.update({"sha256": run.data_sha256, "validation": run.validation_jsonl, "test": run.test_jsonl})
        if run.pseudo_jsonl:
            data["pseudo_jsonl"] = run.pseudo_jsonl
    return ModelVersion.objects.create(
        name=run.name or f"run {run.pk}",
        campaign=run.campaign,
        checkpoint_path=str(checkpoint.path),
        config=checkpoint.model,
        encoder=checkpoint.encoder_name,
        encoder_id=checkpoint.encoder_id,
        training_data=data,
        metrics=metrics,
    )


def model_version_register_checkpoint(
    *, checkpoint_path: str, name: str, training_data: dict[str, Any], metrics: dict[str, Any] | None = None
) -> ModelVersion:
    """Register a checkpoint trained outside a training run (the offline starter model), once per path."""
    from rm_service import worker

    existing = ModelVersion.objects.filter(checkpoint_path=checkpoint_path).first()
    if existing is not None:
        if metrics and not existing.metrics:  # registered before its panel was computed
            existing.metrics = metrics
            existing.save(update_fields=["metrics"])
        return existing
    try:
        info = worker.checkpoint_info(checkpoint_path)
    except FileNotFoundError as exc:
        raise RmServiceError(str(exc)) from exc
    return ModelVersion.objects.create(
        name=name,
        checkpoint_path=str(info.path),
        config=info.model,
        encoder=info.encoder_name,
        encoder_id=info.encoder_id,
        training_data=training_data,
        metrics=metrics or {},
    )


def model_version_activate(*, version: ModelVersion, predict: bool = True) -> ModelVersion:
    """Make ``version`` the one active model and queue its predictions for every active campaign."""
    from rm_service import worker

    if not worker.is_checkpoint(version.checkpoint_path):
        raise RmServiceError(f"checkpoint {version.checkpoint_path} does not exist")
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(is_active=True).exclude(pk=version.pk).update(is_active=False)
        ModelVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=now())
        version.refresh_from_db()
        if predict:
            for campaign in Campaign.objects.filter(status=Campaign.Status.ACTIVE):
                predictions_request(version=version, campaign=campaign)
    return version


def model_version_deactivate(*, version: ModelVersion) -> ModelVersion:
    ModelVersion.objects.filter(pk=version.pk).update(is_active=False)
    version.refresh_from_db()
    return version
