"""Dataset exports of a campaign's votes: CMI-Pref-style splits in CMI-RewardBench JSONL.

Every export path (staff page, REST API, ``manage.py export_campaign``, the Celery task)
goes through ``export_create`` (validate, record a queued Export) and ``export_run``
(claim the row, build the files in a temporary directory, publish by rename).

Layout of a finished export, ``export_dir_for(export)`` = ``EXPORT_ROOT/export-<id>/``::

    votes.jsonl          one row per vote, every split, with a "split" field
    train.jsonl          the same rows, one file per split (same schema, same order)
    validation.jsonl
    test.jsonl
    comparisons.jsonl    one row per comparison: aggregated label (majority, soft label, counts, mean confidence)
    audio/<sha256>.<ext> every clip and reference clip, named by content hash
    manifest.json        parameters and seed, counts per split x modality x vocal, agreement, sha256 of every file
    README.md            data card: fields, splits, licence, counts

Audio paths inside the JSONL (``audio-path``, ``audio2``, ``ref-audio-path``) are relative to
the export directory. Rows are sorted by comparison, then vote, so the same data and
parameters give byte-identical JSONL. With ``archive`` set, ``EXPORT_ROOT/export-<id>.tar.gz``
(or ``.zip``) holds the directory, built reproducibly (sorted members, fixed times).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from annotate.agreement.selectors import ComparisonLabel, agreement_summary, comparison_labels, flagged_annotator_ids
from annotate.catalog.models import Campaign
from annotate.exports import datacard
from annotate.exports.models import Export
from annotate.exports.selectors import ComparisonFacts, export_comparison_facts, export_dir_for, export_votes
from annotate.exports.splits import SPLITS, SplitItem, SplitPlan, assign_splits, vocal_label
from annotate.labeling.models import AnnotatorProfile, Vote
from cmi_common.hashing import files_sha256

logger = logging.getLogger(__name__)

SOURCE = "cmi-arena-annotation"
PREFERENCE = {"a": "model_a", "b": "model_b", "tie": "both"}
AUDIO_MODES = ("hardlink", "copy")
ARCHIVE_FORMATS = ("tar.gz", "zip", "none")
_PROGRESS_EVERY_S = 0.5


class ExportParameterError(Exception):
    """Parameters that can't be satisfied; ``errors`` maps a parameter name to the reason."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in errors.items()))


class ExportError(Exception):
    """The export could not be built; nothing was published."""


