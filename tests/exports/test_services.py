from __future__ import annotations

import datetime as dt
import hashlib
import json
import tarfile
import threading
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.utils import timezone

from annotate.agreement.selectors import agreement_summary
from annotate.exports.models import Export
from annotate.exports.params import ExportParameterError, ExportParameters
from annotate.exports.rows import MODALITY_WORDS
from annotate.exports.selectors import export_dir_for, export_votes
from annotate.exports.services import export_create, export_run
from annotate.labeling.models import AnnotatorProfile, Vote
from tests import factories
from tests.exports.conftest import Dataset, build_dataset
from tests.exports.helpers import read_jsonl, run_export

REQUIRED_TYPES: dict[str, type | tuple[type, ...]] = {
    "audio-path": str,
    "audio2": str,
    "ref-audio-path": str,
    "prompt": str,
    "lyrics": str,
    "prompt id": str,
    "model_a": str,
    "model_b": str,
    "user id": str,
    "preference-alignment": str,
    "preference-musicality": str,
    "confidence_preference-alignment": int,
    "confidence_preference-musicality": int,
    "source": str,
    "split": str,
    "modality": str,
}
EXTRAS = ("feedback", "listened_seconds_a", "listened_seconds_b", "presented_order", "vote_time", "vocal")


def test_it_writes_every_cmi_rewardbench_field_with_the_right_types(dataset: Dataset) -> None:
    _, root = run_export(dataset.campaign)
    rows = read_jsonl(root / "votes.jsonl")
    assert len(rows) == Vote.objects.count() == 8 * 2 * 3
    for row in rows:
        for name, kind in REQUIRED_TYPES.items():
            assert isinstance(row[name], kind), (name, row[name])
        assert all(name in row for name in EXTRAS)
        assert row["preference-alignment"] in ("model_a", "model_b")
        assert row["preference-musicality"] in ("model_a", "model_b")
        assert 1 <= row["confidence_preference-alignment"] <= 5
        assert row["source"] == "cmi-arena-annotation"
        assert row["split"] in ("train", "validation", "test")
        assert row["modality"] == MODALITY_WORDS[row["modality_code"]]
        assert (row["ref-audio-path"] != "") == (row["modality"] in ("text+ref", "text+lyrics+ref"))
        assert (root / row["audio-path"]).is_file() and (root / row["audio2"]).is_file()
        assert not Path(row["audio-path"]).is_absolute() and row["audio-path"].startswith("audio/")


def test_it_writes_a_pseudonym_never_a_username(dataset: Dataset) -> None:
    _, root = run_export(dataset.campaign)
    user_ids = {row["user id"] for row in read_jsonl(root / "votes.jsonl")}
    usernames = {u.username for u in dataset.annotators}
    assert user_ids.isdisjoint(usernames)
    assert user_ids == set(
        AnnotatorProfile.objects.filter(user__in=dataset.annotators).values_list("pseudonym", flat=True)
    )
    _, again = run_export(dataset.campaign)
    assert {row["user id"] for row in read_jsonl(again / "votes.jsonl")} == user_ids


def test_it_never_puts_a_prompt_in_two_splits(db: None) -> None:
    campaign = factories.make_campaign(name="shared prompts")
    annotator = factories.make_annotator()
    # 12 prompts with three comparisons each: a per-comparison split would scatter them.
    for n in range(12):
        instruction = factories.make_instruction(modality="TLAC"[n % 4], prompt_id=f"prompt-{n}")
        for _ in range(3):
            comparison = Comparison_of(campaign, instruction)
            factories.make_vote(comparison, annotator, alignment="ab"[n % 2], alignment_confidence=1 + n % 5)
    _, root = run_export(campaign, test_fraction=0.25, validation_fraction=0.25, balance_test=False, seed=3)
    splits_of: dict[str, set[str]] = {}
    for row in read_jsonl(root / "votes.jsonl"):
        splits_of.setdefault(row["prompt id"], set()).add(row["split"])
    assert len(splits_of) == 12
    assert all(len(splits) == 1 for splits in splits_of.values())
    assert {next(iter(s)) for s in splits_of.values()} == {"train", "validation", "test"}


def Comparison_of(campaign, instruction):  # type: ignore[no-untyped-def]
    from annotate.catalog.models import Comparison

    return Comparison.objects.create(
        campaign=campaign,
        instruction=instruction,
        clip_a=factories.make_clip(seconds=0.5),
        clip_b=factories.make_clip(seconds=0.5),
    )


