"""Stage-1 pair construction from unlabelled music: labels right by construction, levels matched."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.signal import fftconvolve

from rm_service.core.pretrain import (
    DEFECTS,
    SR,
    PretrainSpec,
    ReservedCorpusError,
    apply_defect,
    build_pretrain_pairs,
    find_tracks,
    gated_rms_db,
    track_split,
)
from rm_service.core.synth import MusicSpec, render

SPECS = [
    MusicSpec(tempo_bpm=70, mode="minor", instrument="strings", register=-1, drums=False),
    MusicSpec(tempo_bpm=140, mode="major", instrument="pluck", register=1, drums=True),
    MusicSpec(tempo_bpm=100, mode="major", instrument="organ", register=0, drums=False),
    MusicSpec(tempo_bpm=125, mode="minor", instrument="piano", register=0, drums=True),
]


@pytest.fixture(scope="module")
def music_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("music")
    for i, spec in enumerate(SPECS):
        soundfile.write(root / f"track{i}.wav", render(spec, duration_s=12.0, sr=SR, seed=i), SR, subtype="FLOAT")
    return root


@pytest.fixture(scope="module")
def pairs(music_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pairs")
    spec = PretrainSpec(n_alignment=12, n_musicality=16, n_text=6, formats=("wav",), validation_fraction=0.0)
    build_pretrain_pairs([music_dir], out, spec=spec, use_split="all")
    return out


def _rows(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "train.jsonl").open()]


def _read(root: Path, rel: str) -> np.ndarray:
    return soundfile.read(root / rel, dtype="float32")[0]


def _best_match(snippet: np.ndarray, track: np.ndarray) -> float:
    """Highest normalised correlation of ``snippet`` against any position of ``track`` (scale-invariant)."""
    dots = fftconvolve(track, snippet[::-1], mode="valid")
    energy = np.sqrt(fftconvolve(track**2, np.ones(len(snippet)), mode="valid").clip(1e-12))
    return float(np.max(dots / (energy * np.linalg.norm(snippet) + 1e-12)))


def test_it_prefers_the_candidate_cut_from_the_reference_track(pairs: Path, music_dir: Path) -> None:
    rows = [r for r in _rows(pairs) if r["source"] == "pretrain-alignment"]
    assert len(rows) == 12
    for row in rows:
        assert "preference-musicality" not in row  # the other head is unlabelled, not a tie
        preferred, other = (
            ("audio-path", "audio2") if row["preference-alignment"] == "model_a" else ("audio2", "audio-path")
        )
        same = soundfile.read(music_dir / row["pretrain"]["same"], dtype="float32")[0]
        assert row["pretrain"]["same"] != row["pretrain"]["other"]
        assert _best_match(_read(pairs, row[preferred])[SR : 2 * SR], same) > 0.99
        assert _best_match(_read(pairs, row[other])[SR : 2 * SR], same) < 0.9
        assert _best_match(_read(pairs, row["ref-audio-path"])[SR : 2 * SR], same) > 0.99


def test_it_prefers_the_milder_defect_and_matches_the_levels_of_a_pair(pairs: Path) -> None:
    rows = [r for r in _rows(pairs) if r["source"] == "pretrain-musicality"]
    assert len(rows) == 16
    for row in rows:
        assert "preference-alignment" not in row
        sev_a, sev_b = row["pretrain"]["severities"]
        assert sev_a != sev_b
        assert row["preference-musicality"] == ("model_a" if sev_a < sev_b else "model_b")
        level_a, level_b = gated_rms_db(_read(pairs, row["audio-path"])), gated_rms_db(_read(pairs, row["audio2"]))
        assert abs(level_a - level_b) < 0.5, row["pretrain"]  # loudness is never the cue
    # Both orders occur, so position is no cue either.
    assert {r["preference-musicality"] for r in rows} == {"model_a", "model_b"}


def test_it_describes_text_pairs_from_the_audio(pairs: Path) -> None:
    rows = [r for r in _rows(pairs) if r["source"] == "pretrain-text"]
    assert rows
    for row in rows:
        assert row["prompt"].startswith("A ") and row["modality"] == "T"
        assert any(word in row["prompt"] for word in row["pretrain"]["attribute"])


@pytest.mark.parametrize("kind", sorted(DEFECTS))
def test_it_applies_each_defect_audibly_and_keeps_the_length(kind: str) -> None:
    clean = render(SPECS[1], duration_s=3.0, sr=SR, seed=0)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(apply_defect(clean, kind, 0.0, rng), clean)
    broken = apply_defect(clean, kind, 1.0, rng)
    assert broken.shape == clean.shape and np.all(np.isfinite(broken))
    assert float(np.abs(broken - clean).mean()) > 0.01 * float(np.abs(clean).mean())


def test_it_refuses_the_reserved_acceptance_corpora(tmp_path: Path) -> None:
    reserved = tmp_path / "wesnoth-1.16-music"
    reserved.mkdir()
    with pytest.raises(ReservedCorpusError, match="reserved"):
        find_tracks([reserved])


def test_it_keeps_a_fixed_quarter_of_tracks_for_evaluation() -> None:
    names = [f"track-{i}.ogg" for i in range(400)]
    held_out = [n for n in names if track_split(n) == "eval"]
    assert 0.18 < len(held_out) / len(names) < 0.32
    assert held_out == [n for n in names if track_split(n) == "eval"]  # deterministic


def test_it_reads_tracks_inside_archives(tmp_path: Path, music_dir: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp_path / "music.pk3", "w") as archive:
        archive.write(music_dir / "track0.wav", "sound/cdtracks/track0.wav")
        archive.writestr("readme.txt", "not audio")
    tracks = find_tracks([tmp_path / "music.pk3"])
    assert [t.id for t in tracks] == ["music.pk3:sound/cdtracks/track0.wav"]
