"""Writes of the reward-model service, one module per role:

- ``runs``: training runs (create, cancel, resume; the worker's claim and execute)
- ``registry``: model versions (register, activate, deactivate)
- ``jobs``: scoring, ranking and prediction jobs (create, fail, the worker's execute)
- ``predictions``: model-vs-human predictions for a campaign
- ``serving``: small waited-on score/rank requests through the batching scoring server (web side)
- ``uploads``: audio for scoring requests (clip ids, platform URLs, uploads)
- ``reaping``: failing the work of dead rm workers

The names callers use are importable from ``rm_service.services`` itself.
"""

from rm_service.services.common import RmServiceError, RmUnavailable
from rm_service.services.jobs import predictions_request, scoring_job_create, scoring_job_execute, scoring_job_fail
from rm_service.services.predictions import predictions_compute
from rm_service.services.reaping import stale_work_reap
from rm_service.services.registry import (
    model_version_activate,
    model_version_deactivate,
    model_version_register,
    model_version_register_checkpoint,
)
from rm_service.services.runs import (
    training_run_cancel,
    training_run_claim,
    training_run_create,
    training_run_create_pretrain,
    training_run_execute,
    training_run_resume,
)
from rm_service.services.serving import ScoringTimeout, scoring_serve
from rm_service.services.uploads import ItemSpec, clip_path, scoring_audio_resolve

__all__ = [
    "ItemSpec",
    "RmServiceError",
    "RmUnavailable",
    "clip_path",
    "model_version_activate",
    "model_version_deactivate",
    "model_version_register",
    "model_version_register_checkpoint",
    "predictions_compute",
    "predictions_request",
    "scoring_audio_resolve",
    "scoring_serve",
    "ScoringTimeout",
    "scoring_job_create",
    "scoring_job_execute",
    "scoring_job_fail",
    "stale_work_reap",
    "training_run_cancel",
    "training_run_claim",
    "training_run_create",
    "training_run_create_pretrain",
    "training_run_execute",
    "training_run_resume",
]