def test_it_keeps_instructions_sharing_a_reference_clip_in_one_split_when_asked(db: None) -> None:
    from annotate.catalog.models import Instruction

    campaign = factories.make_campaign(name="shared references")
    annotator = factories.make_annotator()
    for group in range(6):
        reference = factories.make_clip(seconds=0.5)
        for n in range(3):
            instruction = Instruction.objects.create(
                prompt_id=f"g{group}-p{n}",
                text=f"prompt {group}/{n}",
                reference_clip=reference,
                content_hash=hashlib.sha256(f"{group}/{n}".encode()).hexdigest(),
            )
            factories.make_vote(Comparison_of(campaign, instruction), annotator)
    _, root = run_export(
        campaign, test_fraction=0.3, validation_fraction=0.3, balance_test=False, group_by_reference=True, seed=1
    )
    splits_of: dict[str, set[str]] = {}
    for row in read_jsonl(root / "votes.jsonl"):
        splits_of.setdefault(row["ref-audio-path"], set()).add(row["split"])
    assert len(splits_of) == 6 and all(len(s) == 1 for s in splits_of.values())
    assert len({next(iter(s)) for s in splits_of.values()}) == 3


def test_it_balances_the_test_split_across_modality_and_vocal(db: None) -> None:
    data = build_dataset(per_cell=3, voters=2)
    export, root = run_export(data.campaign, test_size=16, validation_fraction=0.1)
    test_rows = read_jsonl(root / "comparisons.jsonl")
    cells: dict[tuple[str, bool], int] = {}
    for row in test_rows:
        if row["split"] == "test":
            cells[row["modality_code"], row["vocal"]] = cells.get((row["modality_code"], row["vocal"]), 0) + 1
    assert cells == {(m, v): 2 for m in "TLAC" for v in (False, True)}
    assert export.summary["test_split"] == {"requested": 16, "selected": 16, "balanced": True, "shortfall": {}}


def test_it_reports_the_shortfall_when_a_cell_cannot_be_filled(db: None) -> None:
    data = build_dataset(per_cell=3, voters=1)
    # Remove the vocal lyric (L) comparisons: L must be made up from instrumental, and falls short.
    for comparison in data.comparisons:
        if comparison.instruction.modality == "L" and comparison.clip_a.is_vocal:
            comparison.delete()
    export, root = run_export(data.campaign, test_size=16, validation_fraction=0.0)
    shortfall = export.summary["test_split"]["shortfall"]
    assert shortfall["requested"] == 16 and shortfall["selected"] == 15
    assert shortfall["by_modality"]["L"]["selected"] == 3
    assert "modality L: 4 requested, 3 available" in shortfall["messages"]
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["counts"]["test_split"]["shortfall"] == shortfall
    assert "modality L: 4 requested, 3 available" in (root / "README.md").read_text()
    tests = [r for r in read_jsonl(root / "comparisons.jsonl") if r["split"] == "test"]
    assert sum(r["modality"] == "text+lyrics" for r in tests) == 3 and len(tests) == 15


