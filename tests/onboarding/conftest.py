"""Fixtures for onboarding tests: a campaign that asks for every step, with two practice items."""

from __future__ import annotations

import pytest

from annotate.catalog.models import Campaign
from annotate.onboarding.models import CampaignOnboarding, PracticeItem
from tests import factories


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:  # type: ignore[no-untyped-def]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_onboarded_campaign(**config: object) -> Campaign:
    """Active campaign with one comparison, every onboarding step required, and two practice items."""
    campaign = factories.make_campaign(name="Onboarding campaign", min_listen_seconds=1.0, min_listen_fraction=None)
    factories.make_comparison(campaign)
    defaults: dict[str, object] = dict(
        consent_version="2026-01",
        headphone_check_required=True,
        headphone_trials=3,
        headphone_pass_mark=2,
        practice_required=True,
        practice_pass_fraction=0.75,
    )
    defaults.update(config)
    CampaignOnboarding.objects.create(campaign=campaign, **defaults)
    for position, (alignment, musicality) in enumerate([("A", "B"), ("B", "B")]):
        PracticeItem.objects.create(
            campaign=campaign,
            position=position,
            prompt=f"Practice prompt {position}: a solo piano ballad",
            clip_a=factories.make_clip(),
            clip_b=factories.make_clip(),
            alignment_answer=alignment,
            musicality_answer=musicality,
            explanation=f"Explanation {position}: only one clip has a piano.",
        )
    return campaign


@pytest.fixture
def onboarded_campaign(db: None) -> Campaign:
    return make_onboarded_campaign()
