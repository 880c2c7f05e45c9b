"""The starter model and the pretrain command, at toy sizes on synthesised music (never a Debian corpus)."""

import json
from pathlib import Path

import pytest
import soundfile

from rm_service.core.checkpoint import load_checkpoint
from rm_service.core.cli import main
from rm_service.core.pretrain import SR, PretrainSpec
from rm_service.core.starter import StarterConfig, build_starter, starter_panel
from rm_service.core.synth import INSTRUMENTS, MusicSpec, render

TOY = StarterConfig(
    pairs=PretrainSpec(n_alignment=6, n_musicality=6, n_text=2, excerpt_s=(1.5, 2.0), ref_s=(2.0, 3.0)),
    synthetic_tracks=3,
    synthetic_seconds=6.0,
    steps=3,
    batch_size=4,
)


def test_it_builds_the_starter_from_synthesis_alone_and_reuses_it(tmp_path: Path) -> None:
    checkpoint = build_starter(tmp_path / "starter", config=TOY, corpus=[])
    record = json.loads((tmp_path / "starter" / "starter.json").read_text())
    assert record["checkpoint"] == str(checkpoint) and record["debian_packages"] == [] and record["tracks"] == 0
    assert load_checkpoint(checkpoint).metadata["step"] == 3
    weights = (checkpoint / "model.safetensors").stat().st_mtime_ns
    assert build_starter(tmp_path / "starter", config=TOY, corpus=[]) == checkpoint  # reused, not retrained
    assert (checkpoint / "model.safetensors").stat().st_mtime_ns == weights


def test_it_pretrains_from_a_folder_and_prints_the_checkpoint_last(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    music = tmp_path / "music"
    music.mkdir()
    for i in range(3):
        spec = MusicSpec(tempo_bpm=80 + 30 * i, mode="major", instrument=INSTRUMENTS[i], register=0)
        soundfile.write(music / f"song{i}.wav", render(spec, duration_s=9.0, sr=SR, seed=i), SR)
    argv = ["pretrain", "--audio-dir", str(music), "--out", str(tmp_path / "pt"), "--alignment-pairs", "4"]
    argv += ["--musicality-pairs", "4", "--text-pairs", "0", "--steps", "2", "--batch-size", "4"]
    assert main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert Path(last) == tmp_path / "pt" / "run" / "model"
    assert load_checkpoint(last).config.ref_path


def test_it_refuses_a_reserved_corpus_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reserved = tmp_path / "ufoai-music"
    reserved.mkdir()
    assert main(["pretrain", "--audio-dir", str(reserved), "--out", str(tmp_path / "pt")]) == 2
    assert "reserved" in capsys.readouterr().err


def test_it_measures_the_starter_panel_on_held_out_pieces_once(tmp_path: Path) -> None:
    build_starter(tmp_path / "starter", config=TOY, corpus=[])
    panel = starter_panel(tmp_path / "starter", n=4)
    kinds = [s["kind"] for s in panel["systems"]]
    assert kinds.count("model") == 1 and kinds.count("untrained") == 3 and kinds.count("baseline") == 4
    assert panel["n"] == {"alignment": 4, "musicality": 4} and panel["source"].startswith("8 held-out tracks")
    held_out = set(json.loads((tmp_path / "starter" / "eval" / "summary.json").read_text())["track_ids"]["train"])
    trained = json.loads((tmp_path / "starter" / "pairs" / "summary.json").read_text())["track_ids"]
    assert not held_out & {t for ids in trained.values() for t in ids}  # no piece both trains and evaluates
    written = (tmp_path / "starter" / "panel.json").stat().st_mtime_ns
    assert starter_panel(tmp_path / "starter", n=4) == panel  # reused, not recomputed
    assert (tmp_path / "starter" / "panel.json").stat().st_mtime_ns == written
