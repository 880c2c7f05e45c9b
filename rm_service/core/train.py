"""Two-stage training of the CMI reward model on frozen-encoder tokens.

Stage 1 ("pseudo", optional): Bradley-Terry pretraining on position-consistent pseudo-labels with label
smoothing (default 0.2). Stage 2 ("human"): fine-tuning on human pairwise labels (Bradley-Terry) and MOS
ratings (tanh regression with a learnable scale/offset that is not part of the saved model), with early
stopping on the validation split. Each stage has its own AdamW optimiser with linear warmup and cosine
decay. Tokens come from the embedding cache, so no clip is encoded twice across steps, runs or resumes.

A run directory (see ``layout.RunLayout``) holds resumable trainer states under ``state/``, ``best/`` (the
best validation checkpoint) and ``model/`` (the final checkpoint, written last). Batches are a pure function
of (seed, stage, step) and dropout is reseeded per step, so a resumed run continues exactly as the
uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .audio import file_sha256
from .batch import BatchBuilder
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .data import Dataset, Instruction, MosExample, PairExample, load_dataset, read_jsonl
from .encoders import EmbeddingCache, get_encoder
from .encoders.base import Encoder
from .features import Featurizer
from .layout import TRAINER_STATE, RunLayout
from .model import RewardModel, RewardModelConfig, count_parameters

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    model: RewardModelConfig = field(default_factory=RewardModelConfig)  # in-dims are set from the encoder
    encoder: str = "builtin"
    encoder_options: dict[str, Any] = field(default_factory=dict)
    strategy: str = "first120"  # clip window used for training (first120 or first10)
    max_dur: float | None = None  # extra cap on seconds per clip
    seed: int = 0
    batch_size: int = 48  # pairs (plus MOS items) per step, as in the paper
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0
    stage1_steps: int = 2000  # pseudo-label pretraining steps (paper: 2k); skipped without pseudo data
    stage1_label_smoothing: float = 0.2  # paper appendix C.1
    stage2_max_steps: int = 1000  # fine-tuning budget; early stopping usually ends sooner
    stage2_label_smoothing: float = 0.0
    eval_every: int = 50  # fine-tuning steps between validations
    patience: int = 5  # validations without improvement before early stopping
    mos_weight: float = 1.0
    mos_range: tuple[float, float] = (1.0, 5.0)  # rating scale; initialises the tanh scale and offset
    checkpoint_every: int = 100  # steps between resumable trainer states
    keep_states: int = 2
    # Token-level augmentation of every training clip (evaluated and reference audio): a random contiguous
    # crop keeping between ``crop_min`` and all of its frames, at a random offset (crop + time shift). Level
    # needs no augmentation (the builtin encoder levels every clip); gain and codec variation are applied to
    # the waveforms by ``pretrain`` pair construction.
    augment: bool = True
    crop_min: float = 0.6

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["model"] = self.model.to_dict()
        data["mos_range"] = list(self.mos_range)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        values = dict(data)
        if "model" in values:
            values["model"] = RewardModelConfig.from_dict(values["model"])
        if "mos_range" in values:
            values["mos_range"] = tuple(values["mos_range"])
        return cls(**values)


@dataclass
class TrainProgress:
    """What the progress callback receives after every optimiser step (and once at the end)."""

    stage: str  # "pseudo" | "human" | "done"
    step: int  # global step (both stages)
    stage_step: int
    stage_steps: int  # step budget of the current stage
    loss: float
    lr: float
    val: dict[str, float] | None = None  # set on the steps that ran a validation


class TrainingCancelled(Exception):
    """Raise from the progress callback to stop; the run saves a resumable state and returns 'cancelled'."""


@dataclass
class TrainResult:
    status: str  # "succeeded" | "cancelled"
    checkpoint: Path | None  # the final model directory (None when cancelled)
    run_dir: Path
    steps: int
    metrics: dict[str, Any]


class MosCalibration(nn.Module):
    """rating ~= scale * tanh(score) + offset, per head; used in training only, dropped at inference."""

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((2,), (high - low) / 2))
        self.offset = nn.Parameter(torch.full((2,), (high + low) / 2))
        self.half_range = (high - low) / 2

    def forward(self, scores: Tensor) -> Tensor:
        return self.scale * torch.tanh(scores) + self.offset  # (N, 2)


def bradley_terry_loss(diff: Tensor, a_wins: Tensor, smoothing: float = 0.0) -> Tensor:
    """Mean BT negative log-likelihood of ``P(A > B) = sigmoid(s_A - s_B)``.

    Args:
        diff: s_A - s_B, shape (N,).
        a_wins: bool (N,), True where A is preferred.
        smoothing: label smoothing eps; targets become 1 - eps/2 and eps/2.
    """
    target = a_wins.to(diff.dtype) * (1.0 - smoothing) + smoothing / 2.0
    return F.binary_cross_entropy_with_logits(diff, target)


def mos_loss(predicted: Tensor, rating: Tensor, half_range: float) -> Tensor:
    """MSE in units of half the rating range, so it is on a scale comparable to the BT loss."""
    return F.mse_loss(predicted / half_range, rating / half_range)


def lr_at(step: int, *, total: int, warmup: int, base: float, min_ratio: float) -> float:
    """Linear warmup then cosine decay to ``base * min_ratio`` at ``total`` steps."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


