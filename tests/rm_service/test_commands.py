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


@pytest.mark.django_db
def test_it_pretrains_on_the_platform_clips_and_registers_a_version(tmp_path: Path) -> None:
    from rm_service.core.synth import INSTRUMENTS, MusicSpec, render, write_wav
    from rm_service.models import ModelVersion

    clips = tmp_path / "clips"
    clips.mkdir()
    for i in range(3):
        spec = MusicSpec(tempo_bpm=80 + 30 * i, mode="minor", instrument=INSTRUMENTS[i], register=0)
        write_wav(clips / f"c{i}.wav", render(spec, duration_s=9.0, sr=24000, seed=i), 24000)
    out = StringIO()
    call_command("rm_pretrain", "--audio-dir", str(clips), "--pairs", "3", "--steps", "2", stdout=out)
    version = ModelVersion.objects.get()
    assert out.getvalue().strip().splitlines()[-1] == version.checkpoint_path
    assert not version.is_active and version.training_data["pretrain"]["rows"]["train"]["alignment"] >= 1
    with pytest.raises(CommandError, match="not found"):
        call_command("rm_pretrain", "--audio-dir", str(tmp_path / "none"), stdout=StringIO())


@pytest.mark.django_db
def test_demo_model_needs_the_demo_campaign() -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="run `manage.py demo` first"):
        call_command("demo_model")
