"""Stage-1 pretraining as a staff action: the campaign page queues a run on the campaign's own clips, the
worker builds pairs, trains, evaluates with the panel and registers a version whose page shows the panel."""

from __future__ import annotations

import pytest
from django.test import Client

from rm_service import services
from rm_service.models import ModelVersion, TrainingRun
from tests import factories


@pytest.mark.django_db
def test_it_queues_stage_one_on_the_campaign_clips_from_the_campaign_page(
    staff_browser: Client,
    campaign,
    rm_worker_alive,  # type: ignore[no-untyped-def]
) -> None:
    comparisons = [factories.make_comparison(campaign, modality="A", seconds=4.0) for _ in range(2)]
    page = staff_browser.get(f"/rm/campaigns/{campaign.pk}/")
    assert b"Start stage-1 pretraining" in page.content
    response = staff_browser.post(f"/rm/campaigns/{campaign.pk}/pretrain/", {"pairs": "20", "steps": "10"})
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/rm/runs/{run.pk}/"
    assert (run.source, run.status, run.campaign, run.preset) == ("pretrain", "queued", campaign, "starter")
    options = run.config["pretrain"]
    assert (options["pairs"], options["steps"], len(options["clips"])) == (20, 10, 6)  # a, b and the reference
    clips = [c.clip_a for c in comparisons] + [c.instruction.reference_clip for c in comparisons]
    assert all(services.clip_path(clip) in options["clips"] for clip in clips if clip is not None)
    assert run.dataset_root == f"{run.output_dir}/pairs"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"pairs": "lots"}, b"pairs must be a whole number"),
        ({"pairs": "0"}, b"pairs must be between 1 and 5000"),
        ({"steps": "999999"}, b"steps must be between 1 and 20000"),
    ],
)
def test_it_refuses_bad_pretraining_settings_with_a_message(
    staff_browser: Client,
    campaign,
    rm_worker_alive,
    form: dict[str, str],
    message: bytes,  # type: ignore[no-untyped-def]
) -> None:
    factories.make_comparison(campaign, seconds=4.0)
    page = staff_browser.post(f"/rm/campaigns/{campaign.pk}/pretrain/", form, follow=True)
    assert page.status_code == 200 and message in page.content
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_campaign_without_two_clips_and_keeps_annotators_out(
    staff_browser: Client,
    campaign,
    bob,
    rm_worker_alive,  # type: ignore[no-untyped-def]
) -> None:
    page = staff_browser.post(f"/rm/campaigns/{campaign.pk}/pretrain/", {}, follow=True)
    assert b"stage 1 needs at least two" in page.content
    annotator = Client()
    annotator.force_login(bob)
    factories.make_comparison(campaign, seconds=4.0)
    assert annotator.post(f"/rm/campaigns/{campaign.pk}/pretrain/", {}).status_code == 403
    assert staff_browser.get(f"/rm/campaigns/{campaign.pk}/pretrain/").status_code == 405
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_it_pretrains_registers_the_version_and_shows_its_panel(staff_browser: Client, campaign) -> None:  # type: ignore[no-untyped-def]
    for _ in range(7):
        factories.make_comparison(campaign, modality="A", seconds=6.0)
    run = services.training_run_create_pretrain(user=None, campaign=campaign, pairs=12, steps=6, enqueue=False)
    assert services.training_run_execute(run_id=run.pk, worker="w") == "succeeded"
    run.refresh_from_db()
    version = ModelVersion.objects.get(training_run=run)
    assert version.training_data["pretrain"]["clips"] == 21
    panel = version.metrics["test"]["panel"]
    kinds = [s["kind"] for s in panel["systems"]]
    assert kinds.count("model") == 1 and kinds.count("untrained") == 3 and "baseline" in kinds
    assert set(panel["gain_probe"]) >= {"alignment", "musicality"}
    page = staff_browser.get(f"/rm/versions/{version.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Evaluation panel" in html and "untrained (seed 2)" in html and "mean log-mel cosine" in html
    flag = "does not beat its baselines" in html
    assert flag == (not panel["beats_baselines"])
    assert f'href="/rm/versions/{version.pk}/"' in staff_browser.get("/rm/").content.decode()
