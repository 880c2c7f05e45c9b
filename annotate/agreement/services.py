"""Writes of the agreement app: refreshing and scheduling stored snapshots, and synthetic demo votes."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from annotate.agreement.models import AgreementSnapshot
from annotate.agreement.selectors import agreement_report, campaign_patterns, campaign_votes, live_max_votes
from annotate.broker import task_publish, task_publish_on_commit
from annotate.catalog.models import Campaign, Comparison
from annotate.labeling.models import AnnotatorProfile, Vote

logger = logging.getLogger(__name__)


def debounce_seconds() -> int:
    return settings.AGREEMENT_SNAPSHOT_DEBOUNCE_SECONDS


def _debounce_key(campaign_id: int) -> str:
    return f"agreement:snapshot-scheduled:{campaign_id}"


def agreement_snapshot_refresh(*, campaign_id: int) -> AgreementSnapshot | None:
    """Recompute and store the campaign's full report. Returns None if another refresh holds the row.

    The debounce key is cleared *before* computing, so votes that land during the computation
    schedule a follow-up refresh instead of being silently missed.
    """
    cache.delete(_debounce_key(campaign_id))
    AgreementSnapshot.objects.get_or_create(campaign_id=campaign_id)
    with transaction.atomic():
        # Claim the row: a redelivered or concurrent task skips instead of computing twice.
        snapshot = AgreementSnapshot.objects.select_for_update(skip_locked=True).filter(campaign_id=campaign_id).first()
        if snapshot is None:
            return None
        started = time.perf_counter()
        computed_at = timezone.now()
        report = agreement_report(
            votes=campaign_votes(campaign_id=campaign_id),
            patterns=campaign_patterns(campaign_id=campaign_id),
            campaign_id=campaign_id,
        )
        snapshot.report = report
        snapshot.vote_count = report["summary"]["vote_count"]
        snapshot.computed_at = computed_at
        snapshot.compute_seconds = time.perf_counter() - started
        snapshot.refresh_requested_at = None
        snapshot.save()
    return snapshot


def agreement_snapshot_schedule(*, campaign_id: int, vote_count: int | None = None) -> bool:
    """Queue a debounced snapshot refresh after new votes; True when a refresh was queued.

    Meant for ``transaction.on_commit`` in the vote service. At most one refresh per campaign is
    queued per debounce window (a Redis/cache ``add``), and it runs at the end of the window so it
    sees every vote of the burst. Campaigns small enough to compute on request queue nothing.
    """
    from annotate.agreement.tasks import agreement_snapshot_refresh_task

    if not cache.add(_debounce_key(campaign_id), "1", timeout=debounce_seconds() * 4):
        return False
    if vote_count is None:
        vote_count = campaign_votes(campaign_id=campaign_id).count()
    if vote_count <= live_max_votes():
        return False
    AgreementSnapshot.objects.update_or_create(
        campaign_id=campaign_id, defaults={"refresh_requested_at": timezone.now()}
    )
    task_publish(agreement_snapshot_refresh_task, args=[campaign_id], countdown=debounce_seconds(), queue="default")
    return True


def agreement_snapshot_schedule_on_commit(*, campaign_id: int, vote_count: int | None = None) -> None:
    """After the surrounding transaction commits, schedule a debounced snapshot refresh, best effort.

    The write that changed the counted votes (a vote, a withdrawal) is already stored, so a broker or
    cache outage only logs: the change must never fail because of Redis.
    """

    def schedule() -> None:
        try:
            if vote_count is None:
                agreement_snapshot_schedule(campaign_id=campaign_id)
            else:
                agreement_snapshot_schedule(campaign_id=campaign_id, vote_count=vote_count)
        except Exception:  # broker or cache down
            logger.warning("could not schedule an agreement snapshot for campaign %s", campaign_id, exc_info=True)

    transaction.on_commit(schedule)


def agreement_snapshot_request_refresh(*, campaign_id: int) -> AgreementSnapshot:
    """Queue an immediate snapshot refresh (the dashboard's button); bypasses the debounce.

    Raises:
        BrokerUnavailable: the task queue can't be reached; the snapshot is left as it was.
    """
    from annotate.agreement.tasks import agreement_snapshot_refresh_task

    snapshot, _ = AgreementSnapshot.objects.update_or_create(
        campaign_id=campaign_id, defaults={"refresh_requested_at": timezone.now()}
    )

    def forget_request(reason: str) -> None:
        AgreementSnapshot.objects.filter(pk=snapshot.pk).update(refresh_requested_at=None)

    task_publish_on_commit(agreement_snapshot_refresh_task, args=[campaign_id], on_failure=forget_request)
    return snapshot


# --- Synthetic demo votes ---------------------------------------------------------

SYNTHETIC_PREFIX = "synthetic-annotator-"
SYNTHETIC_FEEDBACK = "[synthetic demo vote: generated by manage.py seed_votes, not a human judgement]"


@dataclass(frozen=True)
class _Persona:
    kind: str  # careful | position_biased | straight_liner | rusher
    skill: float  # how strongly perceived clarity turns into the right answer


def _personas(count: int, rng: np.random.Generator) -> list[_Persona]:
    """Mostly careful raters of varying skill, plus one of each problem kind once there are enough raters."""
    kinds = ["careful"] * count
    for index, kind in enumerate(("straight_liner", "position_biased", "rusher")):
        if count >= 4 + 2 * index:
            kinds[-(index + 1)] = kind
    return [_Persona(kind=kind, skill=float(rng.uniform(0.75, 1.0))) for kind in kinds]


def _synthetic_annotators(count: int) -> list[User]:
    users = []
    for index in range(1, count + 1):
        user, created = User.objects.get_or_create(username=f"{SYNTHETIC_PREFIX}{index}")
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        AnnotatorProfile.objects.get_or_create(user=user)
        users.append(user)
    return users


def _choice(truth: str, clarity: float, persona: _Persona, left: str, rng: np.random.Generator) -> str:
    if persona.kind == "straight_liner" or (persona.kind == "position_biased" and rng.random() < 0.45):
        return left
    if persona.kind == "rusher" and rng.random() < 0.5:
        return str(rng.choice(["a", "b"]))
    right = rng.random() < 0.55 + 0.43 * clarity * persona.skill
    return truth if right else ("b" if truth == "a" else "a")


def _confidence(clarity: float, persona: _Persona, rng: np.random.Generator) -> int:
    if persona.kind == "straight_liner":
        return 3
    return int(np.clip(round(1 + 4 * clarity + rng.normal(0, 0.7)), 1, 5))


def _synthetic_vote(
    comparison: Comparison,
    annotator: User,
    persona: _Persona,
    truth: dict[str, str],
    ease: float,
    rng: np.random.Generator,
    created_at: dt.datetime,
) -> Vote:
    swapped = bool(rng.random() < 0.5)
    left = "b" if swapped else "a"
    fields: dict[str, Any] = {}
    for question in ("alignment", "musicality"):
        clarity = float(np.clip(ease + rng.normal(0, 0.15), 0, 1))
        fields[f"{question}_choice"] = _choice(truth[question], clarity, persona, left, rng)
        fields[f"{question}_confidence"] = _confidence(clarity, persona, rng)
    hasty = persona.kind in ("straight_liner", "rusher")
    listened = 0.3 if hasty else float(rng.uniform(0.7, 1.0))
    time_on_task = float(rng.uniform(3, 8)) if hasty else float(rng.lognormal(np.log(70), 0.35))
    return Vote(
        comparison=comparison,
        annotator=annotator,
        presented_swapped=swapped,
        feedback=SYNTHETIC_FEEDBACK,
        listened_a_s=listened * comparison.clip_a.duration_s,
        listened_b_s=listened * comparison.clip_b.duration_s,
        time_on_task_s=time_on_task,
        started_at=created_at - dt.timedelta(seconds=time_on_task),
        created_at=created_at,
        **fields,
    )


def synthetic_votes_seed(*, campaign_id: int, annotators: int, seed: int = 0, overlap: int | None = None) -> int:
    """Write SYNTHETIC votes on a campaign for demos of the agreement dashboard; returns how many were added.

    Each comparison gets a latent answer per question (musicality follows alignment 80% of the
    time, as in the paper) and an ease; votes are right more often, and more confident, when the
    comparison is easy, so agreement rises with confidence. Gold answers, where set, are the truth.
    Problem personas: a straight-liner (always left, always 3, fast), a position-biased rater and a
    rusher. Users are ``synthetic-annotator-N``; every vote's feedback says it is synthetic.
    Never duplicates an (annotator, comparison) vote; re-running with the same seed adds nothing.
    """
    rng = np.random.default_rng(seed)
    users = _synthetic_annotators(annotators)
    personas = dict(zip((u.pk for u in users), _personas(annotators, rng), strict=True))
    per_comparison = min(annotators, overlap or max(3, Campaign.objects.get(pk=campaign_id).overlap_target))
    existing = set(
        Vote.objects.filter(comparison__campaign_id=campaign_id).values_list("annotator_id", "comparison_id")
    )
    now = timezone.now()
    votes = []
    comparisons = Comparison.objects.filter(campaign_id=campaign_id).select_related("clip_a", "clip_b").order_by("pk")
    for comparison in comparisons:
        for vote in _synthetic_comparison_votes(comparison, users, personas, per_comparison, rng, now):
            if (vote.annotator_id, comparison.pk) not in existing:
                votes.append(vote)
    # auto_now_add stamps "now" on insert (on these very objects); restore the spread over two weeks
    # afterwards so the date filters have something to do.
    wanted = [vote.created_at for vote in votes]
    with transaction.atomic():
        created = Vote.objects.bulk_create(votes, batch_size=2000)
        for vote, created_at in zip(created, wanted, strict=True):
            vote.created_at = created_at
        Vote.objects.bulk_update(created, ["created_at"], batch_size=2000)
    return len(created)


def _synthetic_comparison_votes(
    comparison: Comparison,
    users: list[User],
    personas: dict[int, _Persona],
    per_comparison: int,
    rng: np.random.Generator,
    now: dt.datetime,
) -> list[Vote]:
    """One comparison's synthetic votes: its latent answers and ease, then one vote per drawn rater.

    Every vote is drawn, even one that already exists, so the random stream (and a re-run) is reproducible.
    """
    alignment = comparison.gold_alignment or str(rng.choice(["a", "b"]))
    musicality = comparison.gold_musicality or (alignment if rng.random() < 0.8 else "ab".replace(alignment, ""))
    ease = float(rng.beta(2.5, 1.5))
    votes = []
    for index in rng.choice(len(users), size=per_comparison, replace=False):
        user = users[int(index)]
        created_at = now - dt.timedelta(days=float(rng.uniform(0, 14)))
        answers = {"alignment": alignment, "musicality": musicality}
        votes.append(_synthetic_vote(comparison, user, personas[user.pk], answers, ease, rng, created_at))
    return votes
