"""An honest evaluation panel: a model's pair accuracies beside untrained models and one-feature rules.

A trained model's accuracy means little on its own: an untrained network or a single DSP statistic can
separate clean from broken audio, and the cosine of two clips' mean spectra already tells whether they
come from the same track. The panel scores the same pairs with

- the model;
- the same architecture, untrained, for three seeds;
- simple-feature baselines whose sign is fixed in advance (nothing is fitted on the evaluation data):
  cosine of the mean log-mel (and of the mean chroma) of candidate and reference for alignment; minus the
  mean spectral flatness (and minus the mean onset strength) for musicality;

and adds a gain probe: how far the scores move when a clip is played 6 dB louder or softer, as a share of
the mean score gap between the two clips of a labelled pair (the clean-vs-degraded gap for musicality, the
same-vs-other-track gap for alignment). ``verdict`` says per head whether the model beats every baseline
and every untrained seed, and by how much.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .audio import load_audio
from .data import Instruction, PairExample, load_dataset
from .encoders.builtin import N_MELS, BuiltinEncoder
from .encoders.cache import EmbeddingCache
from .features import Featurizer
from .model import RewardModel
from .score import Scorer

HEADS = (("alignment", 0), ("musicality", 1))
UNTRAINED_SEEDS = (0, 1, 2)
_FLATNESS, _ONSET = N_MELS + 15, N_MELS + 16
# Feature columns of the builtin encoder, and the sign that means "better" for each one-feature rule.
ALIGNMENT_BASELINES = {"mean log-mel cosine": slice(0, N_MELS), "mean chroma cosine": slice(N_MELS, N_MELS + 12)}
MUSICALITY_BASELINES = {"spectral flatness (lower is better)": _FLATNESS, "onset strength (lower is better)": _ONSET}


@dataclass
class PanelItem:
    instruction: Instruction
    audio: Path


def _pairs(jsonl: str | Path, dataset_root: str | Path, split: str | None) -> list[PairExample]:
    ds = load_dataset(jsonl, dataset_root=dataset_root, split=split)
    return [p for p in ds.pairs if p.alignment not in (None, 0) or p.musicality not in (None, 0)]


def pair_accuracy(
    pairs: list[PairExample], scores: dict[tuple[Instruction, Path], np.ndarray], head: str
) -> float | None:
    """Share of labelled pairs whose preferred clip scores higher on ``head`` (ties count 0.5)."""
    column = dict(HEADS)[head]
    values = []
    for p in pairs:
        label = getattr(p, head)
        if label in (None, 0):
            continue
        diff = scores[(p.instruction, p.audio_a)][column] - scores[(p.instruction, p.audio_b)][column]
        values.append(0.5 if diff == 0 else float((diff > 0) == (label > 0)))
    return float(np.mean(values)) if values else None


def _count(pairs: list[PairExample], head: str) -> int:
    return sum(getattr(p, head) not in (None, 0) for p in pairs)


class FeatureBaselines:
    """One-feature rules on the builtin encoder's (levelled) DSP features of the first ``max_dur`` seconds."""

    def __init__(
        self, cache: EmbeddingCache | None = None, max_dur: float | None = None, featurizer: Featurizer | None = None
    ) -> None:
        """``featurizer``: reuse one whose encoder is the builtin backend (its audio tokens are these features)."""
        builtin = (
            featurizer is not None
            and featurizer.encoder.name == "builtin"
            and getattr(featurizer.encoder, "level", True)
        )
        self.featurizer = featurizer if builtin else Featurizer(BuiltinEncoder(text_model="hash"), cache)
        self.max_dur = max_dur

    def _mean(self, path: Path) -> np.ndarray:
        return self.featurizer.audio(path, strategy="first120", max_dur=self.max_dur)[0].mean(axis=0)  # type: ignore[union-attr]

    def scores(self, items: list[tuple[Instruction, Path]], name: str) -> dict[tuple[Instruction, Path], np.ndarray]:
        """{item: [alignment, musicality]} under the named rule (the other column is 0)."""
        out = {}
        for instruction, audio in items:
            feats = self._mean(audio)
            row = np.zeros(2)
            if name in ALIGNMENT_BASELINES and instruction.ref_audio is not None:
                cols = ALIGNMENT_BASELINES[name]
                ref = self._mean(instruction.ref_audio)[cols]
                row[0] = float(ref @ feats[cols] / (np.linalg.norm(ref) * np.linalg.norm(feats[cols]) + 1e-9))
            if name in MUSICALITY_BASELINES:
                row[1] = -float(feats[MUSICALITY_BASELINES[name]])
            out[(instruction, audio)] = row
        return out


def _score_items(scorer: Scorer, items: list[tuple[Instruction, Path]], **kwargs: Any) -> dict[Any, np.ndarray]:
    inputs = [{"audio": a, "text": i.text, "lyrics": i.lyrics, "ref_audio": i.ref_audio} for i, a in items]
    raw = scorer.score_batch(inputs, **kwargs)
    return {item: raw[k] for k, item in enumerate(items)}


def untrained_scorer(scorer: Scorer, seed: int) -> Scorer:
    """The scorer's architecture and encoder with freshly initialised weights (seeded)."""
    torch.manual_seed(seed)
    model = RewardModel(scorer.model.config)
    untrained = Scorer(model, scorer.featurizer.encoder, device=scorer.device, strategy=scorer.strategy)
    untrained.featurizer = scorer.featurizer  # same tokens: share the in-process cache too
    return untrained


