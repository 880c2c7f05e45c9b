import json
from pathlib import Path

import pytest

from rm_service.core.data import DataError, load_dataset, read_jsonl


def _jsonl(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n")
    for name in ("a.wav", "b.wav", "r.wav"):
        (tmp_path / name).touch()
    return path


PAIR = {
    "audio-path": "a.wav",
    "audio2": "b.wav",
    "prompt": "p",
    "preference-alignment": "model_a",
    "preference-musicality": "model_b",
}


def test_it_parses_pairs_mos_rows_and_modalities(tmp_path: Path) -> None:
    rows = [
        PAIR,
        {**PAIR, "lyrics": "la", "ref-audio-path": "r.wav", "preference-musicality": "neither"},
        {"audio-path": "a.wav", "musicality": 4.5, "text-music alignment": "3"},
        {"audio-path": "a.wav", "audio2": "b.wav", "preference": "model_b", "source": "Music Arena"},
        {**PAIR, "modality": "text+ref", "ref-audio-path": "r.wav"},
    ]
    ds = load_dataset(_jsonl(tmp_path, [json.dumps(r) for r in rows]), dataset_root=tmp_path)
    assert len(ds.pairs) == 4 and len(ds.mos) == 1 and ds.ties == 1
    assert [p.modality for p in ds.pairs] == ["T", "C", "T", "A"]
    assert (ds.pairs[0].alignment, ds.pairs[0].musicality) == (1, -1)
    assert ds.pairs[1].musicality == 0 and ds.pairs[2].musicality == -1 and ds.pairs[2].alignment is None
    assert (ds.mos[0].musicality, ds.mos[0].alignment) == (4.5, 3.0)
    assert ds.pairs[1].instruction.ref_audio == tmp_path / "r.wav"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"rows.jsonl:2: invalid JSON"),
        ("[1, 2]", r"rows.jsonl:2: expected a JSON object"),
        (
            json.dumps({**PAIR, "preference-alignment": "A is better"}),
            r"rows.jsonl:2: preference-alignment='A is better'",
        ),
        (json.dumps({"audio2": "b.wav"}), r"rows.jsonl:2: missing 'audio-path'"),
        (json.dumps({"audio-path": "a.wav"}), r"rows.jsonl:2: row has neither"),
        (json.dumps({"audio-path": "a.wav", "musicality": "good"}), r"rows.jsonl:2: musicality='good' is not a number"),
        (json.dumps({**PAIR, "modality": "X"}), r"rows.jsonl:2: modality='X'"),
        (json.dumps({**PAIR, "prompt": 5}), r"rows.jsonl:2: field 'prompt' must be a string"),
    ],
)
def test_it_names_the_line_of_a_bad_row(tmp_path: Path, line: str, message: str) -> None:
    path = _jsonl(tmp_path, [json.dumps(PAIR), line])
    with pytest.raises(DataError, match=message):
        load_dataset(path, dataset_root=tmp_path)


def test_it_lists_every_missing_audio_file(tmp_path: Path) -> None:
    rows = [json.dumps({**PAIR, "audio2": f"gone{i}.wav"}) for i in range(12)]
    with pytest.raises(DataError, match=r"12 audio file\(s\) not found:\n  .*rows.jsonl:1: .*gone0.wav") as err:
        load_dataset(_jsonl(tmp_path, rows), dataset_root=tmp_path)
    assert "and 2 more" in str(err.value)


def test_it_skips_blank_lines_and_counts_line_numbers(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, [json.dumps(PAIR), "", json.dumps(PAIR)])
    assert [n for n, _ in read_jsonl(path)] == [1, 3]
    with pytest.raises(DataError, match="JSONL file not found"):
        read_jsonl(tmp_path / "none.jsonl")
