"""Writes for labeling: hand out assignments, record votes and skips.

Public contract (the listening page, the REST API, the benchmark and other apps call these):

``assignment_next(*, annotator, campaign, now=None, rng_seed=None) -> Assignment | None``
    Resume the annotator's live reservation in the campaign, or reserve the comparison with the fewest
    votes that still has room (votes + live reservations < overlap target) and that the annotator has not
    voted on or skipped. Ties are broken by a seeded hash, so ``rng_seed`` makes the order deterministic.
    Expired reservations are reclaimed first. Safe under concurrency: the chosen comparison row is locked
    (``SELECT ... FOR UPDATE SKIP LOCKED``) and its slots are recounted under the lock. Nothing is handed out
    until the campaign's required onboarding steps are done (``OnboardingIncomplete``, 403, naming the step) or
    after the annotator withdrew from the campaign (``AnnotatorWithdrawn``, 403).

``vote_submit(*, annotator, assignment_id, alignment, alignment_confidence, musicality, musicality_confidence,
feedback, listened, time_on_task_s, now=None) -> Vote``
    ``alignment``/``musicality`` are the sides as DISPLAYED ("A" left, "B" right); the vote stores them in
    canonical orientation ("a" = comparison.clip_a) using ``assignment.swapped``. ``listened`` maps the
    displayed side to the play intervals ``[(start_s, end_s), ...]`` the page reported; they are merged
    into covered seconds (a seek is a gap, so it never counts) and must be (1) covered by audio the server
    delivered for that side of this assignment (``AudioDelivery``), (2) together, A plus B, no longer than the
    time since the reservation (one clip plays at a time) and (3) at least
    ``campaign.required_listen_seconds(clip.duration_s)`` per clip. Time on task is the server's
    (reservation to vote); ``time_on_task_s`` from the client is kept as ``client_time_on_task_s`` only.

``audio_delivery_record(*, assignment, side, rendition, first_byte, length, via_accel_redirect) -> AudioDelivery``
``audio_delivery_extend(*, delivery, bytes_delivered) -> None``
    The audio view records what it delivers, and how far a stream got.

``skip_submit(*, annotator, assignment_id, reason, note="", now=None) -> Skip``

Errors are ``LabelingError`` subclasses carrying an HTTP status and a stable ``code``; nothing is
written when one is raised.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from annotate import joins
from annotate.agreement.services import agreement_snapshot_schedule_on_commit
from annotate.catalog.models import Campaign, Clip, ClipRendition, Comparison
from annotate.errors import ApplicationError, PermissionDeniedError
from annotate.labeling import queue
from annotate.labeling.models import (
    Adjudication,
    AnnotatorProfile,
    Assignment,
    AudioDelivery,
    CampaignCounter,
    Choice,
    ComparisonSlot,
    Skip,
    Vote,
)
from annotate.labeling.selectors import (
    AssignmentNotFound,
    assignment_lapsed_without_room,
    assignment_public_id,
    assignment_with_related,
)
from annotate.labeling.strategies import candidate_pool_size
from annotate.onboarding.models import Withdrawal
from annotate.onboarding.selectors import onboarding_status

logger = logging.getLogger(__name__)

SIDES = ("A", "B")
NO_PREFERENCE = "tie"  # the answer "no preference", where the campaign offers it
FEEDBACK_MAX_CHARS = 5000
# Timer granularity (the page samples currentTime every ~250 ms) must never fail an honest listener.
LISTEN_TOLERANCE_S = 0.25
# One clip plays at a time: A plus B can't exceed the time since the hand-out (plus request latency).
LISTEN_WALL_CLOCK_SLACK_S = 1.0
# Claimed seconds per clip that may fall outside the delivered audio: MP3 frame and decoder-delay
# granularity (~26 ms per frame) at each seek or range boundary. Bounded per clip, so it can't be multiplied.
EVIDENCE_TOLERANCE_S = 0.5
# The client's own time on task is kept only when it is a plausible number of seconds.
CLIENT_TIME_MAX_S = 1_000_000.0
COMPARISON_FULL_MESSAGE = (
    "Your reservation for this comparison expired and it has since received all the votes it "
    "needs. Your answer was not recorded; please continue with the next one."
)
WITHDRAWN_MESSAGE = (
    "You withdrew from this campaign, so it hands out no more comparisons to you. "
    "Contact the campaign staff if you want to take part again."
)


class LabelingError(ApplicationError):
    """A vote, skip or hand-out the service refuses (400 unless a subclass says otherwise)."""


class VoteInvalid(LabelingError):
    """Malformed input; ``field`` names the offending field."""


class ListeningRequirementNotMet(LabelingError):
    code = "listening_requirement_not_met"

    def __init__(self, message: str, *, side: str, listened_s: float, required_s: float) -> None:
        details = {"clip": side, "listened_s": round(listened_s, 2), "required_s": round(required_s, 2)}
        super().__init__(message, field="listened", details=details)
        self.side = side
        self.listened_s = listened_s
        self.required_s = required_s


class ListeningNotDelivered(LabelingError):
    code = "listening_not_delivered"

    def __init__(self, message: str, *, side: str, missing: list[tuple[float, float]]) -> None:
        details = {"clip": side, "missing": [[round(start, 2), round(end, 2)] for start, end in missing]}
        super().__init__(message, field="listened", details=details)
        self.side = side
        self.missing = missing


class ListeningExceedsElapsedTime(LabelingError):
    code = "listening_exceeds_elapsed_time"

    def __init__(self, message: str, *, claimed_s: float, elapsed_s: float) -> None:
        details = {"claimed_s": round(claimed_s, 2), "elapsed_s": round(elapsed_s, 2)}
        super().__init__(message, field="listened", details=details)
        self.claimed_s = claimed_s
        self.elapsed_s = elapsed_s


class DuplicateVote(LabelingError):
    status = 409
    code = "duplicate_vote"


class ComparisonFull(LabelingError):
    status = 409
    code = "comparison_full"


class AssignmentClosed(LabelingError):
    status = 409
    code = "assignment_closed"


class CampaignNotActive(LabelingError):
    status = 409
    code = "campaign_not_active"


class OnboardingIncomplete(LabelingError):
    """A required onboarding step (consent, instructions, headphone check, practice) is not done yet."""

    status = 403
    code = "onboarding_required"

    def __init__(self, message: str, *, step: str, url: str) -> None:
        super().__init__(message, field="onboarding", details={"step": step, "url": url})
        self.step = step
        self.url = url


class AnnotatorWithdrawn(LabelingError):
    status = 403
    code = "withdrawn"


def annotator_profile_ensure(*, user: User) -> AnnotatorProfile:
    profile, _ = AnnotatorProfile.objects.get_or_create(user=user)
    return profile


# --- assignment ----------------------------------------------------------------------------------


def assignment_reclaim_expired(*, now: datetime | None = None, campaign: Campaign | None = None) -> int:
    """Mark lapsed live reservations expired so their slots count as free again; returns how many."""
    now = now or timezone.now()
    lapsed = Assignment.objects.filter(status=Assignment.Status.LIVE, expires_at__lte=now)
    if campaign is not None:
        lapsed = lapsed.filter(comparison__campaign=campaign)
    return lapsed.update(status=Assignment.Status.EXPIRED, closed_at=now)


# Raw SQL (portable: PostgreSQL and SQLite): this runs with every hand-out, and compiling the equivalent ORM
# query cost several times its execution.
_GATE_SQL = """
SELECT
    EXISTS (SELECT 1 FROM labeling_externalannotator WHERE user_id = %s),
    EXISTS (SELECT 1 FROM people_serviceaccount WHERE user_id = %s),
    EXISTS (SELECT 1 FROM people_campaignmembership WHERE campaign_id = %s)
        AND NOT EXISTS (SELECT 1 FROM people_campaignmembership WHERE campaign_id = %s AND user_id = %s),
    EXISTS (SELECT 1 FROM labeling_annotatorprofile WHERE user_id = %s),
    EXISTS (SELECT 1 FROM onboarding_withdrawal WHERE annotator_id = %s AND campaign_id = %s AND restored_at IS NULL),
    EXISTS (SELECT 1 FROM onboarding_campaignonboarding WHERE campaign_id = %s),
    (SELECT a.id FROM labeling_assignment a JOIN catalog_comparison c ON c.id = a.comparison_id
     WHERE a.annotator_id = %s AND c.campaign_id = %s AND a.status = %s AND a.expires_at > %s
       AND NOT EXISTS (SELECT 1 FROM labeling_vote v WHERE v.annotator_id = a.annotator_id
                       AND v.comparison_id = a.comparison_id)
       AND NOT EXISTS (SELECT 1 FROM labeling_skip k WHERE k.annotator_id = a.annotator_id
                       AND k.comparison_id = a.comparison_id)
     ORDER BY a.created_at LIMIT 1)