def gain_probe(
    scorer: Scorer, pairs: list[PairExample], *, gain_db: float = 6.0, max_pairs: int = 40, max_dur: float | None = None
) -> dict[str, float | None]:
    """Per head: mean |score(clip at +-gain_db) - score(clip)| / mean |score(preferred) - score(other)|.

    Uses up to ``max_pairs`` pairs labelled on the head; the clips are decoded and scored as arrays.
    """
    out: dict[str, float | None] = {}
    sr = scorer.sr
    for head, column in HEADS:
        chosen = [p for p in pairs if getattr(p, head) not in (None, 0)][:max_pairs]
        if not chosen:
            out[head] = None
            continue
        waves: dict[Any, Any] = {}
        for p in chosen:
            for path in (p.audio_a, p.audio_b):
                waves.setdefault(path, load_audio(path, sr=sr, max_dur=max_dur or 120.0))
        items, keys = [], []
        for p in chosen:
            for path in (p.audio_a, p.audio_b):
                for gain in (0.0, gain_db, -gain_db):
                    keys.append((p, path, gain))
                    items.append(
                        {
                            "audio": waves[path] * np.float32(10 ** (gain / 20)),
                            "text": p.instruction.text,
                            "lyrics": p.instruction.lyrics,
                            "ref_audio": p.instruction.ref_audio,
                        }
                    )
        raw = scorer.score_batch(items, max_dur=max_dur)[:, column]
        by = {key: float(v) for key, v in zip(keys, raw, strict=True)}
        moves = [
            abs(by[(p, a, g)] - by[(p, a, 0.0)])
            for p in chosen
            for a in (p.audio_a, p.audio_b)
            for g in (gain_db, -gain_db)
        ]
        gap = float(np.mean([abs(by[(p, p.audio_a, 0.0)] - by[(p, p.audio_b, 0.0)]) for p in chosen]))
        out[head] = float(np.mean(moves)) / gap if gap > 0 else None
    return out


def run_panel(
    *,
    jsonl: str | Path,
    dataset_root: str | Path,
    scorer: Scorer,
    split: str | None = None,
    seeds: tuple[int, ...] = UNTRAINED_SEEDS,
    batch_size: int = 8,
    max_dur: float | None = None,
    gain_db: float = 6.0,
    gain_pairs: int = 40,
) -> dict[str, Any]:
    """The model, untrained seeds and feature baselines on the pairs of ``jsonl``, plus the gain probe.

    Returns:
        ``{"n": {head: pairs}, "systems": [{"name", "kind", "alignment", "musicality"}], "gain_probe":
        {head: share}, "verdict": {head: {"margin", "best_other", "beats"}}, "beats_baselines": bool}``;
        ``kind`` is "model", "untrained" or "baseline"; an accuracy is None where a system has no opinion.
    """
    pairs = _pairs(jsonl, dataset_root, split)
    if not pairs:
        raise ValueError(f"{jsonl} has no labelled pairs to evaluate")
    items = list(dict.fromkeys((p.instruction, a) for p in pairs for a in (p.audio_a, p.audio_b)))
    kwargs: dict[str, Any] = {"batch_size": batch_size, "max_dur": max_dur}
    systems: list[dict[str, Any]] = []

    def add(name: str, kind: str, scores: dict[Any, np.ndarray], heads: tuple[str, ...]) -> None:
        systems.append(
            {
                "name": name,
                "kind": kind,
                **{h: pair_accuracy(pairs, scores, h) if h in heads else None for h, _ in HEADS},
            }
        )

    add("model", "model", _score_items(scorer, items, **kwargs), ("alignment", "musicality"))
    for seed in seeds:
        add(
            f"untrained (seed {seed})",
            "untrained",
            _score_items(untrained_scorer(scorer, seed), items, **kwargs),
            ("alignment", "musicality"),
        )
    baselines = FeatureBaselines(scorer.featurizer.cache, max_dur, scorer.featurizer)
    for name in ALIGNMENT_BASELINES:
        add(name, "baseline", baselines.scores(items, name), ("alignment",))
    for name in MUSICALITY_BASELINES:
        add(name, "baseline", baselines.scores(items, name), ("musicality",))

    verdict: dict[str, Any] = {}
    for head, _ in HEADS:
        model_acc = systems[0][head]
        others = [s[head] for s in systems[1:] if s[head] is not None]
        if model_acc is None or not others:
            continue
        best = max(others)
        verdict[head] = {"model": model_acc, "best_other": best, "margin": model_acc - best, "beats": model_acc > best}
    return {
        "n": {head: _count(pairs, head) for head, _ in HEADS},
        "systems": systems,
        "gain_probe": {
            "gain_db": gain_db,
            **gain_probe(scorer, pairs, gain_db=gain_db, max_pairs=gain_pairs, max_dur=max_dur),
        },
        "verdict": verdict,
        "beats_baselines": bool(verdict) and all(v["beats"] for v in verdict.values()),
    }


def format_panel(panel: dict[str, Any]) -> str:
    """A plain-text table of a panel (CLI and bench output)."""
    lines = [f"{'system':<40} {'alignment':>10} {'musicality':>10}"]
    for s in panel["systems"]:
        cells = [f"{s[h]:.3f}" if s[h] is not None else "-" for h, _ in HEADS]
        lines.append(f"{s['name']:<40} {cells[0]:>10} {cells[1]:>10}")
    n = panel["n"]
    lines.append(f"pairs: alignment {n['alignment']}, musicality {n['musicality']}")
    probe = panel["gain_probe"]
    shares = ", ".join(f"{h} {probe[h]:.1%}" for h, _ in HEADS if probe.get(h) is not None)
    lines.append(f"gain probe (+-{probe['gain_db']:g} dB, share of the pair gap): {shares}")
    for head, v in panel["verdict"].items():
        word = "beats" if v["beats"] else "DOES NOT BEAT"
        lines.append(f"{head}: model {word} its baselines (margin {v['margin']:+.3f})")
    return "\n".join(lines)
