from __future__ import annotations

from annotate.catalog.models import Campaign
from annotate.catalog.services import campaign_import
from tests.exports.conftest import Dataset
from tests.exports.helpers import run_export


def comparison_signatures(campaign: Campaign) -> set[tuple[object, ...]]:
    return set(
        campaign.comparisons.values_list(
            "instruction__prompt_id",
            "instruction__text",
            "instruction__lyrics",
            "instruction__modality",
            "instruction__reference_clip__sha256",
            "clip_a__sha256",
            "clip_b__sha256",
            "clip_a__system",
            "clip_b__system",
            "gold_alignment",
            "gold_musicality",
        )
    )


def test_it_reimports_an_exported_votes_jsonl_into_the_same_comparisons(dataset: Dataset) -> None:
    gold = dataset.comparisons[5]
    gold.gold_musicality = "b"
    gold.save()
    _, root = run_export(dataset.campaign, exclude_gold=False)
    report = campaign_import(manifest_path=root / "votes.jsonl", audio_root=root, campaign_name="Round trip")
    # One row per vote, three votes per comparison: each comparison is created once.
    assert report.rows == 48 and report.comparisons_created == 16 and report.comparisons_existing == 32
    original, copy = comparison_signatures(dataset.campaign), comparison_signatures(report.campaign)
    assert len(original) == 16 and copy == original
    assert report.campaign.comparisons.get(clip_a__sha256=gold.clip_a.sha256).gold_musicality == "b"


def test_it_reimports_a_single_split_file(dataset: Dataset) -> None:
    _, root = run_export(dataset.campaign, test_size=8)
    report = campaign_import(manifest_path=root / "test.jsonl", audio_root=root, campaign_name="Test split only")
    assert report.comparisons_created == 8
    assert comparison_signatures(report.campaign) <= comparison_signatures(dataset.campaign)
