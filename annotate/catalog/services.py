"""Writes to the catalog. Every import path (command, admin, API, demo) calls ``campaign_import``."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from annotate.agreement.services import agreement_snapshot_schedule_on_commit
from annotate.broker import task_publish_on_commit
from annotate.catalog.archives import ArchiveRejected, archive_extract, archive_inspect
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
from annotate.catalog.labels import RowLabels, parse_labels
from annotate.catalog.models import (
    AssignmentStrategy,
    Campaign,
    CampaignImport,
    Clip,
    ClipRendition,
    Comparison,
    Instruction,
)
from annotate.catalog.selectors import campaign_clips, clip_rendition_for
from annotate.errors import ApplicationError, NotFoundError
from annotate.labeling.models import AnnotatorProfile, ExternalAnnotator, Vote

logger = logging.getLogger(__name__)

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
# Called with (fraction done 0..1, what is happening) while an import runs; the browser import shows it.
ImportProgress = Callable[[float, str], None]


def _no_progress(fraction: float, message: str) -> None:
    pass


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
    # Labels carried by the rows (CMI-Pref style), imported as votes of external annotators.
    votes_created: int = 0
    votes_existing: int = 0  # already imported (re-import of the same rows)
    ties: int = 0  # created votes with "no preference" on at least one question
    external_annotators_created: int = 0
    labels_ignored: dict[str, list[int]] = field(default_factory=dict)  # why -> line numbers

    @property
    def labels_ignored_count(self) -> int:
        return sum(len(lines) for lines in self.labels_ignored.values())

    def ignore_labels(self, line: int, why: str) -> None:
        self.labels_ignored.setdefault(why, []).append(line)


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
    is_attention_check: bool = False
    labels: RowLabels | None = None
    labels_ignored: str = ""  # why this row's labels make no vote


def campaign_import(
    *,
    manifest_path: Path,
    audio_root: Path,
    campaign_name: str,
    activate: bool = False,
    progress: ImportProgress = _no_progress,
) -> ImportReport:
    """Import a CMI-RewardBench-style JSONL manifest into a campaign, all or nothing.

    Every row is validated (fields, paths, decoding) before anything is written.
    Re-importing the same manifest is idempotent: clips dedupe by sha256, an
    unordered pair appears once per campaign and instruction, and a row's labels
    (``preference-*``, ``confidence_preference-*``, ``user id``, ``source``, feedback,
    split) become one vote of an external annotator, once (see ``annotate.catalog.labels``).
    ``gold-alignment`` / ``gold-musicality`` (``model_a``/``model_b``) and ``attention_check`` (a boolean,
    as exports write it) make a comparison a gold item or an attention check.

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
    progress(0.05, f"manifest read: {len(rows)} valid row(s)")
    infos, audio_problems = _probe_all(rows, progress)
    problems += audio_problems
    problems += _check_rows(rows, infos)
    if problems:
        raise ImportValidationError(sorted(problems, key=lambda p: p.line))
    written: list[Path] = []
    try:
        renditions = _render_all(rows, infos, campaign_name=campaign_name, written=written, progress=progress)
        progress(0.95, "writing comparisons")
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
    attention = data.get("attention_check")
    if attention is not None and not isinstance(attention, bool):
        problems.append(ImportProblem(number, f"attention_check must be true or false, got {attention!r}"))
    parsed = parse_labels(data)
    problems += [ImportProblem(number, problem) for problem in parsed.problems]
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
            is_attention_check=attention is True,
            labels=parsed.labels,
            labels_ignored=parsed.ignored,
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


def _probe_all(
    rows: list[_Row], progress: ImportProgress = _no_progress
) -> tuple[dict[Path, AudioInfo], list[ImportProblem]]:
    """Decode each distinct file once; report failures on every row that uses it."""
    infos: dict[Path, AudioInfo] = {}
    failures: dict[Path, str] = {}
    problems: list[ImportProblem] = []
    for done, row in enumerate(rows):
        progress(0.05 + 0.45 * done / len(rows), f"checking the audio of row {done + 1} of {len(rows)}")
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
    # Audio already in the catalog under another system name is fine: the name belongs to the comparison side.
    return problems


