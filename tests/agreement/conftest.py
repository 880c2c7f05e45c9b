"""Fixtures for agreement tests: a pool of annotators and a fast vote writer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User

from annotate.catalog.models import Campaign, Comparison
from tests import factories


@pytest.fixture
def annotators(db: None) -> list[User]:
    return [factories.make_annotator(f"rater{i}") for i in range(6)]


@pytest.fixture
def comparisons(campaign: Campaign) -> Callable[[int], list[Comparison]]:
    """Builds n comparisons in the test campaign (each with two short synthesised clips)."""

    def build(n: int, **fields: Any) -> list[Comparison]:
        return [factories.make_comparison(campaign, seconds=1.0, **fields) for _ in range(n)]

    return build


def vote_matrix(
    comparisons: list[Comparison], annotators: list[User], rows: list[str], *, question: str = "both", **fields: Any
) -> None:
    """Votes from a reliability matrix: rows are annotators, columns comparisons, '.' is missing.

    With ``question="both"`` the same choice is used for alignment and musicality.
    """
    for annotator, row in zip(annotators, rows, strict=False):
        for comparison, value in zip(comparisons, row, strict=True):
            if value == ".":
                continue
            musicality = "a" if question == "alignment" else value
            factories.make_vote(comparison, annotator, alignment=value, musicality=musicality, **fields)
