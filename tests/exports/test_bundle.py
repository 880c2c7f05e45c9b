"""Export files: hashing writers, reproducible archives, the code-version stamp. No database."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import threading
import zlib
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


def _writing_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("export-write")]


@pytest.mark.parametrize("buffer_bytes", [1, 100, 1 << 20])
def test_written_behind_it_writes_and_hashes_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, buffer_bytes: int
) -> None:
    monkeypatch.setattr(bundle, "WRITE_BUFFER_BYTES", buffer_bytes)
    rng = random.Random(buffer_bytes)
    chunks = [rng.randbytes(rng.randrange(0, 300)) for _ in range(2000)]
    with bundle.WriteBehind(in_flight=2) as behind:
        writers = [bundle.HashingFile(tmp_path / f"{n}.jsonl", behind=behind) for n in range(3)]
        for index, chunk in enumerate(chunks):
            writers[index % 3].write(chunk)
        digests = [writer.close() for writer in writers]
    for n, digest in enumerate(digests):
        data = (tmp_path / f"{n}.jsonl").read_bytes()
        assert data == b"".join(chunks[n::3])
        assert digest == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert _writing_threads() == []


def test_a_short_gathered_write_is_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "WRITE_BUFFER_BYTES", 1000)
    real_write = os.write

    def short(fd: int, buffers: list[bytes]) -> int:  # writes part of its first buffer only
        return real_write(fd, buffers[0][: len(buffers[0]) // 2 + 1])

    monkeypatch.setattr(bundle.os, "writev", short)
    chunks = [bytes([n % 256]) * (n % 97 + 1) for n in range(500)]
    with bundle.WriteBehind() as behind:
        writer = bundle.HashingFile(tmp_path / "votes.jsonl", behind=behind)
        for chunk in chunks:
            writer.write(chunk)
        digest = writer.close()
    assert (tmp_path / "votes.jsonl").read_bytes() == b"".join(chunks)
    assert digest["sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_an_error_on_the_writing_thread_reaches_the_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "WRITE_BUFFER_BYTES", 10)
    with bundle.WriteBehind(in_flight=1) as behind:
        writer = bundle.HashingFile(tmp_path / "votes.jsonl", behind=behind)

        def full(fd: int, buffers: list[bytes]) -> int:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(bundle.os, "writev", full)
        with pytest.raises(OSError, match="No space left"):
            for _ in range(5):
                writer.write(b"x" * 20)
            writer.close()
        writer.abandon()
    assert _writing_threads() == []


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


# --- tar.gz compressed while writing ------------------------------------------------------------

BLOCK = 1000  # bytes: small, so a few kilobytes of rows span several blocks


def _lines(seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [json.dumps({"i": i, "x": rng.random()}).encode() + b"\n" for i in range(300)]


def _export_dir(root: Path, *, chunk: int = 1) -> tuple[Path, bundle.FileDigests, bundle.TarGzPipeline]:
    """An export directory whose JSONL files were written through a pipeline (``chunk`` lines per write),
    audio both smaller and larger than a block, and a manifest; the caller closes the pipeline."""
    out = root / "export-7"
    (out / "audio").mkdir(parents=True)
    pipeline = bundle.TarGzPipeline(root, block_bytes=BLOCK)
    files: bundle.FileDigests = {}
    for name, seed in (("votes.jsonl", 0), ("test.jsonl", 1), ("validation.jsonl", None)):
        writer = bundle.HashingFile(out / name, blocks=pipeline.blocks(name, out / name))
        lines = _lines(seed) if seed is not None else []  # validation.jsonl stays empty
        for start in range(0, len(lines), chunk):
            writer.write(b"".join(lines[start : start + chunk]))
        files[name] = writer.close()
    rng = random.Random(2)
    for name, size in (("audio/a.wav", 3 * BLOCK + 17), ("audio/b.wav", 512), ("audio/c.wav", BLOCK)):
        data = rng.randbytes(size)
        (out / name).write_bytes(data)
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": size}
    bundle.write_text(out / "README.md", "# Données\n", files, "README.md")
    (out / "manifest.json").write_text(json.dumps({"files": dict(sorted(files.items()))}))
    return out, files, pipeline


def _archive(root: Path, *, chunk: int = 1) -> bytes:
    out, _, pipeline = _export_dir(root, chunk=chunk)
    with pipeline:
        name = bundle.write_archive(root, out, "tar.gz", pipeline=pipeline)
    return (root / name).read_bytes()


def _gzip_members(data: bytes) -> list[bytes]:
    """The decompressed contents of each gzip member, in order."""
    members = []
    while data:
        member = zlib.decompressobj(wbits=31)
        members.append(member.decompress(data))
        data = member.unused_data
    return members


def _tarfile_reference(out: Path) -> bytes:
    """The uncompressed tar that ``tarfile`` itself writes for the directory (how exports were archived before)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            info = tar.gettarinfo(str(path), arcname=f"{out.name}/{path.relative_to(out).as_posix()}")
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    return buffer.getvalue()


