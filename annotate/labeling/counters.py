"""Database triggers that keep ``ComparisonSlot``, ``CampaignCounter`` and ``CampaignPattern`` in step with
votes and reservations.

The same statements run on PostgreSQL (wrapped in PL/pgSQL trigger functions) and on SQLite (the
development database of ``scripts/dev.sh``), so every write path counts: the services, label imports
(``bulk_create``), the admin, test factories and raw deletes through the ORM. Only ``TRUNCATE`` (a test
flush) bypasses them, and it empties these tables too.

A vote also closes the voter's reservations of its comparison (status "voted" for its own, "expired" for
any other live one), so the vote service needs no second write.

Concurrency (PostgreSQL): every statement is an increment (``x = x + 1``), which a concurrent writer
re-evaluates on the newest row version after the row lock, so no update is lost. A vote locks its
comparison's slot row first, then one of ``CampaignCounter.SHARDS`` counter rows (by vote id), always in
that order. ``next_expiry`` is recomputed from the comparison's few live reservations; it is a hint the
queue re-checks under the slot's lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.backends.base.base import BaseDatabaseWrapper

SHARDS = 8
SLOT = "labeling_comparisonslot"
COUNTER = "labeling_campaigncounter"
PATTERN = "labeling_campaignpattern"
PATTERN_COLUMNS = ("votes", "alignment_a", "alignment_t", "musicality_a", "musicality_t")
CHOICES = ("a", "b", "t")
CHOICE_COLUMNS = tuple(f"{question}_{choice}" for question in ("alignment", "musicality") for choice in CHOICES)


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    event: str  # "INSERT", "DELETE", "UPDATE OF a, b"
    when: str | None
    statements: tuple[str, ...]


def _min_live_expiry(comparison: str) -> str:
    return (
        f"(SELECT MIN(a.expires_at) FROM labeling_assignment a WHERE a.comparison_id = {comparison} "
        "AND a.status = 'live')"
    )


def _choice_counts(row: str, sign: str) -> str:
    """``alignment_a = alignment_a + 1`` for the row's choices (sign "+" or "-"), the other columns unchanged."""
    return ", ".join(
        f"{column} = {column} {sign} CASE WHEN {row}.{column[:-2]}_choice = '{column[-1]}' THEN 1 ELSE 0 END"
        for column in CHOICE_COLUMNS
    )


def _pattern_moved(row: str, vendor: str, *, added: bool) -> tuple[str, ...]:
    """After the slot took (``added``) or gave back ``row``'s vote: move its comparison between splits.

    The split before is the slot's counts less (or plus) the vote's own contribution.
    """
    comparison = f"{row}.comparison_id"
    back = "-" if added else "+"
    before = ", ".join(
        [f"s.votes {back} 1"]
        + [
            f"s.{column} {back} CASE WHEN {row}.{column[:-2]}_choice = '{column[-1]}' THEN 1 ELSE 0 END"
            for column in PATTERN_COLUMNS[1:]
        ]
    )
    after = ", ".join(f"s.{column}" for column in PATTERN_COLUMNS)
    key = f"(campaign_id, {', '.join(PATTERN_COLUMNS)})"
    shard = f"{comparison} % {SHARDS}"
    ignore = ("INSERT", " ON CONFLICT DO NOTHING") if vendor == "postgresql" else ("INSERT OR IGNORE", "")
    return (
        f"UPDATE {PATTERN} SET comparisons = comparisons - 1 WHERE shard = {shard} AND {key} = "
        f"(SELECT s.campaign_id, {before} FROM {SLOT} s WHERE s.comparison_id = {comparison})",
        f"{ignore[0]} INTO {PATTERN} (campaign_id, shard, {', '.join(PATTERN_COLUMNS)}, comparisons) "
        f"SELECT s.campaign_id, {shard}, {after}, 0 FROM {SLOT} s WHERE s.comparison_id = {comparison} "
        f"AND s.votes > 0{ignore[1]}",
        f"UPDATE {PATTERN} SET comparisons = comparisons + 1 WHERE shard = {shard} AND {key} = "
        f"(SELECT s.campaign_id, {after} FROM {SLOT} s WHERE s.comparison_id = {comparison} AND s.votes > 0)",
    )