"""


def _gate(*, annotator: User, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """Everything ``assignment_next`` must know before reserving, in one query.

    Imported account? Service account? Kept out by the campaign's membership? Profile made? Withdrawn?
    Onboarding configured? The live reservation to resume, if any.
    """
    me, here = annotator.pk, campaign.pk
    moment = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            _GATE_SQL, [me, me, here, here, me, me, me, here, here, me, here, Assignment.Status.LIVE, moment]
        )
        external, service, not_member, has_profile, withdrawn, onboarding, current = cursor.fetchone()
    return {
        "external": bool(external),
        "service": bool(service),
        "not_member": bool(not_member),
        "has_profile": bool(has_profile),
        "withdrawn": bool(withdrawn),
        "onboarding": bool(onboarding),
        "current": current,
    }


def assignment_next(
    *, annotator: User, campaign: Campaign, now: datetime | None = None, rng_seed: int | str | None = None
) -> Assignment | None:
    """Resume the annotator's live reservation or reserve the next comparison (see ``annotate.labeling.queue``).

    At most 5 queries whatever the campaign's size: the gate, then either the resumed reservation, or the
    candidates, the skip-locked reservation and its insert. A campaign with onboarding adds its steps'
    checks; an annotator's very first hand-out adds the profile.
    """
    if campaign.status != Campaign.Status.ACTIVE:
        raise CampaignNotActive(f"Campaign '{campaign.name}' is not open for listening.")
    now = now or timezone.now()
    gate = _gate(annotator=annotator, campaign=campaign, now=now)
    if gate["external"]:
        raise PermissionDeniedError("Imported annotators are never offered work.")
    if gate["service"]:
        raise PermissionDeniedError("Service accounts are never offered work.")
    if gate["not_member"]:
        raise PermissionDeniedError("This campaign is open to its members only.")
    if gate["onboarding"]:
        _check_onboarded(annotator=annotator, campaign=campaign)
    elif gate["withdrawn"]:
        raise AnnotatorWithdrawn(WITHDRAWN_MESSAGE)
    if not gate["has_profile"]:
        annotator_profile_ensure(user=annotator)
    if gate["current"] is not None:
        return assignment_with_related(gate["current"])
    seed = str(rng_seed) if rng_seed is not None else secrets.token_hex(8)
    # A few rounds, because every candidate of one round may be locked or filled by concurrent callers.
    for _ in range(3):
        pool = candidate_pool_size(campaign, queue.CANDIDATES)  # a strategy reorders a larger pool
        found = queue.candidates(campaign=campaign, annotator=annotator, now=now, limit=pool)
        if not found:
            return None
        ordered = queue.order_candidates(campaign=campaign, annotator=annotator, found=found, seed=seed)
        lapsed = [c.comparison_id for c in found if c.votes + c.live >= campaign.overlap_target]
        assignment = queue.reserve(
            annotator=annotator, campaign=campaign, comparison_ids=ordered, now=now, seed=seed, lapsed=lapsed
        )
        if assignment is not None:
            return assignment
    return None


def _check_onboarded(*, annotator: User, campaign: Campaign) -> None:
    """Real work only after the campaign's required onboarding steps, and never after a withdrawal."""
    status = onboarding_status(annotator=annotator, campaign=campaign)
    if status.withdrawn:
        raise AnnotatorWithdrawn(WITHDRAWN_MESSAGE)
    step = status.missing
    if step is not None:
        raise OnboardingIncomplete(
            f"Before real comparisons, complete the onboarding step '{step.title}'.", step=step.name, url=step.url
        )