def test_it_writes_byte_identical_jsonl_on_two_runs(dataset: Dataset) -> None:
    _, first = run_export(dataset.campaign, seed=11)
    _, second = run_export(dataset.campaign, seed=11)
    for name in ("votes.jsonl", "train.jsonl", "validation.jsonl", "test.jsonl", "comparisons.jsonl"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    _, other_seed = run_export(dataset.campaign, seed=12, balance_test=False, test_fraction=0.5)
    assert (other_seed / "votes.jsonl").read_bytes() != (first / "votes.jsonl").read_bytes()


def test_it_sorts_rows_by_comparison_then_vote_and_splits_files_match(dataset: Dataset) -> None:
    _, root = run_export(dataset.campaign)
    rows = read_jsonl(root / "votes.jsonl")
    expected = list(Vote.objects.order_by("comparison_id", "id").values_list("feedback", flat=True))
    assert [row["feedback"] for row in rows] == expected
    for split in ("train", "validation", "test"):
        assert read_jsonl(root / f"{split}.jsonl") == [row for row in rows if row["split"] == split]


def test_it_exports_a_swapped_vote_with_the_canonical_preference(campaign, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    comparison = factories.make_comparison(campaign, seconds=0.5, systems=("good-gen", "bad-gen"))
    # bob saw clip_b on the left and picked the right-hand side, i.e. the canonical clip_a.
    factories.make_vote(comparison, bob, alignment="a", musicality="b", swapped=True, alignment_confidence=4)
    factories.make_vote(comparison, charlie, alignment="b", musicality="a", swapped=False)
    _, root = run_export(campaign, test_fraction=0.0, validation_fraction=0.0)
    rows = {row["user id"]: row for row in read_jsonl(root / "votes.jsonl")}
    bob_row = rows[bob.annotator.pseudonym]
    assert bob_row["model_a"] == "good-gen" and bob_row["model_b"] == "bad-gen"
    assert bob_row["preference-alignment"] == "model_a" and bob_row["preference-musicality"] == "model_b"
    assert bob_row["presented_order"] == ["model_b", "model_a"]
    charlie_row = rows[charlie.annotator.pseudonym]
    assert charlie_row["preference-alignment"] == "model_b" and charlie_row["presented_order"] == ["model_a", "model_b"]
    comparison_row = read_jsonl(root / "comparisons.jsonl")[0]
    assert comparison_row["preference-alignment"] == "both"  # 1 vs 1
    assert comparison_row["soft_label-alignment"] == 0.5 and comparison_row["vote_count"] == 2


def test_it_filters_by_minimum_votes_per_comparison(dataset: Dataset) -> None:
    thin = dataset.comparisons[0]
    Vote.objects.filter(comparison=thin).exclude(annotator=dataset.annotators[0]).delete()
    _, root = run_export(dataset.campaign, min_votes_per_comparison=2, test_fraction=0.0)
    keys = {row["audio-path"] for row in read_jsonl(root / "comparisons.jsonl")}
    assert len(keys) == len(dataset.comparisons) - 1
    assert f"audio/{thin.clip_a.sha256}.wav" not in keys


def test_it_filters_by_minimum_confidence(dataset: Dataset) -> None:
    _, root = run_export(dataset.campaign, min_confidence=4, test_fraction=0.0)
    rows = read_jsonl(root / "votes.jsonl")
    expected = Vote.objects.filter(alignment_confidence__gte=4, musicality_confidence__gte=4).count()
    assert 0 < len(rows) == expected < Vote.objects.count()
    assert all(min(r["confidence_preference-alignment"], r["confidence_preference-musicality"]) >= 4 for r in rows)


def test_it_excludes_gold_and_attention_items_unless_asked(dataset: Dataset) -> None:
    gold, attention = dataset.comparisons[0], dataset.comparisons[1]
    gold.gold_alignment = "a"
    gold.save()
    attention.is_attention_check = True
    attention.save()
    _, root = run_export(dataset.campaign, test_fraction=0.0)
    paths = {r["audio-path"] for r in read_jsonl(root / "comparisons.jsonl")}
    assert f"audio/{gold.clip_a.sha256}.wav" not in paths and f"audio/{attention.clip_a.sha256}.wav" not in paths
    assert len(paths) == len(dataset.comparisons) - 2
    _, root = run_export(dataset.campaign, test_fraction=0.0, exclude_gold=False, exclude_attention_checks=False)
    rows = {r["audio-path"]: r for r in read_jsonl(root / "comparisons.jsonl")}
    assert rows[f"audio/{gold.clip_a.sha256}.wav"]["gold-alignment"] == "model_a"
    assert rows[f"audio/{attention.clip_a.sha256}.wav"]["attention_check"] is True


def test_it_excludes_annotators_flagged_by_quality_control(dataset: Dataset) -> None:
    straight_liner = factories.make_annotator("straight-liner")
    # Twelve votes, always the left clip with confidence 5: flagged by the agreement QC rules.
    extra = build_dataset(per_cell=2, voters=0, campaign=dataset.campaign).comparisons[:12]
    for comparison in extra:
        factories.make_vote(
            comparison,
            straight_liner,
            alignment="a",
            musicality="a",
            alignment_confidence=5,
            musicality_confidence=5,
            swapped=False,
        )
    pseudonym = AnnotatorProfile.objects.get_or_create(user=straight_liner)[0].pseudonym
    export, root = run_export(dataset.campaign, exclude_flagged_annotators=True, test_fraction=0.0)
    users = {r["user id"] for r in read_jsonl(root / "votes.jsonl")}
    assert pseudonym not in users and len(users) == 3
    assert export.summary["excluded_flagged_annotators"] == 1
    _, root = run_export(dataset.campaign, exclude_flagged_annotators=False, test_fraction=0.0)
    assert pseudonym in {r["user id"] for r in read_jsonl(root / "votes.jsonl")}


def test_the_flagged_set_is_fixed_when_the_export_is_requested(dataset: Dataset) -> None:
    straight_liner = factories.make_annotator("straight-liner")
    for comparison in build_dataset(per_cell=2, voters=0, campaign=dataset.campaign).comparisons[:12]:
        factories.make_vote(
            comparison,
            straight_liner,
            alignment="a",
            musicality="a",
            alignment_confidence=5,
            musicality_confidence=5,
            swapped=False,
        )
    pseudonym = AnnotatorProfile.objects.get_or_create(user=straight_liner)[0].pseudonym

    def voters_of(excluded: list[int] | None) -> set[str]:
        parameters = {"exclude_flagged_annotators": True, "test_fraction": 0.0}
        export = export_create(campaign=dataset.campaign, requested_by=None, parameters=parameters, enqueue=False)
        assert export.excluded_annotator_ids == [straight_liner.pk]
        Export.objects.filter(pk=export.pk).update(excluded_annotator_ids=excluded)
        export = export_run(export_id=export.pk)
        assert export.status == Export.Status.SUCCEEDED, export.error
        return {r["user id"] for r in read_jsonl(export_dir_for(export) / "votes.jsonl")}

    # The build leaves out the set stored with the request, even one that no longer matches the flags ...
    assert pseudonym not in voters_of([straight_liner.pk])
    assert pseudonym in voters_of([])
    # ... and a row without one (queued before the column existed) asks quality control when it starts.
    assert pseudonym not in voters_of(None)


def test_the_manifest_agreement_is_that_of_the_exported_votes(dataset: Dataset) -> None:
    Vote.objects.filter(pk__in=list(Vote.objects.order_by("id").values_list("id", flat=True)[::4])).update(
        alignment_confidence=1
    )
    export, root = run_export(dataset.campaign, min_confidence=2, test_fraction=0.0)
    exported = export_votes(
        campaign=dataset.campaign, params=ExportParameters.from_dict(export.parameters), flagged_annotator_ids=set()
    )
    manifest = json.loads((root / "manifest.json").read_text())
    assert 0 < manifest["agreement"]["vote_count"] == exported.count() < 36  # and comparisons left with one vote go
    assert manifest["agreement"] == agreement_summary(votes=exported)


def test_it_filters_by_an_inclusive_date_range(dataset: Dataset) -> None:
    votes = list(Vote.objects.order_by("id"))
    days = [dt.datetime(2026, 3, d, 12, tzinfo=dt.UTC) for d in (1, 2, 3)]
    for index, vote in enumerate(votes):
        Vote.objects.filter(pk=vote.pk).update(created_at=days[index % 3])
    _, root = run_export(
        dataset.campaign, date_from="2026-03-02", date_to="2026-03-02", test_fraction=0.0, validation_fraction=0.0
    )
    rows = read_jsonl(root / "votes.jsonl")
    assert len(rows) == len(votes[1::3])
    assert {r["vote_time"] for r in rows} == {"2026-03-02T12:00:00Z"}


def test_it_writes_a_manifest_with_hashes_counts_and_agreement(dataset: Dataset) -> None:
    export, root = run_export(dataset.campaign, seed=5)
    manifest = json.loads((root / "manifest.json").read_text())
    on_disk = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert sorted(manifest["files"]) == on_disk
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == entry["sha256"], name
    assert manifest["seed"] == 5 and manifest["parameters"]["seed"] == 5
    assert manifest["campaign"]["license"] == "CC-BY-4.0"
    assert manifest["code_version"] and manifest["created_at"].endswith("Z")
    by_cell = manifest["counts"]["votes_by_split_modality_vocal"]
    assert sum(n for split in by_cell.values() for m in split.values() for n in m.values()) == 48
    assert sum(manifest["counts"]["votes"].values()) == 48
    assert manifest["agreement"]["vote_count"] == 48 and "alignment" in manifest["agreement"]
    readme = (root / "README.md").read_text()
    assert "CC-BY-4.0" in readme and "prompt id" in readme and "| test |" in readme
    assert len(list((root / "audio").iterdir())) == 16 * 2 + 8  # two clips per pair + one reference per A/C pair


def test_it_writes_a_tar_gz_with_every_file(dataset: Dataset) -> None:
    export, root = run_export(dataset.campaign, archive="tar.gz")
    archive = Path(settings.EXPORT_ROOT) / export.archive_path
    with tarfile.open(archive) as tar:
        names = {m.name for m in tar.getmembers()}
        votes = tar.extractfile(f"{root.name}/votes.jsonl").read()  # type: ignore[union-attr]
    assert names == {f"{root.name}/{p.relative_to(root)}" for p in root.rglob("*") if p.is_file()}
    assert votes == (root / "votes.jsonl").read_bytes()


def test_it_copies_audio_when_asked_and_files_load_with_pandas(dataset: Dataset) -> None:
    _, root = run_export(dataset.campaign, audio="copy", archive="none")
    frame = pd.read_json(root / "votes.jsonl", lines=True)
    assert len(frame) == 48 and set(frame["split"]) <= {"train", "validation", "test"}
    comparisons = pd.read_json(root / "comparisons.jsonl", lines=True)
    assert len(comparisons) == 16 and comparisons["vote_count"].eq(3).all()
    sample = root / frame["audio-path"][0]
    assert sample.stat().st_nlink == 1  # a copy, not a link into MEDIA_ROOT


def test_it_fails_without_publishing_anything_when_audio_is_missing(dataset: Dataset) -> None:
    missing = dataset.comparisons[3].clip_b
    assert missing.file.name
    (Path(settings.MEDIA_ROOT) / missing.file.name).unlink()
    export = export_create(campaign=dataset.campaign, requested_by=None, parameters={}, enqueue=False)
    export = export_run(export_id=export.pk)
    assert export.status == Export.Status.FAILED
    assert "missing" in export.error and missing.sha256[:12] in export.error
    assert export.result_path == "" and not export_dir_for(export).exists()
    leftovers = [p.name for p in Path(settings.EXPORT_ROOT).iterdir() if p.name.startswith(f".tmp-export-{export.pk}-")]
    assert leftovers == [] and not list(Path(settings.EXPORT_ROOT).glob(f"export-{export.pk}.*"))
    # The tar.gz (the default archive) was being compressed while the rows were written: its thread is gone.
    assert [t.name for t in threading.enumerate() if t.name.startswith("export-gzip")] == []


def test_it_fails_without_publishing_when_the_archive_step_breaks(dataset: Dataset, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from annotate.exports import bundle

    def broken(*args: object, **kwargs: object) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(bundle, "write_archive", broken)
    export = export_create(campaign=dataset.campaign, requested_by=None, parameters={}, enqueue=False)
    export = export_run(export_id=export.pk)
    assert export.status == Export.Status.FAILED and "disk full" in export.error
    assert not export_dir_for(export).exists()


def test_it_runs_an_export_once_even_when_asked_twice(dataset: Dataset) -> None:
    export, root = run_export(dataset.campaign)
    finished_at = export.finished_at
    again = export_run(export_id=export.pk)
    assert again.status == Export.Status.SUCCEEDED and again.finished_at == finished_at
    assert root.is_dir()


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"test_fraction": 0.6, "validation_fraction": 0.5}, "validation_fraction"),
        ({"test_size": 17}, "test_size"),
        ({"test_size": 10, "validation_fraction": 0.5}, "validation_fraction"),
        ({"min_confidence": 6}, "min_confidence"),
        ({"min_votes_per_comparison": 0}, "min_votes_per_comparison"),
        ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "date_to"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"seed": "7"}, "seed"),
        ({"balance_test": "yes"}, "balance_test"),
        ({"archive": "rar"}, "archive"),
        ({"colour": "blue"}, "colour"),
        ({"min_votes_per_comparison": 4}, "filters"),
    ],
)
def test_it_rejects_impossible_parameters_with_the_reason(dataset: Dataset, parameters: dict, field: str) -> None:
    with pytest.raises(ExportParameterError) as caught:
        export_create(campaign=dataset.campaign, requested_by=None, parameters=parameters, enqueue=False)
    assert field in caught.value.errors and caught.value.errors[field]
    assert not Export.objects.exists()