@dataclass(frozen=True)
class ExportParameters:
    seed: int = 0
    # Split sizes count comparisons. test_size, when given, wins over test_fraction.
    test_size: int | None = None
    test_fraction: float = 0.1
    validation_fraction: float = 0.1
    balance_test: bool = True  # equal T/L/A/C, and within each equal instrumental/vocal
    group_by_reference: bool = False  # instructions sharing a reference clip stay in one split
    min_votes_per_comparison: int = 1
    min_confidence: int = 1  # a vote is kept when both its confidences reach this
    exclude_gold: bool = True
    exclude_attention_checks: bool = True
    exclude_flagged_annotators: bool = True
    date_from: dt.date | None = None  # inclusive, UTC
    date_to: dt.date | None = None  # inclusive, UTC
    audio: str = "hardlink"
    archive: str = "tar.gz"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExportParameters:
        """Parse and check parameters; raise ExportParameterError naming every bad one."""
        names = {f.name for f in dataclasses.fields(cls)}
        errors = {key: "unknown parameter" for key in data if key not in names}
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if data.get(f.name) is None:
                continue
            try:
                values[f.name] = _coerce(f.name, data[f.name], f.default)
            except (TypeError, ValueError) as exc:
                errors[f.name] = str(exc)
        if errors:
            raise ExportParameterError(errors)
        params = cls(**values)
        params._check()
        return params

    def _check(self) -> None:
        errors: dict[str, str] = {}
        if self.test_size is not None and self.test_size < 0:
            errors["test_size"] = "must be 0 or more"
        for name in ("test_fraction", "validation_fraction"):
            if not 0 <= getattr(self, name) < 1:
                errors[name] = "must be at least 0 and below 1"
        if self.test_size is None and self.test_fraction + self.validation_fraction >= 1:
            errors["validation_fraction"] = "test_fraction + validation_fraction must be below 1 (train needs data)"
        if self.min_votes_per_comparison < 1:
            errors["min_votes_per_comparison"] = "must be 1 or more"
        if not 1 <= self.min_confidence <= 5:
            errors["min_confidence"] = "must be between 1 and 5"
        if self.date_from and self.date_to and self.date_from > self.date_to:
            errors["date_to"] = "must not be before date_from"
        if self.audio not in AUDIO_MODES:
            errors["audio"] = f"must be one of {', '.join(AUDIO_MODES)}"
        if self.archive not in ARCHIVE_FORMATS:
            errors["archive"] = f"must be one of {', '.join(ARCHIVE_FORMATS)}"
        if errors:
            raise ExportParameterError(errors)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        for name in ("date_from", "date_to"):
            values[name] = values[name].isoformat() if values[name] else None
        return values


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Strict typing: no silent bool-as-int, no truncated floats."""
    if name in ("date_from", "date_to"):
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            return dt.date.fromisoformat(value)
        raise TypeError("must be a date (YYYY-MM-DD)")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError("must be true or false")
        return value
    if name in ("test_fraction", "validation_fraction"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("must be a number")
        return float(value)
    if name in ("seed", "test_size", "min_votes_per_comparison", "min_confidence"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("must be an integer")
        return value
    if not isinstance(value, str):
        raise TypeError("must be a string")
    return value


# --- Planning: which votes, which comparisons, which split -------------------------------


@dataclass
class _Plan:
    params: ExportParameters
    votes: QuerySet[Vote]
    flagged: set[int]


def _plan(campaign: Campaign, params: ExportParameters) -> _Plan:
    flagged = flagged_annotator_ids(campaign_id=campaign.pk) if params.exclude_flagged_annotators else set()
    votes = export_votes(campaign=campaign, params=params, flagged_annotator_ids=flagged)
    return _Plan(params, votes, flagged)


def _targets(params: ExportParameters, comparison_count: int) -> tuple[int, int]:
    test = params.test_size if params.test_size is not None else round(params.test_fraction * comparison_count)
    return test, round(params.validation_fraction * comparison_count)


def _check_feasible(plan: _Plan) -> None:
    """Reasons a valid-looking request can't be met by this campaign's data (a 400, not a failed job)."""
    comparison_count = plan.votes.order_by().values("comparison_id").distinct().count()
    if comparison_count == 0:
        raise ExportParameterError({"filters": "no vote matches the filters"})
    test, validation = _targets(plan.params, comparison_count)
    if test > comparison_count:
        raise ExportParameterError(
            {"test_size": f"{test} comparisons requested but only {comparison_count} match the filters"}
        )
    if test + validation > comparison_count:
        raise ExportParameterError(
            {
                "validation_fraction": f"test ({test}) + validation ({validation}) exceed the {comparison_count} "
                "comparisons that match the filters"
            }
        )


def export_create(
    *,
    campaign: Campaign,
    requested_by: User | None,
    parameters: Mapping[str, Any],
    enqueue: bool = True,
) -> Export:
    """Validate the parameters against the campaign's data and record a queued export.

    With ``enqueue`` the Celery task (``default`` queue) is sent once the transaction commits;
    without it the caller runs ``export_run`` itself (the management command does).

    Raises:
        ExportParameterError: bad or impossible parameters, with the reason per parameter.
    """
    params = ExportParameters.from_dict(parameters)
    _check_feasible(_plan(campaign, params))
    export_stale_reap(stale_after_s=settings.EXPORT_STALE_AFTER_S)
    export = Export.objects.create(campaign=campaign, requested_by=requested_by, parameters=params.to_dict())
    if enqueue:
        from annotate.exports.tasks import export_run_task  # the task module imports this one

        export_run_task.delay_on_commit(export.pk)
    return export


# --- Running ----------------------------------------------------------------------------


def export_stale_reap(*, stale_after_s: float) -> int:
    """Fail running exports whose worker died (no progress for ``stale_after_s``) and drop their temp files.

    Nothing of such an export was published (files are renamed into place only at the end), so
    failing it loses nothing; staff start a new one. Returns the number of exports failed.
    """
    cutoff = timezone.now() - dt.timedelta(seconds=stale_after_s)
    stale = Export.objects.filter(status=Export.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    failed = 0
    for export in stale:
        failed += Export.objects.filter(
            pk=export.pk, status=Export.Status.RUNNING, heartbeat_at=export.heartbeat_at
        ).update(
            status=Export.Status.FAILED,
            progress_message="failed",
            finished_at=timezone.now(),
            error=f"the worker stopped while building this export (no progress since {export.heartbeat_at}); "
            "start a new export",
        )
        for leftover in Path(settings.EXPORT_ROOT).glob(f".tmp-export-{export.pk}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    return failed


def export_run(*, export_id: int) -> Export:
    """Claim a queued export and build it; idempotent (a second call on a claimed row does nothing).

    Files are written under a temporary directory inside EXPORT_ROOT and renamed into place
    only when complete, and the row is marked succeeded only after that; any failure marks
    it failed with the reason and leaves no export directory or archive behind.
    """
    now = timezone.now()
    claimed = Export.objects.filter(pk=export_id, status=Export.Status.QUEUED).update(
        status=Export.Status.RUNNING, started_at=now, heartbeat_at=now, progress=0.0, progress_message="starting"
    )
    export = Export.objects.select_related("campaign").get(pk=export_id)
    if not claimed:
        return export
    root = Path(settings.EXPORT_ROOT)
    root.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".tmp-export-{export.pk}-", dir=root))
    published: list[Path] = []
    try:
        summary, archive_name = _build(export, workdir)
        published = _publish(export, workdir, archive_name)
        done = Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING).update(
            status=Export.Status.SUCCEEDED,
            progress=1.0,
            progress_message="done",
            summary=summary,
            result_path=export_dir_for(export).name,
            archive_path=archive_name,
            finished_at=timezone.now(),
        )
        if done != 1:
            raise ExportError("the export row changed while it was running")
    except Exception as exc:
        logger.exception("export %s failed", export.pk)
        for path in published:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        Export.objects.filter(pk=export.pk).exclude(status=Export.Status.SUCCEEDED).update(
            status=Export.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            progress_message="failed",
            finished_at=timezone.now(),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    export.refresh_from_db()
    return export


def _publish(export: Export, workdir: Path, archive_name: str) -> list[Path]:
    """Rename the finished files into place (same filesystem, so each rename is atomic)."""
    final_dir = export_dir_for(export)
    if final_dir.exists():
        raise ExportError(f"{final_dir} already exists; refusing to overwrite another export")
    os.rename(workdir / final_dir.name, final_dir)
    published = [final_dir]
    if archive_name:
        destination = final_dir.parent / archive_name
        os.replace(workdir / archive_name, destination)
        published.append(destination)
    return published


class _Progress:
    """Throttled progress updates, so a 100k-vote export does not write the row 100k times."""

    def __init__(self, export_id: int):
        self.export_id = export_id
        self.last = 0.0

    def __call__(self, fraction: float, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= _PROGRESS_EVERY_S:
            self.last = now
            Export.objects.filter(pk=self.export_id, status=Export.Status.RUNNING).update(
                progress=min(max(fraction, 0.0), 1.0), progress_message=message[:200], heartbeat_at=timezone.now()
            )


def _build(export: Export, workdir: Path) -> tuple[dict[str, Any], str]:
    progress = _Progress(export.pk)
    params = ExportParameters.from_dict(export.parameters)
    plan = _plan(export.campaign, params)
    progress(0.01, "selecting comparisons", force=True)
    facts = export_comparison_facts(votes=plan.votes)
    if not facts:
        raise ExportError("no vote matches the filters any more")
    test_target, validation_target = _targets(params, len(facts))
    split_plan = assign_splits(
        [SplitItem(f.comparison_id, f.prompt_key, f.reference_sha, f.modality, f.vocal) for f in facts.values()],
        seed=params.seed,
        test_target=test_target,
        validation_target=validation_target,
        balance_test=params.balance_test,
        group_by_reference=params.group_by_reference,
    )
    out = workdir / export_dir_for(export).name
    out.mkdir()
    files: dict[str, dict[str, Any]] = {}
    vote_counts = _write_votes(out, plan, facts, split_plan, files, progress)
    progress(0.75, "writing comparisons.jsonl", force=True)
    labels = comparison_labels(votes=plan.votes)
    comparison_counts = _write_comparisons(out, facts, split_plan, labels, files)
    progress(0.8, "copying audio", force=True)
    _write_audio(out, facts, mode=params.audio, files=files, progress=progress)
    progress(0.95, "writing manifest", force=True)
    summary = _summary(params, split_plan, vote_counts, comparison_counts, len(plan.flagged))
    manifest = _manifest(export, params, summary, plan, files)
    _write_text(out / "README.md", datacard.render(export.campaign, manifest), files, "README.md")
    manifest["files"] = dict(sorted(files.items()))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    archive_name = _write_archive(workdir, out, params.archive)
    return summary, archive_name


# --- Rows -------------------------------------------------------------------------------


def _audio_name(sha: str, file: str) -> str:
    return f"audio/{sha}{os.path.splitext(file)[1].lower()}"


def comparison_key(facts: ComparisonFacts) -> str:
    """A content id for a comparison (instruction + ordered clips), stable across databases and re-imports."""
    content = f"{facts.instruction_hash}|{facts.clip_a_sha}|{facts.clip_b_sha}"
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def _shared_fields(facts: ComparisonFacts) -> dict[str, Any]:
    """Fields of a comparison in CMI-RewardBench names, in a fixed order."""
    return {
        "audio-path": _audio_name(facts.clip_a_sha, facts.clip_a_file),
        "audio2": _audio_name(facts.clip_b_sha, facts.clip_b_file),
        "ref-audio-path": _audio_name(facts.reference_sha, facts.reference_file) if facts.reference_sha else "",
        "prompt": facts.prompt,
        "lyrics": facts.lyrics,
        "prompt id": facts.prompt_id,
        "model_a": facts.clip_a_system,
        "model_b": facts.clip_b_system,
    }


def _comparison_tail(facts: ComparisonFacts, split: str) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "split": split,
        "modality": facts.modality,
        "vocal": facts.vocal,
        "comparison id": comparison_key(facts),
        "gold-alignment": PREFERENCE.get(facts.gold_alignment, ""),
        "gold-musicality": PREFERENCE.get(facts.gold_musicality, ""),
        "attention_check": facts.is_attention_check,
    }


_VOTE_FIELDS = (
    "comparison_id",
    "annotator_id",
    "alignment_choice",
    "musicality_choice",
    "alignment_confidence",
    "musicality_confidence",
    "feedback",
    "presented_swapped",
    "listened_a_s",
    "listened_b_s",
    "time_on_task_s",
    "created_at",
)


def _vote_core(pseudonym: str, vote: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "user id": pseudonym,
        "preference-alignment": PREFERENCE[vote[2]],
        "preference-musicality": PREFERENCE[vote[3]],
        "confidence_preference-alignment": vote[4],
        "confidence_preference-musicality": vote[5],
    }


def _vote_extras(vote: tuple[Any, ...]) -> dict[str, Any]:
    swapped, created_at = vote[7], vote[11]
    return {
        "feedback": vote[6],
        "listened_seconds_a": vote[8],
        "listened_seconds_b": vote[9],
        # Display order, left first: which canonical clip the annotator saw as "A".
        "presented_order": ["model_b", "model_a"] if swapped else ["model_a", "model_b"],
        "time_on_task_s": vote[10],
        "vote_time": created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
    }


def vote_row(facts: ComparisonFacts, split: str, pseudonym: str, vote: tuple[Any, ...]) -> dict[str, Any]:
    """One votes.jsonl row; ``vote`` is a tuple in ``_VOTE_FIELDS`` order, choices in canonical orientation."""
    return {
        **_shared_fields(facts),
        **_comparison_tail(facts, split),
        **_vote_core(pseudonym, vote),
        **_vote_extras(vote),
    }


# ensure_ascii=False keeps lyrics and feedback readable; one encoder, not one per row as json.dumps would build.
_ENCODER = json.JSONEncoder(ensure_ascii=False)


class _VoteLines:
    """Encodes vote rows as JSONL lines, byte-identical to ``_dumps(vote_row(...))``, but serialising the
    comparison's fields once per comparison instead of once per vote (votes arrive grouped by comparison)."""

    def __init__(self) -> None:
        self.comparison_id: int | None = None
        self.head = ""

    def line(self, facts: ComparisonFacts, split: str, pseudonym: str, vote: tuple[Any, ...]) -> bytes:
        if facts.comparison_id != self.comparison_id:
            self.comparison_id = facts.comparison_id
            self.head = _ENCODER.encode({**_shared_fields(facts), **_comparison_tail(facts, split)})[:-1]
        body = _ENCODER.encode({**_vote_core(pseudonym, vote), **_vote_extras(vote)})
        return f"{self.head}, {body[1:]}\n".encode()


