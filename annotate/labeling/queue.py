"""The assignment queue: cheap candidates, an ordering strategy, and a skip-locked reservation.

Each step costs one query whatever the campaign's size:

1. ``candidates`` reads up to ``CANDIDATES`` rows of ``ComparisonSlot`` along the ``slot_queue_order`` index
   (campaign, votes, live, tiebreak): fewest votes first, then fewest live reservations, only rows with
   room (or whose room is held by a lapsed reservation), skipping what the annotator voted on, skipped or
   holds. No lock is taken.
2. ``order_candidates`` is the strategy hook: the balanced default sorts by (votes, live, a hash of the
   caller's seed and the id), so concurrent annotators spread over tied comparisons. The campaign's
   ``assignment_strategy`` (``annotate.labeling.strategies.order_candidates``) then reorders (or narrows)
   the balanced list.
3. ``reserve`` locks the first of the ordered ids that still has room with
   ``SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1`` (the room condition is re-checked on the newest row
   version) and inserts the reservation; the slot's counters follow by trigger in the same transaction.
   A reservation that lapsed is reclaimed here, by the caller that needs its slot, or by the periodic
   ``assignment_reclaim_expired`` task; reads never write.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils import timezone

from annotate.catalog.models import Campaign
from annotate.labeling.models import Assignment, ComparisonSlot, Skip, Vote
from annotate.labeling.selectors import assignment_with_related

# How many candidates one query fetches: enough that concurrent callers rarely all want the same rows.
CANDIDATES = 25


@dataclass(frozen=True)
class Candidate:
    comparison_id: int
    votes: int
    live: int


def _has_room(campaign: Campaign, now: datetime) -> Q:
    # Room now, or room held only until a reservation that has lapsed (reclaimed when reserved).
    return Q(votes__lt=campaign.overlap_target) & (Q(taken__lt=campaign.overlap_target) | Q(next_expiry__lte=now))


# The same rule as ``_has_room``, in SQL.
_CANDIDATES_SQL = f"""
SELECT s.comparison_id, s.votes, s.live FROM {ComparisonSlot._meta.db_table} s
WHERE s.campaign_id = %(campaign)s AND s.votes < %(overlap)s
  AND (s.votes + s.live < %(overlap)s OR s.next_expiry <= %(now)s)
  AND NOT EXISTS (SELECT 1 FROM {Vote._meta.db_table} v
                  WHERE v.annotator_id = %(annotator)s AND v.comparison_id = s.comparison_id)
  AND NOT EXISTS (SELECT 1 FROM {Skip._meta.db_table} k
                  WHERE k.annotator_id = %(annotator)s AND k.comparison_id = s.comparison_id)
  AND NOT EXISTS (SELECT 1 FROM {Assignment._meta.db_table} a
                  WHERE a.annotator_id = %(annotator)s AND a.comparison_id = s.comparison_id AND a.status = %(live)s)
ORDER BY s.votes, s.live, s.tiebreak
LIMIT %(limit)s
"""


def candidates(*, campaign: Campaign, annotator: User, now: datetime, limit: int = CANDIDATES) -> list[Candidate]:
    """Up to ``limit`` comparisons the annotator may get next, fewest votes then fewest live first (one query).

    A slot has room now, or room held only by a reservation that has lapsed (reclaimed when reserved); the
    annotator's own votes, skips and live reservations are left out. Plain SQL along the ``slot_queue_order``
    index: building it with the ORM cost more CPU than running it."""
    params = {
        "campaign": campaign.pk,
        "overlap": campaign.overlap_target,
        "now": connection.ops.adapt_datetimefield_value(now),
        "annotator": annotator.pk,
        "live": Assignment.Status.LIVE,
        "limit": limit,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CANDIDATES_SQL, params)
        return [Candidate(comparison_id=cid, votes=votes, live=live) for cid, votes, live in cursor.fetchall()]


def seeded_hash(seed: str, comparison_id: int) -> str:
    return hashlib.md5(f"{seed}:{comparison_id}".encode(), usedforsecurity=False).hexdigest()


def balanced_order(found: Sequence[Candidate], *, seed: str) -> list[int]:
    """Fewest votes, then fewest live reservations, ties in a seeded random order."""
    ranked = sorted(found, key=lambda c: (c.votes, c.live, seeded_hash(seed, c.comparison_id)))
    return [candidate.comparison_id for candidate in ranked]


def order_candidates(*, campaign: Campaign, annotator: User, found: Sequence[Candidate], seed: str) -> list[int]:
    """The strategy hook: balanced order, then the campaign's strategy (when there is one) reorders it."""
    from annotate.labeling import strategies  # they read votes and predictions: imported where used

    ordered = balanced_order(found, seed=seed)
    if not ordered:
        return ordered
    return [int(comparison_id) for comparison_id in strategies.order_candidates(campaign, annotator, ordered)]


