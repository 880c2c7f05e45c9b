"""The files of an export: JSONL writers that hash on the way, audio copies checked against their
sha256, the ``git describe`` stamp, and reproducible archives.

Everything here writes under a directory it is given (the service's temporary directory); it
never touches the database and never publishes anything.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import tarfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import IO, Any, Protocol

from django.conf import settings

from annotate.agreement.metrics import question_label
from annotate.agreement.report import ComparisonLabel, QuestionLabel
from annotate.errors import ApplicationError
from annotate.exports import rows
from annotate.exports.selectors import ComparisonFacts
from annotate.exports.splits import SPLITS, vocal_label
from cmi_common.hashing import files_sha256

FileDigests = dict[str, dict[str, Any]]  # name inside the export -> {"sha256", "bytes"}
Counts = Counter[tuple[str, str, str]]  # (split, modality, vocal) -> rows


class ExportError(ApplicationError):
    """The export could not be built; nothing was published. It is recorded on the export row, never
    answered to a request, and it is the build's failure, not the client's input: hence a 500."""

    status = 500
    code = "export_failed"


class Progress(Protocol):
    def __call__(self, fraction: float, message: str, *, force: bool = False) -> None: ...


class HashingFile:
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


AudioSources = dict[str, tuple[str, str]]  # name inside the export -> (sha256, file under MEDIA_ROOT)


@dataclass
class RowCounts:
    """What ``write_rows`` wrote, per (split, modality, vocal), and the clips its rows point at."""

    votes: Counts = field(default_factory=Counter)
    comparisons: Counts = field(default_factory=Counter)
    audio: AudioSources = field(default_factory=dict)


def write_rows(
    out: Path,
    *,
    comparisons: Iterator[ComparisonFacts],
    votes: Iterable[rows.VoteValues],
    split_of_prompt: dict[str, str],
    pseudonyms: dict[int, str],
    adjudicated: dict[int, dict[str, str]],
    total: int,
    files: FileDigests,
    progress: Progress,
) -> RowCounts:
    """One pass over both streams (each in comparison id order): each comparison's votes go to votes.jsonl and
    its split's file, then its label, computed from those same votes, to comparisons.jsonl."""
    writers = {name: HashingFile(out / f"{name}.jsonl") for name in ("votes", *SPLITS, "comparisons")}
    written = RowCounts()
    lines = rows.VoteLines()
    done = 0
    try:
        for comparison_id, group in groupby(votes, key=attrgetter("comparison_id")):
            comparison = _facts_of(comparisons, comparison_id)
            split = split_of_prompt[comparison.prompt_key]
            cell = (split, comparison.modality, vocal_label(comparison.vocal))
            fields, _ = lines.start(comparison, split)
            comparison_votes = list(group)
            chunk = b"".join(lines.line(comparison, split, pseudonyms[v.annotator_id], v) for v in comparison_votes)
            writers["votes"].write(chunk)
            writers[split].write(chunk)
            label = comparison_label(comparison_id, comparison_votes)
            writers["comparisons"].write(lines.comparison_line(label, adjudicated.get(comparison_id)))
            written.votes[cell] += len(comparison_votes)
            written.comparisons[cell] += 1
            _add_audio(written.audio, comparison, fields)
            done += len(comparison_votes)
            if written.comparisons.total() % 500 == 0:
                progress(0.02 + 0.78 * done / max(total, 1), f"writing votes: {done} of {total}")
    finally:
        for name, writer in writers.items():
            files[f"{name}.jsonl"] = writer.close()
    if done != total:
        raise ExportError(f"votes changed during the export ({done} written, {total} planned)")
    return written


def _facts_of(comparisons: Iterator[ComparisonFacts], comparison_id: int) -> ComparisonFacts:
    """Advance the facts stream to ``comparison_id`` (a comparison whose votes went since it was listed is skipped)."""
    for facts in comparisons:
        if facts.comparison_id == comparison_id:
            return facts
        if facts.comparison_id > comparison_id:
            break
    raise ExportError(f"votes changed during the export (comparison {comparison_id} was not planned)")


def comparison_label(comparison_id: int, votes: list[rows.VoteValues]) -> ComparisonLabel:
    """Majority, counts, mean confidence and soft label per question, from one comparison's votes."""
    total = len(votes)

    def question(choices: list[str], confidences: list[int]) -> QuestionLabel:
        return question_label(choices.count("a"), total, sum(confidences) / total, votes_tie=choices.count("t"))

    return ComparisonLabel(
        comparison_id=comparison_id,
        vote_count=total,
        alignment=question([v.alignment_choice for v in votes], [v.alignment_confidence for v in votes]),
        musicality=question([v.musicality_choice for v in votes], [v.musicality_confidence for v in votes]),
    )


def write_text(path: Path, text: str, files: FileDigests, name: str) -> None:
    data = text.encode("utf-8")
    path.write_bytes(data)
    files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


# --- Audio ------------------------------------------------------------------------------


def _add_audio(sources: AudioSources, f: ComparisonFacts, fields: rows.ComparisonFields) -> None:
    """Record every clip a comparison's rows point at (``fields`` holds their names inside the export)."""
    sources[fields["audio-path"]] = (f.clip_a_sha, f.clip_a_file)
    sources[fields["audio2"]] = (f.clip_b_sha, f.clip_b_file)
    if f.reference_sha:
        sources[fields["ref-audio-path"]] = (f.reference_sha, f.reference_file)


def write_audio(out: Path, sources: AudioSources, *, mode: str, files: FileDigests, progress: Progress) -> None:
    """Hard-link (falling back to a copy across filesystems) or copy each clip, then verify its hash."""
    (out / "audio").mkdir()
    media = Path(settings.MEDIA_ROOT)
    for index, name in enumerate(sorted(sources), start=1):
        sha, file = sources[name]
        source, destination = media / file, out / name
        if not source.is_file():
            raise ExportError(f"audio file for clip {sha[:12]} is missing: {file}")
        _link_or_copy(source, destination, mode)
        digest, size = files_sha256([destination])
        # The name promises the content: a clip edited on disk after import must not ship silently.
        if digest != sha:
            raise ExportError(f"audio file {file} no longer matches its sha256 {sha[:12]}")
        files[name] = {"sha256": digest, "bytes": size}
        if index % 200 == 0:
            progress(0.8 + 0.15 * index / len(sources), f"audio: {index} of {len(sources)} files")


def _link_or_copy(source: Path, destination: Path, mode: str) -> None:
    if mode == "hardlink":
        try:
            destination.hardlink_to(source)
            return
        except OSError:
            pass
    shutil.copyfile(source, destination)


# --- Provenance and archives --------------------------------------------------------------


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


def write_archive(workdir: Path, out: Path, archive: str) -> str:
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
