"""Model vs human, honestly: training/validation votes and flagged annotators are left out by default, and said so."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from annotate.labeling.services import adjudication_set
from rm_service import selectors
from rm_service.models import ModelVersion, TrainingRun
from tests import factories
from tests.exports.helpers import run_export
from tests.rm_service.test_selectors import _predict


@pytest.fixture(autouse=True)
def _export_root(settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings.EXPORT_ROOT = str(tmp_path / "exports")


def _varied(i: int) -> dict[str, Any]:
    # Sides shown and confidences vary, so quality control flags nobody (no straight-lining).
    return {"swapped": bool(i % 2), "alignment_confidence": 1 + i % 5, "musicality_confidence": 1 + (i + 2) % 5}


def _trained_on_first_votes(alice, bob, charlie):  # type: ignore[no-untyped-def]
    """12 comparisons with bob's votes exported and trained on; charlie votes afterwards (held out).

    The model always says "a"; bob always voted "a" (in-sample: perfect), charlie always "b".
    """
    campaign = factories.make_campaign()
    comparisons = [factories.make_comparison(campaign, modality="TLAC"[i % 4]) for i in range(12)]
    for i, comparison in enumerate(comparisons):
        factories.make_vote(comparison, bob, alignment="a", musicality="a", **_varied(i))
    _, root = run_export(campaign, min_votes_per_comparison=1)
    version = ModelVersion.objects.create(name="m", checkpoint_path="/x")
    TrainingRun.objects.create(
        campaign=campaign,
        source=TrainingRun.Source.EXPORT,
        train_jsonl=str(root / "train.jsonl"),
        validation_jsonl=str(root / "validation.jsonl"),
        test_jsonl=str(root / "test.jsonl"),
        dataset_root=str(root),
        model_version=version,
    )
    for i, comparison in enumerate(comparisons):
        _predict(comparison, version, align_a=0.9, music_a=0.9)
        factories.make_vote(comparison, charlie, alignment="b", musicality="b", **_varied(i))
    return campaign, comparisons, version, root


def _test_split_ids(root) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for line in (root / "test.jsonl").read_text().splitlines() if line.strip())


@pytest.mark.django_db
def test_it_leaves_out_votes_in_the_training_and_validation_files(alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign, _, version, root = _trained_on_first_votes(alice, bob, charlie)
    in_test = _test_split_ids(root)  # bob's votes in test.jsonl were never trained on: they stay

    honest = selectors.model_agreement(campaign=campaign, version=version)
    in_sample = selectors.model_agreement(campaign=campaign, version=version, held_out_only=False)

    assert honest["excluded"]["training"] == 12 - in_test
    assert honest["votes"] == 12 + in_test
    assert honest["filters"] == {"held_out_only": True, "exclude_flagged": True}
    assert honest["questions"]["alignment"]["single_votes"]["accuracy"] == pytest.approx(in_test / (12 + in_test))
    assert in_sample["votes"] == 24 and in_sample["excluded"]["training"] == 0
    assert in_sample["questions"]["alignment"]["single_votes"]["accuracy"] == 0.5
    assert "train and validation files" in honest["excluded"]["training_rule"]


@pytest.mark.django_db
def test_it_falls_back_to_dates_when_the_training_files_are_gone(alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign, _, version, root = _trained_on_first_votes(alice, bob, charlie)
    (root / "train.jsonl").unlink()

    result = selectors.model_agreement(campaign=campaign, version=version)

    assert result["excluded"]["training"] == 12  # every vote cast before the run was created
    assert result["votes"] == 12 and "before training started" in result["excluded"]["training_rule"]


@pytest.mark.django_db
def test_it_leaves_out_flagged_annotators_unless_asked(alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign, comparisons, version, _ = _trained_on_first_votes(alice, bob, charlie)
    speedy = factories.make_annotator("speedy")
    for i, comparison in enumerate(comparisons):  # 12 votes in 2 s each: flagged too_fast
        factories.make_vote(comparison, speedy, alignment="a", musicality="a", time_on_task_s=2.0, **_varied(i))

    honest = selectors.model_agreement(campaign=campaign, version=version)
    everyone = selectors.model_agreement(campaign=campaign, version=version, exclude_flagged=False)

    assert (honest["excluded"]["flagged"], honest["excluded"]["flagged_annotators"]) == (12, 1)
    assert everyone["votes"] == honest["votes"] + 12 and everyone["excluded"]["flagged"] == 0


@pytest.mark.django_db
def test_an_adjudicated_label_replaces_the_majority(alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign, comparisons, version, _ = _trained_on_first_votes(alice, bob, charlie)
    before = selectors.model_agreement(campaign=campaign, version=version, held_out_only=False)
    adjudication_set(comparison=comparisons[0], user=alice, alignment="a", musicality="b")

    after = selectors.model_agreement(campaign=campaign, version=version, held_out_only=False)

    # 1:1 ties were left out of majority accuracy; the adjudicated comparison now counts (model "a" = label "a").
    assert before["questions"]["alignment"]["majority"]["n"] == 0
    assert after["questions"]["alignment"]["majority"] == {"accuracy": 1.0, "n": 1}
    assert after["questions"]["musicality"]["majority"] == {"accuracy": 0.0, "n": 1}
    assert after["adjudicated"] == 1


@pytest.mark.django_db
def test_the_page_and_api_show_filters_and_exclusions(client: Client, alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign, _, version, root = _trained_on_first_votes(alice, bob, charlie)
    client.force_login(alice)

    html = client.get(f"/rm/campaigns/{campaign.pk}/agreement/?model_version={version.pk}").content.decode()
    api = client.get(
        f"/api/v1/campaigns/{campaign.pk}/model-agreement?model_version={version.pk}&held_out_only=false"
    ).json()

    assert 'name="votes"' in html and 'name="flagged"' in html
    assert f"<strong>{12 - _test_split_ids(root)}</strong> votes in the model" in html
    assert api["filters"]["held_out_only"] is False and api["votes"] == 24
    client.force_login(charlie)
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/model-agreement?model_version={version.pk}").status_code == 403