def _vote_added(new: str = "NEW", vendor: str = "postgresql") -> tuple[str, ...]:
    return (
        f"UPDATE {SLOT} SET votes = votes + 1, {_choice_counts(new, '+')} WHERE comparison_id = {new}.comparison_id",
        *_pattern_moved(new, vendor, added=True),
        # After the increment (and under the slot's row lock): the comparison closed iff it now meets the target.
        f"UPDATE {COUNTER} SET votes = votes + 1, open_comparisons = open_comparisons - COALESCE(("
        f"SELECT CASE WHEN s.votes = c.overlap_target THEN 1 ELSE 0 END FROM {SLOT} s "
        f"JOIN catalog_campaign c ON c.id = s.campaign_id WHERE s.comparison_id = {new}.comparison_id), 0) "
        f"WHERE shard = {new}.id % {SHARDS} AND campaign_id = "
        f"(SELECT campaign_id FROM {SLOT} WHERE comparison_id = {new}.comparison_id)",
    )


def _vote_removed(old: str = "OLD", vendor: str = "postgresql") -> tuple[str, ...]:
    return (
        f"UPDATE {SLOT} SET votes = votes - 1, {_choice_counts(old, '-')} WHERE comparison_id = {old}.comparison_id",
        *_pattern_moved(old, vendor, added=False),
        f"UPDATE {COUNTER} SET votes = votes - 1, open_comparisons = open_comparisons + COALESCE(("
        f"SELECT CASE WHEN s.votes = c.overlap_target - 1 THEN 1 ELSE 0 END FROM {SLOT} s "
        f"JOIN catalog_campaign c ON c.id = s.campaign_id WHERE s.comparison_id = {old}.comparison_id), 0) "
        f"WHERE shard = {old}.id % {SHARDS} AND campaign_id = "
        f"(SELECT campaign_id FROM {SLOT} WHERE comparison_id = {old}.comparison_id)",
    )


def _random_int(vendor: str) -> str:
    if vendor == "postgresql":
        return "floor(random() * 2147483647)::integer"
    return "abs(random() % 2147483647)"


