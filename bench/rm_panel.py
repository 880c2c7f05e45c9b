"""Real-music evaluation panel of a reward model (and ablations), on tracks no pretraining run sees.

The evaluation set is cut from the installed non-reserved Debian music packages (``starter.DEBIAN_CORPUS``),
keeping only the tracks ``pretrain.track_split`` puts on its "eval" side (a fixed quarter, by a hash of the
file name; the starter and ``pretrain --exclude-eval`` never read them):

- reference alignment: a reference excerpt of track X; a candidate from X (another position) vs one from
  another evaluation track;
- musicality: a clean excerpt vs the same excerpt with a defect (ten kinds, three severities);

every pair level-matched, every clip put through a delivery format drawn independently of its label.

Usage (run from the repository root; CPU-heavy: run it under nice):

    nice -n 10 .venv/bin/python bench/rm_panel.py --checkpoint CKPT [--cache-dir DIR]
    nice -n 10 .venv/bin/python bench/rm_panel.py --ablate STARTER_DIR --variant VARIANT

VARIANT: no_ref_path | mean_pool | no_augment | no_level (the builtin encoder without per-clip levelling).

``--ablate`` retrains the starter's stage 1 on the starter's own pairs (``STARTER_DIR/pairs``) with one
change and evaluates the result the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from rm_service.core.panel import format_panel, run_panel  # noqa: E402
from rm_service.core.score import load_scorer  # noqa: E402
from rm_service.core.starter import heldout_pairs, installed_corpus  # noqa: E402


def eval_set(directory: Path) -> Path:
    """Build (once) the held-out evaluation pairs; returns their JSONL."""
    if not installed_corpus():
        raise SystemExit("no Debian music corpus installed (apt-get install hyperrogue-music ...)")
    return heldout_pairs(directory)


def _starter_dir(checkpoint: Path) -> Path | None:
    """The starter directory a checkpoint (``DIR/run/model``) belongs to, when it is one."""
    for parent in Path(checkpoint).resolve().parents:
        if (parent / "pairs" / "summary.json").is_file():
            return parent
    return None


def ablate(starter_dir: Path, variant: str, cache_dir: Path) -> Path:
    """Retrain the starter's stage 1 with one change; returns the checkpoint."""
    from rm_service.core.checkpoint import load_checkpoint
    from rm_service.core.train import TrainConfig, train

    meta = load_checkpoint(starter_dir / "run" / "model").metadata
    config = TrainConfig.from_dict(meta["train_config"])
    if variant == "no_ref_path":
        config = replace(config, model=replace(config.model, ref_path=False))
    elif variant == "mean_pool":
        config = replace(config, model=replace(config.model, pooling="mean"))
    elif variant == "no_augment":
        config = replace(config, augment=False)
    elif variant == "no_level":
        config = replace(config, encoder_options={**config.encoder_options, "level": False})
    else:
        raise SystemExit(f"unknown variant {variant}")
    pairs = starter_dir / "pairs"
    out = starter_dir / f"ablate-{variant}"
    if (out / "model" / "model.safetensors").is_file():
        return out / "model"
    result = train(
        train_jsonl=None,
        dataset_root=pairs,
        out_dir=out,
        config=config,
        pseudo_jsonl=pairs / "train.jsonl",
        pseudo_root=pairs,
        cache_dir=cache_dir,
    )
    assert result.checkpoint is not None
    return result.checkpoint


def shared_tracks(starter_dir: Path, eval_dir: Path) -> list[str]:
    """Tracks both the starter's pretraining pairs and this evaluation were cut from (must be none)."""
    train = json.loads((starter_dir / "pairs" / "summary.json").read_text())["track_ids"]
    held_out = json.loads((eval_dir / "summary.json").read_text())["track_ids"]
    used = {t for ids in train.values() for t in ids}
    return sorted(used & {t for ids in held_out.values() for t in ids})


def targets(panel: dict[str, Any]) -> list[str]:
    """The issue's targets, each with its measured margin and PASS/FAIL."""
    systems = {s["name"]: s for s in panel["systems"]}
    model = systems["model"]
    lines = []
    sim = model["alignment"] - systems["mean log-mel cosine"]["alignment"]
    lines.append(f"alignment vs mean log-mel cosine: {sim:+.3f} (target >= +0.050) {'PASS' if sim >= 0.05 else 'FAIL'}")
    best = max(s["musicality"] for s in panel["systems"] if s["kind"] == "baseline" and s["musicality"] is not None)
    mus = model["musicality"] - best
    lines.append(
        f"musicality vs best one-feature rule: {mus:+.3f} (target >= +0.050) {'PASS' if mus >= 0.05 else 'FAIL'}"
    )
    for head in ("alignment", "musicality"):
        seed_best = max(s[head] for s in panel["systems"] if s["kind"] == "untrained")
        ok = model[head] > seed_best
        lines.append(f"{head} vs best untrained seed: {model[head] - seed_best:+.3f} {'PASS' if ok else 'FAIL'}")
    share = panel["gain_probe"].get("musicality")
    if share is not None:
        lines.append(
            f"gain sensitivity (musicality, share of gap): {share:.1%} (target < 5%) "
            + ("PASS" if share < 0.05 else "FAIL")
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--ablate", type=Path, help="a starter directory (holds pairs/ and run/)")
    parser.add_argument("--variant", default=None)
    parser.add_argument("--eval-dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "rm-panel-eval")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--strategy", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the panel as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    cache = args.cache_dir or args.eval_dir / "cache"
    started = time.process_time()
    jsonl = eval_set(args.eval_dir)
    if args.ablate:
        checkpoint = ablate(args.ablate, args.variant, cache)
    elif args.checkpoint:
        checkpoint = args.checkpoint
    else:
        raise SystemExit("give --checkpoint or --ablate")
    scorer = load_scorer(checkpoint, cache_dir=cache, strategy=args.strategy)
    panel = run_panel(jsonl=jsonl, dataset_root=args.eval_dir, scorer=scorer)
    print(f"checkpoint: {checkpoint}")
    starter_dir = args.ablate or _starter_dir(checkpoint)
    if starter_dir is not None:
        shared = shared_tracks(starter_dir, args.eval_dir)
        print(f"tracks shared by the starter's pretraining and this evaluation: {len(shared)} {shared}")
    print(format_panel(panel))
    print("\n".join(targets(panel)))
    print(f"cpu seconds: {time.process_time() - started:.0f}")
    if args.json:
        args.json.write_text(json.dumps(panel, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
