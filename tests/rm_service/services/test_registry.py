"""The model registry: one active version."""

from __future__ import annotations

from pathlib import Path

import pytest

from rm_service import services
from rm_service.models import ModelVersion


@pytest.mark.django_db
def test_it_keeps_one_active_version(tiny_checkpoint: Path) -> None:
    first = ModelVersion.objects.create(name="one", checkpoint_path=str(tiny_checkpoint))
    second = ModelVersion.objects.create(name="two", checkpoint_path=str(tiny_checkpoint))
    services.model_version_activate(version=first, predict=False)
    services.model_version_activate(version=second, predict=False)
    assert list(ModelVersion.objects.filter(is_active=True)) == [second]
    with pytest.raises(services.RmServiceError, match="does not exist"):
        services.model_version_activate(version=ModelVersion.objects.create(name="x", checkpoint_path="/nope"))


@pytest.mark.django_db
def test_it_registers_a_checkpoint_trained_outside_a_run_once(tiny_checkpoint: Path) -> None:
    first = services.model_version_register_checkpoint(
        checkpoint_path=str(tiny_checkpoint), name="starter", training_data={"starter": {"tracks": 0}}
    )
    again = services.model_version_register_checkpoint(
        checkpoint_path=str(tiny_checkpoint), name="starter", training_data={}
    )
    assert again.pk == first.pk and ModelVersion.objects.count() == 1
    assert first.encoder == "builtin" and first.config["d_model"] > 0 and not first.is_active
    with pytest.raises(services.RmServiceError, match="not found"):
        services.model_version_register_checkpoint(checkpoint_path="/nope", name="x", training_data={})
