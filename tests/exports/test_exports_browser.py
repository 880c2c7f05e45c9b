"""End to end in headless Chromium: staff open a campaign's export page, export, watch it finish, download."""

from __future__ import annotations

import io
import re
import tarfile

import pytest
from django.contrib.auth.models import User

from annotate.exports.models import Export
from tests.exports.conftest import build_dataset


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_export_from_the_campaign_card_and_download(
    live_server,
    browser_page,  # type: ignore[no-untyped-def]
    celery_worker_process,
) -> None:
    page = browser_page
    data = build_dataset(per_cell=1, voters=2, seed=31)
    User.objects.create_user("alice", "alice@example.org", "alice-pass-123", is_staff=True)

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-pass-123")
    page.click(".login button[type=submit]")
    page.locator(f'li[data-campaign="{data.campaign.pk}"]').get_by_role("link", name="Export", exact=True).click()
    page.wait_for_url(re.compile(rf"/campaigns/{data.campaign.pk}/exports/$"))

    # An impossible request is refused with its reason, and nothing is queued.
    page.fill("input[name=test_size]", "99")
    page.click("#export-form button[type=submit]")
    assert "99 comparisons requested but only 8" in page.locator(".form-errors").inner_text()
    assert not Export.objects.exists()

    page.fill("input[name=test_size]", "4")
    page.fill("input[name=seed]", "2")
    page.click("#export-form button[type=submit]")
    page.wait_for_selector("tr[data-export]")
    export = Export.objects.get()
    # The page polls the API and re-renders when the worker has finished.
    page.wait_for_selector(f'tr[data-export="{export.pk}"][data-status="succeeded"]', timeout=90_000)
    row = page.locator(f'tr[data-export="{export.pk}"]')
    assert "Succeeded" in row.inner_text()
    response = page.request.get(live_server.url + row.locator("text=Download").get_attribute("href"))
    assert response.status == 200
    with tarfile.open(fileobj=io.BytesIO(response.body()), mode="r:gz") as tar:
        assert f"export-{export.pk}/test.jsonl" in tar.getnames()
    export.refresh_from_db()
    assert export.parameters["seed"] == 2 and export.summary["comparisons"]["test"] == 4