def _render_all(
    rows: list[_Row],
    infos: dict[Path, AudioInfo],
    *,
    campaign_name: str,
    written: list[Path],
    progress: ImportProgress = _no_progress,
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
    for done, (path, info) in enumerate(infos.items()):
        progress(0.5 + 0.45 * done / len(infos), f"making the presentation audio, {done + 1} of {len(infos)}")
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
            labelled: list[tuple[_Row, Comparison]] = []
            for row in rows:
                comparison = _import_row(campaign, row, clips, report)
                if row.labels is not None:
                    labelled.append((row, comparison))
                elif row.labels_ignored:
                    report.ignore_labels(row.line, row.labels_ignored)
            _import_votes(labelled, clips, report)
        if report.votes_created:
            agreement_snapshot_schedule_on_commit(campaign_id=campaign.pk)
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


def _import_row(campaign: Campaign, row: _Row, clips: dict[Path, Clip], report: ImportReport) -> Comparison:
    clip_a, clip_b = clips[row.audio_a], clips[row.audio_b]
    for clip in (clip_a, clip_b):
        if clip.is_vocal is None:
            clip.is_vocal = row.is_vocal
            clip.save(update_fields=["is_vocal"])
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
        return existing
    comparison = Comparison.objects.create(
        campaign=campaign,
        instruction=instruction,
        clip_a=clip_a,
        clip_b=clip_b,
        system_a=row.model_a,
        system_b=row.model_b,
        gold_alignment=row.gold_alignment,
        gold_musicality=row.gold_musicality,
        is_attention_check=row.is_attention_check,
        source_split=row.labels.split if row.labels else "",
    )
    report.comparisons_created += 1
    report.by_modality[instruction.modality] += 1
    report.systems.update(s for s in (row.model_a, row.model_b) if s)
    report.total_audio_s += clip_a.duration_s + clip_b.duration_s
    return comparison


def _import_votes(labelled: list[tuple[_Row, Comparison]], clips: dict[Path, Clip], report: ImportReport) -> None:
    """Each labelled row as one vote of its external annotator, in the comparison's canonical orientation."""
    annotators: dict[tuple[str, str], User] = {}
    existing = set(
        Vote.objects.filter(comparison__in=[c for _, c in labelled]).values_list("annotator_id", "comparison_id")
    )
    votes: list[Vote] = []
    times: list[dt.datetime | None] = []
    for row, comparison in labelled:
        labels = row.labels
        assert labels is not None
        key = (labels.source, labels.user_id)
        if key not in annotators:
            annotators[key], created = external_annotator_get_or_create(source=labels.source, user_id=labels.user_id)
            report.external_annotators_created += created
        annotator = annotators[key]
        if (annotator.pk, comparison.pk) in existing:
            if any(v.annotator_id == annotator.pk and v.comparison_id == comparison.pk for v in votes):
                report.ignore_labels(row.line, "a second label by the same user id on the same comparison")
            else:
                report.votes_existing += 1
            continue
        existing.add((annotator.pk, comparison.pk))
        votes.append(_vote_from_labels(labels, comparison, annotator, flipped=comparison.clip_a != clips[row.audio_a]))
        times.append(labels.vote_time)
        report.ties += labels.has_tie
    Vote.objects.bulk_create(votes, batch_size=2000)
    report.votes_created = len(votes)
    # auto_now_add stamps the import time on create; a row's own vote_time, where it has one, replaces it.
    timed = [vote for vote, at in zip(votes, times, strict=True) if at is not None]
    for vote, at in zip(timed, [at for at in times if at is not None], strict=True):
        vote.created_at = at
    Vote.objects.bulk_update(timed, ["created_at"], batch_size=2000)


def _vote_from_labels(labels: RowLabels, comparison: Comparison, annotator: User, *, flipped: bool) -> Vote:
    def canonical(choice: str) -> str:
        return {"a": "b", "b": "a"}.get(choice, choice) if flipped else choice

    listened = (labels.listened_b_s, labels.listened_a_s) if flipped else (labels.listened_a_s, labels.listened_b_s)
    return Vote(
        comparison=comparison,
        annotator=annotator,
        alignment_choice=canonical(labels.alignment),
        alignment_confidence=labels.alignment_confidence,
        musicality_choice=canonical(labels.musicality),
        musicality_confidence=labels.musicality_confidence,
        feedback=labels.feedback,
        presented_swapped=labels.presented_swapped != flipped,
        listened_a_s=listened[0],
        listened_b_s=listened[1],
        time_on_task_s=labels.time_on_task_s,
    )


def external_annotator_get_or_create(*, source: str, user_id: str) -> tuple[User, bool]:
    """The pseudonymous account of one external annotator: inactive, unusable password, never offered work."""
    found = ExternalAnnotator.objects.filter(source=source, external_id=user_id).select_related("user").first()
    if found is not None:
        return found.user, False
    digest = hashlib.sha256(f"{source}\x1f{user_id}".encode()).hexdigest()[:20]
    user = User(username=f"external-{digest}", is_active=False)
    user.set_unusable_password()
    user.save()
    ExternalAnnotator.objects.create(user=user, source=source, external_id=user_id)
    AnnotatorProfile.objects.create(user=user)
    return user, True


def instruction_content_hash(*, text: str, lyrics: str, reference_sha: str) -> str:
    """The identity of an instruction: one row per distinct (text, lyrics, reference audio)."""
    return hashlib.sha256("\x1f".join([text, lyrics, reference_sha]).encode("utf-8")).hexdigest()


def _instruction_get_or_create(row: _Row, reference: Clip | None) -> Instruction:
    content_hash = instruction_content_hash(
        text=row.prompt, lyrics=row.lyrics, reference_sha=reference.sha256 if reference else ""
    )
    instruction, created = Instruction.objects.get_or_create(
        content_hash=content_hash,
        defaults={"prompt_id": row.prompt_id, "text": row.prompt, "lyrics": row.lyrics, "reference_clip": reference},
    )
    if created:
        instruction.refresh_from_db(fields=["modality"])
    return instruction


# --- Campaigns: create, settings, status ------------------------------------------------


class CampaignConflict(ApplicationError):
    status = 409
    code = "campaign_conflict"


# Allowed status changes: a draft opens, an active campaign closes (or goes back to draft), a closed one reopens.
_STATUS_TRANSITIONS: dict[str, set[str]] = {
    Campaign.Status.DRAFT: {Campaign.Status.ACTIVE},
    Campaign.Status.ACTIVE: {Campaign.Status.CLOSED, Campaign.Status.DRAFT},
    Campaign.Status.CLOSED: {Campaign.Status.ACTIVE},
}
# What staff may change after creation. The loudness target is fixed at creation: renditions are made for it.
CAMPAIGN_SETTINGS = (
    "name",
    "description",
    "overlap_target",
    "min_listen_seconds",
    "min_listen_fraction",
    "feedback_required",
    "allow_no_preference",
    "assignment_strategy",
    "license",
)


def _campaign_check(campaign: Campaign) -> None:
    """Every rule of a campaign's settings, each refusal naming its field (400)."""

    def refuse(field_name: str, message: str) -> None:
        raise ApplicationError(message, field=field_name, details={field_name: [message]})

    campaign.name = campaign.name.strip()
    if not campaign.name or len(campaign.name) > 200 or "\x00" in campaign.name:
        refuse("name", "The name must have 1 to 200 characters.")
    if Campaign.objects.filter(name=campaign.name).exclude(pk=campaign.pk).exists():
        raise CampaignConflict(f"A campaign named {campaign.name!r} already exists.", field="name")
    if not 1 <= campaign.overlap_target <= 1000:
        refuse("overlap_target", "The overlap target must be between 1 and 1000 votes per comparison.")
    if campaign.min_listen_seconds is not None and not 0 <= campaign.min_listen_seconds <= 3600:
        refuse("min_listen_seconds", "The listening requirement must be between 0 and 3600 seconds, or empty.")
    if campaign.min_listen_fraction is not None and not 0 <= campaign.min_listen_fraction <= 1:
        refuse("min_listen_fraction", "The listening fraction must be between 0 and 1, or empty.")
    if not campaign.license.strip() or len(campaign.license) > 100:
        refuse("license", "The licence must have 1 to 100 characters.")
    if not -40 <= campaign.presentation_loudness_lufs <= -8:
        refuse("presentation_loudness_lufs", "The presentation loudness must be between -40 and -8 LUFS.")
    if not -12 <= campaign.presentation_true_peak_dbtp <= 0:
        refuse("presentation_true_peak_dbtp", "The true-peak ceiling must be between -12 and 0 dBTP.")
    if campaign.assignment_strategy not in AssignmentStrategy.values:
        refuse("assignment_strategy", f"The assignment strategy must be one of {', '.join(AssignmentStrategy.values)}.")
    for text_field in ("description", "license"):
        if "\x00" in getattr(campaign, text_field):
            refuse(text_field, "The text contains a NUL character.")


def _campaign_save(campaign: Campaign, update_fields: list[str] | None = None) -> Campaign:
    _campaign_check(campaign)
    try:
        with transaction.atomic():
            campaign.save(update_fields=update_fields)
    except IntegrityError:  # a concurrent create took the name between the check and the insert
        raise CampaignConflict(f"A campaign named {campaign.name!r} already exists.", field="name") from None
    return campaign


def campaign_create(
    *,
    name: str,
    description: str = "",
    overlap_target: int = 3,
    min_listen_seconds: float | None = 10.0,
    min_listen_fraction: float | None = 0.5,
    feedback_required: bool = True,
    allow_no_preference: bool = False,
    assignment_strategy: str = AssignmentStrategy.BALANCED,
    license: str = "CC-BY-NC-SA-4.0",
    presentation_loudness_lufs: float = -18.0,
    presentation_true_peak_dbtp: float = -1.0,
) -> Campaign:
    """A new campaign, as a draft with no comparisons (import a manifest into it next).

    Raises:
        ApplicationError: a setting out of range, naming its field (400); CampaignConflict: the name is taken (409).
    """
    campaign = Campaign(
        name=name,
        description=description,
        overlap_target=overlap_target,
        min_listen_seconds=min_listen_seconds,
        min_listen_fraction=min_listen_fraction,
        feedback_required=feedback_required,
        allow_no_preference=allow_no_preference,
        assignment_strategy=assignment_strategy,
        license=license,
        presentation_loudness_lufs=presentation_loudness_lufs,
        presentation_true_peak_dbtp=presentation_true_peak_dbtp,
    )
    return _campaign_save(campaign)


def campaign_update(*, campaign: Campaign, changes: dict[str, Any]) -> Campaign:
    """Change some of a campaign's settings (``CAMPAIGN_SETTINGS``); the others stay as they are.

    Raises:
        ApplicationError: an unknown or read-only setting, or a value out of range, naming its field (400).
        CampaignConflict: the new name is taken (409).
    """
    unknown = sorted(set(changes) - set(CAMPAIGN_SETTINGS))
    if unknown:
        raise ApplicationError(f"{unknown[0]!r} cannot be changed here.", field=unknown[0])
    for name, value in changes.items():
        setattr(campaign, name, value)
    if not changes:
        return campaign
    return _campaign_save(campaign, update_fields=list(changes))


def campaign_status_set(*, campaign: Campaign, status: str) -> Campaign:
    """Open (``active``), close (``closed``) or take back to ``draft``; setting the current status does nothing.

    Raises:
        CampaignConflict: a change that is not allowed, an empty campaign opened, or a concurrent change (409).
    """
    if status == campaign.status:
        return campaign
    if status not in _STATUS_TRANSITIONS.get(campaign.status, set()):
        raise CampaignConflict(f"A {campaign.status} campaign cannot become {status}.", field="status")
    if status == Campaign.Status.ACTIVE and not campaign.comparisons.exists():
        raise CampaignConflict("The campaign has no comparisons yet: import a manifest first.", field="status")
    changed = Campaign.objects.filter(pk=campaign.pk, status=campaign.status).update(status=status)
    if not changed:
        raise CampaignConflict("The campaign's status changed meanwhile; reload and try again.", field="status")
    campaign.status = status
    return campaign


# --- Gold items and attention checks ------------------------------------------------------


def comparison_gold_set(
    *, comparison: Comparison, gold_alignment: str, gold_musicality: str, is_attention_check: bool
) -> Comparison:
    """Mark a comparison gold (its right answers, canonical sides ``a``/``b``, or "" for none) and/or an attention
    check. An attention check needs at least one gold answer, or it checks nothing.

    Raises:
        ApplicationError: a value other than "", "a" or "b", or an attention check without an answer (400).
    """
    for name, value in (("gold_alignment", gold_alignment), ("gold_musicality", gold_musicality)):
        if value not in ("", "a", "b"):
            raise ApplicationError(f"{name} must be 'a', 'b' or empty, got {value!r}.", field=name)
    if is_attention_check and not (gold_alignment or gold_musicality):
        message = "An attention check needs the right answer to at least one question."
        raise ApplicationError(message, field="is_attention_check")
    comparison.gold_alignment = gold_alignment
    comparison.gold_musicality = gold_musicality
    comparison.is_attention_check = is_attention_check
    comparison.save(update_fields=["gold_alignment", "gold_musicality", "is_attention_check"])
    return comparison


# --- Imports from the browser: stage the upload, unpack safely, import in a worker ------------------


class ImportSourceInvalid(ApplicationError):
    code = "import_source_invalid"


class ImportTooLarge(ApplicationError):
    status = 413
    code = "too_large"


def import_server_folders() -> list[Path]:
    """Folders directly under the allow-listed ``IMPORT_SERVER_ROOTS`` that hold a ``manifest.jsonl``."""
    folders: list[Path] = []
    for root in settings.IMPORT_SERVER_ROOTS:
        base = Path(root).resolve()
        if base.is_dir():
            folders += sorted(p for p in base.iterdir() if p.is_dir() and (p / "manifest.jsonl").is_file())
    return folders


def _server_folder_resolve(folder: str) -> Path:
    """The folder, resolved, if it lies under one of ``IMPORT_SERVER_ROOTS``; anything else looks the same: 404."""
    try:
        candidate = Path(folder).resolve()
    except (OSError, ValueError):  # NUL bytes, loops
        candidate = None
    roots = [Path(root).resolve() for root in settings.IMPORT_SERVER_ROOTS]
    if candidate is None or not any(candidate.is_relative_to(r) for r in roots) or not candidate.is_dir():
        raise NotFoundError(f"No folder {folder!r} under an allowed import root.", field="server_folder")
    return candidate


def _upload_save(upload: Any, destination: Path) -> None:
    with destination.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)


