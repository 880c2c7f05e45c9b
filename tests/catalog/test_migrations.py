"""Data migrations of the catalog, run on rows as an older version wrote them."""

from __future__ import annotations

import importlib

from django.apps import apps

from annotate.catalog.models import Clip
from tests import factories


def test_0007_stores_peaks_rounded_as_they_are_served(db: None) -> None:
    campaign = factories.make_campaign()
    comparison = factories.make_comparison(campaign, seconds=1.0)
    older = [0.12345, 1.0, 0.0004, 0.5]  # four decimals and more, as imports wrote them before
    Clip.objects.filter(pk=comparison.clip_a_id).update(peaks=older)
    Clip.objects.filter(pk=comparison.clip_b_id).update(peaks=None)

    importlib.import_module("annotate.catalog.migrations.0007_round_clip_peaks").round_peaks(apps, None)

    assert Clip.objects.get(pk=comparison.clip_a_id).peaks == [0.123, 1.0, 0.0, 0.5]
    assert Clip.objects.get(pk=comparison.clip_b_id).peaks is None
