"""The evaluation panel: untrained seeds, one-feature baselines, the gain probe and the verdict."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from rm_service.core.encoders.builtin import BuiltinEncoder
from rm_service.core.model import RewardModel
from rm_service.core.panel import format_panel, gain_probe, run_panel
from rm_service.core.pretrain import SR, PretrainSpec, build_pretrain_pairs
from rm_service.core.score import Scorer
from rm_service.core.synth import INSTRUMENTS, MusicSpec, render

from .conftest import tiny_config


@pytest.fixture(scope="module")
def panel_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    music = tmp_path_factory.mktemp("music")
    for i in range(4):
        spec = MusicSpec(
            tempo_bpm=70 + 20 * i, mode=("major", "minor")[i % 2], instrument=INSTRUMENTS[i], register=i % 3 - 1
        )
        soundfile.write(music / f"t{i}.wav", render(spec, duration_s=10.0, sr=SR, seed=i), SR, subtype="FLOAT")
    out = tmp_path_factory.mktemp("panel")
    spec = PretrainSpec(  # type: ignore[assignment]
        n_alignment=8,
        n_musicality=8,
        n_text=0,
        excerpt_s=(2.0, 3.0),
        ref_s=(3.0, 4.0),
        defects=("noise",),
        clean_vs_degraded=True,
        validation_fraction=0.0,
        formats=("wav",),
    )
    build_pretrain_pairs([music], out, spec=spec, use_split="all")  # type: ignore[arg-type]
    return out


def _scorer(encoder: object) -> Scorer:
    torch.manual_seed(0)
    model = RewardModel(tiny_config(audio_in_dim=encoder.audio_dim, text_in_dim=encoder.text_dim))  # type: ignore[attr-defined]
    return Scorer(model, encoder)  # type: ignore[arg-type]


def test_it_puts_the_model_beside_untrained_seeds_and_feature_baselines(panel_data: Path) -> None:
    panel = run_panel(
        jsonl=panel_data / "train.jsonl", dataset_root=panel_data, scorer=_scorer(BuiltinEncoder(text_model="hash"))
    )
    names = [s["name"] for s in panel["systems"]]
    assert names[0] == "model" and sum(s["kind"] == "untrained" for s in panel["systems"]) == 3
    assert panel["n"] == {"alignment": 8, "musicality": 8}
    by_name = {s["name"]: s for s in panel["systems"]}
    # Noise raises spectral flatness: the one-line rule gets every clean-vs-noisy pair right.
    assert by_name["spectral flatness (lower is better)"]["musicality"] == 1.0
    assert by_name["spectral flatness (lower is better)"]["alignment"] is None
    assert by_name["mean log-mel cosine"]["alignment"] >= 0.8
    # The model here is an untrained seed itself, so it cannot beat all of its baselines.
    assert panel["beats_baselines"] is False
    assert set(panel["verdict"]) == {"alignment", "musicality"}
    assert "DOES NOT BEAT" in format_panel(panel)


def test_it_finds_the_builtin_encoder_level_invariant(panel_data: Path) -> None:
    from rm_service.core.data import load_dataset

    pairs = load_dataset(panel_data / "train.jsonl", dataset_root=panel_data).pairs
    probe = gain_probe(_scorer(BuiltinEncoder(text_model="hash")), pairs, gain_db=6.0, max_pairs=4)
    assert probe["musicality"] is not None and probe["musicality"] < 0.01
    assert probe["alignment"] is not None and probe["alignment"] < 0.01


class UnlevelledEncoder:
    """Builtin features plus the clip's absolute level: what the probe must catch."""

    def __init__(self) -> None:
        self.inner = BuiltinEncoder(text_model="hash")
        self.name, self.sample_rate, self.text_dim = "unlevelled", SR, self.inner.text_dim
        self.audio_dim = self.inner.audio_dim + 1
        self.id = "test-unlevelled"

    def options(self) -> dict[str, object]:
        return {}

    def encode_audio(self, waveform: np.ndarray, sr: int) -> np.ndarray:
        feats = self.inner.encode_audio(waveform, sr)
        level = 20 * np.log10(np.sqrt(np.mean(waveform**2)) + 1e-9) / 5.0
        return np.concatenate([feats, np.full((len(feats), 1), level, np.float32)], axis=1)

    def encode_text(self, text: str) -> np.ndarray:
        return self.inner.encode_text(text)


def test_it_reports_the_gain_sensitivity_of_a_level_dependent_encoder(panel_data: Path) -> None:
    from rm_service.core.data import load_dataset

    pairs = load_dataset(panel_data / "train.jsonl", dataset_root=panel_data).pairs
    probe = gain_probe(_scorer(UnlevelledEncoder()), pairs, gain_db=6.0, max_pairs=4)
    assert probe["musicality"] is not None and probe["musicality"] > 0.05
