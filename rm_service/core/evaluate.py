"""CMI-RewardBench-style evaluation of a reward model on a JSONL file.

Semantics follow the benchmark's ``evaluate_results.py``:

- MOS rows: Pearson (LCC), Spearman (SRCC) and Kendall tau-b between ratings and predicted scores, per
  dataset and head (``text-music alignment`` -> alignment head, ``musicality`` -> musicality head);
- pair rows: the prediction is ``model_a`` when A's head score is higher, else ``model_b``; a row scores 1 when
  it equals the label, 0.5 when the label is ``both`` (``neither`` counts as ``both``), else 0;
- pair groups: modality (T/L/A/C), confidence (<3, =3, >3) overall and split by with/without reference,
  with/without reference, and instrumental (T, A) / vocal (L, C).

Outputs ``metrics_summary.csv``, ``metrics_detail.csv``, ``metrics.json`` and ``predictions.jsonl``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .data import Instruction, MosExample, PairExample, load_dataset
from .score import Scorer

HEADS = (("alignment", 0), ("musicality", 1))
MOS_FIELDS = {"alignment": "text-music alignment", "musicality": "musicality"}


@dataclass
class EvaluationReport:
    summary: list[dict[str, Any]]
    detail: list[dict[str, Any]]
    out_dir: Path

    def value(self, dataset: str, task: str, metric: str) -> float | None:
        for row in self.summary:
            if row["dataset"] == dataset and row["task"] == task:
                return row.get(metric)
        return None


def dataset_name(row: dict[str, Any], *, pair: bool) -> str:
    """The benchmark's dataset inference from ``source``; other sources keep their own name."""
    source = str(row.get("source") or "")
    if "PAM" in source:
        return "PAM"
    if source in ("MusicEval", "SongEval"):
        return "MusicEval"
    if "Music Arena" in source:
        return "MusicArena"
    if source == "cmi-arena-annotation":
        return "CMI-Pref"
    return source or ("pairs" if pair else "MOS")


def _correlation(x: list[float], y: list[float], fn: Callable[..., Any]) -> float | None:
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    value = float(fn(x, y)[0])
    return None if math.isnan(value) else value


def correlations(ratings: list[float], predicted: list[float]) -> dict[str, float | None]:
    """LCC, SRCC and Kendall tau-b (None when undefined: fewer than 2 items or a constant input)."""
    from scipy.stats import kendalltau, pearsonr, spearmanr

    return {
        "LCC": _correlation(ratings, predicted, pearsonr),
        "SRCC": _correlation(ratings, predicted, spearmanr),
        "K-Tau": _correlation(ratings, predicted, kendalltau),
    }


def pair_score(label: int, score_a: float, score_b: float) -> float:
    """1 if the higher-scored clip is the preferred one, 0.5 if the label is a tie, else 0."""
    if label == 0:
        return 0.5
    predicted_a = score_a > score_b  # equal scores predict model_b, as the benchmark does
    return 1.0 if predicted_a == (label > 0) else 0.0


def confidence_group(value: float | None) -> str | None:
    if value is None:
        return None
    return "<3" if value < 3 else ">3" if value > 3 else "=3"


def _acc_row(dataset: str, task: str, values: list[float], **group: str) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "task": task,
        **group,
        "n": len(values),
        "ACC": float(np.mean(values)) if values else None,
    }


def pair_detail(dataset: str, task: str, scored: list[tuple[PairExample, float, float]]) -> list[dict[str, Any]]:
    """Grouped accuracies of one head on one dataset; ``scored`` holds (example, label-head score of A, of B)."""
    attr = task
    rows: list[tuple[PairExample, float]] = [
        (p, pair_score(getattr(p, attr), a, b)) for p, a, b in scored if getattr(p, attr) is not None
    ]
    out = []
    for modality in ("T", "L", "A", "C"):
        values = [v for p, v in rows if p.modality == modality]
        if values:
            out.append(_acc_row(dataset, task, values, group_key="modality", group_value=modality, ref_category=""))
    for ref_category, mods in (("no_ref", {"T", "L"}), ("ref", {"A", "C"}), ("all", {"T", "L", "A", "C"})):
        for conf in ("<3", "=3", ">3"):
            values = [
                v for p, v in rows if p.modality in mods and confidence_group(getattr(p, f"confidence_{attr}")) == conf
            ]
            if values:
                out.append(
                    _acc_row(dataset, task, values, group_key="confidence", group_value=conf, ref_category=ref_category)
                )
    for name, mods in (("no_ref", {"T", "L"}), ("ref", {"A", "C"})):
        values = [v for p, v in rows if p.modality in mods]
        if values:
            out.append(_acc_row(dataset, task, values, group_key="ref_subset", group_value=name, ref_category=""))
    for name, mods in (("instru", {"T", "A"}), ("vocal", {"L", "C"})):
        values = [v for p, v in rows if p.modality in mods]
        if values:
            out.append(_acc_row(dataset, task, values, group_key="modality_type", group_value=name, ref_category=""))
    return out


