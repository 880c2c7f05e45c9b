"""Reads of the reward-model service: permission-checked fetches, availability, model-vs-human agreement."""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, cast

from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.core.cache import cache
from django.db.models import QuerySet
from django.urls import reverse

from annotate.agreement.selectors import flagged_annotator_ids
from annotate.catalog.models import Campaign
from annotate.errors import NotFoundError, PermissionDeniedError
from annotate.exports.rows import content_key
from annotate.labeling.models import Vote
from annotate.labeling.selectors import adjudicated_labels
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


def model_training_pairs(*, version: ModelVersion) -> tuple[set[tuple[str, str]] | None, str]:
    """The (``comparison id``, ``user id``) pairs of the rows ``version`` was trained or validated on.

    Returns ``(pairs, how)``: an empty set for a model trained on no human votes (the starter, stage 1); None
    when its train/validation files can't be read any more (``how`` says why), so callers fall back to dates.
    """
    run = TrainingRun.objects.filter(model_version=version).first()
    data = version.training_data or {}
    if (run is not None and run.source == TrainingRun.Source.PRETRAIN) or "starter" in data or "pretrain" in data:
        return set(), "trained on no human votes (stage 1 / starter)"
    files: list[Any] = (
        [run.train_jsonl, run.validation_jsonl] if run is not None else [data.get("jsonl"), data.get("validation")]
    )
    files = [str(f) for f in files if f]
    if not files:
        # A checkpoint registered from outside with no record of its data: nothing to match, and the page says so.
        return set(), "its training data is not recorded, so no vote could be identified as training data"
    pairs: set[tuple[str, str]] = set()
    for name in files:
        try:
            with open(name, encoding="utf-8") as handle:
                for line in handle:
                    row = json.loads(line) if line.strip() else {}
                    pairs.add((str(row.get("comparison id", "")), str(row.get("user id", ""))))
        except (OSError, ValueError) as exc:
            return None, f"its training file {Path(name).name} can't be read ({type(exc).__name__})"
    return pairs, "votes in its train and validation files"


_VOTE_FIELDS = (
    "comparison_id",
    "annotator_id",
    "alignment_choice",
    "musicality_choice",
    "alignment_confidence",
    "musicality_confidence",
    "created_at",
    "comparison__instruction__modality",
    "comparison__clip_a__is_vocal",
    "comparison__clip_b__is_vocal",
    "comparison__instruction__content_hash",
    "comparison__clip_a__sha256",
    "comparison__clip_b__sha256",
    "annotator__annotator__pseudonym",
)


def _in_training(version: ModelVersion, votes: list[dict[str, Any]]) -> tuple[list[bool], str]:
    """Per vote: was it (possibly) in the model's training or validation data? And how that was decided."""
    pairs, how = model_training_pairs(version=version)
    if pairs is None:
        # Without the files, every vote cast before training started may have been used: leave them all out.
        run = TrainingRun.objects.filter(model_version=version).first()
        cutoff = run.created_at if run is not None else version.created_at
        return [v["created_at"] <= cutoff for v in votes], f"votes cast before training started ({how})"
    keys = [
        (
            content_key(
                v["comparison__instruction__content_hash"],
                v["comparison__clip_a__sha256"],
                v["comparison__clip_b__sha256"],
            ),
            v["annotator__annotator__pseudonym"] or "",
        )
        for v in votes
    ]
    return [key in pairs for key in keys], how


def model_agreement(
    *,
    campaign: Campaign,
    version: ModelVersion,
    confident: float = 0.7,
    held_out_only: bool = True,
    exclude_flagged: bool = True,
) -> dict[str, Any]:
    """How the model's predictions agree with the human votes of a campaign, per question.

    By default only honest evidence counts: votes that were not in the model's training or validation data
    (``held_out_only``) and not by annotators quality control flags (``exclude_flagged``). Votes of withdrawn
    annotators and attention checks never count. ``excluded`` says how many votes each rule left out. A
    comparison staff adjudicated is judged against the adjudicated label instead of the votes' majority.
    ``confident`` is the model probability from which a disagreement enters the queue.
    """
    predictions = {
        p.comparison_id: p
        for p in Prediction.objects.filter(
            model_version=version, comparison__campaign=campaign, comparison__is_attention_check=False
        )
    }
    all_votes = Vote.objects.filter(comparison_id__in=predictions)
    counted = counted_votes(all_votes)
    excluded: dict[str, Any] = {"withdrawn": all_votes.count() - counted.count(), "flagged": 0, "training": 0}
    flagged = flagged_annotator_ids(campaign_id=campaign.pk) if exclude_flagged else set()
    votes = cast(list[dict[str, Any]], list(counted.values(*_VOTE_FIELDS)))
    kept = [v for v in votes if v["annotator_id"] not in flagged]
    excluded["flagged"], excluded["flagged_annotators"] = len(votes) - len(kept), len(flagged)
    in_training, how = _in_training(version, kept)
    excluded["training_rule"] = how
    if held_out_only:
        excluded["training"] = sum(in_training)
        kept = [v for v, used in zip(kept, in_training, strict=True) if not used]
    excluded["attention_checks"] = Vote.objects.filter(
        comparison__campaign=campaign, comparison__is_attention_check=True
    ).count()
    adjudicated = adjudicated_labels(comparison_ids=predictions)
    result: dict[str, Any] = {
        "campaign": campaign.pk,
        "model_version": version.pk,
        "model_name": version.name,
        "predictions": len(predictions),
        "votes": len(kept),
        "filters": {"held_out_only": held_out_only, "exclude_flagged": exclude_flagged},
        "excluded": excluded,
        "adjudicated": len(adjudicated),
        "questions": {},
    }
    disagreements: list[dict[str, Any]] = []
    for question in QUESTIONS:
        result["questions"][question] = _question_agreement(
            question, predictions, kept, confident, disagreements, adjudicated
        )
    disagreements.sort(key=lambda d: -d["probability"])
    result["disagreements"] = disagreements
    return result


def _question_agreement(
    question: str,
    predictions: dict[int, Prediction],
    votes: list[dict[str, Any]],
    confident: float,
    disagreements: list[dict[str, Any]],
    adjudicated: dict[int, dict[str, str]],
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
        # Staff's adjudication, where there is one, is the label; otherwise the votes' majority.
        majority = adjudicated.get(comparison_id, {}).get(question) or (
            "a" if counts["a"] > counts["b"] else "b" if counts["b"] > counts["a"] else "t"
        )
        if majority == "t":
            continue  # no majority (or adjudicated "no preference"): left out of majority accuracy
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
                    "url": reverse("labeling:adjudicate", args=[comparison_id]),
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