def _import_dir(campaign_import_id: int) -> Path:
    return Path(settings.IMPORT_WORK_ROOT) / f"import-{campaign_import_id}"


def campaign_import_create(
    *,
    campaign: Campaign,
    requested_by: User | None,
    manifest: Any = None,
    archive: Any = None,
    server_folder: str = "",
    enqueue: bool = True,
) -> CampaignImport:
    """Check and stage an import of a manifest and its audio, then queue it for a worker.

    ``manifest`` and ``archive`` are uploaded files (Django's ``UploadedFile``); instead of an archive, a
    ``server_folder`` under ``IMPORT_SERVER_ROOTS`` may hold the audio (and ``manifest.jsonl`` if no manifest
    is uploaded). The archive's member list is checked here, so an unsafe archive is refused at once.

    Raises:
        ImportSourceInvalid / ArchiveRejected: missing or conflicting inputs, an unsafe archive (400).
        NotFoundError: the server folder is not under an allowed import root (404).
        ImportTooLarge: an upload over its size limit (413).
        BrokerUnavailable: the task queue can't be reached; the import is recorded as failed.
    """
    if (archive is None) == (not server_folder):
        raise ImportSourceInvalid("Give either an archive of the audio or a server folder, not both.", field="archive")
    folder = _server_folder_resolve(server_folder) if server_folder else None
    if manifest is None and (folder is None or not (folder / "manifest.jsonl").is_file()):
        raise ImportSourceInvalid("Upload a manifest (JSONL, one comparison per line).", field="manifest")
    for name, upload, limit in (
        ("manifest", manifest, settings.IMPORT_MANIFEST_MAX_BYTES),
        ("archive", archive, settings.IMPORT_ARCHIVE_MAX_BYTES),
    ):
        if upload is not None and upload.size > limit:
            raise ImportTooLarge(f"The {name} has {upload.size} bytes; the limit is {limit}.", field=name)
    campaign_import_stale_reap(stale_after_s=settings.IMPORT_STALE_AFTER_S)
    staging: Path | None = None
    try:
        with transaction.atomic():
            row = CampaignImport.objects.create(
                campaign=campaign,
                requested_by=requested_by,
                manifest_name=(manifest.name if manifest is not None else "manifest.jsonl")[:255],
                archive_name=(archive.name or "archive")[:255] if archive is not None else "",
                server_folder=str(folder or ""),
            )
            staging = _import_dir(row.pk)
            staging.mkdir(parents=True, exist_ok=False)
            if manifest is not None:
                _upload_save(manifest, staging / "manifest.jsonl")
            else:
                assert folder is not None
                shutil.copyfile(folder / "manifest.jsonl", staging / "manifest.jsonl")
            if archive is not None:
                _upload_save(archive, staging / "archive")
                archive_inspect(staging / "archive")
            if enqueue:
                _import_enqueue(row)
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return row


