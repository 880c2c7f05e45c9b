"""Two-stage training of the CMI reward model on frozen-encoder tokens.

Stage 1 ("pseudo", optional): Bradley-Terry pretraining on position-consistent pseudo-labels with label
smoothing (default 0.2). Stage 2 ("human"): fine-tuning on human pairwise labels (Bradley-Terry) and MOS
ratings (tanh regression with a learnable scale/offset that is not part of the saved model), with early
stopping on the validation split. Each stage has its own AdamW optimiser with linear warmup and cosine
decay. Tokens come from the embedding cache, so no clip is encoded twice across steps, runs or resumes.

A run directory holds ``state/step-NNNNNN/`` (resumable trainer states; ``state/LATEST`` names the newest),
``best/`` (best validation checkpoint) and ``model/`` (the final checkpoint, written last). Batches are a
pure function of (seed, stage, step) and dropout is reseeded per step, so a resumed run continues exactly
as the uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import load_checkpoint, save_checkpoint
from .data import Dataset, Instruction, MosExample, PairExample, load_dataset, read_jsonl
from .encoders import EmbeddingCache, get_encoder
from .encoders.base import Encoder
from .features import Featurizer
from .model import RewardInputs, RewardModel, RewardModelConfig, count_parameters, pad_tokens

logger = logging.getLogger(__name__)

STATE_FILE = "trainer.pt"


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


@dataclass
class TokenSource:
    """Fetches (cached) tokens for instructions and clips as tensors."""

    featurizer: Featurizer
    strategy: str
    max_dur: float | None

    def audio(self, path: Path, rng: np.random.Generator | None = None, crop_min: float = 1.0) -> Tensor:
        tokens = self.featurizer.audio(path, strategy=self.strategy, max_dur=self.max_dur)[0]
        if rng is not None and crop_min < 1.0 and len(tokens) > 1:
            keep = int(rng.integers(max(1, int(crop_min * len(tokens))), len(tokens) + 1))
            start = int(rng.integers(0, len(tokens) - keep + 1))
            tokens = tokens[start : start + keep]
        return torch.from_numpy(np.ascontiguousarray(tokens))

    def text(self, text: str) -> Tensor:
        return torch.from_numpy(self.featurizer.text(text))

    def inputs(
        self, items: list[tuple[Instruction, Path]], rng: np.random.Generator | None = None, crop_min: float = 1.0
    ) -> RewardInputs:
        """Padded inputs; with ``rng``, every clip is randomly cropped (see ``TrainConfig.crop_min``)."""
        enc = self.featurizer.encoder
        empty_audio = torch.zeros(0, enc.audio_dim)
        text, text_mask = pad_tokens([self.text(i.text) for i, _ in items], enc.text_dim)
        lyrics, lyrics_mask = pad_tokens([self.text(i.lyrics) for i, _ in items], enc.text_dim)
        ref, ref_mask = pad_tokens(
            [self.audio(i.ref_audio, rng, crop_min) if i.ref_audio else empty_audio for i, _ in items], enc.audio_dim
        )
        audio, audio_mask = pad_tokens([self.audio(a, rng, crop_min) for _, a in items], enc.audio_dim)
        return RewardInputs(text, text_mask, lyrics, lyrics_mask, ref, ref_mask, audio, audio_mask)

    def prepare(self, datasets: list[Dataset], *, show_progress: bool) -> None:
        """Encode (or find in the cache) every clip and text once, up front."""
        from tqdm import tqdm

        paths: dict[Path, None] = {}
        texts: dict[str, None] = {}
        for ds in datasets:
            for instr in ds.instructions():
                texts[instr.text] = texts[instr.lyrics] = None
                if instr.ref_audio:
                    paths[instr.ref_audio] = None
            for p in ds.audio_paths():
                paths[p] = None
        for text in tqdm(texts, desc="encode texts", disable=not show_progress, leave=False):
            self.featurizer.text(text)
        for path in tqdm(paths, desc="encode audio", disable=not show_progress, leave=False):
            self.featurizer.audio(path, strategy=self.strategy, max_dur=self.max_dur)


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
    tokens: TokenSource,
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
        scores = model(tokens.inputs(items, rng, crop_min).to(device)).float()  # (2P + M, 2)
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
    model: RewardModel, tokens: TokenSource, ds: Dataset, *, device: torch.device, batch_size: int = 64
) -> dict[str, float]:
    """Pairwise accuracy per head (CMI-RewardBench semantics: a tie label counts 0.5) and BT cross-entropy."""
    model.eval()
    items = list(dict.fromkeys([(p.instruction, a) for p in ds.pairs for a in (p.audio_a, p.audio_b)]))
    items += list(dict.fromkeys([(m.instruction, m.audio) for m in ds.mos]))
    scores: dict[tuple[Instruction, Path], Tensor] = {}
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(tokens.inputs(chunk).to(device)).float().cpu()  # (b, 2)
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


def _latest_state(run_dir: Path) -> Path | None:
    pointer = run_dir / "state" / "LATEST"
    if not pointer.is_file():
        return None
    path = run_dir / "state" / pointer.read_text().strip()
    return path if (path / STATE_FILE).is_file() else None


def _write_pointer(run_dir: Path, name: str) -> None:
    pointer = run_dir / "state" / "LATEST"
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(name)
    tmp.replace(pointer)


def _run_fingerprint(config: TrainConfig, data_hashes: dict[str, str], encoder_id: str) -> str:
    blob = json.dumps({"config": config.to_dict(), "data": data_hashes, "encoder": encoder_id}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# ------------------------------------------------------------------------------------------ train


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
    from tqdm import tqdm

    config = config or TrainConfig()
    if config.strategy not in ("first120", "first10"):
        raise ValueError(
            f"training uses one window per clip: strategy must be first120 or first10, not {config.strategy}"
        )
    device = torch.device(device)
    run_dir = Path(out_dir)
    human = load_dataset(train_jsonl, dataset_root=dataset_root, split=split) if train_jsonl else None
    val = load_dataset(val_jsonl, dataset_root=dataset_root, split=val_split) if val_jsonl else None
    if val is not None and len(val) == 0:
        logger.warning("validation data %s has no rows; training for the full step budget", val_jsonl)
        val = None
    pseudo = load_dataset(pseudo_jsonl, dataset_root=pseudo_root or dataset_root) if pseudo_jsonl else None
    stages: list[tuple[str, Dataset]] = [
        (name, ds) for name, ds in (("pseudo", pseudo), ("human", human)) if ds is not None and trainable_examples(ds)
    ]
    if not stages:
        raise ValueError(f"no trainable rows (non-tie pairs or MOS ratings) in {train_jsonl}")
    data_hashes = {
        k: hashlib.sha256(Path(v).read_bytes()).hexdigest()
        for k, v in (("train", train_jsonl), ("val", val_jsonl), ("pseudo", pseudo_jsonl))
        if v
    }
    init = load_checkpoint(init_checkpoint) if init_checkpoint else None
    if init is not None:
        data_hashes["init"] = hashlib.sha256((init.path / "model.safetensors").read_bytes()).hexdigest()
        config = replace(config, model=init.config)

    encoder = encoder or get_encoder(config.encoder, **config.encoder_options)
    config = replace(
        config,
        encoder=encoder.name,
        encoder_options=encoder.options(),
        model=replace(config.model, audio_in_dim=encoder.audio_dim, text_in_dim=encoder.text_dim),
    )
    if init is not None and init.encoder_id != encoder.id:
        raise ValueError(f"{init_checkpoint} was trained on encoder {init.encoder_id}, not {encoder.id}")
    fingerprint = _run_fingerprint(config, data_hashes, encoder.id)
    tokens = TokenSource(
        Featurizer(encoder, EmbeddingCache(cache_dir) if cache_dir else None), config.strategy, config.max_dur
    )
    tokens.prepare([d for d in (human, val, pseudo) if d is not None], show_progress=show_progress)

    torch.manual_seed(config.seed)
    model = RewardModel(config.model).to(device)
    if init is not None:
        model.load_state_dict(init.model.state_dict())
    mos_head = MosCalibration(*config.mos_range).to(device)
    logger.info("reward model: %d trainable parameters", count_parameters(model))

    def new_optimizer() -> torch.optim.Optimizer:
        params = [*model.parameters(), *mos_head.parameters()]
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    optimizer = new_optimizer()
    state = RunState()
    latest = _latest_state(run_dir)
    if latest is not None and not resume:
        raise ValueError(f"{run_dir} already holds a training run; pass resume=True or use a new out_dir")
    if latest is not None:
        saved = torch.load(latest / STATE_FILE, map_location=device, weights_only=True)
        if saved["fingerprint"] != fingerprint:
            raise ValueError(f"cannot resume {run_dir}: its config, data or encoder differ from this call")
        model.load_state_dict(load_checkpoint(latest, device=device).model.state_dict())
        mos_head.load_state_dict(saved["mos_head"])
        optimizer.load_state_dict(saved["optimizer"])
        state = RunState(**saved["run_state"])
        logger.info("resumed %s at step %d", run_dir, state.step)

    def save_state() -> None:
        name = f"step-{state.step:06d}"
        extra = {
            STATE_FILE: {
                "fingerprint": fingerprint,
                "mos_head": mos_head.state_dict(),
                "optimizer": optimizer.state_dict(),
                "run_state": asdict(state),
            }
        }
        save_checkpoint(run_dir / "state" / name, extra_files=extra, **ckpt_args(metadata()))
        _write_pointer(run_dir, name)
        for old in sorted((run_dir / "state").glob("step-*"))[: -config.keep_states]:
            shutil.rmtree(old, ignore_errors=True)

    def ckpt_args(meta: dict[str, Any]) -> dict[str, Any]:
        return dict(
            model=model,
            encoder_name=encoder.name,
            encoder_options=encoder.options(),
            encoder_id=encoder.id,
            strategy=config.strategy,
            metadata=meta,
        )

    def metadata() -> dict[str, Any]:
        return {
            "train_config": config.to_dict(),
            "data_sha256": data_hashes,
            "encoder_id": encoder.id,
            "step": state.step,
            "best_step": state.best_step,
            "history": state.history,
            "trainable_parameters": count_parameters(model),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "torch": torch.__version__,
        }

    status = "succeeded"
    loss_value = float("nan")
    try:
        while state.stage_index < len(stages):
            stage_name, stage_data = stages[state.stage_index]
            examples = trainable_examples(stage_data)
            is_pseudo = stage_name == "pseudo"
            budget = config.stage1_steps if is_pseudo else config.stage2_max_steps
            smoothing = config.stage1_label_smoothing if is_pseudo else config.stage2_label_smoothing
            bar = tqdm(total=budget, initial=state.stage_step, desc=f"train {stage_name}", disable=not show_progress)
            while state.stage_step < budget and not state.stopped_early:
                model.train()
                lr = lr_at(
                    state.stage_step,
                    total=budget,
                    warmup=config.warmup_steps,
                    base=config.lr,
                    min_ratio=config.min_lr_ratio,
                )
                for group in optimizer.param_groups:
                    group["lr"] = lr
                torch.manual_seed(config.seed * 1_000_003 + state.step)  # dropout depends only on the step
                picked = batch_indices(
                    len(examples), config.batch_size, state.stage_step, config.seed * 31 + state.stage_index
                )
                loss = batch_loss(
                    model,
                    mos_head,
                    tokens,
                    [examples[i] for i in picked],
                    smoothing=smoothing,
                    mos_weight=config.mos_weight,
                    device=device,
                    rng=np.random.default_rng([config.seed, state.step]) if config.augment else None,
                    crop_min=config.crop_min,
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                state.stage_step += 1
                state.step += 1
                loss_value = float(loss.detach())
                val_metrics = None
                if (
                    not is_pseudo
                    and val is not None
                    and (state.stage_step % config.eval_every == 0 or state.stage_step == budget)
                ):
                    val_metrics = validate(model, tokens, val, device=device)
                    state.history.append({"step": state.step, "stage": stage_name, **val_metrics})
                    if val_metrics["score"] > state.best_score:
                        state.best_score, state.best_step, state.bad_evals = val_metrics["score"], state.step, 0
                        save_checkpoint(run_dir / "best", **ckpt_args(metadata()))
                    else:
                        state.bad_evals += 1
                        state.stopped_early = state.bad_evals >= config.patience
                if state.step % config.checkpoint_every == 0:
                    save_state()
                bar.update(1)
                bar.set_postfix(
                    loss=f"{loss_value:.4f}", **({"val": f"{val_metrics['score']:.3f}"} if val_metrics else {})
                )
                if progress is not None:
                    progress(
                        TrainProgress(stage_name, state.step, state.stage_step, budget, loss_value, lr, val_metrics)
                    )
            bar.close()
            if is_pseudo and val is not None:
                state.history.append(
                    {"step": state.step, "stage": "pseudo-end", **validate(model, tokens, val, device=device)}
                )
            state.stage_index += 1
            state.stage_step = 0
            state.stopped_early = False
            optimizer = new_optimizer()  # each stage starts its own warmup and cosine schedule
    except TrainingCancelled:
        status = "cancelled"
        save_state()

    if status == "cancelled":
        return TrainResult(status, None, run_dir, state.step, {"history": state.history})
    if state.best_step >= 0:
        model.load_state_dict(load_checkpoint(run_dir / "best", device=device).model.state_dict())
    save_state()
    final_metrics: dict[str, Any] = {
        "best_val": next((h for h in state.history if h["step"] == state.best_step), None),
        "history": state.history,
    }
    final = save_checkpoint(run_dir / "model", **ckpt_args({**metadata(), "metrics": final_metrics}))
    if progress is not None:
        progress(TrainProgress("done", state.step, 0, 0, loss_value, 0.0, final_metrics["best_val"]))
    return TrainResult(status, final, run_dir, state.step, final_metrics)


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