# --- vote ----------------------------------------------------------------------------------------


def union_intervals(intervals: Iterable[tuple[float, float]], *, duration_s: float) -> list[tuple[float, float]]:
    """The union of ``intervals`` clipped to ``[0, duration_s]``, as sorted disjoint intervals."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted((max(0.0, start), min(duration_s, end)) for start, end in intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def merge_intervals(intervals: Iterable[tuple[float, float]], *, duration_s: float) -> float:
    """Seconds of the clip covered by the union of ``intervals``, clipped to ``[0, duration_s]``."""
    return sum(end - start for start, end in union_intervals(intervals, duration_s=duration_s))


def subtract_intervals(
    claimed: Sequence[tuple[float, float]], covered: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The parts of ``claimed`` outside ``covered``; both sorted and disjoint."""
    missing: list[tuple[float, float]] = []
    for start, end in claimed:
        cursor = start
        for c_start, c_end in covered:
            if c_end <= cursor or c_start >= end:
                continue
            if c_start > cursor:
                missing.append((cursor, c_start))
            cursor = max(cursor, c_end)
        if cursor < end:
            missing.append((cursor, end))
    return missing


def _parse_side(value: object, *, field: str) -> str:
    if value not in (*SIDES, NO_PREFERENCE):
        raise VoteInvalid(
            f"{field} must be 'A' or 'B' (the side shown on the page) or '{NO_PREFERENCE}', got {value!r}.", field=field
        )
    return str(value)