def _dumps(row: dict[str, Any]) -> bytes:
    return (_ENCODER.encode(row) + "\n").encode("utf-8")


class _HashingFile:
    """Write bytes and hash them on the way, so no file is read back just for the manifest."""

    def __init__(self, path: Path):
        self.handle: IO[bytes] = path.open("wb", buffering=1 << 20)
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.digest.update(data)
        self.size += len(data)

    def close(self) -> dict[str, Any]:
        self.handle.close()
        return {"sha256": self.digest.hexdigest(), "bytes": self.size}


def _pseudonyms(votes: QuerySet[Vote]) -> dict[int, str]:
    """Pseudonymous ids for every voter; profiles are created for voters who have none yet."""
    user_ids = set(votes.order_by().values_list("annotator_id", flat=True).distinct())
    known = dict(AnnotatorProfile.objects.filter(user_id__in=user_ids).values_list("user_id", "pseudonym"))
    for user_id in sorted(user_ids - known.keys()):
        known[user_id] = AnnotatorProfile.objects.get_or_create(user_id=user_id)[0].pseudonym
    return known


def _stream_votes(votes: QuerySet[Vote]) -> Iterator[tuple[Any, ...]]:
    yield from votes.order_by("comparison_id", "id").values_list(*_VOTE_FIELDS).iterator(chunk_size=5000)


