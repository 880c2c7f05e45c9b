"""Position-consistent pseudo-labels from a judge queried in both orders (paper appendix B).

Each input row is a pair row in the CMI-RewardBench schema (``audio-path`` = clip A, ``audio2`` = clip B)
plus the judge's verdicts:

- ``judge_forward_alignment`` / ``judge_forward_musicality``: asked with A shown first;
- ``judge_reversed_alignment`` / ``judge_reversed_musicality``: asked with B shown first, answered in the
  *presented* order, so "A" there means the clip shown first, i.e. canonical clip B.

Verdict values: ``A``/``B``/``tie`` (or ``model_a``/``model_b``/``both``/``neither``). A head's label is kept
only when the reversed verdict, mapped back to canonical order, equals the forward one (a consistent tie is
kept as ``both``). By default a row is kept only when both heads are consistent (the paper keeps the
intersection). The report gives retention rates and the win-rate shift of table 8.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .data import DataError

VERDICTS = {"a": "A", "model_a": "A", "b": "B", "model_b": "B", "tie": "tie", "both": "tie", "neither": "tie"}
LABELS = {"A": "model_a", "B": "model_b", "tie": "both"}
HEADS = ("alignment", "musicality")


@dataclass
class HeadStats:
    total: int = 0
    consistent: int = 0
    original: dict[str, int] = field(default_factory=lambda: {"A": 0, "B": 0, "tie": 0})
    reversed: dict[str, int] = field(default_factory=lambda: {"A": 0, "B": 0, "tie": 0})  # canonical order
    agreed: dict[str, int] = field(default_factory=lambda: {"A": 0, "B": 0, "tie": 0})

    def as_dict(self) -> dict[str, Any]:
        def pct(counts: dict[str, int], n: int) -> dict[str, float]:
            return {k: round(100.0 * v / n, 2) if n else 0.0 for k, v in counts.items()}

        return {
            "total": self.total,
            "consistent": self.consistent,
            "retention": self.consistent / self.total if self.total else 0.0,
            "win_rate_original_pct": pct(self.original, self.total),
            "win_rate_reversed_pct": pct(self.reversed, self.total),
            "win_rate_agreed_pct": pct(self.agreed, self.consistent),
            # Shift of clip A's win rate when the order is swapped: 0 for a position-unbiased judge.
            "win_a_shift_pct": round(100.0 * (self.reversed["A"] - self.original["A"]) / self.total, 2)
            if self.total
            else 0.0,
        }


@dataclass
class PseudoLabelReport:
    rows_in: int
    rows_kept: int
    heads: dict[str, HeadStats]

    @property
    def retention(self) -> float:
        return self.rows_kept / self.rows_in if self.rows_in else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_kept": self.rows_kept,
            "retention": self.retention,
            "heads": {k: v.as_dict() for k, v in self.heads.items()},
        }


def _verdict(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if value is None or str(value).strip().lower() not in VERDICTS:
        raise DataError(f"{where}: {key}={value!r} must be one of A, B, tie (or model_a, model_b, both, neither)")
    return VERDICTS[str(value).strip().lower()]


def make_pseudo_labels(
    rows: Iterable[tuple[str, dict[str, Any]]], *, require_all_heads: bool = True, source: str = "pseudo"
) -> tuple[list[dict[str, Any]], PseudoLabelReport]:
    """Filter judged pairs to position-consistent pseudo-labels.

    Args:
        rows: (location for error messages, row) pairs, e.g. from ``data.read_jsonl``.
        require_all_heads: keep a row only when every head is consistent (else keep the consistent heads).
        source: value written to the output rows' ``source`` field.

    Returns:
        (output rows in the CMI-RewardBench schema with ``preference-*`` set, the report).

    Raises:
        DataError: a row lacks a verdict or has an unknown value.
    """
    stats = {h: HeadStats() for h in HEADS}
    kept: list[dict[str, Any]] = []
    total = 0
    swap = {"A": "B", "B": "A", "tie": "tie"}
    for where, row in rows:
        total += 1
        if not row.get("audio-path") or not row.get("audio2"):
            raise DataError(f"{where}: a judged pair needs 'audio-path' and 'audio2'")
        labels: dict[str, str] = {}
        for head in HEADS:
            forward = _verdict(row, f"judge_forward_{head}", where)
            backward = swap[_verdict(row, f"judge_reversed_{head}", where)]  # back to canonical order
            s = stats[head]
            s.total += 1
            s.original[forward] += 1
            s.reversed[backward] += 1
            if forward == backward:
                s.consistent += 1
                s.agreed[forward] += 1
                labels[head] = LABELS[forward]
        if (require_all_heads and len(labels) < len(HEADS)) or not labels:
            continue
        out = {k: v for k, v in row.items() if not k.startswith("judge_")}
        out["source"] = source
        for head in HEADS:
            out[f"preference-{head}"] = labels.get(head)
        kept.append(out)
    return kept, PseudoLabelReport(total, len(kept), stats)
