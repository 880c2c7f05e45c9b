"""CMI-RewardBench JSONL rows -> validated training/evaluation examples.

Row schema (paths relative to the dataset root):

- pairwise rows: ``audio-path``, ``audio2``, ``preference-alignment`` / ``preference-musicality`` (or Music
  Arena's ``preference``, which labels musicality) in {model_a, model_b, both, neither}, optional
  ``confidence_preference-*`` (1-5);
- MOS rows: ``audio-path`` with numeric ``musicality`` and/or ``text-music alignment``;
- both: ``prompt``, ``lyrics``, ``ref-audio-path`` ("" when none), ``prompt id``, ``split``, ``modality``.

Every problem is reported with the file and line number; nothing is silently dropped except tie labels
for training (counted in ``Dataset.ties``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFERENCE_VALUES = {"model_a": 1, "a": 1, "model_b": -1, "b": -1, "both": 0, "neither": 0, "tie": 0}
MODALITY_ALIASES = {
    "T": "T",
    "L": "L",
    "A": "A",
    "C": "C",
    "text": "T",
    "text+lyrics": "L",
    "text+ref": "A",
    "text+lyrics+ref": "C",
}


class DataError(ValueError):
    """A JSONL file or row is unusable; the message names the file and line."""


@dataclass(frozen=True)
class Instruction:
    text: str
    lyrics: str
    ref_audio: Path | None

    @property
    def modality(self) -> str:
        lyrics, ref = bool(self.lyrics.strip()), self.ref_audio is not None
        return "C" if lyrics and ref else "L" if lyrics else "A" if ref else "T"


@dataclass(frozen=True)
class PairExample:
    where: str  # "file:line"
    instruction: Instruction
    audio_a: Path
    audio_b: Path
    alignment: int | None  # +1: A preferred, -1: B preferred, 0: tie, None: unlabelled
    musicality: int | None
    confidence_alignment: float | None
    confidence_musicality: float | None
    modality: str  # T / L / A / C
    row: dict[str, Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class MosExample:
    where: str
    instruction: Instruction
    audio: Path
    alignment: float | None  # "text-music alignment" rating
    musicality: float | None
    modality: str
    row: dict[str, Any] = field(compare=False, repr=False)


@dataclass
class Dataset:
    pairs: list[PairExample] = field(default_factory=list)
    mos: list[MosExample] = field(default_factory=list)
    ties: int = 0  # pair labels that were ties (kept in the rows, excluded from the BT loss)

    def __len__(self) -> int:
        return len(self.pairs) + len(self.mos)

    def audio_paths(self) -> list[Path]:
        paths: dict[Path, None] = {}
        for p in self.pairs:
            paths[p.audio_a] = paths[p.audio_b] = None
        for m in self.mos:
            paths[m.audio] = None
        return list(paths)

    def instructions(self) -> list[Instruction]:
        found: dict[Instruction, None] = {}
        examples: list[PairExample | MosExample] = [*self.pairs, *self.mos]
        for ex in examples:
            found[ex.instruction] = None
        return list(found)


def read_jsonl(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) for every non-blank line; raises DataError naming the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"JSONL file not found: {path}")
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            rows.append((lineno, row))
    return rows


def _text(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    return value


def _preference(row: dict[str, Any], key: str, where: str) -> int | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    normalised = str(value).strip().lower()
    if normalised not in PREFERENCE_VALUES:
        raise DataError(f"{where}: {key}={value!r} is not one of model_a, model_b, both, neither")
    return PREFERENCE_VALUES[normalised]


def _number(row: dict[str, Any], key: str, where: str) -> float | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {key}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise DataError(f"{where}: {key}={value!r} is not finite")
    return number


def resolve(root: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else root / path


def parse_row(row: dict[str, Any], *, where: str, dataset_root: Path) -> PairExample | MosExample:
    """Validate one row and turn it into an example (paths resolved against ``dataset_root``)."""
    audio = _text(row, "audio-path", where)
    if not audio:
        raise DataError(f"{where}: missing 'audio-path'")
    ref = _text(row, "ref-audio-path", where)
    instruction = Instruction(
        text=_text(row, "prompt", where),
        lyrics=_text(row, "lyrics", where),
        ref_audio=resolve(dataset_root, ref) if ref else None,
    )
    declared = row.get("modality")
    if declared not in (None, "") and str(declared).strip() not in MODALITY_ALIASES:
        raise DataError(f"{where}: modality={declared!r} is not one of T, L, A, C")
    modality = MODALITY_ALIASES[str(declared).strip()] if declared not in (None, "") else instruction.modality

    audio2 = _text(row, "audio2", where)
    if audio2:
        alignment = _preference(row, "preference-alignment", where)
        musicality = _preference(row, "preference-musicality", where)
        if musicality is None:
            musicality = _preference(row, "preference", where)  # Music Arena labels musicality
        if alignment is None and musicality is None:
            raise DataError(f"{where}: pair row without 'preference-alignment' or 'preference-musicality'")
        return PairExample(
            where=where,
            instruction=instruction,
            audio_a=resolve(dataset_root, audio),
            audio_b=resolve(dataset_root, audio2),
            alignment=alignment,
            musicality=musicality,
            confidence_alignment=_number(row, "confidence_preference-alignment", where),
            confidence_musicality=_number(row, "confidence_preference-musicality", where),
            modality=modality,
            row=row,
        )
    mos_alignment = _number(row, "text-music alignment", where)
    mos_musicality = _number(row, "musicality", where)
    if mos_alignment is None and mos_musicality is None:
        raise DataError(
            f"{where}: row has neither 'audio2' with preferences nor a 'musicality'/'text-music alignment' rating"
        )
    return MosExample(
        where=where,
        instruction=instruction,
        audio=resolve(dataset_root, audio),
        alignment=mos_alignment,
        musicality=mos_musicality,
        modality=modality,
        row=row,
    )


def load_dataset(
    path: str | Path, *, dataset_root: str | Path, split: str | None = None, check_files: bool = True
) -> Dataset:
    """Read and validate a JSONL file.

    Args:
        path: the JSONL file.
        dataset_root: directory the audio paths are relative to.
        split: keep only rows whose ``split`` equals this (None = all rows).
        check_files: raise if any referenced audio file is missing (listing them with line numbers).

    Returns:
        The pair and MOS examples.

    Raises:
        DataError: bad JSON, bad field values, or missing audio files.
    """
    root = Path(dataset_root)
    dataset = Dataset()
    for lineno, row in read_jsonl(path):
        if split is not None and str(row.get("split", "")) != split:
            continue
        example = parse_row(row, where=f"{path}:{lineno}", dataset_root=root)
        if isinstance(example, PairExample):
            dataset.pairs.append(example)
            dataset.ties += sum(1 for label in (example.alignment, example.musicality) if label == 0)
        else:
            dataset.mos.append(example)
    if check_files:
        check_audio_files(dataset)
    return dataset


def check_audio_files(dataset: Dataset) -> None:
    missing: list[str] = []
    for p in dataset.pairs:
        refs = [p.audio_a, p.audio_b] + ([p.instruction.ref_audio] if p.instruction.ref_audio else [])
        missing += [f"{p.where}: {f}" for f in refs if not f.is_file()]
    for m in dataset.mos:
        refs = [m.audio] + ([m.instruction.ref_audio] if m.instruction.ref_audio else [])
        missing += [f"{m.where}: {f}" for f in refs if not f.is_file()]
    if missing:
        shown = "\n  ".join(missing[:10])
        more = f"\n  ... and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise DataError(f"{len(missing)} audio file(s) not found:\n  {shown}{more}")
