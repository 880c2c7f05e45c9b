"""Reward-model core benchmark: training and scoring throughput, cache effect, wrapper overhead.

    .venv/bin/python bench/rm.py [--device cpu|cuda] [--presets tiny,small] [--clip-seconds 10]

Prints, for each model preset:

- training throughput: pairs/s at batch 48 on cached embeddings (optimizer steps over tokens that come
  from the embedding cache; no encoding happens inside the timed loop);
- scoring throughput: clips/s with a cold cache (decode + encode + score) and a warm on-disk cache (a fresh
  scorer on the same cache directory: read + score), and their ratio;
- model forward time through ``Scorer`` (numpy tokens -> padded batch -> device -> model) against a bare
  ``model(inputs)`` call on the same prebuilt tensors, and their ratio.

Every figure is measured in this run; nothing is estimated.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from rm_service.core.batch import BatchBuilder  # noqa: E402
from rm_service.core.cli import PRESETS  # noqa: E402
from rm_service.core.encoders import EmbeddingCache  # noqa: E402
from rm_service.core.encoders.builtin import BuiltinEncoder  # noqa: E402
from rm_service.core.features import Featurizer  # noqa: E402
from rm_service.core.model import RewardModel, RewardModelConfig, count_parameters  # noqa: E402
from rm_service.core.score import Scorer  # noqa: E402
from rm_service.core.synth import make_synthetic_dataset  # noqa: E402
from rm_service.core.train import (  # noqa: E402
    MosCalibration,
    batch_indices,
    batch_loss,
    trainable_examples,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_training(
    config: RewardModelConfig, tokens: BatchBuilder, examples: list, device: torch.device, steps: int
) -> float:
    """Pairs per second of full optimiser steps at batch 48 (tokens already cached)."""
    torch.manual_seed(0)
    model = RewardModel(config).to(device).train()
    mos = MosCalibration(1.0, 5.0).to(device)
    opt = torch.optim.AdamW([*model.parameters(), *mos.parameters()], lr=1e-4)

    def step(i: int) -> None:
        batch = [examples[j] for j in batch_indices(len(examples), 48, i, 0)]
        loss = batch_loss(model, mos, tokens, batch, smoothing=0.0, mos_weight=1.0, device=device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(0)  # warm-up (allocator, kernels)
    _sync(device)
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step(i)
    _sync(device)
    return steps * 48 / (time.perf_counter() - start)


def bench_scoring(model: RewardModel, items: list[dict], device: torch.device, cache_root: Path) -> tuple[float, float]:
    """(cold clips/s, warm clips/s): a fresh encoder+cache, then a fresh scorer on the filled cache."""
    shutil.rmtree(cache_root, ignore_errors=True)
    cold = Scorer(model, BuiltinEncoder(text_model="hash"), device=device, cache=EmbeddingCache(cache_root))
    start = time.perf_counter()
    cold.score_batch(items, batch_size=16)
    _sync(device)
    cold_rate = len(items) / (time.perf_counter() - start)
    assert cold.featurizer.audio_encodes == len(items)
    warm = Scorer(model, BuiltinEncoder(text_model="hash"), device=device, cache=EmbeddingCache(cache_root))
    start = time.perf_counter()
    warm.score_batch(items, batch_size=16)
    _sync(device)
    warm_rate = len(items) / (time.perf_counter() - start)
    assert warm.featurizer.audio_encodes == 0  # the warm pass never encodes
    return cold_rate, warm_rate


def bench_forward(
    model: RewardModel, scorer: Scorer, items: list[dict], device: torch.device, repeats: int
) -> tuple[float, float]:
    """(ms per batch through Scorer._forward, ms per batch of a bare model(inputs) on prebuilt tensors)."""
    builder = scorer.batch_builder(strategy="first120")
    prompts = [builder.item_prompt(item) for item in items]
    windows = [builder.item_windows(item, i)[0] for i, item in enumerate(items)]
    inputs = builder.inputs(prompts, windows).to(device)

    def wrapped() -> None:
        scorer._forward(builder, prompts, windows)

    def bare() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            model(inputs)

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        fn()
        samples = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            samples.append(time.perf_counter() - start)
        return 1000 * statistics.median(samples)

    return timed(wrapped), timed(bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", default="tiny,small", help="comma-separated: tiny, small, paper")
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    work = Path(tempfile.mkdtemp(prefix="rm-bench-"))
    try:
        summary = make_synthetic_dataset(
            work / "data",
            n_instructions=24,
            pairs_per_instruction=2,
            mos_per_instruction=0,
            judged_per_instruction=0,
            duration_s=args.clip_seconds,
            seed=0,
            split_fractions=(1.0, 0.0, 0.0),
        )
        from rm_service.core.data import load_dataset

        ds = load_dataset(work / "data" / "train.jsonl", dataset_root=work / "data")
        encoder = BuiltinEncoder(text_model="hash")
        tokens = BatchBuilder(Featurizer(encoder, EmbeddingCache(work / "train-cache")), strategy="first120")
        tokens.prepare([ds], show_progress=False)  # fills the cache: training below reads cached tokens only
        examples = trainable_examples(ds)
        items = [{"audio": p, "text": "a fast piano piece", "lyrics": ""} for p in ds.audio_paths()]
        print(
            f"device {device}, torch threads {torch.get_num_threads()}, clips {args.clip_seconds:g} s "
            f"({int(args.clip_seconds * 25) + 1} tokens), {len(examples)} training pairs, "
            f"{len(items)} clips to score "
            f"[{summary.clips} rendered]"
        )
        header = (
            f"{'preset':<7}{'params':>12}{'train pairs/s':>15}{'cold clips/s':>14}{'warm clips/s':>14}"
            f"{'warm/cold':>11}{'Scorer fwd ms':>15}{'bare fwd ms':>13}{'fwd ratio':>11}"
        )
        print(header)
        for preset in args.presets.split(","):
            config = RewardModelConfig(**PRESETS[preset], audio_in_dim=encoder.audio_dim, text_in_dim=encoder.text_dim)
            train_rate = bench_training(config, tokens, examples, device, args.train_steps)
            torch.manual_seed(0)
            model = RewardModel(config).to(device).eval()
            cold, warm = bench_scoring(model, items, device, work / "score-cache")
            scorer = Scorer(model, encoder, device=device, cache=EmbeddingCache(work / "score-cache"))
            wrapped_ms, bare_ms = bench_forward(model, scorer, items[:16], device, repeats=5)
            print(
                f"{preset:<7}{count_parameters(model):>12,}{train_rate:>15.1f}{cold:>14.1f}{warm:>14.1f}"
                f"{warm / cold:>10.1f}x{wrapped_ms:>15.1f}{bare_ms:>13.1f}{wrapped_ms / bare_ms:>10.2f}x"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
