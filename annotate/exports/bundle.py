"""The files of an export: JSONL writers that hash on the way, audio copies checked against their
sha256, the ``git describe`` stamp, and reproducible archives.

Everything here writes under a directory it is given (the service's temporary directory); it
never touches the database and never publishes anything.

The tar.gz is compressed while the JSONL files are written, on another core (see ``TarGzPipeline``):
a gzip file may be a concatenation of gzip members (RFC 1952), which ``tar xzf``, ``tarfile`` and
``gzip`` read as one stream, so each piece of the tar stream is compressed on its own and the
pieces are concatenated in tar order at the end. Pieces are cut at fixed offsets, never by timing,
so the same files always give the same archive bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
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


# The JSONL files' writes are handed to a background thread in buffers of this size, at most
# WRITE_IN_FLIGHT of them waiting (memory stays flat).
WRITE_BUFFER_BYTES = 1 << 20
WRITE_IN_FLIGHT = 8
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16


class WriteBehind:
    """One background thread that writes and hashes the JSONL files while the next rows are built.

    A file write and a sha256 of a large buffer both release the GIL, so they run beside the row
    building on the other core. Work runs strictly in the order it was handed over; at most
    ``in_flight`` buffers wait, and handing over more first waits for the oldest. An error on the
    thread is raised by the next ``submit`` or ``drain`` in the caller's thread. ``close`` cancels
    what has not started and waits for the thread to end.
    """

    def __init__(self, *, in_flight: int = WRITE_IN_FLIGHT):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-write")
        self.in_flight = in_flight
        self.pending: deque[Future[None]] = deque()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def submit(self, work: Callable[[], None]) -> None:
        while len(self.pending) >= self.in_flight:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(work))

    def drain(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        for future in self.pending:
            future.cancel()
        self.pending.clear()
        self.pool.shutdown(wait=True, cancel_futures=True)


class HashingFile:
    """Write bytes and hash them on the way, so no file is read back just for the manifest.

    With ``blocks`` (from ``TarGzPipeline.blocks``) the file is also compressed for the archive
    while it is written, a block at a time. With ``behind`` the bytes are gathered into buffers of
    ``WRITE_BUFFER_BYTES`` that its thread writes and hashes; ``close`` waits for them.
    """

    def __init__(self, path: Path, *, blocks: FileBlocks | None = None, behind: WriteBehind | None = None):
        self.handle: IO[bytes] = path.open("wb", buffering=0 if behind else 1 << 20)
        self.digest = hashlib.sha256()
        self.size = 0
        self.blocks = blocks
        self.behind = behind
        self.gathered: list[bytes] = []
        self.gathered_bytes = 0

    def write(self, data: bytes) -> None:
        if self.behind is None:
            self._write(data)
            return
        self.gathered.append(data)
        self.gathered_bytes += len(data)
        if self.gathered_bytes >= WRITE_BUFFER_BYTES:
            self._hand_over()

    def close(self) -> dict[str, Any]:
        if self.behind is not None:
            self._hand_over()
            self.behind.drain()
        self.handle.close()
        if self.blocks is not None:
            self.blocks.close(self.size)
        return {"sha256": self.digest.hexdigest(), "bytes": self.size}

    def abandon(self) -> None:
        """Stop writing after a failure: the thread stops first, then the file closes (its blocks are dropped
        with the pipeline)."""
        if self.behind is not None:
            self.behind.close()
        self.handle.close()

    def _hand_over(self) -> None:
        if self.gathered:
            assert self.behind is not None
            self.behind.submit(partial(self._write_parts, self.gathered))
            self.gathered, self.gathered_bytes = [], 0

    def _write_parts(self, parts: list[bytes]) -> None:
        # Gathered by the kernel (writev): joining them first would fault in a fresh megabyte per buffer.
        fd = self.handle.fileno()
        for start in range(0, len(parts), _IOV_MAX):
            batch = parts[start : start + _IOV_MAX]
            written, wanted = os.writev(fd, batch), sum(map(len, batch))
            rest = memoryview(b"".join(batch))[written:] if written < wanted else None  # a short write: rare
            while rest:
                rest = rest[os.write(fd, rest) :]
        for part in parts:
            self.digest.update(part)
        self._wrote(sum(map(len, parts)))

    def _write(self, data: bytes) -> None:
        self.handle.write(data)
        self.digest.update(data)
        self._wrote(len(data))

    def _wrote(self, size: int) -> None:
        self.size += size
        if self.blocks is not None and self.size >= self.blocks.next_cut:
            self.handle.flush()  # the blocks are read back from the file by the compressor
            self.blocks.written(self.size)


AudioSources = dict[str, tuple[str, str]]  # name inside the export -> (sha256, file under MEDIA_ROOT)


@dataclass
class RowCounts:
    """What ``write_rows`` wrote, per (split, modality, vocal), and the clips its rows point at."""

    votes: Counts = field(default_factory=Counter)
    comparisons: Counts = field(default_factory=Counter)
    audio: AudioSources = field(default_factory=dict)
    # Comparisons per vote split (votes, alignment a, alignment tie, musicality a, musicality tie): the
    # manifest's agreement comes from these, not a second pass over the votes.
    splits: Counter[tuple[int, int, int, int, int]] = field(default_factory=Counter)


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
    pipeline: TarGzPipeline | None = None,
) -> RowCounts:
    """One pass over both streams (each in comparison id order): each comparison's votes go to votes.jsonl and
    its split's file, then its label, computed from those same votes, to comparisons.jsonl.

    With ``pipeline`` each file is also compressed for the tar.gz while it is written."""
    # Leaving this block, on success or failure, stops the writing thread.
    with WriteBehind() as behind:
        writers = {
            name: HashingFile(out / name, blocks=pipeline.blocks(name, out / name) if pipeline else None, behind=behind)
            for name in (f"{stem}.jsonl" for stem in ("votes", *SPLITS, "comparisons"))
        }
        return _write_rows(
            writers, comparisons, votes, split_of_prompt, pseudonyms, adjudicated, total, files, progress
        )


def _write_rows(
    writers: dict[str, HashingFile],
    comparisons: Iterator[ComparisonFacts],
    votes: Iterable[rows.VoteValues],
    split_of_prompt: dict[str, str],
    pseudonyms: dict[int, str],
    adjudicated: dict[int, dict[str, str]],
    total: int,
    files: FileDigests,
    progress: Progress,
) -> RowCounts:
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
            writers["votes.jsonl"].write(chunk)
            writers[f"{split}.jsonl"].write(chunk)
            label = comparison_label(comparison_id, comparison_votes)
            writers["comparisons.jsonl"].write(lines.comparison_line(label, adjudicated.get(comparison_id)))
            written.votes[cell] += len(comparison_votes)
            written.comparisons[cell] += 1
            al, mu = label.alignment, label.musicality
            written.splits[label.vote_count, al.votes_a, al.votes_tie, mu.votes_a, mu.votes_tie] += 1
            _add_audio(written.audio, comparison, fields)
            done += len(comparison_votes)
            if written.comparisons.total() % 500 == 0:
                progress(0.02 + 0.78 * done / max(total, 1), f"writing votes: {done} of {total}")
    except BaseException:
        for writer in writers.values():
            writer.abandon()
        raise
    for name, writer in writers.items():
        files[name] = writer.close()
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


def write_archive(workdir: Path, out: Path, archive: str, *, pipeline: TarGzPipeline | None = None) -> str:
    """A reproducible archive of the directory: sorted members, zeroed owners and times. Returns its file name.

    For a tar.gz, ``pipeline`` holds the files already compressed while they were written (the
    JSONL files); without one, every file is compressed here.
    """
    if archive == "none":
        return ""
    paths = sorted(p for p in out.rglob("*") if p.is_file())
    name = f"{out.name}.{archive}"
    if archive == "zip":
        _write_zip(workdir / name, out, paths)
    elif pipeline is not None:
        pipeline.write_tar_gz(workdir / name, out, paths)
    else:
        with TarGzPipeline(workdir) as own:
            own.write_tar_gz(workdir / name, out, paths)
    return name


def _write_zip(destination: Path, out: Path, paths: list[Path]) -> None:
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in paths:
            info = zipfile.ZipInfo(f"{out.name}/{path.relative_to(out).as_posix()}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as source, zf.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)


# --- tar.gz, compressed while the files are written ---------------------------------------------

GZIP_LEVEL = 6
# The JSONL files are cut into gzip members at every multiple of this many bytes of their data, and
# other files are gathered into members of about this size. The cuts depend only on the files' sizes,
# so the archive's bytes do too; each cut costs ~0.15% of a member's compressed size at 8 MiB.
ARCHIVE_BLOCK_BYTES = 8 << 20
# Members asked for and not yet written to their file; asking for another waits for the oldest when
# full, so memory stays flat (blocks are read back from the page cache by the compressing thread).
ARCHIVE_IN_FLIGHT = 4
# One thread: the rows are written on the main thread, and the machines this runs on have two cores.
ARCHIVE_WORKERS = 1

# A piece of the tar stream: literal bytes, or ``length`` bytes of a file from ``offset``.
Segment = bytes | tuple[Path, int, int]


def gzip_member(data: bytes, level: int = GZIP_LEVEL) -> bytes:
    """``data`` as one gzip member (mtime 0, no file name): the same bytes always give the same member."""
    return gzip.compress(data, compresslevel=level, mtime=0)


def _gzip_segments(segments: tuple[Segment, ...], level: int) -> bytes:
    """The segments, read and concatenated, as one gzip member (run on the compressing thread)."""
    parts = []
    for segment in segments:
        if isinstance(segment, bytes):
            parts.append(segment)
            continue
        path, offset, length = segment
        with path.open("rb") as handle:
            handle.seek(offset)
            parts.append(handle.read(length))
        if len(parts[-1]) != length:
            raise ExportError(f"{path.name} changed while it was being archived")
    return gzip_member(b"".join(parts), level)


def _tar_header(arcname: str, size: int) -> bytes:
    """The tar header of one regular file, as ``tarfile`` writes it (PAX format, zeroed owner, time and mode 0o644)."""
    info = tarfile.TarInfo(arcname)
    info.size, info.type = size, tarfile.REGTYPE
    info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
    # tarfile.open(..., format=PAX_FORMAT) encodes with its ENCODING (utf-8) and "surrogateescape".
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class OrderedCompressor:
    """Gzip members made on background threads and written to their files in the order they were asked for.

    ``submit`` hands work (a callable returning bytes) to the thread pool; ``copy`` asks for a file's
    bytes. Results are written strictly in the order of those calls, by the caller's thread, and at
    most ``in_flight`` wait at once: when full, a call first writes the oldest, waiting for it if
    needed, so memory stays flat and an error in a worker is raised by the next call (or by
    ``drain``) in the caller's thread instead of being lost. ``close`` cancels what has not started
    and waits for the threads to end.
    """

    def __init__(self, *, workers: int = ARCHIVE_WORKERS, in_flight: int = ARCHIVE_IN_FLIGHT):
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="export-gzip")
        self.in_flight = in_flight
        self.pending: deque[tuple[IO[bytes], Future[bytes] | Path]] = deque()

    def submit(self, sink: IO[bytes], work: Callable[[], bytes]) -> None:
        self._make_room()
        self.pending.append((sink, self.pool.submit(work)))

    def copy(self, sink: IO[bytes], source: Path) -> None:
        """Append ``source``'s bytes to ``sink`` in turn (a plain copy on the caller's thread)."""
        self._make_room()
        self.pending.append((sink, source))

    def drain(self) -> None:
        """Write everything asked for so far."""
        while self.pending:
            self._write_oldest()

    def close(self) -> None:
        for _, item in self.pending:
            if isinstance(item, Future):
                item.cancel()
        self.pending.clear()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _make_room(self) -> None:
        while len(self.pending) >= self.in_flight:
            self._write_oldest()

    def _write_oldest(self) -> None:
        sink, item = self.pending.popleft()
        if isinstance(item, Future):
            sink.write(item.result())
        else:
            with item.open("rb") as source:
                shutil.copyfileobj(source, sink, 1 << 20)


class FileBlocks:
    """One file compressed while it is written: each ``block_bytes`` of its data, once written, is read
    back (from the page cache) and compressed as one gzip member, in order, into the file's piece file,
    which is then its data as the tar.gz holds it. ``HashingFile`` calls ``written`` and ``close``."""

    def __init__(self, pipeline: TarGzPipeline, path: Path, piece: Path):
        self.pipeline = pipeline
        self.path = path
        self.piece = piece
        self.handle: IO[bytes] = piece.open("wb")
        self.next_cut = pipeline.block_bytes  # offset of the next block end not yet sent
        self.sent = 0  # bytes of the file sent to the compressor
        self.size: int | None = None  # the file's size, once closed

    def written(self, size: int) -> None:
        """The file now holds ``size`` bytes, flushed: send each whole block not sent yet."""
        while self.next_cut <= size:
            self._send(self.next_cut)
            self.next_cut += self.pipeline.block_bytes

    def close(self, size: int) -> None:
        """The file is complete (and closed) at ``size`` bytes: send the rest."""
        self.written(size)
        if size > self.sent:
            self._send(size)
        self.size = size

    def _send(self, end: int) -> None:
        block = ((self.path, self.sent, end - self.sent),)
        self.pipeline.compressor.submit(self.handle, partial(_gzip_segments, block, self.pipeline.level))
        self.sent = end


class _TarStream:
    """The tar stream of an archive being assembled, cut into gzip members made on the compressor's thread.

    Segments (headers, file ranges, padding) are gathered into one member until the next would take
    it past ``block_bytes``; a piece compressed earlier is copied in between two members. ``offset``
    counts the bytes of the uncompressed tar.
    """

    def __init__(self, pipeline: TarGzPipeline, sink: IO[bytes]):
        self.pipeline = pipeline
        self.sink = sink
        self.segments: list[Segment] = []
        self.gathered = 0
        self.offset = 0

    def add(self, segment: Segment) -> None:
        length = len(segment) if isinstance(segment, bytes) else segment[2]
        if self.gathered and self.gathered + length > self.pipeline.block_bytes:
            self.cut()
        self.segments.append(segment)
        self.gathered += length
        self.offset += length

    def add_file(self, path: Path, size: int) -> None:
        """A file's ``size`` bytes of data, in ranges of at most a block."""
        block_bytes = self.pipeline.block_bytes
        for start in range(0, size, block_bytes):
            self.add((path, start, min(block_bytes, size - start)))

    def add_piece(self, piece: Path, size: int) -> None:
        """``size`` bytes of file data already compressed into ``piece``."""
        self.cut()
        self.pipeline.compressor.copy(self.sink, piece)
        self.offset += size

    def cut(self) -> None:
        if self.segments:
            work = partial(_gzip_segments, tuple(self.segments), self.pipeline.level)
            self.pipeline.compressor.submit(self.sink, work)
            self.segments, self.gathered = [], 0