def _write_votes(
    out: Path,
    plan: _Plan,
    facts: dict[int, ComparisonFacts],
    split_plan: SplitPlan,
    files: dict[str, dict[str, Any]],
    progress: _Progress,
) -> Counter[tuple[str, str, str]]:
    """Stream votes into votes.jsonl and the per-split files; return counts per (split, modality, vocal)."""
    pseudonyms = _pseudonyms(plan.votes)
    total = sum(f.vote_count for f in facts.values())
    writers = {name: _HashingFile(out / f"{name}.jsonl") for name in ("votes", *SPLITS)}
    counts: Counter[tuple[str, str, str]] = Counter()
    lines = _VoteLines()
    try:
        for index, vote in enumerate(_stream_votes(plan.votes), start=1):
            comparison = facts[vote[0]]
            split = split_plan.split_of[comparison.comparison_id]
            line = lines.line(comparison, split, pseudonyms[vote[1]], vote)
            writers["votes"].write(line)
            writers[split].write(line)
            counts[split, comparison.modality, vocal_label(comparison.vocal)] += 1
            if index % 1000 == 0:
                progress(0.02 + 0.73 * index / total, f"writing votes: {index} of {total}")
    finally:
        for name, writer in writers.items():
            files[f"{name}.jsonl"] = writer.close()
    if sum(counts.values()) != total:
        raise ExportError(f"votes changed during the export ({sum(counts.values())} written, {total} planned)")
    return counts