def triggers(vendor: str) -> list[Trigger]:
    shard_rows = ", ".join(f"(NEW.id, {shard}, 0, 0, 0)" for shard in range(SHARDS))
    return [
        Trigger(
            "labeling_counters_campaign_ins",
            "catalog_campaign",
            "INSERT",
            None,
            (f"INSERT INTO {COUNTER} (campaign_id, shard, comparisons, votes, open_comparisons) VALUES {shard_rows}",),
        ),
        Trigger(
            "labeling_counters_campaign_overlap",
            "catalog_campaign",
            "UPDATE OF overlap_target",
            "OLD.overlap_target <> NEW.overlap_target",
            (
                f"UPDATE {COUNTER} SET open_comparisons = CASE WHEN shard = 0 THEN "
                f"(SELECT COUNT(*) FROM {SLOT} s WHERE s.campaign_id = NEW.id AND s.votes < NEW.overlap_target) "
                "ELSE 0 END WHERE campaign_id = NEW.id",
            ),
        ),
        Trigger(
            "labeling_slot_comparison_ins",
            "catalog_comparison",
            "INSERT",
            None,
            (
                f"INSERT INTO {SLOT} (comparison_id, campaign_id, votes, live, next_expiry, tiebreak, "
                f"{', '.join(CHOICE_COLUMNS)}) VALUES (NEW.id, NEW.campaign_id, 0, 0, NULL, {_random_int(vendor)}"
                f"{', 0' * len(CHOICE_COLUMNS)})",
                f"UPDATE {COUNTER} SET comparisons = comparisons + 1, open_comparisons = open_comparisons + 1 "
                f"WHERE campaign_id = NEW.campaign_id AND shard = NEW.id % {SHARDS}",
            ),
        ),
        Trigger(
            "labeling_slot_del",
            SLOT,
            "DELETE",
            None,
            (
                # Whatever votes the slot still counts leave with it (the votes may be deleted after it).
                f"UPDATE {COUNTER} SET comparisons = comparisons - 1, votes = votes - OLD.votes, "
                "open_comparisons = open_comparisons - COALESCE((SELECT CASE WHEN OLD.votes < c.overlap_target "
                "THEN 1 ELSE 0 END FROM catalog_campaign c WHERE c.id = OLD.campaign_id), 0) "
                f"WHERE campaign_id = OLD.campaign_id AND shard = OLD.comparison_id % {SHARDS}",
                f"UPDATE {PATTERN} SET comparisons = comparisons - 1 WHERE campaign_id = OLD.campaign_id "
                f"AND shard = OLD.comparison_id % {SHARDS} AND "
                + " AND ".join(f"{column} = OLD.{column}" for column in PATTERN_COLUMNS),
            ),
        ),
        Trigger(
            "labeling_slot_vote_ins",
            "labeling_vote",
            "INSERT",
            None,
            (
                *_vote_added(vendor=vendor),
                # A vote closes the voter's reservations of the comparison: its own is voted, any other live one
                # (a newer reservation after the first lapsed) has nothing left to do. The slot's ``live``
                # follows by the assignment trigger.
                "UPDATE labeling_assignment SET status = CASE WHEN id = NEW.assignment_id THEN 'voted' "
                "ELSE 'expired' END, closed_at = NEW.created_at WHERE annotator_id = NEW.annotator_id "
                "AND comparison_id = NEW.comparison_id AND (status = 'live' OR id = NEW.assignment_id)",
            ),
        ),
        Trigger("labeling_slot_vote_del", "labeling_vote", "DELETE", None, _vote_removed(vendor=vendor)),
        Trigger(
            "labeling_slot_vote_move",
            "labeling_vote",
            "UPDATE OF comparison_id, alignment_choice, musicality_choice",
            "OLD.comparison_id <> NEW.comparison_id OR OLD.alignment_choice <> NEW.alignment_choice "
            "OR OLD.musicality_choice <> NEW.musicality_choice",
            _vote_removed(vendor=vendor) + _vote_added(vendor=vendor),
        ),
        Trigger(
            "labeling_slot_assignment_ins",
            "labeling_assignment",
            "INSERT",
            "NEW.status = 'live'",
            (
                f"UPDATE {SLOT} SET live = live + 1, next_expiry = CASE WHEN next_expiry IS NULL "
                "OR NEW.expires_at < next_expiry THEN NEW.expires_at ELSE next_expiry END "
                "WHERE comparison_id = NEW.comparison_id",
            ),
        ),
        Trigger(
            "labeling_slot_assignment_upd",
            "labeling_assignment",
            "UPDATE OF status, expires_at, comparison_id",
            "OLD.status = 'live' OR NEW.status = 'live'",
            (
                f"UPDATE {SLOT} SET live = live - 1, next_expiry = {_min_live_expiry('OLD.comparison_id')} "
                "WHERE comparison_id = OLD.comparison_id AND OLD.status = 'live'",
                f"UPDATE {SLOT} SET live = live + 1, next_expiry = {_min_live_expiry('NEW.comparison_id')} "
                "WHERE comparison_id = NEW.comparison_id AND NEW.status = 'live'",
            ),
        ),
        Trigger(
            "labeling_slot_assignment_del",
            "labeling_assignment",
            "DELETE",
            "OLD.status = 'live'",
            (
                f"UPDATE {SLOT} SET live = live - 1, next_expiry = {_min_live_expiry('OLD.comparison_id')} "
                "WHERE comparison_id = OLD.comparison_id",
            ),
        ),
    ]


def create_sql(vendor: str) -> list[str]:
    sql = []
    for trigger in triggers(vendor):
        if vendor == "postgresql":
            body = ";\n  ".join(trigger.statements)
            sql.append(
                f"CREATE OR REPLACE FUNCTION {trigger.name}_fn() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                f"BEGIN\n  {body};\n  RETURN NULL;\nEND $$"
            )
            when = f" WHEN ({trigger.when})" if trigger.when else ""
            sql.append(
                f"CREATE TRIGGER {trigger.name} AFTER {trigger.event} ON {trigger.table} "
                f"FOR EACH ROW{when} EXECUTE FUNCTION {trigger.name}_fn()"
            )
        else:
            body = ";\n  ".join(trigger.statements)
            when = f" WHEN {trigger.when}" if trigger.when else ""
            sql.append(
                f"CREATE TRIGGER {trigger.name} AFTER {trigger.event} ON {trigger.table} "
                f"FOR EACH ROW{when}\nBEGIN\n  {body};\nEND"
            )
    return sql


