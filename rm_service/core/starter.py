"""Stage-1 pretraining from folders of unlabelled music, and the offline starter model.

``pretrain_model`` constructs pseudo-labelled pairs (``pretrain.build_pretrain_pairs``) and trains stage 1
on them. ``build_starter`` does the same from the non-reserved Debian music packages that are installed
(see ``DEBIAN_CORPUS``) plus music rendered by the project's synthesiser, so the platform has a working
model before any human vote; it reuses an existing build whose inputs are unchanged. Without any Debian
corpus installed it trains on synthesised music alone (a weaker model: synthetic timbres only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .model import RewardModelConfig
from .pretrain import SR, PretrainSpec, build_pretrain_pairs, find_tracks
from .train import TrainConfig, train

logger = logging.getLogger(__name__)

STARTER_VERSION = "starter-v2"
# (Debian package, where its music lands). The acceptance-test packages (wesnoth-*-music, ufoai-music,
# warzone2100-music, singularity-music) are deliberately absent and refused by ``pretrain.find_tracks``.
DEBIAN_CORPUS = (
    ("hyperrogue-music", "/usr/share/hyperrogue/music"),
    ("planetblupi-music-ogg", "/usr/share/planetblupi/music"),
    ("asc-music", "/usr/share/games/asc/music"),
    ("nexuiz-music", "/usr/share/games/nexuiz/data/music.pk3"),
)
STARTER_MODEL = {
    "d_model": 64,
    "n_heads": 4,
    "dim_head": 16,
    "prompt_depth": 1,
    "joint_depth": 1,
    "mlp_dim": 64,
    "audio_pool": 4,
}


@dataclass
class StarterConfig:
    pairs: PretrainSpec = field(
        default_factory=lambda: PretrainSpec(n_alignment=700, n_musicality=700, n_text=200, seed=0)
    )
    synthetic_tracks: int = 24  # synthesised "tracks" added to the corpus (all of it without a corpus)
    synthetic_seconds: float = 40.0
    steps: int = 1200
    batch_size: int = 32
    lr: float = 1e-3
    model: dict[str, Any] = field(default_factory=lambda: dict(STARTER_MODEL))

    def fingerprint(self, track_ids: list[str]) -> str:
        blob = json.dumps({"v": STARTER_VERSION, "config": asdict(self), "tracks": track_ids}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def installed_corpus() -> list[tuple[str, Path]]:
    """The ``DEBIAN_CORPUS`` entries whose files are present on this machine."""
    return [(package, Path(path)) for package, path in DEBIAN_CORPUS if Path(path).exists()]


def synthetic_tracks(count: int, seconds: float, seed: int = 0) -> dict[str, np.ndarray]:
    """``count`` synthesised pieces, each with its own tempo, mode, instrument, register and drums."""
    from .synth import INSTRUMENTS, MusicSpec, render

    rng = np.random.default_rng([seed, 7])
    out = {}
    for i in range(count):
        spec = MusicSpec(
            tempo_bpm=float(rng.uniform(65, 150)),
            mode=str(rng.choice(["major", "minor"])),
            instrument=str(rng.choice(INSTRUMENTS)),
            register=int(rng.choice([-1, 0, 1])),
            drums=bool(rng.random() < 0.6),
            vocal=bool(rng.random() < 0.25),
        )
        wav = render(spec, duration_s=seconds, sr=SR, seed=seed * 1000 + i)
        out[f"synth-{seed}-{i:03d}"] = np.asarray(wav, dtype=np.float32)
    return out


def pretrain_model(
    *,
    audio_dirs: list[str | Path],
    out_dir: str | Path,
    spec: PretrainSpec | None = None,
    config: TrainConfig | None = None,
    extra_tracks: dict[str, np.ndarray] | None = None,
    use_split: str = "all",
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    show_progress: bool = False,
) -> Path:
    """Construct pairs under ``out_dir/pairs`` and train stage 1 in ``out_dir/run``; returns the checkpoint.

    Args:
        audio_dirs: folders/archives of unlabelled music ("all" of their tracks are used by default).
        spec: pair construction (default ``PretrainSpec()``).
        config: training hyper-parameters; ``stage1_steps`` is the budget (no stage 2 runs here).
        extra_tracks: more tracks as {id: 24 kHz mono waveform}.
        use_split: "all", or "train" to keep ``pretrain.track_split``'s evaluation tracks out.
    """
    out = Path(out_dir)
    pairs_dir = out / "pairs"
    build_pretrain_pairs(
        audio_dirs, pairs_dir, spec=spec, extra_tracks=extra_tracks, use_split=use_split, show_progress=show_progress
    )
    val = pairs_dir / "validation.jsonl"
    result = train(
        train_jsonl=None,
        dataset_root=pairs_dir,
        out_dir=out / "run",
        config=config or TrainConfig(),
        val_jsonl=val if val.stat().st_size else None,
        pseudo_jsonl=pairs_dir / "train.jsonl",
        pseudo_root=pairs_dir,
        device=device,
        cache_dir=cache_dir,
        show_progress=show_progress,
    )
    assert result.checkpoint is not None  # nothing cancels this run
    return result.checkpoint


def build_starter(
    out_dir: str | Path,
    *,
    config: StarterConfig | None = None,
    corpus: list[str | Path] | None = None,
    cache_dir: str | Path | None = None,
    show_progress: bool = False,
) -> Path:
    """Build (or reuse) the starter model in ``out_dir``; returns its checkpoint directory.

    Args:
        config: what to construct and how long to train.
        corpus: music folders (default: the installed ``DEBIAN_CORPUS`` packages); evaluation tracks
            (``pretrain.track_split`` == "eval") are always left out so the panel stays honest.
        cache_dir: embedding cache (default ``out_dir/cache``).
    """
    config = config or StarterConfig()
    out = Path(out_dir)
    dirs = [Path(p) for p in corpus] if corpus is not None else [path for _, path in installed_corpus()]
    track_ids = [t.id for t in find_tracks(dirs)] if dirs else []
    fingerprint = config.fingerprint(track_ids)
    record_path = out / "starter.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("fingerprint") == fingerprint and (Path(record["checkpoint"]) / "model.safetensors").is_file():
            return Path(record["checkpoint"])
    for stale in ("pairs", "run"):
        shutil.rmtree(out / stale, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    started = time.process_time()
    train_config = TrainConfig(
        model=RewardModelConfig(**config.model),
        batch_size=config.batch_size,
        lr=config.lr,
        warmup_steps=50,
        stage1_steps=config.steps,
        stage1_label_smoothing=0.05,  # constructed labels are right by construction; a little smoothing only
        checkpoint_every=max(100, config.steps // 4),
        max_dur=30.0,
        seed=config.pairs.seed,
    )
    checkpoint = pretrain_model(
        audio_dirs=dirs,  # type: ignore[arg-type]
        out_dir=out,
        spec=config.pairs,
        config=replace(train_config),
        extra_tracks=synthetic_tracks(config.synthetic_tracks, config.synthetic_seconds, config.pairs.seed),
        use_split="train",
        cache_dir=cache_dir or out / "cache",
        show_progress=show_progress,
    )
    corpus_packages = [package for package, path in DEBIAN_CORPUS if Path(path) in dirs]
    record = {
        "fingerprint": fingerprint,
        "checkpoint": str(checkpoint),
        "corpus": [str(d) for d in dirs],
        "debian_packages": corpus_packages,
        "tracks": len(track_ids),
        "synthetic_tracks": config.synthetic_tracks,
        "process_cpu_seconds": round(time.process_time() - started, 1),
        "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    record_path.write_text(json.dumps(record, indent=2))
    return checkpoint


# The held-out evaluation (bench/rm_panel.py and the starter's registered panel): pairs cut from the corpus
# tracks ``pretrain.track_split`` keeps out of every pretraining run, musicality always clean vs degraded.
EVAL_SEED = 20261203


def heldout_pairs(directory: str | Path, *, corpus: list[str | Path] | None = None, n: int = 160) -> Path:
    """Build (once) ``n`` alignment and ``n`` musicality pairs from held-out tracks; returns their JSONL.

    From the installed ``DEBIAN_CORPUS`` by default (only its "eval" tracks); without any corpus, from
    synthesised pieces the starter never heard (another seed).
    """
    out = Path(directory)
    jsonl = out / "test.jsonl"
    if jsonl.is_file():
        return jsonl
    dirs = [Path(p) for p in corpus] if corpus is not None else [path for _, path in installed_corpus()]
    spec = PretrainSpec(
        n_alignment=n, n_musicality=n, n_text=0, clean_vs_degraded=True, validation_fraction=0.0, seed=EVAL_SEED
    )
    extra = None if dirs else synthetic_tracks(8, 40.0, seed=1)
    build_pretrain_pairs(dirs, out, spec=spec, extra_tracks=extra, use_split="eval")
    (out / "train.jsonl").rename(jsonl)
    return jsonl


def starter_panel(out_dir: str | Path, *, cache_dir: str | Path | None = None, n: int = 160) -> dict[str, Any]:
    """The evaluation panel of the starter built in ``out_dir`` on held-out tracks (computed once per build).

    The held-out pairs come from the "eval" tracks of the starter's own corpus (synthesised pieces it never
    heard when it was built without one); ``n`` pairs per head.
    """
    from .panel import run_panel
    from .score import load_scorer

    out = Path(out_dir)
    record = json.loads((out / "starter.json").read_text())
    cached = out / "panel.json"
    if cached.is_file():
        panel = json.loads(cached.read_text())
        if panel.get("fingerprint") == record["fingerprint"] and panel.get("n_requested") == n:
            return dict(panel)
    jsonl = heldout_pairs(out / "eval", corpus=record["corpus"], n=n)
    scorer = load_scorer(record["checkpoint"], cache_dir=cache_dir or out / "cache")
    panel = run_panel(jsonl=jsonl, dataset_root=out / "eval", scorer=scorer)
    held_out = json.loads((out / "eval" / "summary.json").read_text())["track_ids"]
    tracks = sorted({t for ids in held_out.values() for t in ids})
    panel.update(
        fingerprint=record["fingerprint"],
        n_requested=n,
        source=f"{len(tracks)} held-out tracks ({', '.join(tracks)})",
    )
    cached.write_text(json.dumps(panel, indent=2))
    return panel
