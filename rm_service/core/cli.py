"""Command line: ``python -m rm_service train|score|rank|evaluate|pseudo-labels|synthetic|pretrain|starter|info``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .audio import STRATEGIES

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},  # RewardModelConfig defaults: d_model 768, prompt depth 4, joint depth 1 (~32M parameters)
    "small": {"d_model": 256, "n_heads": 4, "dim_head": 64, "prompt_depth": 2, "joint_depth": 1, "mlp_dim": 256},
    "tiny": {"d_model": 64, "n_heads": 4, "dim_head": 16, "prompt_depth": 1, "joint_depth": 1, "mlp_dim": 64},
}
# Learning rates that learn within a CPU budget (the small models learn far too slowly at the paper's 1e-4).
PRESET_LR = {"paper": 1e-4, "small": 5e-4, "tiny": 1e-3}
# Without --preset / --config on a CPU, train the small model on the first 30 s of each clip: the paper
# preset takes minutes per step on two cores.
CPU_DEFAULT_PRESET = "small"
CPU_DEFAULT_MAX_DUR = 30.0


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"file not found: {value}")
    return path


def _existing_dir(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"directory not found: {value}")
    return path


def _add_runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="torch device: auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--cache-dir", type=Path, default=None, help="embedding cache directory (default: none)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def _add_scoring(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path, help="checkpoint directory (or its model.safetensors)")
    p.add_argument("--strategy", choices=STRATEGIES, default=None, help="long-audio strategy")
    p.add_argument("--max-dur", type=float, default=None, help="use at most this many seconds of each clip")
    p.add_argument("--batch-size", type=int, default=8)
    _add_runtime(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rm_service", description="CMI reward model: train, score, evaluate."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a reward model from JSONL rows or an export directory")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--train", type=_existing_file, help="training JSONL (CMI-RewardBench schema)")
    source.add_argument(
        "--export", type=_existing_dir, help="export directory (train/validation JSONL or votes.jsonl + audio/)"
    )
    p.add_argument(
        "--dataset-root", type=_existing_dir, help="audio root of --train/--val (default: the JSONL's directory)"
    )
    p.add_argument("--val", type=_existing_file, help="validation JSONL for early stopping")
    p.add_argument("--pseudo", type=_existing_file, help="stage-1 pseudo-label JSONL")
    p.add_argument("--pseudo-root", type=_existing_dir, help="audio root of --pseudo (default: --dataset-root)")
    p.add_argument("--out", required=True, type=Path, help="run directory; the final checkpoint is OUT/model")
    p.add_argument("--config", type=_existing_file, help="TrainConfig as JSON (flags below override it)")
    p.add_argument(
        "--preset", choices=sorted(PRESETS), default=None, help="model size (default: paper on GPU, small on CPU)"
    )
    p.add_argument(
        "--init", type=Path, default=None, help="start from this checkpoint (e.g. a pretrain or starter model)"
    )
    p.add_argument(
        "--max-dur", type=float, default=None, help="seconds of each clip used (default: 120 on GPU, 30 on CPU)"
    )
    p.add_argument("--no-augment", action="store_true", help="no random crop / time-shift of training clips")
    p.add_argument("--crop-min", type=float, default=None, help="shortest random crop, as a share of a clip")
    p.add_argument("--encoder", choices=("builtin", "muq"), default=None)
    p.add_argument("--text-model", choices=("auto", "minilm", "hash"), default=None, help="builtin text tower")
    p.add_argument("--muq-dir", default=None, help="local MuQ-MuLan directory (muq encoder)")
    p.add_argument("--steps", type=int, default=None, help="stage-2 step budget")
    p.add_argument("--stage1-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: by preset)")
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its newest state")
    _add_runtime(p)

    p = sub.add_parser("score", help="score clips against an instruction, or every clip of a JSONL file")
    _add_scoring(p)
    p.add_argument("audio", nargs="*", type=_existing_file, help="clips to score against --text/--lyrics/--ref-audio")
    p.add_argument("--text", default="")
    p.add_argument("--lyrics", default="")
    p.add_argument("--ref-audio", type=_existing_file, default=None)
    p.add_argument("--jsonl", type=_existing_file, help="score the audio-path (and audio2) of every row instead")
    p.add_argument("--dataset-root", type=_existing_dir, help="audio root of --jsonl (default: its directory)")

    p = sub.add_parser("rank", help="best-of-N: rank candidate clips for one instruction")
    _add_scoring(p)
    p.add_argument("candidates", nargs="+", type=_existing_file)
    p.add_argument("--text", default="")
    p.add_argument("--lyrics", default="")
    p.add_argument("--ref-audio", type=_existing_file, default=None)
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("--weights", type=float, nargs=2, default=(0.5, 0.5), metavar=("ALIGNMENT", "MUSICALITY"))

    p = sub.add_parser("evaluate", help="CMI-RewardBench metrics of a checkpoint on a JSONL file")
    _add_scoring(p)
    p.add_argument("--jsonl", required=True, type=_existing_file)
    p.add_argument("--dataset-root", type=_existing_dir, help="audio root (default: the JSONL's directory)")
    p.add_argument("--split", default=None, help="keep only rows with this split (default: all rows)")
    p.add_argument("--out", required=True, type=Path, help="directory for metrics_summary.csv, metrics_detail.csv, ...")
    p.add_argument(
        "--panel",
        action="store_true",
        help="also compare with untrained seeds and feature baselines, and run the gain probe (panel.json)",
    )

    p = sub.add_parser("pseudo-labels", help="keep position-consistent judge verdicts as pseudo-labels")
    p.add_argument("judged", type=_existing_file, help="JSONL with judge_forward_* / judge_reversed_* verdicts")
    p.add_argument("--out", required=True, type=Path, help="output JSONL of pseudo-labelled pairs")
    p.add_argument("--report", type=Path, default=None, help="write the retention / win-rate report as JSON")
    p.add_argument("--keep-partial", action="store_true", help="keep rows where only some heads are consistent")

    p = sub.add_parser("synthetic", help="generate the synthetic learnable task")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--instructions", type=int, default=120)
    p.add_argument("--pairs-per-instruction", type=int, default=2)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("pretrain", help="stage 1 on pairs constructed from a folder of unlabelled music")
    p.add_argument(
        "--audio-dir", required=True, action="append", type=Path, help="music folder or .zip/.pk3 (repeatable)"
    )
    p.add_argument("--out", required=True, type=Path, help="OUT/pairs (constructed pairs), OUT/run/model (checkpoint)")
    p.add_argument("--alignment-pairs", type=int, default=600)
    p.add_argument("--musicality-pairs", type=int, default=600)
    p.add_argument("--text-pairs", type=int, default=200)
    p.add_argument("--steps", type=int, default=1000, help="stage-1 steps")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="model size (default: tiny)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--exclude-eval", action="store_true", help="leave out the tracks the real-music evaluation panel uses"
    )
    _add_runtime(p)

    p = sub.add_parser("starter", help="build (or reuse) the offline starter model; prints its checkpoint last")
    p.add_argument("--out", required=True, type=Path, help="starter directory")
    p.add_argument(
        "--corpus", action="append", type=Path, default=None, help="music folder (default: installed Debian music)"
    )
    p.add_argument("--synthetic-only", action="store_true", help="ignore any installed corpus")
    p.add_argument("--steps", type=int, default=None, help="stage-1 steps (default 1200)")
    p.add_argument("--cache-dir", type=Path, default=None, help="embedding cache (default OUT/cache)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")

    p = sub.add_parser("info", help="print a checkpoint's config, parameter count and metrics")
    p.add_argument("checkpoint", type=Path)
    return parser


def _train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .model import RewardModelConfig, count_parameters
    from .train import TrainConfig, train, train_from_export

    config = TrainConfig.from_dict(json.loads(args.config.read_text())) if args.config else TrainConfig()
    on_cpu = _device(args.device) == "cpu"
    preset = args.preset or (CPU_DEFAULT_PRESET if on_cpu and not args.config else None)
    if preset:
        config = replace(config, model=RewardModelConfig(**PRESETS[preset]), lr=PRESET_LR[preset])
    max_dur = args.max_dur if args.max_dur is not None else CPU_DEFAULT_MAX_DUR if on_cpu else None
    if max_dur is not None:
        config = replace(config, max_dur=max_dur)
    if args.no_augment:
        config = replace(config, augment=False)
    overrides = {
        "crop_min": args.crop_min,
        "encoder": args.encoder,
        "stage2_max_steps": args.steps,
        "stage1_steps": args.stage1_steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "eval_every": args.eval_every,
        "patience": args.patience,
        "seed": args.seed,
    }
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    options = dict(config.encoder_options)
    if args.text_model:
        options["text_model"] = args.text_model
    if args.muq_dir:
        options["model_dir"] = args.muq_dir
    if config.encoder == "muq":
        options["device"] = _device(args.device)
    config = replace(config, encoder_options=options)
    common: dict[str, Any] = dict(
        out_dir=args.out,
        config=config,
        pseudo_jsonl=args.pseudo,
        pseudo_root=args.pseudo_root,
        device=_device(args.device),
        cache_dir=args.cache_dir,
        resume=args.resume,
        show_progress=True,
        init_checkpoint=args.init,
    )
    if args.export:
        result = train_from_export(args.export, **common)
    else:
        root = args.dataset_root or args.train.parent
        result = train(train_jsonl=args.train, dataset_root=root, val_jsonl=args.val, **common)
    if result.checkpoint is not None:
        from .checkpoint import load_checkpoint

        params = count_parameters(load_checkpoint(result.checkpoint).model)
        print(
            json.dumps(
                {
                    "status": result.status,
                    "checkpoint": str(result.checkpoint),
                    "steps": result.steps,
                    "trainable_parameters": params,
                    "best_val": result.metrics.get("best_val"),
                },
                indent=2,
            )
        )
    return 0


def _scorer(args: argparse.Namespace) -> Any:
    from .score import load_scorer

    return load_scorer(args.checkpoint, device=_device(args.device), cache_dir=args.cache_dir, strategy=args.strategy)


def _score(args: argparse.Namespace) -> int:
    if bool(args.audio) == bool(args.jsonl):
        raise ValueError("give either audio files or --jsonl")
    scorer = _scorer(args)
    if args.jsonl:
        from .data import read_jsonl, resolve

        root = args.dataset_root or args.jsonl.parent
        items, names = [], []
        for lineno, row in read_jsonl(args.jsonl):
            ref = row.get("ref-audio-path") or None
            for key in ("audio-path", "audio2"):
                if row.get(key):
                    names.append({"line": lineno, "field": key, "audio": row[key]})
                    items.append(
                        {
                            "audio": resolve(root, row[key]),
                            "text": row.get("prompt") or "",
                            "lyrics": row.get("lyrics") or "",
                            "ref_audio": resolve(root, ref) if ref else None,
                        }
                    )
    else:
        names = [{"audio": str(a)} for a in args.audio]
        items = [
            {"audio": a, "text": args.text, "lyrics": args.lyrics, "ref_audio": args.ref_audio} for a in args.audio
        ]
    scores = scorer.score_batch(items, batch_size=args.batch_size, max_dur=args.max_dur, show_progress=True)
    for name, (alignment, musicality) in zip(names, scores.tolist(), strict=True):
        print(json.dumps({**name, "alignment": alignment, "musicality": musicality}))
    return 0


def _rank(args: argparse.Namespace) -> int:
    scorer = _scorer(args)
    instruction = {"text": args.text, "lyrics": args.lyrics, "ref_audio": args.ref_audio}
    ranked = scorer.rank(
        instruction,
        args.candidates,
        top_k=args.top_k,
        weights=tuple(args.weights),
        batch_size=args.batch_size,
        max_dur=args.max_dur,
    )
    for r in ranked:
        print(
            json.dumps(
                {
                    "rank": r.rank,
                    "selected": r.selected,
                    "audio": str(args.candidates[r.index]),
                    "score": r.score,
                    "alignment": r.alignment,
                    "musicality": r.musicality,
                }
            )
        )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    report = evaluate(
        jsonl=args.jsonl,
        dataset_root=args.dataset_root or args.jsonl.parent,
        scorer=_scorer(args),
        out_dir=args.out,
        split=args.split,
        batch_size=args.batch_size,
        max_dur=args.max_dur,
        show_progress=True,
    )
    for row in report.summary:
        print(json.dumps(row))
    print(f"wrote {args.out}/metrics_summary.csv, metrics_detail.csv, metrics.json, predictions.jsonl", file=sys.stderr)
    if args.panel:
        from .panel import format_panel, run_panel

        panel = run_panel(
            jsonl=args.jsonl,
            dataset_root=args.dataset_root or args.jsonl.parent,
            scorer=_scorer(args),
            split=args.split,
            batch_size=args.batch_size,
            max_dur=args.max_dur,
        )
        (args.out / "panel.json").write_text(json.dumps(panel, indent=2))
        print(format_panel(panel))
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from .model import RewardModelConfig
    from .pretrain import PretrainSpec
    from .starter import pretrain_model
    from .train import TrainConfig

    spec = PretrainSpec(
        n_alignment=args.alignment_pairs, n_musicality=args.musicality_pairs, n_text=args.text_pairs, seed=args.seed
    )
    config = TrainConfig(
        model=RewardModelConfig(**PRESETS[args.preset]),
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=min(100, max(1, args.steps // 10)),
        stage1_steps=args.steps,
        stage1_label_smoothing=0.05,
        checkpoint_every=max(100, args.steps // 4),
        max_dur=30.0,
        seed=args.seed,
    )
    checkpoint = pretrain_model(
        audio_dirs=args.audio_dir,
        out_dir=args.out,
        spec=spec,
        config=config,
        use_split="train" if args.exclude_eval else "all",
        cache_dir=args.cache_dir,
        device=_device(args.device),
        show_progress=True,
    )
    print(checkpoint)
    return 0


def _starter(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .starter import StarterConfig, build_starter

    config = StarterConfig()
    if args.steps is not None:
        config = replace(config, steps=args.steps)
    corpus = [] if args.synthetic_only else args.corpus
    checkpoint = build_starter(args.out, config=config, corpus=corpus, cache_dir=args.cache_dir, show_progress=True)
    print(checkpoint)
    return 0


def _pseudo(args: argparse.Namespace) -> int:
    from .data import read_jsonl
    from .pseudo import make_pseudo_labels

    rows = ((f"{args.judged}:{n}", row) for n, row in read_jsonl(args.judged))
    kept, report = make_pseudo_labels(rows, require_all_heads=not args.keep_partial)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8") as f:
        for row in kept:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    text = json.dumps(report.as_dict(), indent=2)
    if args.report:
        args.report.write_text(text)
    print(text)
    return 0


def _synthetic(args: argparse.Namespace) -> int:
    from .synth import make_synthetic_dataset

    summary = make_synthetic_dataset(
        args.out,
        n_instructions=args.instructions,
        pairs_per_instruction=args.pairs_per_instruction,
        duration_s=args.duration,
        seed=args.seed,
    )
    print(json.dumps({"out_dir": str(summary.out_dir), "counts": summary.counts, "judged_pairs": summary.judged_pairs}))
    return 0


def _info(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .model import count_parameters

    ckpt = load_checkpoint(args.checkpoint)
    print(
        json.dumps(
            {
                "model": ckpt.config.to_dict(),
                "trainable_parameters": count_parameters(ckpt.model),
                "encoder": ckpt.encoder_id,
                "strategy": ckpt.strategy,
                "metrics": ckpt.metadata.get("metrics"),
            },
            indent=2,
        )
    )
    return 0


COMMANDS = {
    "train": _train,
    "score": _score,
    "rank": _rank,
    "evaluate": _evaluate,
    "pseudo-labels": _pseudo,
    "synthetic": _synthetic,
    "pretrain": _pretrain,
    "starter": _starter,
    "info": _info,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 usage or input error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    from .audio import AudioError
    from .checkpoint import CheckpointError
    from .data import DataError
    from .encoders.muq import MuQUnavailable

    try:
        return COMMANDS[args.command](args)
    except (DataError, AudioError, CheckpointError, MuQUnavailable, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