def _check_no_preference_allowed(campaign: Campaign, **answers: str) -> None:
    for field, side in answers.items():
        if side == NO_PREFERENCE and not campaign.allow_no_preference:
            raise VoteInvalid(f"{field}: this campaign asks you to choose A or B.", field=field)


def _parse_confidence(value: object, *, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise VoteInvalid(f"{field} must be a whole number from 1 to 5, got {value!r}.", field=field)
    return value


def _parse_listened(listened: object) -> dict[str, list[tuple[float, float]]]:
    if not isinstance(listened, Mapping):
        raise VoteInvalid("listened must map 'A' and 'B' to lists of [start, end] seconds.", field="listened")
    unknown = set(listened) - set(SIDES)
    if unknown:
        raise VoteInvalid(f"listened has unknown sides {sorted(map(str, unknown))}; use 'A' and 'B'.", field="listened")
    parsed: dict[str, list[tuple[float, float]]] = {}
    for side in SIDES:
        raw = listened.get(side, [])
        if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) > 10_000:
            raise VoteInvalid(f"listened.{side} must be a list of [start, end] pairs.", field="listened")
        intervals = []
        for pair in raw:
            if (
                not isinstance(pair, Sequence)
                or isinstance(pair, str)
                or len(pair) != 2
                or not all(_is_finite_number(x) and x >= 0 for x in pair)
            ):
                raise VoteInvalid(
                    f"listened.{side} has a bad interval {pair!r}: need [start, end], two seconds >= 0.",
                    field="listened",
                )
            # An interval is a set of seconds: [end, start] is the same claim, checked against the same evidence.
            start, end = sorted((float(pair[0]), float(pair[1])))
            intervals.append((start, end))
        parsed[side] = intervals
    return parsed


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _parse_feedback(feedback: object, *, required: bool) -> str:
    if not isinstance(feedback, str):
        raise VoteInvalid("feedback must be text.", field="feedback")
    text = feedback.strip()
    if required and not text:
        raise VoteInvalid("feedback is required in this campaign: 1–3 sentences of audible evidence.", field="feedback")
    if len(text) > FEEDBACK_MAX_CHARS:
        raise VoteInvalid(f"feedback is limited to {FEEDBACK_MAX_CHARS} characters.", field="feedback")
    return text


def _parse_time_on_task(value: object) -> float | None:
    if value is None:
        return None
    if not _is_finite_number(value) or not 0 <= value <= CLIENT_TIME_MAX_S:  # type: ignore[operator]
        raise VoteInvalid(
            f"time_on_task_s must be a number of seconds from 0 to {CLIENT_TIME_MAX_S:.0f}, got {value!r}.",
            field="time_on_task_s",
        )
    return float(value)  # type: ignore[arg-type]