def campaign_import_stale_reap(*, stale_after_s: float) -> int:
    """Fail running imports whose worker died (no progress for ``stale_after_s``) and drop their staged files.

    Nothing of such an import was written (``campaign_import`` is all or nothing), so failing it loses
    nothing; staff start it again. Returns the number of imports failed.
    """
    cutoff = timezone.now() - dt.timedelta(seconds=stale_after_s)
    failed = 0
    for row in CampaignImport.objects.filter(status=CampaignImport.Status.RUNNING, heartbeat_at__lt=cutoff):
        failed += CampaignImport.objects.filter(
            pk=row.pk, status=CampaignImport.Status.RUNNING, heartbeat_at=row.heartbeat_at
        ).update(
            status=CampaignImport.Status.FAILED,
            progress_message="failed",
            finished_at=timezone.now(),
            error=f"The worker stopped during this import (no progress since {row.heartbeat_at:%Y-%m-%d %H:%M} "
            "UTC); nothing was imported. Start it again.",
        )
        shutil.rmtree(_import_dir(row.pk), ignore_errors=True)
    return failed


def _import_enqueue(row: CampaignImport) -> None:
    from annotate.catalog.tasks import campaign_import_run_task  # the task module imports this one

    def fail(reason: str) -> None:
        CampaignImport.objects.filter(pk=row.pk, status=CampaignImport.Status.QUEUED).update(
            status=CampaignImport.Status.FAILED, error=reason, progress_message="failed", finished_at=timezone.now()
        )
        shutil.rmtree(_import_dir(row.pk), ignore_errors=True)

    task_publish_on_commit(campaign_import_run_task, args=[row.pk], on_failure=fail)


