import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import kendalltau, pearsonr, spearmanr

from rm_service.core.data import DataError
from rm_service.core.evaluate import evaluate, pair_score


class StubScorer:
    """Returns fixed scores per audio file name, so metrics can be checked against hand values."""

    strategy = "first120"

    def __init__(self, scores: dict[str, tuple[float, float]]) -> None:
        self.scores = scores
        self.featurizer = type("F", (), {"encoder": type("E", (), {"id": "stub"})()})()

    def score_batch(self, items: list[dict[str, Any]], **_: Any) -> np.ndarray:
        return np.array([self.scores[Path(i["audio"]).name] for i in items], dtype=np.float32)


def _write(root: Path, rows: list[dict[str, Any]]) -> Path:
    for row in rows:
        for key in ("audio-path", "audio2", "ref-audio-path"):
            if row.get(key):
                (root / row[key]).touch()
    path = root / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _pair(a: str, b: str, ali: str, mus: str, *, lyrics: str = "", ref: str = "", conf: float = 4) -> dict[str, Any]:
    return {
        "audio-path": a,
        "audio2": b,
        "prompt": "p",
        "lyrics": lyrics,
        "ref-audio-path": ref,
        "preference-alignment": ali,
        "preference-musicality": mus,
        "source": "cmi-arena-annotation",
        "confidence_preference-alignment": conf,
        "confidence_preference-musicality": conf,
    }


def test_it_scores_a_pair_like_the_benchmark() -> None:
    assert pair_score(1, 2.0, 1.0) == 1.0 and pair_score(-1, 2.0, 1.0) == 0.0
    assert pair_score(0, 2.0, 1.0) == 0.5  # "both" / "neither"
    assert pair_score(-1, 1.0, 1.0) == 1.0  # equal scores predict model_b


def test_it_matches_scipy_correlations_on_mos_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ratings = rng.integers(1, 6, size=30).astype(float)
    predicted = ratings + rng.normal(0, 1.5, size=30)
    rows = [
        {
            "audio-path": f"m{i}.wav",
            "prompt": "p",
            "musicality": float(r),
            "text-music alignment": float(6 - r),
            "source": "MusicEval",
        }
        for i, r in enumerate(ratings)
    ]
    scores = {f"m{i}.wav": (float(-p), float(p)) for i, p in enumerate(predicted)}
    report = evaluate(
        jsonl=_write(tmp_path, rows),
        dataset_root=tmp_path,
        scorer=StubScorer(scores),  # type: ignore[arg-type]
        out_dir=tmp_path / "out",
    )
    row = next(r for r in report.summary if r["task"] == "musicality")
    assert row["dataset"] == "MusicEval" and row["n"] == 30
    assert row["LCC"] == pytest.approx(pearsonr(ratings, predicted).statistic, abs=1e-6)
    assert row["SRCC"] == pytest.approx(spearmanr(ratings, predicted).statistic, abs=1e-6)
    assert row["K-Tau"] == pytest.approx(kendalltau(ratings, predicted).statistic, abs=1e-6)  # tau-b with ties
    alignment = next(r for r in report.summary if r["task"] == "alignment")
    assert alignment["SRCC"] == pytest.approx(row["SRCC"], abs=1e-6)  # 6 - r against -p


def test_it_computes_pairwise_accuracy_with_ties_and_groups(tmp_path: Path) -> None:
    rows = [
        _pair("a1.wav", "b1.wav", "model_a", "model_b", conf=5),  # T: ali right, mus right
        _pair("a2.wav", "b2.wav", "model_b", "both", conf=3),  # T: ali wrong, mus tie -> 0.5
        _pair("a3.wav", "b3.wav", "model_a", "model_a", lyrics="la", conf=1),  # L: ali right, mus wrong
        _pair("a4.wav", "b4.wav", "neither", "model_b", ref="r.wav", conf=4),  # A: ali tie -> 0.5, mus right
    ]
    scores = {
        "a1.wav": (1, 0),
        "b1.wav": (0, 1),
        "a2.wav": (1, 0),
        "b2.wav": (0, 1),
        "a3.wav": (1, 0),
        "b3.wav": (0, 1),
        "a4.wav": (0, 0),
        "b4.wav": (1, 1),
        "r.wav": (0, 0),
    }
    report = evaluate(
        jsonl=_write(tmp_path, rows),
        dataset_root=tmp_path,
        scorer=StubScorer(scores),  # type: ignore[arg-type]
        out_dir=tmp_path / "out",
    )
    assert report.value("CMI-Pref", "alignment", "ACC") == pytest.approx((1 + 0 + 1 + 0.5) / 4)
    assert report.value("CMI-Pref", "musicality", "ACC") == pytest.approx((1 + 0.5 + 0 + 1) / 4)

    def detail(task: str, key: str, value: str, ref: str = "") -> tuple[int, float]:
        row = next(
            r
            for r in report.detail
            if (r["task"], r["group_key"], r["group_value"], r["ref_category"]) == (task, key, value, ref)
        )
        return row["n"], row["ACC"]

    assert detail("alignment", "modality", "T") == (2, 0.5)
    assert detail("alignment", "modality", "L") == (1, 1.0)
    assert detail("alignment", "modality", "A") == (1, 0.5)
    assert detail("musicality", "confidence", "<3", "all") == (1, 0.0)
    assert detail("musicality", "confidence", "=3", "no_ref") == (1, 0.5)
    assert detail("musicality", "confidence", ">3", "ref") == (1, 1.0)
    assert detail("alignment", "ref_subset", "no_ref") == (3, pytest.approx(2 / 3))
    assert detail("musicality", "modality_type", "vocal") == (1, 0.0)
    assert detail("musicality", "modality_type", "instru") == (3, pytest.approx(2.5 / 3))

    out = tmp_path / "out"
    with (out / "metrics_summary.csv").open() as f:
        assert {r["task"] for r in csv.DictReader(f)} == {"alignment", "musicality"}
    with (out / "metrics_detail.csv").open() as f:
        assert len(list(csv.DictReader(f))) == len(report.detail)
    assert set(json.loads((out / "metrics.json").read_text())) == {"config", "summary", "detail"}
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert predictions[1]["predicted_preference-alignment"] == "model_a"
    assert predictions[3]["predicted_musicality_b"] == 1.0


def test_it_filters_by_split_and_reports_missing_audio_with_line_numbers(tmp_path: Path) -> None:
    rows = [
        _pair("a.wav", "b.wav", "model_a", "model_a") | {"split": "train"},
        _pair("c.wav", "d.wav", "model_a", "model_a") | {"split": "test"},
    ]
    path = _write(tmp_path, rows)
    scorer = StubScorer({"c.wav": (1, 1), "d.wav": (0, 0)})
    report = evaluate(jsonl=path, dataset_root=tmp_path, scorer=scorer, out_dir=tmp_path / "o", split="test")  # type: ignore[arg-type]
    assert report.value("CMI-Pref", "alignment", "n") == 1
    (tmp_path / "d.wav").unlink()
    with pytest.raises(DataError, match=r"rows.jsonl:2: .*d.wav"):
        evaluate(jsonl=path, dataset_root=tmp_path, scorer=scorer, out_dir=tmp_path / "o")  # type: ignore[arg-type]