def _displayed_clips(assignment: Assignment) -> dict[str, Clip]:
    comparison = assignment.comparison
    if assignment.swapped:
        return {"A": comparison.clip_b, "B": comparison.clip_a}
    return {"A": comparison.clip_a, "B": comparison.clip_b}


def _canonical(side: str, *, swapped: bool) -> str:
    if side == NO_PREFERENCE:
        return Choice.TIE
    shown_first = Choice.B if swapped else Choice.A
    shown_second = Choice.A if swapped else Choice.B
    return shown_first if side == "A" else shown_second


def _delivered(assignment: Assignment) -> dict[str, list[tuple[float, float]]]:
    """Seconds of each displayed side's rendition that the server delivered to this assignment, merged."""
    delivered: dict[str, list[tuple[float, float]]] = {side: [] for side in SIDES}
    with connection.cursor() as cursor:  # plain SQL: every vote reads it
        cursor.execute(
            f"SELECT side, start_s, end_s FROM {AudioDelivery._meta.db_table} "
            "WHERE assignment_id = %s AND side IN ('A', 'B') AND end_s > start_s",
            [assignment.pk],
        )
        for side, start, end in cursor.fetchall():
            delivered[side].append((start, end))
    return {side: union_intervals(spans, duration_s=math.inf) for side, spans in delivered.items()}


def _covered_seconds(
    assignment: Assignment, listened: dict[str, list[tuple[float, float]]], now: datetime
) -> dict[str, float]:
    """Covered seconds per displayed side, after checking the claims against the server's evidence."""
    campaign = assignment.comparison.campaign
    clips = _displayed_clips(assignment)
    claimed = {side: union_intervals(listened[side], duration_s=clips[side].duration_s) for side in SIDES}
    delivered = _delivered(assignment)
    for side in SIDES:
        missing = subtract_intervals(claimed[side], delivered[side])
        if sum(end - start for start, end in missing) > EVIDENCE_TOLERANCE_S:
            spans = ", ".join(f"{start:.1f}–{end:.1f} s" for start, end in missing[:5])
            raise ListeningNotDelivered(
                f"Clip {side}: the server never delivered the audio you report hearing at {spans}. "
                f"Play clip {side} on the page (or fetch its audio_url) before voting.",
                side=side,
                missing=missing,
            )
    covered = {side: sum(end - start for start, end in claimed[side]) for side in SIDES}
    elapsed_s = (now - assignment.created_at).total_seconds()
    if covered["A"] + covered["B"] > elapsed_s + LISTEN_WALL_CLOCK_SLACK_S:
        raise ListeningExceedsElapsedTime(
            f"You report {covered['A'] + covered['B']:.1f} s of listening (A {covered['A']:.1f} s + "
            f"B {covered['B']:.1f} s), but this comparison was handed out only {elapsed_s:.1f} s ago, "
            "and the clips play one at a time.",
            claimed_s=covered["A"] + covered["B"],
            elapsed_s=elapsed_s,
        )
    for side, clip in clips.items():
        required = campaign.required_listen_seconds(clip.duration_s)
        if covered[side] + LISTEN_TOLERANCE_S < required:
            raise ListeningRequirementNotMet(
                f"Clip {side} still needs listening: {covered[side]:.1f} s heard of the {required:.1f} s required.",
                side=side,
                listened_s=covered[side],
                required_s=required,
            )
    return covered


def _check_room(assignment: Assignment, now: datetime) -> None:
    """A lapsed reservation may still vote if the comparison has room; the slot's row lock makes the count exact."""
    if assignment.status == Assignment.Status.LIVE and assignment.expires_at > now:
        return
    ComparisonSlot.objects.select_for_update().filter(pk=assignment.comparison_id).first()
    if assignment_lapsed_without_room(assignment=assignment, now=now):
        raise ComparisonFull(COMPARISON_FULL_MESSAGE)