def comparison_row(facts: ComparisonFacts, split: str, label: ComparisonLabel) -> dict[str, Any]:
    row = {**_shared_fields(facts), "vote_count": label.vote_count}
    for question in ("alignment", "musicality"):
        answer = getattr(label, question)
        row[f"preference-{question}"] = PREFERENCE[answer.majority]
        row[f"confidence_preference-{question}"] = round(answer.mean_confidence, 6)
        row[f"soft_label-{question}"] = round(answer.soft_label, 6)
        row[f"votes_a-{question}"] = answer.votes_a
        row[f"votes_b-{question}"] = answer.votes_b
    return {**row, **_comparison_tail(facts, split)}


def _write_comparisons(
    out: Path,
    facts: dict[int, ComparisonFacts],
    split_plan: SplitPlan,
    labels: dict[int, ComparisonLabel],
    files: dict[str, dict[str, Any]],
) -> Counter[tuple[str, str, str]]:
    writer = _HashingFile(out / "comparisons.jsonl")
    counts: Counter[tuple[str, str, str]] = Counter()
    try:
        for comparison_id in sorted(facts):
            comparison, split = facts[comparison_id], split_plan.split_of[comparison_id]
            writer.write(_dumps(comparison_row(comparison, split, labels[comparison_id])))
            counts[split, comparison.modality, vocal_label(comparison.vocal)] += 1
    finally:
        files["comparisons.jsonl"] = writer.close()
    return counts


