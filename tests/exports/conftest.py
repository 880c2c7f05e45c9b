"""Fixtures for export tests: an EXPORT_ROOT shared with the Celery worker, and a small varied dataset."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from annotate.catalog.models import Campaign, Comparison
from tests import factories

# Set before any worker starts: the worker subprocess inherits it and writes where the tests look.
_OWN_EXPORT_ROOT = "EXPORT_ROOT" not in os.environ
os.environ.setdefault("EXPORT_ROOT", tempfile.mkdtemp(prefix="cmi-test-exports-"))


@pytest.fixture(scope="session", autouse=True)
def _remove_export_root() -> Iterator[None]:
    yield
    if _OWN_EXPORT_ROOT:
        shutil.rmtree(os.environ["EXPORT_ROOT"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _export_root(settings) -> Path:  # type: ignore[no-untyped-def]
    settings.EXPORT_ROOT = Path(os.environ["EXPORT_ROOT"])
    return settings.EXPORT_ROOT


@dataclass
class Dataset:
    campaign: Campaign
    comparisons: list[Comparison]
    annotators: list[User]


def build_dataset(
    *,
    per_cell: int = 2,
    voters: int = 3,
    seed: int = 7,
    campaign: Campaign | None = None,
    annotators: list[User] | None = None,
) -> Dataset:
    """``per_cell`` comparisons per (modality, vocal) cell, each voted by ``voters`` annotators.

    Choices, confidences and display order are seeded-random so no annotator looks like a
    straight-liner to quality control by accident.
    """
    rng = random.Random(seed)
    campaign = campaign or factories.make_campaign(name=f"Export campaign {seed}", license="CC-BY-4.0")
    annotators = annotators or [factories.make_annotator() for _ in range(voters)]
    comparisons = []
    for modality in "TLAC":
        for vocal in (False, True):
            for _ in range(per_cell):
                comparison = factories.make_comparison(campaign, modality=modality, seconds=0.5)
                for clip in (comparison.clip_a, comparison.clip_b):
                    clip.is_vocal = vocal
                    clip.save(update_fields=["is_vocal"])
                comparisons.append(comparison)
                for annotator in annotators[:voters]:
                    factories.make_vote(
                        comparison,
                        annotator,
                        alignment=rng.choice("ab"),
                        musicality=rng.choice("ab"),
                        alignment_confidence=rng.randint(1, 5),
                        musicality_confidence=rng.randint(1, 5),
                        swapped=rng.random() < 0.5,
                        feedback=f"reason {rng.randint(0, 999)} — ünïcode",
                    )
    return Dataset(campaign, comparisons, annotators)


@pytest.fixture
def dataset(db: None) -> Dataset:
    return build_dataset()
