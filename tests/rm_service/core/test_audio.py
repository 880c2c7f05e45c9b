from pathlib import Path

import numpy as np
import pytest

from rm_service.core.audio import AudioError, file_sha256, load_audio, to_mono, window_key, windows_for
from rm_service.core.synth import MusicSpec, render, write_wav


def test_it_loads_mono_resampled_and_cropped(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    write_wav(path, render(MusicSpec(), duration_s=3.0, sr=44100, seed=0, stereo=True), 44100)
    full = load_audio(path, sr=24000)
    assert full.ndim == 1 and full.dtype == np.float32 and abs(len(full) - 72000) <= 1
    assert abs(len(load_audio(path, sr=24000, max_dur=1.0)) - 24000) <= 1


def test_it_reports_missing_and_undecodable_files_by_name(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="not found: .*nope.wav"):
        load_audio(tmp_path / "nope.wav", sr=24000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioError, match="cannot decode audio file .*bad.wav"):
        load_audio(bad, sr=24000)


def test_it_downmixes_either_channel_layout() -> None:
    left, right = np.ones(100, np.float32), np.zeros(100, np.float32)
    np.testing.assert_allclose(to_mono(np.stack([left, right], axis=1)), 0.5)
    np.testing.assert_allclose(to_mono(np.stack([left, right], axis=0)), 0.5)


def test_it_hashes_file_content(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 10)
    b.write_bytes(b"x" * 10)
    import hashlib

    assert file_sha256(a) == file_sha256(b) == hashlib.sha256(b"x" * 10).hexdigest()
    b.write_bytes(b"y" * 10)
    assert file_sha256(a) != file_sha256(b)


def test_it_cuts_strategy_windows() -> None:
    sr = 100
    wav = np.zeros(35 * sr, np.float32)
    assert [len(w) for w in windows_for(wav, sr, "first120", None)] == [3500]
    assert [len(w) for w in windows_for(wav, sr, "first10", None)] == [1000]
    assert [len(w) for w in windows_for(wav, sr, "mean10", None)] == [1000, 1000, 1000, 500]
    assert [len(w) for w in windows_for(np.zeros(2050, np.float32), sr, "mean10", None)] == [1000, 1000]
    assert window_key("first120", None) == "first120@120" and window_key("mean10", 30) == "mean10@30"


def test_it_spreads_whole10_windows_over_the_whole_track_at_bounded_cost() -> None:
    sr = 100
    short = np.arange(2500, dtype=np.float32)  # 25 s: three windows, the last one ending at the end
    windows = windows_for(short, sr, "whole10", None)
    assert [len(w) for w in windows] == [1000, 1000, 1000]
    assert windows[0][0] == 0 and windows[-1][-1] == 2499
    long = np.arange(600 * sr, dtype=np.float32)  # 10 min: still 12 windows, the first and last heard
    windows = windows_for(long, sr, "whole10", None)
    assert len(windows) == 12 and windows[0][0] == 0 and windows[-1][-1] == 600 * sr - 1
    assert window_key("whole10", None) == "whole10@1800"
