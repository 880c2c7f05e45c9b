"""Model-vs-human agreement numbers, checked against hand-computed values."""

from __future__ import annotations

import pytest

from annotate.catalog.models import Comparison
from rm_service import selectors
from rm_service.models import ModelVersion, Prediction
from tests import factories


def _predict(comparison: Comparison, version: ModelVersion, *, align_a: float, music_a: float) -> Prediction:
    return Prediction.objects.create(
        comparison=comparison,
        model_version=version,
        alignment_a=0,
        alignment_b=0,
        musicality_a=0,
        musicality_b=0,
        alignment_prob_a=align_a,
        musicality_prob_a=music_a,
        alignment_choice="a" if align_a >= 0.5 else "b",
        musicality_choice="a" if music_a >= 0.5 else "b",
    )


@pytest.mark.django_db
def test_it_computes_accuracy_majority_calibration_and_the_disagreement_queue(bob, charlie) -> None:  # type: ignore[no-untyped-def]
    dave = factories.make_annotator("dave")
    campaign = factories.make_campaign()
    version = ModelVersion.objects.create(name="m", checkpoint_path="/x")
    c1 = factories.make_comparison(campaign, modality="T")
    c2 = factories.make_comparison(campaign, modality="L")
    check = factories.make_comparison(campaign, is_attention_check=True)
    _predict(c1, version, align_a=0.9, music_a=0.2)
    _predict(c2, version, align_a=0.3, music_a=0.6)
    _predict(check, version, align_a=0.9, music_a=0.9)
    factories.make_vote(c1, bob, alignment="a", musicality="b", alignment_confidence=5)
    factories.make_vote(c1, charlie, alignment="b", musicality="b", alignment_confidence=2)
    factories.make_vote(c1, dave, alignment="b", musicality="b", alignment_confidence=2)
    factories.make_vote(c2, bob, alignment="b", musicality="b", alignment_confidence=5)
    factories.make_vote(check, bob, alignment="b", musicality="b")

    result = selectors.model_agreement(campaign=campaign, version=version)

    assert (result["predictions"], result["votes"]) == (2, 4)
    alignment = result["questions"]["alignment"]
    assert alignment["single_votes"] == {"accuracy": 0.5, "n": 4}
    assert alignment["majority"] == {"accuracy": 0.5, "n": 2}
    assert alignment["by_confidence"] == {"2": {"accuracy": 0.0, "n": 2}, "5": {"accuracy": 1.0, "n": 2}}
    assert alignment["by_modality"] == {"L": {"accuracy": 1.0, "n": 1}, "T": {"accuracy": 1 / 3, "n": 3}}
    assert alignment["by_vocal"] == {"instrumental": {"accuracy": 0.5, "n": 4}}
    # Reliability: c1 P(A)=0.9 with 1 of 3 votes for A; c2 P(A)=0.3 with 0 of 1. ECE = 3/4*|0.9-1/3| + 1/4*0.3.
    assert alignment["calibration"]["ece"] == pytest.approx(0.75 * (0.9 - 1 / 3) + 0.25 * 0.3)
    assert [(b["n"], round(b["observed"], 3)) for b in alignment["calibration"]["bins"]] == [(1, 0.0), (3, 0.333)]
    assert [p["n"] for p in alignment["over_time"]] == [1, 2, 3, 4]
    assert alignment["over_time"][-1]["accuracy"] == 0.5
    musicality = result["questions"]["musicality"]
    assert musicality["single_votes"] == {"accuracy": 0.75, "n": 4}
    assert result["disagreements"] == [
        {
            "comparison": c1.pk,
            "question": "alignment",
            "model_choice": "a",
            "probability": 0.9,
            "human_majority": "b",
            "votes_a": 1,
            "votes_b": 2,
            "url": f"/comparisons/{c1.pk}/adjudicate/",
        }
    ]


@pytest.mark.django_db
def test_it_only_lets_staff_and_scoring_accounts_use_the_reward_model(alice, bob) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Permission

    assert selectors.can_use_reward_model(alice)
    assert not selectors.can_use_reward_model(bob)
    pipeline = factories.make_annotator("pipeline")
    pipeline.user_permissions.add(Permission.objects.get(codename="add_scoringjob"))
    assert selectors.can_use_reward_model(type(pipeline).objects.get(pk=pipeline.pk))
