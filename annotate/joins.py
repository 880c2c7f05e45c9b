"""Hand-written joins for the hottest reads, with the SQL built once instead of on every request.

Building a queryset with ``select_related`` and ``annotate`` costs the ORM more CPU than PostgreSQL spends
running it: in ``bench/vote_submit.py`` at 32 concurrent annotators, SQL compilation was about 40% of the
web workers' CPU. A ``Table`` names a model, its alias in the hand-written SQL and the fields to read;
``select_list`` writes their columns once (at import), and ``instances`` turns each result row back into
model instances with ``Model.from_db`` and the fields' own converters (JSON), as the ORM would. Fields not
listed are deferred: reading one later costs a query, as after ``.only()``. ``link`` and ``link_reverse``
put related objects in the caches ``select_related`` fills, so ``assignment.comparison`` costs no query.

Use it only where a profile says so; everywhere else the ORM reads better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Field, Model


@dataclass(frozen=True)
class Table:
    model: type[Model]
    alias: str
    names: tuple[str, ...] = ()  # field names; empty: every concrete field
    fields: tuple[Field[Any, Any], ...] = field(init=False)
    attnames: list[str] = field(init=False)

    def __post_init__(self) -> None:
        meta = self.model._meta
        chosen = [_concrete(meta.get_field(name)) for name in self.names] if self.names else list(meta.concrete_fields)
        if meta.pk is not None and meta.pk not in chosen:
            chosen.insert(0, meta.pk)  # from_db needs the key
        object.__setattr__(self, "fields", tuple(chosen))
        object.__setattr__(self, "attnames", [f.attname for f in chosen])

    def converters(self) -> list[tuple[int, list[tuple[Any, Any]]]]:
        """(position, [(converter, column)]) for the fields that need converting on this database, cached."""
        cache: dict[str, list[tuple[int, list[tuple[Any, Any]]]]] = self.__dict__.setdefault("_converters", {})
        if connection.vendor not in cache:
            found = []
            for index, f in enumerate(self.fields):
                col = f.get_col(self.alias)  # type: ignore[attr-defined]
                converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                if converters:
                    found.append((index, [(convert, col) for convert in converters]))
            cache[connection.vendor] = found
        return cache[connection.vendor]

    def columns(self) -> str:
        quote = connection.ops.quote_name
        return ", ".join(f"{quote(self.alias)}.{quote(str(f.column))}" for f in self.fields)


def _concrete(found: object) -> Field[Any, Any]:
    if not isinstance(found, Field) or found not in found.model._meta.concrete_fields:  # not many-to-many
        raise TypeError(f"{found!r} is not a column")
    return found


def select_list(*tables: Table) -> str:
    """The SELECT list of ``tables``' columns, in order: what ``instances`` expects back."""
    return ", ".join(table.columns() for table in tables)


def instances(row: Sequence[Any], *tables: Table, extra: int = 0) -> tuple[list[Model | None], Sequence[Any]]:
    """One model instance per table (None where a LEFT JOIN found nothing), and the ``extra`` values after them.

    Values go through the same converters the ORM applies (the backend's, e.g. SQLite's datetimes and UUIDs,
    then the field's, e.g. JSON)."""
    out: list[Model | None] = []
    position = 0
    for table in tables:
        values = list(row[position : position + len(table.fields)])
        position += len(table.fields)
        if values[0] is None:  # the primary key: an outer join without a match
            out.append(None)
            continue
        for index, converters in table.converters():
            for convert, col in converters:
                values[index] = convert(values[index], col, connection)
        out.append(table.model.from_db(DEFAULT_DB_ALIAS, table.attnames, values))  # type: ignore[attr-defined]
    return out, row[position : position + extra]


def first(
    sql: str, params: Sequence[Any] | dict[str, Any], *tables: Table, extra: int = 0
) -> tuple[list[Model | None], Sequence[Any]] | None:
    """Run ``sql`` and return ``instances`` of its first row, or None when it found nothing."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else instances(row, *tables, extra=extra)


def param(model: type[Model], name: str, value: Any) -> Any:
    """``value`` as the database takes it for ``model.<name>`` (a UUID is text on SQLite)."""
    return model._meta.get_field(name).get_db_prep_value(value, connection)  # type: ignore[union-attr]


def link(instance: Model, name: str, related: Model | None) -> None:
    """Cache ``related`` as ``instance.<name>`` (a forward foreign key), as ``select_related`` does."""
    instance._meta.get_field(name).set_cached_value(instance, related)  # type: ignore[union-attr]


def link_reverse(instance: Model, name: str, related: Model | None) -> None:
    """Cache a reverse one-to-one ``instance.<name>``; None makes reading it raise DoesNotExist without a query."""
    descriptor = getattr(type(instance), name)
    descriptor.related.set_cached_value(instance, related)
    if related is not None:
        descriptor.related.field.set_cached_value(related, instance)
