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
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Protocol

from django.conf import settings

from annotate.agreement.report import ComparisonLabel
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


def write_votes(
    out: Path,
    votes: Iterable[rows.VoteValues],
    facts: dict[int, ComparisonFacts],
    split_of: dict[int, str],
    pseudonyms: dict[int, str],
    files: FileDigests,
    progress: Progress,
) -> Counts:
    """Stream votes into votes.jsonl and the per-split files; return counts per (split, modality, vocal)."""
    total = sum(f.vote_count for f in facts.values())
    writers = {name: HashingFile(out / f"{name}.jsonl") for name in ("votes", *SPLITS)}
    counts: Counts = Counter()
    lines = rows.VoteLines()
    try:
        for index, vote in enumerate(votes, start=1):
            comparison = facts[vote.comparison_id]
            split = split_of[comparison.comparison_id]
            line = lines.line(comparison, split, pseudonyms[vote.annotator_id], vote)
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


def write_comparisons(
    out: Path,
    facts: dict[int, ComparisonFacts],
    split_of: dict[int, str],
    labels: dict[int, ComparisonLabel],
    files: FileDigests,
    adjudicated: dict[int, dict[str, str]] | None = None,
) -> Counts:
    writer = HashingFile(out / "comparisons.jsonl")
    counts: Counts = Counter()
    try:
        for comparison_id in sorted(facts):
            comparison, split = facts[comparison_id], split_of[comparison_id]
            writer.write(
                rows.dumps(
                    rows.comparison_row(
                        comparison, split, labels[comparison_id], (adjudicated or {}).get(comparison_id)
                    )
                )
            )
            counts[split, comparison.modality, vocal_label(comparison.vocal)] += 1
    finally:
        files["comparisons.jsonl"] = writer.close()
    return counts


def write_text(path: Path, text: str, files: FileDigests, name: str) -> None:
    data = text.encode("utf-8")
    path.write_bytes(data)
    files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


# --- Audio ------------------------------------------------------------------------------


def audio_sources(facts: dict[int, ComparisonFacts]) -> dict[str, tuple[str, str]]:
    """Every clip the rows point at: export name -> (sha256, file under MEDIA_ROOT)."""
    sources: dict[str, tuple[str, str]] = {}
    for f in facts.values():
        for sha, file in (
            (f.clip_a_sha, f.clip_a_file),
            (f.clip_b_sha, f.clip_b_file),
            (f.reference_sha, f.reference_file),
        ):
            if sha:
                sources[rows.audio_name(sha, file)] = (sha, file)
    return sources


def write_audio(
    out: Path, facts: dict[int, ComparisonFacts], *, mode: str, files: FileDigests, progress: Progress
) -> None:
    """Hard-link (falling back to a copy across filesystems) or copy each clip, then verify its hash."""
    (out / "audio").mkdir()
    media = Path(settings.MEDIA_ROOT)
    sources = audio_sources(facts)
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