# --------------------------------------------------------------------------------------- batches


def trainable_examples(ds: Dataset) -> list[PairExample | MosExample]:
    """Pairs with at least one non-tie label, and MOS rows."""
    pairs = [p for p in ds.pairs if p.alignment not in (None, 0) or p.musicality not in (None, 0)]
    return [*pairs, *ds.mos]


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Indices for ``step``: consecutive slices of per-epoch permutations, a pure function of its inputs."""
    out = []
    perms: dict[int, np.ndarray] = {}
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch = position // n
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        out.append(int(perms[epoch][position % n]))
    return out


def batch_loss(
    model: RewardModel,
    mos_head: MosCalibration,
    batches: BatchBuilder,
    examples: list[PairExample | MosExample],
    *,
    smoothing: float,
    mos_weight: float,
    device: torch.device,
    rng: np.random.Generator | None = None,
    crop_min: float = 1.0,
) -> Tensor:
    """Sum over heads of the BT loss (pairs) plus ``mos_weight`` times the MOS regression loss."""
    pairs = [e for e in examples if isinstance(e, PairExample)]
    mos = [e for e in examples if isinstance(e, MosExample)]
    items = [(p.instruction, p.audio_a) for p in pairs] + [(p.instruction, p.audio_b) for p in pairs]
    items += [(m.instruction, m.audio) for m in mos]
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        scores = model(batches.training_inputs(items, rng=rng, crop_min=crop_min).to(device)).float()  # (2P + M, 2)
    n = len(pairs)
    loss = scores.new_zeros(())
    for head, attr in ((0, "alignment"), (1, "musicality")):
        labels = torch.tensor([getattr(p, attr) or 0 for p in pairs], device=device)  # (P,) in {-1, 0, 1}
        labelled = labels != 0  # ties and missing labels are excluded
        if n and bool(labelled.any()):
            diff = scores[:n, head] - scores[n : 2 * n, head]  # (P,)
            loss = loss + bradley_terry_loss(diff[labelled], labels[labelled] > 0, smoothing)
        ratings = [getattr(m, attr) for m in mos]
        rated = torch.tensor([r is not None for r in ratings], device=device)
        if mos and bool(rated.any()):
            target = torch.tensor([r or 0.0 for r in ratings], device=device)  # (M,)
            predicted = mos_head(scores[2 * n :])[:, head]  # (M,)
            loss = loss + mos_weight * mos_loss(predicted[rated], target[rated], mos_head.half_range)
    return loss


@torch.inference_mode()
def validate(
    model: RewardModel, batches: BatchBuilder, ds: Dataset, *, device: torch.device, batch_size: int = 64
) -> dict[str, float]:
    """Pairwise accuracy per head (CMI-RewardBench semantics: a tie label counts 0.5) and BT cross-entropy."""
    model.eval()
    items = list(dict.fromkeys([(p.instruction, a) for p in ds.pairs for a in (p.audio_a, p.audio_b)]))
    items += list(dict.fromkeys([(m.instruction, m.audio) for m in ds.mos]))
    scores: dict[tuple[Instruction, Path], Tensor] = {}
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(batches.training_inputs(chunk).to(device)).float().cpu()  # (b, 2)
        scores.update(zip(chunk, out, strict=True))
    metrics: dict[str, float] = {}
    for head, attr in ((0, "alignment"), (1, "musicality")):
        labelled = [p for p in ds.pairs if getattr(p, attr) is not None]
        if labelled:
            diff = torch.stack(
                [scores[(p.instruction, p.audio_a)][head] - scores[(p.instruction, p.audio_b)][head] for p in labelled]
            )
            labels = torch.tensor([getattr(p, attr) for p in labelled])
            correct = torch.where(labels == 0, 0.5, ((diff > 0) == (labels > 0)).float())
            metrics[f"acc_{attr}"] = float(correct.mean())
            decided = labels != 0
            if bool(decided.any()):
                metrics[f"ce_{attr}"] = float(bradley_terry_loss(diff[decided], labels[decided] > 0))
        rated = [m for m in ds.mos if getattr(m, attr) is not None]
        predicted = [float(scores[(m.instruction, m.audio)][head]) for m in rated]
        ratings = [float(getattr(m, attr)) for m in rated]
        if len(set(predicted)) >= 2 and len(set(ratings)) >= 2:  # Spearman is undefined on constant inputs
            from scipy.stats import spearmanr

            metrics[f"srcc_{attr}"] = float(spearmanr(predicted, ratings).statistic)
    accs = [v for k, v in metrics.items() if k.startswith("acc_")] or [
        v for k, v in metrics.items() if k.startswith("srcc_") and not math.isnan(v)
    ]
    metrics["score"] = float(np.mean(accs)) if accs else float("nan")
    return metrics


# ------------------------------------------------------------------------------------ run state


@dataclass
class RunState:
    stage_index: int = 0
    stage_step: int = 0
    step: int = 0
    best_score: float = -math.inf
    best_step: int = -1
    bad_evals: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def _run_fingerprint(config: TrainConfig, data_hashes: dict[str, str], encoder_id: str) -> str:
    blob = json.dumps({"config": config.to_dict(), "data": data_hashes, "encoder": encoder_id}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class TrainingData:
    """The datasets of a run: the stages to train in order, the validation split, their file hashes."""

    stages: list[tuple[str, Dataset]]  # ("pseudo" | "human", data), only those with trainable rows
    val: Dataset | None
    hashes: dict[str, str]  # "train" / "val" / "pseudo" -> sha256 of the JSONL file
    every: list[Dataset]  # all loaded datasets, encoded up front


def load_training_data(
    *,
    train_jsonl: str | Path | None,
    dataset_root: str | Path,
    val_jsonl: str | Path | None,
    pseudo_jsonl: str | Path | None,
    pseudo_root: str | Path | None,
    split: str | None,
    val_split: str | None,
) -> TrainingData:
    human = load_dataset(train_jsonl, dataset_root=dataset_root, split=split) if train_jsonl else None
    val = load_dataset(val_jsonl, dataset_root=dataset_root, split=val_split) if val_jsonl else None
    if val is not None and len(val) == 0:
        logger.warning("validation data %s has no rows; training for the full step budget", val_jsonl)
        val = None
    pseudo = load_dataset(pseudo_jsonl, dataset_root=pseudo_root or dataset_root) if pseudo_jsonl else None
    stages = [(name, ds) for name, ds in (("pseudo", pseudo), ("human", human)) if ds and trainable_examples(ds)]
    if not stages:
        raise ValueError(f"no trainable rows (non-tie pairs or MOS ratings) in {train_jsonl}")
    files = {"train": train_jsonl, "val": val_jsonl, "pseudo": pseudo_jsonl}
    hashes = {k: file_sha256(v) for k, v in files.items() if v}
    return TrainingData(stages, val, hashes, [d for d in (human, val, pseudo) if d is not None])


def _check_strategy(config: TrainConfig) -> None:
    if config.strategy not in ("first120", "first10"):
        raise ValueError(
            f"training uses one window per clip: strategy must be first120 or first10, not {config.strategy}"
        )


def _fitted_to(config: TrainConfig, encoder: Encoder) -> TrainConfig:
    """``config`` with the encoder's name, options and token dimensions."""
    return replace(
        config,
        encoder=encoder.name,
        encoder_options=encoder.options(),
        model=replace(config.model, audio_in_dim=encoder.audio_dim, text_in_dim=encoder.text_dim),
    )


