import hashlib
from pathlib import Path

from cmi_common.hashing import BLOCK, file_sha256, files_sha256


def test_it_hashes_a_file_larger_than_one_block(tmp_path: Path) -> None:
    data = bytes(range(256)) * (BLOCK // 256 + 3)
    (tmp_path / "big.bin").write_bytes(data)
    assert file_sha256(tmp_path / "big.bin") == hashlib.sha256(data).hexdigest()


def test_it_hashes_several_files_as_their_concatenation_and_counts_bytes(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    (tmp_path / "b").write_bytes(b"de")
    assert files_sha256([tmp_path / "a", str(tmp_path / "b")]) == (hashlib.sha256(b"abcde").hexdigest(), 5)
    assert files_sha256([]) == (hashlib.sha256().hexdigest(), 0)