def test_it_records_progress_and_timestamps(dataset: Dataset) -> None:
    before = timezone.now()
    export, _ = run_export(dataset.campaign)
    assert export.progress == 1.0 and export.progress_message == "done"
    assert export.started_at is not None and export.finished_at is not None
    assert before <= export.started_at <= export.finished_at


def test_it_encodes_each_line_exactly_as_the_row_dict_would_be(dataset: Dataset) -> None:
    from annotate.exports.rows import VoteLines, dumps, vote_row
    from annotate.exports.selectors import export_comparison_facts, export_vote_values

    facts = {f.comparison_id: f for f in export_comparison_facts(votes=Vote.objects.all())}
    lines = VoteLines()
    votes = list(export_vote_values(votes=Vote.objects.all()))
    assert len(votes) == Vote.objects.count() > 0
    for vote in votes:
        comparison = facts[vote.comparison_id]
        assert lines.line(comparison, "train", "ann-x", vote) == dumps(vote_row(comparison, "train", "ann-x", vote))


def test_it_reads_vote_times_exactly_as_python_formats_them(dataset: Dataset) -> None:
    from annotate.exports.rows import iso_time
    from annotate.exports.selectors import export_vote_values

    moments = [
        dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 1, 12, 0, 0, 120, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 6, 1, 1, 30, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=5))),
    ]
    votes = list(Vote.objects.order_by("comparison_id", "id"))[: len(moments)]
    for vote, moment in zip(votes, moments, strict=True):
        Vote.objects.filter(pk=vote.pk).update(created_at=moment)
    written = {v.vote_time for v in export_vote_values(votes=Vote.objects.filter(pk__in=[v.pk for v in votes]))}
    assert written == {iso_time(moment) for moment in moments}
    assert "2026-03-01T12:00:00Z" in written and "2026-05-31T20:30:00.500000Z" in written