class Run:
    """The model, MOS head, optimiser and progress of one run, and how they are saved and restored.

    Args:
        config: the full training config (fitted to the encoder).
        encoder: the encoder whose tokens the model reads.
        layout: the run directory.
        data_hashes: file hashes of the training data (a resume must see the same data).
        device: torch device.
    """

    def __init__(
        self,
        config: TrainConfig,
        encoder: Encoder,
        layout: RunLayout,
        *,
        data_hashes: dict[str, str],
        device: torch.device,
        init: Checkpoint | None = None,
    ) -> None:
        self.config, self.encoder, self.layout, self.device = config, encoder, layout, device
        self.data_hashes = data_hashes
        self.fingerprint = _run_fingerprint(config, data_hashes, encoder.id)
        torch.manual_seed(config.seed)
        self.model = RewardModel(config.model).to(device)
        if init is not None:  # stage 2 from a pretrained (e.g. starter) model
            self.model.load_state_dict(init.model.state_dict())
        self.mos_head = MosCalibration(*config.mos_range).to(device)
        self.optimizer = self.new_optimizer()
        self.state = RunState()
        self.last_loss = float("nan")
        logger.info("reward model: %d trainable parameters", count_parameters(self.model))

    def new_optimizer(self) -> torch.optim.Optimizer:
        params = [*self.model.parameters(), *self.mos_head.parameters()]
        return torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay)

    def restore(self, *, resume: bool) -> None:
        """Continue from the newest trainer state of the run directory, if there is one and ``resume``."""
        latest = self.layout.latest_state()
        if latest is None:
            return
        if not resume:
            raise ValueError(f"{self.layout.root} already holds a training run; pass resume=True or use a new out_dir")
        saved = torch.load(latest / TRAINER_STATE, map_location=self.device, weights_only=True)
        if saved["fingerprint"] != self.fingerprint:
            raise ValueError(f"cannot resume {self.layout.root}: its config, data or encoder differ from this call")
        self.model.load_state_dict(load_checkpoint(latest, device=self.device).model.state_dict())
        self.mos_head.load_state_dict(saved["mos_head"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.state = RunState(**saved["run_state"])
        logger.info("resumed %s at step %d", self.layout.root, self.state.step)

    def metadata(self, **extra: Any) -> dict[str, Any]:
        return {
            "train_config": self.config.to_dict(),
            "data_sha256": self.data_hashes,
            "encoder_id": self.encoder.id,
            "step": self.state.step,
            "best_step": self.state.best_step,
            "history": self.state.history,
            "trainable_parameters": count_parameters(self.model),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "torch": torch.__version__,
            **extra,
        }

    def save(self, path: Path, *, extra_files: dict[str, Any] | None = None, **metadata: Any) -> Path:
        """Write the model as a checkpoint directory."""
        return save_checkpoint(
            path,
            model=self.model,
            encoder_name=self.encoder.name,
            encoder_options=self.encoder.options(),
            encoder_id=self.encoder.id,
            strategy=self.config.strategy,
            metadata=self.metadata(**metadata),
            extra_files=extra_files,
        )

    def save_state(self) -> None:
        """Write a resumable trainer state, point ``LATEST`` at it and drop the oldest states."""
        trainer = {
            "fingerprint": self.fingerprint,
            "mos_head": self.mos_head.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "run_state": asdict(self.state),
        }
        path = self.save(self.layout.state(self.state.step), extra_files={TRAINER_STATE: trainer})
        self.layout.point_latest(path)
        self.layout.prune_states(keep=self.config.keep_states)

    def finish(self) -> TrainResult:
        """Reload the best validation checkpoint (if any) and write the final one."""
        if self.state.best_step >= 0:
            self.model.load_state_dict(load_checkpoint(self.layout.best, device=self.device).model.state_dict())
        self.save_state()
        history = self.state.history
        metrics = {
            "best_val": next((h for h in history if h["step"] == self.state.best_step), None),
            "history": history,
        }
        final = self.save(self.layout.final, metrics=metrics)
        return TrainResult("succeeded", final, self.layout.root, self.state.step, metrics)


def _train_stage(
    run: Run,
    name: str,
    data: Dataset,
    *,
    batches: BatchBuilder,
    val: Dataset | None,
    progress: Callable[[TrainProgress], None] | None,
    show_progress: bool,
) -> None:
    """Run the rest of one stage's steps (from ``run.state.stage_step``), then move the run to the next stage."""
    from tqdm import tqdm

    config, state = run.config, run.state
    is_pseudo = name == "pseudo"
    budget = config.stage1_steps if is_pseudo else config.stage2_max_steps
    examples = trainable_examples(data)
    bar = tqdm(total=budget, initial=state.stage_step, desc=f"train {name}", disable=not show_progress)
    while state.stage_step < budget and not state.stopped_early:
        lr = _step(run, examples, batches, budget=budget, is_pseudo=is_pseudo)
        val_metrics = None
        if (
            not is_pseudo
            and val is not None
            and (state.stage_step % config.eval_every == 0 or state.stage_step == budget)
        ):
            val_metrics = _validate_and_keep_best(run, name, batches, val)
        if state.step % config.checkpoint_every == 0:
            run.save_state()
        bar.update(1)
        bar.set_postfix(loss=f"{run.last_loss:.4f}", **({"val": f"{val_metrics['score']:.3f}"} if val_metrics else {}))
        if progress is not None:
            progress(TrainProgress(name, state.step, state.stage_step, budget, run.last_loss, lr, val_metrics))
    bar.close()
    if is_pseudo and val is not None:
        state.history.append(
            {"step": state.step, "stage": "pseudo-end", **validate(run.model, batches, val, device=run.device)}
        )
    state.stage_index += 1
    state.stage_step = 0
    state.stopped_early = False
    run.optimizer = run.new_optimizer()  # each stage starts its own warmup and cosine schedule


def _step(
    run: Run, examples: list[PairExample | MosExample], batches: BatchBuilder, *, budget: int, is_pseudo: bool
) -> float:
    """One optimiser step; returns its learning rate."""
    config, state = run.config, run.state
    run.model.train()
    lr = lr_at(
        state.stage_step, total=budget, warmup=config.warmup_steps, base=config.lr, min_ratio=config.min_lr_ratio
    )
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    torch.manual_seed(config.seed * 1_000_003 + state.step)  # dropout depends only on the step
    picked = batch_indices(len(examples), config.batch_size, state.stage_step, config.seed * 31 + state.stage_index)
    loss = batch_loss(
        run.model,
        run.mos_head,
        batches,
        [examples[i] for i in picked],
        smoothing=config.stage1_label_smoothing if is_pseudo else config.stage2_label_smoothing,
        mos_weight=config.mos_weight,
        device=run.device,
        rng=np.random.default_rng([config.seed, state.step]) if config.augment else None,
        crop_min=config.crop_min,
    )
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(run.model.parameters(), config.grad_clip)
    run.optimizer.step()
    state.stage_step += 1
    state.step += 1
    run.last_loss = float(loss.detach())
    return lr


def _validate_and_keep_best(run: Run, stage: str, batches: BatchBuilder, val: Dataset) -> dict[str, float]:
    """Validate, save ``best/`` on improvement, and stop the stage early after ``patience`` validations without."""
    state = run.state
    metrics = validate(run.model, batches, val, device=run.device)
    state.history.append({"step": state.step, "stage": stage, **metrics})
    if metrics["score"] > state.best_score:
        state.best_score, state.best_step, state.bad_evals = metrics["score"], state.step, 0
        run.save(run.layout.best)
    else:
        state.bad_evals += 1
        state.stopped_early = state.bad_evals >= run.config.patience
    return metrics


def train(
    *,
    train_jsonl: str | Path | None,
    dataset_root: str | Path,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    val_jsonl: str | Path | None = None,
    pseudo_jsonl: str | Path | None = None,
    pseudo_root: str | Path | None = None,
    split: str | None = None,
    val_split: str | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    encoder: Encoder | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    resume: bool = False,
    show_progress: bool = False,
    init_checkpoint: str | Path | None = None,
) -> TrainResult:
    """Train a reward model end to end and write its checkpoint.

    Args:
        train_jsonl: human-labelled rows (pairs and/or MOS) in the CMI-RewardBench schema (None: stage 1 only).
        dataset_root: directory the audio paths of ``train_jsonl`` and ``val_jsonl`` are relative to.
        out_dir: run directory (states, ``best/``, final ``model/``).
        config: hyper-parameters (default ``TrainConfig()``).
        val_jsonl: validation rows for early stopping (None = fixed ``stage2_max_steps``).
        pseudo_jsonl: stage-1 pseudo-label pairs (None = no stage 1).
        pseudo_root: audio root of ``pseudo_jsonl`` (default ``dataset_root``).
        split, val_split: keep only rows with this ``split`` value (for a single JSONL holding all splits).
        device: torch device; bf16 autocast is used on CUDA.
        cache_dir: embedding cache directory (None = in-process only).
        encoder: a ready encoder (default: built from ``config.encoder`` / ``config.encoder_options``).
        progress: called after every step with a ``TrainProgress``; raise ``TrainingCancelled`` to stop.
        resume: continue from the newest state in ``out_dir`` (an error if its config or data differ).
        show_progress: draw tqdm bars (CLI).
        init_checkpoint: start from this checkpoint's weights and model config (e.g. a ``pretrain`` or
            ``starter`` model: stage 2 on human votes then fine-tunes it); its encoder must be this run's.

    Returns:
        ``TrainResult`` with the final checkpoint directory and the validation metrics.

    Raises:
        DataError: unreadable or invalid JSONL rows, or missing audio files.
        ValueError: empty training data, or ``out_dir`` holds a different run.
    """
    config = config or TrainConfig()
    _check_strategy(config)
    data = load_training_data(
        train_jsonl=train_jsonl,
        dataset_root=dataset_root,
        val_jsonl=val_jsonl,
        pseudo_jsonl=pseudo_jsonl,
        pseudo_root=pseudo_root,
        split=split,
        val_split=val_split,
    )
    init = load_checkpoint(init_checkpoint) if init_checkpoint else None
    if init is not None:
        data.hashes["init"] = file_sha256(init.path / "model.safetensors")
        config = replace(config, model=init.config)
    encoder = encoder or get_encoder(config.encoder, **config.encoder_options)
    if init is not None and init.encoder_id != encoder.id:
        raise ValueError(f"{init_checkpoint} was trained on encoder {init.encoder_id}, not {encoder.id}")
    config = _fitted_to(config, encoder)
    batches = BatchBuilder(
        Featurizer(encoder, EmbeddingCache(cache_dir) if cache_dir else None),
        strategy=config.strategy,
        max_dur=config.max_dur,
    )
    batches.prepare(data.every, show_progress=show_progress)
    run = Run(
        config, encoder, RunLayout(Path(out_dir)), data_hashes=data.hashes, device=torch.device(device), init=init
    )
    run.restore(resume=resume)
    try:
        for name, stage_data in data.stages[run.state.stage_index :]:
            _train_stage(
                run, name, stage_data, batches=batches, val=data.val, progress=progress, show_progress=show_progress
            )
    except TrainingCancelled:
        run.save_state()
        return TrainResult("cancelled", None, run.layout.root, run.state.step, {"history": run.state.history})
    result = run.finish()
    if progress is not None:
        progress(TrainProgress("done", result.steps, 0, 0, run.last_loss, 0.0, result.metrics["best_val"]))
    return result


def train_from_export(
    export_dir: str | Path,
    *,
    out_dir: str | Path,
    config: TrainConfig | None = None,
    pseudo_jsonl: str | Path | None = None,
    pseudo_root: str | Path | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    encoder: Encoder | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    resume: bool = False,
    show_progress: bool = False,
    init_checkpoint: str | Path | None = None,
) -> TrainResult:
    """Train on a dataset export: ``train.jsonl`` / ``validation.jsonl`` files, or one ``votes.jsonl``
    whose rows carry ``split`` = train / validation; audio paths are relative to ``export_dir``.

    Args and Returns: as ``train`` (``dataset_root`` is ``export_dir``).
    """
    root = Path(export_dir)
    if (root / "train.jsonl").is_file():
        train_jsonl, split, val_split = root / "train.jsonl", None, None
        val_jsonl: Path | None = root / "validation.jsonl" if (root / "validation.jsonl").is_file() else None
    elif (root / "votes.jsonl").is_file():
        train_jsonl, split, val_split = root / "votes.jsonl", "train", "validation"
        has_val = any(row.get("split") == "validation" for _, row in read_jsonl(train_jsonl))
        val_jsonl = train_jsonl if has_val else None
    else:
        raise FileNotFoundError(f"{root} has neither train.jsonl nor votes.jsonl")
    return train(
        train_jsonl=train_jsonl,
        dataset_root=root,
        out_dir=out_dir,
        config=config,
        val_jsonl=val_jsonl,
        pseudo_jsonl=pseudo_jsonl,
        pseudo_root=pseudo_root,
        split=split,
        val_split=val_split,
        device=device,
        cache_dir=cache_dir,
        encoder=encoder,
        progress=progress,
        resume=resume,
        show_progress=show_progress,
        init_checkpoint=init_checkpoint,
    )
