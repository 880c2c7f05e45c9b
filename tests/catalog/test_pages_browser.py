"""axe-core on the campaign staff pages (list, new, settings, import with a failed import, gold items)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from annotate.catalog.models import CampaignImport
from tests import factories
from tests.axe import assert_no_horizontal_overflow, assert_no_serious_violations


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_campaign_pages_have_no_serious_accessibility_violations(live_server, browser_page) -> None:  # type: ignore[no-untyped-def]
    page, base = browser_page, live_server.url
    campaign = factories.make_campaign(name="Axe")
    factories.make_comparison(campaign)
    CampaignImport.objects.create(
        campaign=campaign,
        manifest_name="m.jsonl",
        archive_name="a.zip",
        status="failed",
        error="1 problem(s) in the manifest; nothing was imported",
        problems=[{"line": 2, "message": "audio2 'x.wav': file not found"}],
    )
    User.objects.create_user("alice", "alice@example.org", "alice-pass-123", is_staff=True, is_superuser=True)
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-pass-123")
    page.click(".login button[type=submit]")
    page.wait_for_url(f"{base}/")
    for name, path in (
        ("campaign-list", "/campaigns/manage/"),
        ("campaign-new", "/campaigns/new/"),
        ("campaign-settings", f"/campaigns/{campaign.pk}/settings/"),
        ("campaign-import", f"/campaigns/{campaign.pk}/import/"),
        ("campaign-comparisons", f"/campaigns/{campaign.pk}/comparisons/"),
    ):
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 200, path
        assert_no_serious_violations(page, name)
        assert_no_horizontal_overflow(page)