def _export_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("export-gzip")]


def test_the_pipelined_tar_gz_holds_exactly_the_tar_that_tarfile_writes(tmp_path: Path) -> None:
    data = _archive(tmp_path)
    assert len(_gzip_members(data)) > 10  # header, blocks and padding members, concatenated
    assert gzip.decompress(data) == _tarfile_reference(tmp_path / "export-7")


def test_the_pipelined_tar_gz_is_byte_identical_whatever_the_writes_and_timing(tmp_path: Path) -> None:
    runs = enumerate((1, 1, 7, 300))  # lines per write: the cut points must not depend on them
    archives = {_archive(tmp_path / f"run-{index}", chunk=chunk) for index, chunk in runs}
    assert len(archives) == 1


def test_it_cuts_blocks_at_fixed_offsets_of_the_file(tmp_path: Path) -> None:
    data = b"".join(_lines())
    pieces = []
    for chunk in (1, 13, len(data)):
        with bundle.TarGzPipeline(tmp_path, block_bytes=BLOCK) as pipeline:
            writer = bundle.HashingFile(
                tmp_path / "votes.jsonl", blocks=pipeline.blocks("votes.jsonl", tmp_path / "votes.jsonl")
            )
            for start in range(0, len(data), chunk):
                writer.write(data[start : start + chunk])
            writer.close()
            pipeline.finish_pieces()
            pieces.append(pipeline.pieces["votes.jsonl"].piece.read_bytes())
    assert pieces[0] == pieces[1] == pieces[2]
    members = _gzip_members(pieces[0])
    assert [len(m) for m in members] == [BLOCK] * (len(data) // BLOCK) + [len(data) % BLOCK]
    assert b"".join(members) == data


def test_the_extracted_archive_is_the_directory(tmp_path: Path) -> None:
    out, files, pipeline = _export_dir(tmp_path / "build")
    with pipeline:
        archive = tmp_path / "build" / bundle.write_archive(tmp_path / "build", out, "tar.gz", pipeline=pipeline)
    expected = {f"export-7/{name}": digest["sha256"] for name, digest in files.items()}
    expected["export-7/manifest.json"] = hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(tmp_path / "tarfile", filter="data")
    (tmp_path / "tar").mkdir()
    subprocess.run(["tar", "xzf", str(archive), "-C", str(tmp_path / "tar")], check=True)
    for extracted in (tmp_path / "tarfile", tmp_path / "tar"):
        found = {
            p.relative_to(extracted).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in extracted.rglob("*")
            if p.is_file()
        }
        assert found == expected
    assert json.loads((tmp_path / "tar" / "export-7" / "manifest.json").read_text())["files"] == files


def test_it_stops_its_thread_and_removes_its_pieces_when_the_export_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="database went away"):
        with bundle.archive_pipeline(tmp_path, "tar.gz") as pipeline:
            assert pipeline is not None
            writer = bundle.HashingFile(
                tmp_path / "votes.jsonl", blocks=pipeline.blocks("votes.jsonl", tmp_path / "votes.jsonl")
            )
            writer.write(os.urandom(3 * bundle.ARCHIVE_BLOCK_BYTES))  # blocks queued and in compression
            assert _export_threads()
            raise RuntimeError("database went away")
    assert _export_threads() == []
    assert [p.name for p in tmp_path.iterdir()] == ["votes.jsonl"]


def test_an_error_in_the_compressor_fails_the_writer_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(data: bytes, level: int = 6) -> bytes:
        raise MemoryError("no room to compress")

    monkeypatch.setattr(bundle, "gzip_member", broken)
    with pytest.raises(MemoryError, match="no room"):
        with bundle.TarGzPipeline(tmp_path, block_bytes=BLOCK, in_flight=2) as pipeline:
            writer = bundle.HashingFile(
                tmp_path / "votes.jsonl", blocks=pipeline.blocks("votes.jsonl", tmp_path / "votes.jsonl")
            )
            for line in _lines():
                writer.write(line)
    assert _export_threads() == []


def test_it_uses_no_pipeline_for_other_archives(tmp_path: Path) -> None:
    for archive in ("zip", "none"):
        with bundle.archive_pipeline(tmp_path, archive) as pipeline:
            assert pipeline is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs tar")
def test_tar_lists_the_members_in_sorted_order(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_archive(tmp_path / "build"))
    listing = subprocess.run(["tar", "tzf", str(archive)], check=True, capture_output=True, text=True).stdout
    assert listing.split() == [
        f"export-7/{name}"
        for name in sorted(
            [
                "README.md",
                "manifest.json",
                "votes.jsonl",
                "test.jsonl",
                "validation.jsonl",
                "audio/a.wav",
                "audio/b.wav",
                "audio/c.wav",
            ],
            key=lambda n: Path(n),
        )
    ]
