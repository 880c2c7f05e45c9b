"""Reads of the reward-model service: permission-checked fetches, availability, model-vs-human agreement."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from typing import Any, cast

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.core.cache import cache
from django.db.models import QuerySet
from django.urls import reverse

from annotate.catalog.models import Campaign
from annotate.errors import NotFoundError, PermissionDeniedError
from annotate.labeling.models import Vote
from annotate.onboarding.selectors import counted_votes
from annotate.permissions import user_is_staff
from rm_service.models import ModelVersion, Prediction, ScoringJob, TrainingRun

QUESTIONS = ("alignment", "musicality")
User = AuthUser | AnonymousUser


def can_use_reward_model(user: User) -> bool:
    """Staff, or accounts given the ``rm_service.add_scoringjob`` permission (pipelines); never annotators."""
    return bool(user_is_staff(user) or (user.is_authenticated and user.has_perm("rm_service.add_scoringjob")))


def rm_unavailable_reason() -> str | None:
    """Why reward-model work can't be queued right now (broker or rm workers down), or None when it can."""
    from rm_service.tasks import rm_worker_heartbeat_key

    try:
        alive = cache.get(rm_worker_heartbeat_key())
    except Exception as exc:  # the cache and the broker are the same Redis
        return f"The reward-model service is unavailable: the task broker cannot be reached ({type(exc).__name__})."
    if not alive:
        return "The reward-model service is unavailable: no reward-model worker is running. Try again later."
    return None


def model_version_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(is_active=True).first()


def model_version_get(*, user: User, version_id: int) -> ModelVersion:
    if not user_is_staff(user):
        raise PermissionDeniedError("Model versions are for staff only.")
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        raise NotFoundError(f"model version {version_id} does not exist")
    return version


def training_run_get(*, user: User, run_id: int) -> TrainingRun:
    if not user_is_staff(user):
        raise PermissionDeniedError("Training runs are for staff only.")
    run = TrainingRun.objects.select_related("model_version", "campaign").filter(pk=run_id).first()
    if run is None:
        raise NotFoundError(f"training run {run_id} does not exist")
    return run


def training_run_list(*, campaign: Campaign | None = None) -> QuerySet[TrainingRun]:
    runs = TrainingRun.objects.select_related("model_version", "campaign")
    return runs.filter(campaign=campaign) if campaign is not None else runs


def scoring_job_get(*, user: User, public_id: uuid.UUID | str) -> ScoringJob:
    """A job is visible to its creator and to staff."""
    if not can_use_reward_model(user):
        raise PermissionDeniedError("The scoring API is not available to this account.")
    job = ScoringJob.objects.filter(public_id=public_id).first()
    if job is None or not (user_is_staff(user) or job.created_by_id == user.pk):
        raise NotFoundError(f"job {public_id} does not exist")
    return job


def model_versions_with_predictions(*, campaign: Campaign) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(predictions__comparison__campaign=campaign).distinct()


# --- Model vs human ------------------------------------------------------------------------------------


def _acc(hits: list[float]) -> dict[str, Any]:
    return {"accuracy": (sum(hits) / len(hits)) if hits else None, "n": len(hits)}


def _vocal_group(a: bool | None, b: bool | None) -> str:
    if a or b:
        return "vocal"
    return "instrumental" if (a is False and b is False) else "unknown"


def _calibration(points: list[tuple[float, int, int]], bins: int = 10) -> dict[str, Any]:
    """Reliability of P(A preferred): per bin of the model's probability, the observed fraction of votes for A.

    ``points`` are (model prob_a, votes for A, votes) per comparison; bins and ECE are weighted by votes.
    """
    sums = [[0.0, 0.0, 0.0] for _ in range(bins)]  # sum(prob * votes), votes for A, votes
    for prob, for_a, votes in points:
        b = min(int(prob * bins), bins - 1)
        sums[b][0] += prob * votes
        sums[b][1] += for_a
        sums[b][2] += votes
    total = sum(s[2] for s in sums)
    rows, ece = [], 0.0
    for b, (prob_sum, bin_for_a, bin_votes) in enumerate(sums):
        if not bin_votes:
            continue
        mean_prob, observed = prob_sum / bin_votes, bin_for_a / bin_votes
        ece += bin_votes / total * abs(mean_prob - observed)
        rows.append(
            {"lo": b / bins, "hi": (b + 1) / bins, "n": int(bin_votes), "mean_prob": mean_prob, "observed": observed}
        )
    return {"bins": rows, "ece": ece if total else None, "n": int(total)}


