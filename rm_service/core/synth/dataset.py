"""A deterministic synthetic reward-modelling task with audible, known answers.

Every instruction targets a ``MusicSpec`` (tempo slow/fast, mode, instrument, register, drums, a sung line
when lyrics are given). Its modality is T, L, A or C:

- T / L: the prompt text names every attribute (``synth.describe``); L adds lyrics, which require a voice;
- A / C: the prompt only says to follow the reference clip (plus drums / voice wording), and the reference
  clip (same style, another melody) carries tempo, mode, instrument and register.

Each comparison pairs an aligned clip with a clip that changes one or two attributes (alignment label),
and independently degrades each clip to quality 0 (clean), 1 (one mild defect) or 2 (two or three strong
defects: clipping, noise, detuning, unsteady timing, wrong notes) (musicality label: the cleaner clip;
equal quality is a ``both`` tie). MOS rows rate single clips. Splits are by instruction (``prompt id``).

``judged.jsonl`` holds extra training-instruction pairs with a simulated judge that is noisy and biased
towards the clip shown first, answered in both orders: the input of ``pseudo.make_pseudo_labels``.

Layout written under ``out_dir``: ``audio/*.wav``, ``train.jsonl``, ``validation.jsonl``, ``test.jsonl``,
``judged.jsonl``, ``summary.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .music import INSTRUMENTS, MusicSpec, describe, render, write_wav

ATTRIBUTES = ("tempo", "mode", "instrument", "register", "drums")
_SYLLABLES = ("la", "na", "lo", "mi", "sa", "ta", "ri", "do", "ne", "yo")
_MILD = (
    {"clipping": 0.35},
    {"noise_snr_db": 18.0},
    {"detune_cents": 30.0},
    {"tempo_jitter": 0.5},
    {"wrong_notes": 0.25},
)
_STRONG = (
    {"clipping": 0.85},
    {"noise_snr_db": 6.0},
    {"detune_cents": 50.0},
    {"tempo_jitter": 1.0},
    {"wrong_notes": 0.5},
)


@dataclass
class SyntheticSummary:
    out_dir: Path
    counts: dict[str, dict[str, int]]  # split -> {"pairs": n, "mos": n}
    judged_pairs: int
    clips: int


def _tempo(rng: np.random.Generator, fast: bool) -> float:
    return float(round(rng.uniform(130, 148) if fast else rng.uniform(68, 82)))


def _target(rng: np.random.Generator, vocal: bool) -> MusicSpec:
    return MusicSpec(
        tempo_bpm=_tempo(rng, bool(rng.random() < 0.5)),
        mode=str(rng.choice(["major", "minor"])),
        instrument=str(rng.choice(INSTRUMENTS)),
        register=int(rng.choice([-1, 0, 1])),
        drums=bool(rng.random() < 0.6),
        vocal=vocal,
    )


def _mismatch(
    rng: np.random.Generator, spec: MusicSpec, modality: str, attributes: tuple[str, ...]
) -> tuple[MusicSpec, list[str]]:
    """Change one or two attributes the instruction makes audible (a voice only where lyrics ask for one)."""
    candidates = [a for a in attributes if a != "vocal" or modality in ("L", "C")]
    size = min(len(candidates), 1 + int(rng.random() < 0.35))
    changed = list(rng.choice(candidates, size=size, replace=False))
    for attr in changed:
        if attr == "tempo":
            spec = replace(spec, tempo_bpm=_tempo(rng, spec.tempo_bpm < 100))
        elif attr == "mode":
            spec = replace(spec, mode="minor" if spec.mode == "major" else "major")
        elif attr == "instrument":
            spec = replace(spec, instrument=str(rng.choice([i for i in INSTRUMENTS if i != spec.instrument])))
        elif attr == "register":
            spec = replace(spec, register=int(rng.choice([r for r in (-1, 0, 1) if r != spec.register])))
        elif attr == "drums":
            spec = replace(spec, drums=not spec.drums)
        else:
            spec = replace(spec, vocal=not spec.vocal)
    return spec, [str(a) for a in changed]


def _degrade(rng: np.random.Generator, spec: MusicSpec, quality: int) -> MusicSpec:
    if quality == 0:
        return spec
    pool, count = (_MILD, 1) if quality == 1 else (_STRONG, 2 + int(rng.random() < 0.5))
    changes: dict[str, Any] = {}
    for i in rng.choice(len(pool), size=count, replace=False):
        changes.update(pool[int(i)])
    return replace(spec, **changes)


def _prompt(spec: MusicSpec, modality: str) -> str:
    if modality in ("T", "L"):
        return describe(spec, bpm=False)  # no number: "slow"/"fast" must be heard, not read off digits
    drums = "with drums" if spec.drums else "without drums"
    voice = " and a sung melody" if spec.vocal else ""
    return f"Music in the style of the reference clip, {drums}{voice}."


def _lyrics(rng: np.random.Generator) -> str:
    lines = [" ".join(rng.choice(_SYLLABLES, size=6)) for _ in range(2)]
    return "\n".join(lines)


def make_synthetic_dataset(
    out_dir: str | Path,
    *,
    n_instructions: int = 120,
    pairs_per_instruction: int = 2,
    mos_per_instruction: int = 1,
    judged_per_instruction: int = 2,
    duration_s: float = 4.0,
    sr: int = 24000,
    seed: int = 0,
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    judge_noise: float = 0.1,
    judge_first_bias: float = 0.25,
    modalities: tuple[str, ...] = ("T", "L", "A", "C"),
    attributes: tuple[str, ...] = (*ATTRIBUTES, "vocal"),
) -> SyntheticSummary:
    """Generate the synthetic dataset (deterministic for a seed).

    Args:
        out_dir: target directory (created; existing files are overwritten).
        n_instructions: instructions, split train/validation/test by ``split_fractions``.
        pairs_per_instruction: labelled comparisons per instruction.
        mos_per_instruction: single clips with MOS ratings per instruction.
        judged_per_instruction: extra judged pairs per training instruction (pseudo-label pool).
        duration_s: clip length in seconds.
        sr: sample rate of the written WAV files.
        seed: everything is a function of it.
        split_fractions: (train, validation, test) fractions of instructions.
        judge_noise: probability the simulated judge answers at random.
        judge_first_bias: probability it simply prefers the clip shown first.
        modalities: instruction modalities, assigned in turn (default all of T, L, A, C).
        attributes: what a mismatched clip may change ("vocal" only applies to L and C).

    Returns:
        Counts per split.
    """
    out = Path(out_dir)
    audio_dir = out / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_train = int(round(split_fractions[0] * n_instructions))
    n_val = int(round(split_fractions[1] * n_instructions))
    rows: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    judged: list[dict[str, Any]] = []
    clip_count = 0

    def clip(name: str, spec: MusicSpec, clip_seed: int) -> str:
        nonlocal clip_count
        write_wav(audio_dir / f"{name}.wav", render(spec, duration_s=duration_s, sr=sr, seed=clip_seed), sr)
        clip_count += 1
        return f"audio/{name}.wav"

    for i in range(n_instructions):
        split = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
        modality = modalities[i % len(modalities)]
        vocal = modality in ("L", "C")
        target = _target(rng, vocal)
        base = {
            "prompt": _prompt(target, modality),
            "lyrics": _lyrics(rng) if vocal else "",
            "ref-audio-path": clip(f"ref{i:04d}", target, seed * 100_003 + i * 97 + 1)
            if modality in ("A", "C")
            else "",
            "prompt id": f"synthetic-{seed}-{i:04d}",
            "user id": "synthetic",
            "source": "synthetic",
            "split": split,
            "modality": modality,
        }

        for k in range(pairs_per_instruction):
            content = seed * 100_003 + i * 97 + 10 + k
            rows[split].append(_pair(rng, base, target, f"p{i:04d}_{k}", content, clip, attributes))
        for k in range(mos_per_instruction):
            aligned = bool(rng.random() < 0.5)
            spec, changed = (target, []) if aligned else _mismatch(rng, target, modality, attributes)
            quality = int(rng.integers(0, 3))
            path = clip(f"m{i:04d}_{k}", _degrade(rng, spec, quality), seed * 100_003 + i * 97 + 50 + k)
            rows[split].append(
                {
                    **base,
                    "audio-path": path,
                    "musicality": float(5 - 2 * quality),
                    "text-music alignment": float(5 - 2 * len(changed)),
                    "synthetic": {"changed": changed, "quality": quality},
                }
            )
        if split == "train":
            for k in range(judged_per_instruction):
                pair = _pair(rng, base, target, f"j{i:04d}_{k}", seed * 100_003 + i * 97 + 110 + k, clip, attributes)
                judged.append(_judge(rng, pair, judge_noise, judge_first_bias))

    for split, split_rows in rows.items():
        _write_jsonl(out / f"{split}.jsonl", split_rows)
    _write_jsonl(out / "judged.jsonl", judged)
    counts = {
        split: {"pairs": sum("audio2" in r for r in split_rows), "mos": sum("audio2" not in r for r in split_rows)}
        for split, split_rows in rows.items()
    }
    summary = SyntheticSummary(out, counts, len(judged), clip_count)
    (out / "summary.json").write_text(json.dumps({**asdict(summary), "out_dir": str(out)}, indent=2))
    return summary


def _pair(
    rng: np.random.Generator,
    base: dict[str, Any],
    target: MusicSpec,
    name: str,
    content_seed: int,
    clip: Callable[[str, MusicSpec, int], str],
    attributes: tuple[str, ...],
) -> dict[str, Any]:
    """One comparison: the aligned clip and a mismatched one, each independently degraded."""
    wrong, changed = _mismatch(rng, target, base["modality"], attributes)
    qualities = [int(q) for q in rng.choice(3, size=2, replace=rng.random() < 0.15)]
    aligned_first = bool(rng.random() < 0.5)
    specs = [target, wrong] if aligned_first else [wrong, target]
    paths = [
        clip(f"{name}_{side}", _degrade(rng, s, q), content_seed)
        for side, s, q in zip("ab", specs, qualities, strict=True)
    ]
    gap = abs(qualities[0] - qualities[1])
    return {
        **base,
        "audio-path": paths[0],
        "audio2": paths[1],
        "model_a": f"synth-q{qualities[0]}",
        "model_b": f"synth-q{qualities[1]}",
        "preference-alignment": "model_a" if aligned_first else "model_b",
        "preference-musicality": "both" if gap == 0 else "model_a" if qualities[0] < qualities[1] else "model_b",
        "confidence_preference-alignment": 3 + len(changed),
        "confidence_preference-musicality": 2 + gap + int(gap == 2),
        "synthetic": {"changed": changed, "qualities": qualities, "aligned": "a" if aligned_first else "b"},
    }


def _judge(rng: np.random.Generator, pair: dict[str, Any], noise: float, first_bias: float) -> dict[str, Any]:
    """Simulated judge verdicts in both presentation orders (reversed answers are in presented order)."""
    out = {k: v for k, v in pair.items() if not k.startswith(("preference-", "confidence_"))}
    for head in ("alignment", "musicality"):
        truth = {"model_a": "A", "model_b": "B", "both": "tie"}[pair[f"preference-{head}"]]
        for order in ("forward", "reversed"):
            presented_truth = truth if order == "forward" else {"A": "B", "B": "A", "tie": "tie"}[truth]
            roll = rng.random()
            if roll < first_bias:
                verdict = "A"  # position bias: the clip shown first
            elif roll < first_bias + noise:
                verdict = str(rng.choice(["A", "B", "tie"]))
            else:
                verdict = presented_truth
            out[f"judge_{order}_{head}"] = verdict
    return out


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
