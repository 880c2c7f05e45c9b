"""Export files: hashing writers, reproducible archives, the code-version stamp. No database."""

from __future__ import annotations

import hashlib
import tarfile
from importlib import metadata
from pathlib import Path

import pytest

from annotate.exports import bundle


def test_it_hashes_what_it_writes(tmp_path: Path) -> None:
    writer = bundle.HashingFile(tmp_path / "x.jsonl")
    writer.write(b'{"a": 1}\n')
    writer.write(b'{"a": 2}\n')
    digest = writer.close()
    data = (tmp_path / "x.jsonl").read_bytes()
    assert digest == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


@pytest.mark.parametrize("archive", ["tar.gz", "zip"])
def test_it_builds_byte_identical_archives_of_the_same_files(tmp_path: Path, archive: str) -> None:
    names = []
    for attempt in ("one", "two"):
        out = tmp_path / attempt / "export-1"
        (out / "audio").mkdir(parents=True)
        (out / "votes.jsonl").write_text('{"x": 1}\n')
        (out / "audio" / "abc.wav").write_bytes(b"RIFF....")
        names.append(tmp_path / attempt / bundle.write_archive(tmp_path / attempt, out, archive))
    assert names[0].name == f"export-1.{archive}"
    assert names[0].read_bytes() == names[1].read_bytes()


def test_it_writes_no_archive_when_asked_for_none(tmp_path: Path) -> None:
    out = tmp_path / "export-1"
    out.mkdir()
    assert bundle.write_archive(tmp_path, out, "none") == ""
    assert list(tmp_path.iterdir()) == [out]


def test_it_zeroes_owners_and_times_in_the_tarball(tmp_path: Path) -> None:
    out = tmp_path / "export-1"
    out.mkdir()
    (out / "README.md").write_text("hi")
    with tarfile.open(tmp_path / bundle.write_archive(tmp_path, out, "tar.gz")) as tar:
        (member,) = tar.getmembers()
    assert (member.name, member.mtime, member.uid, member.uname, member.mode) == ("export-1/README.md", 0, 0, "", 0o644)


def test_it_falls_back_to_the_package_version_without_git(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_git(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(bundle.subprocess, "run", no_git)
    assert bundle.code_version() == f"cmi-annotate {metadata.version('cmi-annotate')}"