class TarGzPipeline:
    """A reproducible tar.gz of an export directory, compressed on a background thread as far as possible.

    ``blocks(name, path)`` compresses a file while it is written (the JSONL files, through ``HashingFile``).
    ``write_tar_gz`` then assembles the archive, members in sorted order: each member's tar header,
    its data and its padding to 512 bytes, and at the end the two zero blocks and the zeros up to a
    whole tar record, exactly as ``tarfile`` writes them, cut into gzip members: the pieces compressed
    while writing are copied as they are, the rest (audio, manifest, data card, headers, padding) is
    gathered into members compressed now. Read as one gzip stream, it is byte for byte the tar that
    ``tarfile`` writes for these members.

    Piece files live in a temporary directory under ``workdir`` (the export's temporary directory);
    ``close`` (or leaving the ``with`` block, failure or not) stops the thread and removes them.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        block_bytes: int = ARCHIVE_BLOCK_BYTES,
        level: int = GZIP_LEVEL,
        workers: int = ARCHIVE_WORKERS,
        in_flight: int = ARCHIVE_IN_FLIGHT,
    ):
        self.block_bytes = block_bytes
        self.level = level
        self.directory = Path(tempfile.mkdtemp(prefix=".archive-pieces-", dir=workdir))
        self.compressor = OrderedCompressor(workers=workers, in_flight=in_flight)
        self.pieces: dict[str, FileBlocks] = {}  # name inside the export -> its blocks

    def __enter__(self) -> TarGzPipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def blocks(self, name: str, path: Path) -> FileBlocks:
        """Compress the file at ``path``, ``name`` inside the export, while it is written."""
        if name in self.pieces:
            raise ValueError(f"{name} is already being compressed")
        self.pieces[name] = FileBlocks(self, path, self.directory / f"{len(self.pieces)}.gz")
        return self.pieces[name]

    def finish_pieces(self) -> None:
        """Wait for every block sent so far and close the piece files."""
        self.compressor.drain()
        for blocks in self.pieces.values():
            blocks.handle.close()

    def close(self) -> None:
        self.compressor.close()
        for blocks in self.pieces.values():
            blocks.handle.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def write_tar_gz(self, destination: Path, out: Path, paths: list[Path]) -> None:
        """Assemble the archive of ``paths`` (sorted, under ``out``) as ``<out.name>/<relative path>``."""
        self.finish_pieces()
        with destination.open("wb") as archive:
            stream = _TarStream(self, archive)
            for path in paths:
                name = path.relative_to(out).as_posix()
                size = path.stat().st_size
                blocks = self.pieces.get(name)
                stream.add(_tar_header(f"{out.name}/{name}", size))
                if blocks is None:
                    stream.add_file(path, size)
                elif blocks.size == size:
                    stream.add_piece(blocks.piece, size)
                else:
                    raise ExportError(f"{name} has {size} bytes but {blocks.size} were compressed while writing")
                stream.add(bytes(-size % tarfile.BLOCKSIZE))
            # As tarfile.TarFile.close: two zero blocks, then zeros up to a whole record.
            stream.add(bytes(2 * tarfile.BLOCKSIZE + (-(stream.offset + 2 * tarfile.BLOCKSIZE) % tarfile.RECORDSIZE)))
            stream.cut()
            self.compressor.drain()


@contextmanager
def archive_pipeline(workdir: Path, archive: str) -> Iterator[TarGzPipeline | None]:
    """A ``TarGzPipeline`` under ``workdir`` when the archive is a tar.gz (closed on the way out), else None."""
    if archive != "tar.gz":
        yield None
        return
    with TarGzPipeline(workdir) as pipeline:
        yield pipeline
