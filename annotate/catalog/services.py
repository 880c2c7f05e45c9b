"""Writes to the catalog. Every import path (command, admin, API, demo) calls ``campaign_import``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from annotate.catalog.audio import (
    PRESENTATION_EXTENSION,
    PRESENTATION_PROFILE,
    AudioError,
    AudioInfo,
    Rendition,
    RenditionError,
    probe_audio,
    render_presentation,
)
from annotate.catalog.models import Campaign, Clip, ClipRendition, Comparison, Instruction
from annotate.catalog.selectors import campaign_clips, clip_rendition_for
from annotate.errors import ApplicationError

REQUIRED_FIELDS = ("audio-path", "audio2", "prompt")
# Text fields and their limits: the database's column sizes, and settings for the free texts.
_TEXT_LIMITS = {
    "prompt": lambda: settings.IMPORT_PROMPT_MAX_CHARS,
    "lyrics": lambda: settings.IMPORT_LYRICS_MAX_CHARS,
    "prompt id": lambda: 200,
    "model_a": lambda: 200,
    "model_b": lambda: 200,
    "audio-path": lambda: 1000,
    "audio2": lambda: 1000,
    "ref-audio-path": lambda: 1000,
}
_PREFERENCE_SIDES = {"model_a": "a", "model_b": "b"}


@dataclass(frozen=True)
class ImportProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportValidationError(ApplicationError):
    """The manifest has problems; nothing was written. ``details["problems"]`` lists each with its line."""

    code = "import_invalid"

    def __init__(self, problems: list[ImportProblem]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) in the manifest; nothing was imported",
            details={"problems": [{"line": p.line, "message": p.message} for p in problems]},
        )


@dataclass
class ImportReport:
    campaign: Campaign
    campaign_created: bool
    rows: int = 0
    comparisons_created: int = 0
    comparisons_existing: int = 0
    clips_created: int = 0
    clips_existing: int = 0
    by_modality: Counter[str] = field(default_factory=Counter)
    systems: Counter[str] = field(default_factory=Counter)
    total_audio_s: float = 0.0
    renditions_created: int = 0


@dataclass(frozen=True)
class _Row:
    line: int
    audio_a: Path
    audio_b: Path
    reference: Path | None
    prompt: str
    lyrics: str
    prompt_id: str
    model_a: str
    model_b: str
    is_vocal: bool
    gold_alignment: str
    gold_musicality: str


def campaign_import(
    *,
    manifest_path: Path,
    audio_root: Path,
    campaign_name: str,
    activate: bool = False,
) -> ImportReport:
    """Import a CMI-RewardBench-style JSONL manifest into a campaign, all or nothing.

    Every row is validated (fields, paths, decoding) before anything is written.
    Re-importing the same manifest is idempotent: clips dedupe by sha256 and an
    unordered pair appears once per campaign and instruction.

    Raises:
        ImportValidationError: with every problem and its line number.
    """
    campaign_name = campaign_name.strip()
    if not campaign_name or len(campaign_name) > 200 or "\x00" in campaign_name:
        raise ImportValidationError([ImportProblem(0, "the campaign name must have 1 to 200 characters")])
    audio_root = Path(audio_root).resolve()
    if not audio_root.is_dir():
        raise ImportValidationError([ImportProblem(0, f"audio root {audio_root} is not a directory")])
    rows, problems = _parse_manifest(Path(manifest_path), audio_root)
    infos, audio_problems = _probe_all(rows)
    problems += audio_problems
    problems += _check_rows(rows, infos)
    if problems:
        raise ImportValidationError(sorted(problems, key=lambda p: p.line))
    written: list[Path] = []
    try:
        renditions = _render_all(rows, infos, campaign_name=campaign_name, written=written)
        return _write(rows, infos, renditions, campaign_name=campaign_name, activate=activate)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _parse_manifest(manifest_path: Path, audio_root: Path) -> tuple[list[_Row], list[ImportProblem]]:
    if not manifest_path.is_file():
        return [], [ImportProblem(0, f"manifest {manifest_path} does not exist")]
    rows: list[_Row] = []
    problems: list[ImportProblem] = []
    with manifest_path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(ImportProblem(number, f"not valid UTF-8 (byte {exc.start})"))
                continue
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(ImportProblem(number, f"malformed JSON: {exc.msg} at column {exc.colno}"))
                continue
            except RecursionError:
                problems.append(ImportProblem(number, "malformed JSON: nested too deeply"))
                continue
            if not isinstance(data, dict):
                problems.append(ImportProblem(number, "each line must be a JSON object"))
                continue
            row, row_problems = _parse_row(number, data, audio_root)
            problems += row_problems
            if row is not None:
                rows.append(row)
    if not rows and not problems:
        problems.append(ImportProblem(0, "the manifest has no rows"))
    return rows, problems


def _parse_row(number: int, data: dict[str, Any], audio_root: Path) -> tuple[_Row | None, list[ImportProblem]]:
    problems = [
        ImportProblem(number, f"missing required field {name!r}")
        for name in REQUIRED_FIELDS
        if not isinstance(data.get(name), str) or not data[name].strip()
    ]
    for name in ("lyrics", "ref-audio-path", "model_a", "model_b"):
        if data.get(name) is not None and not isinstance(data[name], str):
            problems.append(ImportProblem(number, f"field {name!r} must be a string"))
    problems += _text_problems(number, data)
    if problems:
        return None, problems
    paths: dict[str, Path | None] = {}
    for name in ("audio-path", "audio2", "ref-audio-path"):
        relative = (data.get(name) or "").strip()
        if not relative:
            paths[name] = None
            continue
        resolved = _resolve_inside(audio_root, relative)
        if resolved is None:
            problems.append(ImportProblem(number, f"{name} {relative!r} escapes the audio root"))
        paths[name] = resolved
    vocal, vocal_problem = _parse_vocal(data)
    if vocal_problem:
        problems.append(ImportProblem(number, vocal_problem))
    gold = {}
    for question in ("alignment", "musicality"):
        value = data.get(f"gold-{question}") or ""
        if value and value not in _PREFERENCE_SIDES:
            problems.append(ImportProblem(number, f"gold-{question} must be 'model_a' or 'model_b', got {value!r}"))
        gold[question] = _PREFERENCE_SIDES.get(value, "")
    if problems:
        return None, problems
    lyrics = (data.get("lyrics") or "").strip()
    audio_a, audio_b = paths["audio-path"], paths["audio2"]
    assert audio_a is not None and audio_b is not None  # required fields checked above
    return (
        _Row(
            line=number,
            audio_a=audio_a,
            audio_b=audio_b,
            reference=paths["ref-audio-path"],
            prompt=data["prompt"].strip(),
            lyrics=lyrics,
            prompt_id=str(data.get("prompt id") or "").strip(),
            model_a=(data.get("model_a") or "").strip(),
            model_b=(data.get("model_b") or "").strip(),
            is_vocal=bool(lyrics) if vocal is None else vocal,
            gold_alignment=gold["alignment"],
            gold_musicality=gold["musicality"],
        ),
        [],
    )


def _text_problems(number: int, data: dict[str, Any]) -> list[ImportProblem]:
    """What PostgreSQL would refuse in a text field (NUL, lone surrogates, over-long), as row errors."""
    problems = []
    for name, limit in _TEXT_LIMITS.items():
        value = data.get(name)
        if not isinstance(value, str | int) or isinstance(value, bool):
            continue
        text = str(value)
        if "\x00" in text:
            problems.append(ImportProblem(number, f"field {name!r} contains a NUL character"))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            problems.append(ImportProblem(number, f"field {name!r} is not valid Unicode (character {exc.start})"))
        if len(text) > limit():
            problems.append(ImportProblem(number, f"field {name!r} has {len(text)} characters; the limit is {limit()}"))
    return problems


def _resolve_inside(root: Path, relative: str) -> Path | None:
    candidate = (root / relative).resolve()
    return candidate if candidate.is_relative_to(root) else None


def _parse_vocal(data: dict[str, Any]) -> tuple[bool | None, str]:
    """The optional vocal flag: ``vocal`` (bool or "vocal"/"instrumental") or ``instrumental`` (bool)."""
    if "vocal" in data and data["vocal"] is not None:
        value = data["vocal"]
        if isinstance(value, bool):
            return value, ""
        if value in ("vocal", "instrumental"):
            return value == "vocal", ""
        return None, f"vocal must be true/false or 'vocal'/'instrumental', got {value!r}"
    if "instrumental" in data and data["instrumental"] is not None:
        if isinstance(data["instrumental"], bool):
            return not data["instrumental"], ""
        return None, f"instrumental must be true or false, got {data['instrumental']!r}"
    return None, ""


def _probe_all(rows: list[_Row]) -> tuple[dict[Path, AudioInfo], list[ImportProblem]]:
    """Decode each distinct file once; report failures on every row that uses it."""
    infos: dict[Path, AudioInfo] = {}
    failures: dict[Path, str] = {}
    problems: list[ImportProblem] = []
    for row in rows:
        for label, path in (("audio-path", row.audio_a), ("audio2", row.audio_b), ("ref-audio-path", row.reference)):
            if path is None:
                continue
            if path not in infos and path not in failures:
                failures_or_info = _probe_one(path)
                if isinstance(failures_or_info, AudioInfo):
                    infos[path] = failures_or_info
                else:
                    failures[path] = failures_or_info
            if path in failures:
                problems.append(ImportProblem(row.line, f"{label} {path.name!r}: {failures[path]}"))
    return infos, problems


def _probe_one(path: Path) -> AudioInfo | str:
    if not path.exists():
        return "file not found"
    if not path.is_file() or not os.access(path, os.R_OK):
        return "file is not a readable regular file"
    try:
        return probe_audio(path)
    except AudioError as exc:
        return str(exc)


def _check_rows(rows: list[_Row], infos: dict[Path, AudioInfo]) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    systems_by_sha: dict[str, tuple[str, int]] = {}
    for row in rows:
        info_a, info_b = infos.get(row.audio_a), infos.get(row.audio_b)
        if row.audio_a == row.audio_b or (info_a and info_b and info_a.sha256 == info_b.sha256):
            problems.append(ImportProblem(row.line, "audio-path and audio2 are the same audio"))
        for info, system in ((info_a, row.model_a), (info_b, row.model_b)):
            if info is None or not system:
                continue
            seen = systems_by_sha.setdefault(info.sha256, (system, row.line))
            if seen[0] != system:
                message = f"the same audio is named {system!r} here and {seen[0]!r} on line {seen[1]}"
                problems.append(ImportProblem(row.line, message))
    existing = Clip.objects.filter(sha256__in=list(systems_by_sha)).exclude(system="").values_list("sha256", "system")
    for sha, system in existing:
        new_system, line = systems_by_sha[sha]
        if new_system != system:
            problems.append(ImportProblem(line, f"this audio is already in the catalog as system {system!r}"))
    return problems


def _render_all(
    rows: list[_Row], infos: dict[Path, AudioInfo], *, campaign_name: str, written: list[Path]
) -> dict[Path, tuple[str, Rendition]]:
    """Make each missing presentation rendition before the transaction, so it stays short; all or nothing."""
    campaign = Campaign.objects.filter(name=campaign_name).first() or Campaign(name=campaign_name)
    target, ceiling = campaign.presentation_loudness_lufs, campaign.presentation_true_peak_dbtp
    present = set(
        ClipRendition.objects.filter(
            clip__sha256__in=[info.sha256 for info in infos.values()],
            profile=PRESENTATION_PROFILE,
            target_lufs=target,
            ceiling_dbtp=ceiling,
        ).values_list("clip__sha256", flat=True)
    )
    renditions: dict[Path, tuple[str, Rendition]] = {}
    problems: list[ImportProblem] = []
    for path, info in infos.items():
        if info.sha256 in present:
            continue
        present.add(info.sha256)  # the same audio under two paths is one clip with one rendition
        try:
            rendition = render_presentation(path, target_lufs=target, ceiling_dbtp=ceiling)
        except RenditionError as exc:
            line = next(row.line for row in rows if path in (row.audio_a, row.audio_b, row.reference))
            problems.append(ImportProblem(line, f"{path.name!r}: no presentation rendition ({exc})"))
            continue
        relative, created = _rendition_file_write(rendition)
        if created:
            written.append(Path(settings.MEDIA_ROOT) / relative)
        renditions[path] = (relative, rendition)
    if problems:
        raise ImportValidationError(problems)
    return renditions


def _rendition_file_write(rendition: Rendition) -> tuple[str, bool]:
    """Store the rendition content-addressed under MEDIA_ROOT; returns (relative path, newly written)."""
    relative = Path("renditions") / rendition.sha256[:2] / f"{rendition.sha256}{PRESENTATION_EXTENSION}"
    destination = Path(settings.MEDIA_ROOT) / relative
    if destination.exists():
        return str(relative), False
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=destination.parent, suffix=".part")
    with os.fdopen(fd, "wb") as handle:
        handle.write(rendition.data)
    os.replace(temp_name, destination)
    return str(relative), True


def _rendition_row_create(
    clip: Clip, relative: str, rendition: Rendition, *, target_lufs: float, ceiling_dbtp: float
) -> ClipRendition:
    row = clip_rendition_row(clip, relative, rendition, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp)
    row.save(force_insert=True)
    return row


def clip_rendition_row(
    clip: Clip, relative: str, rendition: Rendition, *, target_lufs: float, ceiling_dbtp: float
) -> ClipRendition:
    """The (unsaved) row describing ``rendition`` of ``clip`` stored at ``relative`` under MEDIA_ROOT."""
    return ClipRendition(
        clip=clip,
        profile=PRESENTATION_PROFILE,
        target_lufs=target_lufs,
        ceiling_dbtp=ceiling_dbtp,
        file=relative,
        sha256=rendition.sha256,
        size_bytes=len(rendition.data),
        duration_s=rendition.duration_s,
        audio_offset_bytes=rendition.audio_offset_bytes,
        byte_rate=rendition.byte_rate,
        loudness_lufs=rendition.loudness_lufs,
        true_peak_dbtp=rendition.true_peak_dbtp,
        gain_db=rendition.gain_db,
        limited=rendition.limited,
    )


def clip_rendition_ensure(*, clip: Clip, campaign: Campaign) -> tuple[ClipRendition, bool]:
    """The clip's presentation rendition for the campaign's loudness target, made if missing.

    Returns the rendition and whether this call made it. Safe to run twice at once: the file is
    content-addressed and the row unique, so the loser of a race returns the winner's row.

    Raises:
        RenditionError: the original is missing, undecodable or silent.
    """
    existing = clip_rendition_for(clip=clip, campaign=campaign)
    if existing is not None:
        return existing, False
    root = Path(settings.MEDIA_ROOT).resolve()
    source = (root / str(clip.file.name or "")).resolve()
    # A crafted or corrupted path must not turn a file outside MEDIA_ROOT into something annotators hear.
    if not clip.file.name or not source.is_relative_to(root) or not source.is_file():
        raise RenditionError(f"the original of {clip} is missing from MEDIA_ROOT")
    target, ceiling = campaign.presentation_loudness_lufs, campaign.presentation_true_peak_dbtp
    rendition = render_presentation(source, target_lufs=target, ceiling_dbtp=ceiling)
    relative, _ = _rendition_file_write(rendition)
    try:
        with transaction.atomic():
            row = _rendition_row_create(clip, relative, rendition, target_lufs=target, ceiling_dbtp=ceiling)
    except IntegrityError:
        winner = clip_rendition_for(clip=clip, campaign=campaign)
        assert winner is not None  # the unique constraint fired, so the row exists
        return winner, False
    return row, True


def campaign_renditions_make(*, campaign: Campaign) -> Iterator[tuple[int, int, Clip, ClipRendition | str, bool]]:
    """Ensure every clip of the campaign has its rendition; yields (index, total, clip, rendition or error, made)."""
    clips = list(campaign_clips(campaign=campaign))
    for index, clip in enumerate(clips, start=1):
        try:
            rendition, made = clip_rendition_ensure(clip=clip, campaign=campaign)
        except RenditionError as exc:
            yield index, len(clips), clip, str(exc), False
            continue
        yield index, len(clips), clip, rendition, made


def _write(
    rows: list[_Row],
    infos: dict[Path, AudioInfo],
    renditions: dict[Path, tuple[str, Rendition]],
    *,
    campaign_name: str,
    activate: bool,
) -> ImportReport:
    copied: list[Path] = []
    try:
        with transaction.atomic():
            campaign, created = Campaign.objects.get_or_create(name=campaign_name)
            if activate and campaign.status != Campaign.Status.ACTIVE:
                campaign.status = Campaign.Status.ACTIVE
                campaign.save(update_fields=["status"])
            report = ImportReport(campaign=campaign, campaign_created=created)
            clips: dict[Path, Clip] = {}
            for path, info in infos.items():
                clips[path] = _clip_get_or_create(path, info, report, copied)
            for path, (relative, rendition) in renditions.items():
                _rendition_row_create(
                    clips[path],
                    relative,
                    rendition,
                    target_lufs=campaign.presentation_loudness_lufs,
                    ceiling_dbtp=campaign.presentation_true_peak_dbtp,
                )
                report.renditions_created += 1
            for row in rows:
                _import_row(campaign, row, clips, report)
    except BaseException:
        for path in copied:
            path.unlink(missing_ok=True)
        raise
    return report


def _clip_get_or_create(path: Path, info: AudioInfo, report: ImportReport, copied: list[Path]) -> Clip:
    clip = Clip.objects.filter(sha256=info.sha256).first()
    if clip is not None:
        report.clips_existing += 1
        return clip
    relative = Path("clips") / info.sha256[:2] / f"{info.sha256}{path.suffix.lower()}"
    destination = Path(settings.MEDIA_ROOT) / relative
    if not destination.exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        # Copy under a temporary name, then rename: a crash never leaves a half-written clip.
        fd, temp_name = tempfile.mkstemp(dir=destination.parent, suffix=".part")
        os.close(fd)
        shutil.copyfile(path, temp_name)
        os.replace(temp_name, destination)
        copied.append(destination)
    report.clips_created += 1
    return Clip.objects.create(
        sha256=info.sha256,
        file=str(relative),
        format=info.format,
        duration_s=info.duration_s,
        sample_rate=info.sample_rate,
        channels=info.channels,
        original_name=path.name,
        peaks=info.peaks,
    )


def _import_row(campaign: Campaign, row: _Row, clips: dict[Path, Clip], report: ImportReport) -> None:
    clip_a, clip_b = clips[row.audio_a], clips[row.audio_b]
    for clip, system in ((clip_a, row.model_a), (clip_b, row.model_b)):
        changed = []
        if system and not clip.system:
            clip.system = system
            changed.append("system")
        if clip.is_vocal is None:
            clip.is_vocal = row.is_vocal
            changed.append("is_vocal")
        if changed:
            clip.save(update_fields=changed)
    reference = clips[row.reference] if row.reference else None
    instruction = _instruction_get_or_create(row, reference)
    report.rows += 1
    existing = (
        Comparison.objects.filter(campaign=campaign, instruction=instruction)
        .filter(Q(clip_a=clip_a, clip_b=clip_b) | Q(clip_a=clip_b, clip_b=clip_a))
        .first()
    )
    if existing is not None:
        report.comparisons_existing += 1
        return
    Comparison.objects.create(
        campaign=campaign,
        instruction=instruction,
        clip_a=clip_a,
        clip_b=clip_b,
        gold_alignment=row.gold_alignment,
        gold_musicality=row.gold_musicality,
    )
    report.comparisons_created += 1
    report.by_modality[instruction.modality] += 1
    report.systems.update(s for s in (row.model_a, row.model_b) if s)
    report.total_audio_s += clip_a.duration_s + clip_b.duration_s


def _instruction_get_or_create(row: _Row, reference: Clip | None) -> Instruction:
    content = "\x1f".join([row.prompt, row.lyrics, reference.sha256 if reference else ""])
    content_hash = hashlib.sha256(content.encode("utf-8")).hexdigest()
    instruction, created = Instruction.objects.get_or_create(
        content_hash=content_hash,
        defaults={"prompt_id": row.prompt_id, "text": row.prompt, "lyrics": row.lyrics, "reference_clip": reference},
    )
    if created:
        instruction.refresh_from_db(fields=["modality"])
    return instruction
