"""As an admin with no shell, in headless Chromium under the site's CSP: create a campaign, upload a manifest and a
zip of its audio, read the bad row's line number, fix the manifest, import, activate."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from annotate.catalog.models import Campaign, CampaignImport
from tests.factories import write_tone


def _manifest(path: Path, *, broken: bool) -> Path:
    rows = [
        {"prompt id": f"p{i}", "prompt": f"Prompt {i}", "audio-path": f"a/{i}.wav", "audio2": f"b/{i}.wav"}
        for i in range(1, 4)
    ]
    if broken:
        rows[1]["audio2"] = "b/typo.wav"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _audio_zip(tmp_path: Path) -> Path:
    archive_path = tmp_path / "audio.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for i in range(1, 4):
            for side, seed in (("a", i), ("b", 10 + i)):
                archive.write(
                    write_tone(tmp_path / "src" / side / f"{i}.wav", seed=seed, seconds=1.0), f"{side}/{i}.wav"
                )
    return archive_path


def _upload(page, manifest: Path, archive: Path) -> None:  # type: ignore[no-untyped-def]
    page.set_input_files("input[name=manifest]", str(manifest))
    page.set_input_files("input[name=archive]", str(archive))
    page.click("#import-form button[type=submit]")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_admin_creates_a_campaign_and_imports_it_from_the_browser(
    live_server,
    csp_browser_page,  # type: ignore[no-untyped-def]
    celery_worker_process,
    tmp_path: Path,
) -> None:
    page, base = csp_browser_page, live_server.url
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    User.objects.create_user("alice", "alice@example.org", "alice-pass-123", is_staff=True, is_superuser=True)
    archive = _audio_zip(tmp_path)

    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-pass-123")
    page.click(".login button[type=submit]")
    page.get_by_role("link", name="New campaign").click()
    page.fill("input[name=name]", "Browser batch")
    page.fill("input[name=overlap_target]", "2")
    page.click("#campaign-form button[type=submit]")
    campaign = Campaign.objects.get(name="Browser batch")
    page.wait_for_url(re.compile(rf"/campaigns/{campaign.pk}/import/$"))
    assert campaign.status == "draft" and campaign.overlap_target == 2

    # A typo on line 2: the worker refuses the whole manifest and the page shows the line.
    _upload(page, _manifest(tmp_path / "broken.jsonl", broken=True), archive)
    failed = CampaignImport.objects.get()
    page.wait_for_selector(f'tr[data-import="{failed.pk}"][data-status="failed"]', timeout=60_000)
    problems = page.locator(f'tr[data-import="{failed.pk}"] .problems').inner_text()
    assert "line 2: audio2 'typo.wav': file not found" in problems
    assert not campaign.comparisons.exists()

    _upload(page, _manifest(tmp_path / "fixed.jsonl", broken=False), archive)
    fixed = CampaignImport.objects.exclude(pk=failed.pk).get()
    page.wait_for_selector(f'tr[data-import="{fixed.pk}"][data-status="succeeded"]', timeout=60_000)
    assert "3 comparisons imported" in page.locator(f'tr[data-import="{fixed.pk}"]').inner_text()
    assert campaign.comparisons.count() == 3

    page.get_by_role("link", name="Settings").first.click()
    page.get_by_role("button", name="Activate").click()
    page.wait_for_selector("#campaign-status:has-text('Active')")
    campaign.refresh_from_db()
    assert campaign.status == "active"
    assert violations == []
