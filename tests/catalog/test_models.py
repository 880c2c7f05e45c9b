from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from annotate.catalog.models import Campaign, Comparison, Instruction
from tests import factories

pytestmark = pytest.mark.django_db


def test_it_rejects_a_comparison_of_a_clip_with_itself(campaign) -> None:
    clip = factories.make_clip()
    instruction = factories.make_instruction()
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(campaign=campaign, instruction=instruction, clip_a=clip, clip_b=clip)


def test_it_allows_each_unordered_pair_once_per_campaign_and_instruction(campaign) -> None:
    a, b = factories.make_clip(), factories.make_clip()
    instruction = factories.make_instruction()
    Comparison.objects.create(campaign=campaign, instruction=instruction, clip_a=a, clip_b=b)
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(campaign=campaign, instruction=instruction, clip_a=b, clip_b=a)
    # The same pair is fine under another instruction or in another campaign.
    Comparison.objects.create(campaign=campaign, instruction=factories.make_instruction(), clip_a=b, clip_b=a)
    other = factories.make_campaign()
    Comparison.objects.create(campaign=other, instruction=instruction, clip_a=a, clip_b=b)


@pytest.mark.parametrize(
    ("lyrics", "with_reference", "expected"),
    [("", False, "T"), ("la la", False, "L"), ("", True, "A"), ("la la", True, "C")],
)
def test_it_derives_the_modality_in_the_database(lyrics: str, with_reference: bool, expected: str) -> None:
    reference = factories.make_clip() if with_reference else None
    instruction = Instruction.objects.create(
        text="x", lyrics=lyrics, reference_clip=reference, content_hash=f"h-{lyrics}-{with_reference}"
    )
    instruction.refresh_from_db()
    assert instruction.modality == expected
    # Changing the parts changes the modality; there is no way to type it by hand.
    instruction.lyrics = "" if lyrics else "new lyrics"
    instruction.save()
    instruction.refresh_from_db()
    assert instruction.modality == {"T": "L", "L": "T", "A": "C", "C": "A"}[expected]


def test_it_rejects_bad_campaign_settings() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.create(name="zero overlap", overlap_target=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.create(name="fraction", min_listen_fraction=1.5)


def test_it_rejects_unknown_gold_values(campaign) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_comparison(campaign, gold_alignment="x")


@pytest.mark.parametrize(
    ("seconds", "fraction", "duration", "expected"),
    [(10, 0.5, 30, 10), (10, 0.5, 12, 6), (None, 0.5, 12, 6), (10, None, 30, 10), (10, None, 4, 4), (None, None, 9, 0)],
)
def test_it_requires_the_lesser_of_seconds_and_fraction(seconds, fraction, duration, expected) -> None:  # type: ignore[no-untyped-def]
    campaign = Campaign(min_listen_seconds=seconds, min_listen_fraction=fraction)
    assert campaign.required_listen_seconds(duration) == pytest.approx(expected)
