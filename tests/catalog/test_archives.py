"""Unpacking uploaded audio archives: what is refused, and that a good archive unpacks exactly."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from annotate.catalog.archives import ArchiveLimits, ArchiveRejected, archive_extract, archive_inspect

LIMITS = ArchiveLimits(max_unpacked_bytes=8 * 1024 * 1024, max_members=10, max_ratio=100.0)


def _zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:  # type: ignore[call-overload]
        for info in members:
            payload = (data or {}).get(info.name)
            archive.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def _file_info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def test_it_unpacks_a_good_zip_exactly(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"sysA/one.wav": b"RIFF-one", "sysB/two.wav": b"RIFF-two", "sysA/": b""})
    summary = archive_extract(archive, tmp_path / "out", limits=LIMITS)
    assert (summary.kind, summary.files, summary.unpacked_bytes) == ("zip", 2, 16)
    assert (tmp_path / "out/sysA/one.wav").read_bytes() == b"RIFF-one"
    assert (tmp_path / "out/sysB/two.wav").read_bytes() == b"RIFF-two"


def test_it_unpacks_a_good_tar_gz_exactly(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar.gz", [_file_info("x/clip.flac", 5)], {"x/clip.flac": b"fLaC!"})
    summary = archive_extract(archive, tmp_path / "out", limits=LIMITS)
    assert (summary.kind, summary.files) == ("tar", 1)
    assert (tmp_path / "out/x/clip.flac").read_bytes() == b"fLaC!"


@pytest.mark.parametrize("name", ["../evil.wav", "a/../../evil.wav", "/etc/evil.wav", "C:/evil.wav", "..\\evil.wav"])
def test_it_refuses_path_traversal_and_absolute_names_in_a_zip(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "a.zip", {"ok.wav": b"1", name: b"2"})
    with pytest.raises(ArchiveRejected, match="path traversal|absolute path"):
        archive_extract(archive, tmp_path / "out" / "deep", limits=LIMITS)
    assert not (tmp_path / "evil.wav").exists() and not (tmp_path / "out").exists()


def test_it_refuses_path_traversal_in_a_tar(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar", [_file_info("../evil.wav", 1)], {"../evil.wav": b"x"}, mode="w")
    with pytest.raises(ArchiveRejected, match="path traversal"):
        archive_inspect(archive, limits=LIMITS)


def test_it_refuses_a_symbolic_link_in_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w") as archive:
        link = zipfile.ZipInfo("sysA/link.wav")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(ArchiveRejected, match="symbolic link"):
        archive_extract(path, tmp_path / "out", limits=LIMITS)
    assert not (tmp_path / "out" / "sysA").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_it_refuses_symbolic_and_hard_links_in_a_tar(tmp_path: Path, kind: bytes) -> None:
    link = tarfile.TarInfo("clip.wav")
    link.type = kind
    link.linkname = "/etc/passwd"
    archive = _tar(tmp_path / "a.tgz", [link])
    with pytest.raises(ArchiveRejected, match="symbolic link|hard link"):
        archive_extract(archive, tmp_path / "out", limits=LIMITS)
    assert not (tmp_path / "out" / "clip.wav").exists()


def test_it_refuses_devices_and_fifos_in_a_tar(tmp_path: Path) -> None:
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    with pytest.raises(ArchiveRejected, match="not a regular file"):
        archive_inspect(_tar(tmp_path / "a.tar", [fifo], mode="w"), limits=LIMITS)


def test_it_refuses_a_zip_bomb_by_its_compression_ratio(tmp_path: Path) -> None:
    # 4 MiB of zeros deflate to about 4 KiB: a ratio near 1000, far above the limit of 100.
    archive = _zip(tmp_path / "bomb.zip", {"zeros.wav": bytes(4 * 1024 * 1024)})
    with pytest.raises(ArchiveRejected, match="compressed .* times .*zip bomb"):
        archive_extract(archive, tmp_path / "out", limits=LIMITS)
    assert not (tmp_path / "out" / "zeros.wav").exists()


def test_it_refuses_an_archive_that_unpacks_beyond_the_total_limit(tmp_path: Path) -> None:
    # Stored (no compression), so only the total limit applies: 3 x 3 MiB > 8 MiB.
    members = {f"m{i}.wav": bytes([i]) * (3 * 1024 * 1024) for i in range(3)}
    archive = _zip(tmp_path / "big.zip", members, compression=zipfile.ZIP_STORED)
    with pytest.raises(ArchiveRejected, match="unpacks to more than 8388608 bytes"):
        archive_inspect(archive, limits=LIMITS)


def test_it_refuses_a_tar_that_declares_a_huge_member_before_reading_it(tmp_path: Path) -> None:
    # A header claiming 1 TiB: refused from the header alone (the data is never read).
    path = tmp_path / "huge.tar"
    header = _file_info("huge.wav", 1 << 40).tobuf()
    path.write_bytes(header + bytes(1024))
    with pytest.raises(ArchiveRejected, match="unpacks to more than"):
        archive_inspect(path, limits=LIMITS)


def test_it_refuses_too_many_members(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "many.zip", {f"f{i}.wav": b"x" for i in range(11)})
    with pytest.raises(ArchiveRejected, match="more than 10 members"):
        archive_inspect(archive, limits=LIMITS)


def test_it_refuses_duplicate_members(tmp_path: Path) -> None:
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning):
        archive.writestr("a.wav", b"1")
        archive.writestr("a.wav", b"2")
    with pytest.raises(ArchiveRejected, match="appears twice"):
        archive_inspect(path, limits=LIMITS)


def test_it_refuses_a_member_larger_than_its_header_says(tmp_path: Path) -> None:
    # Tamper with the central directory and local header: declare 3 bytes for a 12-byte member.
    path = _zip(tmp_path / "liar.zip", {"a.wav": b"twelve bytes"}, compression=zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature) + offset
        data[at : at + 4] = (3).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveRejected):
        archive_extract(path, tmp_path / "out", limits=LIMITS)


def test_it_refuses_what_is_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "notes.zip"
    path.write_bytes(b"just text, not an archive")
    with pytest.raises(ArchiveRejected, match="not a zip or tar"):
        archive_inspect(path, limits=LIMITS)


def test_it_leaves_nothing_when_a_tar_turns_bad_after_good_members(tmp_path: Path) -> None:
    link = tarfile.TarInfo("b/link.wav")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../etc/passwd"
    archive = _tar(tmp_path / "a.tgz", [_file_info("a/good.wav", 4), link], {"a/good.wav": b"RIFF"})
    with pytest.raises(ArchiveRejected, match="symbolic link"):
        archive_extract(archive, tmp_path / "out", limits=LIMITS)
    assert not (tmp_path / "out").exists()