_LOCKED_TABLES = (
    joins.Table(Assignment, "a"),
    joins.Table(Comparison, "c"),
    joins.Table(Campaign, "p"),
    joins.Table(Clip, "ca", ("duration_s",)),
    joins.Table(Clip, "cb", ("duration_s",)),
)
_LOCKED_SQL = f"""
SELECT {joins.select_list(*_LOCKED_TABLES)},
       EXISTS (SELECT 1 FROM {Vote._meta.db_table} v
               WHERE v.annotator_id = %(user)s AND v.comparison_id = a.comparison_id),
       EXISTS (SELECT 1 FROM {Withdrawal._meta.db_table} w
               WHERE w.annotator_id = %(user)s AND w.campaign_id = c.campaign_id AND w.restored_at IS NULL),
       EXISTS (SELECT 1 FROM {AnnotatorProfile._meta.db_table} f WHERE f.user_id = %(user)s),
       (SELECT SUM(k.votes) FROM {CampaignCounter._meta.db_table} k WHERE k.campaign_id = c.campaign_id)
FROM {Assignment._meta.db_table} a
JOIN {Comparison._meta.db_table} c ON c.id = a.comparison_id
JOIN {Campaign._meta.db_table} p ON p.id = c.campaign_id
JOIN {Clip._meta.db_table} ca ON ca.id = c.clip_a_id
JOIN {Clip._meta.db_table} cb ON cb.id = c.clip_b_id
WHERE a.annotator_id = %(user)s AND a.public_id = %(public_id)s
"""


def _locked_assignment(*, annotator: User, assignment_id: UUID | str) -> Assignment:
    """The annotator's own assignment, row-locked, with its comparison, campaign and both clips' durations, and
    ``already_voted``, ``withdrawn``, ``has_profile`` and ``campaign_votes``: one query, written once
    (``annotate.joins``), because the ORM spent more CPU building it than PostgreSQL running it.

    A double submit (two tabs, a retry) queues on the lock and then sees the first one's status.

    Raises:
        AssignmentNotFound: malformed or unknown id, or someone else's assignment.
    """
    public_id = assignment_public_id(annotator=annotator, assignment_id=assignment_id)
    sql = _LOCKED_SQL + (" FOR UPDATE OF a" if connection.features.has_select_for_update_of else "")
    found = joins.first(sql, {"user": annotator.pk, "public_id": public_id}, *_LOCKED_TABLES, extra=4)
    if found is None:
        raise AssignmentNotFound()
    (assignment, comparison, campaign, clip_a, clip_b), flags = found
    assert isinstance(assignment, Assignment) and comparison is not None
    joins.link(comparison, "campaign", campaign)
    joins.link(comparison, "clip_a", clip_a)
    joins.link(comparison, "clip_b", clip_b)
    joins.link(assignment, "comparison", comparison)
    assignment.already_voted, assignment.withdrawn, assignment.has_profile = (bool(flag) for flag in flags[:3])  # type: ignore[attr-defined]
    assignment.campaign_votes = flags[3]  # type: ignore[attr-defined]
    return assignment


def _is_duplicate_vote(exc: IntegrityError) -> bool:
    text = str(exc)
    return "vote_once_per_annotator_comparison" in text or "labeling_vote.annotator_id" in text


