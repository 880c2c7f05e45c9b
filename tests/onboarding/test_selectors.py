"""Withdrawal changes what counts: agreement numbers, the next export (rows and manifest) and model-vs-human."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from annotate.catalog.models import Campaign, Comparison
from annotate.labeling.models import Vote
from annotate.onboarding.selectors import counted_votes, withdrawn_votes_summary
from annotate.onboarding.services import withdrawal_create, withdrawal_restore
from rm_service import selectors as rm_selectors
from rm_service.models import ModelVersion, Prediction
from tests import factories
from tests.exports.helpers import read_jsonl, run_export


@pytest.fixture(autouse=True)
def _export_root(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.EXPORT_ROOT = tmp_path / "exports"


def _voted_campaign(bob: User, charlie: User) -> tuple[Campaign, list[Comparison], User]:
    """Six comparisons; bob and dave always agree, charlie always disagrees with them."""
    dave = factories.make_annotator("dave")
    campaign = factories.make_campaign(name="Withdrawal campaign")
    comparisons = [factories.make_comparison(campaign, modality="TLAC"[i % 4]) for i in range(6)]
    for i, comparison in enumerate(comparisons):
        side, other = ("a", "b") if i % 2 else ("b", "a")
        factories.make_vote(comparison, bob, alignment=side, musicality=side, alignment_confidence=1 + i % 5)
        factories.make_vote(comparison, dave, alignment=side, musicality=side, musicality_confidence=1 + i % 4)
        factories.make_vote(comparison, charlie, alignment=other, musicality=other, swapped=bool(i % 3))
    return campaign, comparisons, dave


@pytest.mark.django_db
def test_it_leaves_withdrawn_votes_out_of_counted_votes_until_restored(alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign, _, _ = _voted_campaign(bob, charlie)
    other = factories.make_campaign(name="Other campaign")
    factories.make_vote(factories.make_comparison(other), charlie)
    withdrawal = withdrawal_create(annotator=charlie, campaign=campaign, reason="changed my mind")
    counted = counted_votes(Vote.objects.all())
    assert counted.count() == 13  # 18 + 1 votes, charlie's 6 in this campaign left out
    assert counted.filter(annotator=charlie).count() == 1  # the withdrawal is per campaign
    assert Vote.objects.filter(annotator=charlie).count() == 7  # kept, not deleted
    summary = withdrawn_votes_summary(campaign_id=campaign.pk)
    assert (summary["votes"], summary["annotators"]) == (6, 1) and "withdrew" in summary["reason"]
    withdrawal_restore(withdrawal_id=withdrawal.pk, staff=alice)
    assert counted_votes(Vote.objects.all()).count() == 19
    assert withdrawn_votes_summary(campaign_id=campaign.pk)["votes"] == 0


@pytest.mark.django_db
def test_it_changes_the_agreement_numbers(alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign, _, _ = _voted_campaign(bob, charlie)
    client = APIClient()
    client.force_authenticate(alice)
    url = f"/api/v1/campaigns/{campaign.pk}/agreement"
    before = client.get(url)
    assert before.status_code == 200, before.content
    summary = before.json()["summary"]
    withdrawal_create(annotator=charlie, campaign=campaign)
    after = client.get(url).json()["summary"]
    assert (summary["vote_count"], after["vote_count"]) == (18, 12)
    assert summary["annotator_count"] == 3 and after["annotator_count"] == 2
    # With charlie: of 3 pairs per comparison only bob-dave agrees; without him every pair agrees.
    assert summary["alignment"]["agreement_rate"] == pytest.approx(1 / 3)
    assert after["alignment"]["agreement_rate"] == pytest.approx(1.0)
    assert summary["alignment"]["alpha"]["value"] < 0 < after["alignment"]["alpha"]["value"]


@pytest.mark.django_db
def test_it_changes_the_next_export_and_says_so_in_its_manifest(alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign, _, _ = _voted_campaign(bob, charlie)
    _, before_dir = run_export(campaign, test_size=0, validation_fraction=0, archive="none")
    withdrawal_create(annotator=charlie, campaign=campaign)
    _, after_dir = run_export(campaign, test_size=0, validation_fraction=0, archive="none")
    assert len(read_jsonl(before_dir / "votes.jsonl")) == 18
    after_rows = read_jsonl(after_dir / "votes.jsonl")
    charlie_id = charlie.annotator.pseudonym
    assert len(after_rows) == 12 and charlie_id not in {row["user id"] for row in after_rows}
    manifest = json.loads((after_dir / "manifest.json").read_text())
    assert manifest["excluded"]["withdrawn"]["votes"] == 6
    assert manifest["excluded"]["withdrawn"]["annotators"] == 1
    assert json.loads((before_dir / "manifest.json").read_text())["excluded"]["withdrawn"]["votes"] == 0
    assert manifest["agreement"]["vote_count"] == 12
    card = (after_dir / "README.md").read_text()
    assert "Excluded: 6 votes by 1 annotator because the annotator withdrew" in card


@pytest.mark.django_db
def test_it_changes_model_vs_human(bob, charlie) -> None:  # type: ignore[no-untyped-def]
    campaign, comparisons, _ = _voted_campaign(bob, charlie)
    version = ModelVersion.objects.create(name="m", checkpoint_path="/x")
    for comparison in comparisons:
        Prediction.objects.create(
            comparison=comparison,
            model_version=version,
            alignment_a=0,
            alignment_b=0,
            musicality_a=0,
            musicality_b=0,
            alignment_prob_a=0.9,
            musicality_prob_a=0.9,
            alignment_choice="a",
            musicality_choice="a",
        )
    assert rm_selectors.model_agreement(campaign=campaign, version=version)["votes"] == 18
    withdrawal_create(annotator=charlie, campaign=campaign)
    result = rm_selectors.model_agreement(campaign=campaign, version=version)
    assert result["votes"] == 12
    # Bob and dave pick "a" on odd comparisons only: the model (always "a") matches half of their votes.
    assert result["questions"]["alignment"]["single_votes"] == {"accuracy": 0.5, "n": 12}