def drop_sql(vendor: str) -> list[str]:
    if vendor != "postgresql":
        return [f"DROP TRIGGER IF EXISTS {trigger.name}" for trigger in triggers(vendor)]
    sql = []
    for trigger in triggers(vendor):
        sql.append(f"DROP TRIGGER IF EXISTS {trigger.name} ON {trigger.table}")
        sql.append(f"DROP FUNCTION IF EXISTS {trigger.name}_fn()")
    return sql


def backfill_sql(vendor: str) -> list[str]:
    """Counters for the rows that exist before the triggers do (campaign totals go to shard 0)."""
    shards = " UNION ALL ".join(f"SELECT {shard} AS shard" for shard in range(SHARDS))
    sums = ", ".join(
        f"SUM(CASE WHEN {column[:-2]}_choice = '{column[-1]}' THEN 1 ELSE 0 END) AS {column}"
        for column in CHOICE_COLUMNS
    )
    per_comparison = f"SELECT comparison_id, COUNT(*) AS votes, {sums} FROM labeling_vote GROUP BY comparison_id"
    live = (
        "SELECT comparison_id, COUNT(*) AS live, MIN(expires_at) AS next_expiry FROM labeling_assignment "
        "WHERE status = 'live' GROUP BY comparison_id"
    )
    return [
        f"DELETE FROM {SLOT}",
        f"DELETE FROM {COUNTER}",
        f"INSERT INTO {COUNTER} (campaign_id, shard, comparisons, votes, open_comparisons) "
        f"SELECT c.id, n.shard, 0, 0, 0 FROM catalog_campaign c CROSS JOIN ({shards}) n",
        f"INSERT INTO {SLOT} (comparison_id, campaign_id, votes, live, next_expiry, tiebreak, "
        f"{', '.join(CHOICE_COLUMNS)}) "
        f"SELECT cmp.id, cmp.campaign_id, COALESCE(v.votes, 0), COALESCE(l.live, 0), l.next_expiry, "
        f"{_random_int(vendor)}, {', '.join(f'COALESCE(v.{column}, 0)' for column in CHOICE_COLUMNS)} "
        f"FROM catalog_comparison cmp LEFT JOIN ({per_comparison}) v ON v.comparison_id = cmp.id "
        f"LEFT JOIN ({live}) l ON l.comparison_id = cmp.id",
        f"DELETE FROM {PATTERN}",
        f"INSERT INTO {PATTERN} (campaign_id, shard, {', '.join(PATTERN_COLUMNS)}, comparisons) "
        f"SELECT campaign_id, comparison_id % {SHARDS}, {', '.join(PATTERN_COLUMNS)}, COUNT(*) FROM {SLOT} "
        f"WHERE votes > 0 GROUP BY campaign_id, comparison_id % {SHARDS}, {', '.join(PATTERN_COLUMNS)}",
        f"UPDATE {COUNTER} SET "
        f"comparisons = (SELECT COUNT(*) FROM {SLOT} s WHERE s.campaign_id = {COUNTER}.campaign_id), "
        f"votes = (SELECT COALESCE(SUM(s.votes), 0) FROM {SLOT} s WHERE s.campaign_id = {COUNTER}.campaign_id), "
        f"open_comparisons = (SELECT COUNT(*) FROM {SLOT} s JOIN catalog_campaign c ON c.id = s.campaign_id "
        f"WHERE s.campaign_id = {COUNTER}.campaign_id AND s.votes < c.overlap_target) WHERE shard = 0",
    ]


def rebuild(connection: BaseDatabaseWrapper) -> None:
    """Recompute slots and counters from the rows, e.g. after a bulk load that bypassed the triggers."""
    with connection.cursor() as cursor:
        for statement in backfill_sql(connection.vendor):
            cursor.execute(statement)


def install(connection: BaseDatabaseWrapper) -> None:
    """Fill the tables from the current rows, then install the triggers (a migration calls this)."""
    with connection.cursor() as cursor:
        for statement in drop_sql(connection.vendor) + backfill_sql(connection.vendor) + create_sql(connection.vendor):
            cursor.execute(statement)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in drop_sql(connection.vendor):
            cursor.execute(statement)