def vote_submit(
    *,
    annotator: User,
    assignment_id: UUID,
    alignment: str,
    alignment_confidence: int,
    musicality: str,
    musicality_confidence: int,
    feedback: str,
    listened: Mapping[str, Sequence[Sequence[float]]],
    time_on_task_s: float | None,
    now: datetime | None = None,
) -> Vote:
    """Record a vote: three statements whatever the campaign's size (lock, evidence, insert) in one transaction.

    The insert's triggers close the reservation and update the slot and campaign counters in the same
    transaction.
    """
    now = now or timezone.now()
    alignment = _parse_side(alignment, field="alignment")
    alignment_confidence = _parse_confidence(alignment_confidence, field="alignment_confidence")
    musicality = _parse_side(musicality, field="musicality")
    musicality_confidence = _parse_confidence(musicality_confidence, field="musicality_confidence")
    intervals = _parse_listened(listened)
    client_time_on_task = _parse_time_on_task(time_on_task_s)
    inserting = False
    try:
        with transaction.atomic():
            assignment = _locked_assignment(annotator=annotator, assignment_id=assignment_id)
            _check_open(assignment)
            campaign = assignment.comparison.campaign
            _check_no_preference_allowed(campaign, alignment=alignment, musicality=musicality)
            text = _parse_feedback(feedback, required=campaign.feedback_required)
            covered = _covered_seconds(assignment, intervals, now)
            _check_room(assignment, now)
            swapped = assignment.swapped
            inserting = True
            vote = Vote.objects.create(
                comparison=assignment.comparison,
                annotator=annotator,
                assignment=assignment,
                alignment_choice=_canonical(alignment, swapped=swapped),
                alignment_confidence=alignment_confidence,
                musicality_choice=_canonical(musicality, swapped=swapped),
                musicality_confidence=musicality_confidence,
                feedback=text,
                presented_swapped=swapped,
                listened_a_s=covered["B" if swapped else "A"],
                listened_b_s=covered["A" if swapped else "B"],
                time_on_task_s=max(0.0, (now - assignment.created_at).total_seconds()),
                client_time_on_task_s=client_time_on_task,
                started_at=assignment.created_at,
            )
            inserting = False
            # The insert's trigger closed this reservation (and any newer live one of the comparison).
            assignment.status = Assignment.Status.VOTED
            assignment.closed_at = vote.created_at
            if not assignment.has_profile:  # type: ignore[attr-defined]
                annotator_profile_ensure(user=annotator)  # accounts made outside create_annotator, once
            agreement_snapshot_schedule_on_commit(
                campaign_id=campaign.pk,
                vote_count=(assignment.campaign_votes or 0) + 1,  # type: ignore[attr-defined]
            )
    except IntegrityError as exc:
        if not (inserting and _is_duplicate_vote(exc)):
            raise
        raise DuplicateVote("You have already voted on this comparison; the first vote was kept.") from None
    return vote


def _check_open(assignment: Assignment) -> None:
    """Needs the ``already_voted`` and ``withdrawn`` flags of ``_locked_assignment``."""
    if assignment.status == Assignment.Status.VOTED or assignment.already_voted:  # type: ignore[attr-defined]
        raise DuplicateVote("You have already voted on this comparison; the first vote was kept.")
    if assignment.status == Assignment.Status.SKIPPED:
        raise AssignmentClosed("You skipped this comparison, so it can't take a vote any more.")
    # A reservation released by a withdrawal looks like a lapsed one: it must not take a vote either.
    if assignment.withdrawn:  # type: ignore[attr-defined]
        raise AnnotatorWithdrawn("You withdrew from this campaign, so it takes no more votes from you.")


# --- skip ----------------------------------------------------------------------------------------


def skip_submit(
    *, annotator: User, assignment_id: UUID, reason: str, note: str = "", now: datetime | None = None
) -> Skip:
    """Record why the annotator passed on a comparison and release the reservation."""
    now = now or timezone.now()
    if reason not in Skip.Reason.values:
        raise VoteInvalid(f"reason must be one of {', '.join(Skip.Reason.values)}, got {reason!r}.", field="reason")
    if not isinstance(note, str) or len(note) > FEEDBACK_MAX_CHARS:
        raise VoteInvalid(f"note must be text of at most {FEEDBACK_MAX_CHARS} characters.", field="note")
    # A note is welcome but optional for every reason: the schema can't express "required for other only",
    # and a skip must never be refused for a missing explanation.
    with transaction.atomic():
        assignment = _locked_assignment(annotator=annotator, assignment_id=assignment_id)
        _check_open(assignment)
        try:
            with transaction.atomic():
                skip = Skip.objects.create(
                    comparison_id=assignment.comparison_id,
                    annotator=annotator,
                    assignment=assignment,
                    reason=reason,
                    note=note.strip(),
                )
        except IntegrityError:
            raise AssignmentClosed("You have already skipped this comparison.") from None
        assignment.status = Assignment.Status.SKIPPED
        assignment.closed_at = now
        assignment.save(update_fields=["status", "closed_at"])
    return skip


