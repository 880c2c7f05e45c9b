"""``annotate.joins``: hand-written joins give the same instances the ORM gives, with the same caches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from annotate import joins
from annotate.catalog.models import Clip, Comparison, Instruction
from annotate.labeling.models import AnnotatorProfile
from annotate.people.authentication import _legacy_token
from tests import factories

pytestmark = pytest.mark.django_db

_TABLES = (joins.Table(Comparison, "c"), joins.Table(Instruction, "i"), joins.Table(Clip, "r"), joins.Table(Clip, "a"))
_SQL = f"""
SELECT {joins.select_list(*_TABLES)}, 41 + 1
FROM catalog_comparison c
JOIN catalog_instruction i ON i.id = c.instruction_id
LEFT JOIN catalog_clip r ON r.id = i.reference_clip_id
JOIN catalog_clip a ON a.id = c.clip_a_id
WHERE c.id = %s
"""


def _fetch(pk: int) -> tuple[list, Sequence[Any]]:
    with connection.cursor() as cursor:
        cursor.execute(_SQL, [pk])
        instances, extra = joins.instances(cursor.fetchone(), *_TABLES, extra=1)
    return instances, extra


def test_instances_equal_what_the_orm_reads_and_an_outer_join_miss_is_none() -> None:
    comparison = factories.make_comparison(factories.make_campaign())
    (found, instruction, reference, clip_a), extra = _fetch(comparison.pk)
    assert list(extra) == [42]
    assert reference is None  # a text-only instruction: the LEFT JOIN found nothing
    expected = Clip.objects.get(pk=comparison.clip_a_id)
    assert isinstance(clip_a, Clip) and clip_a.pk == expected.pk
    for f in Clip._meta.concrete_fields:  # JSON (peaks), datetimes and files converted as the ORM does
        assert getattr(clip_a, f.attname) == getattr(expected, f.attname), f.name
    assert found.created_at == Comparison.objects.get(pk=comparison.pk).created_at
    assert instruction.text == comparison.instruction.text


def test_linked_relations_cost_no_query_and_unlisted_fields_are_deferred() -> None:
    comparison = factories.make_comparison(factories.make_campaign())
    (found, instruction, _, clip_a), _ = _fetch(comparison.pk)
    joins.link(found, "instruction", instruction)
    joins.link(found, "clip_a", clip_a)
    with CaptureQueriesContext(connection) as queries:
        assert found.instruction.text and found.clip_a.duration_s > 0
    assert len(queries) == 0
    lean = joins.Table(Clip, "a", ("duration_s",))
    assert lean.attnames == ["id", "duration_s"]  # the key is always read
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {lean.columns()} FROM catalog_clip a WHERE a.id = %s", [comparison.clip_a_id])
        (clip,), _ = joins.instances(cursor.fetchone(), lean)
    assert clip is not None and clip.get_deferred_fields() >= {"sha256", "peaks"}


def test_a_table_refuses_a_name_that_is_not_a_column() -> None:
    with pytest.raises(TypeError):
        joins.Table(User, "u", ("groups",))


def test_the_token_join_caches_the_missing_service_account_and_the_profile() -> None:
    bob = factories.make_annotator("bob")
    AnnotatorProfile.objects.get_or_create(user=bob)
    key = Token.objects.create(user=bob).key
    with CaptureQueriesContext(connection) as queries:
        token = _legacy_token(key)
        assert token is not None and token.user.username == "bob"
        assert not hasattr(token.user, "service_account")  # cached as missing: no query to find out
        assert token.user.annotator.pk is not None  # loaded by the join as well
    assert len(queries) == 1
    assert _legacy_token("no-such-key") is None