def campaign_import_run(*, campaign_import_id: int) -> CampaignImport:
    """Claim a queued import, unpack its archive, run ``campaign_import`` and record the outcome.

    Idempotent: a second call on a claimed row does nothing. The staged files are removed at the end
    either way; a failure keeps every manifest problem with its line number in ``problems``.
    """
    now = timezone.now()
    claimed = CampaignImport.objects.filter(pk=campaign_import_id, status=CampaignImport.Status.QUEUED).update(
        status=CampaignImport.Status.RUNNING, started_at=now, heartbeat_at=now, progress_message="starting"
    )
    row = CampaignImport.objects.select_related("campaign").get(pk=campaign_import_id)
    if not claimed:
        return row
    staging = _import_dir(row.pk)
    progress = _ImportProgressWriter(row.pk)
    outcome: dict[str, Any] = {"status": CampaignImport.Status.FAILED}
    try:
        audio_root = Path(row.server_folder) if row.server_folder else staging / "audio"
        if not row.server_folder:
            progress(0.0, "unpacking the archive")
            archive_extract(staging / "archive", audio_root)
        report = campaign_import(
            manifest_path=staging / "manifest.jsonl",
            audio_root=audio_root,
            campaign_name=row.campaign.name,
            progress=lambda fraction, message: progress(0.1 + 0.9 * fraction, message),
        )
        outcome = {"status": CampaignImport.Status.SUCCEEDED, "report": _report_dict(report), "progress": 1.0}
    except ImportValidationError as exc:
        outcome["problems"] = [{"line": p.line, "message": p.message} for p in exc.problems]
        outcome["error"] = exc.message
    except ArchiveRejected as exc:
        outcome["error"] = exc.message
    except Exception as exc:
        logger.exception("import %s failed", row.pk)
        outcome["error"] = f"The import failed unexpectedly ({type(exc).__name__}); nothing was imported."
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    CampaignImport.objects.filter(pk=row.pk).update(
        progress_message=str(outcome["status"]), finished_at=timezone.now(), **outcome
    )
    row.refresh_from_db()
    return row


class _ImportProgressWriter:
    """Writes progress to the row at most twice a second, so a large import doesn't hammer the database."""

    def __init__(self, campaign_import_id: int) -> None:
        self.pk = campaign_import_id
        self.last = 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self.last < 0.5:
            return
        self.last = now
        CampaignImport.objects.filter(pk=self.pk).update(
            progress=min(max(fraction, 0.0), 1.0), progress_message=message[:200], heartbeat_at=timezone.now()
        )


def _report_dict(report: ImportReport) -> dict[str, Any]:
    return {
        "rows": report.rows,
        "comparisons_created": report.comparisons_created,
        "comparisons_existing": report.comparisons_existing,
        "clips_created": report.clips_created,
        "clips_existing": report.clips_existing,
        "renditions_created": report.renditions_created,
        "votes_created": report.votes_created,
        "votes_existing": report.votes_existing,
        "labels_ignored": report.labels_ignored_count,
        "by_modality": dict(report.by_modality),
        "total_audio_s": round(report.total_audio_s, 1),
    }