def _over_time(votes: list[tuple[Any, float]], max_points: int = 60) -> list[dict[str, Any]]:
    """Cumulative accuracy as votes arrived (down-sampled to at most ``max_points`` points)."""
    votes = sorted(votes, key=lambda v: v[0])
    stride = max(1, len(votes) // max_points)
    out, correct = [], 0.0
    for i, (at, hit) in enumerate(votes, start=1):
        correct += hit
        if i % stride == 0 or i == len(votes):
            out.append({"at": at.isoformat(), "n": i, "accuracy": correct / i})
    return out


def model_agreement(*, campaign: Campaign, version: ModelVersion, confident: float = 0.7) -> dict[str, Any]:
    """How the model's predictions agree with the human votes of a campaign, per question.

    Every vote in the database counts, so a new vote shows up at the next read ("live"). Attention checks
    are left out. ``confident`` is the model probability from which a disagreement enters the queue.
    """
    predictions = {
        p.comparison_id: p
        for p in Prediction.objects.filter(
            model_version=version, comparison__campaign=campaign, comparison__is_attention_check=False
        )
    }
    rows = counted_votes(Vote.objects.filter(comparison_id__in=predictions)).values(
        "comparison_id",
        "alignment_choice",
        "musicality_choice",
        "alignment_confidence",
        "musicality_confidence",
        "created_at",
        "comparison__instruction__modality",
        "comparison__clip_a__is_vocal",
        "comparison__clip_b__is_vocal",
    )
    votes = cast(list[dict[str, Any]], list(rows))
    result: dict[str, Any] = {
        "campaign": campaign.pk,
        "model_version": version.pk,
        "model_name": version.name,
        "predictions": len(predictions),
        "votes": len(votes),
        "questions": {},
    }
    disagreements: list[dict[str, Any]] = []
    for question in QUESTIONS:
        result["questions"][question] = _question_agreement(question, predictions, votes, confident, disagreements)
    disagreements.sort(key=lambda d: -d["probability"])
    result["disagreements"] = disagreements
    return result


def _question_agreement(
    question: str,
    predictions: dict[int, Prediction],
    votes: list[dict[str, Any]],
    confident: float,
    disagreements: list[dict[str, Any]],
) -> dict[str, Any]:
    by_conf: dict[str, list[float]] = defaultdict(list)
    by_modality: dict[str, list[float]] = defaultdict(list)
    by_vocal: dict[str, list[float]] = defaultdict(list)
    per_comparison: dict[int, Counter[str]] = defaultdict(Counter)
    hits: list[float] = []
    timeline: list[tuple[Any, float]] = []
    for vote in votes:
        prediction = predictions[vote["comparison_id"]]
        choice = vote[f"{question}_choice"]
        # As CMI-RewardBench scores it: a tie ("no preference") is half right whatever the model says.
        hit = 0.5 if choice == "t" else float(choice == getattr(prediction, f"{question}_choice"))
        hits.append(hit)
        timeline.append((vote["created_at"], hit))
        by_conf[str(vote[f"{question}_confidence"])].append(hit)
        by_modality[vote["comparison__instruction__modality"]].append(hit)
        by_vocal[_vocal_group(vote["comparison__clip_a__is_vocal"], vote["comparison__clip_b__is_vocal"])].append(hit)
        per_comparison[vote["comparison_id"]][choice] += 1
    majority_hits: list[float] = []
    points = []
    for comparison_id, counts in per_comparison.items():
        prediction = predictions[comparison_id]
        model_choice = getattr(prediction, f"{question}_choice")
        points.append((getattr(prediction, f"{question}_prob_a"), counts["a"], counts["a"] + counts["b"]))
        if counts["a"] == counts["b"]:
            continue  # no majority: the comparison is left out of majority accuracy
        majority = "a" if counts["a"] > counts["b"] else "b"
        majority_hits.append(float(majority == model_choice))
        probability = prediction.probability(question)
        if majority != model_choice and probability >= confident:
            disagreements.append(
                {
                    "comparison": comparison_id,
                    "question": question,
                    "model_choice": model_choice,
                    "probability": probability,
                    "human_majority": majority,
                    "votes_a": counts["a"],
                    "votes_b": counts["b"],
                    "admin_url": reverse("admin:catalog_comparison_change", args=[comparison_id]),
                }
            )
    return {
        "single_votes": _acc(hits),
        "majority": _acc(majority_hits),
        "by_confidence": {k: _acc(v) for k, v in sorted(by_conf.items())},
        "by_modality": {k: _acc(v) for k, v in sorted(by_modality.items())},
        "by_vocal": {k: _acc(v) for k, v in sorted(by_vocal.items())},
        "calibration": _calibration(points),
        "over_time": _over_time(timeline),
    }
