"""Training-run services, called directly (tasks are thin wrappers around these)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rm_service import selectors, services
from rm_service.models import JobStatus, Prediction, TrainingRun
from tests import factories
from tests.rm_service.conftest import FAST_CONFIG, empty_jsonl
from tests.rm_service.services.conftest import create_run


@pytest.mark.django_db
def test_it_rejects_an_empty_training_split(synthetic_data: Path, tmp_path: Path) -> None:
    with pytest.raises(services.RmServiceError, match="empty"):
        create_run(synthetic_data, train_jsonl=str(empty_jsonl(tmp_path)))
    assert not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_it_rejects_an_unknown_encoder(synthetic_data: Path) -> None:
    with pytest.raises(services.RmServiceError, match="unknown encoder 'clap'"):
        create_run(synthetic_data, encoder="clap")


@pytest.mark.django_db
def test_it_rejects_a_missing_checkpoint(synthetic_data: Path, tmp_path: Path) -> None:
    with pytest.raises(services.RmServiceError, match="does not exist"):
        create_run(synthetic_data, resume_from=str(tmp_path / "nope"))


@pytest.mark.django_db
def test_it_trains_registers_activates_and_predicts(synthetic_data: Path, bob) -> None:  # type: ignore[no-untyped-def]
    run = create_run(synthetic_data)
    assert services.training_run_execute(run_id=run.pk, worker="w1") == "succeeded"
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED and run.attempts == 1
    assert run.step == FAST_CONFIG["stage2_max_steps"] and run.loss is not None and run.history
    version = run.model_version
    assert version is not None and version.encoder == "builtin" and version.training_data["sha256"] == run.data_sha256
    test_metrics = version.metrics["test"]
    assert test_metrics["split"] == "test"
    for head in ("alignment", "musicality"):
        assert 0.0 <= test_metrics[head]["overall"]["accuracy"] <= 1.0
        assert any(key.startswith("modality:") for key in test_metrics[head])
    panel = test_metrics["panel"]  # the model beside untrained seeds and feature baselines
    assert [s["kind"] for s in panel["systems"]].count("untrained") == 3 and set(panel["verdict"]) <= {
        "alignment",
        "musicality",
    }

    campaign = factories.make_campaign()
    comparisons = [factories.make_comparison(campaign, modality=m) for m in ("T", "L")]
    services.model_version_activate(version=version, predict=False)
    assert services.predictions_compute(version=version, campaign=campaign) == 2
    assert Prediction.objects.filter(model_version=version).count() == 2
    prediction = Prediction.objects.get(comparison=comparisons[0])
    assert prediction.alignment_choice == ("a" if prediction.alignment_a >= prediction.alignment_b else "b")

    before = selectors.model_agreement(campaign=campaign, version=version)
    assert before["votes"] == 0
    factories.make_vote(comparisons[0], bob, alignment=prediction.alignment_choice, alignment_confidence=5)
    after = selectors.model_agreement(campaign=campaign, version=version)
    assert after["votes"] == 1
    assert after["questions"]["alignment"]["single_votes"] == {"accuracy": 1.0, "n": 1}
    assert after["questions"]["alignment"]["by_confidence"]["5"] == {"accuracy": 1.0, "n": 1}


@pytest.mark.django_db
def test_it_does_nothing_for_a_second_delivery(synthetic_data: Path) -> None:
    run = create_run(synthetic_data)
    assert services.training_run_claim(run_id=run.pk, worker="first") is not None
    assert services.training_run_execute(run_id=run.pk, worker="second") == "skipped"
    run.refresh_from_db()
    assert (run.status, run.worker, run.attempts) == (JobStatus.RUNNING, "first", 1)


@pytest.mark.django_db
def test_it_cancels_a_running_run_and_resumes_it_from_its_checkpoint(synthetic_data: Path) -> None:
    run = create_run(synthetic_data, config={**FAST_CONFIG, "checkpoint_every": 2})
    # The cancel arrives while the run is running (set here before the claim): the first progress report sees it.
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    assert services.training_run_execute(run_id=run.pk, worker="w") == "cancelled"
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.resumable and run.model_version is None
    stopped_at = run.step

    with pytest.raises(services.RmServiceError, match="only failed or cancelled"):
        services.training_run_resume(run=TrainingRun.objects.create(source="jsonl", output_dir=run.output_dir))
    run = services.training_run_resume(run=run, enqueue=False)
    assert run.status == JobStatus.QUEUED and run.resume_from.endswith(f"step-{stopped_at:06d}")
    assert services.training_run_execute(run_id=run.pk, worker="w") == "succeeded"
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED and run.attempts == 2
    resumed = [point["step"] for point in run.history if point["attempt"] == 2]
    assert resumed[0] == stopped_at + 1, "the resumed run restarted instead of continuing from its checkpoint"


@pytest.mark.django_db
def test_it_fails_the_run_when_the_broker_refuses_it(
    synthetic_data: Path,
    monkeypatch,  # type: ignore[no-untyped-def]
    django_capture_on_commit_callbacks,
) -> None:
    from django.conf import settings

    from tests.faults import dead_redis_url

    monkeypatch.setattr(settings, "REDIS_URL", dead_redis_url())
    monkeypatch.setattr(settings, "CELERY_BROKER_URL", settings.REDIS_URL)
    with pytest.raises(services.RmUnavailable, match="broker refused"):
        with django_capture_on_commit_callbacks(execute=True):
            create_run(synthetic_data, enqueue=True)
    run = TrainingRun.objects.get()
    assert run.status == JobStatus.FAILED and "task broker refused" in run.error
