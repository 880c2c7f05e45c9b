"""Writes to the catalog. Every import path (command, admin, API, demo) calls ``campaign_import``."""

from __future__ import annotations

import datetime as dt
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
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q

from annotate.agreement.services import agreement_snapshot_schedule_on_commit
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
from annotate.catalog.models import Campaign, Clip, ClipRendition, Comparison, Instruction
from annotate.catalog.selectors import campaign_clips, clip_rendition_for
from annotate.errors import ApplicationError
from annotate.labeling.models import AnnotatorProfile, ExternalAnnotator, Vote

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
    labels: RowLabels | None = None
    labels_ignored: str = ""  # why this row's labels make no vote


def campaign_import(
    *,
    manifest_path: Path,
    audio_root: Path,
    campaign_name: str,
    activate: bool = False,
) -> ImportReport:
    """Import a CMI-RewardBench-style JSONL manifest into a campaign, all or nothing.

    Every row is validated (fields, paths, decoding) before anything is written.
    Re-importing the same manifest is idempotent: clips dedupe by sha256, an
    unordered pair appears once per campaign and instruction, and a row's labels
    (``preference-*``, ``confidence_preference-*``, ``user id``, ``source``, feedback,
    split) become one vote of an external annotator, once (see ``annotate.catalog.labels``).

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
    # Audio already in the catalog under another system name is fine: the name belongs to the comparison side.
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
