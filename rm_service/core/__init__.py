"""The CMI reward model: pure torch, no Django. The platform reaches it only through ``rm_service.worker``.

Entry points (all keyword-only, ``device=`` explicit):

- ``train.train(train_jsonl=..., dataset_root=..., out_dir=..., config=TrainConfig(...), device=...)`` and
  ``train.train_from_export(export_dir, out_dir=..., device=...)`` -> ``TrainResult``
- ``load_checkpoint(path, device=...)`` -> ``Checkpoint``; ``load_scorer(path, device=...)`` -> ``Scorer``
- ``Scorer.score_batch(items, batch_size=..., max_dur=...)`` -> ``np.ndarray[N, 2]`` (alignment, musicality)
- ``Scorer.rank(instruction, candidates, top_k=..., weights=(0.5, 0.5))`` and ``rank_scores(scores, ...)``
  -> ``list[RankedCandidate]``
- ``evaluate.evaluate(jsonl=..., dataset_root=..., scorer=..., out_dir=...)`` -> ``EvaluationReport``
- ``CMIRewardBenchAdapter(checkpoint, device)`` for the benchmark harness
- ``make_pseudo_labels(rows)``, ``make_synthetic_dataset(out_dir)``, ``render(spec, duration_s=...)``
- ``layout``: the run-directory and checkpoint format (torch-free)
"""

# ``train`` and ``evaluate`` are exported as the submodules (core.train.train, core.evaluate.evaluate): a
# same-named function here would shadow the submodule for ``import rm_service.core.train``.

from . import evaluate, layout, train
from .audio import AudioError
from .batch import BatchBuilder
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .data import DataError, load_dataset
from .encoders import get_encoder
from .evaluate import EvaluationReport
from .model import RewardModel, RewardModelConfig
from .pseudo import make_pseudo_labels
from .score import CMIRewardBenchAdapter, RankedCandidate, Scorer, load_scorer, rank_scores
from .synth import MusicSpec, describe, make_synthetic_dataset, render
from .train import TrainConfig, TrainingCancelled, TrainProgress, TrainResult

__all__ = [
    "AudioError",
    "BatchBuilder",
    "CMIRewardBenchAdapter",
    "Checkpoint",
    "CheckpointError",
    "DataError",
    "EvaluationReport",
    "MusicSpec",
    "RankedCandidate",
    "RewardModel",
    "RewardModelConfig",
    "Scorer",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainingCancelled",
    "describe",
    "evaluate",
    "get_encoder",
    "layout",
    "load_checkpoint",
    "load_dataset",
    "load_scorer",
    "make_pseudo_labels",
    "make_synthetic_dataset",
    "rank_scores",
    "render",
    "train",
]
