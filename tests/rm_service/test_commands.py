"""manage.py rm_train: the same service as the UI and the API."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from rm_service.models import TrainingRun


@pytest.mark.django_db
def test_it_queues_a_training_run_from_jsonl_files(synthetic_data: Path, campaign) -> None:  # type: ignore[no-untyped-def]
    out = StringIO()
    call_command(
        "rm_train",
        "--train",
        str(synthetic_data / "train.jsonl"),
        "--dataset-root",
        str(synthetic_data),
        "--campaign",
        str(campaign.pk),
        "--config",
        json.dumps({"stage2_max_steps": 3}),
        stdout=out,
    )
    run = TrainingRun.objects.get()
    assert f"training run {run.pk} queued" in out.getvalue()
    assert (run.status, run.campaign, run.config, run.source) == ("queued", campaign, {"stage2_max_steps": 3}, "jsonl")


@pytest.mark.django_db
def test_it_reports_a_bad_configuration(synthetic_data: Path) -> None:
    with pytest.raises(CommandError, match="unknown preset 'huge'"):
        call_command("rm_train", "--train", str(synthetic_data / "train.jsonl"), "--preset", "huge")
    assert not TrainingRun.objects.exists()