def reclaim_lapsed(*, comparison_id: int, now: datetime) -> int:
    """Expire the lapsed live reservations of one comparison (its slot row is locked by the caller).

    Reservations locked by a vote in flight are skipped, not waited on: a vote takes the reservation's
    lock before the slot's, so waiting here could deadlock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE labeling_assignment SET status = %s, closed_at = %s WHERE id IN ("
                "SELECT id FROM labeling_assignment WHERE comparison_id = %s AND status = %s AND expires_at <= %s "
                "FOR UPDATE SKIP LOCKED)",
                [Assignment.Status.EXPIRED, now, comparison_id, Assignment.Status.LIVE, now],
            )
            return cursor.rowcount
    return Assignment.objects.filter(
        comparison_id=comparison_id, status=Assignment.Status.LIVE, expires_at__lte=now
    ).update(status=Assignment.Status.EXPIRED, closed_at=now)


def swapped_for(*, seed: str, comparison_id: int) -> bool:
    # Derived from the seed so tests are deterministic; with no seed the seed itself is random.
    digest = hashlib.md5(f"swap:{seed}:{comparison_id}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:8], 16) % 2 == 1


def reserve(
    *,
    annotator: User,
    campaign: Campaign,
    comparison_ids: Sequence[int],
    now: datetime,
    seed: str,
    lapsed: Sequence[int] = (),
) -> Assignment | None:
    """Reserve the first of ``comparison_ids`` (in that order) that has room and isn't locked by another caller.

    On PostgreSQL the lock and the insert are one statement (a CTE with ``FOR UPDATE SKIP LOCKED LIMIT 1``),
    so a reservation is one round trip plus the read of what the page shows. ``lapsed`` names candidates
    whose room is held only by lapsed reservations: they are tried afterwards, in a transaction that
    reclaims them under the slot's lock. The returned assignment has its comparison, campaign, instruction,
    reference and clips loaded.
    """
    ordered = list(dict.fromkeys(comparison_ids))
    if connection.vendor == "postgresql":
        lapsed_ids = set(lapsed)
        ready = [cid for cid in ordered if cid not in lapsed_ids]
        assignment_id = _insert_first_free(annotator=annotator, campaign=campaign, ordered=ready, now=now, seed=seed)
        if assignment_id is not None:
            return assignment_with_related(assignment_id)
        ordered = [cid for cid in ordered if cid in lapsed_ids]
    return _reserve_locked(annotator=annotator, campaign=campaign, ordered=ordered, now=now, seed=seed)


_INSERT_FIRST_FREE = """
WITH pick AS (
    SELECT s.comparison_id FROM labeling_comparisonslot s
    WHERE s.comparison_id = ANY(%(ids)s) AND s.campaign_id = %(campaign)s AND s.votes + s.live < %(overlap)s
    ORDER BY array_position(%(ids)s, s.comparison_id)
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
INSERT INTO labeling_assignment (public_id, annotator_id, comparison_id, swapped, status, created_at, expires_at)
SELECT %(public_id)s, %(annotator)s, pick.comparison_id,
       (%(swapped)s::boolean[])[array_position(%(ids)s, pick.comparison_id)], %(live)s, %(created)s, %(expires)s
FROM pick
RETURNING id
"""


def _insert_first_free(
    *, annotator: User, campaign: Campaign, ordered: list[int], now: datetime, seed: str
) -> int | None:
    """PostgreSQL: lock the first free slot of ``ordered`` and insert the reservation, in one statement.

    The lock is re-checked on the newest row version (READ COMMITTED), so a slot filled since the candidates
    were read is passed over; a slot another caller is reserving is skipped, not waited on. The slot's
    ``live`` counter is raised by trigger inside the same statement.
    """
    if not ordered:
        return None
    params: dict[str, Any] = {
        "ids": ordered,
        "campaign": campaign.pk,
        "overlap": campaign.overlap_target,
        "public_id": uuid.uuid4(),
        "annotator": annotator.pk,
        "swapped": [swapped_for(seed=seed, comparison_id=cid) for cid in ordered],
        "live": Assignment.Status.LIVE,
        "created": timezone.now(),
        "expires": now + timedelta(minutes=settings.ASSIGNMENT_TTL_MINUTES),
    }
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_FIRST_FREE, params)
        row = cursor.fetchone()
    return int(row[0]) if row else None


def _reserve_locked(
    *, annotator: User, campaign: Campaign, ordered: list[int], now: datetime, seed: str
) -> Assignment | None:
    """The portable path (SQLite, and lapsed slots on PostgreSQL): lock, reclaim if needed, insert."""
    remaining = list(ordered)
    ttl = timedelta(minutes=settings.ASSIGNMENT_TTL_MINUTES)
    overlap = campaign.overlap_target
    while remaining:
        rank = Case(
            *[When(comparison_id=cid, then=Value(i)) for i, cid in enumerate(remaining)], output_field=IntegerField()
        )
        with transaction.atomic():
            slot = (
                ComparisonSlot.objects.select_for_update(of=("self",), skip_locked=True)
                .select_related(
                    "comparison__campaign",
                    "comparison__instruction__reference_clip",
                    "comparison__clip_a",
                    "comparison__clip_b",
                )
                .filter(campaign=campaign, comparison_id__in=remaining)
                .alias(taken=F("votes") + F("live"))
                .filter(_has_room(campaign, now))
                .order_by(rank)
                .first()
            )
            if slot is None:
                return None
            if slot.votes + slot.live >= overlap:
                # Its room is held by lapsed reservations: reclaim them under the slot's lock, then recount.
                reclaim_lapsed(comparison_id=slot.comparison_id, now=now)
                live = ComparisonSlot.objects.filter(pk=slot.pk).values_list("live", flat=True).get()
                if slot.votes + live >= overlap:
                    remaining.remove(slot.comparison_id)
                    continue
            return Assignment.objects.create(
                annotator=annotator,
                comparison=slot.comparison,
                swapped=swapped_for(seed=seed, comparison_id=slot.comparison_id),
                expires_at=now + ttl,
            )
    return None
