from __future__ import annotations

from typing import Any

from annotate.catalog.models import Campaign
from annotate.catalog.services import campaign_import
from annotate.labeling.models import Choice, ExternalAnnotator, Vote
from tests import factories
from tests.exports.conftest import Dataset
from tests.exports.helpers import read_jsonl, run_export


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
            "system_a",
            "system_b",
            "gold_alignment",
            "gold_musicality",
        )
    )


def vote_signatures(campaign: Campaign) -> list[tuple[object, ...]]:
    return sorted(
        Vote.objects.filter(comparison__campaign=campaign).values_list(
            "comparison__clip_a__sha256",
            "comparison__clip_b__sha256",
            "alignment_choice",
            "alignment_confidence",
            "musicality_choice",
            "musicality_confidence",
            "feedback",
            "presented_swapped",
            "listened_a_s",
            "listened_b_s",
            "time_on_task_s",
        )
    )


def without_ids(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows minus the annotator pseudonym (an id) and the vote time (a timestamp); plus the pseudonyms."""
    kept = [{k: v for k, v in row.items() if k not in ("user id", "vote_time")} for row in rows]
    return kept, [row["user id"] for row in rows]


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


def test_it_round_trips_comparisons_and_votes_through_export_and_import(dataset: Dataset) -> None:
    # Ties too: "no preference" answers survive the trip as ties.
    factories.make_vote(dataset.comparisons[0], factories.make_annotator(), alignment="t", musicality="b")
    factories.make_vote(dataset.comparisons[1], factories.make_annotator(), alignment="a", musicality="t")
    _, root = run_export(dataset.campaign, exclude_gold=False, test_size=4)
    report = campaign_import(manifest_path=root / "votes.jsonl", audio_root=root, campaign_name="Round trip")
    assert (report.comparisons_created, report.votes_created, report.ties) == (16, 50, 2)
    assert report.labels_ignored == {} and report.external_annotators_created == 5
    assert vote_signatures(report.campaign) == vote_signatures(dataset.campaign)
    assert Vote.objects.filter(comparison__campaign=report.campaign, alignment_choice=Choice.TIE).count() == 1

    _, again = run_export(report.campaign, exclude_gold=False, test_size=4)
    first, first_ids = without_ids(read_jsonl(root / "votes.jsonl"))
    second, second_ids = without_ids(read_jsonl(again / "votes.jsonl"))
    differences = {k for a, b in zip(first, second, strict=True) for k in a if a[k] != b.get(k)}
    assert differences == set() and second == first
    # The same annotator keeps one (new) pseudonym: ids map one to one.
    mapping = dict(zip(first_ids, second_ids, strict=True))
    assert len(mapping) == len(set(mapping.values())) == 5
    assert all(mapping[a] == b for a, b in zip(first_ids, second_ids, strict=True))
    vote_times = [row["vote_time"] for row in read_jsonl(root / "votes.jsonl")]
    assert [row["vote_time"] for row in read_jsonl(again / "votes.jsonl")] == vote_times


def test_it_reimports_votes_once(dataset: Dataset) -> None:
    _, root = run_export(dataset.campaign, exclude_gold=False)
    campaign_import(manifest_path=root / "votes.jsonl", audio_root=root, campaign_name="Round trip")
    again = campaign_import(manifest_path=root / "votes.jsonl", audio_root=root, campaign_name="Round trip")
    assert (again.votes_created, again.votes_existing, again.external_annotators_created) == (0, 48, 0)
    assert ExternalAnnotator.objects.count() == 3


def test_it_reimports_a_single_split_file(dataset: Dataset) -> None:
    _, root = run_export(dataset.campaign, test_size=8)
    report = campaign_import(manifest_path=root / "test.jsonl", audio_root=root, campaign_name="Test split only")
    assert report.comparisons_created == 8
    assert comparison_signatures(report.campaign) <= comparison_signatures(dataset.campaign)
    assert set(report.campaign.comparisons.values_list("source_split", flat=True)) == {"test"}