# --- listening evidence --------------------------------------------------------------------------


def audio_delivery_record(
    *,
    assignment: Assignment,
    side: str,
    rendition: ClipRendition,
    first_byte: int,
    length: int,
    via_accel_redirect: bool = False,
) -> AudioDelivery:
    """Record an audio response for ``side`` of ``assignment``: ``length`` bytes from ``first_byte``.

    Django's own streams start with their first chunk and grow with ``audio_delivery_extend`` (see
    ``AudioDeliveryLog``); behind nginx the
    whole requested range is counted when Django answers, because Django never sees the bytes go out.
    """
    return AudioDelivery.objects.create(
        assignment=assignment,
        side=side,
        rendition=rendition,
        first_byte=first_byte,
        bytes_delivered=length,
        start_s=rendition.seconds_at(first_byte),
        end_s=rendition.seconds_at(first_byte + length),
        via_accel_redirect=via_accel_redirect,
    )


def audio_delivery_extend(*, delivery: AudioDelivery, bytes_delivered: int) -> None:
    """Advance a stream's progress: ``bytes_delivered`` bytes from its first byte have been handed out.

    Plain SQL: a minutes-long clip advances its row once per chunk, so this runs a hundred times per play.
    """
    end_s = delivery.rendition.seconds_at(delivery.first_byte + bytes_delivered)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE labeling_audiodelivery SET bytes_delivered = %s, end_s = %s, updated_at = %s WHERE id = %s",
            [bytes_delivered, end_s, timezone.now(), delivery.pk],
        )


class AudioDeliveryLog:
    """The evidence of one response Django streams itself: its row is written when the first chunk is handed
    out (counting that chunk), then advanced with each further chunk; a response that never sends a byte
    leaves no row."""

    def __init__(self, *, assignment: Assignment, side: str, rendition: ClipRendition, first_byte: int):
        self.assignment, self.side, self.rendition, self.first_byte = assignment, side, rendition, first_byte
        self.delivery: AudioDelivery | None = None

    def handed_out(self, bytes_delivered: int) -> None:
        """``bytes_delivered`` bytes from the first byte are about to go to the server to send."""
        if self.delivery is None:
            self.delivery = audio_delivery_record(
                assignment=self.assignment,
                side=self.side,
                rendition=self.rendition,
                first_byte=self.first_byte,
                length=bytes_delivered,
            )
        else:
            audio_delivery_extend(delivery=self.delivery, bytes_delivered=bytes_delivered)


# --- Adjudication (staff) -------------------------------------------------------------------


def _parse_adjudicated_choice(value: object, *, field: str) -> str:
    if value not in (Choice.A, Choice.B, Choice.TIE):
        raise VoteInvalid(f'{field} must be "a" (clip_a), "b" (clip_b) or "t" (no preference).', field=field)
    return str(value)


def _parse_note(note: object) -> str:
    if not isinstance(note, str) or "\x00" in note:
        raise VoteInvalid("note must be text.", field="note")
    if len(note) > FEEDBACK_MAX_CHARS:
        raise VoteInvalid(f"note is limited to {FEEDBACK_MAX_CHARS} characters.", field="note")
    return note.strip()


def adjudication_set(
    *, comparison: Comparison, user: User, alignment: object, musicality: object, note: str = ""
) -> Adjudication:
    """Store (or replace) staff's resolution of ``comparison``; the votes themselves are kept as cast.

    ``alignment``/``musicality`` are canonical: "a" (clip_a), "b" (clip_b) or "t" (no preference).
    """
    values = {
        "alignment_choice": _parse_adjudicated_choice(alignment, field="alignment"),
        "musicality_choice": _parse_adjudicated_choice(musicality, field="musicality"),
        "note": _parse_note(note),
        "decided_by": user,
    }
    adjudication, _ = Adjudication.objects.update_or_create(comparison=comparison, defaults=values)
    return adjudication


def adjudication_delete(*, comparison: Comparison) -> bool:
    """Drop staff's resolution of ``comparison``; the votes' majority is its label again. False when there was none."""
    deleted, _ = Adjudication.objects.filter(comparison=comparison).delete()
    return deleted > 0
