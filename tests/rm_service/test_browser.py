"""In headless Chromium with a real worker: staff train from the UI, watch progress, activate, read the dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from rm_service.models import Prediction
from tests import factories
from tests.rm_service.conftest import FAST_CONFIG


def _canvas_has_ink(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    return page.evaluate(
        """(sel) => { const c = document.querySelector(sel);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true; return false; }""",
        selector,
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_train_activate_and_watch_agreement(
    live_server,
    browser_page,
    celery_worker_process,  # type: ignore[no-untyped-def]
    synthetic_data: Path,
    tmp_path: Path,
) -> None:
    page = browser_page
    page.set_default_timeout(120000)  # training on a busy CPU can take a while
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    User.objects.create_user("alice", "alice@example.org", "alice-pass-123", is_staff=True)
    bob = factories.make_annotator("bob")
    campaign = factories.make_campaign(name="Browser campaign")
    comparisons = [factories.make_comparison(campaign, modality=m) for m in ("T", "L")]

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-pass-123")
    page.click(".login button[type=submit]")
    page.locator(f'li[data-campaign="{campaign.pk}"]').get_by_role("link", name="Reward model").click()
    page.fill("input[name=train_jsonl]", str(synthetic_data / "train.jsonl"))
    page.fill("input[name=validation_jsonl]", str(synthetic_data / "validation.jsonl"))
    page.fill("input[name=test_jsonl]", str(synthetic_data / "test.jsonl"))
    page.fill("input[name=dataset_root]", str(synthetic_data))
    page.fill("input[name=config]", json.dumps(FAST_CONFIG))
    page.click("form.rm-train button[type=submit]")
    page.wait_for_url(re.compile(r"/rm/runs/\d+/$"))
    # The run page polls the API: the status flips to succeeded without a reload, and the loss is drawn.
    page.wait_for_function("document.querySelector('[data-field=status]').textContent === 'succeeded'")
    assert page.locator("[data-field=step]").inner_text() == str(FAST_CONFIG["stage2_max_steps"])
    assert _canvas_has_ink(page, "#loss-chart")

    page.goto(f"{live_server.url}/rm/campaigns/{campaign.pk}/")
    page.get_by_role("button", name="Activate").first.click()
    deadline_ok = False
    for _ in range(240):
        if Prediction.objects.filter(comparison__campaign=campaign).count() == len(comparisons):
            deadline_ok = True
            break
        page.wait_for_timeout(500)
    assert deadline_ok, "predictions were not stored after activation"
    factories.make_vote(comparisons[0], bob, alignment="a", musicality="b")

    page.goto(f"{live_server.url}/rm/campaigns/{campaign.pk}/agreement/")
    assert page.locator("[data-field=votes]").inner_text() == "1"
    assert "(n=1)" in page.locator('[data-question="alignment"] [data-field=single]').inner_text()
    assert _canvas_has_ink(page, '[data-question="alignment"] canvas.reliability')
    page.screenshot(path=str(tmp_path / "agreement.png"), full_page=True)
    assert errors == []
