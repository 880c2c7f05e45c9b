import pytest

from rm_service.core.data import DataError
from rm_service.core.pseudo import make_pseudo_labels


def _row(i: int, fa: str, ra: str, fm: str, rm: str) -> tuple[str, dict[str, str]]:
    return (
        f"judged.jsonl:{i}",
        {
            "audio-path": f"a{i}.wav",
            "audio2": f"b{i}.wav",
            "prompt": "p",
            "judge_forward_alignment": fa,
            "judge_reversed_alignment": ra,
            "judge_forward_musicality": fm,
            "judge_reversed_musicality": rm,
        },
    )


def test_it_keeps_only_position_consistent_verdicts() -> None:
    rows = [
        _row(1, "A", "B", "A", "B"),  # consistent: A both times (reversed "B" = canonical A)
        _row(2, "B", "A", "tie", "tie"),  # consistent: B, and a consistent tie
        _row(3, "A", "A", "A", "B"),  # alignment flips with position: dropped
        _row(4, "tie", "B", "B", "A"),  # inconsistent tie on alignment: dropped
    ]
    kept, report = make_pseudo_labels(rows)
    assert [r["audio-path"] for r in kept] == ["a1.wav", "a2.wav"]
    assert kept[0]["preference-alignment"] == "model_a" and kept[1]["preference-musicality"] == "both"
    assert not any(k.startswith("judge_") for k in kept[0]) and kept[0]["source"] == "pseudo"
    assert report.rows_in == 4 and report.rows_kept == 2 and report.retention == 0.5
    ali = report.heads["alignment"].as_dict()
    assert ali["retention"] == 0.5
    assert ali["win_rate_original_pct"] == {"A": 50.0, "B": 25.0, "tie": 25.0}
    assert ali["win_rate_reversed_pct"] == {"A": 50.0, "B": 50.0, "tie": 0.0}  # mapped back to canonical order
    assert ali["win_rate_agreed_pct"] == {"A": 50.0, "B": 50.0, "tie": 0.0}
    assert ali["win_a_shift_pct"] == 0.0
    mus = report.heads["musicality"].as_dict()
    assert mus["consistent"] == 4 and mus["win_rate_reversed_pct"] == {"A": 50.0, "B": 25.0, "tie": 25.0}


def test_it_measures_the_shift_of_a_position_biased_judge() -> None:
    # A judge that always prefers the clip shown first: forward says A, reversed says A (= canonical B).
    rows = [_row(i, "A", "A", "A", "A") for i in range(10)]
    kept, report = make_pseudo_labels(rows)
    assert kept == [] and report.retention == 0.0
    assert report.heads["alignment"].as_dict()["win_a_shift_pct"] == -100.0


def test_it_can_keep_rows_with_some_consistent_heads() -> None:
    kept, _ = make_pseudo_labels([_row(1, "A", "B", "A", "A")], require_all_heads=False)
    assert kept[0]["preference-alignment"] == "model_a" and kept[0]["preference-musicality"] is None


def test_it_names_the_row_with_a_bad_verdict() -> None:
    with pytest.raises(DataError, match="judged.jsonl:7: judge_reversed_musicality='maybe'"):
        make_pseudo_labels([_row(7, "A", "B", "A", "maybe")])