def _write_text(path: Path, text: str, files: dict[str, dict[str, Any]], name: str) -> None:
    data = text.encode("utf-8")
    path.write_bytes(data)
    files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


# --- Audio ------------------------------------------------------------------------------


def _audio_sources(facts: dict[int, ComparisonFacts]) -> dict[str, tuple[str, str]]:
    """Every clip the rows point at: export name -> (sha256, file under MEDIA_ROOT)."""
    sources: dict[str, tuple[str, str]] = {}
    for f in facts.values():
        for sha, file in (
            (f.clip_a_sha, f.clip_a_file),
            (f.clip_b_sha, f.clip_b_file),
            (f.reference_sha, f.reference_file),
        ):
            if sha:
                sources[_audio_name(sha, file)] = (sha, file)
    return sources


def _write_audio(
    out: Path,
    facts: dict[int, ComparisonFacts],
    *,
    mode: str,
    files: dict[str, dict[str, Any]],
    progress: _Progress,
) -> None:
    """Hard-link (falling back to a copy across filesystems) or copy each clip, then verify its hash."""
    (out / "audio").mkdir()
    media = Path(settings.MEDIA_ROOT)
    sources = _audio_sources(facts)
    for index, name in enumerate(sorted(sources), start=1):
        sha, file = sources[name]
        source, destination = media / file, out / name
        if not source.is_file():
            raise ExportError(f"audio file for clip {sha[:12]} is missing: {file}")
        if mode == "hardlink":
            try:
                os.link(source, destination)
            except OSError:
                shutil.copyfile(source, destination)
        else:
            shutil.copyfile(source, destination)
        digest, size = files_sha256([destination])
        # The name promises the content: a clip edited on disk after import must not ship silently.
        if digest != sha:
            raise ExportError(f"audio file {file} no longer matches its sha256 {sha[:12]}")
        files[name] = {"sha256": digest, "bytes": size}
        if index % 200 == 0:
            progress(0.8 + 0.15 * index / len(sources), f"audio: {index} of {len(sources)} files")


