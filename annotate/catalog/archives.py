"""Unpacking an uploaded archive of audio (zip or tar, optionally gzip/bzip2/xz) without trusting it.

``archive_inspect`` reads only the member list and refuses, before anything is written: absolute paths,
``..`` components, links (symbolic or hard), devices and other special members, more members than
``IMPORT_ARCHIVE_MAX_MEMBERS``, a declared unpacked total above ``IMPORT_ARCHIVE_MAX_UNPACKED_BYTES``, and a
zip member over 1 MiB compressed more than ``IMPORT_ARCHIVE_MAX_RATIO`` times (a zip bomb). ``archive_extract``
runs the same checks again (a zip's whole list first; a tar's members one by one as it reads the stream, once),
then writes each regular file itself (never ``extractall``), counting the bytes it actually writes, so a header
that lies about a size is caught too. A zip's list is read from its end in milliseconds; a compressed tar has
to be decompressed to be listed, so checking it costs about as much as unpacking it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings

from annotate.errors import ApplicationError

_CHUNK = 1024 * 1024
# Small members (a text file, an empty file) may compress by any ratio; the ratio check is for big ones.
_RATIO_MIN_BYTES = 1024 * 1024


class ArchiveRejected(ApplicationError):
    """The archive is unsafe or over a limit; nothing of it was written (400)."""

    code = "archive_rejected"


@dataclass(frozen=True)
class ArchiveLimits:
    max_unpacked_bytes: int
    max_members: int
    max_ratio: float

    @classmethod
    def from_settings(cls) -> ArchiveLimits:
        return cls(
            max_unpacked_bytes=settings.IMPORT_ARCHIVE_MAX_UNPACKED_BYTES,
            max_members=settings.IMPORT_ARCHIVE_MAX_MEMBERS,
            max_ratio=settings.IMPORT_ARCHIVE_MAX_RATIO,
        )


@dataclass(frozen=True)
class _Member:
    name: str  # normalised relative POSIX path
    is_dir: bool
    size: int  # declared unpacked size
    packed: int | None  # compressed size (zip only)


@dataclass(frozen=True)
class ArchiveSummary:
    kind: str  # "zip" or "tar"
    files: int
    unpacked_bytes: int


def archive_kind(path: Path) -> str:
    """``zip`` or ``tar`` by content, not by name.

    Raises:
        ArchiveRejected: neither.
    """
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError, tarfile.TarError):
        pass
    raise ArchiveRejected("The archive is not a zip or tar file (tar may be gzip, bzip2 or xz compressed).")


def archive_inspect(path: Path, *, limits: ArchiveLimits | None = None) -> ArchiveSummary:
    """Check every member of the archive at ``path`` without unpacking it.

    Raises:
        ArchiveRejected: an unsafe member or a limit exceeded, with the member's name.
    """
    limits = limits or ArchiveLimits.from_settings()
    kind = archive_kind(path)
    files = total = 0
    for member in _members(path, kind, limits):
        if not member.is_dir:
            files += 1
            total += member.size
    return ArchiveSummary(kind=kind, files=files, unpacked_bytes=total)


def archive_extract(path: Path, destination: Path, *, limits: ArchiveLimits | None = None) -> ArchiveSummary:
    """Unpack the archive's directories and regular files under ``destination`` (which must not exist yet).

    A zip's member list is checked in full before anything is written. A tar is read once: each member is
    checked before it is written, and a refusal removes ``destination`` again, so nothing is left either way.

    Raises:
        ArchiveRejected: as ``archive_inspect``, or a member that unpacks to more bytes than it declared.
    """
    limits = limits or ArchiveLimits.from_settings()
    kind = archive_kind(path)
    if kind == "zip":
        archive_inspect(path, limits=limits)
    destination.mkdir(parents=True)
    try:
        return _extract(path, kind, destination.resolve(), limits)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError) as exc:
        shutil.rmtree(destination, ignore_errors=True)
        raise ArchiveRejected(f"The archive could not be read: {exc}") from None
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        shutil.rmtree(destination, ignore_errors=True)
        raise ArchiveRejected(f"Two members of the archive collide: {exc.filename}") from None
    except BaseException:
        shutil.rmtree(destination, ignore_errors=True)
        raise


def _extract(path: Path, kind: str, root: Path, limits: ArchiveLimits) -> ArchiveSummary:
    files = written = 0
    if kind == "zip":
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                member = _zip_member(info)
                if member.is_dir:
                    continue
                with archive.open(info) as source:
                    written += _write_member(source, root, member, written, limits)
                files += 1
        return ArchiveSummary(kind=kind, files=files, unpacked_bytes=written)
    with tarfile.open(path) as archive:
        # The same checks as archive_inspect, member by member as the stream is read.
        for member, tar_info in _bounded_with_info(archive, limits):
            if member.is_dir:
                continue
            data = archive.extractfile(tar_info)
            if data is None:  # not a regular file; _tar_member already refused those
                raise ArchiveRejected(f"{member.name!r} is not a regular file.")
            with data:
                written += _write_member(data, root, member, written, limits)
            files += 1
    return ArchiveSummary(kind=kind, files=files, unpacked_bytes=written)


def _bounded_with_info(archive: tarfile.TarFile, limits: ArchiveLimits) -> Iterator[tuple[_Member, tarfile.TarInfo]]:
    infos: list[tarfile.TarInfo] = []

    def members() -> Iterator[_Member]:
        for info in archive:
            infos.append(info)
            yield _tar_member(info)

    for member in _bounded(members(), limits, set()):
        yield member, infos.pop()


def _members(path: Path, kind: str, limits: ArchiveLimits) -> Iterator[_Member]:
    seen: set[str] = set()
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as archive:
                infos: Iterator[_Member] = (_zip_member(info) for info in archive.infolist())
                yield from _bounded(infos, limits, seen)
        else:
            with tarfile.open(path) as archive:
                # Iterating reads headers one by one, so a limit stops the reading of a huge stream early.
                yield from _bounded((_tar_member(info) for info in archive), limits, seen)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ArchiveRejected(f"The archive could not be read: {exc}") from None


def _bounded(members: Iterator[_Member], limits: ArchiveLimits, seen: set[str]) -> Iterator[_Member]:
    count = total = 0
    for member in members:
        count += 1
        if count > limits.max_members:
            raise ArchiveRejected(f"The archive has more than {limits.max_members} members (the limit).")
        if member.name in seen:
            raise ArchiveRejected(f"{member.name!r} appears twice in the archive.")
        seen.add(member.name)
        total += member.size
        if total > limits.max_unpacked_bytes:
            raise ArchiveRejected(
                f"The archive unpacks to more than {limits.max_unpacked_bytes} bytes (the limit); "
                f"reached at {member.name!r}."
            )
        if (
            member.packed is not None
            and member.size > _RATIO_MIN_BYTES
            and member.size > limits.max_ratio * max(member.packed, 1)
        ):
            ratio = member.size / max(member.packed, 1)
            raise ArchiveRejected(
                f"{member.name!r} is compressed {ratio:.0f} times (the limit is {limits.max_ratio:g}): "
                "this looks like a zip bomb."
            )
        yield member


def _safe_name(raw: str) -> str:
    if "\x00" in raw:
        raise ArchiveRejected("A member name contains a NUL character.")
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveRejected(f"{raw!r} is an absolute path; members must be relative.")
    parts = [part for part in PurePosixPath(name).parts if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveRejected(f"{raw!r} leaves the archive's folder (path traversal).")
    if not parts:
        raise ArchiveRejected(f"{raw!r} is not a usable member name.")
    return "/".join(parts)


def _zip_member(info: zipfile.ZipInfo) -> _Member:
    name = _safe_name(info.filename)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ArchiveRejected(f"{info.filename!r} is a symbolic link; links are not accepted.")
    # Many zip writers store permission bits only (no file type): those are regular files.
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ArchiveRejected(f"{info.filename!r} is not a regular file or folder.")
    if info.flag_bits & 0x1:
        raise ArchiveRejected(f"{info.filename!r} is encrypted.")
    return _Member(name=name, is_dir=info.is_dir(), size=info.file_size, packed=info.compress_size)


def _tar_member(info: tarfile.TarInfo) -> _Member:
    name = _safe_name(info.name)
    if info.issym() or info.islnk():
        kind = "symbolic" if info.issym() else "hard"
        raise ArchiveRejected(f"{info.name!r} is a {kind} link; links are not accepted.")
    if not (info.isreg() or info.isdir()):
        raise ArchiveRejected(f"{info.name!r} is not a regular file or folder.")
    return _Member(name=name, is_dir=info.isdir(), size=info.size if info.isreg() else 0, packed=None)


def _write_member(source: IO[bytes], root: Path, member: _Member, written: int, limits: ArchiveLimits) -> int:
    target = root.joinpath(*member.name.split("/"))
    # Belt and braces: the name was checked, and no link can exist under a fresh root, but verify anyway.
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    if not parent.resolve().is_relative_to(root):
        raise ArchiveRejected(f"{member.name!r} leaves the archive's folder.")
    count = 0
    # O_EXCL|O_NOFOLLOW: never write through a link or over an earlier member.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o640)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            count += len(chunk)
            if count > member.size or written + count > limits.max_unpacked_bytes:
                raise ArchiveRejected(f"{member.name!r} unpacks to more bytes than its header declares.")
            out.write(chunk)
    return count