def evaluate(
    *,
    jsonl: str | Path,
    dataset_root: str | Path,
    scorer: Scorer,
    out_dir: str | Path,
    split: str | None = None,
    batch_size: int = 8,
    max_dur: float | None = None,
    strategy: str | None = None,
    show_progress: bool = False,
) -> EvaluationReport:
    """Score every clip of a JSONL file and write benchmark-style metrics.

    Args:
        jsonl: rows in the CMI-RewardBench schema (pairs and/or MOS).
        dataset_root: directory the audio paths are relative to.
        scorer: a loaded ``Scorer`` (see ``load_scorer``).
        out_dir: where the metric files are written (created).
        split: keep only rows whose ``split`` equals this (None = all rows).
        batch_size, max_dur, strategy: passed to ``Scorer.score_batch``.
        show_progress: draw a tqdm bar.

    Returns:
        The summary and detail rows (also written as CSV and JSON).

    Raises:
        DataError: bad rows or missing audio files (with line numbers).
    """
    ds = load_dataset(jsonl, dataset_root=dataset_root, split=split)
    items: list[tuple[Instruction, Path]] = list(
        dict.fromkeys(
            [(p.instruction, a) for p in ds.pairs for a in (p.audio_a, p.audio_b)]
            + [(m.instruction, m.audio) for m in ds.mos]
        )
    )
    inputs = [{"audio": a, "text": i.text, "lyrics": i.lyrics, "ref_audio": i.ref_audio} for i, a in items]
    raw = scorer.score_batch(
        inputs, batch_size=batch_size, max_dur=max_dur, strategy=strategy, show_progress=show_progress
    )
    scores = {item: raw[k] for k, item in enumerate(items)}

    summary: list[dict[str, Any]] = []
    detail: list[dict[str, Any]] = []
    pair_sets: dict[str, list[PairExample]] = {}
    for p in ds.pairs:
        pair_sets.setdefault(dataset_name(p.row, pair=True), []).append(p)
    for name, pairs in pair_sets.items():
        for task, head in HEADS:
            scored = [
                (p, float(scores[(p.instruction, p.audio_a)][head]), float(scores[(p.instruction, p.audio_b)][head]))
                for p in pairs
            ]
            values = [pair_score(getattr(p, task), a, b) for p, a, b in scored if getattr(p, task) is not None]
            if not values:
                continue
            decided = [(a - b, getattr(p, task) > 0) for p, a, b in scored if getattr(p, task) not in (None, 0)]
            ce = float(np.mean([np.logaddexp(0.0, -d if wins else d) for d, wins in decided])) if decided else None
            summary.append({"dataset": name, "task": task, "n": len(values), "ACC": float(np.mean(values)), "CE": ce})
            detail += pair_detail(name, task, scored)
    mos_sets: dict[str, list[MosExample]] = {}
    for m in ds.mos:
        mos_sets.setdefault(dataset_name(m.row, pair=False), []).append(m)
    for name, mos in mos_sets.items():
        for task, head in HEADS:
            rated = [m for m in mos if getattr(m, task) is not None]
            if not rated:
                continue
            ratings = [float(getattr(m, task)) for m in rated]
            predicted = [float(scores[(m.instruction, m.audio)][head]) for m in rated]
            summary.append({"dataset": name, "task": task, "n": len(rated), **correlations(ratings, predicted)})

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(out / "metrics_summary.csv", summary)
    _write_csv(out / "metrics_detail.csv", detail)
    config = {
        "jsonl": str(jsonl),
        "dataset_root": str(dataset_root),
        "split": split,
        "max_dur": max_dur,
        "strategy": strategy or scorer.strategy,
        "encoder_id": scorer.featurizer.encoder.id,
    }
    (out / "metrics.json").write_text(json.dumps({"config": config, "summary": summary, "detail": detail}, indent=2))
    with (out / "predictions.jsonl").open("w", encoding="utf-8") as f:
        examples: list[PairExample | MosExample] = [*ds.pairs, *ds.mos]
        for example in examples:
            f.write(json.dumps(_prediction_row(example, scores), ensure_ascii=False) + "\n")
    return EvaluationReport(summary, detail, out)


def _prediction_row(
    example: PairExample | MosExample, scores: dict[tuple[Instruction, Path], np.ndarray]
) -> dict[str, Any]:
    """The input row plus the benchmark's ``predicted_*`` fields."""
    row = dict(example.row)
    audio = example.audio_a if isinstance(example, PairExample) else example.audio
    a = scores[(example.instruction, audio)]
    row["predicted_text-music alignment"], row["predicted_musicality"] = float(a[0]), float(a[1])
    if isinstance(example, PairExample):
        b = scores[(example.instruction, example.audio_b)]
        row["predicted_text-music alignment_b"], row["predicted_musicality_b"] = float(b[0]), float(b[1])
        row["predicted_preference-alignment"] = "model_a" if a[0] > b[0] else "model_b"
        row["predicted_preference-musicality"] = "model_a" if a[1] > b[1] else "model_b"
    return row


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns or ["dataset"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