# --- Manifest, data card, archive --------------------------------------------------------


def _nested_counts(counts: Counter[tuple[str, str, str]]) -> dict[str, dict[str, dict[str, int]]]:
    nested: dict[str, dict[str, dict[str, int]]] = {}
    for (split, modality, vocal), n in sorted(counts.items()):
        nested.setdefault(split, {}).setdefault(modality, {})[vocal] = n
    return nested


def _summary(
    params: ExportParameters,
    split_plan: SplitPlan,
    vote_counts: Counter[tuple[str, str, str]],
    comparison_counts: Counter[tuple[str, str, str]],
    flagged_count: int,
) -> dict[str, Any]:
    def per_split(counts: Counter[tuple[str, str, str]]) -> dict[str, int]:
        return {name: sum(n for (s, _, _), n in counts.items() if s == name) for name in SPLITS}

    return {
        "votes": per_split(vote_counts),
        "comparisons": per_split(comparison_counts),
        "votes_by_split_modality_vocal": _nested_counts(vote_counts),
        "comparisons_by_split_modality_vocal": _nested_counts(comparison_counts),
        "test_split": {
            "requested": split_plan.test_requested,
            "selected": per_split(comparison_counts)["test"],
            "balanced": params.balance_test,
            "shortfall": split_plan.shortfall,
        },
        "validation_split": {
            "requested": split_plan.validation_requested,
            "selected": per_split(comparison_counts)["validation"],
        },
        "excluded_flagged_annotators": flagged_count,
    }


def code_version() -> str:
    """``git describe`` of the checkout when there is one, else the installed package version."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        if result.stdout.strip():
            return f"git:{result.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return f"cmi-annotate {metadata.version('cmi-annotate')}"
    except metadata.PackageNotFoundError:
        return "unknown"


def _manifest(
    export: Export, params: ExportParameters, summary: dict[str, Any], plan: _Plan, files: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    campaign = export.campaign
    return {
        "format": "cmi-arena-export/1",
        "export_id": export.pk,
        "campaign": {"id": campaign.pk, "name": campaign.name, "license": campaign.license},
        "created_at": timezone.now().astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "code_version": code_version(),
        "source": SOURCE,
        "parameters": params.to_dict(),
        "seed": params.seed,
        "counts": summary,
        "agreement": agreement_summary(votes=plan.votes),
        "layout": {
            "votes": "votes.jsonl",
            "splits": {name: f"{name}.jsonl" for name in SPLITS},
            "comparisons": "comparisons.jsonl",
            "audio_dir": "audio",
        },
        # README.md is added by the caller once written; manifest.json cannot hash itself.
        "files": files,
    }


def _write_archive(workdir: Path, out: Path, archive: str) -> str:
    """A reproducible archive of the directory: sorted members, zeroed owners and times. Returns its file name."""
    if archive == "none":
        return ""
    paths = sorted(p for p in out.rglob("*") if p.is_file())
    name = f"{out.name}.{archive}"
    if archive == "zip":
        _write_zip(workdir / name, out, paths)
    else:
        _write_tar_gz(workdir / name, out, paths)
    return name


def _write_zip(destination: Path, out: Path, paths: list[Path]) -> None:
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in paths:
            info = zipfile.ZipInfo(f"{out.name}/{path.relative_to(out).as_posix()}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as source, zf.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)


def _write_tar_gz(destination: Path, out: Path, paths: list[Path]) -> None:
    with (
        destination.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in paths:
            info = tar.gettarinfo(str(path), arcname=f"{out.name}/{path.relative_to(out).as_posix()}")
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
            with path.open("rb") as handle:
                tar.addfile(info, handle)
