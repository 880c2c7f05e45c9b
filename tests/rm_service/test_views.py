"""Staff pages: start a run from the UI (also from a campaign export), run detail, registry, dashboard."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.test import Client

from annotate.exports.models import Export
from annotate.exports.selectors import export_dir_for
from rm_service.models import ModelVersion, Prediction, TrainingRun
from tests import factories


@pytest.mark.django_db
def test_it_starts_a_training_run_from_the_campaign_page(
    staff_browser: Client,
    campaign,
    rm_worker_alive,  # type: ignore[no-untyped-def]
    synthetic_data: Path,
) -> None:
    page = staff_browser.get(f"/rm/campaigns/{campaign.pk}/")
    assert page.status_code == 200 and b"Start training" in page.content
    response = staff_browser.post(
        f"/rm/campaigns/{campaign.pk}/",
        {
            "train_jsonl": str(synthetic_data / "train.jsonl"),
            "dataset_root": str(synthetic_data),
            "encoder": "builtin",
            "preset": "tiny",
            "config": '{"stage2_max_steps": 5}',
            "name": "from the UI",
        },
    )
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/rm/runs/{run.pk}/"
    assert (run.campaign, run.name, run.status) == (campaign, "from the UI", "queued")
    assert run.config == {"stage2_max_steps": 5}
    detail = staff_browser.get(f"/rm/runs/{run.pk}/")
    assert detail.status_code == 200 and f"/api/v1/training-runs/{run.pk}".encode() in detail.content
    outside = staff_browser.post(f"/rm/campaigns/{campaign.pk}/", {"train_jsonl": "/nope.jsonl"}, follow=True)
    assert b"Training run not started: train /nope.jsonl is outside the data roots" in outside.content
    missing = synthetic_data / "nope.jsonl"
    bad = staff_browser.post(f"/rm/campaigns/{campaign.pk}/", {"train_jsonl": str(missing)}, follow=True)
    assert f"Training run not started: the training split {missing} does not exist".encode() in bad.content
    assert TrainingRun.objects.count() == 1


@pytest.mark.django_db
def test_it_builds_a_run_from_a_finished_campaign_export(
    staff_browser: Client,
    campaign,
    rm_worker_alive,  # type: ignore[no-untyped-def]
    synthetic_data: Path,
    settings,
    tmp_path: Path,
) -> None:
    settings.EXPORT_ROOT = tmp_path / "exports"
    export = Export.objects.create(campaign=campaign, status="succeeded", result_path="export-x")
    shutil.copytree(synthetic_data, export_dir_for(export))
    unfinished = Export.objects.create(campaign=campaign)
    staff_browser.post(f"/rm/campaigns/{campaign.pk}/", {"export_id": unfinished.pk, "preset": "tiny"})
    assert not TrainingRun.objects.exists()
    staff_browser.post(f"/rm/campaigns/{campaign.pk}/", {"export_id": export.pk, "preset": "tiny"})
    run = TrainingRun.objects.get()
    root = export_dir_for(export)
    assert (run.source, run.export_id, run.dataset_root) == ("export", export.pk, str(root))
    assert (run.train_jsonl, run.test_jsonl) == (str(root / "train.jsonl"), str(root / "test.jsonl"))


@pytest.mark.django_db
def test_it_shows_the_dashboard_and_the_registry_to_staff(staff_browser: Client, bob) -> None:  # type: ignore[no-untyped-def]
    campaign = factories.make_campaign()
    comparison = factories.make_comparison(campaign)
    version = ModelVersion.objects.create(name="dash", checkpoint_path="/x", is_active=True)
    Prediction.objects.create(
        comparison=comparison,
        model_version=version,
        alignment_a=1,
        alignment_b=0,
        musicality_a=0,
        musicality_b=1,
        alignment_prob_a=0.73,
        musicality_prob_a=0.27,
        alignment_choice="a",
        musicality_choice="b",
    )
    factories.make_vote(comparison, bob, alignment="b", musicality="b")
    page = staff_browser.get(f"/rm/campaigns/{campaign.pk}/agreement/")
    assert page.status_code == 200
    assert page.context["agreement"]["questions"]["musicality"]["single_votes"] == {"accuracy": 1.0, "n": 1}
    assert f"/comparisons/{comparison.pk}/adjudicate/".encode() in page.content  # disagreement queue
    registry = staff_browser.get("/rm/")
    assert registry.status_code == 200 and b"v%d dash" % version.pk in registry.content
    assert b"Model vs human" in staff_browser.get("/").content


@pytest.mark.django_db
def test_it_flags_a_version_that_does_not_beat_its_baselines_in_the_registry(staff_browser: Client) -> None:
    def panel(beats: bool) -> dict[str, object]:
        verdict = {"margin": 0.1 if beats else -0.05, "beats": beats}
        return {
            "beats_baselines": beats,
            "verdict": {"alignment": verdict, "musicality": verdict},
            "gain_probe": {"gain_db": 6.0, "alignment": 0.001, "musicality": 0.002},
        }

    weak = ModelVersion.objects.create(name="weak", checkpoint_path="/x", metrics={"test": {"panel": panel(False)}})
    good = ModelVersion.objects.create(name="good", checkpoint_path="/y", metrics={"test": {"panel": panel(True)}})
    page = staff_browser.get("/rm/")
    assert page.status_code == 200
    html = page.content.decode()
    weak_row = html[html.index(f"v{weak.pk} weak") :].split("</tr>")[0]
    good_row = html[html.index(f"v{good.pk} good") :].split("</tr>")[0]
    assert "does not beat its baselines" in weak_row and "margin align -0.050" in weak_row
    assert "beats untrained and feature baselines" in good_row and "does not beat" not in good_row
