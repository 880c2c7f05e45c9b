"""The benchmark row format: CMI-RewardBench names and key order, and the fast line encoder."""

from __future__ import annotations

import datetime as dt
import json
import typing

from annotate.exports import rows
from annotate.exports.selectors import ComparisonFacts

FACTS = ComparisonFacts(
    comparison_id=7,
    prompt_id="p1",
    instruction_hash="ih",
    prompt="a calm piano piece",
    lyrics="",
    modality="A",
    reference_sha="r" * 64,
    reference_file="clips/ref.FLAC",
    clip_a_sha="a" * 64,
    clip_a_file="clips/a.wav",
    clip_a_system="sys-a",
    clip_a_vocal=False,
    clip_b_sha="b" * 64,
    clip_b_file="clips/b.mp3",
    clip_b_system="sys-b",
    clip_b_vocal=None,
    gold_alignment="a",
    gold_musicality="",
    is_attention_check=False,
)
VOTE = rows.VoteValues(
    7, 3, "b", "a", 4, 2, "ça sonne", True, 9.5, 10.0, 31.0, rows.iso_time(dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC))
)


def test_it_writes_the_fields_in_the_schemas_order() -> None:
    row = rows.vote_row(FACTS, "test", "ann-1", VOTE)
    assert list(row) == list(typing.get_type_hints(rows.VoteRow))
    assert list(row)[:3] == ["audio-path", "audio2", "ref-audio-path"]


def test_it_uses_the_benchmarks_words_and_relative_paths() -> None:
    row = rows.vote_row(FACTS, "test", "ann-1", VOTE)
    assert row["audio-path"] == f"audio/{'a' * 64}.wav" and row["ref-audio-path"] == f"audio/{'r' * 64}.flac"
    assert (row["preference-alignment"], row["preference-musicality"]) == ("model_b", "model_a")
    assert row["gold-alignment"] == "model_a" and row["gold-musicality"] == ""
    assert row["presented_order"] == ["model_b", "model_a"] and row["vote_time"] == "2026-05-01T12:00:00Z"
    assert row["source"] == "cmi-arena-annotation" and row["vocal"] is None


def test_it_encodes_a_line_exactly_as_the_row_dict_would_be() -> None:
    lines = rows.VoteLines()
    for split in ("test", "test"):  # the second call reuses the cached comparison fields
        line = lines.line(FACTS, split, "ann-1", VOTE)
        assert line == rows.dumps(rows.vote_row(FACTS, split, "ann-1", VOTE))
    assert json.loads(line)["feedback"] == "ça sonne" and "\\u00e7" not in line.decode()


def test_it_encodes_awkward_values_exactly_as_json_dumps_would() -> None:
    lines = rows.VoteLines()
    awkward = [
        VOTE._replace(feedback='quote " back\\slash\nnew line\ttab \x01 ♪ \u2028', time_on_task_s=None),
        VOTE._replace(listened_a_s=float("nan"), listened_b_s=float("inf"), time_on_task_s=-float("inf")),
        VOTE._replace(listened_a_s=0.1 + 0.2, listened_b_s=1e-7, time_on_task_s=1e22, presented_swapped=False),
        VOTE._replace(alignment_choice="t", musicality_choice="t", presented_swapped=False),
    ]
    for vote in awkward:
        for pseudonym in ("ann-1", 'ann "2"'):
            assert lines.line(FACTS, "train", pseudonym, vote) == rows.dumps(
                rows.vote_row(FACTS, "train", pseudonym, vote)
            )


def test_it_writes_vote_times_in_utc_with_microseconds_only_when_there_are_some() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    assert rows.iso_time(dt.datetime(2026, 5, 1, 23, 59, 59, 120, tzinfo=paris)) == "2026-05-01T21:59:59.000120Z"
    assert rows.iso_time(dt.datetime(2026, 5, 2, 0, 30, tzinfo=paris)) == "2026-05-01T22:30:00Z"


def test_it_encodes_a_comparison_line_exactly_as_the_row_dict_would_be() -> None:
    from annotate.exports.bundle import comparison_label

    lines = rows.VoteLines()
    votes = [VOTE, VOTE._replace(alignment_choice="a", alignment_confidence=5), VOTE._replace(musicality_choice="t")]
    for split, count, adjudicated in (("test", 3, None), ("train", 2, {"alignment": "t", "musicality": "b"})):
        label = comparison_label(FACTS.comparison_id, votes[:count])
        lines.start(FACTS, split)
        expected = rows.dumps(rows.comparison_row(FACTS, split, label, adjudicated))
        assert lines.comparison_line(label, adjudicated) == expected
    assert json.loads(expected)["confidence_preference-alignment"] == 4.5
