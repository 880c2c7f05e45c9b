"""CMI reward model: pure-torch core (no Django) plus, in sibling modules, the platform's Django edge.

The public API is loaded lazily (module ``__getattr__``) so that ``import rm_service`` — which Django does
when it loads the app — imports neither torch nor numpy.

Entry points (all keyword-only, ``device=`` explicit):

- ``train.train(train_jsonl=..., dataset_root=..., out_dir=..., config=TrainConfig(...), device=...)`` and
  ``train_from_export(export_dir, out_dir=..., device=...)`` -> ``TrainResult``
- ``load_checkpoint(path, device=...)`` -> ``Checkpoint``; ``load_scorer(path, device=...)`` -> ``Scorer``
- ``Scorer.score_batch(items, batch_size=..., max_dur=...)`` -> ``np.ndarray[N, 2]`` (alignment, musicality)
- ``Scorer.rank(instruction, candidates, top_k=..., weights=(0.5, 0.5))`` -> ``list[RankedCandidate]``
- ``evaluate.evaluate(jsonl=..., dataset_root=..., scorer=..., out_dir=...)`` -> ``EvaluationReport``
- ``CMIRewardBenchAdapter(checkpoint, device)`` for the benchmark harness
- ``make_pseudo_labels(rows)``, ``make_synthetic_dataset(out_dir)``, ``synth.render(spec, duration_s=...)``
"""

# ``train`` and ``evaluate`` are submodules (rm_service.train.train, rm_service.evaluate.evaluate), never
# same-named functions: importing a submodule sets it as a package attribute, so a function of that name
# would be shadowed or not depending on import order.

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LOCATIONS = {
    "RewardModel": "model",
    "RewardModelConfig": "model",
    "RewardInputs": "model",
    "count_parameters": "model",
    "TrainConfig": "train",
    "TrainProgress": "train",
    "TrainResult": "train",
    "TrainingCancelled": "train",
    "train": "",  # the submodule: rm_service.train.train(...)
    "train_from_export": "train",
    "Checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "Scorer": "score",
    "RankedCandidate": "score",
    "CMIRewardBenchAdapter": "score",
    "load_scorer": "score",
    "EvaluationReport": "evaluate",
    "evaluate": "",  # the submodule: rm_service.evaluate.evaluate(...)
    "PseudoLabelReport": "pseudo",
    "make_pseudo_labels": "pseudo",
    "Encoder": "encoders",
    "EmbeddingCache": "encoders",
    "get_encoder": "encoders",
    "DataError": "data",
    "load_dataset": "data",
    "AudioError": "audio",
    "MusicSpec": "synth",
    "render": "synth",
    "describe": "synth",
    "make_synthetic_dataset": "synthetic",
}

__all__ = [
    "AudioError",
    "CMIRewardBenchAdapter",
    "Checkpoint",
    "CheckpointError",
    "DataError",
    "EmbeddingCache",
    "Encoder",
    "EvaluationReport",
    "MusicSpec",
    "PseudoLabelReport",
    "RankedCandidate",
    "RewardInputs",
    "RewardModel",
    "RewardModelConfig",
    "Scorer",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainingCancelled",
    "count_parameters",
    "describe",
    "evaluate",
    "get_encoder",
    "load_checkpoint",
    "load_dataset",
    "load_scorer",
    "make_pseudo_labels",
    "make_synthetic_dataset",
    "render",
    "save_checkpoint",
    "train",
    "train_from_export",
]  # keep in step with _LOCATIONS (a test checks)

if TYPE_CHECKING:
    from . import evaluate, train
    from .audio import AudioError
    from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
    from .data import DataError, load_dataset
    from .encoders import EmbeddingCache, Encoder, get_encoder
    from .evaluate import EvaluationReport
    from .model import RewardInputs, RewardModel, RewardModelConfig, count_parameters
    from .pseudo import PseudoLabelReport, make_pseudo_labels
    from .score import CMIRewardBenchAdapter, RankedCandidate, Scorer, load_scorer
    from .synth import MusicSpec, describe, render
    from .synthetic import make_synthetic_dataset
    from .train import TrainConfig, TrainingCancelled, TrainProgress, TrainResult, train_from_export


def __getattr__(name: str) -> Any:
    module_name = _LOCATIONS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'rm_service' has no attribute {name!r}")
    if module_name == "":
        return importlib.import_module(f".{name}", __name__)  # the import system also sets the attribute
    value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
