"""Benchmark: the checked unpacking of an uploaded audio archive against a plain ``extractall``.

Builds one zip (deflated) and one tar.gz of N random-noise WAV files (noise, like real audio, barely
compresses), then times, in the same run, for each format:

* ``archive_inspect``: the member-list check done while the upload request waits;
* ``archive_extract``: that check again plus the member-by-member write with byte counting (the worker's path);
* the baseline: ``ZipFile.extractall`` / ``TarFile.extractall(filter="data")`` of the same archive.

It prints the median of ``--repeat`` runs, the throughput in MB/s of unpacked data, and the ratio of each
checked path to the baseline. No database is used.

Usage: .venv/bin/python bench/import_archive.py [--files 200] [--seconds 5] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
import wave
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate.settings")
    import django

    django.setup()


def write_wav(path: Path, *, seconds: float, seed: int, sr: int = 44100) -> None:
    rng = np.random.default_rng(seed)
    samples = (rng.standard_normal(int(seconds * sr) * 2) * 3000).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(sr)
        out.writeframes(samples.tobytes())


def build(workdir: Path, files: int, seconds: float) -> tuple[Path, Path, int]:
    source = workdir / "src"
    for i in range(files):
        write_wav(source / f"sys{i % 4}" / f"clip{i:05d}.wav", seconds=seconds, seed=i)
    zip_path, tar_path = workdir / "audio.zip", workdir / "audio.tar.gz"
    members = sorted(p for p in source.rglob("*.wav"))
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in members:
            archive.write(path, path.relative_to(source).as_posix())
    with tarfile.open(tar_path, "w:gz") as tar:
        for path in members:
            tar.add(path, path.relative_to(source).as_posix())
    return zip_path, tar_path, sum(p.stat().st_size for p in members)


def timed(action: Callable[[Path], object], workdir: Path, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        target = workdir / "out"
        shutil.rmtree(target, ignore_errors=True)
        started = time.perf_counter()
        action(target)
        times.append(time.perf_counter() - started)
    shutil.rmtree(workdir / "out", ignore_errors=True)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0, help="Length of each stereo 44.1 kHz WAV.")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    setup_django()
    from annotate.catalog.archives import ArchiveLimits, archive_extract, archive_inspect

    limits = ArchiveLimits(max_unpacked_bytes=1 << 40, max_members=1_000_000, max_ratio=100.0)
    with tempfile.TemporaryDirectory(prefix="bench-import-archive-") as tmp:
        workdir = Path(tmp)
        zip_path, tar_path, unpacked = build(workdir, args.files, args.seconds)
        mb = unpacked / 1e6
        print(
            f"{args.files} WAV files, {mb:.1f} MB unpacked; zip {zip_path.stat().st_size / 1e6:.1f} MB, "
            f"tar.gz {tar_path.stat().st_size / 1e6:.1f} MB; median of {args.repeat} runs"
        )

        def plain_zip(target: Path) -> None:
            with zipfile.ZipFile(zip_path) as archive:
                archive.extractall(target)

        def plain_tar(target: Path) -> None:
            with tarfile.open(tar_path) as archive:
                archive.extractall(target, filter="data")

        for name, path, baseline in (("zip", zip_path, plain_zip), ("tar.gz", tar_path, plain_tar)):

            def check(_target: Path, archive: Path = path) -> object:
                return archive_inspect(archive, limits=limits)

            def unpack(target: Path, archive: Path = path) -> object:
                return archive_extract(archive, target, limits=limits)

            base = timed(baseline, workdir, args.repeat)
            inspect = timed(check, workdir, args.repeat)
            extract = timed(unpack, workdir, args.repeat)
            print(f"{name}:")
            print(f"  baseline extractall     {base * 1000:8.1f} ms  {mb / base:7.1f} MB/s")
            print(f"  archive_inspect (check) {inspect * 1000:8.1f} ms  ratio to baseline {inspect / base:5.2f}")
            print(
                f"  archive_extract (all)   {extract * 1000:8.1f} ms  {mb / extract:7.1f} MB/s  "
                f"ratio to baseline {extract / base:5.2f}"
            )


if __name__ == "__main__":
    main()