def test_it_shows_progress_on_the_row_while_running(dataset: Dataset, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from annotate.exports import bundle

    seen: list[tuple[str, float, str]] = []
    real_write_audio = bundle.write_audio

    def observed(*args: object, **kwargs: object) -> None:
        row = Export.objects.get()
        seen.append((row.status, row.progress, row.progress_message))
        real_write_audio(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bundle, "write_audio", observed)
    run_export(dataset.campaign)
    assert seen == [("running", 0.8, "copying audio")]


def test_it_writes_a_zip_with_every_file(dataset: Dataset) -> None:
    import zipfile

    export, root = run_export(dataset.campaign, archive="zip")
    with zipfile.ZipFile(Path(settings.EXPORT_ROOT) / export.archive_path) as zf:
        names = set(zf.namelist())
        assert zf.read(f"{root.name}/test.jsonl") == (root / "test.jsonl").read_bytes()
    assert names == {f"{root.name}/{p.relative_to(root)}" for p in root.rglob("*") if p.is_file()}


def test_it_fails_an_export_whose_worker_died_and_removes_its_temp_files(dataset, settings) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta
    from pathlib import Path

    from django.utils import timezone

    from annotate.exports.models import Export
    from annotate.exports.services import export_create, export_stale_reap

    dead, alive = (
        export_create(campaign=dataset.campaign, requested_by=None, parameters={"test_size": 4}, enqueue=False)
        for _ in range(2)
    )
    long_ago = timezone.now() - timedelta(hours=1)
    # What a worker killed mid-build leaves: a claimed row with an old heartbeat and a temp directory.
    Export.objects.filter(pk=dead.pk).update(status="running", started_at=long_ago, heartbeat_at=long_ago)
    Export.objects.filter(pk=alive.pk).update(status="running", started_at=long_ago, heartbeat_at=timezone.now())
    leftover = Path(settings.EXPORT_ROOT) / f".tmp-export-{dead.pk}-abc"
    leftover.mkdir(parents=True)

    assert export_stale_reap(stale_after_s=900) == 1
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == "failed" and "worker stopped" in dead.error and dead.result_path == ""
    assert not leftover.exists()
    assert alive.status == "running"  # still making progress: left alone


def test_it_reaps_dead_exports_when_a_new_one_is_requested(dataset) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    from annotate.exports.models import Export
    from annotate.exports.services import export_create

    dead = export_create(campaign=dataset.campaign, requested_by=None, parameters={"test_size": 4}, enqueue=False)
    long_ago = timezone.now() - timedelta(hours=1)
    Export.objects.filter(pk=dead.pk).update(status="running", started_at=long_ago, heartbeat_at=long_ago)
    export_create(campaign=dataset.campaign, requested_by=None, parameters={"test_size": 4}, enqueue=False)
    dead.refresh_from_db()
    assert dead.status == "failed"
